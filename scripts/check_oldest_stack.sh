#!/usr/bin/env bash
# The oldest stack the course supports: pyproject.toml's floors, TensorFlow 2.16 with Keras 3.7
# (numpy then resolves to 1.26, as TensorFlow 2.16 needs numpy < 2). Installs it in .venv-oldest/
# (git-ignored; reused when present), then runs the unit tests and notebook 03 under nbval.
# .ci/run calls it after testing the newest stack; run it locally the same way:
#   bash scripts/check_oldest_stack.sh          (extra arguments go to pytest, e.g. -x)
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# tests/test_versions.py checks that these are the floors of metalearn_helpers.versions.SUPPORTED.
OLDEST_STACK=("tensorflow==2.16.2" "keras==3.7.0")

python3 -m venv .venv-oldest
.venv-oldest/bin/pip install -q -e ".[dev]" "${OLDEST_STACK[@]}"
.venv-oldest/bin/python -c 'import metalearn_helpers, keras, numpy, sys, tensorflow as tf
print(f"oldest stack: Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, "
      f"Keras {keras.__version__}, numpy {numpy.__version__}")'
# --nbval-current-env: the notebook runs in this venv's Python, whatever kernels are installed.
# The browser tests drive JupyterLab's front end, the same on both stacks: the newest run has them.
.venv-oldest/bin/pytest tests notebooks/03_maml_sinusoid.ipynb --nbval-current-env -m "not browser" "$@"
