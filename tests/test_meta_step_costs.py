"""benchmarks/meta_step_costs.py: its measurement record follows the records schema (no timing)."""

import json

import pytest

from metalearn_helpers import records



@pytest.fixture(scope="module")
def costs_script(load_benchmark):
    return load_benchmark("meta_step_costs")


def fake_rows(module):
    return [{"configuration": label, "inner_steps": steps, "seconds_per_step": 0.1 * steps,
             "step_seconds": [0.1 * steps], "first_call_seconds": 1.0,
             "rss_peak_mb": 50.0 + steps, "first_call_rss_peak_mb": 60.0}
            for steps in (1, 2) for label, _, _ in module.CONFIGURATIONS]


def test_record_follows_the_measurement_schema(costs_script, tmp_path):
    args = costs_script.parse_args(["--inner-steps", "1", "2", "--output", "-"])
    rows = costs_script.with_ratios(fake_rows(costs_script))
    path = tmp_path / "meta_step_costs.json"
    records.write_record(path, costs_script.measurement_record(rows, args, (1.0, 2.0), 3.0))
    record = records.load_record(path)
    assert record["kind"] == "measurement" and record["name"] == "meta_step_costs"
    assert len(record["rows"]) == 2 * len(costs_script.CONFIGURATIONS)
    baseline = record["rows"][0]
    assert baseline["time_ratio"] == baseline["rss_ratio"] == 1.0
    assert "| maml + recompute | 2 |" in costs_script.table(rows)
    json.dumps(record)


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--inner-steps", "2", "3"],
                                  ["--meta-batch-size", "0"], ["--n-query", "0"]])
def test_bad_arguments_are_refused(costs_script, argv):
    with pytest.raises(SystemExit):
        costs_script.parse_args(argv)
