"""Evaluation: mean accuracy with a 95 % confidence interval over test episodes.

Defined in notebook ``02_task_sampling``; every algorithm of the course is scored with
:func:`evaluate`, the protocol of the few-shot literature (Vinyals et al. 2016, arXiv 1606.04080;
Finn et al. 2017, 1703.03400; Snell et al. 2017, 1703.05175): at least 600 test episodes, mean
accuracy and the half-width ``1.96 * std / sqrt(n)`` of its 95 % confidence interval.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .episodes import Episode, _as_rng


@dataclasses.dataclass(frozen=True)
class ScoreWithCI:
    """Mean of per-episode scores and the half-width of its 95 % confidence interval."""

    mean: float
    ci95: float
    n: int
    values: np.ndarray = dataclasses.field(repr=False)

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.ci95:.2g} (95 % CI, {self.n} episodes)"

    def as_percent(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f} % ({self.n} episodes)"


def mean_confidence_interval(values) -> ScoreWithCI:
    """Mean and 95 % CI half-width ``1.96 * s / sqrt(n)`` (``s``: sample standard deviation)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("need at least one value to average.")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinity.")
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return ScoreWithCI(float(values.mean()), float(1.96 * std / np.sqrt(values.size)),
                       int(values.size), values)


def evaluate(score_fn: Callable[[Episode], float], tasks, n_episodes: int = 600, seed: int = 0,
             progress: bool = True) -> ScoreWithCI:
    """Score ``score_fn(episode)`` (e.g. query accuracy after adapting on the support set) on
    ``n_episodes`` episodes from ``tasks`` and return the mean with its 95 % CI.

    The episodes depend only on ``seed``, so two methods evaluated with the same seed see the
    same test episodes.
    """
    from tqdm.auto import tqdm

    rng = _as_rng(seed)
    episodes = (tasks.sample(rng) for _ in range(n_episodes))
    scores = [float(score_fn(e)) for e in tqdm(episodes, total=n_episodes, disable=not progress,
                                               desc="evaluating", leave=False)]
    return mean_confidence_interval(scores)
