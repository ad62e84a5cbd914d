"""MAML, first-order MAML and Meta-SGD: meta-learning an initialisation (and learning rates).

Defined in notebooks ``03_maml_sinusoid`` (where the inner and outer loops are first written out
with nested ``tf.GradientTape``) and ``04_maml_omniglot``.

- MAML: Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
  Networks", arXiv 1703.03400.
- Meta-SGD: Li, Zhou, Chen & Li 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot
  Learning", arXiv 1707.09835.

The inner loop is explicit tensor arithmetic on the model's weights,
``theta' = theta - inner_lr * grad L_support(theta)``, evaluated with Keras 3's
``model.stateless_call`` so the adapted weights are ordinary tensors the outer
``tf.GradientTape`` differentiates through (second order unless ``first_order=True``). Nothing is
assigned to the model during adaptation, so no gradient path is cut.

Usage (the same shape for every algorithm of the course)::

    maml = MAML(conv4(n_way=5), inner_lr=0.4, inner_steps=1, first_order=False)
    metrics = maml.train_step(support_x, support_y, query_x, query_y)   # one meta-update
    fast_weights = maml.adapt(support_x[0], support_y[0])              # one task
    logits = maml.forward(fast_weights, query_x[0])
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .checks import check_built_model, check_choice, check_int, check_positive
from .learners import (TASK_TYPES, Learner, apply_meta_gradient, mean_meta_gradient,
                       metric_name, task_loss_and_metric, variable_tensors)


class MAML(Learner):
    """Model-Agnostic Meta-Learning (Finn et al. 2017, arXiv 1703.03400).

    Learns an initialisation ``theta`` such that ``inner_steps`` gradient steps on a new task's
    support set give low loss on its query set. The meta-gradient of the query loss flows through
    the inner updates (second-order) unless ``first_order=True``, which treats the inner gradients
    as constants (first-order MAML, section 5.2 of the paper).

    Batch normalisation: use :class:`metalearn_helpers.models.BatchStatNorm`, which normalises
    every forward pass with its own batch's statistics, as the paper's code does.

    Args:
        model: a built ``keras.Model``; its weights are the meta-learned initialisation.
        inner_lr: step size ``alpha`` of the inner loop (0.01 sinusoid, 0.4 Omniglot).
        inner_steps: inner gradient steps during meta-training.
        eval_inner_steps: inner steps when scoring test episodes (default ``inner_steps``; the
            paper uses 3 at test for 5-way Omniglot after training with 1).
        first_order: drop second derivatives (cheaper; section 5.2).
        task_type: ``"classification"`` (cross-entropy on logits, accuracy) or ``"regression"``
            (mean squared error).
        meta_lr: learning rate of the default outer optimizer, ``Adam`` (paper: 0.001).
        meta_optimizer: a Keras optimizer for the outer loop instead.

    Speed on CPU: a Conv-4 meta-step is about 1,500 small ops, so start TensorFlow with one
    thread per op and several ops in parallel (``TF_NUM_INTRAOP_THREADS=1`` before the first
    import; ``scripts/train_omniglot.py`` does when no GPU is visible): measured ~1.8x less CPU
    per step. On a GPU leave the threads alone.

    Example::

        maml = MAML(sinusoid_mlp(), inner_lr=0.01, task_type="regression")
        for batch in tasks.batches(meta_batch_size=25, seed=0):
            maml.train_step(*batch.arrays())
    """

    def __init__(self, model, inner_lr: float, inner_steps: int = 1, first_order: bool = False,
                 task_type: str = "classification", meta_lr: float = 1e-3, meta_optimizer=None,
                 eval_inner_steps: int | None = None):
        check_built_model("model", model)
        check_positive("inner_lr", inner_lr)
        check_int("inner_steps", inner_steps)
        eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        check_int("eval_inner_steps", eval_inner_steps)
        check_choice("task_type", task_type, TASK_TYPES)
        self.model, self.inner_lr, self.inner_steps = model, float(inner_lr), int(inner_steps)
        self.first_order, self.task_type = bool(first_order), task_type
        self.eval_inner_steps = int(eval_inner_steps)
        self.meta_optimizer = meta_optimizer or keras.optimizers.Adam(meta_lr)
        self.meta_optimizer.build(self.meta_variables)
        self._score = tf.function(self._score_task, reduce_retracing=True)

    # -- the algorithm ------------------------------------------------------------------------
    @property
    def meta_variables(self) -> list:
        """What the outer loop learns: the initialisation (Meta-SGD adds learning rates)."""
        return list(self.model.trainable_variables)

    def forward(self, params, x):
        """The model's output with weights ``params`` (a list like ``trainable_variables``)."""
        outputs, _ = self.model.stateless_call(params, self.model.non_trainable_variables, x)
        return outputs

    def inner_update(self, params, grads):
        """One inner step: ``theta - inner_lr * grad``."""
        return [p - self.inner_lr * g for p, g in zip(params, grads)]

    def adapt(self, support_x, support_y, params=None, inner_steps: int | None = None):
        """Adapt to one task: ``inner_steps`` gradient steps on its support set.

        Returns the adapted weights as tensors; differentiable with respect to ``params``
        (default: the model's weights) to second order unless ``first_order``.
        """
        params = variable_tensors(self.model.trainable_variables if params is None else params)
        for _ in range(self.inner_steps if inner_steps is None else inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss, _ = task_loss_and_metric(self.task_type, support_y,
                                               self.forward(params, support_x))
            grads = tape.gradient(loss, params)
            if self.first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            params = self.inner_update(params, grads)
        return params

    def query_loss(self, support_x, support_y, query_x, query_y, inner_steps=None):
        """Loss and metric on the query set after adapting on the support set."""
        fast_weights = self.adapt(support_x, support_y, inner_steps=inner_steps)
        return task_loss_and_metric(self.task_type, query_y, self.forward(fast_weights, query_x))

    @tf.function
    def train_step(self, support_x, support_y, query_x, query_y):
        """One meta-update on a meta-batch (leading axis = tasks), averaged over tasks."""
        return apply_meta_gradient(self, support_x, support_y, query_x, query_y)

    def meta_gradient(self, support_x, support_y, query_x, query_y):
        """The meta-gradient of the query loss after adaptation, averaged over the tasks."""
        variables = self.meta_variables
        grads, loss, metric = mean_meta_gradient(self.query_loss, variables, support_x,
                                                 support_y, query_x, query_y)
        return grads, variables, {"loss": loss, self.metric_name: metric}

    # -- using it -------------------------------------------------------------------------------
    @property
    def metric_name(self) -> str:
        return metric_name(self.task_type)

    def _score_task(self, support_x, support_y, query_x, query_y, inner_steps):
        return self.query_loss(support_x, support_y, query_x, query_y, inner_steps)[1]

    def score_episode(self, episode, inner_steps: int | None = None) -> float:
        """Adapt on ``episode``'s support set and return the query metric (accuracy or MSE),
        with ``inner_steps`` (default ``eval_inner_steps``) inner steps."""
        steps = self.eval_inner_steps if inner_steps is None else inner_steps
        check_int("inner_steps", steps)
        return float(self._score(*episode.arrays(), steps))

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume meta-training."""
        return {"model": self.model, "meta_optimizer": self.meta_optimizer}


class MetaSGD(MAML):
    """Meta-SGD (Li et al. 2017, arXiv 1707.09835): MAML that also meta-learns a learning rate
    for every parameter, ``theta' = theta - alpha * grad`` with ``alpha`` a tensor shaped like
    ``theta`` (initialised to ``inner_lr`` here), so the inner loop's direction is learned too.
    The paper adapts with a single inner step."""

    def __init__(self, model, inner_lr: float, **kwargs):
        check_positive("inner_lr", inner_lr)
        check_built_model("model", model)
        self.inner_lrs = [keras.Variable(keras.initializers.Constant(float(inner_lr))(
                                             v.shape, dtype=v.dtype), dtype=v.dtype,
                                         name=f"alpha_{i}")
                          for i, v in enumerate(model.trainable_variables)]
        super().__init__(model, inner_lr, **kwargs)

    @property
    def meta_variables(self) -> list:
        return list(self.model.trainable_variables) + list(self.inner_lrs)

    def inner_update(self, params, grads):
        return [p - alpha * g for p, g, alpha in zip(params, grads, self.inner_lrs)]

    def trackables(self) -> dict:
        return {**super().trackables(), "inner_lrs": self.inner_lrs}
