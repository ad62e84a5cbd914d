"""MAML, first-order MAML, Meta-SGD and ANIL: meta-learning an initialisation (and learning rates).

Defined in notebooks ``03_maml_sinusoid`` (where the inner and outer loops are first written out
with nested ``tf.GradientTape``) and ``04_maml_omniglot``.

- MAML: Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
  Networks", arXiv 1703.03400.
- Meta-SGD: Li, Zhou, Chen & Li 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot
  Learning", arXiv 1707.09835.
- ANIL: Raghu, Raghu, Bengio & Vinyals 2019, "Rapid Learning or Feature Reuse? Towards
  Understanding the Effectiveness of MAML", arXiv 1909.09157 (cost measured in
  ``benchmarks/meta_step_costs.py``).

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
from .learners import (TASK_TYPES, Learner, mean_meta_gradient,
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
        adapted_layers: names of the layers whose weights the inner loop adapts (default
            ``None``: every layer; :class:`ANIL`: the head). The outer loop meta-learns all
            weights either way.
        recompute_inner: gradient checkpointing (:func:`recomputed`): the meta-gradient
            recomputes each inner step's activations instead of keeping them (less memory, more
            time; measured in ``benchmarks/meta_step_costs.py``).

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
                 eval_inner_steps: int | None = None, adapted_layers=None,
                 recompute_inner: bool = False):
        check_built_model("model", model)
        check_positive("inner_lr", inner_lr)
        check_int("inner_steps", inner_steps)
        eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        check_int("eval_inner_steps", eval_inner_steps)
        check_choice("task_type", task_type, TASK_TYPES)
        self.model, self.inner_lr, self.inner_steps = model, float(inner_lr), int(inner_steps)
        self.first_order, self.task_type = bool(first_order), task_type
        self.eval_inner_steps = int(eval_inner_steps)
        self.adapted = adapted_indices(model, adapted_layers)
        self.recompute_inner = bool(recompute_inner)
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
        """One inner step: ``theta - inner_lr * grad`` (``grad`` is ``None`` for weights the
        inner loop does not adapt)."""
        return [p if g is None else p - self.inner_lr * g for p, g in zip(params, grads)]

    def inner_step(self, support_x, support_y, params) -> list:
        """One gradient step on the support set, of the weights in ``adapted`` only."""
        adapted = [params[i] for i in self.adapted]
        with tf.GradientTape() as tape:
            tape.watch(adapted)
            loss, _ = task_loss_and_metric(self.task_type, support_y,
                                           self.forward(params, support_x))
        grads = dict(zip(self.adapted, tape.gradient(loss, adapted)))
        if self.first_order:
            grads = {i: tf.stop_gradient(g) for i, g in grads.items()}
        return self.inner_update(params, [grads.get(i) for i in range(len(params))])

    def adapt(self, support_x, support_y, params=None, inner_steps: int | None = None):
        """Adapt to one task: ``inner_steps`` gradient steps on its support set.

        Returns the adapted weights as tensors; differentiable with respect to ``params``
        (default: the model's weights) to second order unless ``first_order``.
        """
        params = variable_tensors(self.model.trainable_variables if params is None else params)
        step = lambda *weights: self.inner_step(support_x, support_y, list(weights))  # noqa: E731
        if self.recompute_inner:
            step = recomputed(step)
        for _ in range(self.inner_steps if inner_steps is None else inner_steps):
            params = list(step(*params))
        return params

    def query_loss(self, support_x, support_y, query_x, query_y, inner_steps=None):
        """Loss and metric on the query set after adapting on the support set."""
        fast_weights = self.adapt(support_x, support_y, inner_steps=inner_steps)
        return task_loss_and_metric(self.task_type, query_y, self.forward(fast_weights, query_x))

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
        return [p if g is None else p - alpha * g
                for p, g, alpha in zip(params, grads, self.inner_lrs)]

    def trackables(self) -> dict:
        return {**super().trackables(), "inner_lrs": self.inner_lrs}


class ANIL(MAML):
    """ANIL, "Almost No Inner Loop" (Raghu et al. 2019, arXiv 1909.09157, section 4): MAML whose
    inner loop adapts only the network's head (its last layer with weights), while the outer
    loop meta-learns every weight, the body through the head's adapted weights (second order
    unless ``first_order``). Same arguments as :class:`MAML` (``adapted_layers`` is set here).

    The paper finds the body's features barely change in MAML's inner loop (feature reuse), and
    ANIL matches MAML's accuracy at a lower cost per meta-step (measured in
    ``benchmarks/meta_step_costs.py``)."""

    def __init__(self, model, inner_lr: float, **kwargs):
        check_built_model("model", model)
        head = [layer.name for layer in model.layers if layer.trainable_weights][-1]
        super().__init__(model, inner_lr, adapted_layers=(head,), **kwargs)


def adapted_indices(model, adapted_layers) -> tuple:
    """Positions in ``model.trainable_variables`` of the weights of the layers named
    ``adapted_layers`` (``None``: all of them). Unknown names raise ``ValueError``."""
    variables = model.trainable_variables
    if adapted_layers is None:
        return tuple(range(len(variables)))
    names = [layer.name for layer in model.layers if layer.trainable_weights]
    if (isinstance(adapted_layers, str) or not isinstance(adapted_layers, (list, tuple))
            or not all(isinstance(name, str) for name in adapted_layers)):
        raise TypeError(f"adapted_layers must be None or a list of layer names, got "
                        f"{adapted_layers!r}.")
    unknown = [name for name in adapted_layers if name not in names]
    if unknown or not adapted_layers:
        raise ValueError(f"adapted_layers must name layers of the model with trainable weights "
                         f"({names}), got {list(adapted_layers)!r}.")
    chosen = {id(v) for layer in model.layers if layer.name in adapted_layers
              for v in layer.trainable_weights}
    return tuple(i for i, v in enumerate(variables) if id(v) in chosen)


def recomputed(step):
    """``step(*tensors) -> list of tensors`` with gradient checkpointing (Chen et al. 2016, arXiv
    1604.06174): the forward pass keeps none of ``step``'s activations, and the backward pass
    runs ``step`` again under a tape, once the gradient arriving from above exists.

    Like ``tf.recompute_grad``, which cannot be used here: it runs the forward pass with every
    gradient tape stopped, including the inner loop's own tape, so the inner gradient is lost.
    Here the forward pass sees its inputs through ``tf.stop_gradient`` instead: outer tapes do
    not record it, the step's own tape does."""
    @tf.custom_gradient
    def run(*inputs):
        outputs = step(*[tf.stop_gradient(x) for x in inputs])

        def gradient(*upstream, variables=None):
            with tf.control_dependencies([u for u in upstream if u is not None]):
                again = [tf.identity(x) for x in inputs]  # recompute after upstream exists
            with tf.GradientTape() as tape:
                tape.watch(again)
                outputs_again = step(*again)
            grads = tape.gradient(outputs_again, again, output_gradients=list(upstream),
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return (grads, [tf.zeros_like(v) for v in variables]) if variables else grads

        return outputs, gradient

    return run
