"""The distributed benchmark's record (benchmarks/distributed.py --record) and notebook 10's
reader of it (costs.replica_comparison)."""

import pytest

from metalearn_helpers import costs, record_schema, records


def test_rows_records_and_the_notebook_table(tmp_path, monkeypatch, load_benchmark):
    bench = load_benchmark("distributed")
    times = {"one device": [(0.2, 0.3), (0.4, 0.3), (0.3, 0.3)],
             "mirrored, 2 replicas": [(0.6, 0.4), (0.6, 0.5), (0.6, 0.6)]}
    rows = bench.result_rows(times, {"one device": 2.0, "mirrored, 2 replicas": 3.0})
    assert rows[1]["vs_one_device"] == pytest.approx(0.5) and rows[0]["steps"] == 3
    monkeypatch.setattr(records, "WEIGHTS_DIR", tmp_path)
    args = bench.parse_args(["--steps", "3", "--record"])
    bench.write_benchmark_record(args, rows, 1.0, ["--steps", "3", "--record"])
    record = records.load_record(tmp_path / "distributed_benchmark.json")
    assert record["command"] == "python benchmarks/distributed.py --steps 3 --record"
    table = costs.replica_comparison(record)
    assert table[1] == {"variant": "mirrored, 2 replicas", "s/step": "0.600",
                        "steps/s vs one device": "0.50x", "CPU s/step": "0.500",
                        "first call (s)": "3.0"}


def test_a_wrong_record_is_refused():
    with pytest.raises(ValueError, match="distributed_benchmark"):
        costs.replica_comparison({"name": "maml_step_benchmark"})
    bad = {"kind": "measurement", "name": record_schema.DISTRIBUTED_BENCHMARK, "protocol": "p",
           "seed": 0, "command": "c", "date": "d", "machine": {}, "git_commit": None,
           "rows": [{"variant": "one device"}]}
    with pytest.raises(record_schema.RecordError, match="seconds_per_step"):
        record_schema.check_record(bad)


def test_the_committed_record_reads():
    record = records.load_record(records.WEIGHTS_DIR / "distributed_benchmark.json")
    assert [r["variant"] for r in costs.replica_comparison(record)] == [
        "one device", "mirrored, 1 replica", "mirrored, 2 replicas"]
