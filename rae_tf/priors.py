"""Latent priors P(z).

A prior is a Keras layer (so a learned prior's variables are tracked, checkpointed and
exported). It draws training samples (`sample`), per-request samples for serving
(`sample_from_seeds`, deterministic per seed), and exposes a TFP distribution.
"""
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from rae_tf import sampling
from rae_tf.errors import ConfigError
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


@keras.saving.register_keras_serializable(package="rae_tf")
class GaussianMixturePrior(keras.layers.Layer):
  """A fixed Gaussian mixture over the latent space, fitted ex post (RAE + GMM).

  Parameters are non-trainable weights, so they are checkpointed and exported with the
  model; sampling inside an exported signature lowers to core TF ops (no TFP at serving).

  Args:
    latent_dim: m.
    num_components: K.
  """

  def __init__(self, latent_dim: int, num_components: int = 10, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = int(latent_dim)
    self.num_components = int(num_components)
    k, m = self.num_components, self.latent_dim
    self.logits = self.add_weight(name="logits", shape=(k,), initializer="zeros",
                                  trainable=False)
    self.means = self.add_weight(name="means", shape=(k, m), initializer="zeros",
                                 trainable=False)
    eye = tf.eye(m, batch_shape=[k])
    self.scale_tril = self.add_weight(name="scale_tril", shape=(k, m, m),
                                      initializer=lambda shape, dtype=None: eye,
                                      trainable=False)

  def set_parameters(self, weights, means, covariances):
    """Loads mixture weights [K], means [K, m] and full covariances [K, m, m]."""
    self.logits.assign(np.log(np.maximum(np.asarray(weights, np.float64), 1e-12)))
    self.means.assign(np.asarray(means, np.float32))
    self.scale_tril.assign(np.linalg.cholesky(np.asarray(covariances, np.float64)))

  def distribution(self):
    return tfd.MixtureSameFamily(
        tfd.Categorical(logits=self.logits),
        tfd.MultivariateNormalTriL(loc=self.means, scale_tril=self.scale_tril))

  def sample(self, local_batch, seed):
    # TFP takes int32 stateless seeds; fold the int64 seed in first.
    seed32 = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 0)
    return self.distribution().sample(local_batch, seed=tf.cast(seed32 % (2**31 - 1), tf.int32))

  def sample_from_seeds(self, seeds):
    dist = self.distribution()
    seeds = tf.cast(seeds, tf.int64)

    def one(s):
      pair = tf.stack([s // (2**31 - 1), s % (2**31 - 1)])
      return dist.sample(seed=tf.cast(pair, tf.int32))

    return tf.map_fn(one, seeds, fn_output_signature=tf.float32)

  def call(self, seeds):
    return self.sample_from_seeds(seeds)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim,
            "num_components": self.num_components}


def fit_gmm_prior(codes, num_components: int = 10, seed: int = 0,
                  max_iter: int = 2000, tol: float = 1e-3) -> GaussianMixturePrior:
  """Fits a full-covariance Gaussian mixture to codes, as the RAE paper did ex post.

  Args:
    codes: [N, m] training codes.
    num_components: K (RAE: 10).
    seed: k-means initialisation seed.
    max_iter, tol: EM settings (RAE: 2000, 1e-3).
  Returns:
    A GaussianMixturePrior holding the fit.
  """
  from sklearn.mixture import GaussianMixture  # pylint: disable=g-import-not-at-top
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or len(codes) < num_components:
    raise ConfigError(f"--components={num_components}: need at least that many codes [N, m], "
                      f"got shape {codes.shape}")
  gmm = GaussianMixture(num_components, covariance_type="full", max_iter=max_iter, tol=tol,
                        random_state=seed, reg_covar=1e-6).fit(codes)
  prior = GaussianMixturePrior(codes.shape[1], num_components, name="gmm_prior")
  prior.set_parameters(gmm.weights_, gmm.means_, gmm.covariances_)
  return prior
