"""Matching Networks: classify a query by attention over the labelled support examples.

Defined in notebook ``05_metric_based``.

Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra 2016, "Matching Networks for One Shot
Learning", arXiv 1606.04080.

Usage (the same shape as every learner of the course)::

    matching = MatchingNetwork(conv4(None, downsample="maxpool", norm="running"))
    metrics = matching.train_step(support_x, support_y, query_x, query_y)  # one episode per step
    log_probs = matching.logits(episode.support_x, episode.support_y, episode.query_x)
"""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from .checks import check_built_model, check_int
from .episodes import check_episode
from .learners import EpisodicClassifier, halving_adam


def cosine_similarities(queries, support):
    """Cosine similarities ``(..., n_query, n_support)`` between every query embedding
    ``(..., n_query, dim)`` and every support embedding ``(..., n_support, dim)``: the ``c`` of
    Vinyals et al.'s eq. 2."""
    if queries.shape[-1] != support.shape[-1]:
        raise ValueError(f"query embeddings have {queries.shape[-1]} dimensions but support "
                         f"embeddings have {support.shape[-1]}: they must come from the same "
                         f"embedding.")
    return tf.einsum("...qd,...sd->...qs", tf.math.l2_normalize(queries, axis=-1),
                     tf.math.l2_normalize(support, axis=-1))


def attention_class_probabilities(attention, support_labels, n_way):
    """``P(y | x, S) = sum_i a(x, x_i) y_i`` (Vinyals et al., eq. 1): the attention weights
    ``(..., n_query, n_support)`` summed over the support examples of each class, with integer
    ``support_labels`` ``(..., n_support)``; returns ``(..., n_query, n_way)``.

    With one attention target per class (class means) and ``attention = softmax(-squared
    distances)``, this is exactly a Prototypical Network's prediction."""
    one_hot = tf.one_hot(support_labels, n_way, dtype=attention.dtype)
    return tf.einsum("...qs,...sn->...qn", attention, one_hot)


def class_log_probabilities(attention_logits, support_labels, n_way):
    """``log P(y | x, S)`` ``(..., n_query, n_way)`` of eq. 1 with ``a = softmax(attention_logits)``
    over the support set, computed without leaving log space: for each class, the log-sum-exp of
    the logits of its support examples, minus the log-sum-exp of all of them. Every class needs a
    support example (else its log-probability is ``-inf``)."""
    in_class = tf.cast(tf.one_hot(support_labels, n_way), tf.bool)
    masked = tf.where(in_class[..., None, :, :], attention_logits[..., None],
                      tf.constant(-np.inf, attention_logits.dtype))  # (..., query, support, way)
    return (tf.reduce_logsumexp(masked, axis=-2)
            - tf.reduce_logsumexp(attention_logits, axis=-1, keepdims=True))


class MatchingNetwork(EpisodicClassifier):
    """Matching Networks (Vinyals et al. 2016, arXiv 1606.04080).

    A query's class distribution is the attention-weighted sum of the support labels (eq. 1),
    with attention a softmax over the support set of the cosine similarity between the query's
    embedding ``f(x)`` and each support embedding ``g(x_i)`` (eq. 2). Training minimises the
    negative log-probability of the query's class, episode after episode; at test time nothing
    is adapted: a new support set is simply attended to.

    Scale of the attention logits: cosines lie in [-1, 1], so a softmax over them stays nearly
    flat. The paper does not say how it avoids this; the authors' code normalised only the
    support embeddings (confirmed by Vinyals by e-mail, github.com/zergylord/oneshot issue 2;
    "undocumented in the paper, but *very important*" in the Meta-Dataset code, Triantafillou et
    al. 2020, arXiv 1903.03096). We do the same, written as ``|f(x)| * cosine``: the length of the
    query embedding acts as a learned inverse temperature (about 10 for a fresh 64-d Conv-4).

    Full context embeddings (``fce=True``, the paper's appendix): ``g`` runs a bidirectional LSTM
    over the support embeddings, ``g(x_i) = h_fwd_i + h_bwd_i + g'(x_i)`` (A.2), so the support
    set's order matters; ``f`` is an LSTM that, for ``fce_processing_steps`` steps, reads the
    support set by content attention, ``h_k = LSTM(f'(x), [h_(k-1), r_(k-1)], c_(k-1)) + f'(x)``
    with ``r_(k-1) = sum_i softmax(h_(k-1) . g(x_i)) g(x_i)`` (A.1), starting from ``h_0 = f'(x)``
    and ``c_0 = 0``. Both LSTMs have as many units as the embedding has dimensions. The paper does
    not give the number of steps ``K``; by default it is the number of support examples, as in
    the implementation of Chen et al. 2019 (arXiv 1904.04232).

    Batch normalisation as in :class:`metalearn_helpers.protonet.ProtoNet`: support and query
    images of a training episode are embedded as one batch with batch statistics, test episodes
    with the running averages (``conv4(..., norm="running")``).

    Args:
        embedding: a built ``keras.Model`` from images to vectors (``f'`` = ``g'``), e.g.
            ``conv4(None, downsample="maxpool", norm="running")`` (the paper's 64-d Conv-4).
        fce: use full context embeddings.
        fce_processing_steps: ``K``, the attention LSTM's reads (default: one per support
            example).
        meta_lr, halve_every: Adam from 1e-3 halved every 2,000 episodes, the schedule of
            :class:`~metalearn_helpers.protonet.ProtoNet` (the paper gives none; ignored when
            ``meta_optimizer`` is given).
        meta_optimizer: a Keras optimizer to use instead.

    Example::

        matching = MatchingNetwork(conv4(None, downsample="maxpool", norm="running"), fce=True)
        for batch in tasks.batches(meta_batch_size=1, seed=0):
            matching.train_step(*batch.arrays())
        weights = matching.attention(episode.support_x, episode.support_y, episode.query_x)
    """

    def __init__(self, embedding, fce: bool = False, fce_processing_steps: int | None = None,
                 meta_lr: float = 1e-3, halve_every: int = 2000, meta_optimizer=None):
        check_built_model("embedding", embedding)
        if len(embedding.output_shape) != 2 or embedding.output_shape[-1] is None:
            raise ValueError(f"embedding must map each image to a vector (batch, dim), but its "
                             f"output shape is {embedding.output_shape}.")
        if fce_processing_steps is not None:
            check_int("fce_processing_steps", fce_processing_steps)
        self.embedding, self.fce = embedding, bool(fce)
        self.meta_optimizer = meta_optimizer or halving_adam(meta_lr, halve_every)
        self.fce_processing_steps = fce_processing_steps
        self.fce_layers = {}
        if self.fce:
            dim = embedding.output_shape[-1]
            self.fce_layers = {
                "support_lstm": keras.layers.Bidirectional(
                    keras.layers.LSTM(dim, return_sequences=True), merge_mode="sum",
                    name="fce_support_lstm"),
                "query_lstm": keras.layers.LSTMCell(dim, name="fce_query_lstm"),
            }
            self.fce_layers["support_lstm"].build((None, None, dim))
            self.fce_layers["query_lstm"].build((None, 2 * dim))
        self.meta_optimizer.build(self.trained_variables())
        self._logits = tf.function(self.episode_logits, reduce_retracing=True)
        self._attention = tf.function(self._episode_attention, reduce_retracing=True)

    def trained_variables(self) -> list:
        return self.embedding.trainable_variables + [
            v for layer in self.fce_layers.values() for v in layer.trainable_variables]

    @property
    def meta_variables(self) -> list:
        """Everything learned across episodes: the embedding's weights with its batch-norm running
        averages, and the full context embedding LSTMs' weights (what
        :func:`metalearn_helpers.experiments.save_weights` stores)."""
        return list(self.embedding.weights) + [
            v for layer in self.fce_layers.values() for v in layer.weights]

    # -- the model ----------------------------------------------------------------------------
    def _embed(self, support_x, query_x, training):
        """``g(S)`` ``(batch, n_support, dim)`` and ``f(queries)`` ``(batch, n_query, dim)`` of a
        meta-batch; support and query go through the embedding as one batch."""
        images = tf.concat([support_x, query_x], 1)
        n_support, shape = tf.shape(support_x)[1], tf.shape(images)
        embedded = self.embedding(tf.reshape(images, tf.concat([[-1], shape[2:]], 0)),
                                  training=training)
        embedded = tf.reshape(embedded, [shape[0], shape[1], self.embedding.output_shape[-1]])
        support, queries = embedded[:, :n_support], embedded[:, n_support:]
        if self.fce:
            support = support + self.fce_layers["support_lstm"](support)
            queries = self._read_support(queries, support)
        return support, queries

    def _read_support(self, queries, support):
        """The attention LSTM ``f(x, S) = attLSTM(f'(x), g(S), K)`` (appendix A.1)."""
        shape, dim = tf.shape(queries), queries.shape[-1]
        f = tf.reshape(queries, [-1, dim])
        h, c = f, tf.zeros_like(f)
        for _ in tf.range(self.fce_processing_steps or tf.shape(support)[1]):
            attention = tf.nn.softmax(tf.einsum("bqd,bsd->bqs", tf.reshape(h, shape), support))
            read = tf.reshape(tf.einsum("bqs,bsd->bqd", attention, support), [-1, dim])
            h_hat, (_, c) = self.fce_layers["query_lstm"](tf.concat([f, read], -1), [h, c])
            h = h_hat + f
        return tf.reshape(h, shape)

    def _attention_logits(self, support_x, query_x, training):
        """Attention logits ``(batch, n_query, n_support)``: ``|f(x)|`` times the cosine (the
        authors' code normalised only the support embeddings; see the class docstring)."""
        support, queries = self._embed(support_x, query_x, training)
        # + 1e-12: a finite gradient even for an all-zero embedding (possible after ReLU)
        length = tf.sqrt(tf.reduce_sum(tf.square(queries), -1, keepdims=True) + 1e-12)
        return length * cosine_similarities(queries, support)

    def episode_logits(self, support_x, support_y, query_x, n_way, training=False):
        """Log-probabilities ``(batch, n_query, n_way)`` of a meta-batch's queries."""
        logits = self._attention_logits(support_x, query_x, training)
        return class_log_probabilities(logits, support_y, n_way)

    def _episode_attention(self, support_x, query_x):
        return tf.nn.softmax(self._attention_logits(support_x, query_x, training=False))

    # -- one test episode ---------------------------------------------------------------------
    @staticmethod
    def _as_batch(support_x, support_y, query_x):
        """One episode's arrays as a meta-batch of one."""
        return (tf.convert_to_tensor(support_x, tf.float32)[None],
                tf.convert_to_tensor(support_y, tf.int32)[None],
                tf.convert_to_tensor(query_x, tf.float32)[None])

    def logits(self, support_x, support_y, query_x):
        """Log-probabilities ``(n_query, n_way)`` of one episode's queries (no meta-batch axis),
        at test time; checks the episode first (every class needs a support example)."""
        n_way = check_episode(support_x, support_y, query_x)
        return self._logits(*self._as_batch(support_x, support_y, query_x), tf.constant(n_way))[0]

    def attention(self, support_x, support_y, query_x) -> np.ndarray:
        """Attention weights ``a(x, x_i)`` ``(n_query, n_support)`` of one episode (each row sums
        to 1), at test time: how much each support example votes for each query's label."""
        check_episode(support_x, support_y, query_x)
        support_x, _, query_x = self._as_batch(support_x, support_y, query_x)
        return self._attention(support_x, query_x)[0].numpy()

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume training."""
        return {"embedding": self.embedding, "optimizer": self.meta_optimizer, **self.fce_layers}
