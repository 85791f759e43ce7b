"""The InfoGAN-style net of the FlexAE and 2-stage VAE code (width=64: 64/128/1024 units).

Encoder: Conv(w, 4, s2) ReLU -> Conv(2w, 4, s2) BN ReLU -> Dense(16w) BN ReLU -> Dense.
Decoder: Dense(16w) BN ReLU -> Dense(2w (s/4)^2) BN ReLU -> ConvT(2w, 4, s2) BN ReLU ->
ConvT(w, 4, s2) BN ReLU -> Conv(C, 3, s1) (logits).
"""
import keras

from rae_tf.errors import ConfigError
from rae_tf.networks.common import image_shape, maybe_sn


def _bn_relu(h):
  return keras.layers.ReLU()(keras.layers.BatchNormalization()(h))


def _check(shape):
  shape = image_shape("infogan", shape)
  if shape[0] % 4:
    raise ConfigError(f"--arch=infogan needs image sizes divisible by 4, got {shape[0]}; "
                      "use --arch=mlp or resize the data")
  return shape


def build_encoder(input_shape, output_dim, *, width, depth=4, spectral_norm=False,
                  name="encoder"):
  del depth
  inputs = keras.Input(_check(input_shape))
  h = maybe_sn(keras.layers.Conv2D(width, 4, strides=2, padding="same"), spectral_norm)(inputs)
  h = keras.layers.ReLU()(h)
  h = maybe_sn(keras.layers.Conv2D(2 * width, 4, strides=2, padding="same"), spectral_norm)(h)
  h = keras.layers.Flatten()(_bn_relu(h))
  h = _bn_relu(maybe_sn(keras.layers.Dense(16 * width), spectral_norm)(h))
  return keras.Model(inputs, maybe_sn(keras.layers.Dense(output_dim), spectral_norm)(h),
                     name=name)


def build_decoder(latent_dim, output_shape, *, width, depth=4, spectral_norm=False,
                  name="decoder"):
  del depth
  size, _, channels = _check(output_shape)
  quarter = size // 4
  inputs = keras.Input((latent_dim,))
  h = _bn_relu(maybe_sn(keras.layers.Dense(16 * width), spectral_norm)(inputs))
  h = _bn_relu(maybe_sn(keras.layers.Dense(2 * width * quarter * quarter), spectral_norm)(h))
  h = keras.layers.Reshape((quarter, quarter, 2 * width))(h)
  for filters in (2 * width, width):
    h = maybe_sn(keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same"),
                 spectral_norm)(h)
    h = _bn_relu(h)
  h = maybe_sn(keras.layers.Conv2D(channels, 3, padding="same"), spectral_norm)(h)
  return keras.Model(inputs, h, name=name)
