"""Latent terms estimated by a density-ratio critic: FactorVAE's total correlation and the
VAE with implicit optimal prior's KL.

Both train a critic T(z) by logistic regression to tell codes z ~ q(z) (label 1) from
reference samples z ~ r(z) (label 0). At its optimum T(z) = log q(z) / r(z), so
E_q[T(z)] estimates KL(q || r) and the auto-encoder can differentiate T(z) through the
(reparameterised) code z. The critic is a player of its own, as `LatentAdversary`'s critic
(TF-GAN style: its variables, loss, optimizer and updates per step are explicit); these terms
reuse that machinery (the critic player, optimizers, serialisation) and only change the
critic's loss and its reference samples:

* FactorVAE (Kim & Mnih 2018): r = prod_j q(z_j), sampled by permuting every dimension of
  the second half-batch's codes across the batch; T(z) estimates the total correlation.
* VAE-IOP (Takahashi et al. 2019): r = N(0, I); T(z) estimates log q(z) / p(z) and
  KL(q(z|x) || q(z)) = KL(q(z|x) || N(0, I)) - E_q(z|x)[T(z)].
"""
import keras
import tensorflow as tf

from rae_tf import divergences
from rae_tf import priors
from rae_tf import sampling
from rae_tf.errors import ConfigError
from rae_tf.networks.common import KERNEL_INIT
from rae_tf.regularizers import LatentAdversary

# Salt of the FactorVAE permutation draws (apart from the critic's other per-step draws).
_SALT_PERMUTATION = 7000

ACTIVATIONS = ("leaky_relu", "relu", "tanh")


def build_ratio_critic(input_dim: int, *, width: int, depth: int,
                       activation: str = "leaky_relu", name: str = "ratio_critic"
                       ) -> keras.Model:
  """z [B, input_dim] -> depth x Dense(width, activation) -> Dense(1): a logit T(z).

  Args:
    input_dim: latent size m.
    width: hidden units per layer (FactorVAE: 1000; IOP: 500).
    depth: hidden layers (FactorVAE: 6; IOP: 3).
    activation: "leaky_relu" (slope 0.2, FactorVAE), "relu" or "tanh" (IOP).
    name: model name.

  Returns:
    A functional keras.Model with linear output [B, 1].
  """
  if activation not in ACTIVATIONS:
    raise ConfigError(f"unknown critic activation {activation!r}; choose one of: "
                      + ", ".join(ACTIVATIONS))
  inputs = keras.Input((input_dim,), dtype="float32")
  h = inputs
  for _ in range(depth):
    h = keras.layers.Dense(width, kernel_initializer=KERNEL_INIT)(h)
    h = (keras.layers.LeakyReLU(negative_slope=0.2)(h) if activation == "leaky_relu"
         else keras.layers.Activation(activation)(h))
  return keras.Model(inputs, keras.layers.Dense(1, kernel_initializer=KERNEL_INIT)(h),
                     name=name)


def permute_dims(z, seed):
  """Every column of z [n, m] permuted independently across the n rows (stateless).

  The rows of the result are samples of prod_j q(z_j) when the rows of z are samples of
  q(z) (FactorVAE's Algorithm 2).

  Args:
    z: [n, m] codes.
    seed: [2] int64 stateless seed.
  """
  n = tf.shape(z)[0]
  keys = sampling.uniform(n, [z.shape[-1]], seed)  # [n, m]; argsort of each column.
  order = tf.transpose(tf.argsort(keys, axis=0))  # [m, n]
  return tf.transpose(tf.gather(tf.transpose(z), order, batch_dims=1))


@keras.saving.register_keras_serializable(package="rae_tf")
class DensityRatioTerm(LatentAdversary):
  """Base class: a critic T(z) trained to estimate log q(z) / r(z) by logistic regression.

  The critic player ("<name>_critic") minimises
    BCE(T(z_q), 1) + BCE(T(z_r), 0)
  on the step's (fixed) codes z_q and reference samples z_r from `_critic_samples`, for
  `critic_steps` updates per step with its own Adam. Subclasses define the reference and
  the term's value.

  Args:
    critic: a Keras model [batch, m] -> [batch, 1] (a logit).
    coefficient: the term's weight in the auto-encoder's loss.
    critic_steps: critic updates per auto-encoder step.
    learning_rate: the critic's Adam rate.
    adam_beta_1, adam_beta_2: the critic's Adam betas.
    optimizer: the critic's optimizer, "adam" (the authors') or "rmsprop" (`--optimizer`).
  """

  def __init__(self, critic, coefficient=1.0, critic_steps=1, learning_rate=1e-4,
               adam_beta_1=0.5, adam_beta_2=0.9, optimizer="adam", **kwargs):
    for key in ("loss", "gp_weight", "encoder_learning_rate"):
      kwargs.pop(key, None)  # Fixed for these terms (a config of LatentAdversary's).
    super().__init__(critic, coefficient, loss="gan", critic_steps=critic_steps,
                     learning_rate=learning_rate, adam_beta_1=adam_beta_1,
                     adam_beta_2=adam_beta_2, optimizer=optimizer, **kwargs)

  def log_ratio(self, z, training=False):
    """T(z) [batch]: the critic's estimate of log q(z) / r(z)."""
    return self._score(z, training=training)[:, 0]

  def critic_loss(self, z_q, z_p, seed=None):
    """Logistic loss: codes z_q are label 1, reference samples z_p label 0 (unweighted:
    the term's coefficient weighs the auto-encoder's side only)."""
    del seed
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    t_q = self.log_ratio(z_q, training=True)
    t_p = self.log_ratio(z_p, training=True)
    return (tf.reduce_mean(bce(labels=tf.ones_like(t_q), logits=t_q))
            + tf.reduce_mean(bce(labels=tf.zeros_like(t_p), logits=t_p)))

  def _critic_samples(self, state, i):
    """(codes, reference samples) for critic update i; both without gradients."""
    raise NotImplementedError

  def _critic_step(self, state, i):
    z_q, z_r = self._critic_samples(state, i)
    return self.critic_loss(tf.stop_gradient(z_q), tf.stop_gradient(z_r)), None

  def get_config(self):
    config = super().get_config()
    for key in ("loss", "gp_weight", "encoder_learning_rate"):
      config.pop(key)
    return config


@keras.saving.register_keras_serializable(package="rae_tf")
class TotalCorrelation(DensityRatioTerm):
  """FactorVAE's total correlation TC(z) = KL(q(z) || prod_j q(z_j)) ~ E_q[T(z)].

  The discriminator D = sigmoid(T) tells codes z ~ q(z) from codes whose dimensions were
  permuted across the batch, samples of prod_j q(z_j). As the authors (Algorithm 2 and
  their code), the codes of the first half-batch are D's "q(z)" side and the permuted
  codes of the second half its "prod_j q(z_j)" side. The auto-encoder minimises
  gamma * E[T(z)] over the whole batch (gradients reach the encoder through z); D is
  trained by its own player (authors: Adam 1e-4, betas 0.5 / 0.9, one update per step).

  Args:
    critic: the discriminator's logit network [batch, m] -> [batch, 1] (authors:
      6 x 1000 leaky ReLU; they output two logits, whose difference is this one).
    coefficient: gamma.
    critic_steps, learning_rate, adam_beta_1, adam_beta_2: the discriminator's player.
  """

  def compute(self, fwd):
    return tf.reduce_mean(self.log_ratio(fwd.z))

  def _critic_samples(self, state, i):
    z = state.fwd.z
    half = tf.shape(z)[0] // 2
    seed = state.fwd.seed + tf.constant([_SALT_PERMUTATION + i, 0], tf.int64)
    return z[:half], permute_dims(z[half:2 * half], seed)


@keras.saving.register_keras_serializable(package="rae_tf")
class ImplicitOptimalPriorKL(DensityRatioTerm):
  """VAE-IOP's KL(q(z|x) || q(z)) = KL(q(z|x) || N(0, I)) - E_q(z|x)[log q(z) / p(z)].

  The prior is the aggregate posterior q(z) (the ELBO's optimal prior); the log density
  ratio log q(z) / N(z; 0, I) is the critic T(z), trained by its own player to tell the
  step's codes (label 1) from the model's prior samples N(0, I) (label 0). The
  auto-encoder minimises beta * batch mean of [KL(q(z|x) || N(0, I)) - T(z)], z the
  reparameterised code; with T held fixed that is the exact gradient, because
  E_pd E_q(z|x)[grad_phi log q_phi(z)] = 0 (Takahashi et al. 2019, Sec. 3). Authors'
  code: T is 3 x 500 tanh (with dropout, left out here so per-step noise stays
  stateless), Adam 1e-3, 10 discriminator epochs per VAE epoch (here `critic_steps`
  updates per step). The model's `priors.DensityRatioPrior` samples q(z) through T.

  Args:
    critic: T's network [batch, m] -> [batch, 1].
    coefficient: beta (1 = the ELBO).
    critic_steps, learning_rate, adam_beta_1, adam_beta_2: T's player.
  """

  # Its critic is the log density ratio a DensityRatioPrior samples through.
  estimates_prior_ratio = True

  def compute(self, fwd):
    if fwd.z_log_var is None:
      raise ConfigError("the implicit-optimal-prior KL needs a Gaussian encoder")
    kl = divergences.kl_diagonal_gaussian_to_standard_normal(fwd.z_mean, fwd.z_log_var)
    return tf.reduce_mean(kl - self.log_ratio(fwd.z))

  def players(self, model):
    if not isinstance(model.prior, priors.StandardNormalPrior):
      raise ConfigError("vae_iop's density ratio is log q(z) / N(z; 0, I): it needs "
                        "--prior=density_ratio (or standard_normal)")
    return super().players(model)

  def _critic_samples(self, state, i):
    z = state.fwd.z
    seed = state.fwd.seed + tf.constant([1000 + 2 * i, 0], tf.int64)  # Fresh per update.
    return z, state.model.sample_prior(tf.shape(z)[0], seed)
