"""meta_train under tf.distribute: real distributed runs, compared with one device.

Distributed runs happen in subprocesses (run this file as a script): logical CPU devices must be
configured before TensorFlow starts, and a MultiWorkerMirroredStrategy needs one process per
worker. After 3 meta-steps from the same weights and tasks, every meta-variable (batch-norm
averages included) must equal the single-device run's: to ``|a - b| <= 1e-12 |b| + 1e-15`` for
learners in float64 (the MAML family on the sinusoid MLP), to ``|a - b| <= 1e-4 |b| + 1e-5`` for
learners in float32 (the metric learners and the baseline on a small Conv-4 with batch norm,
whose float32 sums in another order differ by ~1e-7 per step). They use SGD: Adam's first steps
are about ``lr * sign(g)``, which would turn rounding noise in the near-zero gradient of a bias
before batch norm into full-size steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOLERANCES = {"float64": (1e-12, 1e-15), "float32": (1e-4, 1e-5)}  # (rtol, atol)
N_STEPS, META_BATCH_SIZE = 3, 4
SUBPROCESS_TIMEOUT = 240  # seconds; a run takes ~30 s on two shared cores
WORKER_GRACE_SECONDS = 60  # how long the other workers may take after the chief has finished
COLLECTIVE_TIMEOUT = 20  # seconds (make_strategy's timeout_seconds) in the workers


# -- what the subprocesses run ----------------------------------------------------------------
def _build(name: str):
    """A small learner of kind ``name`` and a matching task family, from fixed weights."""
    import keras
    import numpy as np

    from metalearn_helpers.baseline import FineTuneBaseline
    from metalearn_helpers.episodes import LabelledImageEpisodes, SinusoidTasks
    from metalearn_helpers.maml import MAML, MetaSGD
    from metalearn_helpers.matching import MatchingNetwork
    from metalearn_helpers.models import conv4, sinusoid_mlp
    from metalearn_helpers.protonet import ProtoNet
    from metalearn_helpers.reptile import Reptile

    keras.utils.set_random_seed(0)
    if name in ("maml", "fomaml", "metasgd", "reptile"):
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        try:
            model = sinusoid_mlp(hidden=(16, 16))
        finally:
            keras.config.set_floatx("float32")
            keras.config.set_dtype_policy("float32")  # the policy keeps the floatx it was made with
        if name == "reptile":
            return Reptile(model, task_type="regression"), SinusoidTasks()
        learner = MetaSGD if name == "metasgd" else MAML
        return (learner(model, inner_lr=0.01, task_type="regression",
                        first_order=name == "fomaml"), SinusoidTasks())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8 * 5, 28, 28), dtype=np.uint8)
    tasks = LabelledImageEpisodes(images, np.repeat(np.arange(8), 5), n_way=3, k_shot=2,
                                  n_query=2)
    embedding = conv4(None, filters=8, downsample="maxpool", norm="running")
    sgd = keras.optimizers.SGD(0.05)
    if name == "baseline":
        return FineTuneBaseline(embedding, n_classes=3, meta_optimizer=sgd), tasks
    learner = ProtoNet if name == "protonet" else MatchingNetwork
    return learner(embedding, meta_optimizer=sgd), tasks


def _difference(a, b) -> list:
    """``[dtype, worst |a - b| / (atol + rtol |b|)]`` over the two learners' meta-variables:
    equal within the tolerance when at most 1."""
    import numpy as np

    dtype = a.meta_variables[0].dtype
    rtol, atol = TOLERANCES[str(dtype)]
    return [str(dtype), max(float(np.max(np.abs(x.numpy() - y.numpy())
                                         / (atol + rtol * np.abs(y.numpy()))))
                            for x, y in zip(a.meta_variables, b.meta_variables))]


def _train(name, strategy=None, n_steps=N_STEPS, meta_batch_size=META_BATCH_SIZE, run_dir=None):
    from metalearn_helpers.training import meta_train

    if strategy is None:
        learner, tasks = _build(name)
    else:
        with strategy.scope():
            learner, tasks = _build(name)
    meta_train(learner, tasks, n_steps=n_steps, meta_batch_size=meta_batch_size, seed=3,
               run_dir=run_dir, progress=False, strategy=strategy, checkpoint_every=1)
    return learner


def _mirrored_main(out: Path) -> None:
    """Two logical CPU devices: each learner 3 steps mirrored vs one device, an uneven split,
    the bad inputs, and resuming across strategies."""
    import tempfile

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {"replicas": strategy.num_replicas_in_sync}
    for name in ("maml", "metasgd", "protonet", "matching", "baseline"):
        results[name] = _difference(_train(name, strategy), _train(name))
    results["maml_uneven_3_tasks"] = _difference(_train("maml", strategy, meta_batch_size=3),
                                                 _train("maml", meta_batch_size=3))
    for case, call in {"reptile": lambda: _train("reptile", strategy),
                       "one_task_two_replicas": lambda: _train("maml", strategy,
                                                               meta_batch_size=1),
                       "built_outside_scope": lambda: _train_outside_scope(strategy)}.items():
        try:
            call()
            results[case] = "no error"
        except (TypeError, ValueError) as error:
            results[case] = f"{type(error).__name__}: {error}"
    with tempfile.TemporaryDirectory() as tmp:  # 2 steps mirrored, then 1 more on one device
        _train("maml", strategy, n_steps=2, run_dir=f"{tmp}/a")
        _train("maml", None, n_steps=2, run_dir=f"{tmp}/b")
        results["resume_mirrored_on_one_device"] = _difference(
            _train("maml", None, run_dir=f"{tmp}/a"), _train("maml", None, run_dir=f"{tmp}/b"))
        # and the other way round: the checkpoints of b (one device) resume mirrored
        results["resume_one_device_mirrored"] = _difference(
            _train("maml", strategy, n_steps=4, run_dir=f"{tmp}/b"),
            _train("maml", None, n_steps=4, run_dir=f"{tmp}/a"))
    out.write_text(json.dumps(results))


def _train_outside_scope(strategy):
    from metalearn_helpers.training import meta_train

    learner, tasks = _build("maml")
    meta_train(learner, tasks, n_steps=1, meta_batch_size=2, progress=False, strategy=strategy)


def _worker_main(out: Path, n_steps: int) -> None:
    """One worker of a MultiWorkerMirroredStrategy (TF_CONFIG set by the test); the strategy is
    made first, as TensorFlow requires, and the single-device reference after it."""
    import tensorflow  # noqa: F401  (first: metalearn_helpers then leaves TensorFlow unstarted)

    from metalearn_helpers.distributed import make_strategy

    strategy = make_strategy("multi-worker", timeout_seconds=COLLECTIVE_TIMEOUT)
    results = {"replicas": strategy.num_replicas_in_sync}
    started = time.monotonic()
    try:
        for name in ("maml", "protonet"):
            distributed = _train(name, strategy, n_steps=n_steps)
            if n_steps < N_STEPS:  # the lost worker
                if os.environ.get("LOST_WORKER") == "freeze":  # a machine that stops answering
                    os.kill(os.getpid(), signal.SIGSTOP)
                os._exit(0)  # a process that dies without a goodbye
            results[name] = _difference(distributed, _train(name, n_steps=n_steps))
    except Exception as error:  # the lost-worker case: what the survivor sees, and when
        results["error"] = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        results["seconds_to_error"] = time.monotonic() - started
    out.write_text(json.dumps(results))


# -- the tests --------------------------------------------------------------------------------
def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _check_equal(results: dict, names) -> None:
    for name in names:
        assert results[name][1] <= 1.0, (name, results[name])


def test_mirrored_two_devices_equals_one_device(tmp_path):
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, __file__, "mirrored", str(out)], env=_env(), check=True,
                   timeout=SUBPROCESS_TIMEOUT, cwd=ROOT)
    results = json.loads(out.read_text())
    assert results["replicas"] == 2
    _check_equal(results, ("maml", "metasgd", "protonet", "matching", "baseline",
                           "maml_uneven_3_tasks", "resume_mirrored_on_one_device",
                           "resume_one_device_mirrored"))
    assert results["reptile"].startswith("TypeError: Reptile cannot be trained under a "
                                         "tf.distribute strategy"), results["reptile"]
    assert "meta_batch_size=1 is smaller than the strategy's 2 replicas" in results[
        "one_task_two_replicas"], results["one_task_two_replicas"]
    assert "not created under the strategy's scope" in results["built_outside_scope"]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _kill(process) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _run_workers(tmp_path, steps_of_worker, grace=WORKER_GRACE_SECONDS, **env) -> list[dict]:
    """Start one process per worker on 127.0.0.1, wait (bounded), kill whatever is left."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(len(steps_of_worker))]}
    processes = []
    with contextlib.ExitStack() as logs:
        for index, n_steps in enumerate(steps_of_worker):
            config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = logs.enter_context(open(tmp_path / f"worker{index}.log", "w"))
            processes.append(subprocess.Popen(
                [sys.executable, __file__, "worker", str(tmp_path / f"worker{index}.json"),
                 str(n_steps)], env=_env(TF_CONFIG=config, **env), cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=log))
            logs.callback(_kill, processes[-1])
        processes[0].wait(timeout=SUBPROCESS_TIMEOUT)  # the chief; then a grace for the others
        for process in processes[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):  # a frozen worker is killed
                process.wait(timeout=grace)
    return [json.loads(path.read_text()) if path.exists() else {}
            for path in (tmp_path / f"worker{i}.json" for i in range(len(steps_of_worker)))]


def test_multi_worker_two_processes_equal_one_device(tmp_path):
    for results in _run_workers(tmp_path, [N_STEPS, N_STEPS]):
        assert results.get("replicas") == 2, results
        assert "error" not in results, results
        _check_equal(results, ("maml", "protonet"))


@pytest.mark.parametrize("lost_by", ["exit", "freeze"])
def test_lost_worker_gives_an_error_in_bounded_time(tmp_path, lost_by):
    survivor, _ = _run_workers(tmp_path, [N_STEPS, 1], grace=0, LOST_WORKER=lost_by)
    assert survivor.get("error", "").startswith(
        "RuntimeError: a meta-step's all-reduce failed: another worker of the multi-worker "
        "strategy is lost"), survivor
    # a dead process is noticed at once (its sockets close), a frozen one after the timeout
    assert survivor["seconds_to_error"] < COLLECTIVE_TIMEOUT + 60


# -- without subprocesses: splitting and checks -----------------------------------------------
def test_task_split_even_uneven_and_too_few_tasks():
    from metalearn_helpers.distributed import task_split

    assert task_split(4, 2) == [(0, 2), (2, 4)]
    assert task_split(5, 2) == [(0, 3), (3, 5)]
    assert task_split(32, 3) == [(0, 11), (11, 22), (22, 32)]
    with pytest.raises(ValueError, match="meta_batch_size=1 is smaller than the strategy's 2"):
        task_split(1, 2)
    with pytest.raises(TypeError, match="meta_batch_size must be an int"):
        task_split(2.0, 2)


def test_make_strategy_names_and_missing_cluster(monkeypatch):
    from metalearn_helpers.distributed import make_strategy

    with pytest.raises(ValueError, match="strategy"):
        make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi-worker")


def test_meta_train_rejects_what_is_not_a_strategy():
    from metalearn_helpers.training import meta_train

    learner, tasks = _build("maml")
    with pytest.raises(TypeError, match="tf.distribute.Strategy"):
        meta_train(learner, tasks, n_steps=1, meta_batch_size=2, strategy="mirrored")


def test_default_strategy_gives_exactly_the_plain_step():
    from metalearn_helpers.distributed import make_strategy

    a = _train("maml", make_strategy("default"), n_steps=2, meta_batch_size=3)
    assert _difference(a, _train("maml", n_steps=2, meta_batch_size=3)) == ["float64", 0.0]


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        _mirrored_main(Path(sys.argv[2]))
    else:
        _worker_main(Path(sys.argv[2]), int(sys.argv[3]))
