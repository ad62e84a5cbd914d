"""MAML for RL on point navigation (metalearn_helpers.maml_rl): the meta-gradient through the inner
policy-gradient step against finite differences, the baseline, shapes and bad input."""

import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers import maml_rl, point_policy
from metalearn_helpers.maml_rl import MAMLRL, PointGoals, adapt, adaptation_returns, meta_objective
from metalearn_helpers.point_policy import (discounted_returns, fit_linear_baseline, init_policy,
                                            sample_trajectories, surrogate_loss)
from metalearn_helpers.rl_envs import MAX_STEPS, sample_goals
from metalearn_helpers.training import meta_train


def fixed_batch(rng, n_tasks=2, m=6, observation_dim=2):
    """A deterministic batch: observations, actions, advantages and a mask with a few zeros."""
    mask = np.ones((n_tasks, m))
    mask[0, -2:] = 0
    return tuple(tf.constant(a) for a in (
        rng.normal(size=(n_tasks, m, observation_dim)) * 0.3, rng.normal(size=(n_tasks, m, 2)),
        rng.normal(size=(n_tasks, m)), mask))


def tiny_policy(seed=0):
    params = init_policy(2, (4,), 2, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    params = [p + 0.3 * rng.normal(size=p.shape) for p in params]  # non-zero biases and log_std
    return [tf.constant(p) for p in params]


def central_differences(f, params, eps=1e-6):
    grads = []
    for i, p in enumerate(params):
        flat = p.numpy().ravel()
        g = np.zeros_like(flat)
        for j in range(flat.size):
            step = np.zeros_like(flat)
            step[j] = eps
            shifted = lambda s: [tf.constant((flat + s).reshape(p.shape)) if k == i else q
                                 for k, q in enumerate(params)]
            g[j] = (float(f(shifted(step))) - float(f(shifted(-step)))) / (2 * eps)
        grads.append(g.reshape(p.shape))
    return grads


def tape_gradient(f, params):
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = f(params)
    return [g.numpy() for g in tape.gradient(value, params)]


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_meta_gradient_matches_finite_differences(inner_steps):
    # With the sampled trajectories held fixed, the meta-objective is a deterministic function of
    # the initial parameters: F(theta) = L_post(theta - a grad L_pre(theta)). The second-order
    # tape gradient must be its exact derivative, Hessian-vector term included.
    rng = np.random.default_rng(0)
    params = tiny_policy()
    inner = [fixed_batch(rng) for _ in range(inner_steps)]
    outer = fixed_batch(rng)
    f = tf.function(lambda p: meta_objective(p, inner, outer, inner_lr=0.5))
    exact = tape_gradient(f, params)
    numeric = central_differences(f, params)
    for a, b in zip(exact, numeric):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_first_order_drops_the_second_derivative():
    rng = np.random.default_rng(1)
    params, inner, outer = tiny_policy(), [fixed_batch(rng)], fixed_batch(rng)
    first = tape_gradient(lambda p: meta_objective(p, inner, outer, 0.5, first_order=True), params)
    adapted = [tf.constant(a.numpy()) for a in adapt(params, inner, 0.5)]
    at_adapted = tape_gradient(lambda p: tf.reduce_mean(surrogate_loss(p, outer)), adapted)
    for a, b in zip(first, at_adapted):
        np.testing.assert_allclose(a, b.sum(axis=0), rtol=1e-10, atol=1e-12)
    second = tape_gradient(lambda p: meta_objective(p, inner, outer, 0.5), params)
    assert max(np.abs(a - b).max() for a, b in zip(first, second)) > 1e-4


def test_inner_step_is_each_tasks_own_policy_gradient():
    rng = np.random.default_rng(2)
    params, batch = tiny_policy(), fixed_batch(rng, n_tasks=3)
    adapted = adapt(params, [batch], 0.1)
    for i in range(3):
        task = tuple(a[i:i + 1] for a in batch)
        grads = tape_gradient(lambda p: surrogate_loss(p, task)[0], params)
        for a, p, g in zip(adapted, params, grads):
            np.testing.assert_allclose(a[i].numpy(), p.numpy() - 0.1 * g, rtol=1e-10)


def test_discounted_returns():
    rewards = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(discounted_returns(rewards, 0.5), [[1 + 1 + 0.75, 2 + 1.5, 3]])


def test_linear_baseline_fits_a_linear_function_of_its_features():
    rng = np.random.default_rng(3)
    observations = rng.uniform(-0.5, 0.5, size=(4, 30, 2))
    features = point_policy.baseline_features(observations)
    assert features.shape == (4, 30, 8)
    np.testing.assert_allclose(features[0, 7, 4:], [0.07, 0.07 ** 2, 0.07 ** 3, 1.0])
    returns = features @ rng.normal(size=8)
    mask = np.ones((4, 30))
    mask[1, 20:] = 0
    returns[1, 20:] = 99.0  # steps after an episode ended are not fitted
    predicted = fit_linear_baseline(observations, returns, mask)
    np.testing.assert_allclose(predicted[mask > 0], returns[mask > 0], atol=1e-3)


def test_trajectories_shapes_and_ended_episodes():
    goals = np.array([[0.0, 0.05], [0.3, -0.2]])
    params = init_policy(seed=0)
    trajectories = sample_trajectories(params, goals, 3, np.random.default_rng(0))
    assert trajectories.positions.shape == (2, 3, MAX_STEPS + 1, 2)
    assert trajectories.actions.shape == (2, 3, MAX_STEPS, 2)
    assert trajectories.rewards.shape == trajectories.mask.shape == (2, 3, MAX_STEPS)
    assert trajectories.average_return().shape == (2,)
    np.testing.assert_array_equal(trajectories.positions[:, :, 0], 0.0)
    steps = np.diff(trajectories.positions, axis=2)
    assert np.abs(steps).max() <= 0.1 + 1e-12  # velocities clipped to the box
    assert np.all(steps[trajectories.mask == 0] == 0) and np.all(
        trajectories.rewards[trajectories.mask == 0] == 0)
    oracle = sample_trajectories(init_policy(4, seed=0), goals, 2, 0, goal_input=True)
    np.testing.assert_array_equal(oracle.observations[1, 0, 5, 2:], goals[1])


def test_adaptation_returns_shapes_and_seed():
    params = init_policy(hidden=(8,), seed=0)
    goals = sample_goals(3, seed=0)
    a = adaptation_returns(params, goals, [0.5], n_trajectories=2, seed=4)
    b = adaptation_returns(params, goals, [0.5], n_trajectories=2, seed=4)
    assert a.returns.shape == (3, 2) and len(a.trajectories) == 2
    np.testing.assert_array_equal(a.returns, b.returns)
    assert a.score().mean.shape == (2,)


def test_evaluation_uses_the_released_test_step_sizes():
    assert maml_rl.test_step_sizes(3) == [0.5, 0.25, 0.25]
    assert maml_rl.test_step_sizes(0) == []
    assert "0.5 for the first step, 0.25 after" in maml_rl.protocol(100, 3)
    oracle = MAMLRL(hidden=(8,), goal_input=True, n_trajectories=2)
    before = [p.numpy().copy() for p in oracle.params]
    result = maml_rl.evaluate_policy(oracle, sample_goals(2, seed=0), n_steps=1)
    assert result.returns.shape == (2, 2)
    for a, b in zip(before, oracle.params):
        np.testing.assert_array_equal(a, b.numpy())


def test_goals_outside_the_arena_are_refused():
    params = init_policy(hidden=(8,))
    with pytest.raises(ValueError, match="inside the arena"):
        sample_trajectories(params, [[0.2, 0.7]], 2, 0)
    with pytest.raises(ValueError, match="inside the arena"):
        MAMLRL(hidden=(8,), n_trajectories=2).train_step(np.array([[0.0, -0.6]]))
    with pytest.raises(ValueError, match=r"shape \(n_tasks, 2\)"):
        MAMLRL(hidden=(8,), n_trajectories=2).train_step(np.zeros((2, 3)))


def test_policy_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="3 dimensions.*2-D velocities"):
        sample_trajectories(init_policy(action_dim=3, hidden=(8,)), [[0.1, 0.1]], 2, 0)
    with pytest.raises(ValueError, match="4-D observations.*gives 2"):
        sample_trajectories(init_policy(4, hidden=(8,)), [[0.1, 0.1]], 2, 0)


def test_nan_returns_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path, monkeypatch):
    learner = MAMLRL(hidden=(8,), n_trajectories=2, inner_steps=0, seed=0)  # one rollout/step
    kwargs = dict(meta_batch_size=2, run_dir=tmp_path, checkpoint_every=1, log_every=1,
                  progress=False)
    meta_train(learner, PointGoals(), n_steps=2, **kwargs)
    good = [p.numpy().copy() for p in learner.params]

    class NaNRewards(point_policy.PointNavigation):
        def step(self, actions):
            positions, rewards, dones = super().step(actions)
            return positions, rewards * np.nan, dones

    monkeypatch.setattr(point_policy, "PointNavigation", NaNRewards)
    with pytest.raises(FloatingPointError, match="the loss is nan at step 3"):
        meta_train(learner, PointGoals(), n_steps=4, **kwargs)
    for p, g in zip(learner.params, good):
        np.testing.assert_array_equal(p.numpy(), g)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")


def test_nan_policy_gives_a_nan_loss_without_an_update():
    learner = MAMLRL(hidden=(8,), n_trajectories=2, seed=0)
    learner.params[0].assign(np.full(learner.params[0].shape, np.nan, np.float32))
    before = [p.numpy().copy() for p in learner.params[1:]]
    assert np.isnan(learner.train_step(np.zeros((2, 2)))["loss"])
    for p, b in zip(learner.params[1:], before):
        np.testing.assert_array_equal(p.numpy(), b)
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        sample_trajectories(learner.params, [[0.1, 0.1]], 2, 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="inner_lr"):
        MAMLRL(inner_lr=-0.1)
    with pytest.raises(ValueError, match="n_trajectories"):
        MAMLRL(n_trajectories=0)
    with pytest.raises(ValueError, match="step sizes must be at least 0"):
        adaptation_returns(init_policy(hidden=(8,)), [[0.1, 0.1]], [0.5, -1])


def test_records_schema_table_and_load_policy(tmp_path):
    from metalearn_helpers import records

    learner = MAMLRL(hidden=(8,), n_trajectories=2, seed=3)
    learner.params[-1].assign([0.5, -0.5])
    rows = [{"method": m, "adaptation_steps": k, "average_return": -10.0 * (4 - k), "ci95": 1.0,
             "goals": 100} for m in ("maml", "random") for k in range(4)]
    record = {"name": "maml_rl_point", "algorithm": "maml_rl", "paper": "p",
              "hyperparameters": {**learner.config, "meta_batch_size": 2}, "steps": 1,
              "planned_steps": 1, "finished": True, "seed": 0, "train_seconds": 1.0,
              "seconds_per_step": 1.0, "command": "c", "test": rows, "protocol": "p"}
    records.write_record(tmp_path / "maml_rl_point.json", record)
    records.save_weights(learner, tmp_path / "maml_rl_point.npz")
    loaded = maml_rl.load_policy("maml_rl_point", folder=tmp_path)
    for a, b in zip(loaded.params, learner.params):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    records.write_record(tmp_path / "maml_rl_point_comparison.json", {
        "kind": "measurement", "name": "maml_rl_point_comparison", "protocol": "p", "seed": 0,
        "command": "c", "test": rows})
    table = maml_rl.return_table(folder=tmp_path)
    assert "| method | 0 steps | 1 step | 2 steps | 3 steps |" in table
    assert "| maml | -40.0 ± 1.0 | -30.0 ± 1.0 |" in table
    with pytest.raises(records.RecordError, match="average_return"):
        bad = {**records.load_record(tmp_path / "maml_rl_point.json"),
               "test": [{**rows[0], "average_return": "high"}]}
        records.check_record(bad)
    with pytest.raises(FileNotFoundError, match="maml_rl_point_oracle"):
        maml_rl.load_policy("maml_rl_point_oracle", folder=tmp_path)


def test_released_rows_are_test_rows_of_the_record_schema():
    from metalearn_helpers import application_tables, record_schema

    rows = application_tables.maml_rl_released_rows()
    assert len(rows) == 13 and rows[1]["method"] == "maml (released)"
    record_schema.check_record({"kind": "measurement", "name": "maml_rl_released", "protocol": "p",
                                "seed": 0, "command": "c", "date": "d", "machine": {},
                                "git_commit": None, "test": rows})
    table = application_tables.maml_rl_comparison_rows(
        [{"name": "maml_rl_point_comparison", "test": rows[:4]}])
    assert [row["method"] for row in table] == ["maml (released)", "pretrained (released)",
                                                "random (released)", "oracle (released)"]
