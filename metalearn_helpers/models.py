"""The networks of the papers the course reproduces.

Defined in notebooks ``03_maml_sinusoid`` (the MLP) and ``04_maml_omniglot`` (Conv-4).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


class BatchStatNorm(keras.layers.Layer):
    """Batch normalisation that always uses the statistics of the current batch.

    This is how MAML's code (Finn et al. 2017, arXiv 1703.03400) normalises: the batch of the task
    at hand is normalised by its own mean and variance, in training and at test time, and no
    running averages carry information from one task to the next.

    Written out instead of using ``keras.layers.BatchNormalization`` because on the TensorFlow
    backend the latter computes the variance around ``stop_gradient(mean)`` (``tf.nn.moments``):
    first derivatives are unaffected, but second-order MAML meta-gradients come out wrong
    (measured 47 % off on a Conv-4; CONTRIBUTING.md, "Correctness traps"). Here the variance is
    ``mean(square(x - mean))`` with nothing stopped, so second derivatives are exact.

    Args:
        epsilon: added to the variance before the square root.
    """

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        axes = tuple(range(len(x.shape) - 1))
        mean = ops.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        variance = ops.mean(ops.square(centred), axis=axes, keepdims=True)
        # Scale per channel first: one multiplication of the whole tensor instead of two. Same
        # function; 8-9 % less CPU per second-order Conv-4 meta-step (meta-batch 32, three
        # interleaved runs of 10-20 steps against the two-multiplication form, 2026-12-07).
        return centred * (ops.rsqrt(variance + self.epsilon) * self.gamma) + self.beta

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def conv4(n_way: int | None, image_shape=(28, 28, 1), filters: int = 64,
          downsample: str = "stride", norm: str = "batch_stat",
          name: str = "conv4") -> keras.Model:
    """The 4-block convolutional network of the few-shot literature.

    Each block: 3x3 convolution with ``filters`` channels, :class:`BatchStatNorm`, ReLU, then
    2x downsampling. ``downsample="stride"`` uses stride-2 convolutions and averages the final
    feature map over space, as MAML does for Omniglot (Finn et al. 2017, section 5.2 and its code);
    ``"maxpool"`` uses 2x2 max-pooling (rounding down) and flattens, as Vinyals et al. 2016 and
    Snell et al. 2017 do: a 28x28 image becomes a 64-d embedding. A ``Dense(n_way)`` head gives logits; ``n_way=None`` returns the embedding network.

    ``norm="batch_stat"`` normalises with :class:`BatchStatNorm` (every batch by its own
    statistics, as MAML's code does); ``norm="running"`` uses Keras' ``BatchNormalization``, batch
    statistics in training and running averages at test time (``training=False``), as the
    metric-based papers' code does (PyTorch's default momentum 0.1, i.e. Keras ``momentum=0.9``).
    Built under a ``tf.distribute`` strategy's scope, its batch statistics are those of the whole
    meta-batch across all replicas (``synchronized``), as on one device.
    """
    if downsample not in ("stride", "maxpool"):
        raise ValueError(f"downsample must be 'stride' or 'maxpool', got {downsample!r}.")
    if norm not in ("batch_stat", "running"):
        raise ValueError(f"norm must be 'batch_stat' or 'running', got {norm!r}.")
    layers = [keras.Input(image_shape)]
    for block in range(4):
        strides = 2 if downsample == "stride" else 1
        layers += [
            keras.layers.Conv2D(filters, 3, strides=strides, padding="same",
                                name=f"conv{block + 1}"),
            (BatchStatNorm(name=f"norm{block + 1}") if norm == "batch_stat" else
             keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                             synchronized=tf.distribute.has_strategy(),
                                             name=f"norm{block + 1}")),
            keras.layers.ReLU(),
        ]
        if downsample == "maxpool":
            layers.append(keras.layers.MaxPooling2D(2))  # 28 -> 14 -> 7 -> 3 -> 1: 64-d output
    layers.append(keras.layers.GlobalAveragePooling2D() if downsample == "stride"
                  else keras.layers.Flatten())
    if n_way is not None:
        layers.append(keras.layers.Dense(n_way, name="logits"))
    return keras.Sequential(layers, name=name)


def sinusoid_mlp(hidden: tuple[int, ...] = (40, 40), name: str = "mlp") -> keras.Model:
    """The 1-40-40-1 ReLU regressor of MAML's sinusoid experiment (Finn et al. 2017, 5.1)."""
    layers = [keras.Input((1,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name=name)
