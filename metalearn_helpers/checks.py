"""Argument checks shared by the whole package: one message style, one exception policy.

A value of the wrong type raises ``TypeError``; a value of the right type outside what is accepted
raises ``ValueError``. Every message names the argument, what it got and what it accepts.
"""

from __future__ import annotations

import numbers


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int``; it must be an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def check_ints(minimum: int = 1, **values) -> None:
    """:func:`check_int` for several named values: ``check_ints(n_way=5, k_shot=1)``."""
    for name, value in values.items():
        check_int(name, value, minimum)


def check_positive(name: str, value) -> None:
    """``value`` must be a real number (not a bool) greater than 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__} "
                        f"{value!r}.")
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")


def check_built_model(name: str, model) -> None:
    """``model`` must be a built ``keras.Model`` with trainable weights (give it an ``Input``)."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"{name} must be a keras.Model, got {type(model).__name__}.")
    if not model.built or not model.trainable_variables:
        raise ValueError(f"{name} must be built (give it an Input) and have trainable weights.")


def check_choice(name: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}.")
