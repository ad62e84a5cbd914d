"""metalearn_helpers.fashion_mnist: counts, checksums, finding and downloading the files, the
few-shot split and the episode sampler."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from metalearn_helpers import fashion_mnist as fm
from metalearn_helpers.downloads import ENV_DATA_DIR, verify_file
from metalearn_helpers.episodes import LabelledImageEpisodes, episode_dataset
from metalearn_helpers.fashion_mnist import FashionMNISTError

NAMES = fm.FASHION_MNIST_FILES.files
LABELS_GZ = "train-labels-idx1-ubyte.gz"


@pytest.fixture(scope="module")
def fashion(fashion_mnist_dir):
    """The real Fashion-MNIST, read once (never modify its arrays)."""
    return fm.load_fashion_mnist(root=fashion_mnist_dir, verbose=False)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No METALEARN_FASHION_MNIST_DIR, and an empty METALEARN_DATA_DIR as the cache folder."""
    monkeypatch.delenv(fm.ENV_FASHION_MNIST_DIR, raising=False)
    cache = tmp_path / "data_dir"
    cache.mkdir()
    monkeypatch.setenv(ENV_DATA_DIR, str(cache))
    return cache


def link_files(source, folder, names=NAMES):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(source / name)
    return folder


# --- The data ---------------------------------------------------------------------------------

def test_counts(fashion):
    assert fashion.train_images.shape == (60_000, 28, 28)
    assert fashion.test_images.shape == (10_000, 28, 28)
    assert fashion.train_images.dtype == fashion.test_images.dtype == np.uint8
    assert fashion.counts() == {"train": [6000] * 10, "test": [1000] * 10}
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert np.median(fashion.train_images) == 0  # background is 0, as Omniglot's paper
    assert "train: 60,000 images, test: 10,000 images, 10 classes" in fashion.summary()


def test_few_shot_split(fashion):
    train_x, train_y = fm.few_shot_split(fashion, "train")
    test_x, test_y = fm.few_shot_split(fashion, "test")
    assert train_x.shape == (30_000, 28, 28) and test_x.shape == (5_000, 28, 28)
    assert set(train_y.tolist()) == set(fm.META_TRAIN_CLASSES) == {0, 1, 2, 3, 4}
    assert set(test_y.tolist()) == set(fm.META_TEST_CLASSES) == {5, 6, 7, 8, 9}
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        fm.few_shot_split(fashion, "val")


# --- Checksums --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_verify_accepts_shared_files(fashion_mnist_dir, name):
    label = verify_file(fm.FASHION_MNIST_FILES, fashion_mnist_dir / name)
    # The two label files are the official bytes; the two image files were recompressed.
    assert label == ("official release" if "labels" in name
                     else "official content (course's recompressed copy)")


def test_official_gz_bytes_are_accepted(fashion_mnist_dir, tmp_path):
    # A gzip holding the official content with other compression bytes: accepted by content.
    copy = tmp_path / LABELS_GZ
    with gzip.open(fashion_mnist_dir / LABELS_GZ) as src:
        copy.write_bytes(gzip.compress(src.read(), compresslevel=1, mtime=0))
    assert verify_file(fm.FASHION_MNIST_FILES, copy).startswith("official content")


@pytest.mark.parametrize("name", [LABELS_GZ, "t10k-images-idx3-ubyte.gz"])
def test_tampered_file_is_refused(fashion_mnist_dir, tmp_path, tamper, name):
    copy = tmp_path / name
    shutil.copyfile(fashion_mnist_dir / name, copy)
    tamper(copy)
    with pytest.raises(FashionMNISTError, match="Checksum mismatch") as error:
        verify_file(fm.FASHION_MNIST_FILES, copy)
    message = str(error.value)
    assert str(copy) in message  # names the file, what was found and what is accepted
    accepted = fm.ACCEPTED_CHECKSUMS[name]
    assert next(iter(accepted["md5"])) in message
    assert next(iter(accepted["sha256_gunzip"])) in message
    assert "sha256 of the decompressed content" in message


def test_refuses_unknown_name(fashion_mnist_dir, tmp_path):
    (tmp_path / "fashion.gz").symlink_to(fashion_mnist_dir / LABELS_GZ)
    with pytest.raises(FashionMNISTError, match="fashion.gz is not a Fashion-MNIST file"):
        verify_file(fm.FASHION_MNIST_FILES, tmp_path / "fashion.gz")


def test_load_refuses_tampered_folder(fashion_mnist_dir, tmp_path, tamper):
    folder = link_files(fashion_mnist_dir, tmp_path / "copy", [n for n in NAMES if n != LABELS_GZ])
    shutil.copyfile(fashion_mnist_dir / LABELS_GZ, folder / LABELS_GZ)
    tamper(folder / LABELS_GZ)
    with pytest.raises(FashionMNISTError, match=f"Checksum mismatch for .*{LABELS_GZ}"):
        fm.load_fashion_mnist(root=folder, verbose=False)


# --- Reading IDX files ------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (None, "is not a readable gzip file"),
    (gzip.compress(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc"), "not an IDX file"),
    (gzip.compress(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc"),
     r"header says shape \(5,\) but it holds 3 values"),
], ids=["not_gzip", "float_idx", "short"])
def test_read_idx_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "x.gz"
    path.write_bytes(b"plain bytes" if content is None else content)
    with pytest.raises(FashionMNISTError, match=message):
        fm.read_idx(path)


def test_check_counts_refuses_incomplete_data(fashion):
    part = fm.FashionMNIST(fashion.train_images[:100], fashion.train_labels[:100],
                           fashion.test_images, fashion.test_labels)
    with pytest.raises(FashionMNISTError, match=r"train: \(100, 28, 28\) images.*incomplete"):
        fm.check_counts(part)


# --- Finding the files ------------------------------------------------------------------------

def test_env_dir_is_used(fashion_mnist_dir, no_env, monkeypatch, tmp_path):
    folder = link_files(fashion_mnist_dir, tmp_path / "elsewhere")
    monkeypatch.setenv(fm.ENV_FASHION_MNIST_DIR, str(folder))
    assert fm.find_fashion_mnist(download=False) == {n: folder / n for n in NAMES}


def test_root_beats_env_dir(fashion_mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv(fm.ENV_FASHION_MNIST_DIR, str(tmp_path))  # empty
    assert fm.find_fashion_mnist(fashion_mnist_dir, download=False) == {
        n: fashion_mnist_dir / n for n in NAMES}


def test_cache_argument_is_used(fashion_mnist_dir, no_env, tmp_path):
    folder = link_files(fashion_mnist_dir, tmp_path / "cache" / "fashion-mnist")
    assert fm.find_fashion_mnist(cache=tmp_path / "cache", download=False) == {
        n: folder / n for n in NAMES}


def test_missing_file_is_named(fashion_mnist_dir, no_env, monkeypatch, tmp_path):
    folder = link_files(fashion_mnist_dir, tmp_path / "three", NAMES[1:])
    monkeypatch.setenv(fm.ENV_FASHION_MNIST_DIR, str(folder))
    with pytest.raises(FashionMNISTError, match=rf"METALEARN_FASHION_MNIST_DIR points at .* "
                                                rf"lacks {NAMES[0]}\. It must hold"):
        fm.load_fashion_mnist(verbose=False)
    assert list(no_env.iterdir()) == []  # nothing downloaded


def test_no_download_and_nothing_found(no_env):
    with pytest.raises(FashionMNISTError, match="Fashion-MNIST not found. Set "
                                                "METALEARN_FASHION_MNIST_DIR.*allow the download"):
        fm.load_fashion_mnist(download=False, verbose=False)
    assert list(no_env.iterdir()) == []


# --- Download, from a local HTTP server only --------------------------------------------------

def test_download(fashion_mnist_server, fashion_mnist_dir, tmp_path, network_guard):
    dest = tmp_path / "dest"
    assert fm.download_fashion_mnist(dest, base_url=fashion_mnist_server + "good/") == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(NAMES)  # no temporary folders left
    for name in NAMES:
        assert (dest / name).read_bytes() == (fashion_mnist_dir / name).read_bytes()
    assert network_guard == []


def test_download_tampered_file_is_refused(fashion_mnist_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(FashionMNISTError, match=f"Checksum mismatch for .*{LABELS_GZ}"):
        fm.download_fashion_mnist(dest, base_url=fashion_mnist_server + "tampered/")
    # The files before it in the list were good and stay; the bad one is not kept.
    assert LABELS_GZ not in [p.name for p in dest.iterdir()]
    assert all(p.is_file() for p in dest.iterdir())


def test_download_missing_file(fashion_mnist_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(FashionMNISTError, match="Could not download .*empty/train-images"):
        fm.download_fashion_mnist(dest, base_url=fashion_mnist_server + "empty/")
    assert list(dest.iterdir()) == []


def test_load_downloads_into_cache_folder(fashion_mnist_server, no_env, monkeypatch):
    calls = []
    real_download = fm.download_fashion_mnist

    def local_download(dest, base_url=fm.OFFICIAL_BASE_URL):
        calls.append((dest, base_url))
        return real_download(dest, base_url=fashion_mnist_server + "good/")

    monkeypatch.setattr(fm, "download_fashion_mnist", local_download)
    data = fm.load_fashion_mnist(verbose=False)
    assert calls == [(no_env / "fashion-mnist", fm.OFFICIAL_BASE_URL)]
    assert data.counts()["test"] == [1000] * 10
    assert fm.find_fashion_mnist(download=False) == {n: no_env / "fashion-mnist" / n
                                                    for n in NAMES}


def test_default_download_goes_to_keras_url(no_env, network_guard):
    with pytest.raises(FashionMNISTError, match="Could not download https://storage.googleapis."
                                                "com/tensorflow/tf-keras-datasets/train-images"):
        fm.load_fashion_mnist(verbose=False)
    assert set(network_guard) == {"storage.googleapis.com"}


# --- Episodes ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def test_tasks(fashion):
    return LabelledImageEpisodes(*fm.few_shot_split(fashion, "test"), n_way=5, k_shot=5,
                                    n_query=15)


def test_episode_shapes_labels_and_disjointness(test_tasks):
    episode = test_tasks.sample(0)
    assert episode.support_x.shape == (25, 28, 28, 1) and episode.query_x.shape == (75, 28, 28, 1)
    assert episode.support_x.dtype == np.float32 and 0 <= episode.support_x.min()
    assert episode.support_x.max() <= 1
    np.testing.assert_array_equal(episode.support_y, np.repeat(np.arange(5), 5))
    np.testing.assert_array_equal(episode.query_y, np.repeat(np.arange(5), 15))
    assert sorted(episode.info["classes"].tolist()) == [5, 6, 7, 8, 9]
    indices = episode.info["images"]  # distinct images: support and query never share one
    assert indices.shape == (5, 20) and len(set(indices.ravel().tolist())) == 100


def test_episode_images_match_their_class(fashion):
    images, labels = fm.few_shot_split(fashion, "test")
    tasks = LabelledImageEpisodes(images, labels, n_way=3, k_shot=2, n_query=1)
    episode = tasks.sample(np.random.default_rng(3))
    for label, cls in enumerate(episode.info["classes"]):
        assert np.all(labels[episode.info["images"][label]] == cls)
        np.testing.assert_array_equal(
            episode.support_x[episode.support_y == label][..., 0],
            images[episode.info["images"][label][:2]].astype(np.float32) / 255)


def test_episodes_are_reproducible_and_batch(test_tasks):
    a, b = test_tasks.sample(7), test_tasks.sample(7)
    np.testing.assert_array_equal(a.support_x, b.support_x)
    assert not np.array_equal(a.query_x, test_tasks.sample(8).query_x)
    batch = next(test_tasks.batches(4, seed=0))
    assert batch.support_x.shape == (4, 25, 28, 28, 1) and batch.query_y.shape == (4, 75)
    dataset = episode_dataset(test_tasks, meta_batch_size=2, seed=0)
    support_x, _, _, query_y = next(iter(dataset))
    assert tuple(support_x.shape) == (2, 25, 28, 28, 1) and tuple(query_y.shape) == (2, 75)


def test_channel_axis_and_float_images_are_accepted():
    images = np.random.default_rng(0).random((40, 8, 8, 1)).astype(np.float32)
    tasks = LabelledImageEpisodes(images, np.repeat(np.arange(4), 10), n_way=2, k_shot=3,
                                     n_query=2)
    episode = tasks.sample(0)
    assert episode.support_x.shape == (6, 8, 8, 1)
    assert set(episode.support_x.ravel().tolist()) <= set(images.ravel().tolist())  # not /255


@pytest.mark.parametrize("shape", [(40, 784), (40, 28, 28, 3), (40,), (0, 28, 28)])
def test_wrong_image_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"images must be grey images of shape \(n_images, "
                                         rf"height, width\).*got shape {re_shape(shape)}"):
        LabelledImageEpisodes(np.zeros(shape, np.uint8), np.zeros(shape[0], int), n_way=2,
                                 k_shot=1, n_query=1)


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("labels, kwargs, message", [
    (np.zeros(39, int), {}, r"labels must hold one integer class per image \(40\)"),
    (np.zeros(40), {}, "dtype float64"),
    (np.repeat(np.arange(4), 10), {"n_way": 5}, "n_way=5 is more than the 4 classes"),
    (np.repeat(np.arange(4), 10), {"k_shot": 6, "n_query": 5},
     "k_shot \\+ n_query = 11, but class 0 has only 10 images"),
    (np.repeat(np.arange(4), 10), {"k_shot": 0}, "k_shot must be at least 1"),
    (np.repeat(np.arange(4), 10), {"n_query": 2.0}, "n_query must be an int"),
])
def test_bad_sampler_arguments(labels, kwargs, message):
    arguments = {"n_way": 2, "k_shot": 1, "n_query": 1} | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        LabelledImageEpisodes(np.zeros((40, 28, 28), np.uint8), labels, **arguments)
