"""Committed notebooks read well without a kernel and open in JupyterLab unmodified.

GitHub, static viewers and untrusted notebooks show a widget's ``text/plain`` fallback: a
progress bar stuck at ``0%|`` or an explorer as ``VBox(children=...``. The course's progress
bars end as a plain line (:mod:`metalearn_helpers.progress`) and its explorers carry a picture
(:func:`metalearn_helpers.widgets.figure_widget`); ``scripts/store_notebooks.py`` stores the
notebooks in the form JupyterLab saves them. These tests fail when a notebook was stored
another way.
"""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_TEXT = re.compile(r"[VH]Box\(children=|\b0%\||IntSlider\(|FloatProgress\(")

sys.path.insert(0, str(ROOT / "scripts"))
import store_notebooks  # noqa: E402


def widget_texts(nb) -> list[str]:
    """``cell N: text`` for every output text that is a widget's text repr."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
            match = WIDGET_TEXT.search(text)
            if match:
                found.append(f"cell {index}: {text[max(0, match.start() - 20):match.end() + 40]!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_text_in_committed_outputs(path):
    found = widget_texts(nbformat.read(path, as_version=4))
    assert not found, (f"{path.name} shows widget text reprs where a reader expects a figure or "
                       f"a final line: {found[:5]}; re-run it with scripts/store_notebooks.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_widget_view_has_a_picture_or_a_caption(path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if store_notebooks.WIDGET_VIEW in data:
                assert "image/png" in data or "Interactive explorer" in data["text/plain"], (
                    f"{path.name}, cell {index}: a widget without a static fallback")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_in_the_form_jupyterlab_saves(path):
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    display_name = store_notebooks.kernel_display_name()
    expected = nbformat.writes(store_notebooks.normalise(nbformat.reads(text, as_version=4),
                                                         display_name))
    assert text == expected + "\n" or text == expected, (
        f"{path.name} is not stored as JupyterLab saves it (kernel name "
        f"{nb.metadata.get('kernelspec', {}).get('display_name')!r}, merged streams, integer "
        f"numbers, widget state of shown widgets only): run "
        f"python scripts/store_notebooks.py --no-execute {path.relative_to(ROOT)}")


def test_widget_text_is_found():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("display_data", {"text/plain": "VBox(children=(HBox(..."}),
        nbformat.v4.new_output("stream", name="stderr",
                               text="evaluating:   0%|          | 0/600")])])
    assert len(widget_texts(nb)) == 2


def test_normalise_merges_streams_and_keeps_shown_widgets():
    view = {store_notebooks.WIDGET_VIEW: {"model_id": "aa", "version_major": 2,
                                          "version_minor": 0}, "text/plain": "x"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="a\rb"),
        nbformat.v4.new_output("stream", name="stdout", text="c\n"),
        nbformat.v4.new_output("display_data", view)])])
    nb.metadata["widgets"] = {store_notebooks.WIDGET_STATE: {"state": {
        "aa": {"state": {"children": ["IPY_MODEL_bb"], "value": 600.0}},
        "bb": {"state": {}}, "cc": {"state": {"closed": "progress bar"}}}}}
    out = store_notebooks.normalise(nb, "Python 3 (ipykernel)")
    assert [o.get("text") for o in out.cells[0].outputs][:1] == ["bc\n"]
    state = out.metadata.widgets[store_notebooks.WIDGET_STATE]["state"]
    assert sorted(state) == ["aa", "bb"] and json.dumps(state["aa"]).count("600}") == 1
    assert out.metadata.kernelspec.display_name == "Python 3 (ipykernel)"
