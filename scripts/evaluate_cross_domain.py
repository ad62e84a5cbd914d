"""Score the committed Omniglot learners, and pixel nearest neighbour, on Fashion-MNIST's test
episodes (classes 5-9), and export the record ``weights/fashion_mnist_transfer.json``.

    python scripts/evaluate_cross_domain.py --inter-op-threads 1

Every learner sees the same 600 5-way episodes per shot (``cross_domain.TEST_SEED``), 15 queries
per class; Omniglot networks are used as trained (no fine-tuning of the network, only each
method's own test-time adaptation: ProtoNet's prototypes, MAML's 3 inner steps, the baseline's
class means or fine-tuned linear head). The 1-shot test uses the learner trained for 1 shot, the
5-shot test the one trained for 5 shots (the baseline: one model).
"""

from __future__ import annotations

import argparse
import sys
import time

# Omniglot run scored at each test shot: {method: {k_shot: (run, adaptation)}}.
OMNIGLOT_RUNS = {
    "protonet": {1: ("omniglot_protonet_60w1s", None), 5: ("omniglot_protonet_60w5s", None)},
    "maml": {1: ("omniglot_maml_5w1s", None), 5: ("omniglot_maml_5w5s", None)},
    "baseline (centroid)": {k: ("omniglot_baseline", "centroid") for k in (1, 5)},
    "baseline (linear)": {k: ("omniglot_baseline", "linear") for k in (1, 5)},
}


def score_rows(args, data) -> list[dict]:
    """One test row per method and shot."""
    from metalearn_helpers import cross_domain, papers, records

    rows, learners = [], {}
    plan = [(m, k, run, adaptation) for m, shots in OMNIGLOT_RUNS.items()
            for k, (run, adaptation) in shots.items()]
    plan += [("pixel nearest neighbour", k, None, None) for k in cross_domain.TEST_SHOTS]
    for method, k_shot, run, adaptation in plan:
        if run is None:
            learner = cross_domain.PixelNearestNeighbour()
        else:
            if run not in learners:
                record = records.load_record(records.WEIGHTS_DIR / f"{run}.json")
                learners[run] = cross_domain.load_learner(record, records.WEIGHTS_DIR)
            learner = learners[run]
            if adaptation is not None:
                learner.adaptation = adaptation
        score = cross_domain.evaluate_fashion(learner, data, k_shot, n_episodes=args.episodes,
                                              progress=False)
        print(f"{method} ({run or 'no training'}): 5-way {k_shot}-shot Fashion-MNIST "
              f"{score.as_percent()}", flush=True)
        rows.append({"method": method, "trained_on": "omniglot" if run else "nothing",
                     "run": run, "n_way": 5, "k_shot": k_shot, "accuracy": 100 * score.mean,
                     "ci95": 100 * score.ci95, "episodes": score.n, "n_query": 15,
                     "protocol": papers.FASHION_MNIST_PROTOCOL})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=600, help="test episodes per shot")
    parser.add_argument("--inter-op-threads", type=int, default=0)
    args = parser.parse_args(argv)
    import tensorflow  # noqa: F401  (first: the helpers then leave TensorFlow unstarted)

    from metalearn_helpers.distributed import configure_cpu_threads

    configure_cpu_threads(1, args.inter_op_threads)  # CPU only
    from metalearn_helpers import records
    from metalearn_helpers.fashion_mnist import load_fashion_mnist

    start = time.perf_counter()
    rows = score_rows(args, load_fashion_mnist())
    seconds = time.perf_counter() - start
    records.write_record(records.WEIGHTS_DIR / "fashion_mnist_transfer.json", {
        "name": "fashion_mnist_transfer", "algorithm": "evaluation of committed runs",
        "paper": "cross-domain test after Chen et al. 2019 (arXiv 1904.04232), section 4.4",
        "n_way": 5, "k_shot": 1, "hyperparameters": {}, "steps": 0, "planned_steps": 0,
        "finished": True, "seed": 2017, "test": rows[0], "tests": rows,
        "train_seconds": seconds, "seconds_per_step": 0.0,
        "command": "python scripts/evaluate_cross_domain.py " + " ".join(argv or sys.argv[1:]),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
