"""The TensorFlow and Keras versions the course supports, checked when ``metalearn_helpers`` is
imported (so in every notebook's first cell, before TensorFlow itself is imported).

Releases outside these ranges are not tested, and untested ones have misbehaved silently: with
TensorFlow 2.16.2 and Keras 3.6 or older, the training loop's NaN recovery restored nothing (the
checkpoint's variables were not found; ``training`` now finds them either way), and Keras 3.0-3.6
failed 4 to 25 unit tests. :data:`SUPPORTED` holds the same ranges as ``pyproject.toml`` and
``environment.yml`` (``tests/test_versions.py`` checks it), and CI tests both ends of them
(``scripts/check_oldest_stack.sh`` for the oldest stack).
"""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

# Module name -> the version range pyproject.toml (and environment.yml) require.
SUPPORTED = {"tensorflow": ">=2.16,<2.22", "keras": ">=3.7,<4"}


def installed_version(module: str) -> tuple[str, str] | None:
    """``(distribution, version)`` of the installed package providing the importable
    ``module`` (e.g. ``("tensorflow-cpu", "2.21.0")`` for ``"tensorflow"``), or None if none does."""
    try:
        return module, importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        pass
    for distribution in importlib.metadata.packages_distributions().get(module, []):
        return distribution, importlib.metadata.version(distribution)
    return None


def _within(version: str, spec: str) -> bool:
    try:
        return SpecifierSet(spec).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def check_versions() -> None:
    """Raise ImportError if the installed TensorFlow or Keras is missing or outside
    :data:`SUPPORTED`, naming what is installed, what is required and the command that fixes it."""
    problems, fixes = [], []
    for module, spec in SUPPORTED.items():
        found = installed_version(module)
        if found is None:
            problems.append(f"{module} is not installed")
            fixes.append(f'"{module}{spec}"')
        elif not _within(found[1], spec):
            problems.append(f"{found[0]} {found[1]} is installed")
            fixes.append(f'"{found[0]}{spec}"')
    if problems:
        required = ", ".join(f"{module}{spec}" for module, spec in SUPPORTED.items())
        python = f'"{sys.executable}"' if " " in sys.executable else sys.executable
        raise ImportError(
            f"metalearn_helpers needs {required} (the versions the course is tested with), "
            f"but {' and '.join(problems)}.\nFix: {python} -m pip install {' '.join(fixes)}\n"
            f"then restart Python (in Jupyter: Kernel > Restart Kernel).")
