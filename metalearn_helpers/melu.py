"""MeLU at small scale: cold-start recommendation as few-shot regression, one task per user.

Defined in notebook ``08_applications_personalisation`` (part B), on the MovieLens tasks of
:mod:`metalearn_helpers.movielens`.

MeLU (Lee, Im, Jang, Cho & Chung 2019, "MeLU: Meta-Learned User Preference Estimator for
Cold-Start Recommendation", KDD, arXiv 1908.00413; code github.com/hoyeoplee/MeLU): an item
embedding and a user embedding are concatenated and fed to a decision MLP (two ReLU layers of 64
and a linear output). Meta-training is MAML (Finn et al. 2017, arXiv 1703.03400) with one task
per user; its *local update* (the inner loop) changes only the decision layers ``fc1``, ``fc2``
and ``out`` (the code's ``local_update_target_weight_name``), while the embeddings are learned in
the global update only. :class:`MeLU` is the course's :class:`~metalearn_helpers.maml.MAML` with
that one change (:meth:`MeLU.inner_update`).

Here (:func:`melu_network`): the item embedding is a linear map of the genres (multi-hot divided
by the number of genres, as MeLU averages its genre embeddings) and of the release year; the data
have no user profile (MeLU embeds gender, age, occupation and zip code), so the user embedding
is one learned vector shared by all users, and a user is told apart from another only by the
local update on their support ratings.

Baselines: global mean, item mean, the user's own support mean (:func:`mean_predictors`), and a
biased matrix factorisation (:class:`MatrixFactorisation`) trained on the existing users, with a
new user folded in from their support ratings.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .checks import check_int, check_positive
from .maml import MAML
from .movielens import GENRES, MAX_RATINGS, N_QUERY, eligible_users, user_episode
from .episodes import TaskFamily, as_rng

DECISION_LAYERS = ("fc1", "fc2", "out")


class UserEmbedding(keras.layers.Layer):
    """One learned vector, repeated for every row of the input: the user embedding when there
    are no user features (every user starts from the same point)."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def build(self, input_shape):
        self.vector = self.add_weight(shape=(self.dim,), initializer="random_normal",
                                      name="vector")

    def call(self, x):
        return keras.ops.zeros_like(x[:, :1]) + self.vector

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def melu_network(embedding_dim: int = 32, hidden=(64, 64), name: str = "melu") -> keras.Model:
    """MeLU's user preference estimator for the item features of
    :func:`metalearn_helpers.movielens.item_features` (19 genres then the scaled year): item
    embedding (``embedding_dim``) and user embedding (``embedding_dim``) concatenated, then
    ``fc1``, ``fc2`` (ReLU, ``hidden``) and a linear ``out``: a predicted rating."""
    n_genres = len(GENRES)
    items = keras.Input((n_genres + 1,))
    genres, year = items[:, :n_genres], items[:, n_genres:]
    genres = genres / keras.ops.maximum(keras.ops.sum(genres, axis=1, keepdims=True), 1.0)
    item = keras.layers.Dense(embedding_dim, name="item_embedding")(
        keras.layers.Concatenate()([genres, year]))
    user = UserEmbedding(embedding_dim, name="user_embedding")(items)
    x = keras.layers.Concatenate()([item, user])
    x = keras.layers.Dense(hidden[0], activation="relu", name="fc1")(x)
    x = keras.layers.Dense(hidden[1], activation="relu", name="fc2")(x)
    return keras.Model(items, keras.layers.Dense(1, name="out")(x), name=name)


class MeLU(MAML):
    """MAML whose local update changes only the decision layers (Lee et al. 2019, section 3.2):
    ``theta_d' = theta_d - inner_lr * grad_theta_d L_support`` for ``theta_d`` in
    ``local_layers``, every other weight unchanged; the global update trains everything on the
    query loss after the local update. Regression (mean squared error) on ratings.

    ``MeLU-1`` and ``MeLU-5`` in the paper are ``inner_steps=1`` and ``5``.
    """

    def __init__(self, model, inner_lr: float, local_layers=DECISION_LAYERS, **kwargs):
        local = {id(v) for name in local_layers for v in model.get_layer(name).trainable_variables}
        if not local:
            raise ValueError(f"local_layers {tuple(local_layers)} hold no trainable weights.")
        self.local_layers = tuple(local_layers)
        self.is_local = [id(v) in local for v in model.trainable_variables]
        super().__init__(model, inner_lr, task_type="regression", **kwargs)

    def inner_update(self, params, grads):
        return [p - self.inner_lr * g if local else p
                for p, g, local in zip(params, grads, self.is_local)]

    def predict(self, support_x, support_y, query_x, inner_steps: int | None = None) -> np.ndarray:
        """Predicted ratings of ``query_x`` after the local update on the support ratings
        (``inner_steps`` default ``eval_inner_steps``; 0 gives the meta-learned prior)."""
        steps = self.eval_inner_steps if inner_steps is None else check_int("inner_steps",
                                                                             inner_steps, 0)
        arrays = [tf.constant(np.asarray(a, np.float32)) for a in (support_x, support_y, query_x)]
        return np.asarray(self._predict(*arrays, steps))[:, 0]

    @tf.function(reduce_retracing=True)  # one graph for every support and query size
    def _predict(self, support_x, support_y, query_x, inner_steps):
        return self.forward(self.adapt(support_x, support_y, inner_steps=inner_steps), query_x)


class UserTasks(TaskFamily):
    """Meta-training tasks of MovieLens: a user of ``state`` drawn uniformly among those with
    ``k_shot + n_query`` ratings; their ratings shuffled, ``n_query`` of them the query set and
    ``k_shot`` the support set (fixed sizes, so tasks stack into meta-batches for
    :func:`metalearn_helpers.training.meta_train`)."""

    def __init__(self, state, features: dict, k_shot: int, n_query: int = N_QUERY):
        self.state, self.features = state, features
        self.k_shot, self.n_query = check_int("k_shot", k_shot), check_int("n_query", n_query)
        self.users = eligible_users(state, k_shot, n_query)
        if len(self.users) == 0:
            raise ValueError(f"no user of this state has k_shot + n_query = {k_shot + n_query} "
                             f"ratings (at most {MAX_RATINGS}).")

    def sample(self, seed=None):
        rng = as_rng(seed)
        return user_episode(self.state, int(rng.choice(self.users)), self.features,
                            k_shot=self.k_shot, n_query=self.n_query,
                            seed=int(rng.integers(2**31)))


def mean_predictors(train, global_mean: float | None = None) -> dict:
    """Three baselines from the training ratings ``train`` (a DataFrame): the global mean, each
    item's mean (the global mean for an item without training ratings) and the user's own
    support mean. Each is ``predict(episode) -> ratings``."""
    mu = float(train["rating"].mean()) if global_mean is None else float(global_mean)
    item_mean = train.groupby("movieId")["rating"].mean().to_dict()
    return {
        "global mean": lambda e: np.full(len(e.query_y), mu),
        "item mean": lambda e: np.array([item_mean.get(int(m), mu)
                                         for m in e.info["query_movies"]]),
        "user mean": lambda e: np.full(len(e.query_y), e.support_y.mean() if len(e.support_y)
                                       else mu),
    }


class MatrixFactorisation:
    """Biased matrix factorisation ``r = mu + b_u + b_i + p_u . q_i`` (Koren, Bell & Volinsky
    2009, "Matrix factorization techniques for recommender systems", IEEE Computer 42(8)),
    fitted by alternating ridge regressions (ALS) on the training users' ratings.

    A new user is *folded in*: their ``(b_u, p_u)`` is the ridge solution on their support
    ratings with every item's ``(b_i, q_i)`` fixed (:meth:`fold_in`). An item without training
    ratings has ``b_i = 0, q_i = 0``: MF cannot say anything about new items.
    """

    def __init__(self, rank: int = 10, l2: float = 5.0, n_iterations: int = 15, seed: int = 0):
        self.rank, self.n_iterations = check_int("rank", rank), check_int("n_iterations",
                                                                          n_iterations)
        check_positive("l2", l2)
        self.l2, self.seed = float(l2), check_int("seed", seed, 0)

    def fit(self, train):
        users, u = np.unique(train["userId"].to_numpy(), return_inverse=True)
        items, i = np.unique(train["movieId"].to_numpy(), return_inverse=True)
        r = train["rating"].to_numpy(np.float64)
        self.mu = float(r.mean())
        rng = np.random.default_rng(self.seed)
        user_f = np.hstack([np.zeros((len(users), 1)), rng.normal(0, 0.1, (len(users), self.rank))])
        item_f = np.hstack([np.zeros((len(items), 1)), rng.normal(0, 0.1, (len(items), self.rank))])
        for _ in range(self.n_iterations):  # each side: ridge on [1, other's factors]
            user_f = self._solve_side(u, i, r, item_f, len(users))
            item_f = self._solve_side(i, u, r, user_f, len(items))
        self.item_index = {int(m): k for k, m in enumerate(items)}
        self.item_f = item_f
        return self

    def _solve_side(self, own, other, r, other_f, n_own):
        """For every row ``a`` of this side: ridge regression of ``r - mu - (other's bias)`` on
        ``[1, other's factors]``, giving ``[bias_a, factors_a]``."""
        design = np.hstack([np.ones((len(r), 1)), other_f[other, 1:]])
        target = r - self.mu - other_f[other, 0]
        solution = np.zeros((n_own, self.rank + 1))
        order = np.argsort(own, kind="stable")
        bounds = np.searchsorted(own[order], np.arange(n_own + 1))
        for a in range(n_own):
            rows = order[bounds[a]:bounds[a + 1]]
            solution[a] = self._ridge(design[rows], target[rows])
        return solution

    def _ridge(self, design, target):
        return np.linalg.solve(design.T @ design + self.l2 * np.eye(design.shape[1]),
                               design.T @ target)

    def _items(self, movies):
        index = [self.item_index.get(int(m)) for m in movies]
        return np.array([self.item_f[k] if k is not None else np.zeros(self.rank + 1)
                         for k in index])

    def fold_in(self, movies, ratings) -> np.ndarray:
        """A new user's ``[b_u, p_u]`` from their ratings of ``movies``, items held fixed."""
        item_f = self._items(movies)
        design = np.hstack([np.ones((len(item_f), 1)), item_f[:, 1:]])
        target = np.asarray(ratings, np.float64).ravel() - self.mu - item_f[:, 0]
        return self._ridge(design, target)

    def predict(self, user_f, movies) -> np.ndarray:
        item_f = self._items(movies)
        return self.mu + user_f[0] + item_f[:, 0] + item_f[:, 1:] @ user_f[1:]

    def predictor(self):
        def predict(episode):
            user_f = self.fold_in(episode.info["support_movies"], episode.support_y)
            return self.predict(user_f, episode.info["query_movies"])
        return predict


def explain_user(learner, episode, titles: dict, candidates: dict, n_top: int = 5) -> dict:
    """What notebook 08's widget shows for one user's ``episode``: the support ratings, the
    query ratings with the predictions before (meta-learned prior) and after the local update,
    and the ``n_top`` best-predicted ``candidates`` (``{movieId: item features}``, e.g. existing
    movies the user has not rated) after the update. Pandas DataFrames, keyed by name."""
    import pandas as pd

    def named(movies):
        return [titles.get(int(m), str(m)) for m in movies]

    support = pd.DataFrame({"movie": named(episode.info["support_movies"]),
                            "rating": episode.support_y[:, 0]})
    before = learner.predict(episode.support_x, episode.support_y, episode.query_x, inner_steps=0)
    after = learner.predict(episode.support_x, episode.support_y, episode.query_x)
    query = pd.DataFrame({"movie": named(episode.info["query_movies"]),
                          "rating": episode.query_y[:, 0], "before update": before.round(2),
                          "after update": after.round(2)})
    movies = np.array(list(candidates))
    scores = learner.predict(episode.support_x, episode.support_y,
                             np.stack([candidates[m] for m in movies]))
    best = np.argsort(-scores, kind="stable")[:check_int("n_top", n_top)]
    top = pd.DataFrame({"movie": named(movies[best]), "predicted rating": scores[best].round(2)})
    return {"support": support, "query": query, "recommendations": top}
