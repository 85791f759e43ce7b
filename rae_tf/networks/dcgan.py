"""The DCGAN-style conv net of the WAE / RAE papers and of the PyTorch peer's benchmark.

Layout (PyTorch notation; width w, C image channels):
  encoder: 4 x [Conv2d(k4, s2, padding=1), BatchNorm2d, ReLU] with w, 2w, 4w, 8w channels
    (28 -> 14 -> 7 -> 3 -> 1; 32 -> ... -> 2; 64 -> ... -> 4), Flatten, Linear(output_dim).
  decoder 28x28: Linear(4*4*8w) -> view (4, 4, 8w) -> BN, ReLU ->
    ConvTranspose2d(4w, k3, s2, padding=1) (7x7) -> BN, ReLU ->
    ConvTranspose2d(2w, k3, s2, padding=1, output_padding=1) (14x14) -> BN, ReLU ->
    ConvTranspose2d(C, k3, s2, padding=1, output_padding=1) (28x28), logits.
  decoder 32x32 / 64x64: Linear -> (4, 4, 8w) -> BN, ReLU -> ConvTranspose2d(k4, s2,
    padding=1) doubling the size with 4w, 2w[, w] channels, each BN, ReLU -> a last one to C
    channels (logits).

Batch norm keeps PyTorch's default moving-statistics momentum (0.1, Keras' 0.9; see
common.BN_MOMENTUM). The Keras layers below compute exactly that (checked against a
literal ZeroPadding2D / 'valid' / Cropping2D transcription in tests/test_networks.py),
using the cheapest equivalent form:
  * Conv k4 s2 with padding 1 on an even size n is TF's 'same' (it pads 1 on each side).
  * On an odd size the bottom/right padding row is never read by a stride-2 k4 window, so
    ZeroPadding2D(((1, 0), (1, 0))) + 'valid' does the same work with less memory traffic.
  * ConvTranspose k3 s2 padding=1 to 7x7 is Keras' 'same' with output_padding=0; with
    output_padding=1 PyTorch keeps the full output minus its first row / column, which is
    'valid' (size 2n + 1) + Cropping2D(((1, 0), (1, 0))).
  * ConvTranspose k4 s2 padding=1 is Keras' 'same' (TF pads 1 on each side there).
"""
from typing import Sequence

import keras

from rae_tf.networks.common import (Conv2D, Conv2DTranspose, Cropping2D, bn_relu, image_shape,
                                    maybe_sn)

SIZES = (28, 32, 64)


def _down(h, filters: int, spectral_norm: bool):
  """Conv2d(k4, s2, padding=1) in its cheapest exact Keras form; no BN / activation."""
  if h.shape[1] % 2:
    h = keras.layers.ZeroPadding2D(((1, 0), (1, 0)))(h)
    padding = "valid"
  else:
    padding = "same"
  return maybe_sn(Conv2D(filters, 4, strides=2, padding=padding), spectral_norm)(h)


def build_encoder(input_shape: Sequence[int], output_dim: int, *, width: int, depth: int = 4,
                  spectral_norm: bool = False, batch_norm: bool = True,
                  name: str = "encoder") -> keras.Model:
  """Conv ladder -> Flatten -> Dense(output_dim), linear.

  Args:
    input_shape: (H, W, C) with H == W in SIZES.
    output_dim: output units.
    width: channels of the first conv (then 2x, 4x, 8x).
    depth: unused; the ladder always has 4 blocks.
    spectral_norm: wrap every Conv2D / Dense in SpectralNormalization.
    batch_norm: batch normalisation before each hidden ReLU (False: ReLU only).
    name: model name.

  Returns:
    A functional keras.Model [B, H, W, C] -> [B, output_dim].
  """
  del depth
  inputs = keras.Input(image_shape("dcgan", input_shape, SIZES), dtype="float32")
  h = inputs
  for mult in (1, 2, 4, 8):
    h = bn_relu(_down(h, width * mult, spectral_norm), batch_norm)
  h = keras.layers.Flatten()(h)
  outputs = maybe_sn(keras.layers.Dense(output_dim), spectral_norm)(h)
  return keras.Model(inputs, outputs, name=name)


def build_decoder(latent_dim: int, output_shape: Sequence[int], *, width: int,
                  depth: int = 4, spectral_norm: bool = False,
                  batch_norm: bool = True, name: str = "decoder") -> keras.Model:
  """Dense -> 4x4x8w -> stride-2 transposed convolutions -> logits of output_shape.

  Args:
    latent_dim: input units.
    output_shape: (H, W, C) with H == W in SIZES.
    width: base channels (the dense layer feeds 8 * width channels at 4x4).
    depth: unused; the ladder is fixed by the image size.
    spectral_norm: wrap every Dense / Conv2DTranspose in SpectralNormalization.
    batch_norm: batch normalisation before each hidden ReLU (False: ReLU only).
    name: model name.

  Returns:
    A functional keras.Model [B, latent_dim] -> [B, H, W, C] (no final activation).
  """
  del depth
  size, _, channels = image_shape("dcgan", output_shape, SIZES)
  inputs = keras.Input((latent_dim,), dtype="float32")
  h = maybe_sn(keras.layers.Dense(4 * 4 * 8 * width), spectral_norm)(inputs)
  h = bn_relu(keras.layers.Reshape((4, 4, 8 * width))(h), batch_norm)

  def up(h, filters, kernel, padding="same", **kwargs):
    return maybe_sn(Conv2DTranspose(filters, kernel, strides=2, padding=padding, **kwargs),
                    spectral_norm)(h)

  if size == 28:
    crop = Cropping2D
    h = bn_relu(up(h, 4 * width, 3, output_padding=0), batch_norm)  # 4 -> 7
    h = bn_relu(crop(((1, 0), (1, 0)))(up(h, 2 * width, 3, "valid")),  # 7 -> 15 -> 14
                batch_norm)
    h = crop(((1, 0), (1, 0)))(up(h, channels, 3, "valid"))  # 14 -> 29 -> 28
  else:
    for mult in (4, 2, 1)[:{32: 2, 64: 3}[size]]:
      h = bn_relu(up(h, mult * width, 4), batch_norm)
    h = up(h, channels, 4)
  return keras.Model(inputs, h, name=name)
