"""The baseline every few-shot method must beat: pre-train an ordinary classifier, then adapt to a
new task with its support set only.

Defined in notebook ``05_metric_based``.

Chen, Liu, Kira, Wang & Huang 2019, "A Closer Look at Few-shot Classification", arXiv 1904.04232
(Baseline and Baseline++; the details of fine-tuning follow their code,
github.com/wyharveychen/CloserLookFewShot).

Usage (the same shape as every learner of the course)::

    tasks = ClassBatches(data, splits["train"], batch_size=16)    # 4,112 classes with rotations
    baseline = FineTuneBaseline(conv4(None, downsample="maxpool", norm="running"),
                                tasks.n_classes, adaptation="linear")
    meta_train(baseline, tasks, n_steps=25_700, meta_batch_size=1)  # 5 epochs of pre-training
    logits = baseline.logits(episode.support_x, episode.support_y, episode.query_x)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .checks import check_built_model, check_choice, check_ints, check_positive
from .episodes import Episode, Seed, TaskFamily, as_rng, character_classes, check_episode
from .learners import Learner, task_loss_and_metric
from .omniglot import DRAWINGS_PER_CHARACTER, Omniglot
from .protonet import class_means, squared_distances

ADAPTATIONS = ("centroid", "linear")
DISTANCES = ("euclidean", "cosine")
HEADS = ("linear", "cosine")
# The other torch.optim.SGD settings of the paper's test-time fine-tuning (its code).
FINETUNE_MOMENTUM, FINETUNE_DAMPENING, FINETUNE_WEIGHT_DECAY = 0.9, 0.9, 1e-3


class ClassBatches(TaskFamily):
    """Mini-batches of ordinary supervised classification over all training classes, served as a
    task family, so that :func:`metalearn_helpers.training.meta_train` trains the baseline as it
    is.

    Pre-training is meta-training on one big task: where an episodic learner sees a new small
    task at every step, the baseline sees the same task every time (classify among *all* training
    classes) and each "episode" is just its next mini-batch. Every (character, quarter turns) pair
    is a class with a global label that never changes: label ``i`` is ``classes[i]``, i.e. the
    ``i // 4``-th of ``characters`` turned ``i % 4`` times (with ``rotations``).

    An episode holds ``batch_size`` distinct images, drawn uniformly from all drawings of all
    classes, in ``support_x`` with their labels in ``support_y``, and an empty query set (shape
    ``(0, size, size, 1)``): nothing is evaluated after adaptation because nothing is adapted.
    Batches are drawn independently (not in epochs); ``len(classes) * 20 / batch_size`` of them
    are one epoch's worth.

    Args:
        data: loaded Omniglot (:func:`metalearn_helpers.omniglot.load_omniglot`).
        characters: indices of the training characters (e.g. ``split_characters(data)["train"]``,
            Chen et al.'s 4,112 base classes with rotations); default all.
        batch_size: images per mini-batch (Chen et al.: 16).
        rotations: each character in each of 4 quarter-turn rotations is its own class.

    Example::

        tasks = ClassBatches(data, split_characters(data)["train"], batch_size=16)
        episode = tasks.sample(0)   # support_x (16, 28, 28, 1), support_y in 0..4111
    """

    def __init__(self, data: Omniglot, characters=None, *, batch_size: int,
                 rotations: bool = True):
        check_ints(batch_size=batch_size)
        self.classes = character_classes(data, characters, rotations)
        if batch_size > len(self.classes) * DRAWINGS_PER_CHARACTER:
            raise ValueError(f"batch_size={batch_size} is more than the "
                             f"{len(self.classes) * DRAWINGS_PER_CHARACTER} images of the "
                             f"{len(self.classes)} classes.")
        self.data, self.batch_size, self.rotations = data, batch_size, rotations

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"ClassBatches(batch_size={self.batch_size}, {self.n_classes} classes, "
                f"rotations={self.rotations})")

    def sample(self, seed: Seed = None) -> Episode:
        """Draw one mini-batch; images are float32 ``(batch_size, size, size, 1)`` in [0, 1]."""
        rng = as_rng(seed)
        picked = rng.choice(self.n_classes * DRAWINGS_PER_CHARACTER, self.batch_size,
                            replace=False)
        labels, drawings = np.divmod(picked, DRAWINGS_PER_CHARACTER)
        characters, turns = self.classes[labels].T
        images = [np.rot90(self.data.images[c, d], k) for c, d, k in
                  zip(characters, drawings, turns)]
        images = np.stack(images)[..., None].astype(np.float32) / 255.0
        no_query = np.zeros((0, *images.shape[1:]), np.float32)
        return Episode(images, labels.astype(np.int32), no_query, np.zeros(0, np.int32),
                       info={"classes": characters, "rotations": turns, "drawings": drawings})


def cosine_scale(n_classes):
    """Chen et al.'s fixed scale of cosine logits: 2 for up to 200 classes, 10 beyond (their code:
    "in omniglot, a larger scale factor is required to handle >1000 output classes")."""
    return tf.where(tf.convert_to_tensor(n_classes) <= 200, 2.0, 10.0)


def cosine_logits(embeddings, kernel, norms):
    """Baseline++'s logits ``(n, k)``: ``cosine_scale(k) * norms * cos(embedding, kernel column)``
    for embeddings ``(n, dim)``, one column of ``kernel`` ``(dim, k)`` per class and a learned
    norm per class (the weight normalisation of Chen et al.'s code)."""
    cosines = tf.linalg.l2_normalize(embeddings, -1) @ tf.linalg.l2_normalize(kernel, 0)
    return cosine_scale(tf.shape(kernel)[-1]) * cosines * norms


class CosineClassifier(keras.layers.Layer):
    """Baseline++'s classifier (Chen et al. 2019, section 3.2): :func:`cosine_logits` with a kernel
    initialised as PyTorch's ``nn.Linear`` and norms starting at the kernel columns' norms."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        bound = 1.0 / np.sqrt(input_shape[-1])
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer=keras.initializers.RandomUniform(-bound, bound))
        self.norms = self.add_weight(shape=(self.units,), name="norms", initializer="ones")
        self.norms.assign(tf.norm(self.kernel, axis=0))

    def call(self, x):
        return cosine_logits(x, self.kernel, self.norms)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class FineTuneBaseline(Learner):
    """Baseline and Baseline++ of Chen et al. 2019 (arXiv 1904.04232).

    Pre-training: an ordinary classifier (``embedding`` + a head over all ``n_classes`` training
    classes) trained with cross-entropy on :class:`ClassBatches` mini-batches (``train_step``
    folds the meta-batch axis into the batch). ``head="linear"`` is Baseline (a ``Dense`` layer),
    ``head="cosine"`` is Baseline++ (:class:`CosineClassifier`).

    Test time: the embedding is frozen (batch norm uses its running averages) and only the support
    set of the new task is used, in one of two ways (``adaptation``, an attribute that may be
    changed at any time, e.g. to compare both on one pre-trained embedding):

    - ``"centroid"``: nearest class mean of the support embeddings, by squared Euclidean distance
      or, with ``distance="cosine"``, by cosine similarity (scaled by :func:`cosine_scale`). Not
      in Chen et al.; it is the test-time classifier of SimpleShot (Wang et al. 2019, arXiv
      1911.04623) and of Meta-Baseline's first stage (Chen et al. 2021, arXiv 2003.04390): a
      Prototypical Network's rule on an embedding that was not trained episodically.
    - ``"linear"``: Chen et al.'s fine-tuning, a fresh head of the pre-training kind trained on
      the support embeddings as their code does: ``finetune_epochs`` passes over the support set
      in shuffled mini-batches of ``finetune_batch_size``, SGD with learning rate ``finetune_lr``,
      momentum 0.9 (dampening 0.9) and weight decay 1e-3 (the paper's text says "100
      iterations"; its code runs 100 epochs: 200 updates at 5-way 1-shot, 700 at 5-way 5-shot).
      It runs as one graph loop on the precomputed embeddings (:meth:`fine_tune`) and depends
      only on the episode and ``seed``.

    Args:
        embedding: a built ``keras.Model`` from images to vectors, e.g.
            ``conv4(None, downsample="maxpool", norm="running")`` (64-d Conv-4).
        n_classes: number of training classes (``ClassBatches.n_classes``).
        adaptation: ``"centroid"`` or ``"linear"``.
        distance: ``"euclidean"`` or ``"cosine"``, for ``"centroid"``.
        head: ``"linear"`` (Baseline) or ``"cosine"`` (Baseline++).
        meta_lr: pre-training Adam learning rate (Chen et al.: PyTorch's default, 1e-3).
        meta_optimizer: a Keras optimizer to use instead.
        finetune_epochs, finetune_lr, finetune_batch_size: test-time fine-tuning (100, 0.01, 4).
        seed: of the fresh heads' initialisation and mini-batch order.

    Example::

        baseline = FineTuneBaseline(conv4(None, downsample="maxpool", norm="running"), 4112)
        baseline.train_step(support_x, support_y, query_x, query_y)  # a batch of ClassBatches
        baseline.adaptation = "linear"
        accuracy = baseline.score_episode(test_tasks.sample(0))
    """

    def __init__(self, embedding, n_classes: int, adaptation: str = "centroid", *,
                 distance: str = "euclidean", head: str = "linear", meta_lr: float = 1e-3,
                 meta_optimizer=None, finetune_epochs: int = 100, finetune_lr: float = 0.01,
                 finetune_batch_size: int = 4, seed: int = 0):
        check_built_model("embedding", embedding)
        if len(embedding.output_shape) != 2:
            raise ValueError(f"embedding must output vectors (batch, dim), got shape "
                             f"{embedding.output_shape}.")
        check_ints(n_classes=n_classes, finetune_epochs=finetune_epochs,
                            finetune_batch_size=finetune_batch_size)
        check_positive("finetune_lr", finetune_lr)
        check_choice("adaptation", adaptation, ADAPTATIONS)
        check_choice("distance", distance, DISTANCES)
        check_choice("head", head, HEADS)
        self.embedding, self.adaptation, self.distance, self.head_type = (
            embedding, adaptation, distance, head)
        self.head = (keras.layers.Dense(n_classes, name="head") if head == "linear"
                     else CosineClassifier(n_classes, name="head"))
        self.head.build(embedding.output_shape)
        self.finetune_epochs, self.finetune_lr = int(finetune_epochs), float(finetune_lr)
        self.finetune_batch_size, self.seed = int(finetune_batch_size), int(seed)
        self.meta_optimizer = meta_optimizer or keras.optimizers.Adam(meta_lr)
        self.meta_optimizer.build(self._trainable_variables())
        self.fine_tune = tf.function(self._fine_tune, reduce_retracing=True)
        self._logits = tf.function(self._episode_logits, reduce_retracing=True)

    @property
    def meta_variables(self) -> list:
        """Everything pre-training learns: embedding and head weights and the batch-norm running
        averages (what :func:`metalearn_helpers.experiments.save_weights` stores)."""
        return list(self.embedding.weights) + list(self.head.weights)

    def _trainable_variables(self) -> list:
        return list(self.embedding.trainable_variables) + list(self.head.trainable_variables)

    def meta_gradient(self, support_x, support_y, query_x, query_y):
        """Gradient of the cross-entropy over all images of the meta-batch's mini-batches, as one
        batch (the empty query set of :class:`ClassBatches` is ignored)."""
        images = tf.reshape(support_x, tf.concat([[-1], tf.shape(support_x)[-3:]], 0))
        with tf.GradientTape() as tape:
            logits = self.head(self.embedding(images, training=True))
            loss, accuracy = task_loss_and_metric("classification", tf.reshape(support_y, [-1]),
                                                  logits)
        variables = self._trainable_variables()
        return tape.gradient(loss, variables), variables, {"loss": loss, "accuracy": accuracy}

    # -- test time ------------------------------------------------------------------------------
    def _head_logits(self, embeddings, kernel, vector):
        """Logits of a head given as tensors: ``vector`` is the bias (linear) or norms (cosine)."""
        if self.head_type == "linear":
            return embeddings @ kernel + vector
        return cosine_logits(embeddings, kernel, vector)

    def _fresh_head(self, dim, n_way):
        """A new head initialised as PyTorch's ``nn.Linear`` (the paper's code): kernel and bias
        uniform in +-1/sqrt(dim); a cosine head's norms start at its columns' norms."""
        bound = tf.math.rsqrt(tf.cast(dim, tf.float32))
        kernel = tf.random.stateless_uniform([dim, n_way], [self.seed, 0], -bound, bound)
        if self.head_type == "linear":
            return kernel, tf.random.stateless_uniform([n_way], [self.seed, 1], -bound, bound)
        return kernel, tf.norm(kernel, axis=0)

    def _fine_tune(self, support, support_y, n_way):
        """Train a fresh ``n_way`` head on frozen support embeddings ``(n, dim)`` with the paper's
        mini-batch SGD (torch.optim.SGD's arithmetic); return its ``(kernel, vector)``."""
        n, size = tf.shape(support)[0], self.finetune_batch_size
        batches_per_epoch = (n + size - 1) // size
        orders = tf.argsort(tf.random.stateless_uniform([self.finetune_epochs, n],
                                                        [self.seed, 2]), axis=-1)
        params = list(self._fresh_head(tf.shape(support)[1], n_way))
        velocity = [tf.zeros_like(p) for p in params]
        for step in tf.range(self.finetune_epochs * batches_per_epoch):
            start = (step % batches_per_epoch) * size
            batch = orders[step // batches_per_epoch, start:start + size]  # last one may be short
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = self._head_logits(tf.gather(support, batch), *params)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    tf.gather(support_y, batch), logits))
            grads = [g + FINETUNE_WEIGHT_DECAY * p
                     for g, p in zip(tape.gradient(loss, params), params)]
            velocity = [tf.where(step == 0, g,  # torch starts the momentum buffer at the gradient
                                 FINETUNE_MOMENTUM * v + (1 - FINETUNE_DAMPENING) * g)
                        for v, g in zip(velocity, grads)]
            params = [p - self.finetune_lr * v for p, v in zip(params, velocity)]
        return params

    def _episode_logits(self, support_x, support_y, query_x, n_way, adaptation, distance):
        """Query logits of one episode; support and query are embedded in one batch, with the
        running averages of batch norm, so the queries do not influence one another."""
        n_support = tf.shape(support_x)[0]
        embedded = self.embedding(tf.concat([support_x, query_x], 0), training=False)
        support, query = embedded[:n_support], embedded[n_support:]
        if adaptation == "linear":
            return self._head_logits(query, *self._fine_tune(support, support_y, n_way))
        prototypes = class_means(support, support_y, n_way)
        if distance == "euclidean":
            return -squared_distances(query, prototypes)
        return cosine_logits(query, tf.transpose(prototypes), 1.0)  # scaled cosine similarities

    def logits(self, support_x, support_y, query_x):
        """Logits ``(n_query, n_way)`` of one episode's queries (no meta-batch axis) after adapting
        on its support set with ``self.adaptation``; checks the episode first (every class needs a
        support example)."""
        check_choice("adaptation", self.adaptation, ADAPTATIONS)
        check_choice("distance", self.distance, DISTANCES)
        n_way = check_episode(support_x, support_y, query_x)
        return self._logits(tf.convert_to_tensor(support_x, tf.float32),
                            tf.convert_to_tensor(support_y, tf.int32),
                            tf.convert_to_tensor(query_x, tf.float32), tf.constant(n_way),
                            self.adaptation, self.distance)

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume pre-training."""
        return {"embedding": self.embedding, "head": self.head, "optimizer": self.meta_optimizer}
