"""The latent critic of the adversarial models (WAE-GAN, AAE): an MLP on codes."""
import keras

from rae_tf.networks import mlp


def build_critic(input_dim: int, *, width: int = 512, depth: int = 4,
                 name: str = "critic") -> keras.Model:
  """z [B, input_dim] -> depth x Dense(width, relu) -> Dense(1), glorot-normal init.

  Args:
    input_dim: latent size m.
    width: hidden units per layer.
    depth: number of hidden layers.
    name: model name.

  Returns:
    A functional keras.Model with linear output [B, 1].
  """
  return mlp.build_encoder((input_dim,), 1, width=width, depth=depth, name=name)
