"""RegularizedAutoEncoder: reconstruction cost + sum_k lambda_k * term_k, one train_step.

Every model in the package (AE, VAE, beta-VAE, WAE-MMD, WAE-GAN, RAE-L2/GP/SN, ...) is this
class with different parts: encoder posterior (deterministic, diagonal Gaussian, IAF),
decoder likelihood, regularizer terms, prior.
"""
import copy
from typing import Dict

import keras
import tensorflow as tf

from rae_tf import latent_transforms
from rae_tf import players as rae_players
from rae_tf import posteriors
from rae_tf import precision
from rae_tf import regularizers
from rae_tf import sampling
from rae_tf.regularizers import Forward, Term

# Salts that keep the step's independent draws apart (see rae_tf.sampling.step_seed).
_SALT_ENCODER_NOISE = 1
_SALT_PRIOR = 2


def _logs(logs):
  """Keras 3 averages multi-worker logs along axis 0, which scalars lack: give them one."""
  if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
    return {k: tf.reshape(v, [1]) for k, v in logs.items()}
  return logs


@keras.saving.register_keras_serializable(package="rae_tf")
class RegularizedAutoEncoder(keras.Model):
  """An auto-encoder trained on reconstruction + weighted latent regularizers.

  Args:
    encoder: Keras model x -> h [batch, posterior.encoder_output_dim(m)]: m (deterministic),
      2m (Gaussian: mean and log-variance), 2m + context (IAF).
    decoder: Keras model z -> logits of the data's shape.
    likelihood: a `rae_tf.likelihoods.Likelihood` (reconstruction cost and decoded mean).
    prior: a prior layer (`rae_tf.priors`).
    terms: dict name -> `rae_tf.regularizers.Term`; the loss adds coefficient * term.
    latent_dim: m.
    gaussian_encoder: whether the encoder is a reparameterised diagonal Gaussian (used
      only when `posterior` is None).
    seed: base seed of the stateless per-step noise.
    latent_transform: a layer applied once where a code enters the latent space: to the
      encoder's output and to every prior draw (`rae_tf.latent_transforms`; MaskAAE's
      mask). None = the identity. `encode`, `sample_from_seeds` and the regularizers see
      transformed codes; `decode` takes codes of the latent space as they are.
    posterior: how the encoder's output becomes codes, samples and log q(z|x)
      (`rae_tf.posteriors`). None = deterministic, or diagonal Gaussian with
      `gaussian_encoder`. A prior that needs the encoder (`rae_tf.priors.VampPrior`) is
      attached to the model here.
  """

  def __init__(self, encoder, decoder, likelihood, prior, terms: Dict[str, Term] = None, *,
               latent_dim: int, gaussian_encoder: bool = False, seed: int = 0,
               latent_transform=None, posterior=None, **kwargs):
    # The model itself is float32 glue under any --mixed_precision: its networks carry the
    # mixed policy, and their outputs are cast to float32 where they leave them.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.encoder = encoder
    self.decoder = decoder
    self.likelihood = likelihood
    self.prior = prior
    self.term_names = list((terms or {}).keys())
    self.terms = list((terms or {}).values())
    self.latent_dim = int(latent_dim)
    if posterior is None:
      posterior = (posteriors.DiagonalGaussianPosterior(name="posterior") if gaussian_encoder
                   else posteriors.DeterministicPosterior(name="posterior"))
    self.posterior = posterior
    self.gaussian_encoder = bool(posterior.stochastic)
    self.seed = int(seed)
    self.latent_transform = (latent_transform if latent_transform is not None
                             else latent_transforms.IdentityTransform(name="identity"))
    self.data_shape = tuple(encoder.inputs[0].shape[1:])
    self.trackers = {n: keras.metrics.Mean(name=n)
                     for n in ["loss", "reconstruction"] + self.term_names}
    self.players = []  # Set by compile: the auto-encoder, then every term's players.
    attach = getattr(prior, "attach_model", None)
    if attach is not None:  # The VampPrior's mixture components are encoder posteriors.
      attach(self)

  # ---- parts -------------------------------------------------------------------------
  def encode_distribution(self, x, training=False):
    """(mean, log_var or None) of q(z|x) (of its base Gaussian for an IAF posterior)."""
    return self.posterior.parameters(self._encoder_output(x, training))

  def encode(self, x, training=False):
    """The latent code of x: the posterior's code (the mean for a Gaussian encoder; for
    IAF the mean pushed through the flow), transformed."""
    return self.latent_transform(self.posterior.code(self._encoder_output(x, training)))

  def decode(self, z, training=False):
    """The decoded mean (images in [0, 1])."""
    return self.likelihood.mean(self.decoder_logits(z, training=training))

  def _encoder_output(self, x, training):
    return precision.to_float32(self.encoder(x, training=training))

  def decoder_logits(self, z, training=False):
    """The decoder's logits, float32 under any --mixed_precision."""
    return precision.to_float32(self.decoder(z, training=training))

  def reconstruct(self, x, training=False):
    return self.decode(self.encode(x, training=training), training=training)

  def sample_from_seeds(self, seeds):
    """(images, codes): one deterministic prior sample per int64 seed."""
    z = self.latent_from_seeds(seeds)
    return self.decode(z), z

  def latent_from_seeds(self, seeds):
    """[n, m] prior draws in the latent space, one deterministic draw per int64 seed."""
    return self._to_latent_space(self.prior.sample_from_seeds(seeds))

  def sample_prior(self, batch, seed):
    """[batch, m] prior draws in the latent space (stateless `seed`, replica-sliced)."""
    return self._to_latent_space(self.prior.sample(batch, seed))

  def _to_latent_space(self, prior_z):
    # An ex-post prior (GMM) was fitted to transformed codes: it is in the space already.
    if getattr(self.prior, "in_latent_space", False):
      return prior_z
    return self.latent_transform(prior_z)

  def mask_values(self):
    """The latent mask mu [m] as NumPy (MaskAAE), or None without a mask."""
    values = getattr(self.latent_transform, "mask_values", None)
    return values() if values is not None else None

  def call(self, x, training=False):
    return self.reconstruct(x, training=training)

  @property
  def autoencoder_variables(self):
    """What the auto-encoder player trains: encoder, decoder, likelihood and, unless a
    player of its own trains it (a learned prior), the prior."""
    variables = (self.encoder.trainable_variables + self.posterior.trainable_variables
                 + self.decoder.trainable_variables + self.likelihood.trainable_variables)
    for part in (self.prior, self.latent_transform):
      if getattr(part, "trained_by_autoencoder", True):
        variables += part.trainable_variables
    return variables

  @property
  def adversarial_terms(self):
    """Terms that train networks of their own (critics, generators)."""
    return [t for t in self.terms if t.has_players]

  @property
  def extra_optimizers(self):
    """{player name: optimizer} of every player after the auto-encoder."""
    return {p.name: p.optimizer for p in self.players[1:]}

  def build_all(self):
    """Builds every network (call inside the strategy scope, before compile)."""
    dummy = tf.zeros((2,) + self.data_shape)
    self.reconstruct(dummy)
    self.prior.sample(2, tf.constant([0, 0], tf.int64))
    self.latent_transform(tf.zeros((2, self.latent_dim)))
    for term in self.terms:
      term.build_networks(self.latent_dim)
    self.built = True

  def compile(self, optimizer, mixed_precision: str = "none", **kwargs):
    """Compiles, assembles the players and builds *every* optimizer now.

    Call inside the strategy scope: slots cannot be created lazily inside a distributed
    step, and Keras pre-builds only `self.optimizer` (the auto-encoder's).

    Args:
      optimizer: the auto-encoder player's optimizer (wrapped by the caller for
        `mixed_precision`).
      mixed_precision: --mixed_precision: every other player's optimizer is wrapped for it
        (`rae_tf.precision.wrap_optimizer`: loss scaling for float16).
    """
    if not self.built:
      self.build_all()
    super().compile(optimizer=optimizer, **kwargs)
    self.optimizer.build(self.autoencoder_variables)
    rate = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
    self.players = [rae_players.Player("autoencoder", lambda: self.autoencoder_variables,
                                       self._autoencoder_loss, self.optimizer, rate)]
    for term in self.terms:
      for player in term.players(self):
        player.optimizer = precision.wrap_optimizer(player.optimizer, mixed_precision)
        self.players.append(player)
    names = [p.name for p in self.players]
    if len(set(names)) != len(names) or set(names[1:]) & set(self.trackers):
      raise ValueError(f"player names must be unique and differ from term names: {names}")
    for player in self.players[1:]:
      player.optimizer.build(player.variables())
      for name in (player.name,) + tuple(player.log_names):
        self.trackers[name] = keras.metrics.Mean(name=name)

  @property
  def metrics(self):
    return list(self.trackers.values())

  # ---- training ----------------------------------------------------------------------
  def forward(self, x, seed, training=True):
    """The auto-encoder pass of one step (codes, reconstruction logits, prior draws)."""
    batch = tf.shape(x)[0]
    h = self._encoder_output(x, training)
    eps = None
    if self.posterior.stochastic:
      eps = sampling.normal(batch, [self.latent_dim], seed + [_SALT_ENCODER_NOISE, 0])
    draw = self.posterior.draw(h, eps)
    z_mean, z_log_var, z_raw = draw.mean, draw.log_var, draw.z
    z = self.latent_transform(z_raw)
    # Terms that differentiate the decoder at z (RAE-GP's dD/dz, InjFlow's J v) read this
    # very pass: a second one would cost a forward and its backward, and update batch
    # norm's moving statistics twice a step.
    readers = sum(term.reads_decoder_gradient for term in self.terms)
    tangents = [v for v in (term.decoder_tangent(z, seed) for term in self.terms)
                if v is not None]
    if len(tangents) > 1:
      raise ValueError("at most one term of a model may read the decoder along a tangent")
    logits, tape, accumulator = regularizers.recorded_decoder_pass(
        self, z, training, watch=readers > 0, persistent=readers > 1,
        tangent=tangents[0] if tangents else None)
    prior_z = self.sample_prior(batch, seed + [_SALT_PRIOR, 0])
    return Forward(x=x, z=z, z_mean=z_mean, z_log_var=z_log_var, logits=logits,
                   prior_z=prior_z, seed=seed, model=self, z_raw=z_raw, log_q=draw.log_q,
                   training=training, decoder_tape=tape, decoder_accumulator=accumulator)

  def compute_losses(self, fwd: Forward):
    """Dict of unweighted scalar losses plus their weighted sum under "loss"."""
    losses = {"reconstruction": tf.reduce_mean(self.likelihood.cost(fwd.x, fwd.logits))}
    total = losses["reconstruction"]
    for name, term in zip(self.term_names, self.terms):
      losses[name] = term.compute(fwd)
      if term.in_autoencoder_loss:  # Otherwise logged only (a player optimises it).
        total = total + term.coefficient * losses[name]
    losses["loss"] = total
    return losses

  def _autoencoder_loss(self, state: rae_players.PlayState, _):
    """The first player: reconstruction + sum_k lambda_k * term_k on a fresh forward pass."""
    state.fwd = self.forward(state.x, state.seed, training=True)
    losses = self.compute_losses(state.fwd)
    return losses["loss"], losses

  def train_step(self, x):
    if isinstance(x, (tuple, list)):  # Tolerate (x, y) datasets; labels are unused.
      x = x[0]
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    seed = sampling.step_seed(self.seed, 0, self.optimizer.iterations)
    state = rae_players.PlayState(x=x, seed=seed, model=self)
    logs = {}
    for player in self.players:  # In order: the auto-encoder first.
      logs.update(rae_players.play(player, state, replicas))
    for name, value in logs.items():
      self.trackers[name].update_state(value)  # Unscaled: trackers average over replicas.
    return _logs({name: t.result() for name, t in self.trackers.items()})

  def test_step(self, x):
    if isinstance(x, (tuple, list)):
      x = x[0]
    seed = sampling.step_seed(self.seed, 0, self.optimizer.iterations)
    losses = self.compute_losses(self.forward(x, seed, training=False))
    for name, value in losses.items():
      self.trackers[name].update_state(value)
    return _logs({name: self.trackers[name].result() for name in losses})

  # ---- serialization -----------------------------------------------------------------
  def get_config(self):
    ser = keras.saving.serialize_keras_object
    return {
        "name": self.name,
        "encoder": ser(self.encoder), "decoder": ser(self.decoder),
        "likelihood": ser(self.likelihood), "prior": ser(self.prior),
        "terms": {n: ser(t) for n, t in zip(self.term_names, self.terms)},
        "latent_dim": self.latent_dim, "gaussian_encoder": self.gaussian_encoder,
        "seed": self.seed, "latent_transform": ser(self.latent_transform),
        "posterior": ser(self.posterior),
    }

  @classmethod
  def from_config(cls, config):
    des = keras.saving.deserialize_keras_object
    config = copy.deepcopy(config)  # Keras deserialisation consumes nested dicts.
    for key in ("encoder", "decoder", "likelihood", "prior", "latent_transform", "posterior"):
      if config.get(key) is not None:
        config[key] = des(config[key])
    config["terms"] = {n: des(t) for n, t in config["terms"].items()}
    return cls(**config)
