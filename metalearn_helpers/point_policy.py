"""The Gaussian MLP policy of MAML's 2-D point navigation as plain tensors, its batched rollouts,
and REINFORCE's advantages with rllab's linear baseline (Finn, Abbeel & Levine 2017, arXiv
1703.03400, section 5.3, and its released code github.com/cbfinn/maml_rl), for
:mod:`metalearn_helpers.maml_rl` and notebook ``09_meta_rl`` (part A).

- Policy: Gaussian, mean from an MLP 100-100 ReLU on the position, state-independent learned
  log standard deviation (initialised at 0: std 1), Glorot-uniform weights and zero biases as in
  rllab. The parameters are a plain list of tensors (:func:`init_policy`), so an adapted policy
  ``theta - alpha * grad`` is just another list the outer ``tf.GradientTape`` can differentiate.
- Actions: the released code wraps the environment in rllab's ``normalize``, which maps an
  action ``a`` to the velocity ``clip(0.1 a, -0.1, 0.1)``; :func:`sample_trajectories` does the
  same (``MAX_SPEED * a``; the environment clips).
- Advantages: discounted returns (0.99) minus rllab's ``LinearFeatureBaseline`` fitted per task
  on that task's trajectories (:func:`fit_linear_baseline`), then centred and scaled per task.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from .checks import check_int
from .episodes import as_rng
from .rl_envs import MAX_SPEED, MAX_STEPS, PointNavigation

POSITION_DIM = ACTION_DIM = 2
BASELINE_REG = 1e-5  # rllab's LinearFeatureBaseline reg_coeff


# -- the policy -----------------------------------------------------------------------------------
def init_policy(observation_dim: int = POSITION_DIM, hidden=(100, 100),
                action_dim: int = ACTION_DIM, seed: int = 0, dtype=np.float32) -> list:
    """Initial parameters ``[W1, b1, ..., W_out, b_out, log_std]`` as numpy arrays."""
    rng = np.random.default_rng(seed)
    sizes = [check_int("observation_dim", observation_dim),
             *(check_int("hidden", h) for h in hidden), check_int("action_dim", action_dim)]
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = math.sqrt(6 / (n_in + n_out))
        params += [rng.uniform(-limit, limit, (n_in, n_out)).astype(dtype),
                   np.zeros(n_out, dtype)]
    return params + [np.zeros(action_dim, dtype)]


def _per_task(vector):
    """A bias ``(n,)`` shared by all tasks, or ``(n_tasks, n)`` per task, ready to add to
    ``(n_tasks, m, n)``."""
    return vector if vector.shape.rank == 1 else vector[:, None, :]


def policy_mean(params, observations):
    """Mean action ``(n_tasks, m, action_dim)`` for observations ``(n_tasks, m, obs_dim)``;
    ``params`` are shared (no task axis) or per task (a leading task axis on every tensor)."""
    h = tf.convert_to_tensor(observations, params[0].dtype)
    layers = list(zip(params[:-1:2], params[1:-1:2]))
    for w, b in layers[:-1]:
        h = tf.nn.relu(tf.matmul(h, w) + _per_task(b))
    w, b = layers[-1]
    return tf.matmul(h, w) + _per_task(b)


def log_likelihood(params, observations, actions):
    """``log pi(a | s)`` of the Gaussian policy, shape ``(n_tasks, m)``."""
    log_std = _per_task(tf.convert_to_tensor(params[-1]))
    z = (tf.convert_to_tensor(actions, params[0].dtype) - policy_mean(params, observations)
         ) / tf.exp(log_std)
    return tf.reduce_sum(-0.5 * tf.square(z) - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def surrogate_loss(params, batch):
    """The policy-gradient surrogate ``-sum_t log pi(a_t|s_t) A_t / n_valid`` of each task,
    shape ``(n_tasks,)``; its gradient is REINFORCE's with the baseline. ``batch`` is
    ``(observations, actions, advantages, mask)`` flattened to ``(n_tasks, m, ...)``."""
    observations, actions, advantages, mask = batch
    weighted = log_likelihood(params, observations, actions) * advantages * mask
    return -tf.reduce_sum(weighted, axis=1) / tf.reduce_sum(mask, axis=1)


_mean_of = tf.function(policy_mean)


# -- trajectories ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Trajectories:
    """``n_trajectories`` episodes of ``MAX_STEPS`` steps for each of ``n_tasks`` goals.

    ``positions`` ``(n_tasks, n, MAX_STEPS + 1, 2)`` start at (0, 0) (for plotting paths);
    ``actions`` ``(n_tasks, n, MAX_STEPS, 2)`` are the policy's samples before the velocity
    scaling; ``rewards`` are 0 and ``mask`` 0 after an episode has ended (goal reached)."""

    goals: np.ndarray
    positions: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    goal_input: bool = False

    @property
    def observations(self) -> np.ndarray:
        """What the policy saw: positions, and the goal too for an oracle policy."""
        positions = self.positions[:, :, :-1]
        if not self.goal_input:
            return positions
        goals = np.broadcast_to(self.goals[:, None, None, :], positions.shape)
        return np.concatenate([positions, goals], axis=-1)

    def average_return(self) -> np.ndarray:
        """Undiscounted return averaged over each task's trajectories, ``(n_tasks,)`` (the
        paper's "average return")."""
        return self.rewards.sum(axis=2).mean(axis=1)


def _check_policy(params, n_tasks: int, goal_input: bool) -> list:
    params = [tf.convert_to_tensor(p) for p in params]
    observation_dim = POSITION_DIM * (2 if goal_input else 1)
    if params[-1].shape[-1] != ACTION_DIM:
        raise ValueError(f"the policy's actions have {params[-1].shape[-1]} dimensions (its "
                         f"log_std has shape {tuple(params[-1].shape)}), but point navigation "
                         f"takes {ACTION_DIM}-D velocities.")
    if params[0].shape[-2] != observation_dim:
        raise ValueError(f"the policy takes {params[0].shape[-2]}-D observations, but point "
                         f"navigation gives {observation_dim} (position"
                         f"{' and goal' if goal_input else ''}); goal_input={goal_input}.")
    if params[-1].shape.rank == 2 and params[-1].shape[0] != n_tasks:
        raise ValueError(f"per-task policy parameters are for {params[-1].shape[0]} tasks, "
                         f"but {n_tasks} goals were given.")
    return params


def sample_trajectories(params, goals, n_trajectories: int, rng, goal_input: bool = False
                        ) -> Trajectories:
    """Roll out the Gaussian policy ``params`` (shared, or one set per goal) for
    ``n_trajectories`` episodes of every goal at once in one batched
    :class:`~metalearn_helpers.rl_envs.PointNavigation`; ``rng`` draws the action noise.

    Raises ValueError for goals outside the arena or a policy of the wrong shape, and
    FloatingPointError when the policy's actions are not finite (NaN parameters)."""
    check_int("n_trajectories", n_trajectories)
    goals = np.asarray(goals, dtype=np.float64)
    env = PointNavigation(np.repeat(goals, n_trajectories, axis=0))  # checks the goals
    n_tasks = len(goals)
    params = _check_policy(params, n_tasks, goal_input)
    shape = (n_tasks, n_trajectories)
    std = np.exp(params[-1].numpy())
    std = std[:, None, :] if std.ndim == 2 else std
    noise = as_rng(rng).standard_normal((MAX_STEPS, *shape, ACTION_DIM))
    positions = np.zeros((*shape, MAX_STEPS + 1, POSITION_DIM))
    actions = np.zeros((*shape, MAX_STEPS, ACTION_DIM))
    rewards, mask = np.zeros((*shape, MAX_STEPS)), np.zeros((*shape, MAX_STEPS))
    goal_obs = np.broadcast_to(goals[:, None, :], (*shape, POSITION_DIM))
    for t in range(MAX_STEPS):
        obs = positions[:, :, t]
        obs = np.concatenate([obs, goal_obs], axis=-1) if goal_input else obs
        mean = _mean_of(params, tf.constant(obs, params[0].dtype)).numpy()
        actions[:, :, t] = mean + std * noise[t]
        if not np.all(np.isfinite(actions[:, :, t])):
            raise FloatingPointError("the policy's actions are NaN or infinite (are its "
                                     "parameters finite?).")
        mask[:, :, t] = ~env.dones.reshape(shape)
        moved, reward, _ = env.step(MAX_SPEED * actions[:, :, t].reshape(-1, ACTION_DIM))
        positions[:, :, t + 1] = moved.reshape(*shape, POSITION_DIM)
        rewards[:, :, t] = reward.reshape(shape)
    return Trajectories(goals, positions, actions, rewards, mask, goal_input)


def discounted_returns(rewards, discount: float) -> np.ndarray:
    """Reward-to-go ``sum_{t' >= t} discount^(t'-t) r_t'`` along the last axis."""
    returns = np.zeros_like(rewards, dtype=np.float64)
    future = np.zeros(rewards.shape[:-1])
    for t in reversed(range(rewards.shape[-1])):
        future = rewards[..., t] + discount * future
        returns[..., t] = future
    return returns


def baseline_features(observations) -> np.ndarray:
    """rllab's ``LinearFeatureBaseline`` features of each step: obs, obs², t/100, (t/100)²,
    (t/100)³ and 1 (observations clipped to ±10), shape ``(..., n_steps, 2 obs_dim + 4)``."""
    obs = np.clip(observations, -10, 10)
    t = np.broadcast_to((np.arange(obs.shape[-2]) / 100.0)[:, None], (*obs.shape[:-1], 1))
    return np.concatenate([obs, obs ** 2, t, t ** 2, t ** 3, np.ones_like(t)], axis=-1)


def fit_linear_baseline(observations, returns, mask) -> np.ndarray:
    """Fit rllab's ``LinearFeatureBaseline`` to one task's valid steps (ridge-regularised least
    squares, ``reg_coeff`` 1e-5, raised tenfold while the solution is not finite) and return its
    predictions for every step. Shapes: ``(n, n_steps, obs_dim)``, ``(n, n_steps)`` twice."""
    features = baseline_features(observations)
    valid = np.asarray(mask, bool)
    x, y = features[valid], np.asarray(returns)[valid]
    reg = BASELINE_REG
    for _ in range(5):
        coeffs = np.linalg.lstsq(x.T @ x + reg * np.eye(x.shape[1]), x.T @ y, rcond=None)[0]
        if np.all(np.isfinite(coeffs)):
            break
        reg *= 10
    return features @ coeffs


def advantages(trajectories: Trajectories, discount: float) -> np.ndarray:
    """Discounted returns minus each task's fitted linear baseline, centred and scaled per task
    over its valid steps (rllab's ``center_adv``); 0 on steps after an episode ended."""
    returns = discounted_returns(trajectories.rewards, discount)
    if not np.all(np.isfinite(returns)):
        raise FloatingPointError("the returns are NaN or infinite.")
    observations, mask = trajectories.observations, trajectories.mask
    result = np.zeros_like(returns)
    for i in range(len(returns)):
        adv = returns[i] - fit_linear_baseline(observations[i], returns[i], mask[i])
        valid = mask[i] > 0
        result[i] = np.where(valid, (adv - adv[valid].mean()) / (adv[valid].std() + 1e-8), 0.0)
    return result


def policy_batch(trajectories: Trajectories, discount: float, dtype=tf.float32) -> tuple:
    """``(observations, actions, advantages, mask)`` of each task, flattened to ``(n_tasks,
    n * n_steps, ...)``: what :func:`surrogate_loss` takes."""
    n_tasks = len(trajectories.goals)
    arrays = (trajectories.observations, trajectories.actions,
              advantages(trajectories, discount), trajectories.mask)
    return tuple(tf.constant(a.reshape(n_tasks, -1, *a.shape[3:]), dtype) for a in arrays)
