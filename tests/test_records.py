"""metalearn_helpers.records (one run-record format, the results tables) and papers (plain data)."""

from __future__ import annotations

import json

import pytest

from metalearn_helpers import papers, records
from metalearn_helpers.evaluation import mean_confidence_interval


def test_every_committed_record_loads_through_the_schema():
    loaded = records.load_records()
    assert len(loaded) >= 26
    assert {r["name"] for r in loaded} >= {"omniglot_maml_5w1s", "sinusoid_maml"}


def _a_record():
    return json.loads((records.WEIGHTS_DIR / "omniglot_maml_5w1s.json").read_text())


@pytest.mark.parametrize("change,fragment", [
    (lambda r: r.pop("steps"), "lacks the field 'steps'"),
    (lambda r: r.update(steps="many"), "'steps' must be an int, got 'many'"),
    (lambda r: r.update(finished=1), "'finished' must be a bool"),
    (lambda r: r["tests"][1].pop("accuracy"), "tests[1] lacks the field 'accuracy'"),
    (lambda r: r.update(tests={}), "'tests' must be a list"),
])
def test_a_record_off_the_schema_is_refused_with_the_field(tmp_path, change, fragment):
    record = _a_record()
    change(record)
    path = tmp_path / "omniglot_maml_5w1s.json"
    path.write_text(json.dumps(record))
    with pytest.raises(records.RecordError) as raised:
        records.load_record(path)
    assert fragment in str(raised.value) and str(path) in str(raised.value)


def test_sinusoid_rows_are_checked(tmp_path):
    record = json.loads((records.WEIGHTS_DIR / "sinusoid_maml.json").read_text())
    record["test"][0]["mse"] = "low"
    with pytest.raises(records.RecordError, match=r"test\[0\]: 'mse' must be a number or null"):
        records.check_record(record, "sinusoid_maml.json")


def test_invalid_json_and_a_bad_record_on_write(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(records.RecordError, match="not valid JSON"):
        records.load_records(tmp_path)
    with pytest.raises(records.RecordError, match="lacks the field 'algorithm'"):
        records.write_record(tmp_path / "x.json", {"name": "omniglot_x"})
    assert not (tmp_path / "x.json").exists()


def test_the_results_table_is_built_from_the_records():
    table = records.results_table(records.load_records(prefix="omniglot_"), algorithms=["maml"])
    lines = table.splitlines()
    assert lines[0].startswith("| run | test task |") and len(lines) == 2 + 4
    assert "| omniglot_maml_5w1s | 5-way 1-shot, 1 query per class (paper's code) | 98.57 ± 0.49 %" \
        in table and table.count("within") == 1
    with pytest.raises(ValueError, match=r"unknown algorithm\(s\) \['mamll'\]"):
        records.results_table(algorithms=["mamll"])


def test_a_live_score_becomes_a_row_of_the_same_columns():
    row = records.score_row("MAML, here", "maml", 5, 1, mean_confidence_interval([0.9, 1.0]))
    assert list(row) == list(records.omniglot_rows(records.load_records(prefix="omniglot_"))[0])
    assert row["paper"] == "98.7 ± 0.4 %" and "(2 episodes)" in row["test accuracy (600 episodes)"]


def test_versus_paper():
    assert records.versus_paper(99.0, 0.1, 98.7, 0.4) == "within"
    assert records.versus_paper(99.5, 0.1, 98.7, 0.4) == "above"
    assert records.versus_paper(98.0, 0.1, 98.7, 0.4) == "below by 0.30 points"
    assert records.versus_paper(98.0, 0.5, 98.4, None) == "within"  # no published CI: ours must reach it


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float))


def test_papers_hold_only_plain_data():
    tables = {name: value for name, value in vars(papers).items()
              if name.isupper() and not name.startswith("_")}
    assert tables and all(_plain(value) for value in tables.values())
    assert set(papers.RESULT_SOURCES) >= {name for name, _, _ in papers.OMNIGLOT_RESULTS}
