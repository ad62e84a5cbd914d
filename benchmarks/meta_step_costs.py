"""What a meta-step costs: seconds and peak memory against the number of inner steps.

On Omniglot 5-way 1-shot (MAML's Conv-4, 1 query drawing per class as in MAML's training, one
meta-batch of real tasks), for 1 to 5 inner steps:

- ``maml``: second-order MAML (Finn et al. 2017, arXiv 1703.03400);
- ``fomaml``: first-order MAML (same paper, section 5.2);
- ``reptile``: Reptile (Nichol et al. 2018, arXiv 1803.02999; it trains on support and query
  drawings together, in inner mini-batches of 10);
- ``anil``: ANIL, second order, only the head adapted (Raghu et al. 2019, arXiv 1909.09157);
- ``maml + recompute``: second-order MAML with gradient checkpointing of each inner step
  (``MAML(recompute_inner=True)``; Chen et al. 2016, arXiv 1604.06174).

Every configuration runs in a fresh Python process (:func:`costs.meta_step_cost_in_subprocess`),
so nothing measured before it is in its memory. Time: median wall-clock seconds of ``--steps``
meta-steps after the first call. Memory: the process's peak resident set (Linux ``VmHWM``, reset
before the timed steps) minus its resident set once TensorFlow, the data and the model are
loaded, i.e. the traced graph plus what a meta-step holds at its peak (``RSS MB``); the same over
the first call, which also optimises the graph, is in the record (``first_call_rss_peak_mb``).
``tracemalloc`` would not see it (TensorFlow allocates outside Python), and TensorFlow 2.21's
``tf.config.experimental.get_memory_info("CPU:0")`` reported a peak of 0 MB for these steps.

Ratios are against second-order MAML with 1 inner step, measured in the same run. Writes the
measurement record ``weights/meta_step_costs.json`` (``records.write_record``). About 10 minutes
on a loaded 2-core machine (25 fresh processes, each importing TensorFlow and tracing a step)::

    python benchmarks/meta_step_costs.py
    python benchmarks/meta_step_costs.py --inner-steps 1 3 --steps 2 --meta-batch-size 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, algorithm of papers.OMNIGLOT_SETTINGS, constructor overrides)
CONFIGURATIONS = [("maml", "maml", {}), ("fomaml", "fomaml", {}), ("reptile", "reptile", {}),
                  ("anil", "anil", {}), ("maml + recompute", "maml", {"recompute_inner": True})]
BASELINE = ("maml", 1)
PROTOCOL = ("Omniglot 5-way 1-shot, n_query query drawings per class (Reptile: support and "
            "query together), Vinyals' training characters with rotations, one meta-batch of real "
            "tasks; MAML's Conv-4 (stride 2, 64 filters, batch-statistics norm); each "
            "configuration in a fresh process with TF_NUM_INTRAOP_THREADS=1; seconds: median "
            "of the timed steps; memory: peak resident set (VmHWM) over the timed steps minus "
            "the resident set after TensorFlow, data and model were loaded")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inner-steps", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--steps", type=int, default=3, help="timed meta-steps per configuration")
    parser.add_argument("--meta-batch-size", type=int, default=8)
    parser.add_argument("--n-query", type=int, default=1,
                        help="query drawings per class (MAML's training: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "weights" / "meta_step_costs.json",
                        help="the measurement record to write ('-': none)")
    args = parser.parse_args(argv)
    for name in ("steps", "meta_batch_size", "n_query"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.inner_steps) < 1 or 1 not in args.inner_steps:
        parser.error("--inner-steps must be at least 1 and include 1 (the baseline)")
    return args


def measure(args) -> list[dict]:
    """One row per (configuration, inner steps): the raw figures of the fresh process."""
    from metalearn_helpers import costs

    rows = []
    for inner_steps in args.inner_steps:
        for label, algorithm, overrides in CONFIGURATIONS:
            result = costs.meta_step_cost_in_subprocess(
                algorithm, 5, 1, n_query=args.n_query, meta_batch_size=args.meta_batch_size,
                n_steps=args.steps, seed=args.seed, inner_steps=inner_steps, **overrides)
            row = {"configuration": label, "inner_steps": inner_steps,
                   "seconds_per_step": result["seconds_per_step"],
                   "step_seconds": result["step_seconds"],
                   "first_call_seconds": result["first_call_seconds"],
                   "rss_peak_mb": result["steps_peak_mb"] - result["before_mb"],
                   "first_call_rss_peak_mb": result["first_call_peak_mb"] - result["before_mb"]}
            rows.append(row)
            print(f"  {label:<17} {inner_steps} inner: {row['seconds_per_step']:.3f} s/step, "
                  f"RSS +{row['rss_peak_mb']:.0f} MB", flush=True)
    return rows


def with_ratios(rows: list[dict]) -> list[dict]:
    """``rows`` with each figure divided by the baseline's (second-order MAML, 1 inner step)."""
    base = next(r for r in rows if (r["configuration"], r["inner_steps"]) == BASELINE)
    ratio = lambda a, b: None if a is None or not b else a / b  # noqa: E731
    return [{**r, "time_ratio": ratio(r["seconds_per_step"], base["seconds_per_step"]),
             "rss_ratio": ratio(r["rss_peak_mb"], base["rss_peak_mb"])} for r in rows]


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table (ratios against the baseline in brackets)."""
    from metalearn_helpers.records import markdown_table

    def number(value, ratio, digits):
        return "n/a" if value is None else f"{value:.{digits}f} ({ratio:.2f}x)"

    return markdown_table([{
        "configuration": r["configuration"], "inner steps": str(r["inner_steps"]),
        "s / meta-step": number(r["seconds_per_step"], r["time_ratio"], 3),
        "RSS MB": number(r["rss_peak_mb"], r["rss_ratio"], 0)} for r in rows])


def measurement_record(rows: list[dict], args, load: tuple, seconds: float) -> dict:
    """The measurement record (schema: ``records``, ``"kind": "measurement"``)."""
    return {"kind": "measurement", "name": "meta_step_costs", "protocol": PROTOCOL,
            "seed": args.seed, "command": "python benchmarks/meta_step_costs.py " + " ".join(
                sys.argv[1:] if __name__ == "__main__" else []),
            "n_way": 5, "k_shot": 1, "n_query": args.n_query,
            "meta_batch_size": args.meta_batch_size,
            "timed_steps": args.steps, "baseline": {"configuration": BASELINE[0],
                                                    "inner_steps": BASELINE[1]},
            "load_average": {"start": load[0], "end": load[1]}, "run_seconds": seconds,
            "rows": rows}


def main(args) -> int:
    from metalearn_helpers import records

    os.environ["TF_NUM_INTRAOP_THREADS"] = "1"  # the children inherit it: the course's setting
    start, load = time.perf_counter(), os.getloadavg()[0]
    print(f"Meta-step costs, 5-way 1-shot, {args.n_query} query/class, meta-batch "
          f"{args.meta_batch_size}, {args.steps} timed steps per configuration; load average "
          f"{load:.1f} at start")
    rows = with_ratios(measure(args))
    seconds = time.perf_counter() - start
    print("\n" + table(rows))
    spread = statistics.median(max(r["step_seconds"]) / min(r["step_seconds"]) for r in rows)
    print(f"\nRatios against {BASELINE[0]} with {BASELINE[1]} inner step, same run. Load average "
          f"{os.getloadavg()[0]:.1f} at the end; {seconds:.0f} s. Median spread of the timed "
          f"steps: {spread:.2f}x")
    if str(args.output) != "-":
        records.write_record(args.output, measurement_record(rows, args, (load,
                                                             os.getloadavg()[0]), seconds))
        print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
