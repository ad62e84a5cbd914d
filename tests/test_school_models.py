"""Part A of notebook 08: folds over schools, the per-school line, the multi-task head prior,
adapted predictors and the scoring loop."""

import keras
import numpy as np
import pytest

from metalearn_helpers import school_models as sm
from metalearn_helpers import schools
from metalearn_helpers.episodes import Episode
from metalearn_helpers.maml import MAML
from metalearn_helpers.models import sinusoid_mlp


@pytest.fixture(scope="module")
def exam():
    return schools.load_exam()


def test_folds_hold_out_every_school_once(exam):
    folds = sm.school_folds(exam, n_folds=5, seed=0)
    held_out = np.concatenate([f.test for f in folds])
    assert sorted(held_out) == list(range(1, 66)) and [len(f.test) for f in folds] == [13] * 5
    for fold in folds:
        assert set(fold.train).isdisjoint(fold.test) and len(fold.train) + len(fold.test) == 65
    again = sm.school_folds(exam, n_folds=5, seed=0)
    np.testing.assert_array_equal(again[2].test, folds[2].test)


@pytest.mark.parametrize("n_folds, error", [(1, ValueError), (66, ValueError), (2.0, TypeError)])
def test_folds_bad_input(exam, n_folds, error):
    with pytest.raises(error, match="n_folds"):
        sm.school_folds(exam, n_folds=n_folds)


def test_students_index_their_schools(exam):
    x, y, index = sm.students(exam, [3, 7])
    assert x.shape == (len(y), 1) and y.shape[1] == 1
    assert set(index) == {0, 1} and (index == 1).sum() == (exam["school"] == 7).sum()


def test_per_school_line_through_two_students():
    episode = Episode(np.array([[0.0], [1.0]], np.float32), np.array([[1.0], [3.0]], np.float32),
                      np.array([[2.0]], np.float32), np.array([[5.0]], np.float32))
    assert sm.per_school_predictor()(episode)[0] == pytest.approx(5.0)
    assert sm.query_mse(sm.per_school_predictor(), episode) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def multitask(exam):
    x, y, index = sm.students(exam, np.arange(1, 21))
    return sm.MultiTaskNet(20, hidden=(8, 3), seed=0).fit(x, y, index, steps=50)


def test_multitask_head_prior(multitask):
    assert multitask.prior_mean.shape == (4,) and multitask.prior_cov.shape == (4, 4)
    assert multitask.noise_var > 0
    np.testing.assert_allclose(multitask.fit_head(np.zeros((0, 1)), np.zeros(0)),
                               multitask.prior_mean)


def test_multitask_head_is_the_bayesian_posterior_mean(multitask):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 1)), rng.normal(size=6)
    F, m, C, s = (multitask.features(x), multitask.prior_mean, multitask.prior_cov,
                  multitask.noise_var)
    precision_form = np.linalg.solve(np.linalg.inv(C) + F.T @ F / s,
                                     np.linalg.inv(C) @ m + F.T @ y / s)
    np.testing.assert_allclose(multitask.fit_head(x, y), precision_form, rtol=1e-6, atol=1e-8)


def test_multitask_needs_fit_first():
    with pytest.raises(RuntimeError, match="call fit"):
        sm.MultiTaskNet(3).fit_head(np.zeros((1, 1)), np.zeros(1))


def test_adapted_predictor_matches_maml_adapt(exam):
    keras.utils.set_random_seed(0)
    maml = MAML(sinusoid_mlp(), inner_lr=0.1, inner_steps=2, task_type="regression")
    episode = schools.school_episode(exam, 5, k_shot=5)
    weights = maml.adapt(episode.support_x, episode.support_y)
    expected = np.asarray(maml.forward(weights, episode.query_x))[:, 0]
    np.testing.assert_allclose(sm.adapted_predictor(maml)(episode), expected, rtol=1e-5)
    before = np.asarray(maml.model(episode.query_x))[:, 0]
    np.testing.assert_allclose(sm.adapted_predictor(maml, inner_steps=0)(episode), before,
                               rtol=1e-6)


def test_score_methods_averages_draws_per_school(exam):
    predictors = {"line": sm.per_school_predictor(),
                  "zero": lambda e: np.zeros(len(e.query_y))}
    scores = sm.score_methods(predictors, exam, [1, 2], k_shot=5, n_draws=3)
    assert set(scores) == {"line", "zero"} and scores["zero"].shape == (2,)
    manual = np.mean([sm.query_mse(predictors["zero"], schools.school_episode(exam, 2, 5, seed=d))
                      for d in range(3)])
    assert scores["zero"][1] == pytest.approx(manual)
    assert sm.summarise(scores["zero"])["schools"] == 2
