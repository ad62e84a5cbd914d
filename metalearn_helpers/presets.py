"""Notebook presets: the ``ci`` / ``class`` / ``full`` settings of every notebook's parameters cell.

Each notebook's parameters cell (tagged ``parameters`` for papermill) holds a ``PRESETS`` table and
one variable per knob, ``None`` meaning "take the preset's value". :func:`resolve_preset` merges
them and checks every value, so a wrong preset or a wrong type fails in the first cell after the
parameters with a message that says what is allowed. The default preset comes from the
environment variable ``METALEARN_PRESET`` (the test suite sets it to ``ci``), else ``class``.
"""

from __future__ import annotations

import numbers
import os
import types

ENV_PRESET = "METALEARN_PRESET"
PRESET_NAMES = ("ci", "class", "full")


def default_preset() -> str:
    """``$METALEARN_PRESET`` or ``"class"`` (what a student who opens a notebook gets)."""
    return os.environ.get(ENV_PRESET, "class")


def _type_ok(value, reference) -> bool:
    if isinstance(reference, bool):
        return isinstance(value, bool)
    if isinstance(reference, numbers.Integral):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(reference, numbers.Real):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(reference, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(reference))


def resolve_preset(preset: str, presets: dict, **overrides) -> types.SimpleNamespace:
    """Merge a preset with explicit overrides (``None`` = keep the preset) and validate.

    Args:
        preset: ``"ci"``, ``"class"`` or ``"full"``.
        presets: ``{preset: {knob: value}}``; every preset must define the same knobs.
        **overrides: knob values from the parameters cell; ``None`` keeps the preset's value.

    Returns:
        A namespace with every knob plus ``preset``, e.g. ``config.n_way``.

    Raises:
        ValueError: unknown preset or knob. TypeError: a value of the wrong type.
    """
    if preset not in presets:
        raise ValueError(f"preset must be one of {list(presets)}, got {preset!r}.")
    config = dict(presets[preset])
    for name, value in overrides.items():
        if name not in config:
            raise ValueError(f"unknown parameter {name!r}; this notebook's knobs are "
                             f"{sorted(config)}.")
        if value is None:
            continue
        reference = config[name]
        if reference is not None and not _type_ok(value, reference):
            raise TypeError(f"parameter {name} must be a {type(reference).__name__} like "
                            f"{reference!r}, got {type(value).__name__} {value!r}.")
        config[name] = value
    return types.SimpleNamespace(preset=preset, **config)
