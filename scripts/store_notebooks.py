"""Execute notebooks and store them in the form JupyterLab saves them.

    METALEARN_PRESET=class python scripts/store_notebooks.py notebooks/0[1-6]_*.ipynb
    python scripts/store_notebooks.py --no-execute notebooks/*.ipynb   # only normalise

Each notebook is executed in place with nbclient (the preset comes from ``$METALEARN_PRESET``,
default ``class``: what a student who opens it gets), then normalised so that opening it in
JupyterLab does not mark it modified: the kernel's display name as the installed kernel spec
gives it ("Python 3 (ipykernel)"), consecutive stream outputs merged and carriage returns
applied (JupyterLab's output model does both), whole numbers stored as integers (JupyterLab
reads ``600.0`` as ``600``), and the saved widget state reduced to the widgets that an output
still shows (closed progress bars leave nothing behind). The notebook is written as
``nbformat`` writes it (what JupyterLab's server writes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def apply_carriage_returns(text: str) -> str:
    """Text as JupyterLab's output model keeps it: after ``\r`` the line is overwritten from
    its start (``fixCarriageReturn`` in @jupyterlab/outputarea); a final ``\r`` stays."""
    body, tail = (text[:-1], "\r") if text.endswith("\r") else (text, "")
    lines = []
    for line in re.sub(r"\r+\n", "\n", body).split("\n"):
        shown, *overwrites = line.split("\r")
        for part in overwrites:
            shown = part + shown[len(part):]
        lines.append(shown)
    return "\n".join(lines) + tail


def merge_streams(outputs: list) -> list:
    """Consecutive stream outputs of one name merged into one, as JupyterLab merges them."""
    merged = []
    for output in outputs:
        if (output.get("output_type") == "stream" and merged
                and merged[-1].get("output_type") == "stream"
                and merged[-1]["name"] == output["name"]):
            merged[-1]["text"] += output["text"]
        else:
            merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            output["text"] = apply_carriage_returns(output["text"])
    return merged


def whole_numbers_as_ints(value):
    """``600.0`` -> ``600`` everywhere (JSON numbers as JavaScript reads and writes them)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_ints(v) for v in value]
    return value


def shown_widget_state(nb) -> dict | None:
    """The saved widget state restricted to widgets reachable from a displayed widget view."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    roots = [o["data"][WIDGET_VIEW]["model_id"] for cell in nb.cells if cell.cell_type == "code"
             for o in cell.outputs if WIDGET_VIEW in o.get("data", {})]
    keep, todo = set(), [r for r in roots if r in state]
    while todo:
        model_id = todo.pop()
        if model_id not in keep:
            keep.add(model_id)
            todo += [r for r in re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[model_id]))
                     if r in state]
    if not keep:
        return None
    return {"state": {k: v for k, v in state.items() if k in keep}, "version_major": 2,
            "version_minor": 0}


def normalise(nb, display_name: str):
    """``nb`` in the form JupyterLab saves it (see the module docstring)."""
    nb.metadata.setdefault("kernelspec", {})["display_name"] = display_name
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    state = shown_widget_state(nb)
    nb.metadata.pop("widgets", None)
    if state is not None:
        nb.metadata["widgets"] = {WIDGET_STATE: state}
    return nbformat.from_dict(whole_numbers_as_ints(nb))


def kernel_display_name(name: str = "python3") -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().get_kernel_spec(name).display_name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--no-execute", action="store_true", help="only normalise")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    display_name = kernel_display_name()
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if not args.no_execute:
            from nbclient import NotebookClient

            start = time.perf_counter()
            NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            print(f"{path}: executed in {time.perf_counter() - start:.0f} s "
                  f"({os.environ.get('METALEARN_PRESET', 'class')} preset)", file=sys.stderr)
        nbformat.write(normalise(nb, display_name), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
