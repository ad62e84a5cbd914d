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
in ``../shared/data/fashion-mnist/SOURCE.md`` (the course's offline copy, whose two image files
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
import numbers
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .downloads import DataError, DataFiles, download_files, find_files
from .episodes import Episode, stack_episodes

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
# decompressed bytes (../shared/data/fashion-mnist/SOURCE.md).
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


def _check_int(name: str, value, minimum: int) -> None:
    # Local copy of the int check episodes.py keeps private; the lead will unify them.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")


class LabelledImageEpisodes:
    """N-way K-shot episodes drawn from any array of labelled grey images.

    Same interface and conventions as :class:`metalearn_helpers.episodes.OmniglotEpisodes`
    (``sample``, ``batches``, usable by ``episode_dataset``): classes drawn without replacement,
    ``k_shot + n_query`` distinct images per class drawn without replacement (support and query
    never share an image), labels 0..N-1 in the random order the classes were drawn, support and
    query ordered by label. Images come out float32 ``(n, height, width, 1)``: uint8 input is
    divided by 255, float input is kept as it is.

    Args:
        images: ``(n_images, height, width)`` or ``(n_images, height, width, 1)``.
        labels: ``(n_images,)`` integer class of each image.
        n_way, k_shot, n_query: classes per episode, support and query images per class.
    """

    def __init__(self, images, labels, *, n_way: int, k_shot: int, n_query: int):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or min(images.shape, default=0) == 0:
            raise ValueError(f"images must be grey images of shape (n_images, height, width) "
                             f"or (n_images, height, width, 1), got shape {images.shape}.")
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must hold one integer class per image ({len(images)}), "
                             f"got shape {labels.shape} and dtype {labels.dtype}.")
        _check_int("n_way", n_way, 1)
        _check_int("k_shot", k_shot, 1)
        _check_int("n_query", n_query, 0)
        self.classes, counts = np.unique(labels, return_counts=True)
        if n_way > len(self.classes):
            raise ValueError(f"n_way={n_way} is more than the {len(self.classes)} classes "
                             "in the labels.")
        if k_shot + n_query > counts.min():
            raise ValueError(
                f"k_shot + n_query = {k_shot + n_query}, but class "
                f"{self.classes[counts.argmin()]} has only {counts.min()} images; support and "
                "query must be disjoint.")
        self._members = [np.flatnonzero(labels == c) for c in self.classes]
        self.images, self.n_way, self.k_shot, self.n_query = images, n_way, k_shot, n_query

    def __repr__(self) -> str:
        return (f"LabelledImageEpisodes({self.n_way}-way {self.k_shot}-shot {self.n_query}-query, "
                f"{len(self.classes)} classes, {len(self.images):,} images)")

    def sample(self, seed=None) -> Episode:
        """Draw one episode; ``info`` holds the original ``"classes"`` behind labels 0..N-1
        and the ``"images"`` indices ``(n_way, k_shot + n_query)``."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        chosen = rng.choice(len(self.classes), size=self.n_way, replace=False)
        n_draw = self.k_shot + self.n_query
        indices = np.stack([rng.choice(self._members[c], size=n_draw, replace=False)
                            for c in chosen])
        images = self.images[indices][..., None]  # (n_way, n_draw, height, width, 1)
        images = (images.astype(np.float32) / 255.0 if images.dtype == np.uint8
                  else images.astype(np.float32))
        labels = np.broadcast_to(np.arange(self.n_way, dtype=np.int32)[:, None],
                                 (self.n_way, n_draw))
        shape = images.shape[2:]
        return Episode(
            support_x=images[:, :self.k_shot].reshape(-1, *shape),
            support_y=labels[:, :self.k_shot].reshape(-1),
            query_x=images[:, self.k_shot:].reshape(-1, *shape),
            query_y=labels[:, self.k_shot:].reshape(-1),
            info={"classes": self.classes[chosen], "images": indices},
        )

    def batches(self, meta_batch_size: int, seed=None) -> Iterator[Episode]:
        """Yield meta-batches of ``meta_batch_size`` stacked episodes, forever."""
        _check_int("meta_batch_size", meta_batch_size, 1)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        while True:
            yield stack_episodes([self.sample(rng) for _ in range(meta_batch_size)])
