"""The DCGAN-style conv net of the WAE / RAE papers and of the PyTorch peer's benchmark.

Encoder: 4 x [pad 1, Conv k4 s2 'valid', BN, ReLU] with width * (1, 2, 4, 8) channels
(28 -> 14 -> 7 -> 3 -> 1), Flatten, Dense. Decoder for 28x28: Dense -> 4x4x8w (BN, ReLU) ->
ConvT(4w, k3, s2) to 7x7 -> ConvT(2w, k3, s2) to 14x14 -> ConvT(C, k3, s2) to 28x28; the
crops reproduce PyTorch's ConvTranspose2d(k3, s2, padding=1[, output_padding=1]) exactly.
32x32 and 64x64 use the analogous ladder of k4 s2 'same' transposed convolutions from 4x4.
"""
import keras

from rae_tf.networks.common import image_shape, maybe_sn

SIZES = (28, 32, 64)


def _bn_relu(h):
  return keras.layers.ReLU()(keras.layers.BatchNormalization()(h))


def build_encoder(input_shape, output_dim, *, width, depth=4, spectral_norm=False,
                  name="encoder"):
  """Conv ladder -> Dense(output_dim). `depth` is unused (fixed 4 blocks)."""
  del depth
  shape = image_shape("dcgan", input_shape, SIZES)
  inputs = keras.Input(shape)
  h = inputs
  for mult in (1, 2, 4, 8):
    h = keras.layers.ZeroPadding2D(1)(h)
    h = maybe_sn(keras.layers.Conv2D(width * mult, 4, strides=2, padding="valid"),
                 spectral_norm)(h)
    h = _bn_relu(h)
  h = keras.layers.Flatten()(h)
  return keras.Model(inputs, maybe_sn(keras.layers.Dense(output_dim), spectral_norm)(h),
                     name=name)


def build_decoder(latent_dim, output_shape, *, width, depth=4, spectral_norm=False,
                  name="decoder"):
  """Dense -> 4x4x8w -> stride-2 transposed convolutions -> logits of output_shape."""
  del depth
  size, _, channels = image_shape("dcgan", output_shape, SIZES)
  inputs = keras.Input((latent_dim,))
  h = maybe_sn(keras.layers.Dense(4 * 4 * 8 * width), spectral_norm)(inputs)
  h = keras.layers.Reshape((4, 4, 8 * width))(h)
  h = _bn_relu(h)
  if size == 28:
    # (in - 1) * 2 + 3 = 9, 15, 29, cropped to 7, 14, 28 as PyTorch's padding does.
    crops = [((1, 1), (1, 1)), ((1, 0), (1, 0)), ((1, 0), (1, 0))]
    for i, (filters, crop) in enumerate(zip((4 * width, 2 * width, channels), crops)):
      h = maybe_sn(keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="valid"),
                   spectral_norm)(h)
      h = keras.layers.Cropping2D(crop)(h)
      if i < 2:
        h = _bn_relu(h)
  else:
    mults = (4, 2) if size == 32 else (4, 2, 1)
    for mult in mults:
      h = maybe_sn(keras.layers.Conv2DTranspose(mult * width, 4, strides=2, padding="same"),
                   spectral_norm)(h)
      h = _bn_relu(h)
    h = maybe_sn(keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same"),
                 spectral_norm)(h)
  return keras.Model(inputs, h, name=name)
