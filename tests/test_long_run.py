"""Tests of scripts/long_run.py: what every long-run script shares (resume folder, export)."""

import argparse
import json
import sys
from pathlib import Path

import pytest

from metalearn_helpers import records
from metalearn_helpers.sinusoid import train_sinusoid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import long_run  # noqa: E402


def parse(argv):
    parser = argparse.ArgumentParser()
    long_run.add_run_arguments(parser)
    return parser.parse_args(argv)


def trained(run_dir, n_steps):
    algorithm, _ = train_sinusoid("maml", n_steps, run_dir=run_dir, meta_batch_size=2,
                                  val_tasks=0, progress=False)
    return algorithm


def export(algorithm, root, run_dir, args, planned, command="python scripts/x.py"):
    return long_run.export(algorithm, "toy_run", run_dir, steps=2, planned=planned, args=args,
                           command=command, record={"algorithm": "maml", "paper": "Finn et al. 2017",
                                   "hyperparameters": {}, "test": {}},
                           weights_dir=root / "weights")


def test_an_unfinished_run_is_exported_with_a_resume_checkpoint_a_clone_continues(tmp_path):
    run_dir = tmp_path / "runs" / "toy_run"
    algorithm = trained(run_dir, 2)
    path = export(algorithm, tmp_path, run_dir, parse(["--seed", "3"]), planned=5)
    record = records.load_record(path)
    assert (record["steps"], record["planned_steps"], record["finished"]) == (2, 5, False)
    assert record["seed"] == 3 and record["command"] == "python scripts/x.py"
    assert record["seconds_per_step"] == record["train_seconds"] / 2
    assert (tmp_path / "weights" / "toy_run.npz").exists()
    assert json.loads((tmp_path / "weights" / "toy_run.history.json").read_text())["train"]
    resume = tmp_path / "weights" / "resume" / "toy_run"
    assert (resume / "checkpoint").read_text().startswith('model_checkpoint_path: "ckpt-2"')

    clone = tmp_path / "clone"  # a fresh clone: only weights/ is there
    (clone / "weights" / "resume").mkdir(parents=True)
    (clone / "weights" / "resume" / "toy_run").symlink_to(resume, target_is_directory=True)
    continued = long_run.run_folder("toy_run", root=clone)
    assert continued == clone / "runs" / "toy_run" and (continued / "checkpoint").exists()
    assert trained(continued, 3) is not None  # resumes at step 2, trains one more


def test_a_finished_run_drops_its_resume_checkpoint_and_eval_only_keeps_the_command(tmp_path):
    run_dir = tmp_path / "runs" / "toy_run"
    algorithm = trained(run_dir, 2)
    export(algorithm, tmp_path, run_dir, parse([]), planned=5)
    path = export(algorithm, tmp_path, run_dir, parse(["--eval-only"]), planned=2,
                  command="python scripts/x.py --eval-only")
    record = records.load_record(path)
    assert record["finished"] and not (tmp_path / "weights" / "resume" / "toy_run").exists()
    assert record["command"] == "python scripts/x.py"
    assert record["evaluation_command"] == "python scripts/x.py --eval-only"


def test_train_omniglot_trains_evaluates_and_exports_end_to_end(omniglot, tmp_path, monkeypatch):
    import train_omniglot

    from metalearn_helpers import omniglot as omniglot_module

    monkeypatch.setattr(long_run, "start_process", lambda args: None)  # TensorFlow runs already
    monkeypatch.setattr(long_run, "ROOT", tmp_path)
    monkeypatch.setattr(records, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(omniglot_module, "load_omniglot", lambda: omniglot)
    argv = ["--algorithm", "protonet", "--n-steps", "2", "--episodes", "2"]
    assert train_omniglot.main(argv) == 0
    record = records.load_record(tmp_path / "weights" / "omniglot_protonet_60w1s.json")
    assert record["steps"] == 2 and record["finished"] and record["tests"][0]["episodes"] == 2
    assert record["command"] == "python scripts/train_omniglot.py " + " ".join(argv)


def test_eval_only_without_a_checkpoint_exits_with_a_message(tmp_path):
    def train(n_steps):
        raise AssertionError("--eval-only with no checkpoint must not train")

    with pytest.raises(SystemExit, match="no checkpoint in .*: nothing to evaluate"):
        long_run.train_or_exit(train, 5, tmp_path / "runs" / "none", eval_only=True)
