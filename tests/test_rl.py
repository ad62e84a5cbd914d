"""Tests of notebook 09's meta-RL helpers: the point-navigation and bandit environments, the bandit
baselines, and the RL² learner trained through the course's meta_train loop."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.bandits import (
    BanditTasks,
    BernoulliBandits,
    bayes_optimal_arms,
    best_computed_strategy,
    bayes_optimal_expectation,
    evaluate_baselines,
    gittins_arms,
    gittins_indices,
    play,
    random_arms,
    tune_ucb1,
)
from metalearn_helpers.evaluation import mean_confidence_interval
from metalearn_helpers.rl2 import RL2
from metalearn_helpers.rl_envs import (
    ARENA,
    MAX_SPEED,
    BernoulliBandit,
    PointNavigation,
    sample_goals,
)
from metalearn_helpers.training import checkpoint_step, meta_train


# -- point navigation -----------------------------------------------------------------------------
def test_goals_lie_in_the_arena_and_outside_goals_are_rejected():
    goals = sample_goals(1000, seed=0)
    assert goals.shape == (1000, 2) and np.abs(goals).max() <= ARENA
    for bad in ([[0.6, 0.0]], [[0.0, -0.51]], [[np.nan, 0.0]]):
        with pytest.raises(ValueError, match="inside the arena"):
            PointNavigation(bad)
    with pytest.raises(ValueError, match=r"shape \(n_envs, 2\)"):
        PointNavigation(np.zeros((3, 3)))


def test_actions_are_clipped_and_reward_is_minus_the_distance():
    env = PointNavigation([[0.5, 0.5], [-0.3, 0.2]])
    assert np.array_equal(env.reset(), np.zeros((2, 2)))
    positions, rewards, dones = env.step([[1.0, -5.0], [0.05, 0.02]])
    np.testing.assert_allclose(positions, [[MAX_SPEED, -MAX_SPEED], [0.05, 0.02]])
    np.testing.assert_allclose(rewards, [-np.hypot(0.4, 0.6), -np.hypot(0.35, 0.18)])
    assert not dones.any()


def test_episode_ends_within_0_01_of_the_goal_and_after_100_steps():
    env = PointNavigation([[0.095, 0.0], [0.5, 0.5]])
    env.reset()
    _, rewards, dones = env.step([[0.1, 0.0], [0.0, 0.0]])
    assert dones.tolist() == [True, False] and rewards[0] == pytest.approx(-0.005)
    _, rewards, dones = env.step([[0.1, 0.0], [0.0, 0.0]])
    assert rewards[0] == 0.0 and dones[0]  # an ended episode stays put and earns nothing
    for _ in range(98):
        _, _, dones = env.step(np.zeros((2, 2)))
    assert dones.all() and env.t == 100
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 2)))


def test_action_shape_mismatch_is_a_clear_error():
    env = PointNavigation(sample_goals(4, seed=1))
    with pytest.raises(ValueError, match=r"actions must have shape \(n_envs, 2\) = \(4, 2\)"):
        env.step(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="arms must be 3 integer"):
        BernoulliBandit(np.full((3, 5), 0.5)).pull(np.zeros((3, 2), dtype=int))
    rl2 = RL2(k_arms=3, n_pulls=2, units=8)
    with pytest.raises(ValueError, match=r"3 actions .* shape \(n_tasks, 3\); got shape \(4, 5\)"):
        rl2.train_step(np.full((4, 5), 0.5, np.float32))


# -- bandits --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k_arms, n_pulls, message", [(1, 10, "k_arms must be at least 2"),
                                                      (5, 0, "n_pulls must be at least 1"),
                                                      (5, 2.5, "n_pulls must be an int")])
def test_bad_bandit_sizes_are_rejected(k_arms, n_pulls, message):
    with pytest.raises((ValueError, TypeError), match=message):
        BernoulliBandits(k_arms, n_pulls)
    with pytest.raises((ValueError, TypeError), match=message):
        RL2(k_arms, n_pulls, units=4)


def test_bandit_tasks_follow_the_meta_train_interface():
    tasks = BernoulliBandits(k_arms=5, n_pulls=10)
    (p,) = tasks.sample(0).arrays()
    assert p.shape == (5,) and p.dtype == np.float32
    batch = next(tasks.batches(8, seed=0)).arrays()[0]
    assert batch.shape == (8, 5) and (batch >= 0).all() and (batch <= 1).all()
    test = tasks.test_set(50)
    assert test.uniforms.shape == (50, 10, 5)
    assert np.array_equal(test.arm_probabilities, tasks.test_set(50).arm_probabilities)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        BernoulliBandit([[0.5, np.nan]])


def test_ucb1_and_thompson_beat_random_on_100_pulls():
    test = BernoulliBandits(k_arms=5, n_pulls=100).test_set(300)
    scores = evaluate_baselines(test)
    assert scores["random"].mean == pytest.approx(50, abs=3)
    for name in ("ucb1", "thompson"):
        assert scores[name].mean - scores[name].ci95 > scores["random"].mean + scores["random"].ci95
    assert 0 <= tune_ucb1(5, 100, n_tasks=50, grid=(0.1, 1.0)) <= 1.0
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate_baselines(test, names=("oracle",))
    # The Gittins index comes last and beats Thompson sampling on the same bandits (paired;
    # measured on the 1,000 test bandits: 77.98 against 74.79).
    assert list(scores)[-1] == "gittins"
    gain = mean_confidence_interval(scores["gittins"].values - scores["thompson"].values)
    assert gain.mean - gain.ci95 > 0


def test_bayes_optimal_strategy_matches_its_value_by_hand():
    # Two arms, two pulls: pull one (1/2); on a win stay (2/3), on a loss switch (1/2):
    # 1/2 + 1/2 * 2/3 + 1/2 * 1/2 = 13/12.
    test = BernoulliBandits(k_arms=2, n_pulls=2).test_set(10_000, seed=3)
    score = evaluate_baselines(test, names=("random",))
    assert "bayes_optimal" in score
    assert score["bayes_optimal"].mean == pytest.approx(13 / 12, abs=2 * score["random"].ci95)
    with pytest.raises(ValueError, match="n_pulls <= 20"):
        bayes_optimal_arms(100)
    assert bayes_optimal_expectation(2, 2) == pytest.approx(13 / 12, rel=1e-12)
    # Table 1's 6.7 (RL², UCB1) is above the best expectation: the paper's test bandits' luck.
    assert bayes_optimal_expectation(5, 10) == pytest.approx(6.660, abs=5e-4)
    with pytest.raises(ValueError, match="k_arms"):
        bayes_optimal_expectation(1, 10)
    assert best_computed_strategy(20)[0] == "bayes_optimal"
    assert best_computed_strategy(21)[0] == "gittins"


def test_gittins_index_is_the_posterior_mean_with_one_pull_left_and_5_9_with_two():
    index = gittins_indices(12)
    s, f = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    reachable = s + f <= 11
    np.testing.assert_allclose(index[1, :12, :12][reachable], ((s + 1) / (s + f + 2))[reachable])
    # Two pulls left, no data: pull (1/2 - lam), then keep the arm only after a win (2/3 - lam,
    # with probability 1/2): 1/2 - lam + (2/3 - lam) / 2 = 0 at lam = 5/9.
    assert index[2, 0, 0] == pytest.approx(5 / 9, abs=1e-12)
    assert np.isnan(index[3, 5, 5]) and np.isnan(index[0, 0, 0])  # unreachable: 13 pulls; none left
    with pytest.raises(ValueError, match="read-only"):
        index[1, 0, 0] = 1.0


def _index_by_bisection(s: int, f: int, m: int) -> float:
    """The finite-horizon Gittins index written out directly: the reward per pull of a retirement
    option at which pulling the arm first (then retiring whenever best) ties with retiring now."""
    def pull_first(s, f, m, lam):
        p = (s + 1) / (s + f + 2)
        return p * (1 + best(s + 1, f, m - 1, lam)) + (1 - p) * best(s, f + 1, m - 1, lam)

    def best(s, f, m, lam):
        return 0.0 if m == 0 else max(m * lam, pull_first(s, f, m, lam))

    low, high = 0.0, 1.0
    for _ in range(40):
        lam = (low + high) / 2
        low, high = (lam, high) if pull_first(s, f, m, lam) > m * lam else (low, lam)
    return (low + high) / 2


def test_gittins_table_matches_a_direct_calibration_by_bisection():
    n_pulls = 6
    index = gittins_indices(n_pulls)
    for m in range(1, n_pulls + 1):
        for s in range(n_pulls - m + 1):
            for f in range(n_pulls - m - s + 1):
                assert index[m, s, f] == pytest.approx(_index_by_bisection(s, f, m), abs=1e-3)


def test_gittins_indices_rise_with_successes_and_pulls_left_and_fall_with_failures():
    index = gittins_indices(30)
    assert np.nanmin(np.diff(index, axis=1)) > 0  # one more success
    assert np.nanmax(np.diff(index, axis=2)) < 0  # one more failure
    assert np.nanmin(np.diff(index, axis=0)) > 0  # one more pull left: more worth learning


def _expected_total(choose_arms, k_arms: int, n_pulls: int) -> float:
    """The exact expected total of a deterministic strategy over the task prior: the average over
    every sequence of outcomes, each pull paying with the arm's posterior mean."""
    @functools.cache
    def value(counts: tuple) -> float:  # ((successes, failures) of each arm)
        t = sum(s + f for s, f in counts)
        if t == n_pulls:
            return 0.0
        successes, failures = (np.array([c], dtype=float) for c in zip(*counts))
        a = int(choose_arms(successes, successes + failures, t, None)[0])
        s, f = counts[a]
        p = (s + 1) / (s + f + 2)
        win, lose = ((*counts[:a], outcome, *counts[a + 1:])
                     for outcome in ((s + 1, f), (s, f + 1)))
        return p * (1 + value(win)) + (1 - p) * value(lose)

    return value(((0, 0),) * k_arms)


def test_gittins_strategy_plays_like_the_exact_programme_on_short_trials():
    # Over the prior: exactly Bayes-optimal for 5 arms and 10 pulls, not for 2 arms and 10 pulls.
    assert _expected_total(gittins_arms(10), 5, 10) == pytest.approx(
        bayes_optimal_expectation(5, 10), abs=1e-12)
    gap = bayes_optimal_expectation(2, 10) - _expected_total(gittins_arms(10), 2, 10)
    assert gap == pytest.approx(2.6e-4, abs=5e-5)
    # Two arms, two pulls: the same choices as the exact programme, so 13/12 in expectation.
    test = BernoulliBandits(k_arms=2, n_pulls=2).test_set(2000, seed=3)
    gittins = play(gittins_arms(2), test)
    np.testing.assert_array_equal(gittins, play(bayes_optimal_arms(2), test))
    assert gittins.mean() == pytest.approx(13 / 12, abs=0.05)
    # Five arms, ten pulls, paired on the same bandits (measured on the 1,000 test bandits: the
    # same actions on every bandit, difference 0).
    test = BernoulliBandits(k_arms=5, n_pulls=10).test_set(300)
    gap = mean_confidence_interval(play(bayes_optimal_arms(10), test)
                                   - play(gittins_arms(10), test))
    assert abs(gap.mean) <= 0.02


def test_gittins_rejects_bad_pulls_and_a_trial_longer_than_its_table():
    for bad, error in ((0, ValueError), (2.5, TypeError), ("10", TypeError), (True, TypeError)):
        with pytest.raises(error, match="n_pulls must be"):
            gittins_arms(bad)
    with pytest.raises(ValueError, match="grid_size must be at least 2"):
        gittins_indices(10, grid_size=1)
    with pytest.raises(ValueError, match="trials of 3 pulls; pull t = 3 is outside 0 to 2"):
        play(gittins_arms(3), BernoulliBandits(k_arms=2, n_pulls=4).test_set(5))


def test_common_random_numbers_give_every_method_the_same_luck():
    test = BanditTasks(np.array([[0.0, 1.0]], np.float32), np.full((1, 4, 2), 0.5, np.float32))
    always_second = lambda successes, pulls, t, rng: np.ones(len(successes), int)
    assert play(always_second, test).tolist() == [4.0]
    assert 0 <= play(random_arms, test)[0] <= 4


# -- RL² ------------------------------------------------------------------------------------------
def test_rl2_runs_through_meta_train_and_moves_above_random(tmp_path):
    tasks = BernoulliBandits(k_arms=2, n_pulls=5)
    rl2 = RL2(k_arms=2, n_pulls=5, units=16, meta_lr=1e-2, ppo_epochs=1, seed=0)
    history = meta_train(rl2, tasks, n_steps=5, meta_batch_size=64, run_dir=tmp_path,
                         checkpoint_every=5, log_every=1, progress=False)
    losses = history.series("loss")[1]
    assert len(losses) == 5 and np.all(np.isfinite(losses))
    test = tasks.test_set(1000)
    sampled, greedy = rl2.evaluate(test), rl2.evaluate(test, greedy=True)
    assert np.isfinite(sampled.mean) and sampled.n == 1000
    random = evaluate_baselines(test, names=("random",))["random"]
    assert greedy.mean > random.mean - random.ci95  # at least no worse than random after 5 steps
    resumed = RL2(k_arms=2, n_pulls=5, units=16, meta_lr=1e-2, ppo_epochs=1, seed=1)
    meta_train(resumed, tasks, n_steps=5, meta_batch_size=64, run_dir=tmp_path, progress=False)
    for a, b in zip(rl2.meta_variables, resumed.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # the resume restored the weights


class _NaNAfter:
    """Bandit tasks whose arm probabilities become NaN from the ``bad_batch``-th batch on."""

    def __init__(self, tasks, bad_batch):
        self.tasks, self.bad_batch = tasks, bad_batch

    def sample(self, seed=None):
        return self.tasks.sample(seed)

    def batches(self, meta_batch_size, seed=None):
        for i, batch in enumerate(self.tasks.batches(meta_batch_size, seed)):
            p = batch.arm_probabilities
            yield BanditTasks(np.full_like(p, np.nan) if i + 1 >= self.bad_batch else p)


def test_nan_returns_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    rl2 = RL2(k_arms=2, n_pulls=3, units=8, ppo_epochs=1, seed=0)
    tasks = _NaNAfter(BernoulliBandits(k_arms=2, n_pulls=3), bad_batch=5)
    with pytest.raises(FloatingPointError, match="loss is nan at step 5"):
        meta_train(rl2, tasks, n_steps=10, meta_batch_size=16, run_dir=tmp_path,
                   checkpoint_every=3, log_every=1, progress=False)
    assert checkpoint_step(tmp_path) == 3
    assert all(np.isfinite(v.numpy()).all() for v in rl2.meta_variables)
    restored = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path)))
    saved = [restored.get_tensor(k) for k, dtype in restored.get_variable_to_dtype_map().items()
             if dtype.is_floating]
    assert len(saved) > len(rl2.meta_variables) and all(np.isfinite(a).all() for a in saved)
