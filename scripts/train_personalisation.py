"""Notebook 08's runs: learners for a new school (Exam) and for a new user (MovieLens).

Each fold of a cross-validation is trained, scored and saved to ``runs/personalisation/``;
``export`` then pools the folds into the committed records ``weights/schools_<method>.json`` and
``weights/movielens_<method>.json`` (mean ± 95 % CI over held-out schools or users) and copies
fold 0's meta-learned weights to ``weights/`` for the notebook's figures and widget. Meta-training
resumes from ``runs/<run>/``; stop with Ctrl-C (or ``timeout -s INT``): finished folds are kept,
and an interrupted fold is continued on the next call.

    python scripts/train_personalisation.py schools            # 5 folds over the 65 schools
    python scripts/train_personalisation.py movielens          # 5 folds over the 671 users
    python scripts/train_personalisation.py export

Protocols (also in each record's ``protocol``) are in :mod:`personalisation_runs`' docstrings.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["schools", "movielens", "export"])
    parser.add_argument("--folds", type=int, nargs="*", default=None,
                        help="folds to run (default all five)")
    parser.add_argument("--n-steps", type=int, default=None,
                        help="meta-steps per learner and fold (default: the setting's)")
    parser.add_argument("--inter-op-threads", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    import tensorflow  # noqa: F401  (first: the helpers then leave TensorFlow unstarted)

    from metalearn_helpers.distributed import configure_cpu_threads

    configure_cpu_threads(1, args.inter_op_threads)  # CPU only
    import personalisation_runs as runs

    command = "python scripts/train_personalisation.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    if args.part == "export":
        runs.export(command)
        return 0
    run = runs.run_school_fold if args.part == "schools" else runs.run_movielens_fold
    try:
        for fold in args.folds if args.folds is not None else range(runs.N_FOLDS):
            run(fold, n_steps=args.n_steps, command=command)
    except KeyboardInterrupt:
        print("interrupted: finished folds are saved; run again to continue")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
