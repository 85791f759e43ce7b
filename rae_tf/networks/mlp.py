"""Fully connected encoder / decoder (MaskAAE's MNIST nets: 4 x Dense 1024 ReLU)."""
import math

import keras

from rae_tf.networks.common import KERNEL_INIT, maybe_sn


def _dense(units, sn, activation=None):
  return maybe_sn(keras.layers.Dense(units, activation=activation,
                                     kernel_initializer=KERNEL_INIT), sn)


def build_encoder(input_shape, output_dim, *, width, depth, spectral_norm=False,
                  name="encoder"):
  """x [B, *input_shape] -> Flatten -> depth x Dense(width, relu) -> Dense(output_dim)."""
  inputs = keras.Input(tuple(input_shape))
  h = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
  for _ in range(depth):
    h = _dense(width, spectral_norm, "relu")(h)
  return keras.Model(inputs, _dense(output_dim, spectral_norm)(h), name=name)


def build_decoder(latent_dim, output_shape, *, width, depth, spectral_norm=False,
                  name="decoder"):
  """z -> depth x Dense(width, relu) -> Dense(prod(shape)) -> Reshape (logits)."""
  inputs = keras.Input((latent_dim,))
  h = inputs
  for _ in range(depth):
    h = _dense(width, spectral_norm, "relu")(h)
  h = _dense(math.prod(output_shape), spectral_norm)(h)
  if len(output_shape) > 1:
    h = keras.layers.Reshape(tuple(output_shape))(h)
  return keras.Model(inputs, h, name=name)


def build_critic(input_dim, *, width=512, depth=4, name="critic"):
  """A latent critic: depth x Dense(width, relu) -> Dense(1), glorot-normal init."""
  return build_encoder((input_dim,), 1, width=width, depth=depth, name=name)
