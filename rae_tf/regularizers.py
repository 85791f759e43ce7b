"""Regularizer terms: the lambda * D_Z(Q(z), P(z)) part of the objective, and friends.

Each term is a Keras layer holding its coefficient. Its `compute` on the auto-encoder's
forward pass (`Forward`) returns the *unweighted* scalar; the model multiplies by `coefficient`.
A term that trains its own network (an adversarial critic) also implements
`build_optimizer` and `train_phase`, which the model runs after the auto-encoder update.
"""
import dataclasses
from typing import Any, Optional

import keras
import tensorflow as tf

from rae_tf import divergences
from rae_tf import sampling
from rae_tf.errors import ConfigError


@dataclasses.dataclass
class Forward:
  """One auto-encoder forward pass on a (replica-local) batch.

  Attributes:
    x: the input batch.
    z: the code fed to the decoder (a sample for a Gaussian encoder).
    z_mean: encoder mean (== z for a deterministic encoder).
    z_log_var: encoder log-variance, None for a deterministic encoder.
    logits: decoder output before the likelihood's mean function.
    prior_z: prior samples, one per example.
    seed: the step's stateless seed base ([2] int64).
    model: the RegularizedAutoEncoder.
  """
  x: tf.Tensor
  z: tf.Tensor
  z_mean: tf.Tensor
  z_log_var: Optional[tf.Tensor]
  logits: tf.Tensor
  prior_z: tf.Tensor
  seed: tf.Tensor
  model: Any


@keras.saving.register_keras_serializable(package="rae_tf")
class Term(keras.layers.Layer):
  """Base class of a weighted loss term.

  Args:
    coefficient: the weight of the term in the auto-encoder loss.
  """

  def __init__(self, coefficient: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.coefficient = float(coefficient)

  def compute(self, fwd: Forward):
    """The unweighted scalar value of the term on one forward pass."""
    raise NotImplementedError

  # Terms with their own trainable network override these two.
  trains_own_network = False

  def build_optimizer(self):
    return None

  def get_config(self):
    return {**super().get_config(), "coefficient": self.coefficient}


@keras.saving.register_keras_serializable(package="rae_tf")
class KLDivergence(Term):
  """KL(q(z|x) || N(0, I)), batch mean; coefficient beta. Needs a Gaussian encoder."""

  def compute(self, fwd):
    if fwd.z_log_var is None:
      raise ConfigError("the KL term needs a Gaussian encoder (--encoder=gaussian)")
    return tf.reduce_mean(
        divergences.kl_diagonal_gaussian_to_standard_normal(fwd.z_mean, fwd.z_log_var))


@keras.saving.register_keras_serializable(package="rae_tf")
class MaximumMeanDiscrepancy(Term):
  """MMD between the batch codes and as many prior samples (WAE-MMD).

  Args:
    kernel: "imq" or "rbf".
    prior_variance: sigma_z^2, sets the kernel scale C = 2 m sigma_z^2.
  """

  def __init__(self, coefficient=1.0, kernel="imq", prior_variance=1.0, **kwargs):
    super().__init__(coefficient, **kwargs)
    divergences.MMD_KERNELS.get(kernel)  # Fails early on a bad --mmd_kernel.
    self.kernel = kernel
    self.prior_variance = float(prior_variance)

  def compute(self, fwd):
    return divergences.mmd(fwd.z, fwd.prior_z, self.kernel, self.prior_variance)

  def get_config(self):
    return {**super().get_config(), "kernel": self.kernel,
            "prior_variance": self.prior_variance}


@keras.saving.register_keras_serializable(package="rae_tf")
class LatentL2(Term):
  """RAE's code penalty: batch mean of ||z||^2."""

  def compute(self, fwd):
    return tf.reduce_mean(tf.reduce_sum(tf.square(fwd.z), axis=1))


@keras.saving.register_keras_serializable(package="rae_tf")
class DecoderWeightDecay(Term):
  """RAE-L2: sum of squared decoder kernel weights."""

  def compute(self, fwd):
    kernels = [v for v in fwd.model.decoder.trainable_variables if "kernel" in v.path]
    return tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])


@keras.saving.register_keras_serializable(package="rae_tf")
class DecoderGradientPenalty(Term):
  """RAE-GP: batch mean of ||d ||D(z)||^2 / dz||^2 (smooth decoder)."""

  def compute(self, fwd):
    model = fwd.model
    with tf.GradientTape() as tape:
      tape.watch(fwd.z)
      out = model.likelihood.mean(model.decoder(fwd.z, training=True))
      sq_norm = tf.reduce_sum(tf.square(out))
    grad = tape.gradient(sq_norm, fwd.z)
    return tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=1))


@keras.saving.register_keras_serializable(package="rae_tf")
class LatentAdversary(Term):
  """A latent critic C(z) that tells encoded codes from prior samples (WAE-GAN / AAE).

  The auto-encoder term pushes codes to look like prior samples; `train_phase` updates the
  critic with its own optimizer (built in the strategy scope by the model's `compile`).

  Args:
    critic: a Keras model [batch, m] -> [batch, 1].
    coefficient: lambda.
    loss: "gan" (WAE-GAN: lambda * [BCE(C(p), 1) + BCE(C(q), 0)] for the critic,
      non-saturating lambda * BCE(C(q), 1) for the encoder) or "wgan_gp"
      (critic E[C(q)] - E[C(p)] + gp_weight * GP, encoder -E[C(q)]).
    critic_steps: critic updates per auto-encoder step.
    learning_rate: the critic's Adam learning rate.
    gp_weight: gradient-penalty weight for "wgan_gp".
    adam_beta_1: the critic optimizer's beta_1.
  """

  trains_own_network = True

  def __init__(self, critic, coefficient=1.0, loss="gan", critic_steps=1,
               learning_rate=5e-4, gp_weight=10.0, adam_beta_1=0.5, **kwargs):
    super().__init__(coefficient, **kwargs)
    if loss not in ("gan", "wgan_gp"):
      raise ConfigError(f"unknown adversarial loss {loss!r}; choose gan or wgan_gp")
    if critic_steps < 1:
      raise ConfigError(f"--critic_steps={critic_steps} must be >= 1")
    self.critic = critic
    self.loss = loss
    self.critic_steps = int(critic_steps)
    self.learning_rate = float(learning_rate)
    self.gp_weight = float(gp_weight)
    self.adam_beta_1 = float(adam_beta_1)
    self.optimizer = None

  def build_optimizer(self):
    self.optimizer = keras.optimizers.Adam(self.learning_rate, beta_1=self.adam_beta_1,
                                           name="critic_adam")
    self.optimizer.build(self.critic.trainable_variables)
    return self.optimizer

  def compute(self, fwd):
    score_q = self.critic(fwd.z, training=True)
    if self.loss == "gan":
      return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
          labels=tf.ones_like(score_q), logits=score_q))
    return -tf.reduce_mean(score_q)

  def critic_loss(self, z_q, z_p, seed):
    score_q = self.critic(z_q, training=True)
    score_p = self.critic(z_p, training=True)
    if self.loss == "gan":
      bce = tf.nn.sigmoid_cross_entropy_with_logits
      return self.coefficient * tf.reduce_mean(
          bce(labels=tf.ones_like(score_p), logits=score_p)
          + bce(labels=tf.zeros_like(score_q), logits=score_q))
    u = sampling.uniform(tf.shape(z_q)[0], [1], seed)
    between = u * z_q + (1.0 - u) * z_p
    with tf.GradientTape() as tape:
      tape.watch(between)
      score = self.critic(between, training=True)
    grad = tape.gradient(score, between)
    penalty = tf.reduce_mean(tf.square(tf.norm(grad, axis=1) - 1.0))
    return tf.reduce_mean(score_q) - tf.reduce_mean(score_p) + self.gp_weight * penalty

  def train_phase(self, fwd: Forward, replicas: int):
    """Runs `critic_steps` critic updates on the (fixed) codes of this batch.

    Returns:
      The last critic loss (unscaled), for logging.
    """
    z_q = tf.stop_gradient(fwd.z)
    loss = tf.constant(0.0)
    for i in range(self.critic_steps):
      seed = fwd.seed + tf.constant([1000 + 2 * i, 0], tf.int64)
      z_p = fwd.model.prior.sample(tf.shape(z_q)[0], seed)
      with tf.GradientTape() as tape:
        loss = self.critic_loss(z_q, z_p, seed + tf.constant([1, 0], tf.int64))
        # Optimizers sum gradients over replicas: scale the replica-local mean.
        scaled = loss / replicas
      variables = self.critic.trainable_variables
      self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
    return loss

  def get_config(self):
    return {**super().get_config(),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "loss": self.loss, "critic_steps": self.critic_steps,
            "learning_rate": self.learning_rate, "gp_weight": self.gp_weight,
            "adam_beta_1": self.adam_beta_1}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["critic"] = keras.saving.deserialize_keras_object(config["critic"])
    return cls(**config)
