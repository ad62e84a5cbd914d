"""metalearn_helpers: the code the notebooks of "Meta-learning: fast adaptation to new tasks" reuse.

Small modules, each with one job; each function's docstring names the notebook that teaches it:

- ``omniglot``: find, verify, decode and cache Omniglot; the evaluation protocols' splits.
- ``episodes``: N-way K-shot Omniglot episodes and sinusoid tasks, one sampling interface.
- ``evaluation``: mean score with a 95 % confidence interval over test episodes.
- ``models``, ``maml``, ``reptile``: the networks and the optimisation-based meta-learners.
- ``protonet``, ``matching``, ``baseline``: metric-based learners (Prototypical and Matching
  Networks) and the pre-train-then-adapt baseline they are measured against.
- ``meta_lstm``, ``mann``: model-based learners (the Meta-Learner LSTM, a memory-augmented
  network).
- ``training``: the one meta-training loop (progress bar, checkpoints, resume) every algorithm uses.
- ``experiments``: Omniglot experiments with the papers' settings; committed run records.
- ``sinusoid``: MAML's sinusoid regression experiment, its pretrained baseline and evaluation.
- ``presets``: the ``ci`` / ``class`` / ``full`` presets of the notebooks' parameters cells.
- ``plots``, ``widgets``: figures and interactive widgets used by the notebooks.
- ``versions``: the supported TensorFlow and Keras versions, checked on import.
"""

import os as _os

from .versions import check_versions as _check_versions

# An unsupported TensorFlow or Keras is refused with a clear ImportError before either is imported.
_check_versions()

# TensorFlow's C++ start-up chatter (CPU features, "Could not find cuda drivers" on machines
# without a GPU) is noise in a classroom. Part of it is printed before TensorFlow reads
# TF_CPP_MIN_LOG_LEVEL, so TensorFlow is imported (and its CPU device created) with the process's
# stderr pointed at /dev/null; Python exceptions still propagate. Import metalearn_helpers before
# tensorflow to benefit.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly() -> None:
    saved, devnull = _os.dup(2), _os.open(_os.devnull, _os.O_WRONLY)
    _os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.constant(0.0) + 0.0  # creates the CPU device, which logs too
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


_import_tensorflow_quietly()

__version__ = "0.1.0"
