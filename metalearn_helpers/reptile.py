"""Reptile: first-order meta-learning by moving the initialisation toward adapted weights.

Defined in notebook ``04_maml_omniglot``.

Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms", arXiv 1803.02999.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from .checks import check_int, check_positive
from .learners import task_loss_and_metric, variable_tensors
from .maml import MAML


class Reptile(MAML):
    """Reptile (Nichol et al. 2018, arXiv 1803.02999, Algorithm 2, batched version).

    For each task of a meta-batch, train a copy of the weights for ``inner_steps`` mini-batch
    steps on the task's data (support and query together: Reptile has no query loss), giving
    ``W_i``; then move the initialisation toward their mean,
    ``theta <- theta + meta_lr * mean_i(W_i - theta)``. No second derivatives are ever taken.

    As in the paper's Omniglot experiments, the inner optimiser is Adam with ``beta1 = 0``, and as in
    its code (github.com/openai/supervised-reptile) the optimiser's state is *not* reset between
    tasks: the weights go back to ``theta`` after each task, but Adam's second-moment estimate and
    step count carry on, task after task and meta-step after meta-step (``inner_state``). Each
    inner step is therefore ``g / sqrt(v)`` with ``v`` a running mean of squared gradients over
    the last ~1,000 inner steps of many tasks, not over the few steps of one task (with a fresh
    state, the first step would be ``inner_lr * sign(g)`` for every weight). Adapting at test
    time starts from that state and leaves it unchanged, as the code's evaluation restores it.
    The outer step is plain SGD on the "gradient" ``theta - mean(W_i)`` with the step size
    annealed linearly from ``meta_lr`` to ``meta_lr_final`` over ``annealing_steps`` meta-steps.
    Because each task starts from the Adam state the previous task left, the tasks of a meta-batch
    cannot be split across devices: ``meta_train(..., strategy=...)`` refuses Reptile.

    Args:
        model: a built ``keras.Model``.
        inner_lr: inner Adam learning rate (paper: 0.001).
        inner_steps: inner iterations per task in meta-training (paper: 5).
        inner_batch_size: examples per inner step (paper: 10).
        meta_lr, meta_lr_final, annealing_steps: outer step size schedule (paper: 1.0 -> 0 over
            100,000 meta-steps).
        eval_inner_steps: inner iterations at test time (paper: 50).
        task_type: ``"classification"`` or ``"regression"``.
    """

    def __init__(self, model, inner_lr: float = 1e-3, inner_steps: int = 5,
                 inner_batch_size: int = 10, meta_lr: float = 1.0, meta_lr_final: float = 0.0,
                 annealing_steps: int = 100_000, eval_inner_steps: int = 50,
                 task_type: str = "classification"):
        check_int("inner_batch_size", inner_batch_size)
        check_positive("meta_lr", meta_lr)
        check_int("annealing_steps", annealing_steps)
        if not 0 <= meta_lr_final <= meta_lr:
            raise ValueError(f"meta_lr_final must be in [0, meta_lr], got {meta_lr_final!r}.")
        self.inner_batch_size = int(inner_batch_size)
        schedule = keras.optimizers.schedules.PolynomialDecay(
            meta_lr, annealing_steps, end_learning_rate=meta_lr_final, power=1.0)
        self.inner_moments = [
            keras.Variable(keras.initializers.Zeros()(v.shape, v.dtype), dtype=v.dtype,
                           trainable=False, name=f"inner_moment_{i}")
            for i, v in enumerate(model.trainable_variables)]
        self.inner_step_count = keras.Variable(0.0, trainable=False, name="inner_step_count")
        super().__init__(model, inner_lr, inner_steps, first_order=True, task_type=task_type,
                         meta_optimizer=keras.optimizers.SGD(schedule),
                         eval_inner_steps=eval_inner_steps)

    @property
    def inner_state(self) -> list:
        """The inner Adam's carried state: second moments (one per weight) and step count. Part
        of a trained Reptile, saved and loaded with its initialisation."""
        return list(self.inner_moments) + [self.inner_step_count]

    def adapt(self, x, y, params=None, inner_steps: int | None = None):
        """Train a copy of the weights on ``(x, y)`` with mini-batch Adam (beta1 = 0), starting
        from the carried optimiser state, which is left unchanged."""
        params, _, _ = self._inner_loop(x, y, params, inner_steps, variable_tensors(self.inner_moments),
                                        tf.convert_to_tensor(self.inner_step_count))
        return params

    def _inner_loop(self, x, y, params, inner_steps, second_moments, count):
        """Adam (beta1 = 0) from state ``(second_moments, count)``; returns the trained weights
        and the new state."""
        beta2, epsilon = 0.999, 1e-8
        params = variable_tensors(self.model.trainable_variables if params is None else params)
        steps = self.inner_steps if inner_steps is None else inner_steps
        n = x.shape[0]
        batch = min(self.inner_batch_size, n)
        # Mini-batches walk through shuffled copies of the task's data, as in the paper's code.
        order = tf.concat([tf.random.shuffle(tf.range(n))
                           for _ in range(math.ceil(steps * batch / n))], axis=0)
        # A graph loop (not unrolled): tracing stays short even for the 50 steps of evaluation.
        for t in tf.range(1, steps + 1):
            index = order[(t - 1) * batch:t * batch]
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss, _ = task_loss_and_metric(self.task_type, tf.gather(y, index),
                                               self.forward(params, tf.gather(x, index)))
            grads = [tf.stop_gradient(g) for g in tape.gradient(loss, params)]
            second_moments = [beta2 * v + (1 - beta2) * tf.square(g)
                              for v, g in zip(second_moments, grads)]
            correction = 1 - tf.pow(beta2, count + tf.cast(t, count.dtype))
            params = [p - self.inner_lr * g / (tf.sqrt(v / correction) + epsilon)
                      for p, g, v in zip(params, grads, second_moments)]
        return params, second_moments, count + tf.cast(steps, count.dtype)

    @tf.function
    def train_step(self, support_x, support_y, query_x, query_y):
        """One Reptile meta-update on a meta-batch; reports loss and metric of the adapted
        weights on each task's own data."""
        variables = self.meta_variables
        x = tf.concat([support_x, query_x], axis=1)
        y = tf.concat([support_y, query_y], axis=1)
        shifts = [tf.zeros_like(v) for v in variables]
        loss_sum, metric_sum = tf.constant(0.0), tf.constant(0.0)
        moments = variable_tensors(self.inner_moments)
        count = tf.convert_to_tensor(self.inner_step_count)
        n_tasks = tf.shape(x)[0]
        for i in tf.range(n_tasks):  # one task after another, the optimiser state carried on
            adapted, moments, count = self._inner_loop(x[i], y[i], None, None, moments, count)
            shifts = [s + (v - w) for s, v, w in zip(shifts, variable_tensors(variables), adapted)]
            loss, metric = task_loss_and_metric(self.task_type, y[i], self.forward(adapted, x[i]))
            loss_sum += loss
            metric_sum += metric
        n = tf.cast(n_tasks, tf.float32)
        self.meta_optimizer.apply([s / n for s in shifts], variables)
        for variable, value in zip(self.inner_state, moments + [count]):
            variable.assign(value)
        return {"loss": loss_sum / n, self.metric_name: metric_sum / n}

    def trackables(self) -> dict:
        return {**super().trackables(), "inner_state": self.inner_state}
