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
- ``gittins`` (any number of pulls): the arm with the largest finite-horizon Gittins index
  (:func:`gittins_indices`), which depends on the arm's successes, failures and the pulls left.
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
    index strategy (:func:`gittins_arms`) approximates it. Only for ``n_pulls <= 20`` (the state
    space explodes).
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


# -- the finite-horizon Gittins index ------------------------------------------------------------
GITTINS_GRID = 1000  # calibration rewards per unit: indices within about 5e-4 of a 16x finer grid


def gittins_indices(n_pulls: int, grid_size: int = GITTINS_GRID) -> np.ndarray:
    """The finite-horizon Gittins index of a Bernoulli arm under the uniform Beta(1, 1) prior, for
    every state of a trial of ``n_pulls`` pulls: ``index[m, s, f]`` with ``m`` pulls left (1 to
    ``n_pulls``) after ``s`` successes and ``f`` failures on the arm (``s + f + m <= n_pulls``;
    NaN elsewhere). Computed once per ``(n_pulls, grid_size)`` and cached (read-only).

    The index is found by calibration against a retirement option (Gittins, Glazebrook & Weber
    2011, *Multi-armed Bandit Allocation Indices*, 2nd ed., Wiley): it is the reward ``lam`` per
    pull of a known arm at which pulling the unknown arm once and then stopping whenever it is
    best, for at most ``m`` pulls, is worth exactly as much as taking ``lam`` every pull. This is
    the finite-horizon Gittins index of Kaufmann 2018 (Annals of Statistics; arXiv 1601.01190),
    undiscounted, as our trials have a fixed number of pulls. Duan et al. (RL², arXiv 1611.02779,
    section 3.1) instead use approximations of the discounted infinite-horizon index (Gittins et
    al. 2011, Chakravorty & Mahajan 2013, Whittle 1982), the best one for each setting. With
    ``p = (s + 1) / (s + f + 2)``, the posterior mean, the value of pulling over retiring is

        C_m(s, f; lam) = p - lam + p W_{m-1}(s + 1, f; lam) + (1 - p) W_{m-1}(s, f + 1; lam),
        W_m = max(0, C_m),   W_0 = 0,

    decreasing in ``lam``; the index is its root. One backward pass over ``m`` evaluates ``C`` for
    all states on ``grid_size + 1`` rewards in [0, 1], and the root is interpolated linearly
    between the two grid rewards around it (exact where ``C`` has no kink between them, so
    ``index[1] = p`` exactly). Used by :func:`gittins_arms` (notebook ``09_meta_rl``). Time
    grows as ``n_pulls`` cubed, memory as its square plus the table's cube (measured: 100 pulls
    about 1 s and 50 MB, 200 pulls about 12 s and 230 MB).
    """
    check_int("n_pulls", n_pulls, 1)
    check_int("grid_size", grid_size, 2)
    return _gittins_table(int(n_pulls), int(grid_size))


@functools.cache
def _gittins_table(n_pulls: int, grid_size: int) -> np.ndarray:
    rewards = np.linspace(0.0, 1.0, grid_size + 1)
    index = np.full((n_pulls + 1,) * 3, np.nan)
    # value[d][s, j]: W_{m-1} of the state with s successes in d pulls, at reward rewards[j].
    value = [np.zeros((d + 1, grid_size + 1)) for d in range(n_pulls + 1)]
    for m in range(1, n_pulls + 1):
        for d in range(n_pulls - m + 1):  # d = s + f pulls so far on the arm
            s = np.arange(d + 1)
            p = ((s + 1) / (d + 2))[:, None]
            after = value[d + 1]  # row s: s successes after the pull, row s + 1: s + 1
            pulling = p * (1 + after[1:]) + (1 - p) * after[:-1] - rewards
            index[m, s, d - s] = _decreasing_root(pulling, rewards)
            value[d] = np.maximum(pulling, 0.0)
    index.flags.writeable = False
    return index


def _decreasing_root(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per row of ``values`` (a decreasing function of ``grid``, positive at ``grid[0]`` and not
    at ``grid[-1]``): where it crosses 0, by linear interpolation between grid points."""
    j = (values > 0).sum(axis=1, keepdims=True)
    above = np.take_along_axis(values, j - 1, axis=1)[:, 0]
    below = np.take_along_axis(values, j, axis=1)[:, 0]
    left, right = grid[j[:, 0] - 1], grid[j[:, 0]]
    return left + (right - left) * above / (above - below)


def gittins_arms(n_pulls: int) -> Callable:
    """The finite-horizon Gittins index strategy for trials of ``n_pulls`` pulls, a
    ``choose_arms(successes, pulls, t, rng)`` for :func:`play`: pull the arm with the largest
    index (:func:`gittins_indices`) for its successes, failures and the ``n_pulls - t`` pulls
    left; ties go to the lowest-numbered arm (arms are exchangeable under the prior). The
    index of an arm depends on that arm alone, so the strategy scales to any number of arms and
    pulls, unlike :func:`bayes_optimal_arms`, which it approximates: measured over the prior,
    its expected total equals the exact programme's for 5 arms and 10 pulls (6.660) and is
    0.0003 below it for 2 arms and 10 pulls. Duan et al.'s Table 1 (RL², arXiv 1611.02779) has a
    Gittins row; see :func:`gittins_indices` for how ours differs from theirs.
    """
    index = gittins_indices(n_pulls)

    def choose(successes, pulls, t, rng) -> np.ndarray:
        if not 0 <= t < n_pulls:
            raise ValueError(f"this Gittins strategy plays trials of {n_pulls} pulls; pull "
                             f"t = {t} is outside 0 to {n_pulls - 1}.")
        s = np.asarray(successes).astype(np.int64)
        return index[n_pulls - t, s, np.asarray(pulls).astype(np.int64) - s].argmax(axis=1)

    return choose


def best_computed_strategy(n_pulls: int) -> tuple[str, Callable]:
    """The best strategy the course computes for trials of ``n_pulls`` pulls, as ``(name,
    choose_arms)``: the exact Bayes-optimal programme up to ``MAX_BAYES_OPTIMAL_PULLS``, else the
    Gittins index; RL² is measured against it (``scripts/train_rl2.py``, notebook ``09_meta_rl``)."""
    if check_int("n_pulls", n_pulls, 1) <= MAX_BAYES_OPTIMAL_PULLS:
        return "bayes_optimal", bayes_optimal_arms(n_pulls)
    return "gittins", gittins_arms(n_pulls)


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
    ``ucb1_exploration`` (e.g. from :func:`tune_ucb1`) also ``"ucb1_tuned"``, for at most
    20 pulls also ``"bayes_optimal"`` (:func:`bayes_optimal_arms`), and always ``"gittins"``
    (:func:`gittins_arms`, last: about a second to build its table for 100 pulls)."""
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
    scores["gittins"] = mean_confidence_interval(play(gittins_arms(n_pulls), tasks, seed))
    return scores
