"""Task families: N-way K-shot Omniglot episodes and sinusoid regression tasks.

Defined in notebooks ``01_concepts`` (sinusoids) and ``02_task_sampling`` (Omniglot).

Both families share one interface: ``tasks.sample(seed_or_rng)`` returns one :class:`Episode`,
``tasks.batches(meta_batch_size, seed)`` yields stacked meta-batches forever, and
:func:`episode_dataset` wraps that in a prefetching ``tf.data.Dataset``. The same seed always
gives the same episodes.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from .checks import check_int, check_ints
from .omniglot import DRAWINGS_PER_CHARACTER, Omniglot

Seed = int | np.random.Generator | None


@dataclasses.dataclass(frozen=True)
class Episode:
    """One task: a support set to adapt on and a query set to evaluate on.

    Omniglot episodes are ordered by label: ``support_y == repeat(arange(n_way), k_shot)``, and
    ``info`` holds the character index (``"classes"``) and quarter turns (``"rotations"``) behind
    each label. Sinusoid episodes hold ``"amplitude"`` and ``"phase"``. Batched episodes (from
    :meth:`batches`) carry a leading meta-batch axis on every array.
    """

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray
    info: dict = dataclasses.field(default_factory=dict)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.support_x, self.support_y, self.query_x, self.query_y


def stack_episodes(episodes: list[Episode]) -> Episode:
    """Stack episodes of equal shapes along a new leading (meta-batch) axis."""
    arrays = [np.stack(a) for a in zip(*(e.arrays() for e in episodes))]
    info = {k: np.stack([e.info[k] for e in episodes]) for k in episodes[0].info}
    return Episode(*arrays, info=info)


def as_rng(seed: Seed) -> np.random.Generator:
    """A numpy generator from a seed (an int, None or a generator, which is used as it is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class TaskFamily:
    """What every task family shares: meta-batches and an endless episode stream."""

    def sample(self, seed: Seed = None) -> Episode:
        raise NotImplementedError

    def batches(self, meta_batch_size: int, seed: Seed = None) -> Iterator[Episode]:
        """Yield meta-batches of ``meta_batch_size`` stacked episodes, forever."""
        check_ints(meta_batch_size=meta_batch_size)
        rng = as_rng(seed)
        while True:
            yield stack_episodes([self.sample(rng) for _ in range(meta_batch_size)])


def character_classes(data: Omniglot, characters=None, rotations: bool = False) -> np.ndarray:
    """The classes of an Omniglot sampler: ``(character, quarter turns)`` pairs, shape
    ``(n_classes, 2)``, for the given character indices (default all) and, with ``rotations``,
    each of the 4 quarter turns (Santoro et al. 2016's protocol). Used by
    :class:`OmniglotEpisodes` and :class:`metalearn_helpers.baseline.ClassBatches`."""
    characters = np.arange(len(data.images)) if characters is None else np.asarray(characters)
    if characters.ndim != 1 or len(characters) == 0 or characters.dtype.kind not in "iu":
        raise ValueError("characters must be a non-empty 1-D array of integer character "
                         "indices (e.g. a split from split_characters).")
    if len(np.unique(characters)) != len(characters):
        raise ValueError("characters must not repeat: a repeated character would be two "
                         "classes with different labels.")
    turns = np.arange(4 if rotations else 1)
    return np.stack(np.meshgrid(characters, turns, indexing="ij"), -1).reshape(-1, 2)


class OmniglotEpisodes(TaskFamily):
    """N-way K-shot classification episodes drawn from a set of Omniglot characters.

    Classes are drawn without replacement; for each class, ``k_shot + n_query`` distinct drawings
    (of the 20) are drawn without replacement and split into support and query, so no drawing is in
    both. Labels 0..N-1 are given in the random order the classes were drawn, so a label means
    nothing across episodes (the model cannot memorise "label 3 is Latin/character07").

    Args:
        data: loaded Omniglot (:func:`metalearn_helpers.omniglot.load_omniglot`).
        characters: indices of the characters this sampler may use (e.g. a split from
            :func:`metalearn_helpers.omniglot.split_characters`); default all.
        n_way, k_shot, n_query: classes per episode, support and query drawings per class.
        rotations: if True, each character in each of 4 quarter-turn rotations is its own class
            (the protocol of Santoro et al. 2016, Vinyals et al. 2016, MAML, ProtoNets).
        within_alphabet: if True, all N classes of an episode come from one alphabet (Lake et
            al.'s harder benchmark); the alphabet is drawn uniformly among those with enough
            classes.
    """

    def __init__(self, data: Omniglot, characters=None, *, n_way: int, k_shot: int,
                 n_query: int, rotations: bool = False, within_alphabet: bool = False):
        check_ints(n_way=n_way, k_shot=k_shot)
        check_int("n_query", n_query, minimum=0)
        if k_shot + n_query > DRAWINGS_PER_CHARACTER:
            raise ValueError(
                f"k_shot + n_query = {k_shot} + {n_query} = {k_shot + n_query}, but each "
                f"character has only {DRAWINGS_PER_CHARACTER} drawings; support and query must "
                f"be disjoint, so k_shot + n_query <= {DRAWINGS_PER_CHARACTER}."
            )
        self.classes = character_classes(data, characters, rotations)  # (character, turns)
        alphabet_of_class = data.alphabets[self.classes[:, 0]]
        if within_alphabet:
            groups = [np.flatnonzero(alphabet_of_class == a)
                      for a in np.unique(alphabet_of_class)]
            self._groups = [g for g in groups if len(g) >= n_way]
            if not self._groups:
                raise ValueError(
                    f"n_way={n_way} is impossible within one alphabet: the largest alphabet here "
                    f"has {max(len(g) for g in groups)} classes"
                    f"{' (with rotations)' if rotations else ''}."
                )
        else:
            self._groups = [np.arange(len(self.classes))]
            if n_way > len(self.classes):
                raise ValueError(
                    f"n_way={n_way} is more than the {len(self.classes)} classes available "
                    f"({len(np.unique(self.classes[:, 0]))} characters"
                    f"{' x 4 rotations' if rotations else ''})."
                )
        self.data, self.n_way, self.k_shot, self.n_query = data, n_way, k_shot, n_query
        self.rotations, self.within_alphabet = rotations, within_alphabet

    def __repr__(self) -> str:
        return (f"OmniglotEpisodes({self.n_way}-way {self.k_shot}-shot {self.n_query}-query, "
                f"{len(self.classes)} classes, rotations={self.rotations}, "
                f"within_alphabet={self.within_alphabet})")

    def sample(self, seed: Seed = None) -> Episode:
        """Draw one episode. Images are float32 ``(n, size, size, 1)`` in [0, 1], ink = 1."""
        rng = as_rng(seed)
        group = self._groups[rng.integers(len(self._groups))]
        chosen = self.classes[rng.choice(group, size=self.n_way, replace=False)]
        n_draw = self.k_shot + self.n_query
        drawings = np.stack([rng.permutation(DRAWINGS_PER_CHARACTER)[:n_draw]
                             for _ in range(self.n_way)])
        images = self.data.images[chosen[:, :1], drawings]  # (n_way, n_draw, size, size)
        images = np.stack([np.rot90(img, k, axes=(-2, -1)) for img, k in zip(images, chosen[:, 1])])
        images = images[..., None].astype(np.float32) / 255.0
        labels = np.broadcast_to(np.arange(self.n_way)[:, None], (self.n_way, n_draw))
        size = images.shape[2:]
        return Episode(
            support_x=images[:, :self.k_shot].reshape(-1, *size),
            support_y=labels[:, :self.k_shot].reshape(-1).astype(np.int32),
            query_x=images[:, self.k_shot:].reshape(-1, *size),
            query_y=labels[:, self.k_shot:].reshape(-1).astype(np.int32),
            info={"classes": chosen[:, 0], "rotations": chosen[:, 1], "drawings": drawings},
        )


class LabelledImageEpisodes(TaskFamily):
    """N-way K-shot episodes drawn from any array of labelled grey images.

    Defined in notebook ``07_applications_few_shot`` (Fashion-MNIST episodes). Same
    interface and conventions as :class:`OmniglotEpisodes`
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
        check_ints(n_way=n_way, k_shot=k_shot)
        check_int("n_query", n_query, minimum=0)
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
        rng = as_rng(seed)
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


class SinusoidTasks(TaskFamily):
    """Sinusoid regression tasks of Finn et al. 2017 (MAML, arXiv 1703.03400, section 5.1).

    A task is ``y = amplitude * sin(x - phase)`` with amplitude ~ U[0.1, 5], phase ~ U[0, pi];
    support and query inputs x ~ U[-5, 5], independently.
    """

    def __init__(self, k_shot: int = 10, n_query: int = 10, *, amplitude=(0.1, 5.0),
                 phase=(0.0, np.pi), x_range=(-5.0, 5.0)):
        check_ints(k_shot=k_shot, n_query=n_query)
        for name, (low, high) in {"amplitude": amplitude, "phase": phase,
                                  "x_range": x_range}.items():
            if not low <= high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got "
                                 f"{(low, high)}.")
        self.k_shot, self.n_query = k_shot, n_query
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    def __repr__(self) -> str:
        return f"SinusoidTasks(k_shot={self.k_shot}, n_query={self.n_query})"

    @staticmethod
    def function(x, amplitude, phase):
        """The task's target function."""
        return amplitude * np.sin(x - phase)

    def sample(self, seed: Seed = None) -> Episode:
        """Draw one task; inputs and targets are float32 ``(n, 1)``."""
        rng = as_rng(seed)
        amplitude, phase = rng.uniform(*self.amplitude), rng.uniform(*self.phase)
        x = rng.uniform(*self.x_range, size=(self.k_shot + self.n_query, 1)).astype(np.float32)
        y = self.function(x, amplitude, phase).astype(np.float32)
        return Episode(x[:self.k_shot], y[:self.k_shot], x[self.k_shot:], y[self.k_shot:],
                       info={"amplitude": np.float32(amplitude), "phase": np.float32(phase)})


def episode_dataset(tasks: TaskFamily, meta_batch_size: int, seed: int = 0):
    """A ``tf.data.Dataset`` of meta-batches ``(support_x, support_y, query_x, query_y)``,
    each with a leading ``meta_batch_size`` axis, sampled on a background thread and prefetched
    so the training step does not wait for it. Deterministic for a given seed."""
    import tensorflow as tf

    first = tasks.sample(0)
    signature = tuple(tf.TensorSpec((meta_batch_size, *a.shape), tf.as_dtype(a.dtype))
                      for a in first.arrays())

    def generate():
        for batch in tasks.batches(meta_batch_size, seed):
            yield batch.arrays()

    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(
        tf.data.AUTOTUNE)


def check_episode(support_x, support_y, query_x, query_y=None, n_way: int | None = None) -> int:
    """Check one episode's arrays (no meta-batch axis) before a learner uses them; return its
    number of classes.

    Defined in notebook ``05_metric_based``. Raises ``ValueError`` with what is wrong: labels that
    are not integers ``0..n_way-1``, a class with no support example (a prototype or an attention
    target would not exist), support and query images of different shapes, or a label array whose
    length does not match its images. ``n_way`` defaults to ``max(support_y) + 1``.
    """
    support_x, query_x = np.asarray(support_x), np.asarray(query_x)
    support_y = np.asarray(support_y)
    if support_y.ndim != 1 or support_y.dtype.kind not in "iu":
        raise ValueError(f"support_y must be a 1-D array of integer labels, got shape "
                         f"{support_y.shape} and dtype {support_y.dtype}.")
    if len(support_y) != len(support_x) or len(support_x) == 0:
        raise ValueError(f"support_x has {len(support_x)} images but support_y has "
                         f"{len(support_y)} labels; both must have one entry per support example.")
    if support_x.shape[1:] != query_x.shape[1:]:
        raise ValueError(f"query images have shape {query_x.shape[1:]} but support images have "
                         f"shape {support_x.shape[1:]}; both must come from the same kind of data.")
    if support_y.min() < 0:
        raise ValueError(f"labels must be 0..n_way-1, got {support_y.min()} in support_y.")
    n_way = int(support_y.max()) + 1 if n_way is None else int(n_way)
    missing = sorted(set(range(n_way)) - set(support_y.tolist()))
    if missing or support_y.max() >= n_way:
        raise ValueError(
            f"every class 0..{n_way - 1} needs at least one support example; "
            + (f"class(es) {missing} have none" if missing else
               f"support_y holds label {support_y.max()}") + ".")
    if query_y is not None:
        query_y = np.asarray(query_y)
        if query_y.shape != (len(query_x),) or query_y.dtype.kind not in "iu":
            raise ValueError(f"query_y must hold one integer label per query image "
                             f"({len(query_x)}), got shape {query_y.shape} and dtype "
                             f"{query_y.dtype}.")
        if len(query_y) and (query_y.min() < 0 or query_y.max() >= n_way):
            raise ValueError(f"query labels must be in 0..{n_way - 1} (the support set's "
                             f"classes), got {query_y.min()}..{query_y.max()}.")
    return n_way
