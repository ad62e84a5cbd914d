"""Part B of notebook 08: MeLU's network and local update, the user task family, the baselines
(means, matrix factorisation with fold-in) and MovieLens folds over users."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from metalearn_helpers import melu
from metalearn_helpers import movielens as ml
from metalearn_helpers.episodes import Episode


@pytest.fixture(scope="module")
def ratings():
    return ml.load_movielens()


@pytest.fixture(scope="module")
def features(ratings):
    return ml.item_features(ratings)


def test_network_shape_and_shared_user_embedding():
    network = melu.melu_network(embedding_dim=4, hidden=(8, 8))
    x = np.zeros((3, len(ml.GENRES) + 1), np.float32)
    assert network(x).shape == (3, 1)
    names = {v.path.split("/")[0] for v in network.trainable_variables}
    assert names == {"item_embedding", "user_embedding", "fc1", "fc2", "out"}


def test_local_update_changes_only_the_decision_layers():
    keras.utils.set_random_seed(0)
    learner = melu.MeLU(melu.melu_network(embedding_dim=4, hidden=(8, 8)), inner_lr=0.1)
    rng = np.random.default_rng(0)
    x = rng.random((5, len(ml.GENRES) + 1)).astype(np.float32)
    y = rng.uniform(1, 5, (5, 1)).astype(np.float32)
    before = [np.asarray(v) for v in learner.model.trainable_variables]
    after = [np.asarray(w) for w in learner.adapt(tf.constant(x), tf.constant(y))]
    for variable, old, new, local in zip(learner.model.trainable_variables, before, after,
                                         learner.is_local):
        changed = not np.allclose(old, new)
        assert changed == local, variable.path
    # The written-out local update: theta_d - alpha * grad on the support MSE.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(y - learner.model(x)))
    grads = tape.gradient(loss, learner.model.trainable_variables)
    for old, new, g, local in zip(before, after, grads, learner.is_local):
        np.testing.assert_allclose(new, old - 0.1 * np.asarray(g) if local else old, rtol=1e-4,
                                   atol=1e-6)


def test_predict_with_zero_steps_is_the_prior():
    keras.utils.set_random_seed(0)
    learner = melu.MeLU(melu.melu_network(embedding_dim=4, hidden=(8, 8)), inner_lr=0.1,
                        inner_steps=3)
    x = np.random.default_rng(1).random((4, len(ml.GENRES) + 1)).astype(np.float32)
    y = np.full((4, 1), 5.0, np.float32)
    prior = learner.predict(x, y, x, inner_steps=0)
    np.testing.assert_allclose(prior, np.asarray(learner.model(x))[:, 0], rtol=1e-6)
    assert np.all(learner.predict(x, y, x) > prior)  # pulled towards the 5-star support


def test_melu_needs_decision_layers():
    with pytest.raises(ValueError, match="hold no trainable weights"):
        melu.MeLU(melu.melu_network(embedding_dim=4, hidden=(8, 8)), inner_lr=0.1,
                  local_layers=())


def test_user_tasks_stack(ratings, features):
    split = ml.melu_split(ratings, seed=0)
    tasks = melu.UserTasks(split.states["warm_state"], features, k_shot=5)
    batch = next(tasks.batches(meta_batch_size=3, seed=0))
    assert batch.support_x.shape == (3, 5, 20) and batch.query_y.shape == (3, 10, 1)
    with pytest.raises(ValueError, match="no user"):
        melu.UserTasks(split.states["warm_state"], features, k_shot=95)


def test_mean_predictors():
    train = pd.DataFrame({"movieId": [1, 1, 2], "rating": [4.0, 5.0, 1.0]})
    episode = Episode(np.zeros((2, 1)), np.array([[2.0], [3.0]]), np.zeros((2, 1)),
                      np.zeros((2, 1)), info={"query_movies": np.array([1, 9])})
    predictors = melu.mean_predictors(train)
    np.testing.assert_allclose(predictors["global mean"](episode), [10 / 3, 10 / 3])
    np.testing.assert_allclose(predictors["item mean"](episode), [4.5, 10 / 3])
    np.testing.assert_allclose(predictors["user mean"](episode), [2.5, 2.5])


def test_matrix_factorisation_recovers_a_low_rank_matrix_and_folds_in():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(60, 2)), rng.normal(size=(40, 2))
    full = 3 + users @ items.T
    u, i = np.nonzero(rng.random(full.shape) < 0.6)
    train = pd.DataFrame({"userId": u, "movieId": i, "rating": full[u, i]})
    mf = melu.MatrixFactorisation(rank=2, l2=0.01, n_iterations=30).fit(train)
    user0 = mf.fold_in(i[u == 0], full[0, i[u == 0]])
    np.testing.assert_allclose(mf.predict(user0, np.arange(40)), full[0], atol=0.1)
    new_item = mf.predict(user0, [999])  # unseen item: only the user's bias is known
    assert new_item[0] == pytest.approx(mf.mu + user0[0])


def test_melu_split_with_given_new_users(ratings):
    new = np.unique(ratings["userId"])[:100]
    split = ml.melu_split(ratings, new_users=new)
    np.testing.assert_array_equal(split.new_users, new)
    assert set(split.states["user_cold_state"]["userId"]) <= set(new)
    with pytest.raises(ValueError, match="1 unknown"):
        ml.melu_split(ratings, new_users=[1, 10**7])


def test_user_folds_make_every_user_new_once(ratings):
    folds = ml.user_folds(ratings, n_folds=5, seed=0)
    everyone = np.concatenate(folds)
    assert len(everyone) == len(set(everyone)) == 671
    assert sorted(len(f) for f in folds) == [134, 134, 134, 134, 135]


def test_explain_user_shows_support_query_and_top_candidates(ratings, features):
    keras.utils.set_random_seed(0)
    learner = melu.MeLU(melu.melu_network(embedding_dim=4, hidden=(8, 8)), inner_lr=0.1)
    state = ml.melu_split(ratings, seed=0).states["user_cold_state"]
    user = int(ml.eligible_users(state, 5)[0])
    episode = ml.user_episode(state, user, features, k_shot=5)
    candidates = {m: features[m] for m in (1, 2, 3, 4, 5, 6, 7)}
    report = melu.explain_user(learner, episode, {1: "Toy Story (1995)"}, candidates, n_top=3)
    assert len(report["support"]) == 5 and len(report["query"]) == 10
    assert list(report["query"].columns) == ["movie", "rating", "before update", "after update"]
    top = report["recommendations"]["predicted rating"].to_numpy()
    assert len(top) == 3 and np.all(np.diff(top) <= 0)
