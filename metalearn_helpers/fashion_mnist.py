"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv 1708.07747): find, verify and read the
official files, and draw few-shot episodes from them.

Defined in notebook ``07_applications`` (a new image domain for learners meta-trained on Omniglot).

Fashion-MNIST holds 70,000 grey 28x28 images of Zalando articles in 10 classes (6,000 training +
1,000 test images per class), MIT licence, Copyright 2017 Zalando SE. The four IDX files are the
ones ``keras.datasets.fashion_mnist.load_data()`` downloads.

Where the files are looked for, in order (see :mod:`metalearn_helpers.downloads`):

1. the ``root`` argument of :func:`load_fashion_mnist` (a folder holding the four ``.gz`` files);
2. the environment variable ``METALEARN_FASHION_MNIST_DIR``;
3. the cache folder's ``fashion-mnist/`` (``cache`` argument, default
   :func:`metalearn_helpers.downloads.cache_dir`);
4. otherwise they are downloaded from Keras' URL (:data:`OFFICIAL_BASE_URL`) into that folder.

Each file must match the official release's md5 or the sha256 of its decompressed content listed
in ``data/README.md`` (an offline copy whose two image files
were recompressed by Debian); anything else is refused. Verifying and reading the four files
takes 2-3 seconds, so nothing decoded is cached.

Few-shot protocol (stated here once): meta-training episodes come from the official training
images of classes 0-4 (:data:`META_TRAIN_CLASSES`: T-shirt/top, Trouser, Pullover, Dress, Coat),
meta-test episodes from the official test images of classes 5-9 (:data:`META_TEST_CLASSES`:
Sandal, Shirt, Sneaker, Bag, Ankle boot), so test episodes share neither classes nor images with
meta-training. A 5-way test episode therefore always holds the same five classes, in a random
label order.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np

from .downloads import DataError, DataFiles, download_files, find_files

OFFICIAL_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
ENV_FASHION_MNIST_DIR = "METALEARN_FASHION_MNIST_DIR"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
META_TRAIN_CLASSES = (0, 1, 2, 3, 4)
META_TEST_CLASSES = (5, 6, 7, 8, 9)
IMAGE_SIZE = 28
EXPECTED_PER_CLASS = {"train": 6000, "test": 1000}

_OFFICIAL = "official release"
_CONTENT = "official content (course's recompressed copy)"
# Official md5 of each .gz (zalandoresearch/fashion-mnist README) and the sha256 of its
# decompressed bytes (data/README.md).
ACCEPTED_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": {
        "md5": {"8d4fb7e6c68d591d4c3dfef9ec88bf0d": _OFFICIAL},
        "sha256_gunzip": {
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888": _CONTENT},
    },
    "train-labels-idx1-ubyte.gz": {
        "md5": {"25c81989df183df01b3e8a0aad5dffbe": _OFFICIAL},
        "sha256_gunzip": {
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9": _CONTENT},
    },
    "t10k-images-idx3-ubyte.gz": {
        "md5": {"bef4ecab320f06d8554ea6380940ec79": _OFFICIAL},
        "sha256_gunzip": {
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b": _CONTENT},
    },
    "t10k-labels-idx1-ubyte.gz": {
        "md5": {"bb300cfdad3c16e7a12a480ee83cd310": _OFFICIAL},
        "sha256_gunzip": {
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34": _CONTENT},
    },
}


class FashionMNISTError(DataError):
    """Fashion-MNIST could not be found, verified or read; the message says what to do."""


FASHION_MNIST_FILES = DataFiles(
    name="Fashion-MNIST", kind="a Fashion-MNIST file", checksums=ACCEPTED_CHECKSUMS,
    env_var=ENV_FASHION_MNIST_DIR, subdir="fashion-mnist", base_url=OFFICIAL_BASE_URL,
    origin="the official release, https://github.com/zalandoresearch/fashion-mnist",
    error=FashionMNISTError,
)


@dataclasses.dataclass(frozen=True)
class FashionMNIST:
    """The official split. Images are uint8 ``(n, 28, 28)``, 0 = background (as Omniglot's
    paper after inversion); labels are int64 class indices into :data:`CLASS_NAMES`."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple = CLASS_NAMES

    def counts(self) -> dict[str, list[int]]:
        """``{"train": images per class, "test": images per class}``."""
        return {"train": np.bincount(self.train_labels, minlength=10).tolist(),
                "test": np.bincount(self.test_labels, minlength=10).tolist()}

    def summary(self) -> str:
        return (f"train: {len(self.train_labels):,} images, test: {len(self.test_labels):,} "
                f"images, {len(self.class_names)} classes; images: 28x28 uint8, "
                "background = 0")


def download_fashion_mnist(dest: str | os.PathLike, base_url: str = OFFICIAL_BASE_URL) -> Path:
    """Download the four files from ``base_url`` into ``dest``, verifying each. Returns
    ``dest``."""
    return download_files(FASHION_MNIST_FILES, dest, base_url)


def find_fashion_mnist(root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None,
                       download: bool = True) -> dict[str, Path]:
    """Locate (or download) and verify the four files; see the module docstring for the
    order."""
    return find_files(FASHION_MNIST_FILES, root, cache, download, fetch=download_fashion_mnist)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes (LeCun's MNIST format) into a uint8 array."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise FashionMNISTError(f"{path} is not a readable gzip file ({error}).") from error
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise FashionMNISTError(f"{path} is not an IDX file of unsigned bytes.")
    n_dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(n_dims))
    offset = 4 + 4 * n_dims
    if len(raw) - offset != int(np.prod(shape)):
        raise FashionMNISTError(f"{path}: header says shape {shape} but it holds "
                                f"{len(raw) - offset} values.")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)


def check_counts(data: FashionMNIST) -> None:
    """Raise unless the data has 6,000 + 1,000 images of 28x28 per class."""
    for split in ("train", "test"):
        images = getattr(data, f"{split}_images")
        labels = getattr(data, f"{split}_labels")
        want = EXPECTED_PER_CLASS[split]
        if images.shape != (10 * want, IMAGE_SIZE, IMAGE_SIZE) or len(labels) != len(images):
            raise FashionMNISTError(
                f"{split}: {images.shape} images and {len(labels)} labels, expected "
                f"({10 * want}, 28, 28) and {10 * want}: the data is incomplete.")
        if data.counts()[split] != [want] * 10:
            raise FashionMNISTError(f"{split}: images per class {data.counts()[split]}, "
                                    f"expected {want} each.")


def load_fashion_mnist(root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None,
                       download: bool = True, verbose: bool = True) -> FashionMNIST:
    """Load Fashion-MNIST's official training and test sets.

    Args:
        root: folder holding the four ``.gz`` files (default: ``$METALEARN_FASHION_MNIST_DIR``,
            then the cache folder, then a download).
        cache: the cache folder (default :func:`metalearn_helpers.downloads.cache_dir`); files
            are looked for and downloaded in its ``fashion-mnist/``.
        download: allow downloading from Keras' URL if the files are nowhere.
        verbose: print the counts.

    Returns:
        A :class:`FashionMNIST`: 60,000 + 10,000 uint8 28x28 images, 6,000 + 1,000 per class.
    """
    paths = find_fashion_mnist(root, cache, download)
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        arrays[f"{split}_images"] = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
        arrays[f"{split}_labels"] = read_idx(
            paths[f"{prefix}-labels-idx1-ubyte.gz"]).astype(np.int64)
    data = FashionMNIST(**arrays)
    check_counts(data)
    if verbose:
        print(data.summary())
    return data


def few_shot_split(data: FashionMNIST, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of one side of the few-shot protocol (module docstring):
    ``"train"``: official training images of :data:`META_TRAIN_CLASSES` (30,000);
    ``"test"``: official test images of :data:`META_TEST_CLASSES` (5,000)."""
    if split == "train":
        images, labels, classes = data.train_images, data.train_labels, META_TRAIN_CLASSES
    elif split == "test":
        images, labels, classes = data.test_images, data.test_labels, META_TEST_CLASSES
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    keep = np.isin(labels, classes)
    return images[keep], labels[keep]
