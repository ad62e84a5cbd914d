"""metalearn_helpers.evaluation: mean with a 95 % confidence interval, and evaluate()."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metalearn_helpers.episodes import OmniglotEpisodes, SinusoidTasks
from metalearn_helpers.evaluation import ScoreWithCI, evaluate, mean_confidence_interval


def test_confidence_interval_by_hand():
    score = mean_confidence_interval([0.2, 0.4, 0.4, 0.6, 0.9])
    # mean 0.5; squared deviations 0.09 + 0.01 + 0.01 + 0.01 + 0.16 = 0.28; s^2 = 0.28 / (5 - 1)
    assert score.mean == pytest.approx(0.5)
    assert score.ci95 == pytest.approx(1.96 * math.sqrt(0.28 / 4) / math.sqrt(5), rel=1e-12)
    assert score.ci95 == pytest.approx(0.2319, abs=1e-4)
    assert score.n == 5
    np.testing.assert_array_equal(score.values, [0.2, 0.4, 0.4, 0.6, 0.9])


def test_confidence_interval_matches_numpy_on_random_scores():
    values = np.random.default_rng(0).uniform(size=600)
    score = mean_confidence_interval(values)
    assert score.n == 600
    assert score.mean == pytest.approx(values.mean())
    assert score.ci95 == pytest.approx(1.96 * values.std(ddof=1) / math.sqrt(600))


def test_a_vector_per_episode_gets_an_interval_per_entry():
    values = np.random.default_rng(0).uniform(size=(20, 3))  # 20 episodes, 3 entries each
    score = mean_confidence_interval(values)
    assert score.n == 20
    np.testing.assert_allclose(score.mean, values.mean(axis=0))
    np.testing.assert_allclose(score.ci95, 1.96 * values.std(axis=0, ddof=1) / math.sqrt(20))
    assert score[2].mean == pytest.approx(values[:, 2].mean())


def test_evaluate_keeps_non_finite_scores_for_the_caller():
    score = evaluate(lambda e: [1.0, float("inf")], SinusoidTasks(), n_episodes=3,
                     progress=False)
    assert score.values.shape == (3, 2) and np.isinf(score.values[:, 1]).all()
    assert np.isnan(score.mean).all()
    with pytest.raises(ValueError, match="NaN or infinity"):
        score[1]


def test_single_and_constant_values():
    single = mean_confidence_interval([0.7])
    assert isinstance(single, ScoreWithCI)
    assert (single.mean, single.ci95, single.n) == (0.7, 0.0, 1)
    assert mean_confidence_interval([1, 1, 1]).ci95 == 0.0


def test_formatting():
    score = mean_confidence_interval([0.5, 1.0])  # s = 0.25 * sqrt(2): ci95 = 1.96 * 0.25
    assert score.as_percent() == "75.00 ± 49.00 % (2 episodes)"
    assert str(score) == "0.75 ± 0.49 (95 % CI, 2 episodes)"


@pytest.mark.parametrize("values, fragment", [
    ([], "at least one value"),
    (np.zeros((0, 3)), "at least one value"),
    ([0.5, float("nan")], "NaN or infinity"),
    ([0.5, float("inf")], "NaN or infinity"),
])
def test_bad_values(values, fragment):
    with pytest.raises(ValueError, match=fragment):
        mean_confidence_interval(values)


def test_evaluate_uses_n_episodes_and_seed():
    tasks = SinusoidTasks(k_shot=5, n_query=5)
    seen = []

    def score_fn(episode):
        seen.append(float(episode.info["amplitude"]))
        return float(episode.info["amplitude"])

    first = evaluate(score_fn, tasks, n_episodes=37, seed=3, progress=False)
    assert first.n == 37 and len(seen) == 37 and len(first.values) == 37
    assert first.mean == pytest.approx(np.mean(seen))
    # The episodes are those of one generator seeded with `seed`.
    rng = np.random.default_rng(3)
    assert seen == [float(tasks.sample(rng).info["amplitude"]) for _ in range(37)]

    second = evaluate(score_fn, tasks, n_episodes=37, seed=3, progress=False)
    assert second.mean == first.mean and second.ci95 == first.ci95
    np.testing.assert_array_equal(second.values, first.values)
    other = evaluate(score_fn, tasks, n_episodes=37, seed=4, progress=False)
    assert other.mean != first.mean


def test_evaluate_two_methods_see_the_same_episodes(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=5, k_shot=1, n_query=3)
    seen = {"a": [], "b": []}

    def method(name):
        def score_fn(episode):
            seen[name].append(episode.support_x.copy())
            # Nearest-neighbour on pixels: a real (if weak) few-shot classifier.
            d = ((episode.query_x[:, None] - episode.support_x[None]) ** 2).sum((2, 3, 4))
            return float((episode.support_y[d.argmin(1)] == episode.query_y).mean())
        return score_fn

    a = evaluate(method("a"), tasks, n_episodes=20, seed=0, progress=False)
    b = evaluate(method("b"), tasks, n_episodes=20, seed=0, progress=False)
    assert len(seen["a"]) == 20
    for x, y in zip(seen["a"], seen["b"]):
        np.testing.assert_array_equal(x, y)
    assert a.mean == b.mean and a.ci95 == b.ci95
    assert 0.2 < a.mean <= 1.0  # above chance (1/5)
    assert 0.0 < a.ci95 < 0.5


def test_evaluate_zero_episodes_is_refused():
    with pytest.raises(ValueError, match="n_episodes must be at least 1"):
        evaluate(lambda e: 1.0, SinusoidTasks(), n_episodes=0, progress=False)
