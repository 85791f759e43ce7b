"""Encoder posteriors q(z|x): how the encoder's output becomes a code, a sample and log q.

The encoder network maps x to a linear vector h; the model's posterior layer reads h:

  deterministic   h is the code (AE, WAE, RAE, ...): z = h, no density.
  gaussian        h = [mean, log-variance]: z = mean + sigma * eps (the VAE's
                  reparameterisation), log q(z|x) = log N(z; mean, sigma^2).
  iaf             h = [mean, log-variance, context c]: z0 = mean + sigma * eps, then T
                  inverse autoregressive flow steps (Kingma et al. 2016), each a MADE
                  conditioned on c: [m_t, s_t] = MADE_t(z, c), sigma_t = sigmoid(s_t),
                  z <- sigma_t * z + (1 - sigma_t) * m_t, and
                  log q(z|x) = log N(z0; mean, sigma^2) - sum_t sum_i log sigma_t,i.

Each posterior is a Keras layer (its networks are tracked, checkpointed and exported with
the model) with get_config. `code(h)` is the serving code (`encode`): the mean for the
Gaussian, and for IAF the mean pushed through the flow with eps = 0 (the flow's image of
the base's mode, not the mean of q; documented choice). `draw(h, eps)` takes the noise
from the caller, so the model's stateless per-step noise (and a mirrored run's identical
noise) stays where it was.
"""
import math
from typing import NamedTuple, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rae_tf import precision
from rae_tf.errors import ConfigError
from rae_tf.registry import Registry

POSTERIORS = Registry("posterior", "--posterior")

_LOG_2PI = math.log(2.0 * math.pi)


class Draw(NamedTuple):
  """One posterior draw on a batch.

  Attributes:
    z: the code fed on [batch, m] (a sample when stochastic).
    log_q: log q(z|x) [batch], None for a deterministic posterior.
    mean: the base Gaussian's mean (the code itself when deterministic).
    log_var: the base Gaussian's log-variance, None when deterministic.
  """
  z: tf.Tensor
  log_q: Optional[tf.Tensor]
  mean: tf.Tensor
  log_var: Optional[tf.Tensor]


def diagonal_gaussian_log_prob(eps, log_var):
  """log N(mean + sigma * eps; mean, sigma^2) summed over the last axis, from eps itself.

  Exact and stable: no (z - mean) / sigma division.
  """
  return -0.5 * tf.reduce_sum(_LOG_2PI + log_var + tf.square(eps), axis=-1)


@keras.saving.register_keras_serializable(package="rae_tf")
class Posterior(keras.layers.Layer):
  """Base class: reads the encoder's output h [batch, encoder_output_dim(m)]."""

  # Whether z is drawn (a reparameterised sample) rather than h itself.
  stochastic = True
  # Whether q(z|x) is N(mean, diag exp(log_var)) of `parameters(h)` (the closed-form KL
  # and the VampPrior's mixture need that).
  is_diagonal_gaussian = False

  def encoder_output_dim(self, latent_dim: int) -> int:
    """Units the encoder network must output for a latent size m."""
    raise NotImplementedError

  def parameters(self, h) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """(mean, log_var or None) of the base Gaussian (the code itself when deterministic)."""
    raise NotImplementedError

  def code(self, h):
    """The deterministic code of `encode` (serving, evaluation, ex-post priors)."""
    return self.parameters(h)[0]

  def draw(self, h, eps) -> Draw:
    """The draw for standard normal noise eps [batch, m] (None when deterministic).

    h is split once here: a second split of h would add a second gradient path into the
    encoder, whose summation order changes the last bits of every VAE's numbers.
    """
    raise NotImplementedError

  def call(self, h):
    return self.code(h)


@POSTERIORS.register("deterministic")
@keras.saving.register_keras_serializable(package="rae_tf")
class DeterministicPosterior(Posterior):
  """A point mass at the encoder's output (AE, WAE, RAE, AAE, FlexAE, MaskAAE)."""

  stochastic = False

  def encoder_output_dim(self, latent_dim):
    return int(latent_dim)

  def parameters(self, h):
    return h, None

  def draw(self, h, eps):
    del eps
    return Draw(h, None, h, None)


@POSTERIORS.register("gaussian")
@keras.saving.register_keras_serializable(package="rae_tf")
class DiagonalGaussianPosterior(Posterior):
  """q(z|x) = N(mean, diag exp(log_var)), h = [mean, log_var] (the VAE's encoder)."""

  is_diagonal_gaussian = True

  def encoder_output_dim(self, latent_dim):
    return 2 * int(latent_dim)

  def parameters(self, h):
    mean, log_var = tf.split(h, 2, axis=-1)
    return mean, log_var

  def draw(self, h, eps):
    mean, log_var = self.parameters(h)
    # The exact expression the model used before posteriors existed: same numbers.
    z = mean + tf.exp(0.5 * log_var) * eps
    return Draw(z, diagonal_gaussian_log_prob(eps, log_var), mean, log_var)


def _made_degrees(latent_dim: int, width: int, reverse: bool):
  """MADE degrees (Germain et al. 2015): inputs 1..m in the step's order, hidden units
  cycling over 1..m-1 (every degree about equally often; 0 = context only when m = 1)."""
  inputs = np.arange(1, latent_dim + 1)
  if reverse:
    inputs = inputs[::-1].copy()
  if latent_dim > 1:
    hidden = np.arange(width) % (latent_dim - 1) + 1
  else:
    hidden = np.zeros(width, np.int64)
  return inputs, hidden


@keras.saving.register_keras_serializable(package="rae_tf")
class ConditionalMADE(keras.layers.Layer):
  """One IAF step's autoregressive network: (z, context) -> (m, s), each [batch, m].

  Output i depends on z_j only for j before i in the step's order (left to right, or right
  to left with `reverse`, so consecutive steps alternate orders as IAF's authors did), and
  on the whole context. Hidden layers: `depth` masked Dense(width) with ELU; the context
  enters the first one through an unmasked Dense. The output kernel starts at zero and s's
  bias at `forget_bias`, so each step starts as z <- sigmoid(forget_bias) * z: close to the
  identity, as the paper's "forget gate bias" advice.

  Written in Keras 3 rather than with tfp.bijectors.AutoregressiveNetwork: that network is
  a tf_keras layer, whose variables a Keras 3 model does not track (they would be neither
  trained, checkpointed nor exported). The masks follow MADE's degree rules, as TFP's.

  Args:
    latent_dim: m.
    width: hidden units per layer.
    context_dim: size of the context.
    depth: hidden layers (>= 1).
    reverse: this step's variable order is m..1.
    forget_bias: initial bias of s (sigma_t = sigmoid(s) starts near sigmoid(bias)).
  """

  def __init__(self, latent_dim: int, width: int, context_dim: int, depth: int = 2,
               reverse: bool = False, forget_bias: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    if depth < 1 or width < 1 or context_dim < 1:
      raise ConfigError(f"an IAF network needs width, context size and depth >= 1, got "
                        f"{width}, {context_dim}, {depth}")
    self.latent_dim, self.width, self.depth = int(latent_dim), int(width), int(depth)
    self.context_dim = int(context_dim)
    self.reverse = bool(reverse)
    self.forget_bias = float(forget_bias)
    inputs, hidden = _made_degrees(self.latent_dim, self.width, self.reverse)
    # Masks: hidden unit k sees input j iff deg(k) >= deg(j); output i sees hidden k iff
    # deg(i) > deg(k). Constants, rebuilt from the config (not weights).
    self._mask_in = tf.constant((hidden[None, :] >= inputs[:, None]).astype(np.float32))
    self._mask_hidden = tf.constant((hidden[None, :] >= hidden[:, None]).astype(np.float32))
    self._mask_out = tf.constant((inputs[None, :] > hidden[:, None]).astype(np.float32))

  def build(self, input_shape=None):
    m, w = self.latent_dim, self.width
    glorot = keras.initializers.GlorotUniform
    self.kernels = [self.add_weight(name="kernel_0", shape=(m, w), initializer=glorot())]
    self.kernels += [self.add_weight(name=f"kernel_{i}", shape=(w, w), initializer=glorot())
                     for i in range(1, self.depth)]
    self.biases = [self.add_weight(name=f"bias_{i}", shape=(w,), initializer="zeros")
                   for i in range(self.depth)]
    self.context_kernel = self.add_weight(name="context_kernel",
                                          shape=(self.context_dim, w), initializer=glorot())
    self.out_kernel = self.add_weight(name="out_kernel", shape=(w, 2 * m),
                                      initializer="zeros")
    self.out_bias = self.add_weight(
        name="out_bias", shape=(2 * m,),
        initializer=keras.initializers.Constant([0.0] * m + [self.forget_bias] * m))
    self.built = True

  def call(self, z, context):
    if not self.built:
      self.build()
    # Under --mixed_precision the MADE computes in the policy's dtype (its variables are
    # read in it; the masks are cast to it) and returns float32 for the flow's gates.
    dtype = self.compute_dtype
    mask_in, mask_hidden, mask_out = (tf.cast(m, dtype) for m in (
        self._mask_in, self._mask_hidden, self._mask_out))
    a = (tf.matmul(z, self.kernels[0] * mask_in)
         + tf.matmul(context, self.context_kernel) + self.biases[0])
    a = tf.nn.elu(a)
    for kernel, bias in zip(self.kernels[1:], self.biases[1:]):
      a = tf.nn.elu(tf.matmul(a, kernel * mask_hidden) + bias)
    mask_out = tf.concat([mask_out, mask_out], axis=1)
    out = tf.matmul(a, self.out_kernel * mask_out) + self.out_bias
    shift, s = tf.split(precision.to_float32(out), 2, axis=-1)
    return shift, s

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim, "width": self.width,
            "context_dim": self.context_dim, "depth": self.depth, "reverse": self.reverse,
            "forget_bias": self.forget_bias}


@POSTERIORS.register("iaf")
@keras.saving.register_keras_serializable(package="rae_tf")
class IAFPosterior(Posterior):
  """A diagonal Gaussian refined by inverse autoregressive flow steps (VAE + IAF).

  h = [mean (m), log_var (m), context (context_dim)]. Each step is the paper's numerically
  stable gated update (Kingma et al. 2016, Algorithm 1): [m_t, s_t] = MADE_t(z, c),
  sigma_t = sigmoid(s_t), z <- sigma_t * z + (1 - sigma_t) * m_t, whose log-determinant is
  sum log sigma_t; consecutive steps reverse the variable order.

  Args:
    latent_dim: m.
    num_steps: T, IAF steps (paper's MNIST: 2 to 8).
    width: hidden units of each MADE (paper's MNIST: 320 or 1920).
    depth: hidden layers of each MADE (2).
    context_dim: size of the context c (default: width).
    forget_bias: initial bias of s_t (paper: +1 or +2 so sigma_t starts near 1).
  """

  def __init__(self, latent_dim: int, num_steps: int = 2, width: int = 320, depth: int = 2,
               context_dim: Optional[int] = None, forget_bias: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    if num_steps < 0:
      raise ConfigError(f"--iaf_steps={num_steps} must be >= 0")
    self.latent_dim = int(latent_dim)
    self.num_steps, self.width, self.depth = int(num_steps), int(width), int(depth)
    self.context_dim = int(context_dim) if context_dim else self.width
    self.forget_bias = float(forget_bias)
    self.steps = [ConditionalMADE(self.latent_dim, self.width, self.context_dim, self.depth,
                                  reverse=bool(t % 2), forget_bias=self.forget_bias,
                                  name=f"iaf_step_{t}")
                  for t in range(self.num_steps)]

  def encoder_output_dim(self, latent_dim):
    if int(latent_dim) != self.latent_dim:
      raise ConfigError(f"IAF posterior built for m = {self.latent_dim}, asked for "
                        f"{latent_dim}")
    return 2 * self.latent_dim + self.context_dim

  def parameters(self, h):
    m = self.latent_dim
    return h[:, :m], h[:, m:2 * m]

  def _context(self, h):
    return h[:, 2 * self.latent_dim:]

  def flow(self, z, context):
    """(z_T, sum over steps and dims of log sigma_t [batch]) for z_0 = z."""
    log_det = tf.zeros(tf.shape(z)[:1], z.dtype)
    for step in self.steps:
      shift, s = step(z, context)
      gate = tf.sigmoid(s)
      z = gate * z + (1.0 - gate) * shift
      log_det += tf.reduce_sum(tf.math.log_sigmoid(s), axis=-1)
    return z, log_det

  def code(self, h):
    mean, _ = self.parameters(h)
    return self.flow(mean, self._context(h))[0]

  def draw(self, h, eps):
    mean, log_var = self.parameters(h)
    z0 = mean + tf.exp(0.5 * log_var) * eps
    z, log_det = self.flow(z0, self._context(h))
    return Draw(z, diagonal_gaussian_log_prob(eps, log_var) - log_det, mean, log_var)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim,
            "num_steps": self.num_steps, "width": self.width, "depth": self.depth,
            "context_dim": self.context_dim, "forget_bias": self.forget_bias}
