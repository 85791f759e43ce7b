"""Encoder / decoder / critic architectures, chosen by name (`--arch`).

Encoders map x to a linear [batch, output_dim] (a Gaussian encoder asks for 2m and splits);
decoders map z to *logits* of the data's shape (the likelihood applies sigmoid for images).
All are Keras functional models, so get_config / from_config work.
"""

from rae_tf.networks import dcgan
from rae_tf.networks import infogan
from rae_tf.networks import mlp
from rae_tf.networks.common import check_sizes
from rae_tf.registry import Registry

ARCHITECTURES = Registry("architecture", "--arch")
ARCHITECTURES.register("mlp", mlp)
ARCHITECTURES.register("dcgan", dcgan)
ARCHITECTURES.register("infogan", infogan)


def build_encoder(arch, input_shape, output_dim, *, width, depth=4, spectral_norm=False,
                  name="encoder"):
  """Args: arch name; input_shape of one example; output_dim; width/depth; spectral_norm."""
  module = ARCHITECTURES.get(arch)
  check_sizes(width, depth)
  return module.build_encoder(tuple(input_shape), int(output_dim), width=width, depth=depth,
                              spectral_norm=spectral_norm, name=name)


def build_decoder(arch, latent_dim, output_shape, *, width, depth=4, spectral_norm=False,
                  name="decoder"):
  """Args: arch name; latent_dim; output_shape of one example; width/depth; spectral_norm."""
  module = ARCHITECTURES.get(arch)
  check_sizes(width, depth)
  return module.build_decoder(int(latent_dim), tuple(output_shape), width=width, depth=depth,
                              spectral_norm=spectral_norm, name=name)


def build_critic(input_dim, *, width=512, depth=4, name="critic"):
  """A latent critic [batch, input_dim] -> [batch, 1] (MLP, glorot-normal init)."""
  check_sizes(width, depth)
  return mlp.build_critic(int(input_dim), width=width, depth=depth, name=name)
