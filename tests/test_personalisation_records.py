"""Notebook 08's run records: the schools_/movielens_ schema and their table rows."""

import pytest

from metalearn_helpers import application_tables, records


def _record(name, test, **extra):
    return {"name": name, "algorithm": name.split("_", 1)[1], "paper": "p", "hyperparameters": {},
            "steps": 0, "planned_steps": 0, "finished": True, "seed": 0, "train_seconds": 1.0,
            "seconds_per_step": 0.0, "command": "c", "date": "d", "machine": {},
            "git_commit": None, "protocol": "5 folds", "folds": 5, "test": test, **extra}


SCHOOL_ROW = {"k_shot": 5, "mse": 0.66, "ci95": 0.12, "schools": 62, "values": [0.6, 0.7]}
USER_ROW = {"state": "user_cold_state", "k_shot": None, "mae": 0.8, "mae_ci95": 0.05,
            "ndcg3": 0.7, "ndcg3_ci95": 0.03, "users": 400}


def test_valid_records_pass_and_make_rows():
    school = records.check_record(_record("schools_maml", [SCHOOL_ROW]))
    user = records.check_record(_record("movielens_melu", [USER_ROW, {**USER_ROW, "k_shot": 5}]))
    assert application_tables.schools_rows([school]) == [{"method": "maml", "K = 2": "",
                                              "K = 5": "0.660 ± 0.120", "K = 10": "",
                                              "K = 20": ""}]
    row = application_tables.movielens_rows([user], "user_cold_state")[0]
    assert row["support: all"] == "0.800 ± 0.050" and row["K = 5"] == "0.800 ± 0.050"
    assert application_tables.movielens_rows([user], "user_cold_state", "ndcg3")[0]["K = 10"] == ""


@pytest.mark.parametrize("name, test, message", [
    ("schools_maml", [{**SCHOOL_ROW, "mse": "0.6"}], r"test\[0\]: 'mse' must be a number"),
    ("schools_maml", [{**SCHOOL_ROW, "k_shot": None}], r"'k_shot' must be an int, got None"),
    ("movielens_melu", [{k: v for k, v in USER_ROW.items() if k != "ndcg3"}],
     r"test\[0\] lacks the field 'ndcg3'"),
    ("movielens_melu", [{**USER_ROW, "k_shot": 2.5}], r"'k_shot' must be an int or null"),
])
def test_bad_rows_are_refused(name, test, message):
    with pytest.raises(records.RecordError, match=message):
        records.check_record(_record(name, test), "x.json")


def test_missing_protocol_is_refused():
    record = _record("schools_maml", [SCHOOL_ROW])
    del record["protocol"]
    with pytest.raises(records.RecordError, match="lacks the field 'protocol'"):
        records.check_record(record)


def test_multilevel_rows():
    record = _record("schools_multilevel", [SCHOOL_ROW],
                     full_data_estimates={"beta1": 0.5633, "residual_var": 0.5536},
                     published_estimates={"beta1": 0.563, "residual_var": 0.554})
    rows = application_tables.multilevel_rows(record)
    assert rows[0] == {"estimate": "beta1", "ours (statsmodels MixedLM, ML)": "0.563",
                       "published (MLwiN, IGLS)": "0.563"}


def test_paired_rows_subtract_the_reference_school_by_school():
    a = _record("schools_maml", [{**SCHOOL_ROW, "values": [0.7, 0.9, 0.8]}])
    b = _record("schools_multilevel", [{**SCHOOL_ROW, "values": [0.6, 0.8, 0.7]}])
    rows = application_tables.schools_paired_rows([a, b])
    assert rows == [{"method": "maml", "K = 2": "", "K = 5": "+0.100 ± 0.000", "K = 10": "",
                     "K = 20": ""}]
    with pytest.raises(ValueError, match="no schools_ record of 'pooled'"):
        application_tables.schools_paired_rows([a, b], reference="pooled")
