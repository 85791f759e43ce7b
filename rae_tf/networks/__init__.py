"""Encoder / decoder / critic architectures, chosen by name (`--arch`).

Encoders map x [B, *shape] to a linear [B, output_dim] (a Gaussian encoder asks for 2m and
splits it); decoders map z [B, m] to *logits* of the data's shape (the likelihood applies
the sigmoid for images; vectors stay linear). All are float32 Keras functional models, so
get_config / from_config / clone_model work. `spectral_norm=True` wraps every Dense / Conv /
ConvTranspose layer in `keras.layers.SpectralNormalization` (RAE-SN).

  mlp      vectors or images: depth x Dense(width, relu), glorot-normal (MaskAAE nets).
  dcgan    28x28, 32x32, 64x64 images: the WAE / RAE conv net (width 128 in the papers)
           in the PyTorch peer's exact layout; see dcgan.py.
  infogan  square images with size divisible by 4: the FlexAE / 2-stage VAE net.
"""
from typing import Sequence

import keras

from rae_tf.networks import critic
from rae_tf.networks import dcgan
from rae_tf.networks import infogan
from rae_tf.networks import mlp
from rae_tf.networks.common import check_data_shape, check_dim, check_sizes
from rae_tf.registry import Registry

# Entries are modules with build_encoder(input_shape, output_dim, *, width, depth,
# spectral_norm, batch_norm, name) and build_decoder(latent_dim, output_shape, *, ..., batch_norm).
ARCHITECTURES = Registry("architecture", "--arch")
ARCHITECTURES.register("mlp", mlp)
ARCHITECTURES.register("dcgan", dcgan)
ARCHITECTURES.register("infogan", infogan)


def build_encoder(arch: str, input_shape: Sequence[int], output_dim: int, *, width: int,
                  depth: int = 4, spectral_norm: bool = False, batch_norm: bool = True,
                  name: str = "encoder") -> keras.Model:
  """Builds an encoder x [B, *input_shape] -> [B, output_dim] (linear outputs).

  Args:
    arch: architecture name (ARCHITECTURES).
    input_shape: shape of one example, without the batch dimension.
    output_dim: output units (2m for a Gaussian encoder).
    width: units / base channels.
    depth: hidden layers (mlp only; the conv nets have a fixed depth).
    spectral_norm: wrap every kernel layer in SpectralNormalization.
    batch_norm: the conv nets' batch normalisation (False: ReLU only, so training and
      inference compute the same function; the mlp has none either way).
    name: model name.

  Returns:
    A functional keras.Model.

  Raises:
    ConfigError: unknown arch, bad sizes, or data the architecture cannot take.
  """
  module = ARCHITECTURES.get(arch)
  check_sizes(width, depth)
  output_dim = check_dim(output_dim, "the encoder output size")
  return module.build_encoder(check_data_shape(input_shape), output_dim, width=width,
                              depth=depth, spectral_norm=bool(spectral_norm),
                              batch_norm=bool(batch_norm), name=name)


def build_decoder(arch: str, latent_dim: int, output_shape: Sequence[int], *, width: int,
                  depth: int = 4, spectral_norm: bool = False, batch_norm: bool = True,
                  name: str = "decoder") -> keras.Model:
  """Builds a decoder z [B, latent_dim] -> logits [B, *output_shape] (no final activation).

  Args:
    arch: architecture name (ARCHITECTURES).
    latent_dim: latent size m.
    output_shape: shape of one example, without the batch dimension.
    width: units / base channels.
    depth: hidden layers (mlp only; the conv nets have a fixed depth).
    spectral_norm: wrap every kernel layer in SpectralNormalization.
    batch_norm: the conv nets' batch normalisation (False: ReLU only, so the decoder is
      not invariant to the scale of its input; the mlp has none either way).
    name: model name.

  Returns:
    A functional keras.Model.

  Raises:
    ConfigError: unknown arch, bad sizes, or data the architecture cannot take.
  """
  module = ARCHITECTURES.get(arch)
  check_sizes(width, depth)
  latent_dim = check_dim(latent_dim, "the latent size")
  return module.build_decoder(latent_dim, check_data_shape(output_shape), width=width,
                              depth=depth, spectral_norm=bool(spectral_norm),
                              batch_norm=bool(batch_norm), name=name)


def build_critic(input_dim: int, *, width: int = 512, depth: int = 4,
                 name: str = "critic") -> keras.Model:
  """Builds the latent critic z [B, input_dim] -> [B, 1] (MLP, ReLU, glorot-normal).

  Args:
    input_dim: latent size m.
    width: hidden units per layer.
    depth: hidden layers.
    name: model name.

  Returns:
    A functional keras.Model with linear output.

  Raises:
    ConfigError: bad sizes (naming --critic_width / --critic_depth / --latent_dim).
  """
  check_sizes(width, depth, "--critic_width", "--critic_depth")
  input_dim = check_dim(input_dim, "the critic input size")
  return critic.build_critic(input_dim, width=width, depth=depth, name=name)


def build_prior_generator(noise_dim: int, latent_dim: int, *, width: int = 1024,
                          depth: int = 4, name: str = "prior_generator") -> keras.Model:
  """Builds a learned prior's generator eps [B, noise_dim] -> z [B, latent_dim] (FlexAE).

  Args:
    noise_dim: size m' of the base noise.
    latent_dim: latent size m.
    width: hidden units per layer (authors: 1024).
    depth: hidden layers (authors: 4).
    name: model name.

  Returns:
    A functional keras.Model: depth x Dense(width, relu) -> Dense(m), glorot-normal.
  """
  check_sizes(width, depth, "--prior_width", "--prior_depth")
  noise_dim = check_dim(noise_dim, "the prior's noise size", "--prior_noise_dim")
  latent_dim = check_dim(latent_dim, "the latent size")
  return mlp.build_encoder((noise_dim,), latent_dim, width=width, depth=depth, name=name)
