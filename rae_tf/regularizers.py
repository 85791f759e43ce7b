"""Regularizer terms: the lambda * D_Z(Q(z), P(z)) part of the objective, and friends.

Each term is a Keras layer holding its coefficient. Its `compute` on the auto-encoder's
forward pass (`Forward`) returns the *unweighted* scalar; the model multiplies by `coefficient`.
A term that trains networks of its own (an adversarial critic, a learned prior's generator)
returns them as `players` (`rae_tf.players`): update phases with their own losses and
optimizers, which the model runs after the auto-encoder's update, in order.
"""
import contextlib
import copy
import dataclasses
from typing import Any, List, Optional

import keras
import tensorflow as tf

from rae_tf import divergences
from rae_tf import players as rae_players
from rae_tf import precision
from rae_tf import sampling
from rae_tf.errors import ConfigError
from rae_tf.metrics.latent import MASK_THRESHOLD


@dataclasses.dataclass
class Forward:
  """One auto-encoder forward pass on a (replica-local) batch.

  Attributes:
    x: the input batch.
    z: the code fed to the decoder (a sample for a Gaussian encoder), after the model's
      latent transform.
    z_mean: encoder mean (== z for a deterministic encoder).
    z_log_var: encoder log-variance, None for a deterministic encoder.
    logits: decoder output before the likelihood's mean function.
    prior_z: prior samples, one per example, after the model's latent transform.
    seed: the step's stateless seed base ([2] int64).
    model: the RegularizedAutoEncoder.
    z_raw: the encoder's code before the model's latent transform (== z without one).
    log_q: log q(z_raw|x) [batch] of a stochastic posterior's draw (Gaussian, IAF), None
      for a deterministic encoder.
    training: the pass's mode (a term's own network passes run in it too).
    decoder_tape: a GradientTape watching z that recorded the decoder's pass to `logits`,
      when a term `reads_decoder_gradient` (else None). A term re-enters it (`with tape:`)
      to record what it computes from the logits, then takes its one `gradient`.
    decoder_accumulator: a ForwardAccumulator that recorded that pass along the tangent
      of the model's one term with a `decoder_tangent` (else None); that term re-enters it
      the same way and reads `jvp`.
  """
  x: tf.Tensor
  z: tf.Tensor
  z_mean: tf.Tensor
  z_log_var: Optional[tf.Tensor]
  logits: tf.Tensor
  prior_z: tf.Tensor
  seed: tf.Tensor
  model: Any
  z_raw: Optional[tf.Tensor] = None
  log_q: Optional[tf.Tensor] = None
  training: bool = True
  decoder_tape: Optional[tf.GradientTape] = None
  decoder_accumulator: Optional[tf.autodiff.ForwardAccumulator] = None


def recorded_decoder_pass(model, z, training, watch=True, persistent=False, tangent=None):
  """(logits, tape, accumulator): the decoder's logits at z and what recorded their pass.

  Args:
    model: the RegularizedAutoEncoder.
    z: [batch, m] codes.
    training: the pass's mode.
    watch: record the pass on a GradientTape watching z (else the tape is None).
    persistent: make that tape persistent (more than one reader).
    tangent: [batch, m]: also record it with a ForwardAccumulator along this tangent
      (else the accumulator is None).
  """
  with contextlib.ExitStack() as stack:
    tape = stack.enter_context(tf.GradientTape(persistent=persistent)) if watch else None
    if tape is not None:
      tape.watch(z)
    accumulator = (stack.enter_context(tf.autodiff.ForwardAccumulator(z, tangent))
                   if tangent is not None else None)
    logits = model.decoder_logits(z, training=training)
  return logits, tape, accumulator


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

  # True: the term differentiates the decoder's output with respect to z, and the model's
  # forward pass records its decoder pass for it (`Forward.decoder_tape`).
  reads_decoder_gradient = False

  def decoder_tangent(self, z, seed):
    """A tangent v [batch, m] along which the term reads the decoder's forward-mode
    derivative J v at z, or None (the default: it does not). The model's forward pass then
    records its decoder pass along v (`Forward.decoder_accumulator`); one term per model.

    Args:
      z: the codes fed to the decoder.
      seed: the step's stateless seed base ([2] int64).
    """
    del z, seed
    return None

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
    if not getattr(fwd.model.posterior, "is_diagonal_gaussian", True):
      raise ConfigError("the closed-form KL needs a diagonal Gaussian posterior; use "
                        "regularizers.MonteCarloKL (IAF posterior)")
    return tf.reduce_mean(
        divergences.kl_diagonal_gaussian_to_standard_normal(fwd.z_mean, fwd.z_log_var))


def prior_log_prob(prior, z):
  """log p(z) [batch] under a prior layer: its own `log_prob` (flow, VampPrior), else its
  TFP distribution's (N(0, I), ex-post GMM)."""
  log_prob = getattr(prior, "log_prob", None)
  if log_prob is not None:
    return log_prob(z)
  return prior.distribution().log_prob(z)


@keras.saving.register_keras_serializable(package="rae_tf")
class MonteCarloKL(Term):
  """KL(q(z|x) || p(z)) by one Monte-Carlo sample: batch mean of log q(z|x) - log p(z).

  For posteriors or priors without a closed-form KL: an IAF posterior (VAE + IAF), a
  VampPrior (a mixture of encoder posteriors), a flow prior. z is the step's posterior
  draw before the model's latent transform (both densities live in that space); its
  gradient reaches the encoder through the reparameterisation, the prior's parameters
  (VampPrior's pseudo-inputs) through log p(z). Coefficient beta.
  """

  def compute(self, fwd):
    if fwd.log_q is None:
      raise ConfigError("the Monte-Carlo KL needs a stochastic posterior (Gaussian or IAF)")
    z = fwd.z_raw if fwd.z_raw is not None else fwd.z
    return tf.reduce_mean(fwd.log_q - prior_log_prob(fwd.model.prior, z))


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
    # 2 * l2_loss: one reduction op that never materialises k ** 2 (its gradient is k * g).
    return 2.0 * tf.add_n([tf.nn.l2_loss(k) for k in kernels])


@keras.saving.register_keras_serializable(package="rae_tf")
class DecoderGradientPenalty(Term):
  """RAE-GP: batch mean of ||d ||D(z)||^2 / dz||^2 (smooth decoder).

  It differentiates the forward pass's own decoder output (`Forward.decoder_tape`): one
  decoder pass serves the reconstruction and the penalty (a second pass cost about a fifth
  of the step, and updated batch norm's moving statistics twice a step).
  """

  reads_decoder_gradient = True

  def compute(self, fwd):
    tape, logits = fwd.decoder_tape, fwd.logits
    if tape is None:  # A Forward built without the model's pass: decode once more.
      logits, tape, _ = recorded_decoder_pass(fwd.model, fwd.z, fwd.training)
    with tape:
      sq_norm = tf.reduce_sum(tf.square(fwd.model.likelihood.mean(logits)))
    grad = tape.gradient(sq_norm, fwd.z)
    return tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=1))


@keras.saving.register_keras_serializable(package="rae_tf")
class LatentAdversary(Term):
  """A latent critic C(z) that tells encoded codes from prior samples (WAE-GAN / AAE).

  The encoder pushes codes to look like prior samples; the term's critic player
  ("<name>_critic") updates the critic with its own optimizer after the auto-encoder's
  step. The encoder's adversarial loss is either part of the auto-encoder's loss (WAE-GAN:
  one objective, lambda = coefficient) or, with `encoder_learning_rate`, its own phase
  ("<name>_encoder", AAE's regularisation phase) with its own optimizer.

  Args:
    critic: a Keras model [batch, m] -> [batch, 1].
    coefficient: lambda.
    loss: "gan" (critic lambda * [BCE(C(p), 1) + BCE(C(q), 0)], non-saturating encoder
      loss BCE(C(q), 1)) or "wgan_gp" (critic E[C(q)] - E[C(p)] + gp_weight * GP,
      encoder -E[C(q)]).
    critic_steps: critic updates per auto-encoder step.
    learning_rate: the critic's learning rate.
    gp_weight: gradient-penalty weight for "wgan_gp".
    adam_beta_1, adam_beta_2: the betas of the term's Adam optimizers.
    encoder_learning_rate: None = the encoder's adversarial loss joins the auto-encoder's
      loss; a rate = an encoder-adversarial player with its own optimizer.
    optimizer: the players' optimizer, "adam" or "rmsprop" (`rae_tf.players`).
  """

  def __init__(self, critic, coefficient=1.0, loss="gan", critic_steps=1,
               learning_rate=5e-4, gp_weight=10.0, adam_beta_1=0.5, adam_beta_2=0.999,
               encoder_learning_rate=None, optimizer="adam", **kwargs):
    super().__init__(coefficient, **kwargs)
    if loss not in ("gan", "wgan_gp"):
      raise ConfigError(f"unknown adversarial loss {loss!r}; choose gan or wgan_gp")
    if critic_steps < 1:
      raise ConfigError(f"--critic_steps={critic_steps} must be >= 1")
    if optimizer not in rae_players.OPTIMIZERS:
      raise ConfigError(f"unknown --optimizer={optimizer!r}; choose one of: "
                        + ", ".join(rae_players.OPTIMIZERS))
    self.critic = critic
    self.loss = loss
    self.critic_steps = int(critic_steps)
    self.learning_rate = float(learning_rate)
    self.gp_weight = float(gp_weight)
    self.adam_beta_1 = float(adam_beta_1)
    self.adam_beta_2 = float(adam_beta_2)
    self.encoder_learning_rate = (None if encoder_learning_rate is None
                                  else float(encoder_learning_rate))
    self.optimizer = optimizer

  @property
  def in_autoencoder_loss(self):
    return self.encoder_learning_rate is None

  def build_networks(self, latent_dim):
    self.critic(tf.zeros((2, latent_dim)))

  def _score(self, z, training=True):
    """The critic's output C(z), float32 under any --mixed_precision."""
    return precision.to_float32(self.critic(z, training=training))

  def _optimizer(self, rate, role):
    return rae_players.make_optimizer(self.optimizer, rate, self.adam_beta_1,
                                      self.adam_beta_2, name=role)

  def _critic_player(self, fits_prior=False):
    return rae_players.Player(
        f"{self.name}_critic", lambda: self.critic.trainable_variables, self._critic_step,
        self._optimizer(self.learning_rate, "critic"), self.learning_rate,
        steps=self.critic_steps, fits_prior=fits_prior)

  def _encoder_player(self, model):
    return rae_players.Player(
        f"{self.name}_encoder", lambda: model.encoder.trainable_variables,
        self._encoder_step, self._optimizer(self.encoder_learning_rate, "encoder"),
        self.encoder_learning_rate)

  def players(self, model):
    out = [self._critic_player()]
    if self.encoder_learning_rate is not None:
      out.append(self._encoder_player(model))
    return out

  def encoder_loss(self, z_q):
    """The encoder's (unweighted) adversarial loss on codes z_q."""
    score_q = self._score(z_q, training=True)
    if self.loss == "gan":
      return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
          labels=tf.ones_like(score_q), logits=score_q))
    return -tf.reduce_mean(score_q)

  def compute(self, fwd):
    return self.encoder_loss(fwd.z)

  def critic_loss(self, z_q, z_p, seed):
    score_q = self._score(z_q, training=True)
    score_p = self._score(z_p, training=True)
    if self.loss == "gan":
      bce = tf.nn.sigmoid_cross_entropy_with_logits
      return self.coefficient * tf.reduce_mean(
          bce(labels=tf.ones_like(score_p), logits=score_p)
          + bce(labels=tf.zeros_like(score_q), logits=score_q))
    u = sampling.uniform(tf.shape(z_q)[0], [1], seed)
    between = u * z_q + (1.0 - u) * z_p
    with tf.GradientTape() as tape:
      tape.watch(between)
      score = self._score(between, training=True)
    grad = tape.gradient(score, between)
    # sqrt(. + eps), not tf.norm: the norm's gradient at a zero gradient (all ReLUs of
    # the critic dead at an interpolate) is NaN, which diverged FlexAE runs.
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=1) + 1e-12)
    penalty = tf.reduce_mean(tf.square(norm - 1.0))
    return tf.reduce_mean(score_q) - tf.reduce_mean(score_p) + self.gp_weight * penalty

  # critic_loss(q, p) = E[C(q)] - E[C(p)] + GP. True: the codes are the critic's "real"
  # side p and the prior plays q (FlexAE); False: the codes play q (WAE-GAN, AAE, MaskAAE).
  codes_are_real = False

  def _critic_step(self, state, i):
    """Critic update i on the step's (fixed) codes and fresh prior samples."""
    z_codes = tf.stop_gradient(state.fwd.z)
    seed = state.fwd.seed + tf.constant([1000 + 2 * i, 0], tf.int64)
    z_prior = tf.stop_gradient(state.model.sample_prior(tf.shape(z_codes)[0], seed))
    q, p = (z_prior, z_codes) if self.codes_are_real else (z_codes, z_prior)
    return self.critic_loss(q, p, seed + tf.constant([1, 0], tf.int64)), None

  def _encoder_step(self, state, _):
    """The encoder's own adversarial update, on codes of the updated encoder."""
    return self.coefficient * self.encoder_loss(state.model.encode(state.x, training=True)), None

  def get_config(self):
    return {**super().get_config(),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "loss": self.loss, "critic_steps": self.critic_steps,
            "learning_rate": self.learning_rate, "gp_weight": self.gp_weight,
            "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
            "encoder_learning_rate": self.encoder_learning_rate,
            "optimizer": self.optimizer}

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

  codes_are_real = True

  def __init__(self, critic, coefficient=1.0, critic_steps=5, learning_rate=1e-4,
               generator_learning_rate=2e-4, encoder_learning_rate=1e-5, gp_weight=10.0,
               adam_beta_1=0.0, adam_beta_2=0.9, loss="wgan_gp", **kwargs):
    if loss != "wgan_gp":
      raise ConfigError("the learned-prior adversary is a WGAN-GP critic (loss=wgan_gp)")
    super().__init__(critic, coefficient, loss="wgan_gp", critic_steps=critic_steps,
                     learning_rate=learning_rate, gp_weight=gp_weight,
                     adam_beta_1=adam_beta_1, adam_beta_2=adam_beta_2,
                     encoder_learning_rate=encoder_learning_rate, **kwargs)
    self.generator_learning_rate = float(generator_learning_rate)

  def players(self, model):
    if getattr(model.prior, "trained_by_autoencoder", True):
      raise ConfigError("the learned-prior adversary (flexae) needs a learned prior "
                        "(--prior=learned)")
    return [
        self._critic_player(fits_prior=True),
        rae_players.Player(f"{self.name}_prior", lambda: model.prior.trainable_variables,
                           self._prior_step,
                           self._optimizer(self.generator_learning_rate, "prior"),
                           self.generator_learning_rate, fits_prior=True),
        self._encoder_player(model),
    ]

  def compute(self, fwd):
    return (tf.reduce_mean(self._score(tf.stop_gradient(fwd.z), training=True))
            - tf.reduce_mean(self._score(tf.stop_gradient(fwd.prior_z), training=True)))

  def encoder_loss(self, z_q):
    # The codes are the critic's "real" side: the encoder lowers their score.
    return tf.reduce_mean(self._score(z_q, training=True))

  def _prior_step(self, state, _):
    seed = state.fwd.seed + tf.constant([3000, 0], tf.int64)
    z_prior = state.model.sample_prior(tf.shape(state.fwd.z)[0], seed)
    return -tf.reduce_mean(self._score(z_prior, training=True)), None

  def get_config(self):
    config = super().get_config()
    config.pop("loss")
    return {**config, "generator_learning_rate": self.generator_learning_rate}


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


def _global_batch_mean(z):
  """The batch mean over every replica's batch (the local mean on one device).

  Stop-gradient is exact for a centred second moment: d/d(mean) sum_i (z_i - mean)^2 = 0
  at the global mean, so no gradient needs to flow through the all-reduce.
  """
  ctx = tf.distribute.get_replica_context()
  local = tf.stop_gradient(tf.reduce_mean(z, axis=0))
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return local
  # Equal local batches (the pipeline's global batch splits evenly): mean of means.
  return ctx.all_reduce("sum", local) / ctx.num_replicas_in_sync


@keras.saving.register_keras_serializable(package="rae_tf")
class MaskedVariancePenalty(Term):
  """MaskAAE: closed dimensions must carry no variance in the unmasked codes.

  L_var = mean over batch and dims of (z_e - mean_batch z_e)^2 * exp(-sharpness * mu^2),
  on the encoder's raw codes z_e (before the mask). A dimension the mask closes (mu -> 0)
  is pushed to a constant, so reopening it would carry nothing; open dims (mu near 1) are
  barely touched (exp(-10) = 4.5e-5). Authors: coefficient 100, sharpness 10.

  Args:
    coefficient: its weight in the auto-encoder loss.
    sharpness: the 10 of exp(-10 mu^2).
  """

  def __init__(self, coefficient=100.0, sharpness=10.0, **kwargs):
    super().__init__(coefficient, **kwargs)
    self.sharpness = float(sharpness)

  def compute(self, fwd):
    mask = fwd.model.latent_transform.mask()
    centred = fwd.z_raw - _global_batch_mean(fwd.z_raw)
    return tf.reduce_mean(tf.square(centred) * tf.exp(-self.sharpness * tf.square(mask)))

  def get_config(self):
    return {**super().get_config(), "sharpness": self.sharpness}


@keras.saving.register_keras_serializable(package="rae_tf")
class MaskedLatentAdversary(LatentAdversary):
  """MaskAAE's D_Z: a WGAN-GP critic between masked codes mu*E(x) and the masked prior
  mu*z_p, plus the mask's own player.

  The model's latent transform is the mask (`rae_tf.latent_transforms.MaskLayer`), so the
  critic, the decoder and sampling all see masked codes. Players after the auto-encoder,
  in the authors' order: `critic_steps` critic updates (E[C(mu z_e)] - E[C(mu z_p)] + GP),
  one encoder update (-lambda * E[C(mu E(x))]) and one mask update on

    L_mu = w_rec * reconstruction(x, D(mu z_e)) + (1 + W)^2 + c_poly * sum_i |mu_i (1 - mu_i)|

  where W = E[C(mu z_p)] - E[C(mu z_e)] is the critic's Wasserstein estimate (the
  authors write (1 - (E[C(mu z_e)] - E[C(mu z_p)]))^2, the same thing). Reconstruction
  keeps useful dimensions open; W closes dimensions where codes and prior differ; the
  polynomial term drives each mu_i to 0 or 1. c_poly starts at `poly_start` and doubles
  every `poly_period` steps of the global step, up to `poly_cap`; the doublings start
  after `poly_delay` steps.

  Args:
    critic: a Keras model [batch, m] -> [batch, 1].
    coefficient: lambda of the encoder's adversarial loss.
    critic_steps: critic updates per step (authors: 5).
    learning_rate: the critic's rate (authors: 1e-4).
    encoder_learning_rate: the encoder-adversarial rate (authors: 1e-4).
    mask_learning_rate: the mask's rate (authors: 5e-4).
    reconstruction_weight: w_rec, in units of the model's likelihood cost (a per-example
      sum over pixels); the authors' 1000 x per-pixel-mean BCE is 1000 / D.
    poly_start: c_poly's start (authors: 2 / m).
    poly_period: steps between doublings of c_poly (authors: 4R, R ~ 112.5 m).
    poly_cap: c_poly's largest value (authors: 2048).
    poly_delay: steps before the first doubling (authors: 0).
    gp_weight: gradient-penalty weight (10).
    optimizer: "rmsprop" (authors) or "adam".
  """

  def __init__(self, critic, coefficient=1.0, critic_steps=5, learning_rate=1e-4,
               encoder_learning_rate=1e-4, mask_learning_rate=5e-4,
               reconstruction_weight=1.0, poly_start=0.03125, poly_period=1000,
               poly_cap=2048.0, poly_delay=0, gp_weight=10.0, optimizer="rmsprop",
               loss="wgan_gp", **kwargs):
    if loss != "wgan_gp":
      raise ConfigError("MaskAAE's adversary is a WGAN-GP critic (loss=wgan_gp)")
    if poly_period < 1:
      raise ConfigError(f"--mask_poly_period={poly_period} must be >= 1 step")
    super().__init__(critic, coefficient, loss="wgan_gp", critic_steps=critic_steps,
                     learning_rate=learning_rate, gp_weight=gp_weight,
                     encoder_learning_rate=encoder_learning_rate, optimizer=optimizer,
                     **kwargs)
    self.mask_learning_rate = float(mask_learning_rate)
    self.reconstruction_weight = float(reconstruction_weight)
    self.poly_start = float(poly_start)
    self.poly_period = int(poly_period)
    self.poly_cap = float(poly_cap)
    self.poly_delay = int(poly_delay)

  def players(self, model):
    if not hasattr(model.latent_transform, "mask"):
      raise ConfigError("the masked adversary (maskaae) needs a mask latent transform")
    return [
        self._critic_player(),
        self._encoder_player(model),
        rae_players.Player(f"{self.name}_mask",
                           lambda: model.latent_transform.trainable_variables,
                           self._mask_step,
                           self._optimizer(self.mask_learning_rate, "mask"),
                           self.mask_learning_rate,
                           log_names=("active_dims", "mask_poly")),
    ]

  def compute(self, fwd):
    """The critic's Wasserstein estimate W = E[C(mu z_p)] - E[C(mu z_e)] (logged)."""
    return (tf.reduce_mean(self._score(tf.stop_gradient(fwd.prior_z), training=True))
            - tf.reduce_mean(self._score(tf.stop_gradient(fwd.z), training=True)))

  def poly_weight(self, step):
    """c_poly at global step `step`: poly_start * 2^floor((step - delay) / period), capped."""
    step = tf.cast(step, tf.float32)
    doublings = tf.floor(tf.maximum(step - self.poly_delay, 0.0) / self.poly_period)
    return tf.minimum(self.poly_start * tf.pow(2.0, doublings), self.poly_cap)

  def _mask_step(self, state, _):
    model = state.model
    mask = model.latent_transform.mask()
    z_raw = tf.stop_gradient(state.fwd.z_raw)
    z_q = model.latent_transform(z_raw)
    seed = state.fwd.seed + tf.constant([5000, 0], tf.int64)
    z_p = model.sample_prior(tf.shape(z_raw)[0], seed)  # mu * z_p: grads reach mu.
    logits = model.decoder_logits(z_q, training=True)
    reconstruction = tf.reduce_mean(model.likelihood.cost(state.x, logits))
    wasserstein = (tf.reduce_mean(self._score(z_p, training=True))
                   - tf.reduce_mean(self._score(z_q, training=True)))
    c_poly = self.poly_weight(model.optimizer.iterations)
    polarise = tf.reduce_sum(tf.abs(mask * (1.0 - mask)))
    loss = (self.reconstruction_weight * reconstruction + tf.square(1.0 + wasserstein)
            + c_poly * polarise)
    active = tf.reduce_sum(tf.cast(mask >= MASK_THRESHOLD, tf.float32))
    return loss, {f"{self.name}_mask": loss, "active_dims": active, "mask_poly": c_poly}

  def get_config(self):
    config = super().get_config()
    for key in ("loss", "adam_beta_1", "adam_beta_2"):
      config.pop(key)
    return {**config, "mask_learning_rate": self.mask_learning_rate,
            "reconstruction_weight": self.reconstruction_weight,
            "poly_start": self.poly_start, "poly_period": self.poly_period,
            "poly_cap": self.poly_cap, "poly_delay": self.poly_delay}
