"""The InfoGAN-style net of the FlexAE and 2-stage VAE code (width=64: 64/128/1024 units).

Encoder: Conv(w, 4x4, s2) ReLU -> Conv(2w, 4x4, s2) BN ReLU -> Flatten -> Dense(16w) BN
ReLU -> Dense(output_dim).
Decoder: Dense(16w) BN ReLU -> Dense(2w (s/4)^2) BN ReLU -> Reshape -> ConvT(2w, 4x4, s2)
BN ReLU -> ConvT(w, 4x4, s2) BN ReLU -> Conv(C, 3x3, s1) (logits). All 'same' padding.
"""
from typing import Sequence

import keras

from rae_tf.errors import ConfigError
from rae_tf.networks.common import Conv2D, Conv2DTranspose, bn_relu, image_shape, maybe_sn


def _check(shape):
  shape = image_shape("infogan", shape)
  if shape[0] % 4:
    raise ConfigError(f"--arch=infogan needs square images with a size divisible by 4 "
                      f"(e.g. 28x28, 32x32, 64x64), got {shape[0]}x{shape[1]}; "
                      "use --arch=mlp or resize the data")
  return shape


def build_encoder(input_shape: Sequence[int], output_dim: int, *, width: int, depth: int = 4,
                  spectral_norm: bool = False, batch_norm: bool = True,
                  name: str = "encoder") -> keras.Model:
  """Two stride-2 convs -> Dense(16w) -> Dense(output_dim), linear.

  Args:
    input_shape: (H, W, C), H == W divisible by 4.
    output_dim: output units.
    width: channels of the first conv (w, 2w, then 16w dense units).
    depth: unused; the layout is fixed.
    spectral_norm: wrap every Conv2D / Dense in SpectralNormalization.
    batch_norm: batch normalisation before each hidden ReLU (False: ReLU only).
    name: model name.

  Returns:
    A functional keras.Model [B, H, W, C] -> [B, output_dim].
  """
  del depth
  inputs = keras.Input(_check(input_shape), dtype="float32")
  h = maybe_sn(Conv2D(width, 4, strides=2, padding="same"), spectral_norm)(inputs)
  h = keras.layers.ReLU()(h)
  h = maybe_sn(Conv2D(2 * width, 4, strides=2, padding="same"), spectral_norm)(h)
  h = keras.layers.Flatten()(bn_relu(h, batch_norm))
  h = bn_relu(maybe_sn(keras.layers.Dense(16 * width), spectral_norm)(h), batch_norm)
  outputs = maybe_sn(keras.layers.Dense(output_dim), spectral_norm)(h)
  return keras.Model(inputs, outputs, name=name)


def build_decoder(latent_dim: int, output_shape: Sequence[int], *, width: int,
                  depth: int = 4, spectral_norm: bool = False,
                  batch_norm: bool = True, name: str = "decoder") -> keras.Model:
  """Two dense layers -> (s/4, s/4, 2w) -> two stride-2 transposed convs -> Conv (logits).

  Args:
    latent_dim: input units.
    output_shape: (H, W, C), H == W divisible by 4.
    width: base channels.
    depth: unused; the layout is fixed.
    spectral_norm: wrap every Dense / Conv in SpectralNormalization.
    batch_norm: batch normalisation before each hidden ReLU (False: ReLU only).
    name: model name.

  Returns:
    A functional keras.Model [B, latent_dim] -> [B, H, W, C] (no final activation).
  """
  del depth
  size, _, channels = _check(output_shape)
  quarter = size // 4
  inputs = keras.Input((latent_dim,), dtype="float32")
  h = bn_relu(maybe_sn(keras.layers.Dense(16 * width), spectral_norm)(inputs), batch_norm)
  h = bn_relu(maybe_sn(keras.layers.Dense(2 * width * quarter * quarter), spectral_norm)(h),
              batch_norm)
  h = keras.layers.Reshape((quarter, quarter, 2 * width))(h)
  for filters in (2 * width, width):
    h = maybe_sn(Conv2DTranspose(filters, 4, strides=2, padding="same"),
                 spectral_norm)(h)
    h = bn_relu(h, batch_norm)
  h = maybe_sn(Conv2D(channels, 3, padding="same"), spectral_norm)(h)
  return keras.Model(inputs, h, name=name)
