"""Tests of RL²'s second training phase: the annealed schedule (``RL2(anneal_iterations=...)``),
rebuilding a committed policy with new training settings (``load_rl2(..., **overrides)``) and
``scripts/train_rl2.py --init-from`` (its run name and the checks of the policy it starts from)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

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
    assert float(rl2._entropy_coef()) == pytest.approx(0.03 * 2 / 3)
    for _ in range(3):  # past the end it stays at 0
        rl2.train_step(tasks)
    assert float(rl2.meta_optimizer.learning_rate) == 0 and float(rl2._entropy_coef()) == 0
    assert rl2.config["anneal_iterations"] == 3 and rl2.config["meta_lr"] == 0.1
    constant = RL2(k_arms=2, n_pulls=3, units=4, meta_lr=0.1, seed=0)
    constant.train_step(tasks)
    assert float(constant.meta_optimizer.learning_rate) == pytest.approx(0.1)
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
