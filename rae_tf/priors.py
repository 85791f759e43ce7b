"""Latent priors P(z).

A prior is a Keras layer (so a learned prior's variables are tracked, checkpointed and
exported). It draws training samples (`sample`), per-request samples for serving
(`sample_from_seeds`, deterministic per seed), and exposes a TFP distribution.
"""
import copy
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from rae_tf import precision
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


@PRIORS.register("density_ratio")
@keras.saving.register_keras_serializable(package="rae_tf")
class DensityRatioPrior(StandardNormalPrior):
  """VAE-IOP's prior, the aggregate posterior q(z) = N(z; 0, I) exp T(z), T the model's
  density-ratio critic (log q(z) / N(z; 0, I), `rae_tf.critic_terms.ImplicitOptimalPriorKL`).

  Training draws are N(0, I): they are the critic's reference samples. Serving draws
  q(z) by sampling-importance-resampling: per seed, `num_candidates` N(0, I) candidates
  and one kept with probability softmax(T) over them (Gumbel-max with the seed's own
  uniforms), so the same seed always gives the same code, whatever else is in the request,
  with core TF ops only. As K grows the draw tends to q(z). The authors' code never samples;
  this is our choice.

  The critic stays the term's (its player, checkpoint and config): `attach_model`, called
  by RegularizedAutoEncoder, keeps an untracked reference to the term.

  Args:
    latent_dim: m.
    num_candidates: K, N(0, I) candidates per sample.
  """

  def __init__(self, latent_dim: int, num_candidates: int = 64, **kwargs):
    super().__init__(latent_dim, **kwargs)
    if int(num_candidates) < 1:
      raise ConfigError(f"--prior_candidates={num_candidates} must be >= 1")
    self.num_candidates = int(num_candidates)
    object.__setattr__(self, "_ratio_term", None)  # Untracked: see attach_model.

  def attach_model(self, model):
    """Finds the model's density-ratio term (ConfigError when it has none)."""
    terms = [t for t in model.terms if getattr(t, "estimates_prior_ratio", False)]
    if not terms:
      raise ConfigError("--prior=density_ratio samples through vae_iop's density-ratio "
                        "critic: use --model=vae_iop (or another --prior)")
    # object.__setattr__: tracking the term here would count its critic twice.
    object.__setattr__(self, "_ratio_term", terms[0])

  def sample_from_seeds(self, seeds):
    if self._ratio_term is None:
      raise ConfigError("DensityRatioPrior is not attached to a model with a "
                        "density-ratio term")
    seeds = tf.cast(seeds, tf.int64)
    k, m = self.num_candidates, self.latent_dim

    def draw(s):
      z = tf.random.stateless_normal([k, m], seed=tf.stack([s, tf.zeros_like(s)]))
      u = tf.random.stateless_uniform([k], seed=tf.stack([s, tf.ones_like(s)]),
                                      minval=1e-7, maxval=1.0)
      return z, -tf.math.log(-tf.math.log(u))

    candidates, gumbel = tf.map_fn(draw, seeds, fn_output_signature=(tf.float32, tf.float32))
    logits = tf.reshape(self._ratio_term.log_ratio(tf.reshape(candidates, [-1, m])), [-1, k])
    return tf.gather(candidates, tf.argmax(logits + gumbel, axis=1), batch_dims=1)

  def get_config(self):
    return {**super().get_config(), "num_candidates": self.num_candidates}


@keras.saving.register_keras_serializable(package="rae_tf")
class GaussianMixturePrior(keras.layers.Layer):
  """A fixed Gaussian mixture over the latent space, fitted ex post (RAE + GMM).

  Parameters are non-trainable weights, so they are checkpointed and exported with the
  model; sampling inside an exported signature lowers to core TF ops (no TFP at serving).

  Args:
    latent_dim: m.
    num_components: K.
  """

  # Fitted to encoded codes, which already went through the model's latent transform
  # (MaskAAE's mask): the model does not transform its draws again.
  in_latent_space = True

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


@PRIORS.register("learned")
@keras.saving.register_keras_serializable(package="rae_tf")
class LearnedPrior(keras.layers.Layer):
  """FlexAE's learned prior p_psi: z = G_psi(eps), eps from a fixed TFP base distribution.

  The generator G_psi is trained by a player of its own (FlexAE's adversarial generator
  step), not by the auto-encoder's optimizer. Training draws are the replica's slice of
  a stateless global draw; serving draws one eps per seed, so the SavedModel is
  deterministic per seed and needs no TFP (the base is sampled with core ops).

  Args:
    latent_dim: m, the generator's output size.
    generator: a Keras model [B, noise_dim] -> [B, m].
    noise_dim: m' (the seed asks m' >= m; the authors' code used m' = m).
    base: "normal" (N(0, I_m')) or "uniform" (U(-1, 1)^m').
  """

  trained_by_autoencoder = False
  BASES = ("normal", "uniform")

  def __init__(self, latent_dim: int, generator, noise_dim: int, base: str = "normal",
               **kwargs):
    super().__init__(**kwargs)
    if base not in self.BASES:
      raise ConfigError(f"unknown --prior_noise={base!r}; choose one of: "
                        + ", ".join(self.BASES))
    self.latent_dim = int(latent_dim)
    self.generator = generator
    self.noise_dim = int(noise_dim)
    self.base = base

  def base_distribution(self):
    """The noise distribution as a TFP distribution (event shape [m'])."""
    if self.base == "uniform":
      return tfd.Independent(tfd.Uniform(-tf.ones([self.noise_dim]),
                                         tf.ones([self.noise_dim])), 1)
    return tfd.MultivariateNormalDiag(loc=tf.zeros([self.noise_dim]))

  def _from_unit(self, eps):
    return 2.0 * eps - 1.0 if self.base == "uniform" else eps

  def noise(self, local_batch, seed):
    """eps [local_batch, m'] for training (the replica's slice of the global draw)."""
    draw = sampling.uniform if self.base == "uniform" else sampling.normal
    return self._from_unit(draw(local_batch, [self.noise_dim], seed))

  def sample(self, local_batch, seed):
    return precision.to_float32(self.generator(self.noise(local_batch, seed), training=True))

  def sample_from_seeds(self, seeds):
    if self.base == "uniform":
      eps = self._from_unit(sampling.uniform_from_seeds(seeds, self.noise_dim))
    else:
      eps = sampling.normal_from_seeds(seeds, self.noise_dim)
    return precision.to_float32(self.generator(eps, training=False))

  def call(self, seeds):
    return self.sample_from_seeds(seeds)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "noise_dim": self.noise_dim, "base": self.base}

  @classmethod
  def from_config(cls, config):
    config = copy.deepcopy(config)  # Keras deserialisation consumes nested dicts.
    config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
    return cls(**config)


@keras.saving.register_keras_serializable(package="rae_tf")
class _CouplingNet(keras.layers.Layer):
  """RealNVP's shift-and-log-scale network: x_masked -> (shift, log_scale) of the rest."""

  def __init__(self, out_dim: int, width: int, depth: int, **kwargs):
    super().__init__(**kwargs)
    self.out_dim, self.width, self.depth = int(out_dim), int(width), int(depth)
    self.hidden = [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    # Zero-initialised output: every coupling starts as the identity (stable start).
    self.out = keras.layers.Dense(2 * out_dim, kernel_initializer="zeros")

  def call(self, x):
    for layer in self.hidden:
      x = layer(x)
    # float32 out: the flow's densities and log-determinants stay float32.
    shift, log_scale = tf.split(precision.to_float32(self.out(x)), 2, axis=-1)
    return shift, tf.tanh(log_scale)  # Bounded scales keep early training finite.

  def get_config(self):
    return {**super().get_config(), "out_dim": self.out_dim, "width": self.width,
            "depth": self.depth}


@PRIORS.register("flow")
@keras.saving.register_keras_serializable(package="rae_tf")
class FlowPrior(keras.layers.Layer):
  """A learned prior with an explicit density: N(0, I_m) pushed through a RealNVP flow.

  tfp.bijectors.RealNVP affine couplings alternate with reversing permutations; the
  coupling networks are Keras layers, so their variables are tracked, checkpointed and
  exported. `log_prob` is exact, so the flow is trained by maximum likelihood on the codes
  (a player of its own). Sampling (the forward pass) exports as core TF ops.

  Args:
    latent_dim: m (>= 2).
    num_couplings: affine coupling layers.
    width, depth: size of each coupling network.
  """

  trained_by_autoencoder = False

  def __init__(self, latent_dim: int, num_couplings: int = 4, width: int = 128,
               depth: int = 2, **kwargs):
    super().__init__(**kwargs)
    if latent_dim < 2:
      raise ConfigError(f"--latent_dim={latent_dim}: a flow prior needs m >= 2")
    self.latent_dim = int(latent_dim)
    self.num_couplings, self.width, self.depth = int(num_couplings), int(width), int(depth)
    self.masked = self.latent_dim // 2
    self.nets = [_CouplingNet(self.latent_dim - self.masked, width, depth, name=f"coupling_{i}")
                 for i in range(self.num_couplings)]

  def build(self, input_shape=None):
    for net in self.nets:
      net(tf.zeros((1, self.masked)))
    self.built = True

  def bijector(self):
    tfb = tfp.bijectors
    reverse = tfb.Permute(list(range(self.latent_dim - 1, -1, -1)))
    parts = []
    for net in self.nets:
      parts += [tfb.RealNVP(num_masked=self.masked,
                            shift_and_log_scale_fn=lambda x, _, net=net: net(x)), reverse]
    return tfb.Chain(list(reversed(parts)))  # Chain applies its last bijector first.

  def distribution(self):
    return tfd.TransformedDistribution(
        tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim])), self.bijector())

  def log_prob(self, z):
    if not self.built:
      self.build()
    return self.distribution().log_prob(z)

  def sample(self, local_batch, seed):
    if not self.built:
      self.build()
    return self.bijector().forward(sampling.normal(local_batch, [self.latent_dim], seed))

  def sample_from_seeds(self, seeds):
    return self.bijector().forward(sampling.normal_from_seeds(seeds, self.latent_dim))

  def call(self, seeds):
    return self.sample_from_seeds(seeds)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim,
            "num_couplings": self.num_couplings, "width": self.width, "depth": self.depth}


@keras.saving.register_keras_serializable(package="rae_tf")
class ExpostFlowPrior(FlowPrior):
  """A FlowPrior fitted ex post to a trained run's codes (rae_tf.expost, --expost=flow).

  The flow models the standardised codes (z - loc) / scale, so its N(0, I) base starts near
  their scale; `loc` and `scale` are fixed weights of the layer, so sampling un-standardises
  inside it (and inside an exported signature). Fitted to encoded codes, which already went
  through the model's latent transform: the model does not transform its draws again.

  Args:
    latent_dim: m (>= 2).
    num_couplings, width, depth: as FlowPrior.
  """

  in_latent_space = True

  def __init__(self, latent_dim: int, num_couplings: int = 4, width: int = 128,
               depth: int = 2, **kwargs):
    super().__init__(latent_dim, num_couplings, width, depth, **kwargs)
    m = self.latent_dim
    self.loc = self.add_weight(name="loc", shape=(m,), initializer="zeros", trainable=False)
    self.scale = self.add_weight(name="scale", shape=(m,), initializer="ones",
                                 trainable=False)

  def set_standardization(self, loc, scale):
    """The per-dimension mean [m] and standard deviation [m] of the codes."""
    self.loc.assign(np.asarray(loc, np.float32))
    self.scale.assign(np.asarray(scale, np.float32))

  def distribution(self):
    tfb = tfp.bijectors
    # Chain applies its last bijector first: flow, then scale, then shift.
    return tfd.TransformedDistribution(
        super().distribution(), tfb.Chain([tfb.Shift(self.loc), tfb.Scale(self.scale)]))

  def sample(self, local_batch, seed):
    return self.loc + self.scale * super().sample(local_batch, seed)

  def sample_from_seeds(self, seeds):
    return self.loc + self.scale * super().sample_from_seeds(seeds)


@keras.saving.register_keras_serializable(package="rae_tf")
class SecondStageVAEPrior(keras.layers.Layer):
  """Dai & Wipf's second-stage VAE (2-stage VAE, ICLR 2019) as an ex-post prior.

  A VAE on the run's codes z (standardised by the fixed weights `loc`, `scale`): encoder
  z -> (mean, log variance) of q(u|z), u in R^m; decoder u -> the mean of p(z|u), whose
  variance gamma_z (a learned scalar, log-parameterised) is shared by all dimensions. The
  loss per code is Dai & Wipf's ||z - dec(u)||^2 / (2 gamma) + (m/2) log gamma +
  KL(q(u|z) || N(0, I)), in standardised coordinates (so gamma is relative to the codes'
  variance): a learned gamma lets the second stage match the codes' density closely.

  Sampling is the model's ancestral draw u ~ N(0, I), z = dec(u) + sqrt(gamma_z) * eps,
  un-standardised; core TF ops only, deterministic per seed. Dai & Wipf sample the
  decoder's mean alone, which is the same draw once gamma_z -> 0 (their 800-epoch fit);
  after a short fit gamma_z stays near 1 and the mean alone collapses every sample onto
  the codes' centre (measured on Fashion-MNIST: recall 0.000, FID 103 against the first
  stage's 41). Fitted to encoded codes, so the
  model does not transform its draws again (`in_latent_space`).

  Args:
    latent_dim: m (also the second stage's latent size, as the paper).
    width, depth: each of encoder and decoder is `depth` ReLU layers of `width` units
      (paper: 3 x 1024).
  """

  in_latent_space = True

  def __init__(self, latent_dim: int, width: int = 1024, depth: int = 3, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim, self.width, self.depth = int(latent_dim), int(width), int(depth)
    m = self.latent_dim

    def mlp(out_dim, name):
      return keras.Sequential(
          [keras.layers.Dense(self.width, activation="relu") for _ in range(self.depth)]
          + [keras.layers.Dense(out_dim)], name=name)

    self.encoder_net = mlp(2 * m, "encoder")
    self.decoder_net = mlp(m, "decoder")
    self.log_gamma = self.add_weight(name="log_gamma", shape=(), initializer="zeros")
    self.loc = self.add_weight(name="loc", shape=(m,), initializer="zeros", trainable=False)
    self.scale = self.add_weight(name="scale", shape=(m,), initializer="ones",
                                 trainable=False)

  def build(self, input_shape=None):
    self.encoder_net.build((None, self.latent_dim))
    self.decoder_net.build((None, self.latent_dim))
    self.built = True

  def set_standardization(self, loc, scale):
    """The per-dimension mean [m] and standard deviation [m] of the codes."""
    self.loc.assign(np.asarray(loc, np.float32))
    self.scale.assign(np.asarray(scale, np.float32))

  def encode(self, z):
    """(mean, log variance) of q(u|z), each [B, m]."""
    h = self.encoder_net((z - self.loc) / self.scale)
    return tf.split(h, 2, axis=-1)

  def decode(self, u):
    """The mean of p(z|u) [B, m], in the codes' coordinates."""
    return self.loc + self.scale * self.decoder_net(u)

  def loss(self, z, seed):
    """Dai & Wipf's negative ELBO per code (up to (m/2) log 2 pi), averaged over the batch.

    Args:
      z: [B, m] codes.
      seed: [2] int stateless seed of the reparameterisation noise.
    """
    x = (z - self.loc) / self.scale
    mean, log_var = tf.split(self.encoder_net(x), 2, axis=-1)
    u = mean + tf.exp(0.5 * log_var) * tf.random.stateless_normal(tf.shape(mean), seed)
    m = tf.cast(self.latent_dim, tf.float32)
    squared = tf.reduce_sum(tf.square(x - self.decoder_net(u)), axis=-1)
    reconstruction = squared / (2.0 * tf.exp(self.log_gamma)) + 0.5 * m * self.log_gamma
    kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=-1)
    return tf.reduce_mean(reconstruction + kl)

  def _draw(self, noise):
    """z from [B, 2m] standard normal noise: (u, eps) -> dec(u) + sqrt(gamma) eps."""
    u, eps = tf.split(noise, 2, axis=-1)
    return self.decode(u) + self.scale * tf.exp(0.5 * self.log_gamma) * eps

  def sample(self, local_batch, seed):
    return self._draw(sampling.normal(local_batch, [2 * self.latent_dim], seed))

  def sample_from_seeds(self, seeds):
    return self._draw(sampling.normal_from_seeds(seeds, 2 * self.latent_dim))

  def call(self, seeds):
    return self.sample_from_seeds(seeds)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim, "width": self.width,
            "depth": self.depth}


@PRIORS.register("vamp")
@keras.saving.register_keras_serializable(package="rae_tf")
class VampPrior(keras.layers.Layer):
  """VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), K learned
  pseudo-inputs u_k in data space, q the model's own diagonal Gaussian encoder posterior.

  The pseudo-inputs are weights [K, *data_shape] trained with the auto-encoder (through
  log p(z) in the Monte-Carlo KL, `rae_tf.regularizers.MonteCarloKL`). As in the authors'
  code, for images they pass through a hardtanh to [0, 1] and start at N(0.05, 0.01^2)
  (their load_data sets mean 0.05, std 0.01 when not initialising from training data;
  their argparse default mean -0.05 is overwritten there, and would sit in hardtanh's flat
  region, with no gradient). Vectors are not clipped.

  The model gives the prior its encoder (`attach_model`, called by RegularizedAutoEncoder
  when it is built); the reference is deliberately not tracked, so the encoder's variables
  are not counted twice. The pseudo-inputs are encoded in inference mode (training=False):
  batch-norm statistics of the encoder are never updated from pseudo-inputs, and the
  prior used in training is the one served.

  Sampling picks a component k uniformly per draw, then z ~ q(z | u_k); serving
  (`sample_from_seeds`) does so per seed with stateless core-TF draws (no TFP) from the
  K components, so the same seed always gives the same sample, whatever else is in the
  request.

  Args:
    latent_dim: m.
    data_shape: one example's shape (the pseudo-inputs' shape).
    num_pseudo_inputs: K (authors: 500).
    clip: hardtanh the pseudo-inputs to [0, 1] (images).
    init_mean, init_std: the pseudo-inputs' normal initialisation (authors: 0.05, 0.01).
  """

  _SALT_COMPONENT = 1  # Keeps the component choice apart from the Gaussian noise.

  def __init__(self, latent_dim: int, data_shape, num_pseudo_inputs: int = 500,
               clip: bool = True, init_mean: float = 0.05, init_std: float = 0.01,
               **kwargs):
    super().__init__(**kwargs)
    if num_pseudo_inputs < 1:
      raise ConfigError(f"--num_pseudo_inputs={num_pseudo_inputs} must be >= 1")
    self.latent_dim = int(latent_dim)
    self.data_shape = tuple(int(d) for d in data_shape)
    self.num_pseudo_inputs = int(num_pseudo_inputs)
    self.clip = bool(clip)
    self.init_mean, self.init_std = float(init_mean), float(init_std)
    self.pseudo_inputs = self.add_weight(
        name="pseudo_inputs", shape=(self.num_pseudo_inputs,) + self.data_shape,
        initializer=keras.initializers.RandomNormal(self.init_mean, self.init_std))
    object.__setattr__(self, "_model", None)  # Untracked: see attach_model.

  def attach_model(self, model):
    """Uses `model`'s encoder posterior for the mixture components (needs a diagonal
    Gaussian posterior and the model's data shape)."""
    if not getattr(model.posterior, "is_diagonal_gaussian", False):
      raise ConfigError("the VampPrior needs a diagonal Gaussian encoder posterior")
    if tuple(model.data_shape) != self.data_shape:
      raise ConfigError(f"VampPrior pseudo-inputs {self.data_shape} do not match the data "
                        f"{tuple(model.data_shape)}")
    # object.__setattr__: Keras and tf.Module would track the model (and its encoder)
    # as a child of the prior.
    object.__setattr__(self, "_model", model)

  def inputs(self):
    """The pseudo-inputs u_k [K, *data_shape] as the encoder sees them."""
    u = tf.convert_to_tensor(self.pseudo_inputs)
    return tf.clip_by_value(u, 0.0, 1.0) if self.clip else u

  def _posterior(self, u):
    if self._model is None:
      raise ConfigError("the VampPrior is not attached to a model (RegularizedAutoEncoder "
                        "attaches it when built)")
    return self._model.encode_distribution(u, training=False)

  def components(self):
    """(means, log_vars) [K, m] of the mixture components q(z | u_k)."""
    return self._posterior(self.inputs())

  def log_prob(self, z):
    """log p(z) [batch] = logsumexp_k log N(z; mu_k, sigma_k^2) - log K."""
    means, log_vars = self.components()
    diff = z[:, None, :] - means[None]
    log_normal = -0.5 * tf.reduce_sum(
        np.log(2.0 * np.pi) + log_vars[None] + tf.square(diff) * tf.exp(-log_vars[None]),
        axis=-1)
    return tf.reduce_logsumexp(log_normal, axis=1) - np.log(float(self.num_pseudo_inputs))

  def _component(self, unit):
    """Component indices [n] for per-draw uniforms `unit` [n, 1]."""
    return tf.minimum(tf.cast(tf.floor(unit[:, 0] * self.num_pseudo_inputs), tf.int32),
                      self.num_pseudo_inputs - 1)

  def sample(self, local_batch, seed):
    """Training draw [local_batch, m]; the replica's slice of the global draw."""
    seed = tf.cast(seed, tf.int64)
    unit = sampling.uniform(local_batch, [1], seed + tf.constant([0, self._SALT_COMPONENT],
                                                                 tf.int64))
    eps = sampling.normal(local_batch, [self.latent_dim], seed)
    # Encodes only the drawn pseudo-inputs (a batch, not all K, per training step).
    mean, log_var = self._posterior(tf.gather(self.inputs(), self._component(unit)))
    return mean + tf.exp(0.5 * log_var) * eps

  def sample_from_seeds(self, seeds):
    """[len(seeds), m], one deterministic draw per int64 seed (serving, core TF ops)."""
    seeds = tf.cast(seeds, tf.int64)
    unit = tf.map_fn(
        lambda s: tf.random.stateless_uniform(
            [1], seed=tf.stack([s, tf.constant(self._SALT_COMPONENT, tf.int64)])),
        seeds, fn_output_signature=tf.float32)
    eps = sampling.normal_from_seeds(seeds, self.latent_dim)
    # All K components, then a gather: a seed's sample does not depend on the rest of the
    # request (the encoder's batch blocking would change the last bits).
    means, log_vars = self.components()
    k = self._component(unit)
    return tf.gather(means, k) + tf.exp(0.5 * tf.gather(log_vars, k)) * eps

  def call(self, seeds):
    return self.sample_from_seeds(seeds)

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim,
            "data_shape": list(self.data_shape), "num_pseudo_inputs": self.num_pseudo_inputs,
            "clip": self.clip, "init_mean": self.init_mean, "init_std": self.init_std}
