"""Tests of RL²'s second training phase: the annealed schedule (``RL2(anneal_iterations=...)``),
rebuilding a committed policy with new training settings (``load_rl2(..., **overrides)``),
``scripts/train_rl2.py --init-from`` (its run name and the checks of the policy it starts from),
Table 1's rows, which show the second phase in place of the run it continued, and
``--rescore-baselines`` (a new baseline scored into a committed record without retraining)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from metalearn_helpers import application_tables, records
from metalearn_helpers.rl2 import RL2, load_rl2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_rl2  # noqa: E402


def parse(*argv):
    return train_rl2.parse_args(list(argv))[1]


def test_anneal_takes_learning_rate_and_entropy_bonus_linearly_to_zero():
    rl2 = RL2(k_arms=2, n_pulls=3, units=4, meta_lr=0.1, ppo_epochs=2, entropy_coef=0.03,
              anneal_iterations=3, seed=0)
    tasks = np.full((8, 2), 0.5, np.float32)
    rl2.train_step(tasks)
    assert float(rl2.meta_optimizer.learning_rate) == pytest.approx(0.1 * 2 / 3)
    assert float(rl2.entropy_bonus()) == pytest.approx(0.03 * 2 / 3)
    for _ in range(3):  # past the end it stays at 0
        rl2.train_step(tasks)
    assert float(rl2.meta_optimizer.learning_rate) == 0 and float(rl2.entropy_bonus()) == 0
    assert rl2.config["anneal_iterations"] == 3 and rl2.config["meta_lr"] == 0.1
    constant = RL2(k_arms=2, n_pulls=3, units=4, meta_lr=0.1, seed=0)
    assert float(constant.meta_optimizer.learning_rate) == pytest.approx(0.1)
    assert float(constant.entropy_bonus()) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="anneal_iterations must be at least 1"):
        RL2(k_arms=2, n_pulls=3, units=4, anneal_iterations=0)


def test_load_rl2_overrides_training_settings_but_not_the_network():
    committed, record = load_rl2("rl2_bandits_k5_n10")
    again, _ = load_rl2("rl2_bandits_k5_n10", meta_lr=3e-4, anneal_iterations=50, seed=7)
    assert again.config["meta_lr"] == 3e-4 and again.anneal_iterations == 50
    assert again.units == record["hyperparameters"]["units"]
    for a, b in zip(committed.meta_variables, again.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="units of rl2_bandits_k5_n10 are fixed by its weights"):
        load_rl2("rl2_bandits_k5_n10", units=64)


def test_run_name_of_a_second_phase_must_be_its_own():
    assert train_rl2.run_name(parse("--n-pulls", "100")) == "rl2_bandits_k5_n100"
    assert train_rl2.run_name(parse("--n-pulls", "10", "--init-from", "rl2_bandits_k5_n10",
                                    "--name", "rl2_bandits_k5_n10_phase2")) == \
        "rl2_bandits_k5_n10_phase2"
    for argv in (("--init-from", "rl2_bandits_k5_n10"),
                 ("--init-from", "rl2_bandits_k5_n10", "--name", "rl2_bandits_k5_n10")):
        with pytest.raises(ValueError, match="needs a --name of its own"):
            train_rl2.run_name(parse("--n-pulls", "10", *argv))
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        train_rl2.run_name(parse("--n-pulls", "10", "--name", "../elsewhere"))


def test_init_from_loads_the_committed_policy_and_says_where_it_started():
    args = parse("--n-pulls", "10", "--init-from", "rl2_bandits_k5_n10", "--name", "x",
                 "--meta-lr", "3e-4", "--seed", "2")
    rl2, started = train_rl2.initial_policy(args, anneal_iterations=20)
    committed, record = load_rl2("rl2_bandits_k5_n10")
    for a, b in zip(committed.meta_variables, rl2.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert (rl2.config["meta_lr"], rl2.anneal_iterations) == (3e-4, 20)
    assert started["name"] == "rl2_bandits_k5_n10" and started["steps"] == record["steps"]
    assert started["command"] == record["command"] and started["test"] == record["test"]


@pytest.mark.parametrize("argv, message", [
    (("--n-pulls", "10", "--init-from", "rl2_bandits_k5_n7"),
     r"no record .*rl2_bandits_k5_n7\.json; the committed RL² runs are .*rl2_bandits_k5_n10"),
    (("--n-pulls", "100", "--init-from", "rl2_bandits_k5_n10"),
     r"trained with n_pulls = 10 \(this run: 100\)"),
    (("--n-pulls", "10", "--units", "64", "--init-from", "rl2_bandits_k5_n10"),
     r"units = 256 \(this run: 64\)"),
    (("--n-pulls", "10", "--k-arms", "3", "--init-from", "rl2_bandits_k5_n10"),
     r"k_arms = 5 \(this run: 3\)"),
])
def test_init_from_a_missing_or_mismatched_policy_is_a_clear_error(argv, message):
    with pytest.raises(ValueError, match=message):
        train_rl2.initial_policy(parse(*argv, "--name", "x"), anneal_iterations=None)


def test_table_1_shows_a_second_phase_in_place_of_the_run_it_continued():
    first = records.load_record(records.WEIGHTS_DIR / "rl2_bandits_k5_n100.json")
    second = {**first, "name": "rl2_bandits_k5_n100_phase2", "steps": 50, "planned_steps": 50,
              "initialized_from": {"name": first["name"], "steps": first["steps"]}}
    current = application_tables.current_rl2_records([second, first])
    assert [r["name"] for r in current] == ["rl2_bandits_k5_n100_phase2"]
    rows = application_tables.rl2_bandit_rows([first, second])
    assert len({r["setting"] for r in rows}) == 1
    assert rows[0]["method"] == f"RL² (sampling), {first['steps']:,} + 50 iterations"
    with pytest.raises(ValueError, match="two current RL² runs for k = 5, n = 100"):
        application_tables.current_rl2_records([first, {**first, "name": "rl2_bandits_other"}])
    # A third phase counts every phase's iterations; a missing phase is a clear error.
    third = {**first, "name": "rl2_bandits_k5_n100_phase3", "steps": 7, "planned_steps": 7,
             "initialized_from": {"name": second["name"], "steps": 50}}
    phases = application_tables.rl2_training_phases(third, [third, first, second])
    assert [r["name"] for r in phases] == [first["name"], second["name"], third["name"]]
    rows = application_tables.rl2_bandit_rows([first, second, third])
    assert rows[0]["method"] == f"RL² (sampling), {first['steps']:,} + 50 + 7 iterations"
    with pytest.raises(ValueError, match="continues rl2_bandits_k5_n100_phase2, whose record"):
        application_tables.rl2_training_phases(third, [third, first])


def test_a_second_phase_trains_exports_and_records_where_it_started(tmp_path, monkeypatch):
    import shutil

    import long_run

    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".json", ".npz"):
        shutil.copy(records.WEIGHTS_DIR / f"rl2_bandits_k5_n10{suffix}", weights)
    monkeypatch.setattr(long_run, "start_process", lambda args: None)  # TensorFlow runs already
    monkeypatch.setattr(long_run, "ROOT", tmp_path)
    monkeypatch.setattr(records, "WEIGHTS_DIR", weights)
    argv = ["--n-pulls", "10", "--init-from", "rl2_bandits_k5_n10", "--name", "rl2_bandits_k5_n10_b",
            "--steps", "2", "--meta-batch-size", "16", "--meta-lr", "3e-4", "--anneal"]
    assert train_rl2.main(argv) == 0
    record = records.load_record(weights / "rl2_bandits_k5_n10_b.json")
    source = records.load_record(weights / "rl2_bandits_k5_n10.json")
    assert record["initialized_from"]["name"] == "rl2_bandits_k5_n10"
    assert record["initialized_from"]["steps"] == source["steps"]
    assert record["initialized_from"]["command"] == source["command"]
    assert record["initialized_from"]["rl2_gain"]["tasks"] == 1000  # paired, same test bandits
    assert record["hyperparameters"]["meta_lr"] == 3e-4  # where the schedule starts, not 0
    assert record["hyperparameters"]["anneal_iterations"] == 2 and record["finished"]
    assert record["command"] == "python scripts/train_rl2.py " + " ".join(argv)
    rl2, _ = load_rl2("rl2_bandits_k5_n10_b")  # the new policy loads like any committed one
    assert rl2.anneal_iterations == 2


def _without(record: dict, method: str) -> dict:
    """``record`` as it was before ``method`` was a baseline."""
    tests = record["tests"]
    return {**record, "tests": {**tests, **{
        part: {m: v for m, v in tests[part].items() if m != method}
        for part in ("scores", "rl2_minus")}}}


def test_rescore_baselines_adds_a_baseline_to_a_committed_record_and_keeps_the_rest(
        tmp_path, monkeypatch, capsys):
    import json
    import shutil

    import long_run

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(records.WEIGHTS_DIR / "rl2_bandits_k5_n10.npz", weights)
    path = weights / "rl2_bandits_k5_n10.json"
    old = _without(records.load_record(records.WEIGHTS_DIR / path.name), "gittins")
    path.write_text(json.dumps(old))
    monkeypatch.setattr(long_run, "start_process", lambda args: None)  # TensorFlow runs already
    monkeypatch.setattr(records, "WEIGHTS_DIR", weights)
    argv = ["--n-pulls", "10", "--rescore-baselines"]
    assert train_rl2.main(argv) == 0
    new = records.load_record(path)
    assert list(new["tests"]["scores"])[:-1] == list(old["tests"]["scores"])
    assert list(new["tests"]["scores"])[-1] == "gittins" and "gittins" in new["tests"]["rl2_minus"]
    assert new["evaluation_command"] == "python scripts/train_rl2.py " + " ".join(argv)
    large = new["tests"]["large_test"]
    assert set(large["scores"]) == {"rl2", "bayes_optimal"} and large["scores"]["rl2"]["tasks"] == 10_000
    for key in ("command", "steps", "finished", "seed", "train_seconds", "hyperparameters", "test"):
        assert new[key] == old[key]
    for method, score in old["tests"]["scores"].items():
        assert new["tests"]["scores"][method] == pytest.approx(score)
    # A policy that no longer scores what its record says leaves the record as it was.
    scores = new["tests"]["scores"]
    path.write_text(json.dumps({**new, "tests": {**new["tests"], "scores": {
        **scores, "rl2": {**scores["rl2"], "total_reward": scores["rl2"]["total_reward"] + 0.5}}}}))
    before = path.read_text()
    with pytest.raises(SystemExit, match="rl2 now scores .* so .* is left as it was"):
        train_rl2.main(argv)
    assert path.read_text() == before
    for wrong, message in ((["--n-pulls", "100", "--name", "rl2_bandits_k5_n10"],
                            "k = 5 arms and n = 10 pulls, not --k-arms 5 --n-pulls 100"),
                           (["--n-pulls", "10", "--name", "rl2_bandits_k5_n7"], "no record"),
                           (["--n-pulls", "10", "--eval-only"], "no --init-from or --eval-only")):
        with pytest.raises(SystemExit):
            train_rl2.main([*wrong, "--rescore-baselines"])
        assert message in capsys.readouterr().err
