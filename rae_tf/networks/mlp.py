"""Fully connected encoder / decoder (MaskAAE's MNIST nets: 4 x Dense 1024, ReLU)."""
import math
from typing import Sequence

import keras

from rae_tf.networks.common import KERNEL_INIT, maybe_sn


def dense(units: int, spectral_norm: bool, activation=None) -> keras.layers.Layer:
  """A glorot-normal Dense layer, spectrally normalised when asked.

  Args:
    units: output units.
    spectral_norm: wrap in SpectralNormalization.
    activation: Keras activation, None for linear.

  Returns:
    The layer.
  """
  return maybe_sn(keras.layers.Dense(units, activation=activation,
                                     kernel_initializer=KERNEL_INIT), spectral_norm)


def build_encoder(input_shape: Sequence[int], output_dim: int, *, width: int, depth: int,
                  spectral_norm: bool = False, batch_norm: bool = True,
                  name: str = "encoder") -> keras.Model:
  """x [B, *input_shape] -> Flatten -> depth x Dense(width, relu) -> Dense(output_dim).

  Args:
    input_shape: shape of one example (vector or image).
    output_dim: output units (linear).
    width: hidden units per layer.
    depth: number of hidden layers.
    spectral_norm: wrap every Dense in SpectralNormalization.
    batch_norm: unused; the MLP has no normalisation layers.
    name: model name.

  Returns:
    A functional keras.Model.
  """
  del batch_norm
  inputs = keras.Input(tuple(input_shape), dtype="float32")
  h = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
  for _ in range(depth):
    h = dense(width, spectral_norm, "relu")(h)
  return keras.Model(inputs, dense(output_dim, spectral_norm)(h), name=name)


def build_decoder(latent_dim: int, output_shape: Sequence[int], *, width: int, depth: int,
                  spectral_norm: bool = False, batch_norm: bool = True,
                  name: str = "decoder") -> keras.Model:
  """z [B, latent_dim] -> depth x Dense(width, relu) -> Dense(prod) -> Reshape (logits).

  Args:
    latent_dim: input units.
    output_shape: shape of one example (vector or image).
    width: hidden units per layer.
    depth: number of hidden layers.
    spectral_norm: wrap every Dense in SpectralNormalization.
    batch_norm: unused; the MLP has no normalisation layers.
    name: model name.

  Returns:
    A functional keras.Model with linear outputs [B, *output_shape].
  """
  del batch_norm
  inputs = keras.Input((latent_dim,), dtype="float32")
  h = inputs
  for _ in range(depth):
    h = dense(width, spectral_norm, "relu")(h)
  h = dense(math.prod(output_shape), spectral_norm)(h)
  if len(output_shape) > 1:
    h = keras.layers.Reshape(tuple(output_shape))(h)
  return keras.Model(inputs, h, name=name)
