"""Train MAML, first-order MAML and the pretrained baseline on sinusoids, evaluate, export.

The paper's full schedule behind notebook 03's numbers (Finn et al. 2017, arXiv 1703.03400,
section 5.1: K = 10, alpha = 0.01, one inner step, meta-batch 25, Adam 0.001, 70,000
meta-iterations, and the initial weights of the paper's code) is run with this script. Each algorithm trains with the shared loop, resumably,
in ``runs/sinusoid_<name>/``; stop it with Ctrl-C (or ``kill -INT``) and it saves a checkpoint,
evaluates what it has and exports ``weights/sinusoid_<name>.npz`` (the weights),
``weights/sinusoid_<name>.json`` (how they were made, and the test MSE table) and
``weights/sinusoid_<name>.history.json`` (learning curves). Run it again to continue.

Evaluation: 600 held-out tasks for K = 5 and K = 10, 100 query points sampled per task, query MSE
after 0/1/5/10 gradient steps; MAML with its alpha, the baseline with the step size that is best
on 200 validation tasks (10 steps).

    python scripts/train_sinusoid.py --threads 1                   # all three, paper schedule
    python scripts/train_sinusoid.py --algorithm maml --eval-only
    python scripts/train_sinusoid.py --algorithm maml --init keras   # from Keras' default init
    python scripts/train_sinusoid.py --algorithm maml --inner-lr 0.001  # MAML code's default alpha
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
from pathlib import Path

import long_run
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ("maml", "fomaml", "pretrained")  # metalearn_helpers.sinusoid.ALGORITHMS


def evaluate_and_export(name: str, algorithm, steps: int, run_dir: Path, args,
                        planned: int) -> None:
    from metalearn_helpers import papers, records, sinusoid
    from metalearn_helpers.history import HISTORY_FILE, History

    lrs, search = {}, {}
    for k_shot in sinusoid.EVAL_K_SHOTS:
        if name == "pretrained":
            lrs[k_shot], search[k_shot] = sinusoid.tune_fine_tune_lr(algorithm, k_shot)
        else:
            lrs[k_shot] = algorithm.inner_lr
    curves = {k: sinusoid.adaptation_curves(algorithm, k, lrs[k], n_tasks=args.episodes)
              for k in sinusoid.EVAL_K_SHOTS}
    for row in sinusoid.table_rows(curves):
        print(f"{name} after {steps} steps, K = {row['k_shot']} (step size {lrs[row['k_shot']]}),"
              f" {row['inner_steps']} steps: MSE {row['mse']:.4f} ± {row['ci95']:.4f} on "
              f"{row['episodes']} tasks ({row['diverged']} diverged)")

    settings = papers.SINUSOID_SETTINGS
    if name == "pretrained":
        hyperparameters = {"optimizer": "Adam", "learning_rate": settings["meta_lr"],
                           "tasks_per_batch": settings["meta_batch_size"],
                           "points_per_task": settings["train_k_shot"] + settings["train_n_query"],
                           "n_steps": settings["n_steps"]}
    else:
        hyperparameters = {**settings, "inner_lr": algorithm.inner_lr,
                           "first_order": name == "fomaml"}
    stem = sinusoid.run_name(name, args.init, args.seed, args.inner_lr)
    command = "python scripts/train_sinusoid.py " + " ".join(sys.argv[1:])
    train_command = command
    previous = records.WEIGHTS_DIR / f"{stem}.json"
    if args.eval_only and previous.exists():  # keep saying how the weights were trained
        old = json.loads(previous.read_text())
        train_command = old.get("train_command", old["command"])
    records.WEIGHTS_DIR.mkdir(exist_ok=True)
    records.save_weights(algorithm, records.WEIGHTS_DIR / f"{stem}.npz")
    shutil.copy(run_dir / HISTORY_FILE, records.WEIGHTS_DIR / f"{stem}.history.json")
    history = History.load(run_dir / HISTORY_FILE)
    records.write_record(records.WEIGHTS_DIR / f"{stem}.json", {
        "name": stem, "experiment": "sinusoid", "algorithm": name, "paper": papers.SINUSOID_PAPER,
        "hyperparameters": hyperparameters,
        "steps": steps, "planned_steps": planned, "finished": steps >= planned,
        "seed": args.seed, "init": args.init,
        "test": sinusoid.table_rows(curves),
        "test_step_size": {str(k): lr for k, lr in lrs.items()},
        "step_size_search": {str(k): {str(lr): mse if math.isfinite(mse) else None  # diverged
                                      for lr, mse in s.items()} for k, s in search.items()},
        "test_protocol": (f"{args.episodes} held-out tasks per K (seed {sinusoid.TEST_SEED}), "
                          f"{sinusoid.N_QUERY} query points x ~ U[-5, 5] sampled per task, plain "
                          f"gradient descent on the K support points; mean query MSE and 95 % CI over the "
                          f"tasks where it did not diverge ('diverged': MSE above "
                          f"{sinusoid.DIVERGED_MSE:g} or overflow)"),
        "paper_result": papers.SINUSOID_RESULTS.get(name),
        "train_seconds": history.elapsed,
        "seconds_per_step": history.elapsed / max(steps, 1),
        "threads": args.threads,
        "command": command,
        "train_command": train_command,
    })


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", choices=ALGORITHMS + ("all",), default="all")
    parser.add_argument("--n-steps", type=int, default=70_000,
                        help="total meta-steps (default: the paper's 70,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", choices=("paper", "keras"), default="paper",
                        help="initial weights: MAML's code (default) or Keras' defaults")
    parser.add_argument("--inner-lr", type=float, default=None,
                        help="MAML's alpha in training and at test (default: the paper's 0.01; "
                             "MAML's released code, run as its README says, uses its flag's "
                             "default 0.001)")
    parser.add_argument("--episodes", type=int, default=600, help="test tasks per K")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all)")
    parser.add_argument("--eval-only", action="store_true",
                        help="evaluate and export the latest checkpoints without training")
    args = parser.parse_args(argv)
    if args.inner_lr is not None and args.algorithm not in ("maml", "fomaml"):
        parser.error("--inner-lr is MAML's alpha: use it with --algorithm maml or fomaml")
    # Stop cleanly (checkpoint, evaluate, export) on Ctrl-C or kill, also in the background.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.threads:  # before metalearn_helpers, whose import starts TensorFlow's runtime
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from metalearn_helpers import sinusoid

    assert sinusoid.ALGORITHMS == ALGORITHMS

    names = sinusoid.ALGORITHMS if args.algorithm == "all" else (args.algorithm,)
    for name in names:
        run_dir = ROOT / "runs" / sinusoid.run_name(name, args.init, args.seed, args.inner_lr)

        def train(n_steps):
            return sinusoid.train_sinusoid(name, n_steps, seed=args.seed, init=args.init,
                                           inner_lr=args.inner_lr, run_dir=run_dir,
                                           log_every=100)

        algorithm, steps, interrupted = long_run.train_or_exit(train, args.n_steps, run_dir,
                                                               args.eval_only)
        evaluate_and_export(name, algorithm, steps, run_dir, args, args.n_steps)
        if interrupted:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
