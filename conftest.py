"""pytest configuration shared by the unit tests and nbval.

Notebooks executed by nbval inherit this process's environment, so setting the preset here makes
every notebook run its fast ``ci`` preset under ``pytest`` (a student who opens a notebook gets
``class``). Set METALEARN_PRESET yourself to test another preset.
"""

import os

os.environ.setdefault("METALEARN_PRESET", "ci")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
