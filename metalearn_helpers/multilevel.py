"""The multilevel (mixed) model: the statistician's answer to learning for each school.

Defined in notebook ``08_applications_personalisation`` (part A), where it is the anchor the
neural learners are measured against. Model (Goldstein 2011, "Multilevel Statistical Models", 4th ed., ch. 2-3)::

    normexam_ij = b0 + b1 * standLRT_ij [+ fixed covariates] + u0_j [+ u1_j * standLRT_ij] + e_ij
    (u0_j, u1_j) ~ N(0, G),  e_ij ~ N(0, sigma^2)

fitted by maximum likelihood with statsmodels' ``MixedLM`` (``reml=False``). Maximum likelihood
is what the published tutorial reports: MLwiN estimates by IGLS, its default, which is maximum
likelihood (RIGLS would be REML); lme4's default is REML, which gives slightly larger variances.

Published values (:data:`PUBLISHED_MLWIN`): Rasbash, Steele, Browne & Goldstein (2012), "A
User's Guide to MLwiN", v2.26, Centre for Multilevel Modelling, University of Bristol,
chapter 4 "Random Intercept and Random Slope Models": section 4.1 (random intercept, p. 47) and
section 4.4 (random slope, p. 59), IGLS estimates, replicated by the R2MLwiN script
``demo/UserGuide04.R``. The chapter, sections and pages were checked against that script's
headers (CRAN's R2MLwiN); the values themselves could not be read offline from the manual or the
script's stored output, and are confirmed only by our maximum-likelihood fit reproducing all of
them to three decimals (deviances to 0.001) in ``tests/test_multilevel.py``.

Per-school predictions use the random effects' posterior means given the data (empirical Bayes,
BLUPs): a school's line is shrunk from its own least-squares line towards the population line,
the more so the fewer students it has. :meth:`MultilevelFit.adapt` does the same for a school
the model has never seen, from its K support students: the few-shot learner of statistics.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .schools import exam_features

# Rasbash et al. (2012), A User's Guide to MLwiN v2.26, sections 4.1 and 4.4 (IGLS = ML).
PUBLISHED_MLWIN = {
    "random_intercept": dict(beta0=0.002, beta1=0.563, intercept_var=0.092, residual_var=0.566,
                             deviance=9357.242),
    "random_slope": dict(beta0=-0.012, beta1=0.557, intercept_var=0.090, covariance=0.018,
                         slope_var=0.015, residual_var=0.554, deviance=9316.870),
}


@dataclasses.dataclass(frozen=True)
class MultilevelFit:
    """Maximum-likelihood estimates of a random-intercept or random-slope model.

    ``fixed``: fixed effects in the order ``(intercept, *covariates)``; ``G``: covariance of the
    random effects (1x1 for a random intercept, 2x2 with the ``standLRT`` slope);
    ``school_effects``: ``{school: posterior mean of (u0[, u1])}`` for the training schools.
    """

    covariates: tuple[str, ...]
    random_slope: bool
    fixed: np.ndarray
    G: np.ndarray
    residual_var: float
    log_likelihood: float
    school_effects: dict
    converged: bool
    result: object = dataclasses.field(repr=False, compare=False)

    @property
    def beta0(self) -> float:
        return float(self.fixed[0])

    @property
    def beta1(self) -> float:
        """The fixed ``standLRT`` slope (the first covariate)."""
        return float(self.fixed[1])

    @property
    def intercept_var(self) -> float:
        return float(self.G[0, 0])

    @property
    def slope_var(self) -> float:
        """Variance of the schools' ``standLRT`` slopes (0 for a random-intercept model)."""
        return float(self.G[1, 1]) if self.random_slope else 0.0

    @property
    def covariance(self) -> float:
        """Covariance of intercepts and slopes (0 for a random-intercept model)."""
        return float(self.G[0, 1]) if self.random_slope else 0.0

    @property
    def deviance(self) -> float:
        """``-2 log L``, MLwiN's "-2*loglikelihood"."""
        return -2.0 * self.log_likelihood

    def summary(self) -> dict[str, float]:
        """The estimates under the names of :data:`PUBLISHED_MLWIN`."""
        names = ["beta0", "beta1", "intercept_var"]
        names += ["covariance", "slope_var"] if self.random_slope else []
        return {n: getattr(self, n) for n in names + ["residual_var", "deviance"]}

    def design(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-effects design ``[1, x]`` and random-effects design (``[1]`` or
        ``[1, standLRT]``) for inputs ``x`` of shape ``(n, len(covariates))``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.covariates):
            raise ValueError(f"x must have shape (n, {len(self.covariates)}) for covariates "
                             f"{self.covariates}, got {x.shape}.")
        ones = np.ones((len(x), 1))
        return np.hstack([ones, x]), np.hstack([ones, x[:, :1]]) if self.random_slope else ones

    def adapt(self, x_support, y_support) -> np.ndarray:
        """Posterior mean of a new school's random effects given its support students, with the
        fixed effects and variance components held at their estimates (empirical Bayes):
        ``u = G Z' (Z G Z' + sigma^2 I)^-1 (y - X beta)``, computed as the equal
        ``G (Z'Z G + sigma^2 I)^-1 Z' (y - X beta)`` (a q x q system). No students gives 0."""
        X, Z = self.design(x_support)
        y = np.asarray(y_support, dtype=np.float64).reshape(-1)
        if len(y) != len(X):
            raise ValueError(f"x_support has {len(X)} rows but y_support has {len(y)} values.")
        if len(y) == 0:
            return np.zeros(len(self.G))
        system = Z.T @ Z @ self.G + self.residual_var * np.eye(len(self.G))
        return self.G @ np.linalg.solve(system, Z.T @ (y - X @ self.fixed))

    def predict(self, x, effects=None) -> np.ndarray:
        """Predictions ``X beta + Z u`` for inputs ``x``; ``effects`` is a school's ``u`` (from
        :meth:`adapt` or ``school_effects``), ``None`` for the population line."""
        X, Z = self.design(x)
        u = np.zeros(len(self.G)) if effects is None else np.asarray(effects, dtype=np.float64)
        return X @ self.fixed + Z @ u

    def predict_new_school(self, x_support, y_support, x_query) -> np.ndarray:
        """Predict a new school's query students from its support students (:meth:`adapt`)."""
        return self.predict(x_query, self.adapt(x_support, y_support))


def fit_multilevel(data, random_slope: bool = False, covariates=("standLRT",),
                   schools=None) -> MultilevelFit:
    """Fit ``normexam`` on ``covariates`` with a random school intercept (and, if
    ``random_slope``, a random ``standLRT`` slope) by maximum likelihood, on the students of
    ``schools`` (default: all). The first covariate must be ``standLRT``."""
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    covariates = tuple(covariates)
    if not covariates or covariates[0] != "standLRT":
        raise ValueError(f"covariates must start with 'standLRT' (the slope that may vary by "
                         f"school), got {covariates}.")
    if schools is not None:
        data = data[data["school"].isin(np.asarray(schools))]
        if data["school"].nunique() < 2:
            raise ValueError("a multilevel model needs students from at least 2 schools.")
    x = exam_features(data, covariates).astype(np.float64)
    ones = np.ones((len(x), 1))
    z = np.hstack([ones, x[:, :1]]) if random_slope else ones
    model = MixedLM(data["normexam"].to_numpy(np.float64), np.hstack([ones, x]),
                    groups=data["school"].to_numpy(), exog_re=z)
    with warnings.catch_warnings():  # boundary/optimiser notes; `converged` keeps the verdict
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = model.fit(reml=False)
    effects = {int(s): np.asarray(u, dtype=np.float64) for s, u in result.random_effects.items()}
    return MultilevelFit(covariates=covariates, random_slope=random_slope,
                         fixed=np.asarray(result.fe_params, dtype=np.float64),
                         G=np.atleast_2d(np.asarray(result.cov_re, dtype=np.float64)),
                         residual_var=float(result.scale), log_likelihood=float(result.llf),
                         school_effects=effects, converged=bool(result.converged), result=result)
