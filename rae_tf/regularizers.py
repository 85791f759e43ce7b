"""Regularizer terms: the lambda * D_Z(Q(z), P(z)) part of the objective, and friends.

Each term is a Keras layer holding its coefficient. Its `compute` on the auto-encoder's
forward pass (`Forward`) returns the *unweighted* scalar; the model multiplies by `coefficient`.
A term that trains networks of its own (an adversarial critic, a learned prior's generator)
returns them as `players` (`rae_tf.players`): update phases with their own losses and
optimizers, which the model runs after the auto-encoder's update, in order.
"""
import copy
import dataclasses
from typing import Any, List, Optional

import keras
import tensorflow as tf

from rae_tf import divergences
from rae_tf import players as rae_players
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

  # False: the term is computed and logged, but a player (not the auto-encoder's loss)
  # optimises it (FlexAE's encoder-adversarial phase).
  in_autoencoder_loss = True

  def players(self, model) -> List[rae_players.Player]:
    """The update phases of the term's own networks, with optimizers (none by default).

    Called by the model's compile, inside the strategy scope.
    """
    del model
    return []

  @property
  def has_players(self) -> bool:
    return type(self).players is not Term.players

  def build_networks(self, latent_dim: int):
    """Builds the term's own networks (called by the model's build_all)."""

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

  The auto-encoder term pushes codes to look like prior samples; the term's critic player
  ("<name>_critic") updates the critic with its own Adam after the auto-encoder's step.

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

  def build_networks(self, latent_dim):
    self.critic(tf.zeros((2, latent_dim)))

  def players(self, model):
    return [rae_players.Player(
        f"{self.name}_critic", lambda: self.critic.trainable_variables, self._critic_step,
        rae_players.adam(self.learning_rate, beta_1=self.adam_beta_1, name="critic_adam"),
        self.learning_rate, steps=self.critic_steps)]

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
    # sqrt(. + eps), not tf.norm: the norm's gradient at a zero gradient (all ReLUs of
    # the critic dead at an interpolate) is NaN, which diverged FlexAE runs.
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=1) + 1e-12)
    penalty = tf.reduce_mean(tf.square(norm - 1.0))
    return tf.reduce_mean(score_q) - tf.reduce_mean(score_p) + self.gp_weight * penalty

  def _critic_step(self, state, i):
    """Critic update i on the step's (fixed) codes and fresh prior samples."""
    z_q = tf.stop_gradient(state.fwd.z)
    seed = state.fwd.seed + tf.constant([1000 + 2 * i, 0], tf.int64)
    z_p = state.model.prior.sample(tf.shape(z_q)[0], seed)
    return self.critic_loss(z_q, z_p, seed + tf.constant([1, 0], tf.int64)), None

  def get_config(self):
    return {**super().get_config(),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "loss": self.loss, "critic_steps": self.critic_steps,
            "learning_rate": self.learning_rate, "gp_weight": self.gp_weight,
            "adam_beta_1": self.adam_beta_1}

  @classmethod
  def from_config(cls, config):
    config = copy.deepcopy(config)  # Keras deserialisation consumes nested dicts.
    config["critic"] = keras.saving.deserialize_keras_object(config["critic"])
    return cls(**config)


@keras.saving.register_keras_serializable(package="rae_tf")
class LearnedPriorAdversary(LatentAdversary):
  """FlexAE's D_Z: a WGAN-GP latent critic between encoded codes and a learned prior.

  The critic scores **encoded codes as real**: L_C = E[C(G(n))] - E[C(E(x))] + GP on
  interpolates between E(x) and G(n). Both distributions move toward each other: the
  prior's generator minimises -E[C(G(n))], the encoder minimises lambda * E[C(E(x))].
  Three players follow the auto-encoder's step, in the authors' order: `critic_steps`
  critic updates, one generator update, one encoder-adversarial update, each with its own
  Adam (beta = (adam_beta_1, adam_beta_2), the authors' (0, 0.9)). The term's logged value
  is the critic's Wasserstein estimate E[C(E(x))] - E[C(G(n))]; it is not added to the
  auto-encoder's loss (the encoder's adversarial update is its own phase, whose learning
  rate relative to the auto-encoder's plays lambda's role in the authors' code).

  Args:
    critic: a Keras model [batch, m] -> [batch, 1].
    coefficient: lambda, the weight of the encoder's adversarial loss.
    critic_steps: critic updates per step (authors: 5).
    learning_rate: the critic's rate (authors: 1e-4).
    generator_learning_rate: the prior generator's rate (authors: 2e-4).
    encoder_learning_rate: the encoder-adversarial rate (authors: 1e-5).
    gp_weight: gradient-penalty weight (10).
    adam_beta_1, adam_beta_2: Adam betas of the three players (authors: 0, 0.9).
  """

  in_autoencoder_loss = False

  def __init__(self, critic, coefficient=1.0, critic_steps=5, learning_rate=1e-4,
               generator_learning_rate=2e-4, encoder_learning_rate=1e-5, gp_weight=10.0,
               adam_beta_1=0.0, adam_beta_2=0.9, loss="wgan_gp", **kwargs):
    if loss != "wgan_gp":
      raise ConfigError("the learned-prior adversary is a WGAN-GP critic (loss=wgan_gp)")
    super().__init__(critic, coefficient, loss="wgan_gp", critic_steps=critic_steps,
                     learning_rate=learning_rate, gp_weight=gp_weight,
                     adam_beta_1=adam_beta_1, **kwargs)
    self.generator_learning_rate = float(generator_learning_rate)
    self.encoder_learning_rate = float(encoder_learning_rate)
    self.adam_beta_2 = float(adam_beta_2)

  def players(self, model):
    if getattr(model.prior, "trained_by_autoencoder", True):
      raise ConfigError("the learned-prior adversary (flexae) needs a learned prior "
                        "(--prior=learned)")

    def adam(rate, role):
      return rae_players.adam(rate, self.adam_beta_1, self.adam_beta_2, name=f"{role}_adam")

    return [
        rae_players.Player(f"{self.name}_critic", lambda: self.critic.trainable_variables,
                           self._critic_step, adam(self.learning_rate, "critic"),
                           self.learning_rate, steps=self.critic_steps, fits_prior=True),
        rae_players.Player(f"{self.name}_prior", lambda: model.prior.trainable_variables,
                           self._prior_step, adam(self.generator_learning_rate, "prior"),
                           self.generator_learning_rate, fits_prior=True),
        rae_players.Player(f"{self.name}_encoder", lambda: model.encoder.trainable_variables,
                           self._encoder_step, adam(self.encoder_learning_rate, "encoder"),
                           self.encoder_learning_rate),
    ]

  def compute(self, fwd):
    return (tf.reduce_mean(self.critic(tf.stop_gradient(fwd.z), training=True))
            - tf.reduce_mean(self.critic(tf.stop_gradient(fwd.prior_z), training=True)))

  def _critic_step(self, state, i):
    z_data = tf.stop_gradient(state.fwd.z)
    seed = state.fwd.seed + tf.constant([1000 + 2 * i, 0], tf.int64)
    z_prior = tf.stop_gradient(state.model.prior.sample(tf.shape(z_data)[0], seed))
    # critic_loss(q, p) = E[C(q)] - E[C(p)] + GP: the prior plays q, the codes play "real".
    return self.critic_loss(z_prior, z_data, seed + tf.constant([1, 0], tf.int64)), None

  def _prior_step(self, state, _):
    seed = state.fwd.seed + tf.constant([3000, 0], tf.int64)
    z_prior = state.model.prior.sample(tf.shape(state.fwd.z)[0], seed)
    return -tf.reduce_mean(self.critic(z_prior, training=True)), None

  def _encoder_step(self, state, _):
    z = state.model.encode(state.x, training=True)
    return self.coefficient * tf.reduce_mean(self.critic(z, training=True)), None

  def get_config(self):
    config = super().get_config()
    config.pop("loss")
    return {**config, "generator_learning_rate": self.generator_learning_rate,
            "encoder_learning_rate": self.encoder_learning_rate,
            "adam_beta_2": self.adam_beta_2}


@keras.saving.register_keras_serializable(package="rae_tf")
class FlowPriorFit(Term):
  """Maximum likelihood of the codes under a flow prior (flexae_flow's D_Z).

  Its player ("<name>_prior") fits the flow to the (fixed) codes of each step:
  min -E[log p_psi(z)]. The logged value is that negative log-likelihood per dimension.
  With coefficient lambda > 0 the auto-encoder also minimises lambda * that NLL (codes
  pulled toward the flow's density, as a VAE's KL pulls toward its prior); the default
  lambda = 0 leaves the codes free and only fits the prior to them, jointly.

  Args:
    coefficient: lambda (weight of the codes' NLL in the auto-encoder loss).
    learning_rate: the flow's Adam rate.
  """

  def __init__(self, coefficient=0.0, learning_rate=1e-3, **kwargs):
    super().__init__(coefficient, **kwargs)
    self.learning_rate = float(learning_rate)

  @property
  def in_autoencoder_loss(self):
    return self.coefficient > 0

  def players(self, model):
    if not hasattr(model.prior, "log_prob") or getattr(model.prior, "trained_by_autoencoder",
                                                       True):
      raise ConfigError("flexae_flow needs a flow prior (--prior=flow)")
    return [rae_players.Player(
        f"{self.name}_prior", lambda: model.prior.trainable_variables, self._prior_step,
        rae_players.adam(self.learning_rate, name="flow_adam"), self.learning_rate,
        fits_prior=True)]

  def _nll(self, prior, z):
    return -tf.reduce_mean(prior.log_prob(z)) / tf.cast(tf.shape(z)[-1], tf.float32)

  def compute(self, fwd):
    return self._nll(fwd.model.prior, fwd.z)

  def _prior_step(self, state, _):
    return self._nll(state.model.prior, tf.stop_gradient(state.fwd.z)), None

  def get_config(self):
    return {**super().get_config(), "learning_rate": self.learning_rate}
