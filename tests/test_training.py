"""Tests of the shared meta-training loop (metalearn_helpers.training) with a toy algorithm."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers import plots, training
from metalearn_helpers.episodes import SinusoidTasks
from metalearn_helpers.plots import plot_history
from metalearn_helpers.history import History
from metalearn_helpers.training import checkpoint_step, meta_train, train_or_resume

TASKS = SinusoidTasks(k_shot=5, n_query=5)


class ToyRegression:
    """The smallest algorithm that satisfies the protocol: one linear model (plus optional hidden
    layers) fitted by Adam to the query sets of all tasks. It also records what the loop did:
    how often it was called, the first batch it saw and every variable after every call; and it
    can simulate a divergence (``nan_at``) or Jupyter's stop button (``interrupt_at``)."""

    def __init__(self, hidden=(), nan_at=None, interrupt_at=None):
        keras.utils.set_random_seed(0)
        self.model = keras.Sequential(
            [keras.Input((1,)), *[keras.layers.Dense(u, activation="tanh") for u in hidden],
             keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(2.0),
                                bias_initializer=keras.initializers.Constant(1.0))])
        self.optimizer = keras.optimizers.Adam(0.1)  # built by its first update, not before
        self.nan_at, self.interrupt_at = nan_at, interrupt_at
        self.calls, self.first_batch, self.before_first_call, self.after = 0, None, None, {}
        self._train_step = tf.function(self._step)

    def _step(self, support_x, support_y, query_x, query_y):
        x, y = tf.reshape(query_x, (-1, 1)), tf.reshape(query_y, (-1, 1))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(x) - y))
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "mse": loss}

    def train_step(self, *batch):
        self.calls += 1
        if self.calls == 1:
            self.first_batch = [b.numpy() for b in batch]
            self.before_first_call = self.state()
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        metrics = self._train_step(*batch)
        if self.calls == self.nan_at:  # diverge: poison every float variable
            for v in self.float_variables():
                v.assign(tf.fill(v.shape, np.nan))
            metrics = dict(metrics, loss=tf.constant(np.nan))
        self.after[self.calls] = self.state()
        return metrics

    def float_variables(self):
        return [v for v in self.model.weights + self.optimizer.variables
                if np.issubdtype(np.dtype(v.dtype), np.floating)]

    def state(self):
        """Every variable's value, including the optimizer's step count and moments."""
        return [np.array(v.numpy()) for v in self.model.weights + self.optimizer.variables]

    def trackables(self):
        return {"model": self.model, "optimizer": self.optimizer}


def assert_same_state(actual, expected):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def run(algorithm, n_steps, run_dir=None, **kwargs):
    kwargs = dict(dict(meta_batch_size=4, log_every=5, checkpoint_every=10, progress=False),
                  **kwargs)
    return meta_train(algorithm, TASKS, n_steps=n_steps, run_dir=run_dir, **kwargs)


def dir_listing(path):
    return {name: (os.path.getsize(os.path.join(path, name)),
                   os.path.getmtime(os.path.join(path, name))) for name in os.listdir(path)}


def test_loss_decreases_with_validation_history_and_plot(tmp_path, capsys):
    algorithm = ToyRegression()
    episodes = [TASKS.sample(seed) for seed in range(20)]

    def validate():
        errors = [np.mean((algorithm.model(e.query_x).numpy() - e.query_y) ** 2) for e in episodes]
        return {"mse": float(np.mean(errors))}

    with pytest.warns(UserWarning, match="live_plot"):  # no notebook here
        history = run(algorithm, 50, validate=validate, validate_every=25, log_every=10,
                      progress=True, live_plot=True)
    losses = history.series("loss")[1]
    assert list(history.series("loss")[0]) == [10, 20, 30, 40, 50]
    assert losses[-1] < 0.5 * losses[0], losses
    val_steps, val_mse = history.series("mse", validation=True)
    assert list(val_steps) == [25, 50] and val_mse[-1] < val_mse[0] * 1.5
    assert np.all(np.diff([r["elapsed"] for r in history.train]) >= 0)
    assert "meta-training" in capsys.readouterr().err  # the progress bar

    again = History.from_json(history.to_json())
    assert again == history and json.loads(history.to_json())["config"]["meta_batch_size"] == 4
    fig = plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "mse"]
    assert len(history.plot("mse").axes) == 1


def test_plot_puts_validation_on_the_training_metric_panel():
    history = History(
        train=[dict(step=s, elapsed=s / 10, metrics=dict(loss=1 / s, accuracy=1 - 1 / s))
               for s in (10, 20, 30)],
        validation=[dict(step=s, elapsed=s / 10, metrics=dict(val_accuracy=0.5, time=3.0))
                    for s in (15, 30)])
    fig = plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "time"]
    assert [line.get_label() for line in fig.axes[1].lines] == ["meta-training", "validation"]
    assert [ax.get_title() for ax in plot_history(history, ["val_accuracy"]).axes] == [
        "val_accuracy"]


def test_live_plot_updates_one_display_in_place(monkeypatch):
    import IPython.display

    updates = []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    monkeypatch.setattr(training, "_in_notebook", lambda: True)
    monkeypatch.setattr(plots.LivePlot, "min_interval", 0.0)
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: Handle())
    run(ToyRegression(), 10, live_plot=True)
    assert updates and all(isinstance(u, IPython.display.Image) for u in updates)


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    first = ToyRegression()
    run(first, 20, run_dir)
    assert os.path.exists(os.path.join(run_dir, "history.json"))

    second = ToyRegression()
    history = run(second, 40, run_dir)
    assert "resuming from step 20" in capsys.readouterr().out
    assert second.calls == 20
    # It starts exactly where the first run stopped, optimizer state included...
    assert_same_state(second.before_first_call[:2], first.after[20][:2])
    assert int(second.optimizer.iterations.numpy()) == 40
    # ...Adam's moments too, restored when the optimizer creates them inside tf.function: the
    # first resumed step equals one step from a fully (eagerly) restored copy on the same batch.
    reference = ToyRegression()
    tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64), **reference.trackables()).restore(
        os.path.join(run_dir, "ckpt-20")).expect_partial()
    reference.optimizer.build(reference.model.trainable_variables)
    reference._train_step(*second.first_batch)
    assert_same_state(reference.state(), second.after[1])
    # The episode stream is reseeded from (seed, step): no replay of the first batches. So the
    # weights differ from an uninterrupted 40-step run by design; check continuity instead.
    assert not np.array_equal(second.first_batch[2], first.first_batch[2])
    assert [r["step"] for r in history.train] == list(range(5, 41, 5))
    assert np.all(np.diff([r["elapsed"] for r in history.train]) >= 0)
    assert History.load(os.path.join(run_dir, "history.json")) == history

    finished = ToyRegression()
    assert run(finished, 40, run_dir) == history and finished.calls == 0


def test_same_seed_same_run():
    a, b = ToyRegression(), ToyRegression()
    run(a, 10)
    run(b, 10)
    for x, y in zip(a.first_batch, b.first_batch):
        np.testing.assert_array_equal(x, y)
    assert_same_state(a.state(), b.state())


@pytest.mark.parametrize("hidden_then, hidden_now", [((), (4,)), ((), (1,)), ((1,), ())],
                         ids=["other-shapes", "extra-layer", "missing-layer"])
def test_checkpoint_of_another_model_is_refused_and_kept(tmp_path, hidden_then, hidden_now):
    run_dir = str(tmp_path / "run")
    run(ToyRegression(hidden_then), 3, run_dir)
    files = dir_listing(run_dir)
    other = ToyRegression(hidden_now)
    initial = other.state()
    with pytest.raises(ValueError, match="was made for a different model") as error:
        run(other, 6, run_dir)
    assert run_dir in str(error.value)
    assert dir_listing(run_dir) == files
    if other.calls == 0:  # refused before training: the model is as it was built
        assert_same_state(other.state(), initial)


def test_nan_restores_the_last_checkpoint(tmp_path):
    run_dir = str(tmp_path / "run")
    algorithm = ToyRegression(nan_at=13)
    with pytest.raises(FloatingPointError, match=r"at step 13\b") as error:
        run(algorithm, 30, run_dir)
    message = str(error.value)
    assert "last good checkpoint (step 10)" in message and run_dir in message
    assert_same_state(algorithm.state(), algorithm.after[10])
    assert error.value.history.step == 10
    # The checkpoint on disk holds step 10 too, and nothing after it was saved.
    fresh = ToyRegression()
    checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64), **fresh.trackables())
    checkpoint.restore(tf.train.latest_checkpoint(run_dir)).expect_partial()
    assert int(checkpoint.step.numpy()) == 10
    assert_same_state(fresh.state()[:2], algorithm.after[10][:2])
    assert History.load(os.path.join(run_dir, "history.json")).step == 10


@pytest.mark.parametrize("nan_at, good_step", [(13, 10), (3, 0)])
def test_nan_without_run_dir_restores_the_last_log_point(nan_at, good_step):
    algorithm = ToyRegression(nan_at=nan_at)
    initial = algorithm.state()
    with pytest.raises(FloatingPointError, match=f"at step {nan_at}") as error:
        run(algorithm, 30)
    assert f"step {good_step}" in str(error.value)
    if good_step:
        assert_same_state(algorithm.state(), algorithm.after[good_step])
    else:  # before the optimizer existed: initial weights, optimizer moments back to zeros
        assert_same_state(algorithm.state()[:2], initial[:2])
        assert int(algorithm.optimizer.iterations.numpy()) == 0
        assert all(np.all(v.numpy() == 0) for v in algorithm.optimizer.variables[2:])


def test_keyboard_interrupt_saves_a_checkpoint_to_resume_from(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    algorithm = ToyRegression(interrupt_at=8)  # stop pressed during the 8th step: 7 are done
    with pytest.raises(KeyboardInterrupt):
        run(algorithm, 20, run_dir)
    assert tf.train.latest_checkpoint(run_dir).endswith("ckpt-7")
    assert [r["step"] for r in History.load(os.path.join(run_dir, "history.json")).train] == [5, 7]

    resumed = ToyRegression()
    history = run(resumed, 10, run_dir)
    assert "resuming from step 7" in capsys.readouterr().out
    assert resumed.calls == 3
    assert_same_state(resumed.before_first_call[:2], algorithm.after[7][:2])
    assert [r["step"] for r in history.train] == [5, 7, 10]


def test_train_or_resume_restores_the_interrupted_run_for_export(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    learners = []

    def train(n_steps):  # as the scripts do: a fresh learner each call, resumed from run_dir
        learners.append(ToyRegression(interrupt_at=8 if not learners else None))
        return learners[-1], run(learners[-1], n_steps, run_dir)

    assert train_or_resume(train, 20, run_dir, train_more=False) == (None, 0, False)
    assert not learners  # no checkpoint yet: nothing restored, nothing to evaluate
    algorithm, steps, interrupted = train_or_resume(train, 20, run_dir)
    assert (steps, interrupted) == (7, True) and checkpoint_step(run_dir) == 7
    assert "interrupted: checkpoint saved at step 7" in capsys.readouterr().out
    assert algorithm is learners[1] and algorithm.calls == 0  # restored, not trained further
    assert_same_state(algorithm.state()[:2], learners[0].after[7][:2])


class NoTrackables:
    def train_step(self, *batch):
        return {"loss": 0.0}


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_steps=0), ValueError, "n_steps"),
    (dict(n_steps=2.5), TypeError, "n_steps"),
    (dict(meta_batch_size=True), TypeError, "meta_batch_size"),
    (dict(meta_batch_size=-1), ValueError, "meta_batch_size"),
    (dict(log_every=0), ValueError, "log_every"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(validate=3), TypeError, "validate"),
    (dict(algorithm=object()), TypeError, "train_step"),
    (dict(algorithm=NoTrackables()), TypeError, "trackables"),
    (dict(tasks=[1, 2, 3]), TypeError, "task family"),
])
def test_bad_arguments_raise(kwargs, error, match):
    arguments = dict(algorithm=ToyRegression(), tasks=TASKS, n_steps=5, meta_batch_size=2)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        meta_train(arguments.pop("algorithm"), arguments.pop("tasks"), **arguments)


def test_train_step_without_loss_raises():
    class NoLoss(ToyRegression):
        def train_step(self, *batch):
            return {"mse": super().train_step(*batch)["mse"]}

    with pytest.raises(TypeError, match="'loss'"):
        run(NoLoss(), 3)
