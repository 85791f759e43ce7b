"""Decoder likelihoods: the reconstruction cost c(x, D(z)).

A decoder network outputs unconstrained values ("logits"). The likelihood says how those
become the decoded mean (sigmoid for images in [0, 1], identity for vectors) and what the
per-example reconstruction cost is. Likelihoods are Keras layers so that a learned variance
is tracked, checkpointed and exported with the model.
"""
import math

import keras
import tensorflow as tf

from rae_tf.errors import ConfigError
from rae_tf.registry import Registry

LIKELIHOODS = Registry("likelihood", "--likelihood")


def _flat(t):
  return tf.reshape(t, [tf.shape(t)[0], -1])


@keras.saving.register_keras_serializable(package="rae_tf")
class Likelihood(keras.layers.Layer):
  """Base class.

  Args:
    image_output: True when the data are images in [0, 1]; the mean is then
      sigmoid(logits), otherwise the logits themselves.
  """

  def __init__(self, image_output: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.image_output = image_output

  def mean(self, logits):
    """The decoded image / vector."""
    return tf.sigmoid(logits) if self.image_output else logits

  def cost(self, x, logits):
    """Per-example reconstruction cost, shape [batch]."""
    raise NotImplementedError

  def call(self, x, logits):
    return self.cost(x, logits)

  def get_config(self):
    return {**super().get_config(), "image_output": self.image_output}


@LIKELIHOODS.register("bernoulli")
@keras.saving.register_keras_serializable(package="rae_tf")
class BernoulliLikelihood(Likelihood):
  """Binary cross-entropy summed over pixels (the VAE "cross-entropy" decoder)."""

  def __init__(self, image_output: bool = True, **kwargs):
    if not image_output:
      raise ConfigError("--likelihood=bernoulli needs images in [0, 1]; use "
                        "--likelihood=gaussian or mse for vector data")
    super().__init__(image_output, **kwargs)

  def cost(self, x, logits):
    # From logits: exact and stable, unlike clipping sigmoid outputs.
    return tf.reduce_sum(_flat(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=x, logits=logits)), axis=1)


@LIKELIHOODS.register("gaussian")
@keras.saving.register_keras_serializable(package="rae_tf")
class GaussianLikelihood(Likelihood):
  """Gaussian with fixed variance: sum (x - mean)^2 / (2 variance).

  WAE's 0.05 * ||x - x_hat||^2 is variance = 10.

  Args:
    variance: the fixed decoder variance sigma^2.
  """

  def __init__(self, image_output: bool = True, variance: float = 1.0, **kwargs):
    if variance <= 0:
      raise ConfigError(f"--decoder_variance={variance} must be > 0")
    super().__init__(image_output, **kwargs)
    self.variance = float(variance)

  def cost(self, x, logits):
    sq = tf.reduce_sum(_flat(tf.square(x - self.mean(logits))), axis=1)
    return sq / (2.0 * self.variance)

  def get_config(self):
    return {**super().get_config(), "variance": self.variance}


@LIKELIHOODS.register("mse")
@keras.saving.register_keras_serializable(package="rae_tf")
class MeanSquaredErrorLikelihood(Likelihood):
  """Mean squared error over pixels (the RAE paper's reconstruction loss)."""

  def cost(self, x, logits):
    return tf.reduce_mean(_flat(tf.square(x - self.mean(logits))), axis=1)


@LIKELIHOODS.register("gaussian_learned")
@keras.saving.register_keras_serializable(package="rae_tf")
class LearnedVarianceGaussianLikelihood(Likelihood):
  """Gaussian with one learned scalar standard deviation gamma (Dai & Wipf).

  Cost per example: sum_i (x_i - mean_i)^2 / (2 gamma^2) + log gamma + log(2 pi)/2.
  gamma is trained with the auto-encoder; it shrinks as reconstructions improve,
  which up-weights reconstruction against the KL term automatically.

  Args:
    initial_log_gamma: initial value of log gamma.
  """

  def __init__(self, image_output: bool = True, initial_log_gamma: float = 0.0, **kwargs):
    super().__init__(image_output, **kwargs)
    self.initial_log_gamma = float(initial_log_gamma)
    self.log_gamma = self.add_weight(
        name="log_gamma", shape=(),
        initializer=keras.initializers.Constant(self.initial_log_gamma))

  def cost(self, x, logits):
    sq = _flat(tf.square(x - self.mean(logits)))
    dims = tf.cast(tf.shape(sq)[1], sq.dtype)
    gamma_sq = tf.exp(2.0 * self.log_gamma)
    return (tf.reduce_sum(sq, axis=1) / (2.0 * gamma_sq)
            + dims * (self.log_gamma + 0.5 * math.log(2 * math.pi)))

  def get_config(self):
    return {**super().get_config(), "initial_log_gamma": self.initial_log_gamma}
