"""Tests of what notebook 09 reads from RL² and the bandit baselines: the trials they play (arm
choices and rewards), the committed policies with their records, Table 1's rows and the explorer."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from metalearn_helpers import application_tables, records
from metalearn_helpers.bandits import BernoulliBandits, play, play_trial, thompson_arms
from metalearn_helpers.rl2 import RL2, load_rl2
from metalearn_helpers.widgets import bandit_policy_explorer

matplotlib.use("Agg")


def test_rl2_trial_shows_what_the_gru_reads_and_sums_to_its_total():
    rl2 = RL2(k_arms=3, n_pulls=6, units=8, seed=0)
    test = BernoulliBandits(k_arms=3, n_pulls=6).test_set(20)
    trial = rl2.play(test, seed=4)
    assert trial["inputs"].shape == (20, 6, 5) and trial["actions"].shape == (20, 6)
    np.testing.assert_array_equal(trial["rewards"].sum(1), rl2.total_rewards(test, seed=4))
    first, later = trial["inputs"][:, 0], trial["inputs"][:, 1:]
    assert not first.any()  # nothing before the first pull
    np.testing.assert_array_equal(later[..., :3].argmax(-1), trial["actions"][:, :-1])
    np.testing.assert_array_equal(later[..., 3], trial["rewards"][:, :-1])
    assert (later[..., 4] == 1).all()  # each pull ends an episode of the trial
    with pytest.raises(ValueError, match="n_pulls=6"):
        rl2.play(BernoulliBandits(k_arms=3, n_pulls=5).test_set(2))


def test_baseline_trial_matches_its_total_and_pays_only_for_lucky_pulls():
    test = BernoulliBandits(k_arms=4, n_pulls=30).test_set(50)
    trial = play_trial(thompson_arms, test, seed=2)
    np.testing.assert_array_equal(trial["rewards"].sum(1), play(thompson_arms, test, seed=2))
    rows, pulls = np.arange(50)[:, None], np.arange(30)[None]
    paid = test.uniforms[rows, pulls, trial["actions"]] < test.arm_probabilities[
        rows, trial["actions"]]
    np.testing.assert_array_equal(trial["rewards"], paid.astype(float))


def test_load_rl2_rebuilds_the_committed_policy_from_its_record():
    rl2, record = load_rl2("rl2_bandits_k5_n10")
    assert (rl2.n_pulls, rl2.units) == (10, record["hyperparameters"]["units"])
    test = BernoulliBandits(5, 10).test_set(100)
    random = play(lambda s, n, t, rng: rng.integers(0, 5, len(s)), test)
    assert rl2.total_rewards(test, greedy=True).mean() > random.mean() + 0.5
    with pytest.raises(FileNotFoundError):
        load_rl2("rl2_bandits_k5_n7")


def test_table_1_rows_put_the_paper_next_to_ours():
    rows = application_tables.rl2_bandit_rows(records.load_records(prefix="rl2_bandits_"))
    by = {(r["setting"], r["method"].split(",")[0]): r for r in rows}
    rl2 = by[("k = 5, n = 10", "RL² (sampling)")]
    assert rl2["paper (Table 1)"] == "6.7" and rl2["vs paper"] != "–"
    gittins = by[("k = 5, n = 100", "Gittins index (finite horizon)")]
    assert gittins["paper (Table 1)"] == "78.3" and gittins["vs paper"] != "–"
    assert gittins["RL² − method (paired)"].startswith(("+", "-"))
    # A record scored before the Gittins index was a baseline shows the paper's number alone.
    older = [{**r, "tests": {**r["tests"], "scores": {m: v for m, v in r["tests"]["scores"].items()
                                                       if m != "gittins"}}}
             for r in records.load_records(prefix="rl2_bandits_")]
    older_rows = application_tables.rl2_bandit_rows(older)
    assert [r["ours (total reward)"] for r in older_rows if r["method"].startswith("Gittins")] \
        == ["–", "–"]
    assert by[("k = 5, n = 10", "Thompson sampling")]["RL² − method (paired)"].startswith(("+", "-"))
    assert application_tables.rl2_bandit_rows([]) == []
    # The 10,000 further bandits: RL² against the best strategy computed for each horizon.
    large = application_tables.rl2_large_test_rows(older)
    assert [r["best computed strategy"].split(":")[0] for r in large] == [
        "Bayes-optimal (exact)", "Gittins index (finite horizon)"]
    assert all(r["bandits"] == "10,000" for r in large)
    without = [{**r, "tests": {k: v for k, v in r["tests"].items() if k != "large_test"}}
               for r in older]
    assert application_tables.rl2_large_test_rows(without) == []


def test_bandit_explorer_draws_and_rejects_a_wrong_number_of_arms():
    rl2 = RL2(k_arms=3, n_pulls=8, units=8, seed=0)
    explorer = bandit_policy_explorer({"tiny": rl2}, arm_probabilities=(0.2, 0.5, 0.9))
    assert "image/png" in explorer.initial_view
    controls = explorer.children[0].children
    controls[2].value = 0.95  # an arm probability: redraws without error
    assert len(explorer.children[1].outputs) == 1
    with pytest.raises(ValueError, match="one value per arm"):
        bandit_policy_explorer({"tiny": rl2}, arm_probabilities=(0.5, 0.5))
