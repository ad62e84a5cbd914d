"""Interactive widgets (ipywidgets) for the notebooks. Each builder returns the widget so the
notebook displays it; the plotting itself lives in :mod:`metalearn_helpers.plots`."""

from __future__ import annotations

import ipywidgets as widgets
