"""metalearn_helpers.presets: resolve_preset merges a preset with the parameters cell."""

from __future__ import annotations

import pytest

from metalearn_helpers.presets import ENV_PRESET, default_preset, resolve_preset

PRESETS = {
    "ci": dict(seed=0, n_way=5, meta_lr=0.001, first_order=True, model="conv4",
               hidden=(40, 40), checkpoint=None),
    "class": dict(seed=0, n_way=5, meta_lr=0.001, first_order=False, model="conv4",
                  hidden=(40, 40), checkpoint=None),
    "full": dict(seed=1, n_way=20, meta_lr=0.0005, first_order=False, model="conv4",
                 hidden=(40, 40), checkpoint=None),
}


def test_preset_values():
    config = resolve_preset("full", PRESETS)
    assert vars(config) == dict(preset="full", **PRESETS["full"])
    assert resolve_preset("ci", PRESETS).first_order is True


def test_none_keeps_the_preset_value():
    config = resolve_preset("class", PRESETS, seed=None, n_way=None, meta_lr=None,
                            first_order=None, model=None, hidden=None, checkpoint=None)
    assert vars(config) == dict(preset="class", **PRESETS["class"])


def test_overrides():
    config = resolve_preset("ci", PRESETS, seed=7, n_way=20, first_order=False, model="resnet",
                            hidden=[64, 64], checkpoint="runs/x.keras")
    assert (config.seed, config.n_way, config.first_order, config.model) == (7, 20, False,
                                                                             "resnet")
    assert config.hidden == [64, 64] and config.checkpoint == "runs/x.keras"
    assert config.meta_lr == 0.001  # not overridden
    assert PRESETS["ci"]["seed"] == 0  # the table itself is not modified


def test_int_accepted_for_float_knob():
    assert resolve_preset("ci", PRESETS, meta_lr=1).meta_lr == 1


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"preset must be one of \['ci', 'class', 'full'\], "
                                         r"got 'paper'"):
        resolve_preset("paper", PRESETS)


def test_unknown_knob():
    with pytest.raises(ValueError, match=r"unknown parameter 'nway'; this notebook's knobs are "
                                         r"\['checkpoint', 'first_order', 'hidden', "):
        resolve_preset("ci", PRESETS, nway=5)


@pytest.mark.parametrize("knob, value, fragment", [
    ("n_way", "5", "parameter n_way must be a int like 5, got str '5'"),
    ("n_way", True, "parameter n_way must be a int like 5, got bool True"),
    ("n_way", 5.0, "got float 5.0"),
    ("meta_lr", "0.01", "parameter meta_lr must be a float like 0.001, got str"),
    ("meta_lr", True, "got bool True"),
    ("first_order", 1, "parameter first_order must be a bool like True, got int 1"),
    ("model", 4, "parameter model must be a str like 'conv4'"),
    ("hidden", 40, "parameter hidden must be a tuple"),
])
def test_wrong_type(knob, value, fragment):
    with pytest.raises(TypeError) as raised:
        resolve_preset("ci", PRESETS, **{knob: value})
    assert fragment in str(raised.value)


def test_default_preset(monkeypatch):
    monkeypatch.delenv(ENV_PRESET, raising=False)
    assert default_preset() == "class"
    monkeypatch.setenv(ENV_PRESET, "full")
    assert default_preset() == "full"
