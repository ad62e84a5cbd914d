"""Notebook 03's sinusoid explorer (widgets.maml_adaptation_explorer): it draws, and typed x
positions replace the sampled points or give a message, not an exception."""

from metalearn_helpers.maml import MAML
from metalearn_helpers.models import sinusoid_mlp
from metalearn_helpers.widgets import maml_adaptation_explorer


def test_typed_positions_redraw_or_explain():
    maml = MAML(sinusoid_mlp(hidden=(8,)), inner_lr=0.01, task_type="regression")
    explorer = maml_adaptation_explorer({"MAML": (maml, 0.01)}, k_shot=3, max_steps=3)
    assert "image/png" in explorer.initial_view
    controls = {c.description: c for c in explorer.children[0].children}
    out = explorer.children[1]
    controls["x positions"].value = "-4, -1.5; 2"
    assert out.outputs[0]["output_type"] == "display_data"  # a figure, not a message
    controls["x positions"].value = "-4, two"
    assert "Could not read the x positions" in out.outputs[0]["text"]
