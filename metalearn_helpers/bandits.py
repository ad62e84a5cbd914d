"""Bernoulli bandit tasks of RL² and the hand-designed strategies it is compared with.

Defined for notebook ``09_meta_rl``. The task distribution is Duan et al. 2016 (RL², arXiv
1611.02779, section 4.1): a task is a k-armed bandit whose arm probabilities are drawn
independently and uniformly from [0, 1]; an agent plays ``n_pulls`` pulls of it and scores its
total reward. Their Table 1 averages that total over 1,000 bandits; we report the mean with its
95 % confidence interval over at least 1,000 test tasks that every method shares, with the same
luck (common random numbers: the reward of pulling arm ``a`` at pull ``t`` of test task ``i`` is
``uniforms[i, t, a] < p[i, a]`` whoever pulls it).

Baselines, vectorised over tasks (one numpy step per pull):

- ``random``: an arm uniformly at random (expected total ``n_pulls / 2``).
- ``ucb1``: Auer, Cesa-Bianchi & Fischer 2002: pull every arm once, then the arm maximising
  ``mean + c sqrt(2 ln t / pulls)`` (``t``: pulls so far; ``c = 1`` is UCB1, ``ucb1_tuned``
  uses the ``c`` that :func:`tune_ucb1` picks on validation bandits, as RL²'s table tunes it).
- ``bayes_optimal`` (at most 20 pulls): exact dynamic programming under the task prior
  (:func:`bayes_optimal_expectation`: its expected total over the prior).
- ``thompson``: Thompson 1933 with a uniform Beta(1, 1) prior per arm: draw one sample from each
  arm's Beta(1 + successes, 1 + failures) posterior and pull the largest.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

import numpy as np

from .checks import check_int
from .evaluation import ScoreWithCI, mean_confidence_interval

TEST_SEED = 161102779  # the RL² paper's arXiv id: test bandits never come from training seeds



@dataclasses.dataclass(frozen=True)
class BanditTasks:
    """Bandit tasks: ``arm_probabilities`` ``(k_arms,)`` or, batched, ``(n_tasks, k_arms)``;
    test sets also carry ``uniforms`` ``(n_tasks, n_pulls, k_arms)`` that fix every reward."""

    arm_probabilities: np.ndarray
    uniforms: np.ndarray | None = None

    def arrays(self) -> tuple[np.ndarray]:
        return (self.arm_probabilities,)


class BernoulliBandits:
    """The task family of RL²'s bandit experiments, with the ``sample``/``batches`` interface of
    :mod:`metalearn_helpers.episodes` that :func:`metalearn_helpers.training.meta_train` reads.

    Args:
        k_arms: arms per bandit (at least 2).
        n_pulls: pulls per task (at least 1); the learner plays them all with one memory.

    ``batches(meta_batch_size, seed)`` yields :class:`BanditTasks` whose ``arrays()`` is the
    ``(meta_batch_size, k_arms)`` float32 arm probabilities; rewards are drawn by the learner.

    Example::

        tasks = BernoulliBandits(k_arms=5, n_pulls=10)
        test = tasks.test_set(1000)
        print(evaluate_baselines(test))   # random, ucb1, thompson: mean ± 95 % CI
    """

    def __init__(self, k_arms: int, n_pulls: int):
        self.k_arms = check_int("k_arms", k_arms, 2)
        self.n_pulls = check_int("n_pulls", n_pulls, 1)

    def sample(self, seed=None) -> BanditTasks:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return BanditTasks(rng.random(self.k_arms, dtype=np.float32))

    def batches(self, meta_batch_size: int, seed=None) -> Iterator[BanditTasks]:
        """Yield ``(meta_batch_size, k_arms)`` batches of arm probabilities, forever."""
        check_int("meta_batch_size", meta_batch_size, 1)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        while True:
            yield BanditTasks(rng.random((meta_batch_size, self.k_arms), dtype=np.float32))

    def test_set(self, n_tasks: int = 1000, seed: int = TEST_SEED) -> BanditTasks:
        """``n_tasks`` bandits with their reward uniforms fixed, the same for every method."""
        check_int("n_tasks", n_tasks, 1)
        rng = np.random.default_rng([seed, self.k_arms, self.n_pulls])
        return BanditTasks(rng.random((n_tasks, self.k_arms), dtype=np.float32),
                           rng.random((n_tasks, self.n_pulls, self.k_arms), dtype=np.float32))


# -- baselines ------------------------------------------------------------------------------------
def random_arms(successes, pulls, t, rng) -> np.ndarray:
    return rng.integers(0, successes.shape[1], size=len(successes))


def ucb1_arms(successes, pulls, t, rng, exploration: float = 1.0) -> np.ndarray:
    untried = pulls == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        index = successes / pulls + exploration * np.sqrt(2 * np.log(max(t, 1)) / pulls)
    return np.where(untried.any(1), untried.argmax(1), index.argmax(1))


def thompson_arms(successes, pulls, t, rng) -> np.ndarray:
    return rng.beta(1 + successes, 1 + pulls - successes).argmax(1)


BASELINES: dict[str, Callable] = {"random": random_arms, "ucb1": ucb1_arms,
                                  "thompson": thompson_arms}
MAX_BAYES_OPTIMAL_PULLS = 20  # the exact dynamic programme grows as (2 k)^n / n!


@functools.cache
def _bayes_optimal_q_values(n_pulls: int) -> Callable:
    """``q_values(counts)``: the expected rest-of-trial reward of pulling each arm, under the task
    prior, by exact dynamic programming over the arms' sorted ((successes, failures), ...)."""
    check_int("n_pulls", n_pulls, 1)
    if n_pulls > MAX_BAYES_OPTIMAL_PULLS:
        raise ValueError(f"the exact Bayes-optimal strategy is only computed for n_pulls <= "
                         f"{MAX_BAYES_OPTIMAL_PULLS}, got {n_pulls}.")

    @functools.cache
    def value(counts: tuple) -> float:
        if sum(s + f for s, f in counts) >= n_pulls:
            return 0.0
        return max(q_values(counts))

    def q_values(counts) -> list[float]:
        q = []
        for a, (s, f) in enumerate(counts):
            p = (s + 1) / (s + f + 2)  # posterior mean under Beta(1, 1)
            win = tuple(sorted(counts[:a] + ((s + 1, f),) + counts[a + 1:]))
            lose = tuple(sorted(counts[:a] + ((s, f + 1),) + counts[a + 1:]))
            q.append(p * (1 + value(win)) + (1 - p) * value(lose))
        return q

    return q_values


def bayes_optimal_arms(n_pulls: int) -> Callable:
    """The Bayes-optimal strategy for ``n_pulls`` pulls under the task prior (independent
    uniform arm probabilities), by exact dynamic programming over the arms' (successes,
    failures) counts: the best any learner, RL² included, can do in expectation. The Gittins
    index of RL²'s table approximates it. Only for ``n_pulls <= 20`` (the state space explodes).
    """
    q_values = _bayes_optimal_q_values(check_int("n_pulls", n_pulls, 1))

    def choose(successes, pulls, t, rng) -> np.ndarray:
        arms = np.empty(len(successes), dtype=np.int64)
        for i, (s_row, n_row) in enumerate(zip(successes.astype(int), pulls.astype(int))):
            counts = tuple((s, n - s) for s, n in zip(s_row, n_row))
            arms[i] = int(np.argmax(q_values(counts)))
        return arms

    return choose


def bayes_optimal_expectation(k_arms: int, n_pulls: int) -> float:
    """The Bayes-optimal strategy's expected total reward over the task prior (the dynamic
    programme's value before the first pull): no strategy scores more in expectation, so a
    higher score on a test set is that set's luck (e.g. 6.660 for 5 arms and 10 pulls, where
    Duan et al.'s Table 1 gives RL² and UCB1 6.7)."""
    check_int("k_arms", k_arms, 2)
    return max(_bayes_optimal_q_values(check_int("n_pulls", n_pulls, 1))(((0, 0),) * k_arms))


def play_trial(choose_arms: Callable, tasks: BanditTasks, seed: int = 0) -> dict:
    """Play a strategy ``choose_arms(successes, pulls, t, rng) -> arms`` (``successes``,
    ``pulls``: ``(n_tasks, k_arms)`` counts so far; ``t``: pulls so far) on a test set; returns
    the ``actions`` and ``rewards`` of every pull, ``(n_tasks, n_pulls)`` each."""
    if tasks.uniforms is None:
        raise ValueError("tasks must be a test set (BernoulliBandits.test_set) with uniforms.")
    p = tasks.arm_probabilities.astype(np.float64)
    n_tasks, n_pulls, k_arms = tasks.uniforms.shape
    successes, pulls = np.zeros((n_tasks, k_arms)), np.zeros((n_tasks, k_arms))
    rng, rows = np.random.default_rng(seed), np.arange(n_tasks)
    actions, rewards = np.zeros((n_tasks, n_pulls), np.int64), np.zeros((n_tasks, n_pulls))
    for t in range(n_pulls):
        actions[:, t] = arms = choose_arms(successes, pulls, t, rng)
        rewards[:, t] = (tasks.uniforms[rows, t, arms] < p[rows, arms]).astype(np.float64)
        successes[rows, arms] += rewards[:, t]
        pulls[rows, arms] += 1
    return {"actions": actions, "rewards": rewards}


def play(choose_arms: Callable, tasks: BanditTasks, seed: int = 0) -> np.ndarray:
    """Total reward per task ``(n_tasks,)`` of a strategy on a test set (see
    :func:`play_trial`)."""
    return play_trial(choose_arms, tasks, seed)["rewards"].sum(axis=1)


def tune_ucb1(k_arms: int, n_pulls: int, n_tasks: int = 1000, seed: int = 0,
              grid=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)) -> float:
    """The UCB1 exploration coefficient (multiplying the bonus) with the best mean total on
    ``n_tasks`` validation bandits drawn with ``seed`` (never the test seed): RL²'s Table 1
    reports UCB1 and other baselines with tuned hyperparameters (their appendix)."""
    tasks = BernoulliBandits(k_arms, n_pulls).test_set(n_tasks, seed=seed)
    means = [play(functools.partial(ucb1_arms, exploration=c), tasks).mean() for c in grid]
    return float(grid[int(np.argmax(means))])


def evaluate_baselines(tasks: BanditTasks, names=tuple(BASELINES), seed: int = 0,
                       ucb1_exploration: float | None = None) -> dict[str, ScoreWithCI]:
    """Mean total reward ± 95 % CI of each named baseline on the same test tasks; with
    ``ucb1_exploration`` (e.g. from :func:`tune_ucb1`) also ``"ucb1_tuned"``, and for at most
    20 pulls also ``"bayes_optimal"`` (:func:`bayes_optimal_arms`)."""
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {sorted(BASELINES)}.")
    scores = {name: mean_confidence_interval(play(BASELINES[name], tasks, seed)) for name in names}
    if ucb1_exploration is not None:
        tuned = functools.partial(ucb1_arms, exploration=ucb1_exploration)
        scores["ucb1_tuned"] = mean_confidence_interval(play(tuned, tasks, seed))
    n_pulls = tasks.uniforms.shape[1]
    if n_pulls <= MAX_BAYES_OPTIMAL_PULLS:
        scores["bayes_optimal"] = mean_confidence_interval(
            play(bayes_optimal_arms(n_pulls), tasks, seed))
    return scores
