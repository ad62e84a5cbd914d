"""The course's one meta-training loop: progress bar, learning curves, checkpoints, resume.

Introduced in notebook ``03_maml_sinusoid`` and shared by every algorithm notebook from 03 onwards
(optimisation-based, metric-based and model-based learners alike): an algorithm only says how to
make one meta-update; :func:`meta_train` does the rest the same way for all of them.

The loop needs two parts of the learner protocol of :mod:`metalearn_helpers.learners`:
``train_step(support_x, support_y, query_x, query_y) -> dict`` (one compiled meta-update on a
meta-batch; ``"loss"`` and every other entry are logged) and ``trackables()`` (what a
``tf.train.Checkpoint`` must save to resume; models must be built before training).

What the loop guarantees:

- Batches come from :func:`metalearn_helpers.episodes.episode_dataset` (prefetched on a background
  thread). A fresh run uses ``seed``; a resumed run reseeds the stream from ``(seed, step)`` so it
  does not replay the batches it has already trained on. A resumed run therefore sees different
  batches than an uninterrupted one: same distribution, not the same numbers.
- With ``run_dir``, a checkpoint (the step counter + ``trackables()``) and ``history.json`` are
  written at step 0, every ``checkpoint_every`` steps, at the end and when the run is interrupted
  (Jupyter's stop button), and calling :func:`meta_train` again with the same ``run_dir``
  continues from the last checkpoint; ``n_steps`` is the total, so a finished run returns at once.
- With a ``tf.distribute`` ``strategy``, the tasks of each meta-batch are split across its
  replicas and the update equals the single-device one (:mod:`metalearn_helpers.distributed`);
  checkpoints resume under any strategy.
- A non-finite loss stops the run with ``FloatingPointError``; the algorithm's variables are put
  back to the last good checkpoint (or, without ``run_dir``, to the last log point) first, and
  only finite states are ever saved.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from .checks import check_int
from .distributed import DistributedStep, check_same_step, worker_run_dir
from .episodes import episode_dataset
from .history import HISTORY_FILE, History
from .learners import check_learner

MAX_CHECKPOINTS_KEPT = 3


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


# -- state: variables, snapshots, checkpoints -----------------------------------------------------
def _variables(checkpoint: tf.train.Checkpoint) -> list:
    """Every variable a checkpoint reaches (model weights, optimizer slots, step counter...).

    Taken both from TensorFlow's object graph and from each Keras model's and optimizer's own
    ``variables``: in Keras 3.6 and older the graph's variables are not ``keras.Variable``
    instances, so the graph alone found none of them and NaN recovery silently restored nothing.
    Raises RuntimeError rather than return nothing."""
    found = {}
    for obj in tf.train.TrackableView(checkpoint).descendants():
        if isinstance(obj, (tf.Variable, keras.Variable)):
            found.setdefault(id(obj), obj)
        elif isinstance(obj, (keras.layers.Layer, keras.optimizers.Optimizer)):
            for variable in obj.variables:
                found.setdefault(id(variable), variable)
    if not found:
        names = sorted(tf.train.TrackableView.children(checkpoint))
        raise RuntimeError(
            f"found no variables in the checkpoint of {names} "
            f"(Keras {keras.__version__}, TensorFlow {tf.__version__}), so nothing could be "
            f"restored; build the model and its optimizer first, and use the supported versions "
            f"(metalearn_helpers.versions.SUPPORTED).")
    return list(found.values())


class _Snapshot:
    """The values of every variable at one step, in memory, to go back to after a divergence."""

    def __init__(self, checkpoint: tf.train.Checkpoint, step: int):
        self.checkpoint, self.step = checkpoint, step
        self.values = {id(v): (v, np.array(v.numpy())) for v in _variables(checkpoint)}

    def finite(self) -> bool:
        return all(np.isfinite(a).all() for _, a in self.values.values()
                   if np.issubdtype(a.dtype, np.floating))

    def restore(self) -> None:
        """Put every variable back. Variables created since (e.g. the optimizer slots a Keras
        optimizer builds on its first update) go back to zeros, as Keras initialises them."""
        for v in _variables(self.checkpoint):
            if id(v) in self.values:
                v.assign(self.values[id(v)][1])
            else:
                v.assign(np.zeros(v.shape, np.array(v.numpy()).dtype))


def _different_model_error(run_dir, path, cause) -> ValueError:
    cause = " ".join(str(cause).split())  # TensorFlow's messages can span many lines
    cause = cause if len(cause) <= 600 else cause[:600] + " ..."
    return ValueError(
        f"The checkpoint in run_dir={str(run_dir)!r} ({os.path.basename(path)}) was made for a "
        f"different model (another architecture, shapes or set of variables) than this "
        f"algorithm's trackables(): {cause}\nThe checkpoint was left untouched. To start a new "
        f"run, re-create the model and its optimizer (re-run the cells that build them) and pass "
        f"another run_dir; delete {str(run_dir)!r} only if you no longer need that run."
    )


def _checked_trackables(algorithm) -> dict:
    check_learner(algorithm, needs=("train_step", "trackables"))
    trackables = algorithm.trackables()
    if not isinstance(trackables, Mapping) or not trackables:
        raise TypeError(f"algorithm.trackables() must return a non-empty dict of name -> "
                        f"trackable (model, optimizer, variables); got {trackables!r}.")
    for name in trackables:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"algorithm.trackables() keys must be identifiers, got {name!r}.")
        if name in ("step", "save_counter"):
            raise ValueError(f"algorithm.trackables() must not use the name {name!r}: "
                             f"meta_train's checkpoint uses it.")
    for name, obj in trackables.items():
        if isinstance(obj, keras.layers.Layer) and not obj.built:
            raise ValueError(f"algorithm.trackables()[{name!r}] is a Keras model/layer that is not "
                             f"built yet; build it (e.g. give it a keras.Input) before meta_train "
                             f"so a checkpoint can be restored into it.")
    return dict(trackables)


def _stream_seed(seed: int, step: int) -> int:
    """The episode stream's seed: ``seed`` for a fresh run, a fresh stream per resume step."""
    if step == 0:
        return seed
    return int(np.random.SeedSequence([seed, step]).generate_state(1, np.uint64)[0])


# -- the loop -------------------------------------------------------------------------------------
def meta_train(algorithm, tasks, *, n_steps: int, meta_batch_size: int, seed: int = 0,
               run_dir=None, validate: Callable[[], Mapping[str, float]] | None = None,
               validate_every: int = 500, checkpoint_every: int = 500, log_every: int = 10,
               progress: bool = True, live_plot: bool = False, strategy=None) -> History:
    """Meta-train ``algorithm`` on meta-batches of ``tasks`` for ``n_steps`` meta-updates in total.

    Introduced in notebook ``03_maml_sinusoid``; every algorithm notebook from 03 onwards trains
    with it. ``algorithm`` follows the protocol of this module's docstring (``train_step`` and
    ``trackables``).

    Args:
        algorithm: the learner (anything with ``train_step`` and ``trackables``).
        tasks: a task family of :mod:`metalearn_helpers.episodes` (``OmniglotEpisodes``,
            ``SinusoidTasks``).
        n_steps: total meta-updates, counting those done before a resume.
        meta_batch_size: tasks per meta-update.
        seed: seed of the episode stream (not of the model's initial weights: seed those with
            ``keras.utils.set_random_seed`` before building the model).
        run_dir: folder for checkpoints and ``history.json``; if it holds a checkpoint, training
            resumes from it. ``None``: nothing is written, and every call counts from step 0.
        validate: optional ``() -> dict[str, float]``, e.g. mean accuracy on validation episodes,
            run every ``validate_every`` steps and at the end.
        validate_every, checkpoint_every, log_every: intervals in steps; training metrics are
            averaged over each ``log_every`` steps.
        progress: show a ``tqdm`` progress bar with the latest metrics.
        live_plot: in a notebook, redraw the learning curves in place while training
            (:class:`metalearn_helpers.plots.LivePlot`).
        strategy: a ``tf.distribute.Strategy`` to split each meta-batch's tasks across devices
            or machines (:func:`metalearn_helpers.distributed.make_strategy`); build the
            algorithm under ``strategy.scope()``. ``None``: ``algorithm.train_step`` as it is.
            Under a multi-worker strategy, workers other than the chief keep their checkpoints
            in ``run_dir/worker-<i>``.

    Returns:
        The :class:`History` of the whole run (including the sessions before a resume).

    Raises:
        ValueError: the checkpoint in ``run_dir`` was made for a different model (it is kept).
        FloatingPointError: the loss became NaN or infinite; the message names the step, and the
            algorithm's variables are back at the last good checkpoint (the exception's
            ``history`` attribute holds the history up to it).
        KeyboardInterrupt: after saving a checkpoint at the current step (with ``run_dir``).

    Example::

        history = meta_train(maml, SinusoidTasks(), n_steps=5000, meta_batch_size=25,
                             run_dir="runs/maml_sinusoid", validate=lambda: {"mse": ...})
        history.plot()
    """
    check_int("n_steps", n_steps)
    check_int("meta_batch_size", meta_batch_size)
    check_int("seed", seed, minimum=0)
    for name, value in dict(validate_every=validate_every, checkpoint_every=checkpoint_every,
                            log_every=log_every).items():
        check_int(name, value)
    if validate is not None and not callable(validate):
        raise TypeError(f"validate must be a callable () -> dict[str, float] or None, got "
                        f"{type(validate).__name__}.")
    if not (callable(getattr(tasks, "sample", None)) and callable(getattr(tasks, "batches", None))):
        raise TypeError(f"tasks must be a task family from metalearn_helpers.episodes "
                        f"(OmniglotEpisodes, SinusoidTasks), got {type(tasks).__name__}.")
    trackables = _checked_trackables(algorithm)
    config = dict(n_steps=int(n_steps), meta_batch_size=int(meta_batch_size), seed=int(seed),
                  log_every=int(log_every), validate_every=int(validate_every),
                  checkpoint_every=int(checkpoint_every))
    if strategy is None:
        train_step = algorithm.train_step
    else:
        train_step = DistributedStep(algorithm, strategy, meta_batch_size)
        config["replicas"] = strategy.num_replicas_in_sync
        run_dir = worker_run_dir(run_dir, strategy)
    run = _Run(algorithm, trackables, run_dir, config, validate, progress, live_plot,
               train_step, strategy)
    return run.train(tasks)


class _Run:
    """The state of one call to :func:`meta_train` (kept out of it so each part fits a screen)."""

    def __init__(self, algorithm, trackables, run_dir, config, validate, progress, live_plot,
                 train_step, strategy):
        self.algorithm, self.run_dir, self.config = algorithm, run_dir, config
        self.train_step, self.strategy = train_step, strategy
        self.validate, self.progress = validate, progress
        self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step_var, **trackables)
        self.checkpoint.save_counter  # created now, so a restore leaves nothing pending for it
        self.history = History(config=dict(config))
        self.manager, self.last_saved, self.pending_check, self.good = None, None, None, None
        self.step, self.window = 0, {}
        self.live = None
        if live_plot:
            if _in_notebook():
                from .plots import LivePlot  # imported here: training draws only when asked

                self.live = LivePlot()
            else:
                warnings.warn("live_plot=True needs a Jupyter notebook; no live plot here "
                              "(use history.plot() afterwards).", stacklevel=3)

    # -- start / resume ---------------------------------------------------------------------------
    def _start(self) -> None:
        if self.run_dir is None:
            return
        os.makedirs(self.run_dir, exist_ok=True)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.run_dir),
                                                  max_to_keep=MAX_CHECKPOINTS_KEPT)
        path = self.manager.latest_checkpoint
        if path is None:
            return
        before, status = _Snapshot(self.checkpoint, 0), None
        try:
            status = self.checkpoint.restore(path)
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            if status is not None:
                status.expect_partial()
            before.restore()  # do not leave the model half-overwritten with the old run's weights
            raise _different_model_error(self.run_dir, path, e) from None
        # Variables not built yet (optimizer slots) are restored when created; whether the
        # checkpoint held nothing else is checked after the first step.
        self.pending_check = (status, path)
        self.step = self.last_saved = int(self.step_var.numpy())
        history_path = os.path.join(self.run_dir, HISTORY_FILE)
        if os.path.exists(history_path):
            old = History.load(history_path).truncate(self.step)
            for key in ("seed", "meta_batch_size"):
                if key in old.config and old.config[key] != self.config[key]:
                    warnings.warn(f"resuming a run made with {key}={old.config[key]} with "
                                  f"{key}={self.config[key]}.", stacklevel=4)
            self.history = History(old.train, old.validation, {**old.config, **self.config})
        print(f"resuming from step {self.step} (checkpoint {path})")
        if self.step >= self.config["n_steps"]:
            print(f"nothing to do: the run has already reached n_steps={self.config['n_steps']}.")

    def _check_restored_everything(self) -> None:
        status, path = self.pending_check
        self.pending_check = None
        try:
            status.assert_consumed()
        except AssertionError as e:
            status.expect_partial()
            raise _different_model_error(self.run_dir, path, e) from None

    # -- saving -----------------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        self.step_var.assign(self.step)
        snapshot = _Snapshot(self.checkpoint, self.step)
        if not snapshot.finite():
            self._diverged(f"some variables became NaN or infinite by step {self.step}")
        return snapshot

    def _save(self) -> None:
        self.good = self._snapshot()
        self.manager.save(checkpoint_number=self.step)
        self.history.save(os.path.join(self.run_dir, HISTORY_FILE))
        self.last_saved = self.step

    def _diverged(self, what: str):
        """Go back to the last good state, then stop with FloatingPointError."""
        good = self.good
        good.restore()
        if self.manager is not None and self.manager.latest_checkpoint:
            # Also what the snapshot could not hold: optimizer slots restored lazily on resume.
            self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
            where = (f"the last good checkpoint (step {good.step}) in run_dir="
                     f"{str(self.run_dir)!r} is kept, and the algorithm's variables were restored "
                     f"from it; calling meta_train again resumes from step {good.step}")
        else:
            where = (f"nothing was saved (run_dir is None); the algorithm's variables were put "
                     f"back to their values at step {good.step}, the last log point")
        self.history = self.history.truncate(good.step)
        error = FloatingPointError(
            f"meta_train stopped: {what}. {where[0].upper()}{where[1:]}. Common causes: a learning "
            f"rate that is too large, or a log/division of zero in the loss.")
        error.history = self.history
        raise error

    # -- logging ----------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def _log(self) -> None:
        if not self.window:
            return
        metrics = {k: float(np.mean(v)) for k, v in self.window.items()}
        self.window = {}
        self.history.train.append(dict(step=self.step, elapsed=self._elapsed(), metrics=metrics))
        if self.manager is None:
            self.good = self._snapshot()
        self._show(metrics)

    def _run_validation(self) -> None:
        results = self.validate()
        if not isinstance(results, Mapping):
            raise TypeError(f"validate() must return a dict of name -> number, got "
                            f"{type(results).__name__}.")
        metrics = {str(k): float(np.mean(v)) for k, v in results.items()}
        self.history.validation.append(dict(step=self.step, elapsed=self._elapsed(),
                                            metrics=metrics))
        self._show({k if k.startswith("val_") else f"val_{k}": v for k, v in metrics.items()})

    def _show(self, metrics) -> None:
        self.postfix.update({k: f"{v:.4g}" for k, v in metrics.items()})
        self.bar.set_postfix(self.postfix, refresh=False)
        if self.live is not None:
            self.live.update(self.history)

    # -- the loop ---------------------------------------------------------------------------------
    def train(self, tasks) -> History:
        from .progress import tqdm

        self._start()
        if self.strategy is not None:
            check_same_step(self.strategy, self.step)
        n_steps = self.config["n_steps"]
        if self.step >= n_steps:
            if self.pending_check is not None:
                self.pending_check[0].expect_partial()  # nothing will build the optimizer slots
            if self.live is not None:
                self.live.update(self.history, force=True)
            return self.history
        self.t0, self.elapsed_before = time.perf_counter(), self.history.elapsed
        self.good = _Snapshot(self.checkpoint, self.step)
        if self.manager is not None and self.last_saved is None:
            self._save()  # step 0: a fresh run always has a good checkpoint to go back to
        batches = iter(episode_dataset(tasks, self.config["meta_batch_size"],
                                       seed=_stream_seed(self.config["seed"], self.step)))
        self.postfix = {}
        self.bar = tqdm(total=n_steps, initial=self.step, desc="meta-training", unit="step",
                        disable=not self.progress, dynamic_ncols=True)
        try:
            while self.step < n_steps:
                self._one_step(next(batches))
        except KeyboardInterrupt as interrupt:
            self._log()
            if self.manager is not None and self.step != self.last_saved:
                self._save()
                print(f"\ninterrupted: checkpoint saved at step {self.step} in "
                      f"{str(self.run_dir)!r}; run again to resume.")
            interrupt.history = self.history
            raise
        finally:
            self.bar.close()
        if self.live is not None:
            self.live.update(self.history, force=True)
        return self.history

    def _one_step(self, batch) -> None:
        metrics = self.train_step(*batch)
        self.step += 1
        if not isinstance(metrics, Mapping) or "loss" not in metrics:
            raise TypeError(f"algorithm.train_step must return a dict of metrics with a 'loss' "
                            f"entry, got {metrics!r}.")
        values = {k: float(np.mean(np.asarray(v))) for k, v in metrics.items()}
        if not math.isfinite(values["loss"]):
            self._diverged(f"the loss is {values['loss']} at step {self.step}")
        if self.pending_check is not None:
            self._check_restored_everything()
        for k, v in values.items():
            self.window.setdefault(k, []).append(v)
        self.bar.update(1)
        last = self.step == self.config["n_steps"]
        if last or self.step % self.config["log_every"] == 0:
            self._log()
        if self.validate is not None and (last or self.step % self.config["validate_every"] == 0):
            self._run_validation()
        if self.manager is not None and (last or self.step % self.config["checkpoint_every"] == 0):
            self._save()


# -- long runs from a script ----------------------------------------------------------------------
def checkpoint_step(run_dir) -> int:
    """The step of the latest checkpoint in ``run_dir`` (0 when there is none)."""
    latest = tf.train.latest_checkpoint(str(run_dir))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def train_or_resume(train: Callable[[int], tuple], n_steps: int, run_dir, *,
                    train_more: bool = True):
    """What the training scripts in ``scripts/`` do with a run: ``train(n_steps)`` (a function
    that calls :func:`meta_train` with ``run_dir``, so it resumes) until it finishes or is
    interrupted (Ctrl-C, ``timeout -s INT``: the loop saves a checkpoint first), then the learner
    restored from the latest checkpoint, ready to be evaluated and exported.

    Args:
        train: ``train(n_steps) -> (algorithm, history)``.
        n_steps: the total steps planned.
        run_dir: the run's checkpoint folder.
        train_more: False to only restore (a script's ``--eval-only``).

    Returns:
        ``(algorithm, steps, interrupted)``; ``algorithm`` is None when ``run_dir`` holds no
        checkpoint.
    """
    interrupted = False
    if train_more:
        try:
            train(n_steps)
        except KeyboardInterrupt:
            interrupted = True
            print(f"\ninterrupted: checkpoint saved at step {checkpoint_step(run_dir)}")
    steps = checkpoint_step(run_dir)
    if steps == 0:
        return None, 0, interrupted
    algorithm, _ = train(steps)  # restores the latest checkpoint, trains nothing
    return algorithm, steps, interrupted
