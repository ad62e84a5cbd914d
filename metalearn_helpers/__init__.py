"""metalearn_helpers: the code the notebooks of "Meta-learning: fast adaptation to new tasks" reuse.

Small modules, each with one job; each function's docstring names the notebook that teaches it
(CONTRIBUTING.md, "Layout", says where each kind of code goes):

- ``learners``, ``checks``: the learner protocol every algorithm follows, the shared task loss and
  meta-gradient; the package's argument checks.
- ``maml``, ``reptile``, ``protonet``, ``matching``, ``baseline``, ``meta_lstm``, ``mann``: the
  algorithms (optimisation-based, metric-based with the pre-train-then-adapt baseline,
  model-based); ``models``: the networks.
- ``downloads``, ``omniglot``, ``fashion_mnist``, ``heart_disease``, ``rdata``, ``schools``,
  ``movielens``: data sets, found, verified and cached one way; ``episodes``: task families
  (N-way K-shot episodes from Omniglot or any labelled images, sinusoid tasks).
- ``training``: the one meta-training loop (progress bar, checkpoints, resume);
  ``evaluation``: the one evaluation (per-episode scores, mean and 95 % confidence interval).
- ``experiments`` (Omniglot), ``sinusoid`` (MAML's regression), ``cross_domain`` and
  ``hospitals`` (notebook 07), ``school_models``, ``multilevel`` and ``melu`` (notebook 08),
  ``costs`` (time and memory of a meta-step).
- ``papers``: every paper setting and published number, as plain data; ``records``: the one
  run-record format, committed weights and the results tables; ``application_tables``: the
  rows of notebooks 07 and 08.
- ``presets``: the ``ci`` / ``class`` / ``full`` presets of the notebooks' parameters cells.
- ``plots``, ``image_plots``, ``widgets``: charts (learning curves included), image grids and
  interactive widgets used by the notebooks.
- ``versions``: the supported TensorFlow and Keras versions, checked on import.
"""

import os as _os
import sys as _sys

from .versions import check_versions as _check_versions

# An unsupported TensorFlow or Keras is refused with a clear ImportError before either is imported.
_check_versions()

# TensorFlow's C++ start-up chatter (CPU features, "Could not find cuda drivers" on machines
# without a GPU) is noise in a classroom. Part of it is printed before TensorFlow reads
# TF_CPP_MIN_LOG_LEVEL, so TensorFlow is imported (and its CPU device created) with the process's
# stderr pointed at /dev/null; Python exceptions still propagate. Import metalearn_helpers before
# tensorflow to benefit. A program that imported tensorflow first keeps TensorFlow unstarted, so
# it can still configure devices, threads or a multi-worker strategy (metalearn_helpers.distributed).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly() -> None:
    saved, devnull = _os.dup(2), _os.open(_os.devnull, _os.O_WRONLY)
    _os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.constant(0.0) + 0.0  # creates the CPU device, which logs too
        # oneDNN logs once per process, at ERROR level, that it leaves integer ops to Eigen on
        # CPUs without AVX-512 (first seen when RL² transposes its int32 actions, notebook 09).
        tf.transpose(tf.zeros([1, 1], tf.int32))
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


if "tensorflow" not in _sys.modules:
    _import_tensorflow_quietly()

__version__ = "0.1.0"
