"""Memory-augmented neural network (MANN): an LSTM that learns to store and look up each episode's
examples in an external memory, so a class seen once is recognised the next time.

Defined in notebook ``06_model_based``.

Santoro, Bartunov, Botvinick, Wierstra & Lillicrap 2016, "One-shot Learning with Memory-Augmented
Neural Networks", arXiv 1605.06065. Equation numbers below are those of the arXiv paper: (2)-(4)
content-based reads, (5) usage, (6) least-used weights, (7) write weights, (8) memory update.

An episode is a sequence: its ``n_way x n_instances`` drawings in random order, each presented
with the label of the *previous* step, ``(x_t, y_{t-1})``; the network predicts ``y_t`` at every
step. Labels are shuffled across episodes, so the only way to be right on a class's second
presentation is to have bound its first drawing to the label that arrived one step later.

Usage (the same shape as every learner of the course)::

    tasks = OmniglotEpisodes(data, split["train"], n_way=5, k_shot=10, n_query=0, rotations=True)
    mann = MemoryAugmentedNetwork(n_way=5, n_instances=10)
    history = meta_train(mann, tasks, n_steps=..., meta_batch_size=16)   # shuffles in-graph
    by_instance = evaluate(mann.score_by_instance, test_tasks, 600)       # 1st, 2nd, ... 10th
    heat_map = mann.trace(episode.support_x, episode.support_y, seed=0)  # read/write weights
"""

from __future__ import annotations

import contextlib
import hashlib

import keras
import numpy as np
import tensorflow as tf

from .checks import check_ints
from .learners import Learner

PAPER_INSTANCES = (1, 2, 3, 5, 10)  # the presentations reported in Santoro et al.'s Table 1


# -- episodes as sequences -------------------------------------------------------------------------
def episode_sequence(support_x, support_y, n_way: int | None = None, seed=None):
    """The sequence view of one episode (no meta-batch axis): ``(x, y, previous)``.

    ``x`` and ``y`` are the episode's images and labels in a random order (the sampler delivers
    them sorted by label); ``previous[t]`` is the one-hot label of step ``t - 1``, all zeros at
    ``t = 0``, which is what the network sees next to ``x[t]`` (Santoro et al., section 4 and
    Figure 1). ``n_way`` defaults to ``max(support_y) + 1``; ``seed`` (int or Generator) fixes the
    order.
    """
    support_x, support_y = np.asarray(support_x), np.asarray(support_y)
    if support_y.ndim != 1 or support_y.dtype.kind not in "iu" or len(support_y) == 0:
        raise ValueError(f"support_y must be a non-empty 1-D array of integer labels, got shape "
                         f"{support_y.shape} and dtype {support_y.dtype}.")
    if len(support_x) != len(support_y):
        raise ValueError(f"support_x has {len(support_x)} images but support_y has "
                         f"{len(support_y)} labels; a sequence needs one label per image.")
    n_way = int(support_y.max()) + 1 if n_way is None else n_way
    if support_y.min() < 0 or support_y.max() >= n_way:
        raise ValueError(f"labels must be in 0..{n_way - 1} (n_way={n_way}), got "
                         f"{support_y.min()}..{support_y.max()}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(len(support_y))
    x, y = support_x[order], support_y[order].astype(np.int32)
    previous = np.zeros((len(y), n_way), np.float32)
    previous[np.arange(1, len(y)), y[:-1]] = 1.0
    return x, y, previous


def presentation_index(labels):
    """How many times each step's class was shown before, plus one: ``1`` for a class's first
    presentation, ``2`` for its second... ``labels`` ``(..., T)`` integers; numpy in, numpy out."""
    labels = np.asarray(labels)
    one_hot = labels[..., :, None] == np.arange(labels.max() + 1)
    return np.take_along_axis(np.cumsum(one_hot, axis=-2), labels[..., None], -1)[..., 0]


def _episode_seed(support_x, support_y) -> int:
    """A shuffle seed that depends on the episode's content: the same episode is always
    presented in the same order, different episodes in different orders."""
    digest = hashlib.sha256(np.ascontiguousarray(support_x).tobytes()
                            + np.ascontiguousarray(support_y).tobytes()).digest()
    return int.from_bytes(digest[:8], "little")


# -- memory addressing (Santoro et al., section 3) ------------------------------------------------
def cosine_similarity(keys, memory, eps: float = 1e-8):
    """``K(k_t, M_t(i))`` of eq. 2 for every head and slot: keys ``(batch, heads, width)``, memory
    ``(batch, slots, width)`` -> ``(batch, heads, slots)``. ``eps`` keeps an all-zero (fresh or
    just erased) slot at similarity 0 with a finite gradient."""
    dot = tf.einsum("bhw,bsw->bhs", keys, memory)
    key_norm = tf.sqrt(tf.reduce_sum(tf.square(keys), -1) + eps)[:, :, None]
    slot_norm = tf.sqrt(tf.reduce_sum(tf.square(memory), -1) + eps)[:, None, :]
    return dot / (key_norm * slot_norm)


def read_weights(keys, memory):
    """Content-based read weights ``w^r_t`` of eq. 3: a softmax over slots of the cosine
    similarity (no key strength, unlike the NTM), ``(batch, heads, slots)``."""
    return tf.nn.softmax(cosine_similarity(keys, memory), axis=-1)


def least_used(usage, n: int):
    """``w^lu`` of eq. 6 as one one-hot row per head: ``(batch, n, slots)``, row ``i`` marks the
    slot with the ``i``-th smallest usage (ties go to the lower slot index). Their sum is the
    paper's ``w^lu`` (1 on the ``n`` least-used slots, ``n`` = number of reads)."""
    _, slots = tf.math.top_k(-usage, k=n)
    return tf.one_hot(slots, tf.shape(usage)[-1], dtype=usage.dtype)


def lru_write(memory, vectors, gates, previous_read_weights, previous_usage):
    """Least Recently Used Access write: returns ``(memory, write_weights)``.

    Each head ``i`` writes its vector (eq. 8: ``M_t(i) = M_{t-1}(i) + w^w_t(i) k_t``, the key
    ``k_t`` in the paper; a separate add vector with ``write="add"`` of the network) with
    ``w^w_t = sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}`` (eq. 7): into the slot it
    read last step (an update) or into a rarely used slot (a new memory), mixed by its gate
    ``sigma(alpha)`` (``gates``, ``(batch, heads)``, already squashed). Before writing, the least
    used slot (from ``w^u_{t-1}``) is set to zero (section 3.2).

    Args:
        memory: ``M_{t-1}``, ``(batch, slots, width)``.
        vectors: what each head writes, ``(batch, heads, width)``.
        gates: ``sigma(alpha)`` per head, ``(batch, heads)``.
        previous_read_weights: ``w^r_{t-1}``, ``(batch, heads, slots)``.
        previous_usage: ``w^u_{t-1}``, ``(batch, slots)``.
    """
    lu = least_used(previous_usage, vectors.shape[1])
    write_weights = (gates[..., None] * previous_read_weights
                     + (1.0 - gates[..., None]) * lu)
    memory = memory * (1.0 - lu[:, 0, :, None])  # erase the least-used slot
    return memory + tf.einsum("bhs,bhw->bsw", write_weights, vectors), write_weights


def update_usage(previous_usage, read_weights_t, write_weights_t, gamma: float):
    """Usage weights of eq. 5, ``w^u_t = gamma w^u_{t-1} + w^r_t + w^w_t`` (summed over heads):
    a slot's usage decays by ``gamma`` each step unless it is read or written."""
    return (gamma * previous_usage + tf.reduce_sum(read_weights_t, 1)
            + tf.reduce_sum(write_weights_t, 1))


# -- the learner ----------------------------------------------------------------------------------
class MemoryAugmentedNetwork(Learner):
    """Memory-augmented neural network with Least Recently Used Access (Santoro et al. 2016,
    arXiv 1605.06065), or, with ``memory=False``, the paper's plain LSTM baseline.

    Defined in notebook ``06_model_based``.

    At step ``t`` the LSTM controller reads ``[x_t, y_{t-1}, r_{t-1}]`` (pixels, previous label,
    last step's read vectors). With memory, its output ``h_t`` gives each read head a key
    ``k_t = tanh(W h_t + b)`` and a write gate ``sigma(alpha_t)``; the heads write with LRUA
    (:func:`lru_write`, eqs. 7-8), then read by content (:func:`read_weights`, eqs. 2-4), and
    usage is updated (:func:`update_usage`, eq. 5). What is written is the key itself, as eq. 8
    is printed (``write="key"``), or a separate add vector ``a_t = tanh(W_a h_t + b_a)`` per head
    (``write="add"``), as in the Neural Turing Machine the MANN builds on (Graves et al. 2014,
    arXiv 1410.5401) and in public reimplementations of the MANN. The logits of ``y_t`` are a linear function
    of ``[h_t, r_t]``. Without memory, the LSTM sees ``[x_t, y_{t-1}]`` and the logits come from
    ``h_t`` alone; everything else (training, scoring, checks) is the same code.

    The memory starts at zero every episode (the paper wipes it between episodes); usage and
    read weights start at zero too, so the first writes go to slots ``0..read_heads-1``.

    Args:
        n_way: classes per episode (the paper: 5).
        n_instances: drawings per class, so sequences are ``n_way * n_instances`` steps long
            (the paper: 10, sequences of 50). Sample episodes with
            ``OmniglotEpisodes(..., k_shot=n_instances, n_query=0)``.
        image_size: images are resized (area averaging) to ``image_size x image_size`` and
            flattened (the paper: 20x20, from Omniglot's 105x105; the course's images are 28x28).
        controller_units: LSTM units (paper: 200).
        memory_slots, memory_width: memory of ``slots x width`` (paper: 128 x 40).
        read_heads: read heads, one write per head (paper: 4).
        gamma: usage decay of eq. 5 (paper: 0.95).
        memory: ``False`` for the LSTM baseline without external memory.
        write: ``"key"`` (eq. 8 as printed: each head writes the key it reads with) or ``"add"``
            (each head writes a separate add vector). The key must serve two purposes at once:
            at step ``t`` it looks up the drawing ``x_t``, while what should be stored is
            ``x_{t-1}`` bound to the label ``y_{t-1}`` that has just arrived. In our runs the
            ``"key"`` network learned to ignore its memory (ablating the reads costs nothing),
            the ``"add"`` network to rely on it (notebook ``06_model_based``).
        meta_lr: learning rate of the default optimiser, ``keras.optimizers.Adam`` (default 1e-3, as
            in the public reimplementations; with RMSprop 1e-4 our 5-way MANN and LSTM stayed
            on the label-elimination plateau, about 31 % at the 2nd presentation, for all of
            6,250 meta-steps, whereas Adam 1e-3 left it after about 3,500).
        meta_optimizer: a Keras optimizer to use instead (e.g. ``keras.optimizers.RMSprop(1e-4)``).
        shuffle_seed: seed of the in-graph shuffles of :meth:`train_step`.

    Example::

        keras.utils.set_random_seed(0)
        mann = MemoryAugmentedNetwork(n_way=5, n_instances=10)
        lstm = MemoryAugmentedNetwork(n_way=5, n_instances=10, memory=False)
        tasks = OmniglotEpisodes(data, split["train"], n_way=5, k_shot=10, n_query=0,
                                 rotations=True)
        meta_train(mann, tasks, n_steps=10_000, meta_batch_size=16, run_dir="runs/mann")
        evaluate(mann.score_by_instance, test_tasks, 600)[1]   # accuracy at 2nd instance
    """

    def __init__(self, n_way: int, n_instances: int = 10, *, image_size: int = 20,
                 controller_units: int = 200, memory_slots: int = 128, memory_width: int = 40,
                 read_heads: int = 4, gamma: float = 0.95, memory: bool = True,
                 write: str = "key", meta_lr: float = 1e-3, meta_optimizer=None,
                 shuffle_seed: int = 0):
        check_ints(n_way=n_way, n_instances=n_instances, image_size=image_size,
                   controller_units=controller_units, memory_slots=memory_slots,
                   memory_width=memory_width, read_heads=read_heads)
        if n_way < 2:
            raise ValueError(f"n_way must be at least 2 (one class needs no prediction), got "
                             f"{n_way}.")
        if write not in ("key", "add"):
            raise ValueError(f'write must be "key" (eq. 8: heads write their keys) or "add" '
                             f'(heads write separate add vectors), got {write!r}.')
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma (usage decay, eq. 5) must be in (0, 1], got {gamma!r}.")
        if memory and memory_slots < n_way + read_heads:
            raise ValueError(
                f"memory_slots={memory_slots} is too few for n_way={n_way} with "
                f"read_heads={read_heads}: at every step LRUA erases the least-used slot and "
                f"writes new memories into the {read_heads} least-used slots (one per head), so "
                f"keeping one slot per class needs at least n_way + read_heads = "
                f"{n_way + read_heads} slots; with fewer, some class's slot is among them and is "
                f"overwritten whatever the network learns. (The sequence length "
                f"n_way * n_instances = {n_way * n_instances} may exceed the number of slots: "
                f"later instances of a class can update the slot read last step, the "
                f"sigma(alpha) w^r_(t-1) term of eq. 7.)")
        self.n_way, self.n_instances, self.image_size = n_way, n_instances, image_size
        self.sequence_length = n_way * n_instances
        self.controller_units, self.memory_slots = controller_units, memory_slots
        self.memory_width, self.read_heads = memory_width, read_heads
        self.gamma, self.memory, self.write = float(gamma), bool(memory), write
        self._build_layers()
        self.meta_optimizer = meta_optimizer or keras.optimizers.Adam(meta_lr)
        self.meta_optimizer.build(self._trainable())
        self.shuffle_seed = int(shuffle_seed)
        self._uniform_reads = False
        self.shuffle_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="shuffle_step")
        self._forward_fn = tf.function(self._forward, reduce_retracing=True)

    def __repr__(self) -> str:
        kind = (f"memory {self.memory_slots}x{self.memory_width}, {self.read_heads} heads "
                f"writing {'keys' if self.write == 'key' else 'add vectors'}"
                if self.memory else "no memory (LSTM baseline)")
        return (f"MemoryAugmentedNetwork({self.n_way}-way x {self.n_instances} instances, "
                f"LSTM {self.controller_units}, {kind})")

    # -- weights ----------------------------------------------------------------------------------
    def _build_layers(self):
        units, reads = self.controller_units, self.read_heads * self.memory_width
        gate_init = keras.initializers.Constant(
            np.r_[np.zeros(units), np.ones(units), np.zeros(2 * units)])  # forget bias 1
        # LSTM gates [input, forget, cell, output]: the input part of every step at once, outside
        # the recurrence, and the recurrent part (h_{t-1}, r_{t-1}) inside it.
        self.input_gates = keras.layers.Dense(4 * units, bias_initializer=gate_init,
                                              name="input_gates")
        self.input_gates.build((None, self.image_size ** 2 + self.n_way))
        self.recurrent_gates = keras.layers.Dense(4 * units, use_bias=False,
                                                  name="recurrent_gates")
        self.recurrent_gates.build((None, units + (reads if self.memory else 0)))
        self.output_layer = keras.layers.Dense(self.n_way, name="output")
        self.output_layer.build((None, units + (reads if self.memory else 0)))
        self.layers = {"input_gates": self.input_gates, "recurrent_gates": self.recurrent_gates,
                       "output": self.output_layer}
        if self.memory:  # per head: a key (width) and a write gate alpha (1)
            self.heads = keras.layers.Dense(self.read_heads * (self.memory_width + 1),
                                            name="heads")
            self.heads.build((None, units))
            self.layers["heads"] = self.heads
            if self.write == "add":  # per head: the vector written, apart from the key
                self.adds = keras.layers.Dense(self.read_heads * self.memory_width, name="adds")
                self.adds.build((None, units))
                self.layers["adds"] = self.adds

    def _trainable(self) -> list:
        return [v for layer in self.layers.values() for v in layer.trainable_variables]

    @property
    def meta_variables(self) -> list:
        """Everything learned across episodes: the controller's, heads' and output weights (the
        memory itself is per-episode state, not a variable)."""
        return [v for layer in self.layers.values() for v in layer.weights]

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume training (also the shuffle counter, so a resumed
        run does not replay the same episode orders)."""
        return {**self.layers, "optimizer": self.meta_optimizer, "shuffle_step": self.shuffle_step}

    # -- the recurrence ---------------------------------------------------------------------------
    def _initial_state(self, batch):
        zeros = lambda *shape: tf.zeros((batch, *shape))  # noqa: E731
        h, c = zeros(self.controller_units), zeros(self.controller_units)
        if not self.memory:
            return (h, c)
        heads, slots = self.read_heads, self.memory_slots
        return (h, c, zeros(slots, self.memory_width), zeros(heads * self.memory_width),
                zeros(heads, slots), zeros(slots), zeros(heads, slots))

    def _step(self, state, gates_x):
        """One time step; ``state`` = ``(h, c)`` or ``(h, c, M, r, w^r, w^u, w^w)``."""
        if self.memory:
            h, c, memory, reads, w_read, usage, _ = state
            z = gates_x + self.recurrent_gates(tf.concat([h, reads], -1))
        else:
            h, c = state
            z = gates_x + self.recurrent_gates(h)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        if not self.memory:
            return (h, c)
        out = self.heads(h)
        n, width = self.read_heads, self.memory_width
        keys = tf.tanh(tf.reshape(out[:, :n * width], (-1, n, width)))
        gates = tf.sigmoid(out[:, n * width:])
        written = (keys if self.write == "key"
                   else tf.tanh(tf.reshape(self.adds(h), (-1, n, width))))
        memory, w_write = lru_write(memory, written, gates, w_read, usage)
        w_read = read_weights(keys, memory)
        if self._uniform_reads:  # the ablation of :meth:`uniform_reads`
            w_read = tf.ones_like(w_read) / self.memory_slots
        reads = tf.reshape(tf.einsum("bhs,bsw->bhw", w_read, memory), (-1, n * width))
        usage = update_usage(usage, w_read, w_write, self.gamma)
        return (h, c, memory, reads, w_read, usage, w_write)

    def _forward(self, x, y):
        """Logits ``(batch, T, n_way)`` of sequences already in presentation order, and the
        stacked states ``(T, batch, ...)``. ``x``: images ``(batch, T, H, W, 1)``, ``y`` labels."""
        batch, steps = tf.shape(x)[0], tf.shape(x)[1]
        images = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
        images = tf.image.resize(images, (self.image_size, self.image_size), method="area")
        pixels = tf.reshape(images, (batch, steps, self.image_size ** 2))
        previous = tf.one_hot(y[:, :-1], self.n_way)
        previous = tf.concat([tf.zeros_like(previous[:, :1]), previous], axis=1)
        gates_x = self.input_gates(tf.concat([pixels, previous], -1))
        states = tf.scan(self._step, tf.transpose(gates_x, (1, 0, 2)),
                         initializer=self._initial_state(batch))
        features = states[0] if not self.memory else tf.concat([states[0], states[3]], -1)
        logits = self.output_layer(tf.transpose(features, (1, 0, 2)))
        return logits, states

    @tf.function
    def _sequence_update(self, x, y):
        """The compiled update of :meth:`train_step` on checked sequences."""
        # The sampler sorts every episode by label: shuffle each one (stateless, so the order
        # depends only on shuffle_seed and the step counter).
        seed = tf.stack([tf.constant(self.shuffle_seed, tf.int64), self.shuffle_step])
        order = tf.argsort(tf.random.stateless_uniform(tf.shape(y), seed), axis=-1)
        x, y = tf.gather(x, order, batch_dims=1), tf.gather(y, order, batch_dims=1)
        self.shuffle_step.assign_add(1)
        with tf.GradientTape() as tape:
            logits, _ = self._forward(x, y)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        variables = self._trainable()
        self.meta_optimizer.apply(tape.gradient(loss, variables), variables)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
        one_hot = tf.one_hot(y, self.n_way)
        instance = tf.reduce_sum(tf.cumsum(one_hot, axis=1) * one_hot, -1)  # 1, 2, 3, ...
        second = tf.cast(tf.equal(instance, 2.0), tf.float32)
        return {"loss": loss, "accuracy": tf.reduce_mean(correct),
                "accuracy_2nd": tf.reduce_sum(correct * second) / tf.reduce_sum(second)}

    # -- checks -----------------------------------------------------------------------------------
    def _check_sequences(self, x, y, batched: bool):
        """ValueError unless ``y`` holds sequences of ``n_way * n_instances`` labels in
        ``0..n_way-1`` and ``x`` one grayscale image per label."""
        x_shape, y = tuple(x.shape), np.asarray(y)
        lead = "(meta_batch, sequence)" if batched else "(sequence,)"
        if y.ndim != (2 if batched else 1) or y.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers of shape {lead}, got shape {y.shape} and "
                             f"dtype {y.dtype}.")
        if y.shape[-1] != self.sequence_length:
            raise ValueError(
                f"sequences must have n_way * n_instances = {self.n_way} * {self.n_instances} = "
                f"{self.sequence_length} steps (this network's configuration), got "
                f"{y.shape[-1]}; sample episodes with k_shot={self.n_instances}, n_query=0.")
        if y.size and (y.min() < 0 or y.max() >= self.n_way):
            raise ValueError(f"labels must be in 0..{self.n_way - 1} for n_way={self.n_way}, got "
                             f"{y.min()}..{y.max()}.")
        if x_shape[:y.ndim] != y.shape or len(x_shape) != y.ndim + 3 or x_shape[-1] != 1:
            raise ValueError(f"images must have shape {y.shape + ('H', 'W', 1)} (one grayscale "
                             f"image per label), got {x_shape}.")

    # -- the course's protocol --------------------------------------------------------------------
    def train_step(self, support_x, support_y, query_x=None, query_y=None) -> dict:
        """One update on a meta-batch of episodes (leading axis), each shuffled into a sequence
        in-graph; returns the mean ``loss`` over all steps and episodes, ``accuracy`` over all
        steps, and ``accuracy_2nd`` on each class's second presentation. The query set must be
        empty (``n_query=0``): a MANN learns from the sequence, not from a held-out query."""
        if query_x is not None and len(query_x.shape) > 1 and query_x.shape[1] != 0:
            raise ValueError(f"a MANN episode is one sequence: sample with n_query=0 (got "
                             f"{query_x.shape[1]} query images per episode).")
        self._check_sequences(support_x, support_y, batched=True)
        return self._sequence_update(tf.convert_to_tensor(support_x, tf.float32),
                                     tf.convert_to_tensor(support_y, tf.int32))

    def predict_sequences(self, x, y):
        """Class probabilities ``(batch, T, n_way)`` of sequences already in presentation order
        (e.g. from :func:`episode_sequence`), with a leading batch axis."""
        self._check_sequences(x, y, batched=True)
        logits, _ = self._forward_fn(tf.convert_to_tensor(x, tf.float32),
                                     tf.convert_to_tensor(y, tf.int32))
        return tf.nn.softmax(logits).numpy()

    def score_episode(self, episode) -> float:
        """Accuracy over all steps of one episode (first presentations included, which can only
        be guessed), for :func:`metalearn_helpers.evaluation.evaluate`. The presentation order
        is a function of the episode, so scoring is deterministic."""
        x, y, _ = episode_sequence(episode.support_x, episode.support_y, self.n_way,
                                   _episode_seed(episode.support_x, episode.support_y))
        probabilities = self.predict_sequences(x[None], y[None])[0]
        return float(np.mean(np.argmax(probabilities, -1) == y))

    def score_by_instance(self, episode, instances=PAPER_INSTANCES) -> np.ndarray:
        """Accuracy on the ``k``-th presentation of a class, for each ``k`` in ``instances``, on
        one episode presented in its deterministic order: the score
        :func:`metalearn_helpers.evaluation.evaluate` averages into the paper's Table 1 (for
        every ``k``, the correctness of the ``n_way`` predictions made at a class's ``k``-th
        presentation)."""
        bad = [k for k in instances if not 1 <= k <= self.n_instances]
        if bad:
            raise ValueError(f"instances must be in 1..n_instances={self.n_instances}, got {bad}.")
        x, y, _ = episode_sequence(episode.support_x, episode.support_y, self.n_way,
                                   _episode_seed(episode.support_x, episode.support_y))
        correct = np.argmax(self.predict_sequences(x[None], y[None])[0], -1) == y
        index = presentation_index(y[None])[0]
        return np.array([correct[index == k].mean() for k in instances])

    @contextlib.contextmanager
    def uniform_reads(self):
        """An ablation: inside the ``with`` block every read weighs all slots equally, so each
        read vector is the mean of the memory and nothing is looked up by content (writes and
        everything else unchanged). If accuracy by presentation does not drop, the network does
        not use what its content reads retrieve::

            with mann.uniform_reads():
                ablated = evaluate(mann.score_by_instance, test_tasks, 600)
        """
        if not self.memory:
            raise ValueError("the LSTM baseline (memory=False) has no reads to ablate.")
        self._uniform_reads = True
        self._forward_fn = tf.function(self._forward, reduce_retracing=True)
        try:
            yield self
        finally:
            self._uniform_reads = False
            self._forward_fn = tf.function(self._forward, reduce_retracing=True)

    def trace(self, support_x, support_y, seed=None) -> dict:
        """What happens inside one episode, step by step, for plots (numpy arrays, ``T`` steps):

        ``x``, ``labels`` (the presentation order), ``instance`` (1 for a class's first
        presentation...), ``probabilities`` ``(T, n_way)``, ``predictions``, ``correct``; with
        memory also ``read_weights`` ``(T, heads, slots)``, ``write_weights`` ``(T, slots)``
        (summed over heads), ``write_weights_per_head`` ``(T, heads, slots)``, ``usage``
        ``(T, slots)`` and ``memory`` ``(T, slots, width)`` after each step.
        """
        x, y, _ = episode_sequence(support_x, support_y, self.n_way, seed)
        self._check_sequences(x, y, batched=False)
        logits, states = self._forward_fn(tf.convert_to_tensor(x[None], tf.float32),
                                          tf.convert_to_tensor(y[None], tf.int32))
        probabilities = tf.nn.softmax(logits)[0].numpy()
        result = dict(x=x, labels=y, instance=presentation_index(y), probabilities=probabilities,
                      predictions=np.argmax(probabilities, -1))
        result["correct"] = result["predictions"] == y
        if self.memory:
            memory, _, w_read, usage, w_write = (s[:, 0].numpy() for s in states[2:])
            result.update(read_weights=w_read, write_weights=w_write.sum(1),
                          write_weights_per_head=w_write, usage=usage, memory=memory)
        return result
