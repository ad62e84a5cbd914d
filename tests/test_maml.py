"""MAML, first-order MAML, Meta-SGD and ANIL: the meta-gradient is right, and learning happens."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.episodes import Episode
from metalearn_helpers.learners import variable_tensors
from metalearn_helpers.maml import ANIL, MAML, MetaSGD
from metalearn_helpers.reptile import Reptile
from metalearn_helpers.models import BatchStatNorm, conv4, sinusoid_mlp


def meta_loss_and_grad(algorithm, support_x, support_y, query_x, query_y):
    """Query loss after adaptation and its gradient w.r.t. the meta-variables (one task)."""
    variables = algorithm.meta_variables
    with tf.GradientTape() as tape:
        loss, _ = algorithm.query_loss(support_x, support_y, query_x, query_y)
    return float(loss), [g.numpy() for g in tape.gradient(loss, variable_tensors(variables))]


def test_hand_derived_linear_case():
    """y = w x, MSE, one inner step: dL_q/dw = L_q'(w') (1 - 2 alpha mean(x_s^2)); first-order
    MAML drops the factor in brackets."""
    model = keras.Sequential([keras.Input((1,), dtype="float64"),
                              keras.layers.Dense(1, use_bias=False, dtype="float64")])
    w, alpha = 0.7, 0.1
    model.set_weights([np.array([[w]])])
    rng = np.random.default_rng(0)
    x_s, x_q = rng.normal(size=(5, 1)), rng.normal(size=(7, 1))
    y_s, y_q = 2.0 * x_s, 2.0 * x_q
    w_fast = w - alpha * 2 * np.mean(x_s * (w * x_s - y_s))
    outer = 2 * np.mean(x_q * (w_fast * x_q - y_q))
    exact = outer * (1 - 2 * alpha * np.mean(x_s**2))
    for first_order, expected in [(False, exact), (True, outer)]:
        maml = MAML(model, inner_lr=alpha, first_order=first_order, task_type="regression")
        _, (grad,) = meta_loss_and_grad(maml, x_s, y_s, x_q, y_q)
        np.testing.assert_allclose(grad.ravel(), [expected], rtol=1e-10)


def small_bn_net(n_way=3):
    """Conv -> BatchStatNorm -> ReLU -> Dense, float64: small enough for finite differences,
    with batch norm, which is where a wrong second-order gradient would hide."""
    return keras.Sequential([
        keras.Input((6, 6, 1), dtype="float64"),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", dtype="float64"),
        BatchStatNorm(dtype="float64"),
        keras.layers.Activation("tanh", dtype="float64"),  # smooth, so differences are exact
        keras.layers.Flatten(dtype="float64"),
        keras.layers.Dense(n_way, dtype="float64"),
    ])


CHECKPOINTED_MAML = functools.partial(MAML, recompute_inner=True)


@pytest.mark.parametrize("algorithm_class", [MAML, MetaSGD, ANIL, CHECKPOINTED_MAML],
                         ids=["maml", "metasgd", "anil", "maml-recompute"])
def test_second_order_meta_gradient_matches_finite_differences(algorithm_class):
    keras.utils.set_random_seed(1)
    model = small_bn_net()
    algorithm = algorithm_class(model, inner_lr=0.5, inner_steps=2)
    rng = np.random.default_rng(1)
    support_x, query_x = rng.normal(size=(6, 6, 6, 1)), rng.normal(size=(9, 6, 6, 1))
    support_y, query_y = np.tile(np.arange(3), 2), np.tile(np.arange(3), 3)
    _, grads = meta_loss_and_grad(algorithm, support_x, support_y, query_x, query_y)

    variables = algorithm.meta_variables
    start = [v.numpy() for v in variables]
    for _ in range(3):  # random directions d: grad . d == (L(w + eps d) - L(w - eps d)) / 2 eps
        direction = [rng.normal(size=w.shape) for w in start]
        eps, losses = 1e-5, []
        for sign in (1, -1):
            for v, w, d in zip(variables, start, direction):
                v.assign(w + sign * eps * d)
            losses.append(meta_loss_and_grad(algorithm, support_x, support_y, query_x,
                                             query_y)[0])
        for v, w in zip(variables, start):
            v.assign(w)
        numeric = (losses[0] - losses[1]) / (2 * eps)
        analytic = sum(np.sum(g * d) for g, d in zip(grads, direction))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_first_order_differs_from_second_order():
    keras.utils.set_random_seed(2)
    model = small_bn_net()
    rng = np.random.default_rng(2)
    episode = (rng.normal(size=(6, 6, 6, 1)), np.tile(np.arange(3), 2),
               rng.normal(size=(9, 6, 6, 1)), np.tile(np.arange(3), 3))
    second = meta_loss_and_grad(MAML(model, 0.5, first_order=False), *episode)[1]
    first = meta_loss_and_grad(MAML(model, 0.5, first_order=True), *episode)[1]
    relative = np.linalg.norm(np.concatenate([(a - b).ravel() for a, b in zip(first, second)]))
    relative /= np.linalg.norm(np.concatenate([a.ravel() for a in second]))
    assert relative > 1e-3


def _toy_meta_loss(w, normalise):
    """Query loss after one inner step through a batch-normalised linear layer (float64)."""
    rng = np.random.default_rng(3)
    x_s, x_q = tf.constant(rng.normal(size=(8, 3))), tf.constant(rng.normal(size=(8, 3)))
    a, b = tf.constant(rng.normal(size=(8, 3))), tf.constant(rng.normal(size=(8, 3)))
    with tf.GradientTape() as tape:
        tape.watch(w)
        inner_loss = tf.reduce_sum(tf.tanh(normalise(x_s * w)) * a)
    w_fast = w - 0.5 * tape.gradient(inner_loss, w)
    return tf.reduce_sum(tf.tanh(normalise(x_q * w_fast)) * b)


def _exact_norm(h):
    mean = tf.reduce_mean(h, axis=0)
    return (h - mean) / tf.sqrt(tf.reduce_mean(tf.square(h - mean), axis=0) + 1e-3)


def _moments_norm(h):  # what Keras BatchNormalization does on the TensorFlow backend
    mean, variance = tf.nn.moments(h, axes=[0])
    return (h - mean) / tf.sqrt(variance + 1e-3)


def test_tf_nn_moments_gives_wrong_second_order_gradients():
    """The trap BatchStatNorm avoids (CONTRIBUTING.md, "Correctness traps"): tf.nn.moments computes the variance around
    stop_gradient(mean). Values and first derivatives agree, meta-gradients do not."""
    w0 = tf.constant([0.3, -1.2, 0.8], dtype=tf.float64)
    grads = {}
    for name, normalise in [("exact", _exact_norm), ("moments", _moments_norm)]:
        w = tf.Variable(w0)
        with tf.GradientTape() as tape:
            loss = _toy_meta_loss(w, normalise)
        grads[name] = tape.gradient(loss, w).numpy()
    eps, numeric = 1e-6, []
    for i in range(3):
        step = np.eye(3)[i] * eps
        numeric.append((_toy_meta_loss(tf.Variable(w0 + step), _exact_norm)
                        - _toy_meta_loss(tf.Variable(w0 - step), _exact_norm)).numpy() / (2 * eps))
    np.testing.assert_allclose(grads["exact"], numeric, rtol=1e-6)
    assert np.max(np.abs(grads["moments"] - numeric)) > 1e-3 * np.max(np.abs(numeric))


@pytest.mark.parametrize("algorithm_class,first_order",
                         [(MAML, False), (MAML, True), (MetaSGD, False), (Reptile, True)])
def test_five_iterations_beat_chance_on_a_learnable_task_family(algorithm_class, first_order):
    """Cheap integration test (in the spirit of learn2learn's): a few meta-steps on synthetic
    2-way tasks whose classes are bright-left vs bright-right images lift query accuracy above
    chance. A broken algorithm (no adaptation, no meta-update) stays at 50 %."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def batch(n_tasks=4, n=6):
        """Support and query sets of n_tasks tasks; which label is "bright left" is drawn per
        task, so only adaptation on the support set can tell."""
        sets = []
        for _ in range(n_tasks):
            flip = rng.integers(2)
            task = []
            for _ in ("support", "query"):
                y = np.tile(np.arange(2), n // 2).astype(np.int32)
                x = rng.normal(0, 0.3, size=(n, 28, 28, 1)).astype(np.float32)
                x[(y ^ flip) == 0, :, :14] += 1.0
                x[(y ^ flip) == 1, :, 14:] += 1.0
                task += [x, y]
            sets.append(task)
        return [np.stack(a) for a in zip(*sets)]

    if algorithm_class is Reptile:
        algorithm = Reptile(conv4(2, filters=8), inner_lr=0.01, inner_steps=5, meta_lr=1.0)
    else:
        algorithm = algorithm_class(conv4(2, filters=8), inner_lr=0.4, first_order=first_order)
    for _ in range(5):
        algorithm.train_step(*batch())
    accuracy = np.mean([algorithm.score_episode(Episode(*(a[0] for a in batch(1, 10))))
                        for _ in range(5)])
    assert accuracy > 0.7


def test_sinusoid_mlp_shape():
    assert sinusoid_mlp().output_shape == (None, 1)


@pytest.mark.parametrize("kwargs,error", [
    (dict(inner_lr=-0.1), "inner_lr"),
    (dict(inner_lr=0.1, inner_steps=0), "inner_steps"),
    (dict(inner_lr=0.1, task_type="ranking"), "task_type"),
])
def test_invalid_parameters(kwargs, error):
    with pytest.raises(ValueError, match=error):
        MAML(sinusoid_mlp(), **kwargs)


@pytest.mark.parametrize("kwargs,error", [
    (dict(inner_lr="0.1"), "inner_lr"),
    (dict(inner_lr=0.1, inner_steps=1.5), "inner_steps"),
])
def test_parameters_of_the_wrong_type(kwargs, error):
    with pytest.raises(TypeError, match=error):
        MAML(sinusoid_mlp(), **kwargs)


def test_model_must_be_keras():
    with pytest.raises(TypeError, match="keras.Model"):
        MAML(lambda x: x, inner_lr=0.1)


def test_reptile_moves_initialisation_toward_adapted_weights():
    """With meta_lr = 1 and one task, Reptile's update lands exactly on the adapted weights."""
    keras.utils.set_random_seed(4)
    model = sinusoid_mlp()
    reptile = Reptile(model, inner_lr=0.01, inner_steps=3, inner_batch_size=20, meta_lr=1.0,
                      meta_lr_final=1.0, task_type="regression")
    rng = np.random.default_rng(4)
    x = rng.uniform(-5, 5, size=(1, 20, 1)).astype(np.float32)
    y = np.sin(x).astype(np.float32)
    # The full batch each step makes the inner loop deterministic: adapt on the task's data.
    expected = [w.numpy() for w in reptile.adapt(np.concatenate([x[0, :10], x[0, 10:]]),
                                                  np.concatenate([y[0, :10], y[0, 10:]]))]
    reptile.train_step(x[:, :10], y[:, :10], x[:, 10:], y[:, 10:])
    for variable, want in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-5, atol=1e-6)


def test_reptile_carries_its_inner_adam_state_across_tasks():
    """As in the paper's code, Adam's second moments and step count carry on from task to task
    (only the weights go back to theta); adapting at test time reads the state, changes nothing."""
    keras.utils.set_random_seed(5)
    reptile = Reptile(sinusoid_mlp(), inner_lr=0.01, inner_steps=3, inner_batch_size=20,
                      meta_lr=0.5, task_type="regression")
    rng = np.random.default_rng(5)
    x = rng.uniform(-5, 5, size=(4, 20, 1)).astype(np.float32)
    y = np.sin(x).astype(np.float32)
    # From a fresh state the first step is inner_lr * g / (|g| + 1e-8): the sign of the gradient
    # for every weight whose gradient is not tiny.
    theta = [v.numpy() for v in reptile.model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(reptile.model(x[0]) - y[0]))
    grads = tape.gradient(loss, reptile.model.trainable_variables)
    first = reptile.adapt(x[0], y[0], inner_steps=1)
    for w, t, g in zip(first, theta, grads):
        g = g.numpy()
        np.testing.assert_allclose(w.numpy(), t - 0.01 * g / (np.abs(g) + 1e-8), atol=1e-6)
    assert float(reptile.inner_step_count.numpy()) == 0.0  # adapt() left the state alone
    reptile.train_step(x[:, :10], y[:, :10], x[:, 10:], y[:, 10:])
    assert float(reptile.inner_step_count.numpy()) == 4 * 3  # 4 tasks x 3 inner steps
    moments = [m.numpy() for m in reptile.inner_moments]
    assert all(np.all(m >= 0) for m in moments) and any(np.any(m > 0) for m in moments)
    reptile.adapt(x[0], y[0])
    for before, after in zip(moments, reptile.inner_moments):
        np.testing.assert_array_equal(before, after.numpy())



def _episode(seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(6, 6, 6, 1)), np.tile(np.arange(3), 2),
            rng.normal(size=(9, 6, 6, 1)), np.tile(np.arange(3), 3))


def test_anil_adapts_only_the_head_and_meta_learns_everything():
    """Raghu et al. 2019 (arXiv 1909.09157), section 4: the inner loop changes the head only; the
    meta-gradient reaches the body too (through the head's adapted weights)."""
    keras.utils.set_random_seed(4)
    anil = ANIL(small_bn_net(), inner_lr=0.5, inner_steps=2)
    support_x, support_y, query_x, query_y = _episode(4)
    start = [v.numpy() for v in anil.model.trainable_variables]
    adapted = anil.adapt(support_x, support_y)
    head = {id(v) for v in anil.model.layers[-1].trainable_weights}
    for v, before, after in zip(anil.model.trainable_variables, start, adapted):
        changed = not np.array_equal(before, np.asarray(after))
        assert changed == (id(v) in head), v.path
    _, grads = meta_loss_and_grad(anil, support_x, support_y, query_x, query_y)
    assert all(np.any(g != 0) for g in grads)


def test_gradient_checkpointing_gives_the_same_meta_step_in_a_graph():
    """recompute_inner=True (tf.recompute_grad around each inner step) changes what is stored,
    not what is computed: same meta-gradient as plain MAML in train_step's graph."""
    keras.utils.set_random_seed(5)
    model = small_bn_net()
    weights = model.get_weights()
    batch = [np.stack([a, a[::-1]]) for a in _episode(5)]
    results = []
    for recompute in (False, True):
        model.set_weights(weights)
        maml = MAML(model, 0.5, inner_steps=3, recompute_inner=recompute,
                    meta_optimizer=keras.optimizers.SGD(1.0))
        maml.train_step(*batch)
        results.append([w - v.numpy() for w, v in zip(weights, model.trainable_variables)])
    for plain, checkpointed in zip(*results):
        np.testing.assert_allclose(checkpointed, plain, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("adapted_layers,error", [
    ("logits", TypeError), ([1], TypeError), (["no_such_layer"], ValueError), ([], ValueError),
])
def test_adapted_layers_must_name_layers_with_weights(adapted_layers, error):
    with pytest.raises(error, match="adapted_layers"):
        MAML(conv4(3, filters=4), inner_lr=0.1, adapted_layers=adapted_layers)
