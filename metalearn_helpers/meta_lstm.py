"""The Meta-Learner LSTM: an LSTM that learns how to train a classifier in a few steps.

Defined in notebook ``06_model_based``.

Ravi & Larochelle 2017, "Optimization as a Model for Few-Shot Learning", ICLR 2017
(OpenReview rJY0-Kcll). Gradient preprocessing from Andrychowicz et al. 2016, "Learning to learn
by gradient descent by gradient descent", arXiv 1606.04474.

The paper's key observation: the LSTM cell update ``c_t = f_t * c_{t-1} + i_t * c~_t`` is gradient
descent ``theta_t = theta_{t-1} - alpha * grad_t`` when the cell state is the learner's parameters,
``c~_t = -grad_t``, ``f_t = 1`` and ``i_t = alpha``. Learning the gates instead gives a learned,
per-coordinate learning rate (``i_t``) and weight shrinkage (``f_t``), and learning ``c_0`` gives
a learned initialisation (as MAML does).

Usage (the same shape as every algorithm of the course)::

    meta_lstm = MetaLearnerLSTM(conv4(n_way=5), inner_steps=5)
    metrics = meta_lstm.train_step(support_x, support_y, query_x, query_y)  # one meta-update
    fast_weights = meta_lstm.adapt(support_x[0], support_y[0])               # one task
    logits = meta_lstm.forward(fast_weights, query_x[0])
"""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from .checks import check_built_model, check_int, check_positive
from .learners import Learner, mean_meta_gradient, task_loss_and_metric, variable_tensors

PREPROCESSING_P = 10.0


def preprocess(x, p: float = PREPROCESSING_P):
    """Andrychowicz et al.'s (2016, appendix A) preprocessing of gradients and losses, whose
    coordinates span many orders of magnitude, into two well-scaled numbers each::

        x  ->  (log|x| / p, sign(x))   if |x| >= exp(-p)
               (-1, exp(p) * x)        otherwise

    The first output says how large ``x`` is, the second its sign (or, for tiny ``x``, its value
    rescaled). Returns a tensor of shape ``x.shape + (2,)``.
    """
    x = tf.convert_to_tensor(x)
    magnitude = tf.abs(x)
    big = magnitude >= np.exp(-p)
    safe = tf.maximum(magnitude, tf.cast(np.exp(-p), x.dtype))  # no log(0) in the unused branch
    first = tf.where(big, tf.math.log(safe) / p, -tf.ones_like(x))
    second = tf.where(big, tf.sign(x), np.exp(p) * x)
    return tf.stack([first, second], axis=-1)


class CoordinatewiseMetaLearner(keras.layers.Layer):
    """The meta-learner's own weights: two LSTM layers applied to every coordinate of the learner
    independently, with one set of weights shared by all coordinates (so their number does not
    depend on the learner's size).

    - Layer 1, a standard LSTM (``hidden_size`` units, 20 in the paper), reads per coordinate the
      preprocessed gradient and the preprocessed loss (4 numbers).
    - Layer 2 is the paper's special cell (equation 2) whose cell state is the learner's
      parameter: ``i_t = sigmoid(W_I [h_t, theta_{t-1}, i_{t-1}] + b_I)``,
      ``f_t = sigmoid(W_F [h_t, theta_{t-1}, f_{t-1}] + b_F)``,
      ``theta_t = f_t * theta_{t-1} - i_t * grad_t`` (the raw gradient, not preprocessed).
      Equation 2 writes the gates' inputs as ``[grad_t, loss_t, theta_{t-1}, gate_{t-1}]``; in the
      paper's two-layer meta-learner (section 4) gradient and loss reach the gates through the
      first layer's output ``h_t``, which is what is done here.

    As in the authors' code (github.com/twitter-research/meta-learning-lstm), every weight starts
    uniform in [-0.01, 0.01], except ``b_F``, uniform in [4, 5] (forget gate near 1: keep the
    parameters), and ``b_I``, uniform in [-5, -4] (input gate, the learning rate, about 0.01): the
    meta-learner starts out as plain gradient descent with a small step size. The first layer
    reads the loss features first, then the gradient's, as that code does.
    """

    def __init__(self, hidden_size: int = 20, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        small = keras.initializers.RandomUniform(-0.01, 0.01)
        self.lstm = keras.layers.LSTMCell(
            hidden_size, kernel_initializer=small, recurrent_initializer=small,
            bias_initializer=small, unit_forget_bias=False, dtype=self.dtype_policy, name="lstm")

    def build(self, input_shape=None):
        self.lstm.build((None, 4))
        small = keras.initializers.RandomUniform(-0.01, 0.01)
        rows = self.hidden_size + 2  # [h_t, theta_{t-1}, previous gate]
        self.w_input = self.add_weight(shape=(rows, 1), initializer=small, name="w_input")
        self.w_forget = self.add_weight(shape=(rows, 1), initializer=small, name="w_forget")
        self.b_input = self.add_weight(shape=(1,), name="b_input",
                                       initializer=keras.initializers.RandomUniform(-5.0, -4.0))
        self.b_forget = self.add_weight(shape=(1,), name="b_forget",
                                        initializer=keras.initializers.RandomUniform(4.0, 5.0))

    def initial_state(self, theta):
        """Zero LSTM state and zero previous gates for ``n`` coordinates (``theta``'s length)."""
        zeros = tf.zeros((tf.shape(theta)[0], self.hidden_size), theta.dtype)
        return [zeros, zeros], tf.zeros_like(theta), tf.zeros_like(theta)

    def call(self, theta, grad, loss, state):
        """One update of all coordinates: flat ``theta`` and ``grad`` of shape ``(n,)``, scalar
        ``loss``; ``state`` is ``(lstm_state, i_prev, f_prev)``. Returns ``(theta_next, state)``.
        """
        lstm_state, i_prev, f_prev = state
        loss_features = tf.broadcast_to(preprocess(tf.reshape(loss, (1,))), (tf.shape(grad)[0], 2))
        features = tf.concat([loss_features, preprocess(grad)], axis=-1)          # (n, 4)
        h, lstm_state = self.lstm(features, lstm_state)
        # W [h_t, theta_{t-1}, gate_{t-1}] + b, written out so no (n, hidden + 2) copy is made.
        k = self.hidden_size
        h_part = h @ tf.concat([self.w_input[:k], self.w_forget[:k]], axis=1)      # (n, 2)
        i = tf.sigmoid(h_part[:, 0] + theta * self.w_input[k, 0]
                       + i_prev * self.w_input[k + 1, 0] + self.b_input[0])
        f = tf.sigmoid(h_part[:, 1] + theta * self.w_forget[k, 0]
                       + f_prev * self.w_forget[k + 1, 0] + self.b_forget[0])
        return f * theta - i * grad, (lstm_state, i, f)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size}


class MetaLearnerLSTM(Learner):
    """The Meta-Learner LSTM of Ravi & Larochelle (ICLR 2017, OpenReview rJY0-Kcll).

    A classifier (the *learner*) is trained on a task's support set for ``inner_steps`` updates
    made by a coordinate-wise two-layer LSTM (the *meta-learner*, see
    :class:`CoordinatewiseMetaLearner`) whose cell state is the learner's parameters. The
    meta-learner's weights and the initial cell state ``c_0`` (the learner's initial parameters,
    i.e. the Keras model's weights) are meta-trained on the query loss of the final parameters,
    back-propagated through the unrolled updates (the paper's Algorithm 1).

    Faithful to the paper:

    - Every update uses the whole support set as one batch (the paper's 5 or 25 examples).
    - Initialisation as in the authors' code (see :class:`CoordinatewiseMetaLearner`): the
      meta-learner starts as gradient descent with step size about 0.01.
    - The gradient and loss given to the meta-learner are constants of the meta-gradient
      (``tf.stop_gradient``; the paper's section 3.2: no second derivatives). The meta-gradient
      still flows through ``theta_{t-1}`` into the cell update and into the gates.
    - The meta-gradient's global norm is clipped (``clipnorm``, 0.25 in the paper and its code)
      and applied with Adam (learning rate 0.001).
    - Batch normalisation (the paper's section 3.3): running averages collected over meta-training
      would let information leak from one dataset to the next, and using them only at meta-test
      time changes the conditions the meta-learner was trained for; the paper therefore uses
      batch statistics during meta-training and, at meta-test time, statistics collected within
      each dataset and erased before the next. Here the learner normalises with
      :class:`metalearn_helpers.models.BatchStatNorm` (``conv4``'s default): every forward pass by
      its own batch's statistics, identically in meta-training and meta-testing, and nothing is
      carried from one task to the next.

    Deviations from the paper: (1) tasks of a meta-batch are averaged into one meta-update (the
    paper uses one episode per update: ``meta_batch_size=1`` recovers it); (2) at meta-test time
    the authors' code classifies the query set with running averages of the support batches'
    statistics (reset for every episode), while here the query batch is normalised by its own
    statistics, as in meta-training (and as MAML's code does): one rule everywhere, and still no
    information carried between tasks; (3) every update uses the whole support set (the paper's
    setting; its code can also cycle through mini-batches).

    Args:
        model: a built ``keras.Model`` classifier (logits); its weights are ``c_0``, the
            meta-learned initial parameters, e.g. ``conv4(n_way)``.
        inner_steps: updates ``T`` on the support set during meta-training.
        eval_inner_steps: updates when scoring test episodes (default ``inner_steps``: the
            meta-learner is trained for a fixed number of updates).
        hidden_size: units of the first (standard) LSTM layer (paper: 20).
        meta_lr: learning rate of the default outer optimizer, ``Adam`` (the paper's 1e-3).
        meta_optimizer: a Keras optimizer for the outer loop instead.
        clipnorm: the meta-gradient's global norm is clipped to this (paper: 0.25); ``None``: no
            clipping.

    Speed on CPU: every coordinate of the learner is one row of a flat ``(n_parameters, ...)``
    batch, so one inner update is one LSTM step on an ``(n, 4)`` matrix; start TensorFlow with
    ``TF_NUM_INTRAOP_THREADS=1`` as for MAML. The LSTM over the coordinates (112,261 for a
    64-filter ``conv4(5)``), not the convolutions, dominates: measured ~0.13 s per update and task,
    i.e. ~0.6-0.8 s per meta-step for 5-way 1-shot, ``inner_steps=5``, one task (busy 2-core CPU).

    Example::

        meta_lstm = MetaLearnerLSTM(conv4(n_way=5), inner_steps=5)
        history = meta_train(meta_lstm, train_tasks, n_steps=1000, meta_batch_size=4)
        fast_weights, gates = meta_lstm.adapt(*episode.arrays()[:2], return_gates=True)
        gates["input"]   # (steps, variables): the mean learning rate the meta-learner chose
    """

    def __init__(self, model, inner_steps: int = 5, eval_inner_steps: int | None = None,
                 hidden_size: int = 20, meta_lr: float = 1e-3, meta_optimizer=None,
                 clipnorm: float | None = 0.25):
        check_built_model("model", model)
        check_int("inner_steps", inner_steps)
        eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        check_int("eval_inner_steps", eval_inner_steps)
        check_int("hidden_size", hidden_size)
        if clipnorm is not None:
            check_positive("clipnorm", clipnorm)
        if meta_optimizer is not None and not isinstance(meta_optimizer,
                                                         keras.optimizers.Optimizer):
            raise TypeError(f"meta_optimizer must be a keras optimizer or None, got "
                            f"{type(meta_optimizer).__name__}.")
        self.model, self.inner_steps = model, int(inner_steps)
        self.eval_inner_steps = int(eval_inner_steps)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        dtype = model.trainable_variables[0].dtype
        self.meta_learner = CoordinatewiseMetaLearner(int(hidden_size), dtype=dtype,
                                                      name="meta_learner")
        self.meta_learner.build()
        self._shapes = [tuple(v.shape) for v in model.trainable_variables]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self.meta_optimizer = meta_optimizer or keras.optimizers.Adam(meta_lr)
        self.meta_optimizer.build(self.meta_variables)
        self._score = tf.function(self._score_task)

    # -- the algorithm ------------------------------------------------------------------------
    @property
    def meta_variables(self) -> list:
        """What the outer loop learns: ``c_0`` (the model's weights) and the meta-learner."""
        return list(self.model.trainable_variables) + list(self.meta_learner.trainable_variables)

    def forward(self, params, x):
        """The model's output with weights ``params`` (a list like ``trainable_variables``)."""
        outputs, _ = self.model.stateless_call(params, self.model.non_trainable_variables, x)
        return outputs

    def _flatten(self, params):
        return tf.concat([tf.reshape(p, [-1]) for p in params], axis=0)

    def _unflatten(self, theta):
        return [tf.reshape(part, shape)
                for part, shape in zip(tf.split(theta, self._sizes), self._shapes)]

    def _support_loss_and_grad(self, theta, support_x, support_y):
        """The learner's loss and gradient at ``theta``: inputs of the meta-learner, constants of
        the meta-gradient (computed on ``stop_gradient(theta)``, so the outer tape records none
        of it)."""
        params = self._unflatten(tf.stop_gradient(theta))
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss, _ = task_loss_and_metric("classification", support_y,
                                           self.forward(params, support_x))
        return tf.stop_gradient(loss), tf.stop_gradient(self._flatten(tape.gradient(loss, params)))

    def adapt(self, support_x, support_y, inner_steps: int | None = None,
              return_gates: bool = False):
        """Train the learner on one task's support set with ``inner_steps`` (default
        ``inner_steps``) meta-learner updates, starting from the model's weights.

        Returns the adapted weights (tensors shaped like ``trainable_variables``, differentiable
        with respect to the meta-variables). With ``return_gates=True``, also a dict with
        ``"input"`` and ``"forget"``: the mean input gate (learning rate) and forget gate of each
        variable at each update, tensors of shape ``(steps, n_variables)``, and ``"variables"``:
        the variables' names.
        """
        steps = self.inner_steps if inner_steps is None else inner_steps
        check_int("inner_steps", steps)
        theta = self._flatten(variable_tensors(self.model.trainable_variables))
        state = self.meta_learner.initial_state(theta)
        input_gates, forget_gates = [], []
        for _ in range(steps):  # T is small: a Python loop keeps the graph simple
            loss, grad = self._support_loss_and_grad(theta, support_x, support_y)
            theta, state = self.meta_learner(theta, grad, loss, state)
            if return_gates:
                input_gates.append(self._mean_per_variable(state[1]))
                forget_gates.append(self._mean_per_variable(state[2]))
        params = self._unflatten(theta)
        if not return_gates:
            return params
        return params, {"input": tf.stack(input_gates), "forget": tf.stack(forget_gates),
                        "variables": [v.path for v in self.model.trainable_variables]}

    def _mean_per_variable(self, gate):
        return tf.stack([tf.reduce_mean(g) for g in tf.split(gate, self._sizes)])

    def query_loss(self, support_x, support_y, query_x, query_y, inner_steps=None):
        """Cross-entropy and accuracy on the query set after adapting on the support set."""
        fast_weights = self.adapt(support_x, support_y, inner_steps=inner_steps)
        return task_loss_and_metric("classification", query_y,
                                    self.forward(fast_weights, query_x))

    @tf.function
    def train_step(self, support_x, support_y, query_x, query_y):
        """One meta-update on a meta-batch (leading axis = tasks), averaged over tasks, looped
        in the graph with ``tf.range``; the meta-gradient is clipped, then applied."""
        variables = self.meta_variables
        grads, loss, accuracy = mean_meta_gradient(self.query_loss, variables, support_x,
                                                   support_y, query_x, query_y)
        if self.clipnorm is not None:
            grads, _ = tf.clip_by_global_norm(grads, self.clipnorm)
        self.meta_optimizer.apply(grads, variables)
        return {"loss": loss, "accuracy": accuracy}

    # -- using it -------------------------------------------------------------------------------
    def _score_task(self, support_x, support_y, query_x, query_y, inner_steps):
        return self.query_loss(support_x, support_y, query_x, query_y, inner_steps)[1]

    def score_episode(self, episode, inner_steps: int | None = None) -> float:
        """Adapt on ``episode``'s support set with ``inner_steps`` (default
        ``eval_inner_steps``) updates and return the query accuracy."""
        steps = self.eval_inner_steps if inner_steps is None else inner_steps
        check_int("inner_steps", steps)
        return float(self._score(*episode.arrays(), int(steps)))

    def trackables(self) -> dict:
        """What a checkpoint must hold to resume meta-training."""
        return {"model": self.model, "meta_learner": self.meta_learner,
                "meta_optimizer": self.meta_optimizer}
