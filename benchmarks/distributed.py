"""Steps per second of a MAML meta-step on one device vs two replicas, same run, as ratios.

What is timed: second-order MAML (Finn et al. 2017, arXiv 1703.03400) in its Omniglot setting,
``conv4(5)`` (stride-2 convolutions, 64 filters, ``BatchStatNorm``), 5-way 1-shot with
``--n-query`` query drawings per class, ``inner_lr`` 0.4, one inner step, Adam(1e-3), on real
Omniglot meta-batches (train split of Vinyals' protocol, rotations as classes), sampled once.

Variants, interleaved (one step of each per round, the order rotated each round) so that load
from other processes hits them alike; medians of wall time and of process CPU time per step:

- ``one device``: ``MAML.train_step``, as ``meta_train`` runs without a strategy (the baseline of
  every ratio);
- ``mirrored, 1 replica``: :class:`metalearn_helpers.distributed.DistributedStep` under a
  ``MirroredStrategy`` on one device (the cost of the strategy machinery alone);
- ``mirrored, 2 replicas``: the same over two logical CPU devices, the tasks split in two.

Two logical CPU devices share the machine's cores and thread pools: this measures the overhead
and whatever parallelism two replicas add on a CPU, not what two GPUs would give. Run from the
repository root (first call: tracing, reported apart)::

    METALEARN_OMNIGLOT_DIR=/path/to/omniglot .venv/bin/python benchmarks/distributed.py
    ... benchmarks/distributed.py --steps 10 --record   # also writes weights/distributed_benchmark.json

``--record`` writes the medians, the ratios and the load average before and after the run as the
measurement record that notebook 10 reads (``costs.replica_comparison``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="timing rounds")
    parser.add_argument("--meta-batch-size", type=int, default=16)
    parser.add_argument("--n-query", type=int, default=1, help="query drawings per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true",
                        help="write weights/distributed_benchmark.json (notebook 10 reads it)")
    args = parser.parse_args(argv)
    for name in ("steps", "meta_batch_size", "n_query"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.meta_batch_size < 2:
        parser.error("--meta-batch-size must be at least 2 (one task per replica)")
    return args


def variants(meta_batch_size: int) -> dict:
    """name -> one meta-step function, each on a learner built from the same weights."""
    import keras

    from metalearn_helpers.distributed import DistributedStep
    from metalearn_helpers.maml import MAML
    from metalearn_helpers.models import conv4

    def build():
        keras.utils.set_random_seed(0)
        return MAML(conv4(5), inner_lr=0.4, inner_steps=1)

    learner = build()  # kept alive with the steps: a tf.function method holds a weak reference
    steps = {"one device": learner.train_step, "_learner": learner}
    for name, devices in (("mirrored, 1 replica", ["/cpu:0"]),
                          ("mirrored, 2 replicas", ["/cpu:0", "/cpu:1"])):
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            steps[name] = DistributedStep(build(), strategy, meta_batch_size)
    return steps


def timed(step, batch) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    float(step(*batch)["loss"])  # float(): wait for the step to finish
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> None:
    args = parse_args(argv)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from metalearn_helpers import experiments
    from metalearn_helpers.omniglot import load_omniglot

    tasks = experiments.omniglot_tasks(load_omniglot(), "train", 5, 1, args.n_query)
    batches = [tuple(tf.constant(a) for a in batch.arrays())
               for batch, _ in zip(tasks.batches(args.meta_batch_size, args.seed), range(4))]
    steps = variants(args.meta_batch_size)
    names = [name for name in steps if not name.startswith("_")]
    load_before = os.getloadavg()[0]
    first_calls = {}
    for name in names:
        first_calls[name] = timed(steps[name], batches[0])[0]
        print(f"{name}: first call (tracing) {first_calls[name]:.1f} s")
    times = {name: [] for name in names}
    for round_ in range(args.steps):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            times[name].append(timed(steps[name], batches[round_ % len(batches)]))
    rows = result_rows(times, first_calls)
    print(f"\nMAML 5-way 1-shot, meta-batch {args.meta_batch_size}, {args.n_query} query/class, "
          f"{args.steps} rounds, {os.cpu_count()} CPU cores; medians")
    print("| variant | s/step | steps/s | steps/s vs one device | CPU s/step |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['variant']} | {row['seconds_per_step']:.3f} | "
              f"{1 / row['seconds_per_step']:.2f} | {row['vs_one_device']:.2f}x | "
              f"{row['cpu_seconds_per_step']:.3f} |")
    if args.record:
        write_benchmark_record(args, rows, load_before, argv)


def result_rows(times: dict, first_calls: dict) -> list[dict]:
    """One row per variant: medians of wall and CPU seconds per step, steps/s against one
    device, first call."""
    base = statistics.median(w for w, _ in times["one device"])
    rows = []
    for name, pairs in times.items():
        wall = statistics.median(w for w, _ in pairs)
        rows.append({"variant": name, "seconds_per_step": wall,
                     "cpu_seconds_per_step": statistics.median(c for _, c in pairs),
                     "vs_one_device": base / wall, "first_call_seconds": first_calls[name],
                     "steps": len(pairs)})
    return rows


def write_benchmark_record(args, rows: list[dict], load_before: float, argv) -> None:
    from metalearn_helpers import record_schema, records

    path = records.WEIGHTS_DIR / f"{record_schema.DISTRIBUTED_BENCHMARK}.json"
    records.write_record(path, {
        "kind": "measurement", "name": record_schema.DISTRIBUTED_BENCHMARK, "seed": args.seed,
        "protocol": (f"second-order MAML, Omniglot 5-way 1-shot, conv4(5), meta-batch "
                     f"{args.meta_batch_size}, {args.n_query} query drawing(s) per class, "
                     f"inner_lr 0.4, 1 inner step, Adam(1e-3); 4 real meta-batches sampled once; "
                     f"{args.steps} interleaved rounds (order rotated), medians of wall and "
                     f"process CPU time per step; two logical CPU devices sharing "
                     f"{os.cpu_count()} cores"),
        "rows": rows, "load_average": {"start": load_before, "end": os.getloadavg()[0]},
        "command": "python benchmarks/distributed.py " + " ".join(
            sys.argv[1:] if argv is None else argv)})
    print(f"wrote {path}")

if __name__ == "__main__":
    main()
