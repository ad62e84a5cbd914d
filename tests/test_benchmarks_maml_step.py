"""benchmarks/maml_step.py's measurement record and the costs functions that read it (notebook 10).

No timing: rows are made up, as the real run takes minutes.
"""

import json

import pytest

from metalearn_helpers import costs, records

# (variant, order, framework, first call s, median wall ms, CPU ms)
FAKE = [("PyTorch loop", "2nd", "torch", 0.6, 580.0, 560.0),
        ("PyTorch vmap compiled", "2nd", "torch", 66.0, 315.0, 318.0),
        ("MAML tf.function", "2nd", "tf", 1.6, 200.0, 210.0),
        ("MAML XLA", "2nd", "tf", 36.0, 4000.0, 2000.0),
        ("MAML eager", "2nd", "tf", 9.0, 8000.0, 4000.0),
        ("PyTorch loop", "1st", "torch", 0.4, 260.0, 230.0),
        ("PyTorch vmap", "1st", "torch", 0.2, 200.0, 240.0),
        ("MAML tf.function", "1st", "tf", 1.1, 150.0, 120.0)]


@pytest.fixture(scope="module")
def script(load_benchmark):
    pytest.importorskip("torch", reason="benchmarks/maml_step.py needs PyTorch (the bench extra)")
    return load_benchmark("maml_step")


def fake_run(script):
    """variants, first_call and times as the script's timing loop leaves them (3 rounds; eager
    once, not interleaved)."""
    variants, first_call, times = {}, {}, {}
    for variant, order, framework, first, wall, cpu in FAKE:
        name = f"{variant}, {order}"
        variants[name] = (order, None, framework, 3)
        first_call[name] = first
        rounds = [None] if "eager" in variant else [0, 1, 2]
        times[name] = {r: wall / 1e3 * (1 + 0.01 * i) for i, r in enumerate(rounds)}
        for i, r in enumerate(rounds):
            script.CPU_TIMES[name, r] = cpu / 1e3 * (1 + 0.01 * i)
    return variants, first_call, times


@pytest.fixture
def record(script, tmp_path):
    rows = script.result_rows(*fake_run(script))
    args = script.parse_args(["--steps", "3", "--tf-intra-op", "1"])
    differences = [script.difference_row(False, "MAML.train_step", "PyTorch loop", 3e-6)]
    threads = {"tf_intra_op": 1, "tf_inter_op": 2}
    path = tmp_path / "maml_step_benchmark.json"
    records.write_record(path, script.benchmark_record(args, rows, (True, differences, (32, 65)),
                                                       threads, (2.0, 2.5), 100.0))
    return records.load_record(path)


def test_record_follows_the_measurement_schema(record):
    assert record["kind"] == "measurement" and record["name"] == "maml_step_benchmark"
    assert {"date", "machine", "git_commit", "command", "threads", "load_average"} <= set(record)
    assert record["load_average"] == {"start": 2.0, "end": 2.5}
    assert record["cross_check"]["ok"] and record["cross_check"]["kink_free_tasks"] == 32
    assert len(record["rows"]) == len(FAKE)
    loop = next(r for r in record["rows"] if r["variant"] == "PyTorch loop")
    assert loop["vs_reference_wall"] == loop["vs_reference_cpu"] == 1.0
    eager = next(r for r in record["rows"] if r["variant"] == "MAML eager")
    assert eager["steps"] == 1 and eager["same_round_median"] is None
    json.dumps(record)


def test_versus_fastest_pytorch_takes_the_fastest_of_each_measure(record):
    second, first = record["versus_fastest_pytorch"]
    assert second["order"] == "2nd" and second["fastest_wall"] == "PyTorch vmap compiled"
    assert second["wall_ratio"] == pytest.approx(315 / 200, rel=0.02)
    assert second["cpu_ratio"] == pytest.approx(318 / 210, rel=0.02)
    assert second["met"] is True and second["goal"] == 1.5
    assert second["same_round_wall_ratio"] == pytest.approx(315 / 200)  # same drift each round
    # first order: vmap is fastest in wall time, the loop in CPU time
    assert (first["fastest_wall"], first["fastest_cpu"]) == ("PyTorch vmap", "PyTorch loop")
    assert first["met"] is False


def test_execution_modes_reads_eager_tf_function_and_xla(record):
    modes = costs.execution_modes(record)
    assert [(m["mode"], m["order"]) for m in modes] == [
        ("eager", "2nd"), ("tf.function", "2nd"), ("XLA", "2nd"), ("tf.function", "1st")]
    assert modes[2]["first_call_seconds"] == 36.0
    assert modes[1]["median_step_ms"] == pytest.approx(202.0)


def test_pytorch_comparison_rows(record):
    rows = costs.pytorch_comparison(record)
    assert [(r["variant"], r["order"]) for r in rows] == [
        ("PyTorch loop", "2nd"), ("PyTorch vmap compiled", "2nd"),
        ("MAML tf.function (ours)", "2nd"), ("PyTorch loop", "1st"), ("PyTorch vmap", "1st"),
        ("MAML tf.function (ours)", "1st")]
    assert rows[2]["ours faster (wall)"] == "1.00x"
    assert "| PyTorch vmap compiled | 2nd | 66.0 |" in records.markdown_table(rows)


def test_bad_input_is_refused(record):
    with pytest.raises(ValueError, match="maml_step_benchmark"):
        costs.execution_modes({"name": "meta_step_costs", "rows": []})
    with pytest.raises(ValueError, match="maml_step_benchmark"):
        costs.pytorch_comparison(["not a record"])
    with pytest.raises(ValueError, match="order must be one of"):
        costs.versus_fastest_pytorch(record["rows"], "third")
    with pytest.raises(ValueError, match="no row 'MAML tf.function'"):
        costs.versus_fastest_pytorch([r for r in record["rows"]
                                      if r["variant"] != "MAML tf.function"], "2nd")
    with pytest.raises(ValueError, match="no PyTorch row"):
        costs.versus_fastest_pytorch([r for r in record["rows"] if r["framework"] == "tf"], "1st")
    with pytest.raises(ValueError, match="goal"):
        costs.versus_fastest_pytorch(record["rows"], "2nd", goal=0)


def test_a_broken_record_names_the_field(record):
    broken = json.loads(json.dumps(record))
    del broken["rows"][0]["cpu_ms_per_step"]
    with pytest.raises(records.RecordError, match="rows\\[0\\].*cpu_ms_per_step"):
        records.check_record(broken, "maml_step_benchmark.json")
    broken = json.loads(json.dumps(record))
    broken["cross_check"]["ok"] = "yes"
    with pytest.raises(records.RecordError, match="cross_check.*'ok'"):
        records.check_record(broken, "maml_step_benchmark.json")


@pytest.mark.parametrize("argv", [["--record", "--skip-check"], ["--steps", "0"],
                                  ["--tf-intra-op", "0"]])
def test_bad_arguments_are_refused(script, argv):
    with pytest.raises(SystemExit):
        script.parse_args(argv)


def test_record_flag_defaults_to_the_committed_path(script):
    assert script.parse_args([]).record is None
    expected = records.WEIGHTS_DIR / "maml_step_benchmark.json"
    assert script.parse_args(["--record"]).record == expected


def test_the_committed_record_loads_and_passed_its_cross_check():
    path = records.WEIGHTS_DIR / "maml_step_benchmark.json"
    if not path.exists():
        pytest.skip("no committed weights/maml_step_benchmark.json yet")
    record = records.load_record(path)
    assert record["cross_check"]["ok"]
    assert {m["mode"] for m in costs.execution_modes(record)} == {"eager", "tf.function", "XLA"}
    assert any(r["variant"] == "PyTorch vmap compiled" for r in costs.pytorch_comparison(record))


def test_the_committed_record_reads_without_pytorch():
    record = records.load_record(records.WEIGHTS_DIR / "maml_step_benchmark.json")
    modes = {row["mode"] for row in costs.execution_modes(record)}
    assert {"eager", "tf.function", "XLA"} <= modes
    assert costs.pytorch_comparison(record)
    assert {v["order"] for v in record["versus_fastest_pytorch"]} == {"1st", "2nd"}
