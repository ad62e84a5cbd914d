"""The multilevel anchor: MixedLM (maximum likelihood) reproduces the MLwiN tutorial's estimates,
and its empirical-Bayes adaptation to a new school behaves as the formulas say."""

import numpy as np
import pytest

from metalearn_helpers import multilevel, schools
from metalearn_helpers.multilevel import PUBLISHED_MLWIN


@pytest.fixture(scope="module")
def exam():
    return schools.load_exam()


@pytest.fixture(scope="module")
def fits(exam):
    return {"random_intercept": multilevel.fit_multilevel(exam),
            "random_slope": multilevel.fit_multilevel(exam, random_slope=True)}


@pytest.mark.parametrize("model", ["random_intercept", "random_slope"])
def test_estimates_match_the_mlwin_users_guide(fits, model):
    """Rasbash, Steele, Browne & Goldstein (2012), A User's Guide to MLwiN v2.26, chapter 4:
    section 4.1 (random intercept) and 4.4 (random slope), IGLS (maximum likelihood) estimates.
    The issue's check is two decimals; they agree to the three decimals MLwiN prints."""
    fit = fits[model]
    assert fit.converged
    estimates = fit.summary()
    assert set(estimates) == set(PUBLISHED_MLWIN[model])
    for name, published in PUBLISHED_MLWIN[model].items():
        if name == "deviance":
            assert estimates[name] == pytest.approx(published, abs=0.01), name
        else:
            assert round(estimates[name], 2) == round(published, 2), name
            assert estimates[name] == pytest.approx(published, abs=0.0015), name


def test_reml_would_not_match_the_tutorial(exam):
    """Why reml=False: REML (lme4's default) gives a school variance of 0.094, not 0.092."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    x = np.column_stack([np.ones(len(exam)), exam["standLRT"]])
    reml = MixedLM(exam["normexam"].to_numpy(), x, groups=exam["school"].to_numpy()).fit(reml=True)
    assert float(np.asarray(reml.cov_re)[0, 0]) == pytest.approx(0.0938, abs=5e-4)


@pytest.mark.parametrize("model", ["random_intercept", "random_slope"])
def test_adapt_reproduces_statsmodels_school_effects(exam, fits, model):
    fit = fits[model]
    for school in (1, 48, 53):  # 48 has only 2 students: strongly shrunk
        rows = exam["school"] == school
        u = fit.adapt(schools.exam_features(exam[rows]), exam.loc[rows, "normexam"])
        np.testing.assert_allclose(u, fit.school_effects[school], atol=1e-8)


def test_random_intercept_shrinkage_is_the_textbook_formula(exam, fits):
    fit = fits["random_intercept"]
    episode = schools.school_episode(exam, 7, k_shot=5, seed=0)
    residual = episode.support_y[:, 0] - fit.predict(episode.support_x)
    tau2, sigma2, n = fit.intercept_var, fit.residual_var, 5
    expected = n * tau2 / (n * tau2 + sigma2) * residual.mean()
    assert fit.adapt(episode.support_x, episode.support_y)[0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("model", ["random_intercept", "random_slope"])
def test_no_support_students_give_the_fixed_effects_line(fits, model):
    fit = fits[model]
    x_query = np.array([[-1.0], [0.0], [2.0]], dtype=np.float32)
    u = fit.adapt(np.zeros((0, 1)), np.zeros(0))
    np.testing.assert_array_equal(u, np.zeros(len(fit.G)))
    np.testing.assert_allclose(fit.predict_new_school(np.zeros((0, 1)), np.zeros(0), x_query),
                               fit.beta0 + fit.beta1 * x_query[:, 0])


def test_many_support_students_approach_the_schools_own_least_squares_line(fits):
    fit = fits["random_slope"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 1))
    y = 0.3 + 0.8 * x[:, 0] + rng.normal(0, np.sqrt(fit.residual_var), len(x))
    ols = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), y, rcond=None)[0]
    line = fit.fixed + fit.adapt(x, y)
    np.testing.assert_allclose(line, ols, atol=2e-3)
    few = fit.fixed + fit.adapt(x[:5], y[:5])  # five students: pulled towards the population
    assert np.linalg.norm(few - ols) > 10 * np.linalg.norm(line - ols)


def test_fit_on_training_schools_and_predict_held_out_ones(exam):
    split = schools.split_schools(exam)
    fit = multilevel.fit_multilevel(exam, random_slope=True, schools=split.train,
                                    covariates=("standLRT", "sex", "type"))
    assert fit.converged and set(fit.school_effects) == set(split.train)
    assert fit.fixed.shape == (4,) and fit.G.shape == (2, 2)
    episode = schools.school_episode(exam, int(split.test[0]), k_shot=10,
                                     covariates=("standLRT", "sex", "type"))
    adapted = fit.predict_new_school(episode.support_x, episode.support_y, episode.query_x)
    population = fit.predict(episode.query_x)
    assert adapted.shape == population.shape == (len(episode.query_y),)


@pytest.mark.parametrize("call, message", [
    (lambda fit: fit.adapt(np.zeros((3, 2)), np.zeros(3)), r"x must have shape \(n, 1\)"),
    (lambda fit: fit.adapt(np.zeros((3, 1)), np.zeros(2)), "3 rows but y_support has 2"),
])
def test_adapt_bad_input(fits, call, message):
    with pytest.raises(ValueError, match=message):
        call(fits["random_slope"])


def test_fit_bad_input(exam):
    with pytest.raises(ValueError, match="must start with 'standLRT'"):
        multilevel.fit_multilevel(exam, covariates=("sex",))
    with pytest.raises(ValueError, match="at least 2 schools"):
        multilevel.fit_multilevel(exam, schools=[1])
