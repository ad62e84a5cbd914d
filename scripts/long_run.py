"""What every long-run script in ``scripts/`` shares: its common options, a process that stops
cleanly, continuing a partial run committed in ``weights/resume/``, and the export.

A script trains through :func:`metalearn_helpers.training.train_or_resume` (which resumes from
``runs/<name>/``) and then calls :func:`export`, which writes

- ``weights/<name>.npz``: the learner's meta-learned variables (``records.save_weights``);
- ``weights/<name>.history.json``: the learning curves;
- ``weights/<name>.json``: the record (``records.write_record``), with the fields every run has
  (steps, planned steps, seed, training time, the command) added to the script's own;
- ``weights/resume/<name>/`` while the run is unfinished: its last checkpoint (optimizer and
  random state included), so a fresh clone continues it with the same command.

Nothing here imports TensorFlow at import time: :func:`start_process` must set the thread
counts (CPU only) before TensorFlow starts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_run_arguments(parser: argparse.ArgumentParser, *, intra_op_help: str | None = None,
                      inter_op_help: str | None = None) -> None:
    """``--seed``, ``--intra-op-threads``, ``--inter-op-threads`` and ``--eval-only``."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--intra-op-threads", type=int, default=1,
                        help=intra_op_help or "threads inside one op (default 1)")
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help=inter_op_help or "ops run in parallel (0: all cores; 1 for two "
                                              "runs sharing 2 cores)")
    parser.add_argument("--eval-only", action="store_true",
                        help="evaluate and export the latest checkpoint without training")


def start_process(args) -> None:
    """Stop cleanly (checkpoint, evaluate, export) on Ctrl-C, ``timeout -s INT`` or ``kill``,
    also in the background, where the shell makes processes ignore SIGINT; and set TensorFlow's
    CPU thread counts when no GPU is visible (``distributed.configure_cpu_threads``). Call it
    before TensorFlow starts: it imports tensorflow before ``metalearn_helpers``, which then
    leaves TensorFlow unstarted (a ``tf.distribute`` strategy can still be made)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    import tensorflow  # noqa: F401

    from metalearn_helpers.distributed import configure_cpu_threads

    configure_cpu_threads(args.intra_op_threads, args.inter_op_threads)


def run_folder(name: str, root: Path | None = None) -> Path:
    """``runs/<name>/`` of the repository (or of ``root``), first filled from
    ``weights/resume/<name>/`` when only a committed partial run exists there, so that training
    continues it instead of starting over."""
    root = Path(root or ROOT)
    run_dir, committed = root / "runs" / name, root / "weights" / "resume" / name
    if not (run_dir / "checkpoint").exists() and (committed / "checkpoint").exists():
        shutil.copytree(committed, run_dir, dirs_exist_ok=True)
        print(f"continuing the committed partial run from {committed}")
    return run_dir


def train_or_exit(train, planned: int, run_dir: Path, eval_only: bool = False) -> tuple:
    """:func:`metalearn_helpers.training.train_or_resume` (``--eval-only``: restore only), or exit
    with status 1 and a message when ``run_dir`` holds no checkpoint to evaluate."""
    from metalearn_helpers.training import train_or_resume

    learner, steps, interrupted = train_or_resume(train, planned, run_dir,
                                                  train_more=not eval_only)
    if learner is None:
        sys.exit(f"no checkpoint in {run_dir}: nothing to evaluate")
    return learner, steps, interrupted


def keep_resume_checkpoint(run_dir: Path, committed: Path, steps: int, planned: int) -> None:
    """An unfinished run keeps its latest checkpoint in ``committed`` (``weights/resume/<name>/``)
    for a later session; a finished one deletes it."""
    from metalearn_helpers.history import HISTORY_FILE

    shutil.rmtree(committed, ignore_errors=True)
    if steps >= planned:
        return
    committed.mkdir(parents=True)
    for path in run_dir.glob(f"ckpt-{steps}.*"):
        shutil.copy(path, committed)
    shutil.copy(run_dir / HISTORY_FILE, committed)
    (committed / "checkpoint").write_text(f'model_checkpoint_path: "ckpt-{steps}"\n'
                                          f'all_model_checkpoint_paths: "ckpt-{steps}"\n')


def commands(args, record_path: Path, command: str) -> dict:
    """The record's ``command``: the one that trained the weights. An ``--eval-only`` run keeps
    the earlier record's and adds itself as ``evaluation_command``."""
    if args.eval_only and record_path.exists():
        return {"command": json.loads(record_path.read_text())["command"],
                "evaluation_command": command}
    return {"command": command}


def export(learner, name: str, run_dir: Path, *, steps: int, planned: int, args,
           command: str, record: dict, weights_dir: Path | None = None) -> Path:
    """Write the weights, learning curves, record and (unfinished) resume checkpoint of a run.

    Args:
        learner: the trained learner (anything ``records.save_weights`` takes).
        name: the run's name (``weights/<name>.*``).
        run_dir: its checkpoint folder (holds the history).
        steps, planned: steps done and planned.
        args: the script's parsed options (``seed``, ``eval_only``).
        command: the command line that ran this export.
        record: the script's own record fields (name, algorithm, paper, hyperparameters, tests...).
        weights_dir: where to write (default ``records.WEIGHTS_DIR``).

    Returns:
        The record's path.
    """
    from metalearn_helpers import records
    from metalearn_helpers.history import HISTORY_FILE, History

    weights_dir = Path(weights_dir or records.WEIGHTS_DIR)
    weights_dir.mkdir(exist_ok=True)
    keep_resume_checkpoint(run_dir, weights_dir / "resume" / name, steps, planned)
    records.save_weights(learner, weights_dir / f"{name}.npz")
    shutil.copy(run_dir / HISTORY_FILE, weights_dir / f"{name}.history.json")
    elapsed = History.load(run_dir / HISTORY_FILE).elapsed
    record_path = weights_dir / f"{name}.json"
    records.write_record(record_path, {
        "name": name, **record,
        "steps": steps, "planned_steps": planned, "finished": steps >= planned,
        "seed": args.seed, "train_seconds": elapsed, "seconds_per_step": elapsed / max(steps, 1),
        **commands(args, record_path, command),
    })
    return record_path
