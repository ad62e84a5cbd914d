"""What a meta-step costs: seconds and memory of one algorithm's training step, measured.

Defined in notebook ``04_maml_omniglot`` (the cost table of every algorithm, measured on one
machine in one run); notebook ``10_efficiency_and_scale`` reads the MAML meta-step benchmark
(``benchmarks/maml_step.py``, record ``weights/maml_step_benchmark.json``) with the functions at
the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

import keras

from .checks import check_choice, check_positive
from .experiments import make_algorithm, omniglot_tasks
from .record_schema import DISTRIBUTED_BENCHMARK, MAML_STEP_BENCHMARK


def _memory_probe():
    """``(current_mb, peak_mb, reset_peak)`` for this process. On Linux from ``/proc/self/status``
    (``VmRSS``, ``VmHWM``), whose peak can be reset (``/proc/self/clear_refs``); elsewhere the peak
    is ``ru_maxrss`` since the process started and cannot be reset."""
    import resource
    import sys

    def field(name):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status
                        if line.startswith(name + ":"))

    if os.path.exists("/proc/self/clear_refs"):
        def reset_peak():
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        return (lambda: field("VmRSS")), (lambda: field("VmHWM")), reset_peak

    def peak():
        kilobytes = 1 / 1024 if sys.platform == "darwin" else 1  # macOS reports bytes
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kilobytes / 1024
    return peak, peak, lambda: None


def meta_step_cost(name: str, n_way: int, k_shot: int, *, n_query: int | None = None,
                   meta_batch_size: int = 32, n_steps: int = 5, seed: int = 0,
                   **overrides) -> dict:
    """Seconds per meta-step and memory of algorithm ``name``, measured in this process.

    Defined in notebook ``04_maml_omniglot``. Every algorithm gets the same meta-batch (the same
    ``meta_batch_size`` episodes of ``n_way``-way ``k_shot``-shot with ``n_query`` query drawings
    per class, default ``k_shot`` as in MAML's training; Reptile trains on support and query
    together). Three phases are measured apart: tracing ``train_step``, its first call (slow: the
    graph is optimised) and ``n_steps`` further steps, which are timed (median).

    Memory is resident memory as the operating system sees it. On Linux: ``before_mb`` is the
    resident set after TensorFlow, the data and the model are loaded, and the peak resident set
    (``VmHWM``, reset before each phase) of each phase is reported as ``trace_peak_mb``,
    ``first_call_peak_mb`` and ``steps_peak_mb``. Elsewhere every figure is the process's
    ``ru_maxrss`` high-water mark so far (``peak_source`` says which). (TensorFlow 2.21's
    ``tf.config.experimental.get_memory_info("CPU:0")`` reported a peak of 0 MB for these
    steps, so the allocator's own figures are not used.) ``overrides`` replace constructor
    arguments (e.g. ``inner_steps``; :func:`experiments.make_algorithm`). Run it in a fresh process
    (:func:`meta_step_cost_in_subprocess`) so that nothing else lives in the process.

    Returns a dict with ``algorithm``, ``seconds_per_step`` (median), ``step_seconds``,
    ``trace_seconds``, ``first_call_seconds``, the memory figures above (MB) and ``peak_source``.
    """
    import time

    from .omniglot import load_omniglot

    current_mb, peak_mb, reset_peak = _memory_probe()
    data = load_omniglot(verbose=False)
    tasks = omniglot_tasks(data, "train", n_way, k_shot, k_shot if n_query is None else n_query)
    keras.utils.set_random_seed(seed)
    algorithm = make_algorithm(name, n_way, k_shot=k_shot, **overrides)
    batch = next(tasks.batches(meta_batch_size, seed)).arrays()
    result = {"algorithm": name, "before_mb": current_mb()}

    def phase(key, run):
        reset_peak()
        start = time.perf_counter()
        run()
        result[f"{key}_seconds"], result[f"{key}_peak_mb"] = time.perf_counter() - start, peak_mb()

    def one_step():
        float(algorithm.train_step(*batch)["loss"])  # float(): wait for the step to finish

    phase("trace", lambda: algorithm.train_step.get_concrete_function(*batch))
    phase("first_call", one_step)
    seconds = []

    def steps():
        for _ in range(n_steps):
            start = time.perf_counter()
            one_step()
            seconds.append(time.perf_counter() - start)

    phase("steps", steps)
    result.pop("steps_seconds")
    return {**result, "seconds_per_step": statistics.median(seconds), "step_seconds": seconds,
            "peak_source": "VmHWM" if os.path.exists("/proc/self/clear_refs") else "ru_maxrss"}


def meta_step_cost_in_subprocess(name: str, n_way: int, k_shot: int, **kwargs) -> dict:
    """:func:`meta_step_cost` run in a fresh Python process (same interpreter and environment),
    so its peak memory belongs to that one algorithm alone. Takes a few seconds more than the
    steps themselves: the child imports TensorFlow and traces the step."""
    import sys

    code = ("import json, sys\n"
            "from metalearn_helpers import costs\n"
            "args = json.loads(sys.argv[1])\n"
            "print(json.dumps(costs.meta_step_cost(**args)))\n")
    args = json.dumps(dict(name=name, n_way=n_way, k_shot=k_shot, **kwargs))
    done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"measuring {name} in a subprocess failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the MAML meta-step benchmark: ours against PyTorch, eager vs tf.function vs XLA ---------------
ORDERS = ("2nd", "1st")
OURS = "MAML tf.function"  # the course's meta-step, MAML(...).train_step
EXECUTION_MODES = {"eager": "MAML eager", "tf.function": OURS, "XLA": "MAML XLA"}


def _benchmark_rows(record: dict) -> list[dict]:
    if not isinstance(record, dict) or record.get("name") != MAML_STEP_BENCHMARK:
        name = record.get("name") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"expected the {MAML_STEP_BENCHMARK!r} record (records.load_record("
                         f"WEIGHTS_DIR / '{MAML_STEP_BENCHMARK}.json')), got {name!r}.")
    return record["rows"]


def _find_row(rows: list[dict], variant: str, order: str) -> dict:
    for row in rows:
        if (row["variant"], row["order"]) == (variant, order):
            return row
    timed = sorted({f"{r['variant']}, {r['order']}" for r in rows})
    raise ValueError(f"the benchmark has no row {variant!r} of order {order!r}; it has: "
                     f"{', '.join(timed)}.")


def versus_fastest_pytorch(rows: list[dict], order: str, goal: float = 1.5) -> dict:
    """How much faster the course's meta-step (``MAML tf.function``) is than the fastest PyTorch
    row of the same ``order`` ("2nd" or "1st") among ``rows`` (the ``rows`` of the
    ``maml_step_benchmark`` record, i.e. one run): the fastest in wall time and in CPU time may
    differ. Returns ``order``, ``fastest_wall``, ``fastest_cpu`` (variant names), ``wall_ratio``
    and ``cpu_ratio`` (ratios of medians, theirs / ours: above 1, ours is faster),
    ``same_round_wall_ratio`` (median over the interleaved rounds of the two steps' ratio within
    a round, which load that changes during the run distorts less; null unless both ran every
    round), ``goal`` and ``met`` (both ratios of medians at least ``goal``; issue 29 asks 1.5x
    for second order)."""
    check_choice("order", order, ORDERS)
    check_positive("goal", goal)
    ours = _find_row(rows, OURS, order)
    torch_rows = [r for r in rows if r["order"] == order and r["framework"] == "torch"]
    if not torch_rows:
        raise ValueError(f"the benchmark has no PyTorch row of order {order!r}.")
    fastest_wall = min(torch_rows, key=lambda r: r["median_step_ms"])
    fastest_cpu = min(torch_rows, key=lambda r: r["cpu_ms_per_step"])
    wall = fastest_wall["median_step_ms"] / ours["median_step_ms"]
    cpu = fastest_cpu["cpu_ms_per_step"] / ours["cpu_ms_per_step"]
    paired = ([a / b for a, b in zip(fastest_wall["step_ms"], ours["step_ms"])]
              if len(fastest_wall["step_ms"]) == len(ours["step_ms"]) else [])
    return {"order": order, "fastest_wall": fastest_wall["variant"],
            "fastest_cpu": fastest_cpu["variant"], "wall_ratio": wall, "cpu_ratio": cpu,
            "same_round_wall_ratio": statistics.median(paired) if paired else None,
            "goal": float(goal), "met": wall >= goal and cpu >= goal}


def execution_modes(record: dict) -> list[dict]:
    """The course's MAML meta-step run eagerly, under ``tf.function`` and compiled with XLA, from
    the ``maml_step_benchmark`` record: one row per (mode, order) timed, second order first, with
    ``mode``, ``order``, ``first_call_seconds`` (tracing / compiling included),
    ``median_step_ms``, ``cpu_ms_per_step`` and ``steps``."""
    rows = _benchmark_rows(record)
    return [{"mode": mode, "order": order, **{k: row[k] for k in (
                "first_call_seconds", "median_step_ms", "cpu_ms_per_step", "steps")}}
            for order in ORDERS for mode, variant in EXECUTION_MODES.items()
            for row in rows if (row["variant"], row["order"]) == (variant, order)]


def pytorch_comparison(record: dict) -> list[dict]:
    """The rows of the ``maml_step_benchmark`` record that compare the course's meta-step with
    PyTorch (the PyTorch rows and ``MAML tf.function``, second order first), as strings for
    :func:`records.markdown_table`: first call, median wall and CPU milliseconds per step, and
    how many times faster ours is (this row's time / ours, same order, same run)."""
    rows = _benchmark_rows(record)
    table = []
    for order in ORDERS:
        ours = _find_row(rows, OURS, order)
        for row in rows:
            if row["order"] != order or (row["framework"] != "torch" and row is not ours):
                continue
            table.append({
                "variant": row["variant"] + (" (ours)" if row is ours else ""), "order": order,
                "first call (s)": f"{row['first_call_seconds']:.1f}",
                "wall ms": f"{row['median_step_ms']:.0f}",
                "CPU ms": f"{row['cpu_ms_per_step']:.0f}",
                "ours faster (wall)": f"{row['median_step_ms'] / ours['median_step_ms']:.2f}x",
                "ours faster (CPU)": f"{row['cpu_ms_per_step'] / ours['cpu_ms_per_step']:.2f}x"})
    return table


def replica_comparison(record: dict) -> list[dict]:
    """The rows of the ``distributed_benchmark`` record (``benchmarks/distributed.py --record``)
    for :func:`~metalearn_helpers.records.markdown_table`: seconds and CPU seconds per
    meta-step, and steps/s against one device."""
    if not isinstance(record, dict) or record.get("name") != DISTRIBUTED_BENCHMARK:
        raise ValueError(f"expected the {DISTRIBUTED_BENCHMARK!r} record, got "
                         f"{record.get('name') if isinstance(record, dict) else record!r}.")
    return [{"variant": r["variant"], "s/step": f"{r['seconds_per_step']:.3f}",
             "steps/s vs one device": f"{r['vs_one_device']:.2f}x",
             "CPU s/step": f"{r['cpu_seconds_per_step']:.3f}",
             "first call (s)": f"{r['first_call_seconds']:.1f}"} for r in record["rows"]]
