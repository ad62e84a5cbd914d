"""metalearn_helpers: the code the notebooks of "Meta-learning: fast adaptation to new tasks" reuse.

Small modules, each with one job; each function's docstring names the notebook that teaches it:

- ``omniglot``: find, verify, decode and cache Omniglot; the evaluation protocols' splits.
- ``episodes``: N-way K-shot Omniglot episodes and sinusoid tasks, one sampling interface.
- ``evaluation``: mean score with a 95 % confidence interval over test episodes.
- ``presets``: the ``ci`` / ``class`` / ``full`` presets of the notebooks' parameters cells.
- ``plots``, ``widgets``: figures and interactive widgets used by the notebooks.
"""

import os as _os

# TensorFlow's C++ start-up chatter (CPU features) is noise in a classroom.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
