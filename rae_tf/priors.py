"""Latent priors P(z).

A prior is a Keras layer (so a learned prior's variables are tracked, checkpointed and
exported). It draws training samples (`sample`), per-request samples for serving
(`sample_from_seeds`, deterministic per seed), and exposes a TFP distribution.
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from rae_tf import sampling
from rae_tf.registry import Registry

tfd = tfp.distributions

PRIORS = Registry("prior", "--prior")


@PRIORS.register("standard_normal")
@keras.saving.register_keras_serializable(package="rae_tf")
class StandardNormalPrior(keras.layers.Layer):
  """N(0, I_m).

  Args:
    latent_dim: m.
  """

  def __init__(self, latent_dim: int, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = int(latent_dim)

  def sample(self, local_batch, seed):
    """Training draw [local_batch, m]; the replica's slice of the global draw."""
    return sampling.normal(local_batch, [self.latent_dim], seed)

  def sample_from_seeds(self, seeds):
    """[len(seeds), m], one deterministic draw per int64 seed (serving)."""
    return sampling.normal_from_seeds(seeds, self.latent_dim)

  def distribution(self):
    return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim]))

  def call(self, seeds):
    return self.sample_from_seeds(seeds)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim}
