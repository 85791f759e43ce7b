"""Registered models: each is a recipe of parts for `RegularizedAutoEncoder`.

A recipe says which encoder (deterministic or Gaussian), which likelihood, which
regularizer terms with which default weights, and whether the networks are spectrally
normalised. Flags override the weights; `resolve_hparams` records the values actually used.
"""
import dataclasses
import math
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from rae_tf import critic_terms
from rae_tf import jacobian
from rae_tf import latent_transforms
from rae_tf import likelihoods
from rae_tf import model_params
from rae_tf import networks
from rae_tf import posteriors
from rae_tf import priors
from rae_tf import regularizers
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError
from rae_tf.models.rae import RegularizedAutoEncoder
from rae_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class ModelRecipe:
  """The parts of one registered model.

  Attributes:
    description: one line for --help and the README.
    gaussian_encoder: reparameterised diagonal Gaussian encoder.
    likelihood: default likelihood for images (vectors fall back to "gaussian" if the
      default is bernoulli).
    defaults: every weight this model reads (`rae_tf.model_params.PARAMS` names) with its
      default; None = computed for the run (MaskAAE's schedule). An explicit weight the
      recipe does not list is refused; `decoder_variance` and `optimizer`
      (model_params.GENERIC) are accepted by every model.
    terms: builds {name: Term} from the resolved hparams and the config.
    spectral_norm: wrap encoder and decoder layers in spectral normalisation.
    decoder_batch_norm: the conv decoders' batch normalisation. MaskAAE turns it off:
      batch norm makes the decoder blind to a uniform shrink of its input, so the mask
      could close every dimension at no reconstruction cost.
    encoder_batch_norm: the conv encoders' batch normalisation. The VampPrior turns it
      off (as its authors' nets have none): its pseudo-inputs are encoded in inference
      mode, so with batch norm the encoder could shape the prior through the weight scale
      that batch statistics hide from the data path, and trained and served encoders would
      differ (measured: MNIST reconstruction MSE 0.015 in training mode, 0.053 served).
    prior: the default prior's name in `rae_tf.priors.PRIORS` (--prior overrides).
    latent_transform: the latent transform's name in
      `rae_tf.latent_transforms.LATENT_TRANSFORMS` (identity, or MaskAAE's mask).
    expost: an ex-post prior (`rae_tf.expost` kind: "gmm", "flow", "vae") that training
      fits to the final codes and exports as <name>_<kind> (RAE + GMM, 2-stage VAE), or
      None.
    posterior: the encoder posterior's name in `rae_tf.posteriors.POSTERIORS`
      (deterministic, gaussian, iaf); None = gaussian or deterministic by
      `gaussian_encoder`.
  """
  description: str
  gaussian_encoder: bool
  likelihood: str
  defaults: Dict[str, Any]
  terms: Callable[[Dict[str, Any], TrainConfig], Dict[str, regularizers.Term]]
  spectral_norm: bool = False
  decoder_batch_norm: bool = True
  encoder_batch_norm: bool = True
  prior: str = "standard_normal"
  latent_transform: str = "identity"
  expost: Optional[str] = None
  posterior: Optional[str] = None


MODELS: Registry[ModelRecipe] = Registry("model", "--model")


def _no_terms(hp, config):
  return {}


def _kl(hp, config):
  return {"kl": regularizers.KLDivergence(hp["beta"], name="kl")}


def _mmd(hp, config):
  return {"mmd": regularizers.MaximumMeanDiscrepancy(
      hp["reg_weight"], kernel=hp["mmd_kernel"], prior_variance=config.prior_variance,
      name="mmd")}


def _rae(*extra):
  def terms(hp, config):
    out = {"latent_l2": regularizers.LatentL2(hp["latent_l2"], name="latent_l2")}
    if "decoder_l2" in extra:
      out["decoder_l2"] = regularizers.DecoderWeightDecay(hp["decoder_l2"], name="decoder_l2")
    if "gp" in extra:
      out["decoder_gp"] = regularizers.DecoderGradientPenalty(hp["gp_weight"],
                                                               name="decoder_gp")
    return out
  return terms


def _latent_gan(hp, config):
  critic = networks.build_critic(config.latent_dim, width=config.critic_width,
                                 depth=config.critic_depth, name="latent_critic")
  return {"adversary": regularizers.LatentAdversary(
      critic, hp["reg_weight"], loss="gan", critic_steps=hp["critic_steps"],
      learning_rate=hp["critic_learning_rate"], adam_beta_1=0.5, name="adversary")}


def _flexae(hp, config):
  critic = networks.build_critic(config.latent_dim, width=config.critic_width,
                                 depth=config.critic_depth, name="latent_critic")
  return {"adversary": regularizers.LearnedPriorAdversary(
      critic, hp["reg_weight"], critic_steps=hp["critic_steps"],
      learning_rate=hp["critic_learning_rate"],
      generator_learning_rate=hp["generator_learning_rate"],
      encoder_learning_rate=hp["encoder_adversary_learning_rate"],
      adam_beta_1=hp["adversary_beta_1"], adam_beta_2=hp["adversary_beta_2"],
      name="adversary")}


def _aae(hp, config):
  critic = networks.build_critic(config.latent_dim, width=config.critic_width,
                                 depth=config.critic_depth, name="latent_critic")
  return {"adversary": regularizers.LatentAdversary(
      critic, hp["reg_weight"], loss="gan", critic_steps=hp["critic_steps"],
      learning_rate=hp["critic_learning_rate"],
      encoder_learning_rate=hp["encoder_adversary_learning_rate"],
      adam_beta_1=hp["adversary_beta_1"], adam_beta_2=hp["adversary_beta_2"],
      optimizer=hp["optimizer"], name="adversary")}


def _maskaae(hp, config):
  critic = networks.build_critic(config.latent_dim, width=config.critic_width,
                                 depth=config.critic_depth, name="latent_critic")
  return {
      "mask_variance": regularizers.MaskedVariancePenalty(
          hp["mask_variance_weight"], name="mask_variance"),
      "adversary": regularizers.MaskedLatentAdversary(
          critic, hp["reg_weight"], critic_steps=hp["critic_steps"],
          learning_rate=hp["critic_learning_rate"],
          encoder_learning_rate=hp["encoder_adversary_learning_rate"],
          mask_learning_rate=hp["mask_learning_rate"],
          reconstruction_weight=hp["mask_reconstruction_weight"],
          poly_start=hp["mask_poly_start"], poly_period=hp["mask_poly_period"],
          poly_delay=hp["mask_poly_delay"], optimizer=hp["optimizer"], name="adversary"),
  }


def _flow_fit(hp, config):
  return {"flow": regularizers.FlowPriorFit(hp["reg_weight"],
                                            learning_rate=hp["generator_learning_rate"],
                                            name="flow")}


MODELS.register("ae", ModelRecipe(
    "plain deterministic auto-encoder (pixel MSE), the ex-post-sampler baseline",
    gaussian_encoder=False, likelihood="mse", defaults={}, terms=_no_terms))
MODELS.register("vae", ModelRecipe(
    "VAE: Gaussian encoder, Bernoulli (cross-entropy) decoder, KL with beta = 1",
    gaussian_encoder=True, likelihood="bernoulli", defaults={"beta": 1.0}, terms=_kl))
MODELS.register("beta_vae", ModelRecipe(
    "beta-VAE: the VAE with a KL weight beta (default 0.1, favouring reconstruction)",
    gaussian_encoder=True, likelihood="bernoulli", defaults={"beta": 0.1}, terms=_kl))
MODELS.register("wae_mmd", ModelRecipe(
    "WAE-MMD: 0.05 * squared error (Gaussian, variance 10) + lambda * MMD (IMQ kernel)",
    gaussian_encoder=False, likelihood="gaussian",
    defaults={"decoder_variance": 10.0, "reg_weight": 10.0, "mmd_kernel": "imq"},
    terms=_mmd))
MODELS.register("wae_gan", ModelRecipe(
    "WAE-GAN: 0.05 * squared error + lambda * latent GAN critic (own Adam optimizer)",
    gaussian_encoder=False, likelihood="gaussian",
    defaults={"decoder_variance": 10.0, "reg_weight": 1.0, "critic_steps": 1,
              "critic_learning_rate": 5e-4},
    terms=_latent_gan))
MODELS.register("rae_l2", ModelRecipe(
    "RAE-L2: pixel MSE + beta * ||z||^2 + w * decoder weight decay",
    gaussian_encoder=False, likelihood="mse",
    defaults={"latent_l2": 1e-4, "decoder_l2": 1e-7}, terms=_rae("decoder_l2")))
MODELS.register("rae_gp", ModelRecipe(
    "RAE-GP: pixel MSE + beta * ||z||^2 + w * decoder gradient penalty",
    gaussian_encoder=False, likelihood="mse",
    defaults={"latent_l2": 1e-4, "gp_weight": 5e-8}, terms=_rae("gp")))
MODELS.register("rae_sn", ModelRecipe(
    "RAE-SN: pixel MSE + beta * ||z||^2, spectrally normalised encoder and decoder",
    gaussian_encoder=False, likelihood="mse", defaults={"latent_l2": 0.009},
    terms=_rae(), spectral_norm=True))

MODELS.register("flexae", ModelRecipe(
    "FlexAE: squared error + a learned prior G(eps) met by the codes through a WGAN-GP "
    "latent critic (critic, prior and encoder-adversarial players, Adam (0, 0.9))",
    gaussian_encoder=False, likelihood="gaussian",
    defaults={"decoder_variance": 0.5, "reg_weight": 1.0, "critic_steps": 5,
              "critic_learning_rate": 1e-4, "generator_learning_rate": 2e-4,
              "encoder_adversary_learning_rate": 1e-5, "adversary_beta_1": 0.0,
              "adversary_beta_2": 0.9},
    terms=_flexae, prior="learned"))
MODELS.register("flexae_flow", ModelRecipe(
    "FlexAE with an explicit-density prior: a RealNVP flow (TFP) fitted jointly to the "
    "codes by maximum likelihood",
    gaussian_encoder=False, likelihood="gaussian",
    defaults={"decoder_variance": 0.5, "reg_weight": 0.0, "generator_learning_rate": 1e-3},
    terms=_flow_fit, prior="flow"))

MODELS.register("aae", ModelRecipe(
    "AAE (Makhzani et al.): reconstruction + a GAN latent critic; the encoder's "
    "non-saturating adversarial loss is its own phase with its own optimizer",
    gaussian_encoder=False, likelihood="bernoulli",
    defaults={"reg_weight": 1.0, "critic_steps": 1, "critic_learning_rate": 1e-4,
              "encoder_adversary_learning_rate": 1e-4, "adversary_beta_1": 0.5,
              "adversary_beta_2": 0.999},
    terms=_aae))
MODELS.register("maskaae", ModelRecipe(
    "MaskAAE: a trainable latent mask mu (m_A = #mu >= 0.1 finds the data's dimension), "
    "WGAN-GP critic on masked codes vs masked prior, variance penalty on closed dims",
    gaussian_encoder=False, likelihood="bernoulli",
    defaults={"reg_weight": 1.0, "critic_steps": 5, "critic_learning_rate": 1e-4,
              "encoder_adversary_learning_rate": 1e-4, "optimizer": "rmsprop",
              "mask_variance_weight": 100.0, "mask_init_max": 5.0,
              # Automatic (scaled to the run by _resolve_mask_schedule) unless set.
              "mask_learning_rate": None, "mask_reconstruction_weight": None,
              "mask_poly_start": None, "mask_poly_period": None, "mask_poly_delay": None,
              "mask_psi_max": None, "mask_rate_drop_epoch": None,
              "mask_rate_drop_players": "all"},
    # No batch norm in the decoder (the authors' MLPs have none): with it, shrinking every
    # mu_i together costs no reconstruction and the W term closed all 16 dimensions on
    # Fashion-MNIST (benchmarks/RESULTS.md).
    terms=_maskaae, latent_transform="mask", decoder_batch_norm=False))

# ---- VAE family (issue 9) ------------------------------------------------------------


def _monte_carlo_kl(hp, config):
  return {"kl": regularizers.MonteCarloKL(hp["beta"], name="kl")}


def _info_vae(hp, config):
  """InfoVAE (Zhao et al.): (1 - alpha) KL(q(z|x) || p) + (alpha + lambda - 1) MMD(q(z), p)."""
  kl_weight = 1.0 - hp["info_alpha"]
  mmd_weight = hp["info_alpha"] + hp["info_lambda"] - 1.0
  if kl_weight < 0 or mmd_weight < 0:
    raise ConfigError(f"--info_alpha={hp['info_alpha']}, --info_lambda={hp['info_lambda']}: "
                      f"the KL weight 1 - alpha ({kl_weight:g}) and the MMD weight alpha + "
                      f"lambda - 1 ({mmd_weight:g}) must be >= 0")
  return {"kl": regularizers.KLDivergence(kl_weight, name="kl"),
          "mmd": regularizers.MaximumMeanDiscrepancy(
              mmd_weight, kernel=hp["mmd_kernel"], prior_variance=config.prior_variance,
              name="mmd")}


MODELS.register("vae_bce", dataclasses.replace(  # An alias: the seed's table name.
    MODELS.get("vae"), description="VAE (cross-entropy): the vae recipe under the seed's "
    "table name (Gaussian encoder, Bernoulli decoder, KL beta = 1)"))
MODELS.register("vae_fixed_var", ModelRecipe(
    "VAE with a Gaussian decoder of fixed variance (default 1): sum (x - D(z))^2 / 2 + KL",
    gaussian_encoder=True, likelihood="gaussian",
    defaults={"beta": 1.0, "decoder_variance": 1.0}, terms=_kl))
MODELS.register("vae_learned_var", ModelRecipe(
    "VAE with a Gaussian decoder of learned scalar variance gamma^2 (Dai & Wipf's first "
    "stage)",
    gaussian_encoder=True, likelihood="gaussian_learned", defaults={"beta": 1.0}, terms=_kl))
MODELS.register("two_stage_vae", ModelRecipe(
    "2-stage VAE (Dai & Wipf): vae_learned_var, then a second VAE fitted ex post to the "
    "codes samples z (exported as <name>_vae)",
    gaussian_encoder=True, likelihood="gaussian_learned", defaults={"beta": 1.0}, terms=_kl,
    expost="vae"))
MODELS.register("vae_iaf", ModelRecipe(
    "VAE + IAF (Kingma et al. 2016): the Gaussian posterior refined by T inverse "
    "autoregressive flow steps conditioned on the encoder's context; Monte-Carlo KL",
    gaussian_encoder=True, likelihood="bernoulli",
    defaults={"beta": 1.0, "iaf_steps": 2, "iaf_width": 320}, terms=_monte_carlo_kl,
    posterior="iaf"))
MODELS.register("vae_vamp", ModelRecipe(
    "VAE with a VampPrior (Tomczak & Welling): p(z) = mean of q(z | u_k) over K learned "
    "pseudo-inputs; Monte-Carlo KL",
    gaussian_encoder=True, likelihood="bernoulli",
    defaults={"beta": 1.0, "num_pseudo_inputs": 500}, terms=_monte_carlo_kl, prior="vamp",
    encoder_batch_norm=False))
MODELS.register("info_vae", ModelRecipe(
    "InfoVAE (Zhao et al.): (1 - alpha) KL + (alpha + lambda - 1) MMD between the "
    "aggregate posterior and N(0, I) (alpha 0, lambda 1000, RBF kernel)",
    gaussian_encoder=True, likelihood="bernoulli",
    defaults={"info_alpha": 0.0, "info_lambda": 1000.0, "mmd_kernel": "rbf"},
    terms=_info_vae))

# c_poly doublings of MaskAAE's automatic schedule: from 2/m to the cap 2048 takes
# log2(1024 m) doublings; the authors spread them over their 500k steps (period 4R).
POLY_CAP = 2048.0
POLY_DELAY_FRACTION = 0.6  # Default --mask_poly_delay: this share of the run's steps.
RATE_DROP_FRACTION = 0.8  # Default --mask_rate_drop_epoch: this share of the run's epochs.
RATE_DROP_FACTOR = 5.0  # The authors' drop of the AE's and the mask's rates at step 5R.


def resolve_hparams(config: TrainConfig, is_image: bool,
                    data_shape: Tuple[int, ...] = (1,), total_steps: Optional[int] = None
                    ) -> Dict[str, Any]:
  """The model's part choices and weights after flags override the recipe's defaults.

  Args:
    config: the run's configuration.
    is_image: image data (selects the likelihood's fallback).
    data_shape: one example's shape (MaskAAE's reconstruction weight is per value).
    total_steps: the run's steps (MaskAAE's automatic c_poly period); None = unknown.
  """
  recipe = MODELS.get(config.model)
  hp = {"likelihood": config.likelihood or recipe.likelihood,
        "prior": config.prior or recipe.prior}
  if not is_image and hp["likelihood"] == "bernoulli" and config.likelihood is None:
    hp["likelihood"] = "gaussian"  # Unbounded vectors have no Bernoulli likelihood.
  accepted = {**model_params.GENERIC, **recipe.defaults}
  explicit = dict(config.weights)
  foreign = sorted(set(explicit) - set(accepted))
  if foreign:
    raise ConfigError(
        f"--{foreign[0]} is not a weight of --model={config.model} (its weights: "
        f"{', '.join(sorted(recipe.defaults)) or 'none'}); remove it or pick the model "
        "that reads it")
  for name, default in accepted.items():
    value = explicit.get(name, default)
    if value is not None:
      hp[name] = value
  if recipe.latent_transform == "mask":
    _resolve_mask_schedule(hp, config, data_shape, is_image, total_steps)
  return hp


def _resolve_mask_schedule(hp, config, data_shape, is_image, total_steps):
  """MaskAAE's rates and c_poly schedule, scaled to the run (see --mask_poly_period).

  Two changes from the authors' code make the mask find n within a few thousand steps
  (measured on synthetic data, n = 8 and 16, m = 64; see the README's MaskAAE section):
  - c_poly stays at its start for the first POLY_DELAY_FRACTION of the run, then doubles
    up to its cap by the last step. Doubling from step 0 polarised the mask (mu -> 0/1)
    while spurious dimensions were still closing (m_A froze at 13-32).
  - For vector data the mask's reconstruction weight is 1 (per-example sum units): the
    authors' 1000 x per-value mean (1000 / D = 15.6 for D = 64) kept m_A at 32 of 64 and
    0.2 closed real dimensions (m_A 6 of n = 8). Images keep the authors' 1000 / D.
  And, as the authors, the rates drop 5x late in the run (at RATE_DROP_FRACTION of its
  epochs; `rate_drops`): by default every player's rather than the AE's and the mask's
  only (`rate_drop_applies`, --mask_rate_drop_players).
  """
  m = config.latent_dim
  if "mask_learning_rate" not in hp:
    hp["mask_learning_rate"] = 5.0 * config.learning_rate  # Authors: AE and mask at 5 lr.
  if "mask_poly_start" not in hp:
    hp["mask_poly_start"] = 2.0 / m
  if "mask_reconstruction_weight" not in hp:
    # Authors: 1000 x BCE averaged over the D data values; our cost sums over them.
    hp["mask_reconstruction_weight"] = (1000.0 / float(np.prod(data_shape)) if is_image
                                        else 1.0)
  if "mask_poly_delay" not in hp:
    hp["mask_poly_delay"] = int(POLY_DELAY_FRACTION * (total_steps or 0))
  if "mask_rate_drop_epoch" not in hp:
    hp["mask_rate_drop_epoch"] = int(round(RATE_DROP_FRACTION * config.epochs))
  period = hp.get("mask_poly_period")
  if not period:
    doublings = max(1, math.ceil(math.log2(POLY_CAP / hp["mask_poly_start"])))
    steps = max(1, (total_steps or 1) - hp["mask_poly_delay"])
    period = max(1, steps // doublings)  # The cap is reached at the run's last step.
  hp["mask_poly_period"] = int(period)


def rate_drops(hp: Dict[str, Any]) -> Tuple[Tuple[int, float], ...]:
  """The recipe's own learning-rate drops ((epoch, factor), ...) for
  callbacks.LearningRateDrops: MaskAAE's --mask_rate_drop_epoch, else none."""
  epoch = hp.get("mask_rate_drop_epoch")
  return ((int(epoch), RATE_DROP_FACTOR),) if epoch else ()


def rate_drop_applies(hp: Dict[str, Any], player_name: str) -> bool:
  """Whether the recipe's drop (`rate_drops`) divides this player's rate
  (--mask_rate_drop_players: every player, or the auto-encoder and the mask only)."""
  if hp.get("mask_rate_drop_players", "all") == "all":
    return True
  return player_name == "autoencoder" or player_name.endswith("_mask")


def build_model(config: TrainConfig, data_shape: Tuple[int, ...], is_image: bool,
                total_steps: Optional[int] = None
                ) -> Tuple[RegularizedAutoEncoder, Dict[str, Any]]:
  """Builds (unbuilt-optimizer) model and the hparams it used. Call in the strategy scope.

  Args:
    config: the run's configuration.
    data_shape: one example's shape.
    is_image: image data.
    total_steps: the run's steps (MaskAAE's automatic c_poly schedule).
  """
  recipe = MODELS.get(config.model)
  hp = resolve_hparams(config, is_image, data_shape, total_steps)
  likelihood_cls = likelihoods.LIKELIHOODS.get(hp["likelihood"])
  if hp["likelihood"] == "gaussian":
    likelihood = likelihood_cls(image_output=is_image, variance=hp["decoder_variance"],
                                name="likelihood")
  else:
    likelihood = likelihood_cls(image_output=is_image, name="likelihood")
  posterior = build_posterior(recipe, hp, config)
  enc_dim = posterior.encoder_output_dim(config.latent_dim)
  encoder = networks.build_encoder(config.arch, data_shape, enc_dim, width=config.width,
                                   depth=config.depth, spectral_norm=recipe.spectral_norm,
                                   batch_norm=recipe.encoder_batch_norm)
  decoder = networks.build_decoder(config.arch, config.latent_dim, data_shape,
                                   width=config.width, depth=config.depth,
                                   spectral_norm=recipe.spectral_norm,
                                   batch_norm=recipe.decoder_batch_norm)
  if hp["prior"] == "vamp" and recipe.terms is not _monte_carlo_kl:
    # The closed-form KL is to N(0, I): it would ignore the VampPrior.
    raise ConfigError(f"--prior=vamp needs the Monte-Carlo KL of --model=vae_vamp, not "
                      f"--model={config.model}")
  prior = build_prior(hp["prior"], config, data_shape=data_shape, is_image=is_image, hp=hp)
  transform_cls = latent_transforms.LATENT_TRANSFORMS.get(recipe.latent_transform)
  if transform_cls is latent_transforms.MaskLayer:
    transform = transform_cls(config.latent_dim, init_max=hp["mask_init_max"],
                              seed=config.seed, psi_max=hp.get("mask_psi_max"),
                              name="mask")
  else:
    transform = transform_cls(name=recipe.latent_transform)
  # Terms after the prior and transform: networks are built in this order so that seeded
  # initial weights stay what they were (the critics after the prior generator).
  terms = recipe.terms(hp, config)
  closed_form_kl = [n for n, t in terms.items() if type(t) is regularizers.KLDivergence]
  if hp["prior"] != "standard_normal" and closed_form_kl:
    raise ConfigError(f"--prior={hp['prior']}: --model={config.model}'s {closed_form_kl[0]} "
                      "term is the closed-form KL to N(0, I) and would ignore this prior; "
                      "leave --prior unset (or use --model=vae_vamp's Monte-Carlo KL)")
  model = RegularizedAutoEncoder(
      encoder, decoder, likelihood, prior, terms,
      latent_dim=config.latent_dim, gaussian_encoder=recipe.gaussian_encoder,
      seed=config.seed, latent_transform=transform, posterior=posterior, name=config.model)
  return model, hp


def build_posterior(recipe: ModelRecipe, hp: Dict[str, Any], config: TrainConfig):
  """The recipe's encoder posterior (`rae_tf.posteriors`).

  Args:
    recipe: the model's recipe (its `posterior`, else `gaussian_encoder`).
    hp: resolved weights (IAF: iaf_steps, iaf_width).
    config: uses latent_dim.
  """
  name = recipe.posterior or ("gaussian" if recipe.gaussian_encoder else "deterministic")
  posterior_cls = posteriors.POSTERIORS.get(name)
  if posterior_cls is posteriors.IAFPosterior:
    # The context h has the MADE's width, as openai/iaf's one h_size for both.
    return posterior_cls(config.latent_dim, num_steps=hp["iaf_steps"], width=hp["iaf_width"],
                         name="posterior")
  return posterior_cls(name="posterior")


def build_prior(name: str, config: TrainConfig, data_shape: Tuple[int, ...] = (),
                is_image: bool = True, hp: Optional[Dict[str, Any]] = None):
  """The prior named `name` (`rae_tf.priors.PRIORS`), sized from the config.

  Args:
    name: standard_normal, learned (FlexAE: G(eps)), flow (RealNVP), vamp (VampPrior) or
      density_ratio (VAE-IOP's q(z) through its critic).
    config: uses latent_dim and the --prior_* flags.
    data_shape: one example's shape (the VampPrior's pseudo-inputs).
    is_image: images (the VampPrior clips its pseudo-inputs to [0, 1]).
    hp: resolved weights (VampPrior: num_pseudo_inputs; density_ratio: prior_candidates).
  """
  prior_cls = priors.PRIORS.get(name)
  if prior_cls is priors.VampPrior:
    return prior_cls(config.latent_dim, data_shape,
                     num_pseudo_inputs=(hp or {}).get("num_pseudo_inputs", 500),
                     clip=is_image, name="prior")
  if prior_cls is priors.LearnedPrior:
    noise_dim = config.prior_noise_dim or config.latent_dim
    generator = networks.build_prior_generator(noise_dim, config.latent_dim,
                                               width=config.prior_width,
                                               depth=config.prior_depth)
    return prior_cls(config.latent_dim, generator, noise_dim, base=config.prior_noise,
                     name="prior")
  if prior_cls is priors.DensityRatioPrior:
    return prior_cls(config.latent_dim, num_candidates=(hp or {}).get("prior_candidates", 64),
                     name="prior")
  if prior_cls is priors.FlowPrior:
    return prior_cls(config.latent_dim, num_couplings=config.flow_couplings,
                     width=config.prior_width, depth=config.prior_depth, name="prior")
  return prior_cls(config.latent_dim, name="prior")


# ---- Issue 9: FactorVAE, VAE-IOP, InjFlow and one-command ex-post GMM recipes ----------
# (Registered after the helpers above; module import runs them all the same.)
def _factor_vae(hp, config):
  critic = critic_terms.build_ratio_critic(config.latent_dim, width=config.critic_width,
                                           depth=config.critic_depth, activation="leaky_relu",
                                           name="tc_discriminator")
  return {**_kl(hp, config), "tc": critic_terms.TotalCorrelation(
      critic, hp["tc_weight"], critic_steps=hp["critic_steps"],
      learning_rate=hp["critic_learning_rate"], adam_beta_1=hp["adversary_beta_1"],
      adam_beta_2=hp["adversary_beta_2"], optimizer=hp["optimizer"], name="tc")}


def _vae_iop(hp, config):
  critic = critic_terms.build_ratio_critic(config.latent_dim, width=config.critic_width,
                                           depth=config.critic_depth, activation="tanh",
                                           name="density_ratio")
  return {"iop_kl": critic_terms.ImplicitOptimalPriorKL(
      critic, hp["beta"], critic_steps=hp["critic_steps"],
      learning_rate=hp["critic_learning_rate"], adam_beta_1=hp["adversary_beta_1"],
      adam_beta_2=hp["adversary_beta_2"], optimizer=hp["optimizer"], name="iop_kl")}


def _injflow(hp, config):
  return {**_rae()(hp, config), "jacobian": jacobian.DecoderJacobianPenalty(
      hp["jacobian_weight"], form=hp["jacobian_form"],
      num_projections=hp["jacobian_projections"], name="jacobian")}


MODELS.register("factor_vae", ModelRecipe(
    "FactorVAE: VAE + gamma * total correlation, estimated by a latent discriminator "
    "(own Adam) against dimension-permuted codes",
    gaussian_encoder=True, likelihood="bernoulli",
    defaults={"beta": 1.0, "tc_weight": 35.0, "critic_steps": 1,
              "critic_learning_rate": 1e-4, "adversary_beta_1": 0.5,
              "adversary_beta_2": 0.9},
    terms=_factor_vae))
MODELS.register("vae_iop", ModelRecipe(
    "VAE with implicit optimal prior: KL to the aggregate posterior through a density-ratio "
    "critic T(z) = log q(z) / N(z; 0, I) (own Adam); then a GMM fitted to the codes",
    gaussian_encoder=True, likelihood="bernoulli",
    defaults={"beta": 1.0, "critic_steps": 10, "critic_learning_rate": 1e-3,
              "adversary_beta_1": 0.9, "adversary_beta_2": 0.999, "prior_candidates": 64},
    # Its prior is q(z) = N(0, I) exp T: the export resamples N(0, I) candidates by T (the
    # authors' code never samples); <run name>_gmm samples a GMM fitted to the codes.
    terms=_vae_iop, prior="density_ratio", expost="gmm"))
MODELS.register("injflow", ModelRecipe(
    "InjFlow: pixel MSE + beta * ||z||^2 + w * m/2 log ||J_dec(z)||_F^2 (random "
    "Jacobian-vector products), the relaxed injective-flow bound",
    gaussian_encoder=False, likelihood="mse",
    defaults={"latent_l2": 5e-5, "jacobian_weight": 1e-4, "jacobian_form": "log",
              "jacobian_projections": 1},
    terms=_injflow))

# One command: train the model, then fit and export an ex-post GMM (the same recipe parts).
for _base in ("ae", "rae_l2", "rae_gp", "rae_sn", "injflow"):
  _recipe = MODELS.get(_base)
  MODELS.register(f"{_base}_gmm", dataclasses.replace(
      _recipe, description=f"{_base} + GMM: {_recipe.description}; then a 10-component GMM "
      "fitted to the training codes, exported as <run name>_gmm",
      expost="gmm"))
del _base, _recipe


def training_twin(name: str) -> str:
  """The first registered model that trains exactly like `name` (itself if none).

  Aliases (vae_bce -> vae) and one-command ex-post recipes (rae_l2_gmm -> rae_l2,
  two_stage_vae -> vae_learned_var) differ from their twin only in the description and the
  ex-post prior fitted after training: the same config trains the same weights, so
  benchmarks train the twin once and report the ex-post prior as its "+<kind>" row.
  """
  key = dataclasses.replace(MODELS.get(name), description="", expost=None)
  same = [other for other in MODELS.names()
          if dataclasses.replace(MODELS.get(other), description="", expost=None) == key]
  # Prefer the twin without an ex-post prior (vae_learned_var, not two_stage_vae).
  return min(same, key=lambda other: (MODELS.get(other).expost is not None, other))
