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
    for name in names:
        print(f"{name}: first call (tracing) {timed(steps[name], batches[0])[0]:.1f} s")
    times = {name: [] for name in names}
    for round_ in range(args.steps):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            times[name].append(timed(steps[name], batches[round_ % len(batches)]))
    base = statistics.median(w for w, _ in times["one device"])
    print(f"\nMAML 5-way 1-shot, meta-batch {args.meta_batch_size}, {args.n_query} query/class, "
          f"{args.steps} rounds, {os.cpu_count()} CPU cores; medians")
    print("| variant | s/step | steps/s | steps/s vs one device | CPU s/step |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        wall = statistics.median(w for w, _ in times[name])
        cpu_time = statistics.median(c for _, c in times[name])
        print(f"| {name} | {wall:.3f} | {1 / wall:.2f} | {base / wall:.2f}x | {cpu_time:.3f} |")


if __name__ == "__main__":
    main()
