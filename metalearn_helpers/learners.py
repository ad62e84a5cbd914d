"""The learner protocol: what every algorithm of the course provides, and what learners share.

Defined in notebook ``03_maml_sinusoid`` (the protocol) and used by every algorithm notebook.
:func:`metalearn_helpers.training.meta_train` trains any :class:`Learner`,
:func:`metalearn_helpers.evaluation.evaluate` scores it, and
:func:`metalearn_helpers.records.save_weights` stores it. A learner provides:

``train_step(support_x, support_y, query_x, query_y) -> dict``
    One meta-update on a meta-batch (a leading task axis on every array), a method decorated with
    ``@tf.function`` (compiled once per learner). The dict holds ``"loss"`` and usually
    ``"accuracy"`` or ``"mse"``; :func:`~metalearn_helpers.training.meta_train` logs every entry.
``score_episode(episode) -> float``
    The query metric on one test episode after adapting on its support set. The default scores
    query accuracy from :meth:`Learner.logits`.
``meta_variables`` (property)
    What is learned across tasks and saved with the weights.
``trackables() -> dict``
    What a checkpoint must hold to resume training (models, optimizers, variables).
``meta_gradient(support_x, support_y, query_x, query_y) -> (grads, variables, metrics)``
    Optional: for a learner whose meta-update is one ``meta_optimizer`` step on the gradient of
    the meta-batch's mean loss over its tasks; its ``train_step`` is then
    :func:`apply_meta_gradient`, and :mod:`metalearn_helpers.distributed` can split the tasks
    of a meta-batch across devices (``meta_train(..., strategy=...)``).

The task loss and metric, and the meta-gradient averaged over a meta-batch, live here too: every
learner with an outer loop shares them.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .checks import check_choice
from .episodes import check_episode

TASK_TYPES = ("classification", "regression")
PROTOCOL = ("train_step", "score_episode", "meta_variables", "trackables")


class Learner:
    """Base class of the course's learners (see the module docstring for the protocol).

    Subclasses implement ``meta_variables``, ``trackables`` and either ``meta_gradient`` with a
    ``meta_optimizer`` (the inherited ``train_step`` applies it) or their own ``train_step``
    (decorated with ``@tf.function``); and either ``logits`` (classifiers scored on query
    accuracy) or their own ``score_episode``.
    """

    @tf.function
    def train_step(self, support_x, support_y, query_x, query_y) -> dict:
        """One meta-update from :meth:`meta_gradient` (:func:`apply_meta_gradient`)."""
        return apply_meta_gradient(self, support_x, support_y, query_x, query_y)

    @property
    def meta_variables(self) -> list:
        raise NotImplementedError

    def trackables(self) -> dict:
        raise NotImplementedError

    def meta_gradient(self, support_x, support_y, query_x, query_y) -> tuple[list, list, dict]:
        raise NotImplementedError

    def logits(self, support_x, support_y, query_x):
        raise NotImplementedError

    def score_episode(self, episode) -> float:
        """Query accuracy on one episode: ``argmax`` of :meth:`logits` against the labels."""
        check_episode(*episode.arrays())
        predictions = np.argmax(self.logits(*episode.arrays()[:3]), axis=-1)
        return float(np.mean(predictions == episode.query_y))


class EpisodicClassifier(Learner):
    """A learner that labels queries by comparing them with the episode's support set, trained by
    one optimizer step per meta-batch on the query cross-entropy: Prototypical Networks (Snell et
    al. 2017, arXiv 1703.05175) and Matching Networks (Vinyals et al. 2016, arXiv 1606.04080).

    Subclasses define ``episode_logits(support_x, support_y, query_x, n_way, training)`` (query
    logits, or log-probabilities, with any leading meta-batch axes), ``trained_variables()`` and
    ``self.meta_optimizer``.
    """

    def meta_gradient(self, support_x, support_y, query_x, query_y):
        """Gradient of the query cross-entropy over the meta-batch's episodes."""
        n_way = tf.reduce_max(support_y) + 1
        with tf.GradientTape() as tape:
            logits = self.episode_logits(support_x, support_y, query_x, n_way, training=True)
            loss, accuracy = task_loss_and_metric("classification", query_y, logits)
        variables = self.trained_variables()
        return tape.gradient(loss, variables), variables, {"loss": loss, "accuracy": accuracy}


def apply_meta_gradient(learner, support_x, support_y, query_x, query_y) -> dict:
    """One meta-update from ``learner.meta_gradient``: its ``meta_optimizer`` applies the
    gradients to the variables; returns the metrics. The ``train_step`` of every learner that has
    a ``meta_gradient`` (under a ``tf.distribute`` strategy, :mod:`metalearn_helpers.distributed`
    does the same per replica)."""
    grads, variables, metrics = learner.meta_gradient(support_x, support_y, query_x, query_y)
    learner.meta_optimizer.apply(grads, variables)
    return metrics


def halving_adam(learning_rate: float, halve_every: int):
    """Adam whose learning rate halves every ``halve_every`` updates, the schedule of Snell et
    al.'s Prototypical Networks (arXiv 1703.05175, section 3.1), also used for Matching Nets."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=halve_every, decay_rate=0.5, staircase=True)
    return keras.optimizers.Adam(schedule)


def check_learner(learner, needs=PROTOCOL) -> None:
    """Raise ``TypeError`` naming what is missing when ``learner`` lacks a part of the protocol
    that the caller ``needs`` (default: all of it; :func:`~metalearn_helpers.training.meta_train`
    needs ``train_step`` and ``trackables``)."""
    cls = type(learner)
    missing = [name for name in needs
               if getattr(cls, name, None) is None or getattr(cls, name) is getattr(Learner, name, 0)]
    if "score_episode" in missing and getattr(cls, "logits", Learner.logits) is not Learner.logits:
        missing.remove("score_episode")  # Learner's default scores the logits
    if "train_step" in missing and issubclass(cls, Learner) and \
            cls.meta_gradient is not Learner.meta_gradient:
        missing.remove("train_step")  # Learner's default applies the meta-gradient
    if missing:
        raise TypeError(
            f"{cls.__name__} does not follow the learner protocol of metalearn_helpers.learners: "
            f"it lacks {', '.join(missing)}. A learner needs train_step(support_x, support_y, "
            f"query_x, query_y) -> dict with 'loss' (or a Learner's meta_gradient), score_episode(episode) -> float (or "
            f"logits(support_x, support_y, query_x)), meta_variables and trackables().")


def task_loss_and_metric(task_type: str, y_true, y_pred):
    """Mean loss and the reported metric: cross-entropy and accuracy for classification (logits,
    integer labels), mean squared error (twice) for regression."""
    check_choice("task_type", task_type, TASK_TYPES)
    if task_type == "classification":
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=True))
        correct = tf.equal(tf.argmax(y_pred, axis=-1, output_type=tf.int32),
                           tf.cast(y_true, tf.int32))
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32))
    loss = tf.reduce_mean(tf.square(tf.cast(y_true, y_pred.dtype) - y_pred))
    return loss, loss


def metric_name(task_type: str) -> str:
    """The name :func:`task_loss_and_metric`'s metric is logged under."""
    return "accuracy" if task_type == "classification" else "mse"


def variable_tensors(variables) -> list:
    """Keras variables as the ``tf.Variable``s behind them (what ``tf.GradientTape`` watches)."""
    return [getattr(v, "value", v) for v in variables]


def mean_meta_gradient(query_loss, variables, support_x, support_y, query_x, query_y):
    """The meta-gradient of the mean of ``query_loss(support_x[i], ..., query_y[i]) -> (loss,
    metric)`` over the tasks of a meta-batch (leading axis), with respect to ``variables``.
    Returns ``(grads, mean loss, mean metric)``; shared by every learner with an outer loop.

    Tasks are looped inside the graph (``tf.range``), which keeps tracing short; each task's
    meta-gradient is accumulated so only one task's graph is alive at a time.
    """
    grads = [tf.zeros_like(v) for v in variables]
    loss_sum, metric_sum = tf.constant(0.0), tf.constant(0.0)
    n_tasks = tf.shape(support_x)[0]
    for i in tf.range(n_tasks):
        with tf.GradientTape() as tape:
            loss, metric = query_loss(support_x[i], support_y[i], query_x[i], query_y[i])
        grads = [a + b for a, b in zip(grads, tape.gradient(loss, variable_tensors(variables)))]
        loss_sum += tf.cast(loss, tf.float32)
        metric_sum += tf.cast(metric, tf.float32)
    n = tf.cast(n_tasks, tf.float32)
    return [g / tf.cast(n, g.dtype) for g in grads], loss_sum / n, metric_sum / n
