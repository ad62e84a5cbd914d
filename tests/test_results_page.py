"""docs/RESULTS.md and the README's headline table are generated from the records and up to date;
the lake_trials record follows its schema."""

from __future__ import annotations

import copy

import pytest

from metalearn_helpers import records, results_page


@pytest.fixture(scope="module")
def lake():
    return results_page.lake_record()


def test_results_page_is_up_to_date():
    assert results_page.RESULTS.read_text() == results_page.results_page(), (
        "docs/RESULTS.md is out of date with the records: run "
        "python scripts/results_table.py --write")


def test_readme_headline_is_up_to_date():
    readme = results_page.README.read_text()
    assert readme == results_page.readme_with_headline(readme), (
        "the README's headline table is out of date: run python scripts/results_table.py --write")


def test_readme_is_short_and_keeps_its_commands():
    readme = results_page.README.read_text()
    assert len(readme.splitlines()) < 150
    for command in ('.venv/bin/pip install -e ".[dev]"', ".venv/bin/pytest", "docs/RESULTS.md"):
        assert command in readme
    assert "4.8 %" not in readme  # people make 4.5 % errors (Lake et al. 2015)


def test_lake_tables_show_the_published_errors(lake):
    table = results_page.lake_trials_table(lake)
    for method, error in (("people", "4.5"), ("Bayesian program learning (BPL)", "3.3"),
                          ("convolutional Siamese net", "8.0")):
        assert f"| {method} | – | {error} |" in table
    assert results_page.LAKE_RUN in table
    assert "the course's test" in results_page.lake_conditions_table(lake)


def test_unknown_template_table(lake):
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        results_page.results_page([], lake, template="<!-- table: nope -->\n")


def test_readme_without_markers(lake):
    with pytest.raises(ValueError, match="headline results: start"):
        results_page.readme_with_headline("# no markers\n", [], lake)


def test_lake_record_schema(lake):
    bad = copy.deepcopy(lake)
    del bad["official"][0]["wilson95"]
    with pytest.raises(records.RecordError, match=r"official\[0\] lacks the field 'wilson95'"):
        records.check_record(bad, "lake_trials.json")
    bad = copy.deepcopy(lake)
    bad["conditions"] = "none"
    with pytest.raises(records.RecordError, match="'conditions' must be a list"):
        records.check_record(bad, "lake_trials.json")


def test_record_protocol_turns_sphinx_roles_into_markdown_code():
    from metalearn_helpers.results_page import record_protocol

    records = [{"name": "hospitals_x", "tests": [{"protocol": "by :func:`~a.b` with ``K``"}]},
               {"name": "schools_y", "protocol": "see :data:`SCHOOLS` "}]
    assert record_protocol(records, "schools_") == "Protocol (from the records): see `SCHOOLS`"
    assert record_protocol(records, "hospitals_").endswith("by `a.b` with `K`")
