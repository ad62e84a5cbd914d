"""Learners for a new school from K of its students: pooled, per-school, multi-task, meta-learned.

Defined in notebook ``08_applications_personalisation`` (part A: multi-task learning versus
meta-learning on the Exam data of :mod:`metalearn_helpers.schools`). Every method here is a
*predictor factory*: trained on the training schools, it returns ``predict(episode) -> query
predictions`` for a held-out school's episode (K support students, the rest as query), so all
methods are scored the same way by :func:`score_methods`. The network is MAML's 1-40-40-1 ReLU
regressor (:func:`metalearn_helpers.models.sinusoid_mlp`) on ``standLRT``.

- pooled: one network for all students of the training schools; a new school's support set is
  ignored.
- per school: a least-squares line through the new school's K support students alone.
- multi-task (Caruana 1997, "Multitask learning", Machine Learning 28:41-75): a shared trunk with
  one linear head per training school, trained jointly (:class:`MultiTaskNet`); for a new school
  only a head is fitted, by Bayesian linear regression on the trunk's features with the training
  heads' mean and covariance as prior (:meth:`MultiTaskNet.fit_head`).
- MAML (Finn et al. 2017, arXiv 1703.03400) and Reptile (Nichol et al. 2018, arXiv 1803.02999):
  the course's classes with ``task_type="regression"``, adapted on the support set.
- the multilevel model (:mod:`metalearn_helpers.multilevel`): empirical-Bayes prediction.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .checks import check_int, check_positive
from .evaluation import mean_confidence_interval
from .schools import SchoolSplit, exam_features, school_episode, school_sizes


def school_folds(data, n_folds: int = 5, seed: int = 0) -> list[SchoolSplit]:
    """K-fold cross-validation over schools: the schools shuffled (seeded) and cut into
    ``n_folds`` near-equal groups; fold ``i`` holds out group ``i`` and trains on the others, so
    every school is held out exactly once (5 folds: 13 test schools each)."""
    schools = np.array(sorted(school_sizes(data)))
    n_folds = check_int("n_folds", n_folds, 2)
    if n_folds > len(schools):
        raise ValueError(f"n_folds={n_folds} is more than the {len(schools)} schools.")
    groups = np.array_split(np.random.default_rng(check_int("seed", seed, 0)).permutation(schools),
                            n_folds)
    return [SchoolSplit(train=np.setdiff1d(schools, g), test=np.sort(g)) for g in groups]


def students(data, schools) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``standLRT`` ``(n, 1)``, targets ``normexam`` ``(n, 1)`` and each student's index
    into ``schools`` (0..len(schools)-1), for the students of ``schools``."""
    schools = np.asarray(schools)
    rows = data[data["school"].isin(schools)]
    index = np.searchsorted(schools, rows["school"].to_numpy())
    return (exam_features(rows), rows["normexam"].to_numpy(np.float32)[:, None],
            index.astype(np.int32))


def least_squares_line(x, y) -> np.ndarray:
    """Intercept and slope of the least-squares line through ``(x[:, 0], y)`` (minimum norm when
    the points do not determine a line, e.g. one student)."""
    design = np.column_stack([np.ones(len(x)), np.asarray(x, np.float64)[:, 0]])
    return np.linalg.lstsq(design, np.asarray(y, np.float64).ravel(), rcond=None)[0]


def per_school_predictor():
    """A line fitted to the new school's K support students alone (no other school helps)."""
    def predict(episode):
        intercept, slope = least_squares_line(episode.support_x, episode.support_y)
        return intercept + slope * episode.query_x[:, 0]
    return predict


def fit_regressor(model, x, y, epochs: int = 300, batch_size: int = 256, seed: int = 0):
    """Train ``model`` on ``(x, y)`` by mean squared error with Adam 1e-3 (the pooled model, and
    the MeLU-shaped network pre-trained without meta-learning)."""
    keras.utils.set_random_seed(check_int("seed", seed, 0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(x, y, epochs=check_int("epochs", epochs), batch_size=batch_size, verbose=0)
    return model


def pooled_predictor(model):
    """The pooled network's prediction, the same for every school."""
    return lambda episode: np.asarray(model(episode.query_x))[:, 0]


class MultiTaskNet:
    """Multi-task regression: a shared trunk (the 1-40-40 ReLU layers of MAML's regressor) and
    one linear head ``(w_s, b_s)`` per training school, trained jointly on all their students by
    mean squared error (Adam, full batch), with a small L2 penalty ``head_decay`` on the heads.

    A new school has no head: :meth:`fit_head` fits one on its support students, with the
    trunk frozen.
    """

    def __init__(self, n_schools: int, hidden=(40, 40), head_decay: float = 1e-3, seed: int = 0):
        check_int("n_schools", n_schools)
        check_positive("head_decay", head_decay)
        keras.utils.set_random_seed(check_int("seed", seed, 0))
        self.trunk = keras.Sequential([keras.Input((1,))] + [
            keras.layers.Dense(units, activation="relu") for units in hidden], name="trunk")
        self.heads = keras.Variable(keras.initializers.GlorotUniform()((n_schools, hidden[-1] + 1)),
                                    name="heads")
        self.head_decay = float(head_decay)
        self.prior_mean = self.prior_cov = self.noise_var = None

    def features(self, x) -> np.ndarray:
        """Trunk features with a constant 1 appended (the head's bias), float64 ``(n, h + 1)``."""
        phi = np.asarray(self.trunk(np.asarray(x, np.float32)), np.float64)
        return np.hstack([phi, np.ones((len(phi), 1))])

    def fit(self, x, y, school_index, steps: int = 3000, learning_rate: float = 3e-3):
        """Joint training; then the heads' mean and covariance (the prior of a new head) and the
        residual variance on the training students are stored."""
        optimizer = keras.optimizers.Adam(learning_rate)
        variables = self.trunk.trainable_variables + [self.heads]
        optimizer.build(variables)  # before tracing: variables are not created inside a graph
        x, y = tf.constant(x), tf.constant(y)
        index = tf.constant(school_index)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                head = tf.gather(self.heads.value, index)
                prediction = (tf.reduce_sum(self.trunk(x) * head[:, :-1], axis=1, keepdims=True)
                              + head[:, -1:])
                loss = tf.reduce_mean(tf.square(y - prediction))
                total = loss + self.head_decay * tf.reduce_mean(tf.square(self.heads.value))
            optimizer.apply(tape.gradient(total, variables), variables)
            return loss

        for _ in range(check_int("steps", steps)):
            step()
        heads = np.asarray(self.heads.numpy(), np.float64)
        self.prior_mean = heads.mean(axis=0)
        self.prior_cov = np.cov(heads, rowvar=False) + 1e-4 * np.eye(heads.shape[1])
        residual = np.asarray(y)[:, 0] - np.sum(self.features(x) * heads[np.asarray(index)], axis=1)
        self.noise_var = float(np.mean(residual ** 2))
        return self

    def fit_head(self, x_support, y_support) -> np.ndarray:
        """A new school's head: the posterior mean of ``w`` under the prior
        ``N(prior_mean, prior_cov)`` and noise variance ``noise_var``, i.e.
        ``m + C F' (F C F' + s I)^-1 (y - F m)`` with ``F`` the support students' features. With
        no students it is the mean head; with many, their least-squares head."""
        if self.prior_mean is None:
            raise RuntimeError("call fit() before fit_head(): the prior comes from the "
                               "training heads.")
        F = self.features(x_support)
        y = np.asarray(y_support, np.float64).ravel()
        if len(y) == 0:
            return self.prior_mean.copy()
        gram = F @ self.prior_cov @ F.T + self.noise_var * np.eye(len(y))
        residual = y - F @ self.prior_mean
        return self.prior_mean + self.prior_cov @ F.T @ np.linalg.solve(gram, residual)

    def predictor(self):
        def predict(episode):
            return self.features(episode.query_x) @ self.fit_head(episode.support_x,
                                                                  episode.support_y)
        return predict


def adapted_predictor(learner, inner_steps: int | None = None):
    """MAML's or Reptile's prediction after adapting on the support set (``inner_steps``:
    default the learner's ``eval_inner_steps``)."""
    steps = learner.eval_inner_steps if inner_steps is None else check_int("inner_steps",
                                                                            inner_steps, 0)

    @tf.function  # one graph per support size (Reptile's mini-batches need it known)
    def adapt(support_x, support_y):
        return learner.adapt(support_x, support_y, inner_steps=steps)

    def predict(episode):
        weights = adapt(tf.constant(episode.support_x), tf.constant(episode.support_y))
        return np.asarray(learner.forward(weights, tf.constant(episode.query_x)))[:, 0]
    return predict


def multilevel_predictor(fit):
    """The multilevel model's empirical-Bayes prediction for a new school."""
    return lambda episode: fit.predict_new_school(episode.support_x, episode.support_y,
                                                  episode.query_x)


def query_mse(predict, episode) -> float:
    """Mean squared error of ``predict(episode)`` on the episode's query students."""
    predicted = np.asarray(predict(episode), np.float64).ravel()
    return float(np.mean((episode.query_y[:, 0] - predicted) ** 2))


def score_methods(predictors: dict, data, schools, k_shot: int, n_draws: int = 10) -> dict:
    """Query MSE of every predictor on ``n_draws`` random support sets (seeds 0..n_draws-1) of
    every school in ``schools``: ``{method: array (n_schools,)}``, each school's MSE averaged
    over its draws (the unit of the 95 % CI is the held-out school)."""
    scores = {name: np.zeros((len(schools), n_draws)) for name in predictors}
    for i, school in enumerate(schools):
        for draw in range(check_int("n_draws", n_draws)):
            episode = school_episode(data, int(school), k_shot, seed=draw)
            for name, predict in predictors.items():
                scores[name][i, draw] = query_mse(predict, episode)
    return {name: values.mean(axis=1) for name, values in scores.items()}


def summarise(values) -> dict:
    """``{"mse", "ci95", "schools"}`` of per-school MSEs (mean and 95 % CI over schools)."""
    score = mean_confidence_interval(values)
    return {"mse": float(score.mean), "ci95": float(score.ci95), "schools": int(score.n)}
