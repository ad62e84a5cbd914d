"""Figures used across the notebooks (matplotlib). Each function names the notebook that
introduces it and returns the matplotlib ``Figure`` so notebooks can save or tweak it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
