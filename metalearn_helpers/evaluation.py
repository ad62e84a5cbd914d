"""Evaluation: per-episode scores and their mean with a 95 % confidence interval.

Defined in notebook ``02_task_sampling``; every algorithm of the course is scored with
:func:`evaluate`, the protocol of the few-shot literature (Vinyals et al. 2016, arXiv 1606.04080;
Finn et al. 2017, 1703.03400; Snell et al. 2017, 1703.05175): at least 600 test episodes, mean
accuracy and the half-width ``1.96 * std / sqrt(n)`` of its 95 % confidence interval.

A score may be one number per episode (query accuracy) or a vector (query MSE after 0, 1, ...
gradient steps; accuracy at the 1st, 2nd, ... presentation of a class): :func:`evaluate` then
returns one mean and interval per entry, and ``score[j]`` is entry ``j`` alone.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .checks import check_int
from .episodes import Episode, as_rng


@dataclasses.dataclass(frozen=True)
class ScoreWithCI:
    """Mean of per-episode scores and the half-width of its 95 % confidence interval.

    ``values`` holds the per-episode scores, shape ``(n,)`` or ``(n, m)``; for the latter
    ``mean`` and ``ci95`` are arrays of ``m`` entries and ``score[j]`` is entry ``j``'s
    :class:`ScoreWithCI`. ``mean`` and ``ci95`` are NaN when a score is not finite (see
    :func:`evaluate`).
    """

    mean: float | np.ndarray
    ci95: float | np.ndarray
    n: int
    values: np.ndarray = dataclasses.field(repr=False)

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.ci95:.2g} (95 % CI, {self.n} episodes)"

    def as_percent(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f} % ({self.n} episodes)"

    def __getitem__(self, j: int) -> ScoreWithCI:
        if self.values.ndim != 2:
            raise TypeError("only a score with one vector per episode has entries to index.")
        return mean_confidence_interval(self.values[:, j])


def mean_confidence_interval(values) -> ScoreWithCI:
    """Mean and 95 % CI half-width ``1.96 * s / sqrt(n)`` (``s``: sample standard deviation) of
    ``values`` of shape ``(n,)``, or of each column of ``values`` of shape ``(n, m)``."""
    values = np.asarray(values, dtype=np.float64)
    values = values.ravel() if values.ndim != 2 else values
    if len(values) == 0:
        raise ValueError("need at least one value to average.")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinity.")
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])
    mean, ci95 = values.mean(axis=0), 1.96 * std / np.sqrt(len(values))
    if values.ndim == 1:
        mean, ci95 = float(mean), float(ci95)
    return ScoreWithCI(mean, ci95, len(values), values)


def evaluate(score_fn: Callable[[Episode], float], tasks, n_episodes: int = 600, seed: int = 0,
             progress: bool = True) -> ScoreWithCI:
    """Score ``score_fn(episode)`` (e.g. query accuracy after adapting on the support set) on
    ``n_episodes`` episodes from ``tasks`` and return the per-episode scores (``.values``) with
    their mean and 95 % CI.

    ``score_fn`` returns a number or a 1-D array of fixed length (one mean and interval per
    entry). The episodes depend only on ``seed``, so two methods evaluated with the same seed see
    the same test episodes. Where a score is NaN or infinite (gradient descent that diverged),
    ``mean`` and ``ci95`` are NaN and ``values`` holds every score, for the caller to decide.
    """
    from .progress import tqdm

    check_int("n_episodes", n_episodes)
    rng = as_rng(seed)
    episodes = (tasks.sample(rng) for _ in range(n_episodes))
    values = np.array([np.asarray(score_fn(e), dtype=np.float64)
                       for e in tqdm(episodes, total=n_episodes, disable=not progress,
                                     desc="evaluating", leave=False)])
    if values.ndim > 2:
        raise ValueError(f"score_fn must return a number or a 1-D array, got shape "
                         f"{values.shape[1:]}.")
    if np.all(np.isfinite(values)):
        return mean_confidence_interval(values)
    nan = float("nan") if values.ndim == 1 else np.full(values.shape[1], np.nan)
    return ScoreWithCI(nan, nan, len(values), values)
