"""Batched reinforcement-learning environments of notebook ``09_meta_rl``: MAML's 2-D point
navigation and RL²'s Bernoulli bandits.

Both step many tasks at once with numpy (one row per task), so a meta-batch of tasks and all its
trajectories advance together; ``benchmarks/rl_envs.py`` measures what that buys against stepping
one environment at a time.

- :class:`PointNavigation` follows ``PointEnvRandGoal`` of MAML's released RL code
  (cbfinn/maml_rl, ``maml_examples/point_env_randgoal.py``; Finn et al. 2017, arXiv 1703.03400,
  section 5.3): the agent starts at (0, 0), a task is a goal drawn uniformly from
  [-0.5, 0.5]², an action is a 2-D velocity (the released code's action space is the box
  [-0.1, 0.1]², enforced by rllab's ``normalize`` wrapper, here by clipping), the reward is
  minus the Euclidean distance to the goal after the move, and an episode ends when both
  coordinates are within 0.01 of the goal (the code's ``abs(x) < 0.01 and abs(y) < 0.01``) or
  after ``max_steps = 100`` steps (``max_path_length`` in ``maml_trpo_point.py``).
- :class:`BernoulliBandit` is the bandit of Duan et al. 2016 (RL², arXiv 1611.02779,
  section 3.1): arm ``i`` pays 1 with probability ``p_i`` and 0 otherwise.
"""

from __future__ import annotations

import numpy as np

from .checks import check_int

ARENA = 0.5  # goals lie in [-ARENA, ARENA]²
MAX_SPEED = 0.1  # actions are clipped to [-MAX_SPEED, MAX_SPEED]²
GOAL_TOLERANCE = 0.01  # per coordinate, as the released code checks it
MAX_STEPS = 100


def sample_goals(n_tasks: int, seed=None) -> np.ndarray:
    """``n_tasks`` goals drawn uniformly from [-0.5, 0.5]², shape ``(n_tasks, 2)``."""
    check_int("n_tasks", n_tasks, 1)
    return np.random.default_rng(seed).uniform(-ARENA, ARENA, size=(n_tasks, 2))


class PointNavigation:
    """A batch of 2-D point-navigation episodes, one per goal (MAML's ``PointEnvRandGoal``).

    Args:
        goals: ``(n_envs, 2)`` goal positions inside the arena [-0.5, 0.5]².
        max_steps: episode length limit (100 as in MAML's experiments).

    ``reset()`` returns the positions ``(n_envs, 2)`` (all zeros); ``step(actions)`` takes
    ``(n_envs, 2)`` velocities and returns ``(positions, rewards, dones)``. An episode that has
    ended stays where it is and gets reward 0 (its ``dones`` entry stays True), so a batch can be
    stepped until ``dones.all()``.

    Example::

        env = PointNavigation(sample_goals(40, seed=0))
        positions = env.reset()
        while not env.dones.all():
            positions, rewards, dones = env.step(env.goals - positions)  # clipped to 0.1
    """

    def __init__(self, goals, max_steps: int = MAX_STEPS):
        goals = np.asarray(goals, dtype=np.float64)
        if goals.ndim != 2 or goals.shape[1] != 2 or len(goals) == 0:
            raise ValueError(f"goals must have shape (n_envs, 2), got {goals.shape}.")
        if not np.all(np.isfinite(goals)) or np.abs(goals).max() > ARENA:
            bad = goals[~(np.isfinite(goals).all(1) & (np.abs(goals) <= ARENA).all(1))]
            raise ValueError(f"goals must lie inside the arena [-{ARENA}, {ARENA}]² (the task "
                             f"distribution of MAML's point navigation); got {bad[:3].tolist()}"
                             f"{' ...' if len(bad) > 3 else ''}.")
        self.goals, self.max_steps = goals, check_int("max_steps", max_steps, 1)
        self.reset()

    @property
    def n_envs(self) -> int:
        return len(self.goals)

    def reset(self) -> np.ndarray:
        self.positions = np.zeros_like(self.goals)
        self.dones = np.zeros(self.n_envs, dtype=bool)
        self.t = 0
        return self.positions.copy()

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != self.goals.shape:
            raise ValueError(f"actions must have shape (n_envs, 2) = {self.goals.shape} (one 2-D "
                             f"velocity per environment), got {actions.shape}.")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or infinity.")
        if self.t >= self.max_steps:
            raise RuntimeError(f"every episode has ended (max_steps={self.max_steps}); call "
                               f"reset() first.")
        running = ~self.dones
        moved = self.positions + np.clip(actions, -MAX_SPEED, MAX_SPEED)
        self.positions = np.where(running[:, None], moved, self.positions)
        offset = self.positions - self.goals
        rewards = np.where(running, -np.sqrt((offset ** 2).sum(1)), 0.0)
        self.t += 1
        reached = (np.abs(offset) < GOAL_TOLERANCE).all(1)
        self.dones = self.dones | reached | (self.t >= self.max_steps)
        return self.positions.copy(), rewards, self.dones.copy()


class BernoulliBandit:
    """A batch of k-armed Bernoulli bandits, one per row of ``arm_probabilities``.

    ``pull(arms, uniforms=None)`` pulls one arm in every bandit and returns rewards 0 or 1:
    ``uniforms < p[arm]``. Passing the uniforms (e.g. one ``(n_envs, n_pulls, k)`` table per
    test set) gives every method the same luck (common random numbers).
    """

    def __init__(self, arm_probabilities, seed=None):
        p = np.asarray(arm_probabilities, dtype=np.float64)
        if p.ndim != 2 or len(p) == 0:
            raise ValueError(f"arm_probabilities must have shape (n_envs, k_arms), got {p.shape}.")
        check_int("k_arms", p.shape[1], 2)
        if not np.all((p >= 0) & (p <= 1)):
            raise ValueError("arm_probabilities must lie in [0, 1].")
        self.arm_probabilities, self.rng = p, np.random.default_rng(seed)

    def pull(self, arms, uniforms=None) -> np.ndarray:
        arms = np.asarray(arms)
        n_envs, k_arms = self.arm_probabilities.shape
        if arms.shape != (n_envs,) or arms.dtype.kind not in "iu":
            raise ValueError(f"arms must be {n_envs} integer arm indices (shape ({n_envs},)), got "
                             f"shape {arms.shape} and dtype {arms.dtype}.")
        if arms.min() < 0 or arms.max() >= k_arms:
            raise ValueError(f"arms must be in 0..{k_arms - 1}, got {arms.min()}..{arms.max()}.")
        if uniforms is None:
            uniforms = self.rng.random(n_envs)
        chosen = self.arm_probabilities[np.arange(n_envs), arms]
        return (np.asarray(uniforms) < chosen).astype(np.float64)
