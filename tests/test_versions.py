"""Tests of the supported-versions guard (metalearn_helpers.versions) and of the checkpoint
variable discovery that Keras 3.6 and older broke silently (metalearn_helpers.training)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from metalearn_helpers import training, versions

ROOT = Path(__file__).resolve().parents[1]


def _floor(spec: str) -> Version:
    (lower,) = [s for s in SpecifierSet(spec) if s.operator == ">="]
    return Version(lower.version)


# -- one place for the ranges ---------------------------------------------------------------------
def test_supported_ranges_are_pyprojects_and_environment_ymls():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    environment = [line.strip().removeprefix("- ")
                   for line in (ROOT / "environment.yml").read_text().splitlines()]
    for module, spec in versions.SUPPORTED.items():
        assert f"{module}{spec}" in dependencies
        assert f"{module}{spec}" in environment


def test_oldest_stack_script_installs_the_floors():
    script = (ROOT / "scripts" / "check_oldest_stack.sh").read_text()
    (pins,) = re.findall(r"^OLDEST_STACK=\((.*)\)$", script, re.M)
    pinned = dict(re.findall(r'"([\w-]+)==([\w.]+)"', pins))
    assert sorted(pinned) == sorted(versions.SUPPORTED)
    for module, spec in versions.SUPPORTED.items():
        version, floor = Version(pinned[module]), _floor(spec)
        assert version in SpecifierSet(spec)
        assert version.release[:len(floor.release)] == floor.release, (module, version, floor)


def test_installed_versions_are_found_and_supported():
    assert versions.installed_version("tensorflow")[1] == tf.__version__
    assert versions.installed_version("keras")[1] == keras.__version__
    assert versions.installed_version("no_such_module_metalearn") is None
    versions.check_versions()


# -- the guard ------------------------------------------------------------------------------------
def _pretend_installed(monkeypatch, **installed):
    """Make the version lookup report ``module=(distribution, version)`` (None: not installed);
    other modules keep their real versions."""
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version",
                        lambda module: installed[module] if module in installed else real(module))


def test_keras_3_6_is_refused_naming_versions_and_fix(monkeypatch):
    _pretend_installed(monkeypatch, keras=("keras", "3.6.0"))
    with pytest.raises(ImportError) as error:
        versions.check_versions()
    message = str(error.value)
    assert "keras 3.6.0 is installed" in message
    assert "keras>=3.7,<4" in message and "tensorflow>=2.16,<2.22" in message
    assert f'{sys.executable} -m pip install "keras>=3.7,<4"' in message
    assert "tensorflow 2" not in message  # the installed TensorFlow is fine: not blamed


@pytest.mark.parametrize("module, version, supported", [
    ("keras", "3.0.0", False), ("keras", "3.6.0", False), ("keras", "3.7.0", True),
    ("keras", "3.15.1", True), ("keras", "3.16.0.dev2026120703", True), ("keras", "4.0.0", False),
    ("tensorflow", "2.15.1", False), ("tensorflow", "2.16.2", True),
    ("tensorflow", "2.21.0", True), ("tensorflow", "2.22.0rc1", False),
    ("tensorflow", "2.22.0", False), ("tensorflow", "not-a-version", False),
])
def test_range_boundaries(monkeypatch, module, version, supported):
    _pretend_installed(monkeypatch, **{module: (module, version)})
    if supported:
        versions.check_versions()
    else:
        with pytest.raises(ImportError, match=f"{module} {re.escape(version)} is installed"):
            versions.check_versions()


def test_fix_names_the_installed_distribution_and_every_problem(monkeypatch):
    _pretend_installed(monkeypatch, tensorflow=("tensorflow-cpu", "2.15.0"), keras=None)
    with pytest.raises(ImportError) as error:
        versions.check_versions()
    message = str(error.value)
    assert "tensorflow-cpu 2.15.0 is installed and keras is not installed" in message
    assert 'install "tensorflow-cpu>=2.16,<2.22" "keras>=3.7,<4"' in message


def test_importing_the_package_with_keras_3_6_fails_before_tensorflow_loads(tmp_path):
    """End to end, in a fresh interpreter: a Keras 3.6 distribution first on the path."""
    dist_info = tmp_path / "keras-3.6.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: keras\nVersion: 3.6.0\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = subprocess.run(
        [sys.executable, "-c", "import sys\ntry:\n    import metalearn_helpers\nexcept ImportError "
         "as e:\n    print(e, 'tensorflow' in sys.modules)\n    sys.exit(3)"],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "keras 3.6.0 is installed" in result.stdout
    assert result.stdout.rstrip().endswith("False")  # refused before TensorFlow was imported


# -- checkpoint variable discovery ----------------------------------------------------------------
def _model_and_optimizer():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_checkpoint_variables_include_every_model_and_optimizer_variable():
    model, optimizer = _model_and_optimizer()
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    found = training._variables(checkpoint)
    expected = [step, *model.variables, *optimizer.variables]
    assert len(found) == len(expected)  # each once
    assert {id(v) for v in found} == {id(v) for v in expected}


def test_checkpoint_variables_do_not_depend_on_keras_variable_class(monkeypatch):
    """Keras 3.6 and older: the object graph's variables were not keras.Variable instances."""
    model, optimizer = _model_and_optimizer()
    monkeypatch.setattr(keras, "Variable", type("UnrelatedVariable", (), {}))
    found = training._variables(tf.train.Checkpoint(model=model, optimizer=optimizer))
    assert {id(v) for v in found} == {id(v) for v in [*model.variables, *optimizer.variables]}


def test_checkpoint_without_variables_fails_loudly():
    with pytest.raises(RuntimeError, match=r"found no variables in the checkpoint of \['model'\]"):
        training._variables(tf.train.Checkpoint(model=keras.Sequential()))
