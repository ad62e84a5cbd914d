"""Few-shot learning on a new image domain: learners meta-trained on Omniglot or on Fashion-MNIST,
tested on 5-way episodes of Fashion-MNIST's classes 5-9.

Defined in notebook ``07_applications_few_shot`` (Part A); ``scripts/train_fashion_mnist.py``
trains the Fashion-MNIST learners and ``scripts/evaluate_cross_domain.py`` scores the committed
Omniglot learners and pixel nearest neighbour on the same test episodes.

Both data sets are 28x28 grey images with background 0 and the object bright (Omniglot's strokes
are 1 after :mod:`metalearn_helpers.omniglot` inverts the PNGs; Fashion-MNIST's articles are
bright on 0), scaled to [0, 1] the same way, so Omniglot-trained networks see Fashion-MNIST in the
convention they were trained on: nothing is inverted. What differs is the content: Omniglot is
binary pen strokes, Fashion-MNIST filled grey-level shapes.

Protocol: :data:`metalearn_helpers.papers.FASHION_MNIST_PROTOCOL`. The question follows Chen et
al. 2019 ("A Closer Look at Few-shot Classification", arXiv 1904.04232, section 4.4): under a
domain shift, does a pre-trained classifier with a fine-tuned head (their Baseline) match or beat
the meta-learners?
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .checks import check_choice, check_int, check_ints
from .episodes import Episode, LabelledImageEpisodes, Seed, TaskFamily, as_rng
from .evaluation import ScoreWithCI, evaluate
from .experiments import make_algorithm
from .fashion_mnist import FashionMNIST, few_shot_split
from .learners import Learner
from .papers import FASHION_MNIST_SETTINGS, OMNIGLOT_SETTINGS
from .training import meta_train

N_WAY = 5  # Fashion-MNIST has five test classes: every test episode holds all of them
TEST_SHOTS = (1, 5)
TEST_SEED = 2017  # the same 600 test episodes for every learner


class ImageBatches(TaskFamily):
    """Mini-batches of ordinary supervised classification over labelled images, as a task family
    (like :class:`metalearn_helpers.baseline.ClassBatches` for Omniglot): ``batch_size`` images
    drawn without replacement, with global labels ``0..n_classes-1`` (the rank of each original
    class), and an empty query set. Pre-trains :class:`~metalearn_helpers.baseline.FineTuneBaseline`
    with :func:`metalearn_helpers.training.meta_train`."""

    def __init__(self, images, labels, *, batch_size: int):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 3 or labels.shape != (len(images),):
            raise ValueError(f"images must be (n, height, width) with one label each, got "
                             f"{images.shape} and {labels.shape}.")
        check_ints(batch_size=batch_size)
        if batch_size > len(images):
            raise ValueError(f"batch_size={batch_size} is more than the {len(images)} images.")
        self.classes, self.labels = np.unique(labels, return_inverse=True)
        self.images, self.batch_size = images, batch_size

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def sample(self, seed: Seed = None) -> Episode:
        """One mini-batch: float32 images ``(batch_size, h, w, 1)`` in [0, 1], int32 labels."""
        picked = as_rng(seed).choice(len(self.images), self.batch_size, replace=False)
        images = self.images[picked][..., None].astype(np.float32) / 255.0
        return Episode(images, self.labels[picked].astype(np.int32),
                       np.zeros((0, *images.shape[1:]), np.float32), np.zeros(0, np.int32),
                       info={"images": picked})


class PixelNearestNeighbour(Learner):
    """The no-learning reference: a query gets the class of its nearest support image in pixel
    space (squared Euclidean distance). Logits are minus the distance to each class's nearest
    support image; with one shot this is also the nearest class mean."""

    def logits(self, support_x, support_y, query_x):
        support = np.asarray(support_x, np.float32).reshape(len(support_x), -1)
        query = np.asarray(query_x, np.float32).reshape(len(query_x), -1)
        distances = ((query[:, None, :] - support[None, :, :]) ** 2).sum(-1)
        n_way = int(np.max(support_y)) + 1
        return np.stack([-distances[:, np.asarray(support_y) == c].min(1)
                         for c in range(n_way)], axis=1)


def fashion_setting(name: str) -> dict:
    """The Fashion-MNIST setting of learner ``name``: its Omniglot setting
    (:data:`papers.OMNIGLOT_SETTINGS`) updated with :data:`papers.FASHION_MNIST_SETTINGS`."""
    check_choice("name", name, tuple(FASHION_MNIST_SETTINGS))
    override = FASHION_MNIST_SETTINGS[name]
    return {**OMNIGLOT_SETTINGS[override["base"]], **override}


def make_fashion_learner(name: str, k_shot: int):
    """A fresh learner ``name`` (``"protonet"``, ``"maml"`` or ``"baseline"``) with its Omniglot
    hyperparameters, for ``N_WAY``-way ``k_shot``-shot Fashion-MNIST."""
    paper = fashion_setting(name)
    overrides = {"n_classes": paper["n_classes"]} if "n_classes" in paper else {}
    return make_algorithm(paper["base"], N_WAY, n_steps=paper["n_steps"], k_shot=k_shot,
                          **overrides)


def fashion_training_tasks(name: str, data: FashionMNIST, k_shot: int) -> TaskFamily:
    """What learner ``name`` trains on: episodes (or, for the baseline, mini-batches) of the
    training images of classes 0-4. Episodic learners see ``train_query`` queries per class, or
    as many as support images (MAML's code)."""
    images, labels = few_shot_split(data, "train")
    paper = fashion_setting(name)
    if "batch_size" in paper:
        return ImageBatches(images, labels, batch_size=paper["batch_size"])
    return LabelledImageEpisodes(images, labels, n_way=paper["train_way"], k_shot=k_shot,
                                 n_query=paper.get("train_query", k_shot))


def train_fashion_mnist(name: str, data: FashionMNIST, k_shot: int, n_steps: int, *,
                        seed: int = 0, run_dir=None, progress: bool = True):
    """Meta-train (or pre-train) learner ``name`` on Fashion-MNIST classes 0-4 with the shared
    loop (checkpoints in ``run_dir``; calling again resumes). Returns ``(algorithm, history)``."""
    check_int("n_steps", n_steps, minimum=0)
    keras.utils.set_random_seed(seed)
    algorithm = make_fashion_learner(name, k_shot)
    history = meta_train(algorithm, fashion_training_tasks(name, data, k_shot),
                         n_steps=n_steps, meta_batch_size=fashion_setting(name)["meta_batch_size"],
                         seed=seed, run_dir=run_dir, checkpoint_every=max(1, min(500, n_steps)),
                         progress=progress)
    return algorithm, history


def test_episodes(data: FashionMNIST, k_shot: int, n_query: int = 15) -> LabelledImageEpisodes:
    """5-way ``k_shot``-shot test episodes of classes 5-9 (official test images)."""
    images, labels = few_shot_split(data, "test")
    return LabelledImageEpisodes(images, labels, n_way=N_WAY, k_shot=k_shot, n_query=n_query)


def evaluate_fashion(learner, data: FashionMNIST, k_shot: int, n_episodes: int = 600,
                     n_query: int = 15, seed: int = TEST_SEED,
                     progress: bool = True) -> ScoreWithCI:
    """Query accuracy ± 95 % CI of ``learner`` on ``n_episodes`` test episodes (the same episodes
    for every learner with the same ``seed``)."""
    return evaluate(learner.score_episode, test_episodes(data, k_shot, n_query), n_episodes,
                    seed=seed, progress=progress)


def fashion_run_name(name: str, k_shot: int) -> str:
    """``fashion_mnist_<learner>_5w<shot>s``; the baseline (no episodes) is
    ``fashion_mnist_baseline``."""
    if "batch_size" in fashion_setting(name):
        return f"fashion_mnist_{name}"
    return f"fashion_mnist_{name}_{N_WAY}w{k_shot}s"


def load_learner(record: dict, weights_dir):
    """The learner of a committed run record (Omniglot or Fashion-MNIST), its weights loaded."""
    from .records import load_weights

    name = record["name"]
    if name.startswith("fashion_mnist_"):
        learner = make_fashion_learner(record["algorithm"], record["k_shot"])
    else:
        learner = make_algorithm(record["algorithm"], record["n_way"], k_shot=record["k_shot"])
    load_weights(learner, f"{weights_dir}/{name}.npz")
    return learner


def episode_predictions(learner, episode: Episode) -> np.ndarray:
    """Predicted labels of an episode's queries (MAML: after its test-time inner steps)."""
    try:
        return np.argmax(learner.logits(*episode.arrays()[:3]), axis=-1)
    except NotImplementedError:  # MAML scores through its inner loop, not logits
        pass
    params = learner.adapt(tf.constant(episode.support_x), tf.constant(episode.support_y),
                           inner_steps=learner.eval_inner_steps)
    return np.argmax(learner.forward(params, tf.constant(episode.query_x)), axis=-1)
