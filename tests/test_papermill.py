"""papermill runs of the notebooks, as the README documents them (``-p preset ci -p knob value``).

Two notebooks run through papermill's Python API with the ``ci`` preset and one overridden knob;
the injected-parameters cell and the outputs are checked. Bad parameters (unknown preset, wrong
type, impossible episode) must fail with papermill naming the cell and carrying our message.
Notebook 02 refuses ``n_way=1000`` at once (it used to draw a 1000-row figure for minutes).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from test_notebook_outputs import widget_texts

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(autouse=True)
def inline_figures(monkeypatch):
    """Kernels draw inline, as for a student (conftest sets MPLBACKEND=Agg for the unit tests)."""
    monkeypatch.delenv("MPLBACKEND", raising=False)


def run(tmp_path, notebook, **parameters):
    """Execute ``notebook`` with papermill; return the executed notebook."""
    output = tmp_path / notebook
    papermill.execute_notebook(str(NOTEBOOKS / notebook), str(output),
                               parameters={"preset": "ci", **parameters}, kernel_name="python3",
                               cwd=str(NOTEBOOKS), progress_bar=False, log_output=False,
                               execution_timeout=600)
    return nbformat.read(output, as_version=4)


def injected(nb) -> tuple[int, str]:
    """(index, source) of papermill's injected-parameters cell, which must follow ``parameters``."""
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    index = next(i for i, t in enumerate(tags) if "injected-parameters" in t)
    assert "parameters" in tags[index - 1]
    return index, nb.cells[index].source


def text_of(cell) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for o in cell.outputs)


@pytest.mark.parametrize("notebook, knob, value", [("01_concepts.ipynb", "k_shot", 7),
                                                   ("02_task_sampling.ipynb", "n_way", 10)])
def test_papermill_runs_a_notebook_with_an_overridden_knob(tmp_path, notebook, knob, value):
    nb = run(tmp_path, notebook, **{knob: value})
    index, source = injected(nb)
    assert 'preset = "ci"' in source and f"{knob} = {value}" in source
    config = next(text_of(cell) for cell in nb.cells[index + 1:]
                  if "config = resolve_preset(" in cell.source)
    assert f"{knob}={value}" in config and "preset='ci'" in config
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    assert not widget_texts(nb)


@pytest.mark.parametrize("parameters, error, message", [
    (dict(preset="huge"), "ValueError", "preset must be one of ['ci', 'class', 'full']"),
    (dict(n_way="five"), "TypeError", "parameter n_way must be a int like 5, got str 'five'"),
    (dict(n_way=1000), "ValueError", "n_way must be between 2 and 26 in this notebook, got 1000"),
], ids=["unknown preset", "wrong type", "impossible n_way"])
def test_bad_parameters_fail_naming_the_cell_and_the_problem(tmp_path, parameters, error,
                                                             message):
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        run(tmp_path, "02_task_sampling.ipynb", **parameters)
    assert failure.value.ename == error and message in failure.value.evalue
    assert f'In [{failure.value.exec_count}]' in str(failure.value)
    assert "config = resolve_preset(" in failure.value.source  # the cell after the parameters
    nb = nbformat.read(tmp_path / "02_task_sampling.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and c.source == failure.value.source]
    assert any(o.output_type == "error" and message in o.evalue for o in failed[0].outputs)
