"""The Meta-Learner LSTM (Ravi & Larochelle 2017): preprocessing, the cell update is gradient
descent when the gates say so, the meta-gradient treats gradient inputs as constants, checkpoints,
and learning happens."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.episodes import Episode, TaskFamily
from metalearn_helpers.learners import variable_tensors
from metalearn_helpers.maml import MAML
from metalearn_helpers.meta_lstm import MetaLearnerLSTM, preprocess
from metalearn_helpers.models import conv4
from metalearn_helpers.training import meta_train


def test_preprocessing_matches_hand_values():
    p = 10.0
    x = [1.0, -np.exp(-5.0), 3.0, 1e-5, -2e-5, 0.0, np.exp(-p)]
    expected = [
        [0.0, 1.0],                    # |x| >= e^-p: (log|x| / p, sign x)
        [-0.5, -1.0],
        [np.log(3.0) / p, 1.0],
        [-1.0, np.exp(p) * 1e-5],      # |x| < e^-p: (-1, e^p x)
        [-1.0, -np.exp(p) * 2e-5],
        [-1.0, 0.0],
        [-1.0, 1.0],                   # at the threshold both branches give (-1, sign x)
    ]
    np.testing.assert_allclose(preprocess(np.array(x)).numpy(), expected, rtol=1e-12, atol=1e-12)
    assert preprocess(tf.zeros((3, 4))).shape == (3, 4, 2)


def force_gates(meta_lstm, forget: float, input_: float):
    """Zero gate weights and biases giving constant gates f = forget, i = input_."""
    cell = meta_lstm.meta_learner
    cell.w_input.assign(np.zeros(cell.w_input.shape))
    cell.w_forget.assign(np.zeros(cell.w_forget.shape))
    cell.b_input.assign([np.log(input_ / (1 - input_))])
    cell.b_forget.assign([50.0 if forget == 1 else np.log(forget / (1 - forget))])


def test_cell_update_with_f_1_and_i_alpha_is_gradient_descent():
    """The paper's key observation: c_t = f_t c_{t-1} - i_t grad_t with f = 1, i = alpha is
    theta - alpha grad; two updates equal two steps of gradient descent (MAML's inner loop)."""
    keras.utils.set_random_seed(0)
    model = conv4(3, image_shape=(12, 12, 1), filters=4)
    alpha = 0.3
    meta_lstm = MetaLearnerLSTM(model, inner_steps=2)
    force_gates(meta_lstm, forget=1.0, input_=alpha)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 12, 12, 1)).astype(np.float32), np.tile(np.arange(3), 2)
    adapted, gates = meta_lstm.adapt(x, y, return_gates=True)
    expected = MAML(model, inner_lr=alpha, inner_steps=2).adapt(x, y)
    for got, want in zip(adapted, expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert gates["input"].shape == gates["forget"].shape == (2, len(model.trainable_variables))
    np.testing.assert_allclose(gates["input"].numpy(), alpha, rtol=1e-6)
    np.testing.assert_allclose(gates["forget"].numpy(), 1.0)
    assert gates["variables"][0] == model.trainable_variables[0].path


def tiny_float64_setup(inner_steps):
    """A linear 2-way classifier in float64 with gates that depend visibly on theta."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,), dtype="float64"),
                              keras.layers.Dense(2, dtype="float64", name="dense")],
                             name="learner")  # fixed names: auto-names depend on test order
    meta_lstm = MetaLearnerLSTM(model, inner_steps=inner_steps, hidden_size=5)
    rng = np.random.default_rng(3)
    cell = meta_lstm.meta_learner
    for weight in (cell.w_input, cell.w_forget):
        weight.assign(rng.normal(0, 0.5, size=weight.shape))
    cell.b_input.assign([0.0])   # i about 0.5: a big step, so second-order terms would matter
    cell.b_forget.assign([2.0])
    data = (rng.normal(size=(6, 3)), np.tile(np.arange(2), 3),
            rng.normal(size=(8, 3)), np.tile(np.arange(2), 4))
    return model, meta_lstm, data


def meta_loss_and_grads(meta_lstm, data):
    with tf.GradientTape() as tape:
        loss, _ = meta_lstm.query_loss(*data)
    return float(loss), [g.numpy() for g in tape.gradient(loss, variable_tensors(meta_lstm.meta_variables))]


def cross_entropy_and_grad(model, theta, x, y):
    params = [tf.constant(theta[:6].reshape(3, 2)), tf.constant(theta[6:])]
    with tf.GradientTape() as tape:
        tape.watch(params)
        logits = model.stateless_call(params, [], tf.constant(x))[0]
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits,
                                                                            from_logits=True))
    return loss.numpy(), np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, params)])


def test_meta_gradient_holds_gradient_and_loss_inputs_constant():
    """One update theta_1 = f * theta_0 - i * g with i, f = sigmoid(W [h, theta_0, 0] + b), by
    hand: with g, the loss and hence h held constant (the paper's section 3.2),
    dL/dtheta_0 = q (f + theta_0 f (1-f) W_F[theta] - g i (1-i) W_I[theta]), q = dL_query/dtheta_1.
    The true derivative (finite differences, through g's dependence on theta_0) differs."""
    model, meta_lstm, (sx, sy, qx, qy) = tiny_float64_setup(inner_steps=1)
    theta0 = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    cell = meta_lstm.meta_learner
    support_loss, g = cross_entropy_and_grad(model, theta0, sx, sy)
    features = np.concatenate([np.tile(preprocess([support_loss]).numpy(), (8, 1)),
                               preprocess(g).numpy()], axis=1)     # [loss (2), gradient (2)]
    zeros = tf.zeros((8, 5), tf.float64)
    h = cell.lstm(tf.constant(features), [zeros, zeros])[0].numpy()
    w_i, w_f = cell.w_input.numpy()[:, 0], cell.w_forget.numpy()[:, 0]
    inputs = np.concatenate([h, theta0[:, None], np.zeros((8, 1))], axis=1)  # [h, theta, gate_0]
    i = 1 / (1 + np.exp(-(inputs @ w_i + cell.b_input.numpy())))
    f = 1 / (1 + np.exp(-(inputs @ w_f + cell.b_forget.numpy())))
    theta1 = f * theta0 - i * g
    query_loss, q = cross_entropy_and_grad(model, theta1, qx, qy)

    loss, grads = meta_loss_and_grads(meta_lstm, (sx, sy, qx, qy))
    named = dict(zip([v.path for v in meta_lstm.meta_variables], grads))
    np.testing.assert_allclose(loss, query_loss, rtol=1e-12)
    d_theta0 = q * (f + theta0 * f * (1 - f) * w_f[5] - g * i * (1 - i) * w_i[5])
    got = np.concatenate([named["learner/dense/kernel"].ravel(),
                          named["learner/dense/bias"]])
    np.testing.assert_allclose(got, d_theta0, rtol=1e-9)
    d_input = q * -g * i * (1 - i)                      # dL/dz_I, per coordinate
    d_forget = q * theta0 * f * (1 - f)
    np.testing.assert_allclose(named["meta_learner/w_input"][:, 0], inputs.T @ d_input, rtol=1e-9)
    np.testing.assert_allclose(named["meta_learner/b_input"], [d_input.sum()], rtol=1e-9)
    np.testing.assert_allclose(named["meta_learner/w_forget"][:, 0], inputs.T @ d_forget,
                               rtol=1e-9)
    np.testing.assert_allclose(named["meta_learner/b_forget"], [d_forget.sum()], rtol=1e-9)

    # Finite differences of the query loss (g recomputed at every theta_0) disagree: the
    # meta-gradient is not the full derivative, second-order terms were dropped on purpose.
    eps, numeric = 1e-6, []
    for k in range(8):
        losses = []
        for sign in (1, -1):
            theta = theta0 + sign * eps * np.eye(8)[k]
            model.trainable_variables[0].assign(theta[:6].reshape(3, 2))
            model.trainable_variables[1].assign(theta[6:])
            losses.append(float(meta_lstm.query_loss(sx, sy, qx, qy)[0]))
        numeric.append((losses[0] - losses[1]) / (2 * eps))
    assert np.linalg.norm(np.array(numeric) - d_theta0) > 0.05 * np.linalg.norm(d_theta0)


def test_meta_gradient_reaches_every_meta_variable():
    """With two updates (so the LSTM's recurrent weights and the previous gates matter), every
    meta-variable, the first LSTM layer included, gets a finite, non-zero meta-gradient."""
    _, meta_lstm, data = tiny_float64_setup(inner_steps=2)
    _, grads = meta_loss_and_grads(meta_lstm, data)
    for variable, grad in zip(meta_lstm.meta_variables, grads):
        assert np.all(np.isfinite(grad)) and np.any(grad != 0), variable.path


class BrightSideTasks(TaskFamily):
    """Synthetic 2-way tasks: class images are bright on the left or on the right half; which
    label is "left" is drawn per task, so only adaptation on the support set can tell."""

    def __init__(self, n=6, size=28):
        self.n, self.size = n, size

    def sample(self, seed=None):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        flip, arrays = rng.integers(2), []
        for _ in ("support", "query"):
            y = np.tile(np.arange(2), self.n // 2).astype(np.int32)
            x = rng.normal(0, 0.3, size=(self.n, self.size, self.size, 1)).astype(np.float32)
            x[(y ^ flip) == 0, :, :self.size // 2] += 1.0
            x[(y ^ flip) == 1, :, self.size // 2:] += 1.0
            arrays += [x, y]
        return Episode(*arrays)


def test_a_few_iterations_beat_chance_on_a_learnable_task_family():
    """Cheap integration test (as for MAML): at initialisation the meta-learner takes small steps
    (input gate ~0.01) and stays near chance; eight meta-updates lift query accuracy well above
    it. A broken meta-update (or no adaptation) stays at 50 %. (Five updates at Adam(0.01) were
    not enough for every seed.)"""
    keras.utils.set_random_seed(0)
    tasks = BrightSideTasks()
    meta_lstm = MetaLearnerLSTM(conv4(2, filters=8), inner_steps=5,
                                meta_optimizer=keras.optimizers.Adam(0.03))

    def accuracy(seed):
        rng = np.random.default_rng(seed)
        return np.mean([meta_lstm.score_episode(BrightSideTasks(n=10).sample(rng))
                        for _ in range(5)])

    assert accuracy(1) < 0.7
    for step, batch in enumerate(tasks.batches(4, seed=0)):
        metrics = meta_lstm.train_step(*batch.arrays())
        if step == 7:
            break
    assert set(metrics) == {"loss", "accuracy"}
    assert accuracy(2) > 0.8


def test_checkpoint_round_trip_with_meta_train(tmp_path):
    run_dir = str(tmp_path / "run")
    tasks = BrightSideTasks(n=4, size=8)

    def make(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])   # quick to trace
        return MetaLearnerLSTM(model, inner_steps=2, hidden_size=4)

    first = make(0)
    meta_train(first, tasks, n_steps=2, meta_batch_size=2, run_dir=run_dir, progress=False)
    assert os.path.exists(os.path.join(run_dir, "history.json"))
    saved = [v.numpy() for v in first.meta_variables]

    second = make(1)  # other initial weights, replaced by the checkpoint's
    assert not np.allclose(second.meta_variables[-1].numpy(), saved[-1])
    history = meta_train(second, tasks, n_steps=3, meta_batch_size=2, run_dir=run_dir,
                         progress=False)  # resumes at step 2, restores optimizer state too
    assert history.step == 3
    reloaded = make(2)
    tf.train.Checkpoint(**reloaded.trackables()).restore(
        os.path.join(run_dir, "ckpt-2")).expect_partial()
    for variable, want in zip(reloaded.meta_variables, saved):
        np.testing.assert_array_equal(variable.numpy(), want, err_msg=variable.path)
    assert int(second.meta_optimizer.iterations) == 3


@pytest.mark.parametrize("kwargs,error", [
    (dict(inner_steps=0), "inner_steps"),
    (dict(eval_inner_steps=-1), "eval_inner_steps"),
    (dict(hidden_size=0), "hidden_size"),
    (dict(clipnorm=-0.25), "clipnorm"),
])
def test_invalid_parameters(kwargs, error):
    with pytest.raises(ValueError, match=error):
        MetaLearnerLSTM(conv4(2, filters=2), **kwargs)


def test_invalid_types_and_calls():
    with pytest.raises(TypeError, match="keras.Model"):
        MetaLearnerLSTM(lambda x: x)
    with pytest.raises(TypeError, match="inner_steps"):
        MetaLearnerLSTM(conv4(2, filters=2), inner_steps=1.5)
    with pytest.raises(TypeError, match="meta_optimizer"):
        MetaLearnerLSTM(conv4(2, filters=2), meta_optimizer="adam")
    meta_lstm = MetaLearnerLSTM(conv4(2, filters=2))
    x, y = np.zeros((2, 28, 28, 1), np.float32), np.arange(2)
    with pytest.raises(ValueError, match="inner_steps"):
        meta_lstm.adapt(x, y, inner_steps=0)
    with pytest.raises(ValueError, match="inner_steps"):
        meta_lstm.score_episode(Episode(x, y, x, y), inner_steps=0)
