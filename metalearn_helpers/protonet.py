"""Prototypical Networks: classify a query by its distance to the mean embedding of each class.

Defined in notebook ``05_metric_based``.

Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot Learning", arXiv 1703.05175.

Usage (the same shape as every learner of the course)::

    protonet = ProtoNet(conv4(None, downsample="maxpool", norm="running"))
    metrics = protonet.train_step(support_x, support_y, query_x, query_y)  # one episode per step
    logits = protonet.logits(episode.support_x, episode.support_y, episode.query_x)
"""

from __future__ import annotations

import tensorflow as tf

from .checks import check_built_model
from .episodes import check_episode
from .learners import EpisodicClassifier, halving_adam


def class_means(embeddings, labels, n_way):
    """Prototypes: the mean embedding of each class, ``(..., n_way, dim)``, from ``embeddings``
    ``(..., n_support, dim)`` and integer ``labels`` ``(..., n_support)`` (Snell et al., eq. 1).
    Written as a one-hot weighted average so that any order of the support set works."""
    one_hot = tf.one_hot(labels, n_way, dtype=embeddings.dtype)
    sums = tf.einsum("...sn,...sd->...nd", one_hot, embeddings)
    return sums / tf.reduce_sum(one_hot, axis=-2)[..., None]


def squared_distances(queries, prototypes):
    """Squared Euclidean distances ``(..., n_query, n_way)`` between every query embedding
    ``(..., n_query, dim)`` and every prototype ``(..., n_way, dim)``."""
    if queries.shape[-1] != prototypes.shape[-1]:
        raise ValueError(f"query embeddings have {queries.shape[-1]} dimensions but prototypes "
                         f"have {prototypes.shape[-1]}: they must come from the same embedding.")
    return tf.reduce_sum(tf.square(queries[..., :, None, :] - prototypes[..., None, :, :]), -1)


class ProtoNet(EpisodicClassifier):
    """Prototypical Networks (Snell et al. 2017, arXiv 1703.05175).

    An embedding network maps images to vectors; a class is represented by the mean embedding of
    its support examples (its prototype), and a query is classified by a softmax over negative
    squared Euclidean distances to the prototypes. Training minimises the query cross-entropy,
    episode after episode; nothing is adapted at test time except computing the prototypes.

    Batch normalisation as in the paper's code: the support and query images of a training episode
    are embedded as one batch with batch statistics; at test time running averages are used
    (``conv4(..., norm="running")``), so a test query's prediction does not depend on the others.

    Args:
        embedding: a built ``keras.Model`` from images to vectors, e.g.
            ``conv4(None, downsample="maxpool", norm="running")`` (the paper's 64-d Conv-4).
        meta_lr, halve_every: the paper's schedule, Adam from 1e-3 halved every 2,000
            episodes (ignored when ``meta_optimizer`` is given).
        meta_optimizer: a Keras optimizer to use instead.
    """

    def __init__(self, embedding, meta_lr: float = 1e-3, halve_every: int = 2000,
                 meta_optimizer=None):
        check_built_model("embedding", embedding)
        self.embedding = embedding
        self.meta_optimizer = meta_optimizer or halving_adam(meta_lr, halve_every)
        self.meta_optimizer.build(embedding.trainable_variables)
        self._logits = tf.function(self.episode_logits, reduce_retracing=True)

    def trained_variables(self) -> list:
        return self.embedding.trainable_variables

    @property
    def meta_variables(self) -> list:
        """Everything learned across episodes: the embedding's weights and its batch-norm running
        averages (what :func:`metalearn_helpers.experiments.save_weights` stores)."""
        return list(self.embedding.weights)

    def episode_logits(self, support_x, support_y, query_x, n_way, training=False):
        """Negative squared distances of queries to prototypes; any leading (meta-batch) axes.
        Support and query go through the embedding as one batch, as in the paper's code."""
        n_support = tf.shape(support_x)[-4]
        lead, image = tf.shape(support_x)[:-4], tf.shape(support_x)[-3:]
        images = tf.concat([tf.reshape(support_x, tf.concat([[-1], image], 0)),
                            tf.reshape(query_x, tf.concat([[-1], image], 0))], 0)
        embedded = self.embedding(images, training=training)
        embedded = tf.reshape(embedded, tf.concat([lead, [-1, tf.shape(embedded)[-1]]], 0))
        prototypes = class_means(embedded[..., :n_support, :], support_y, n_way)
        return -squared_distances(embedded[..., n_support:, :], prototypes)

    def logits(self, support_x, support_y, query_x):
        """Logits ``(n_query, n_way)`` of one episode's queries (no meta-batch axis), at test
        time; checks the episode first (every class needs a support example)."""
        n_way = check_episode(support_x, support_y, query_x)
        return self._logits(tf.convert_to_tensor(support_x, tf.float32),
                            tf.convert_to_tensor(support_y, tf.int32),
                            tf.convert_to_tensor(query_x, tf.float32), tf.constant(n_way))

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume training."""
        return {"embedding": self.embedding, "optimizer": self.meta_optimizer}
