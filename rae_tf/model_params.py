"""The models' weights and knobs, each declared once: name, type, flag help, valid range.

A model's recipe (`rae_tf.models.zoo`) lists the weights it reads with its defaults; a run's
`TrainConfig.weights` holds only the ones set explicitly (flags, flagfiles, experiments).
`scripts/train.py` defines one flag per entry here (`--beta=0.1` as before), its help is
the entry's, and a weight the chosen model does not read is refused when the model is
built. Adding a model's knob = one `Param` here + its default in the recipe.

No TensorFlow import: the scripts validate flags before TensorFlow loads.
"""
import dataclasses
from typing import Any, Dict, Iterable, Optional, Tuple, Type

from rae_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Param:
  """One weight or knob of one or more models.

  Attributes:
    name: the flag and the key in `TrainConfig.weights` and in hparams.json.
    kind: float, int or str.
    help: the flag's help (say which models read it and their defaults' source).
    minimum: smallest valid value (inclusive), or None.
    positive: the value must be > 0.
    below_one: the value must be < 1 (Adam betas).
    choices: valid strings, or None.
  """
  name: str
  kind: Type
  help: str
  minimum: Optional[float] = None
  positive: bool = False
  below_one: bool = False
  choices: Optional[Tuple[str, ...]] = None

  def check(self, value: Any) -> Any:
    """The value converted to `kind`; ConfigError naming the flag when it is invalid."""
    flag = f"--{self.name}"
    try:
      if self.kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError
      value = self.kind(value)
    except (TypeError, ValueError):
      raise ConfigError(f"{flag}={value!r} must be a {self.kind.__name__}") from None
    if self.choices is not None and value not in self.choices:
      raise ConfigError(f"unknown {flag}={value!r}; choose one of: {', '.join(self.choices)}")
    if self.positive and value <= 0:
      raise ConfigError(f"{flag}={value} must be > 0")
    if self.minimum is not None and value < self.minimum:
      raise ConfigError(f"{flag}={value} must be >= {self.minimum:g}")
    if self.below_one and not value < 1:
      raise ConfigError(f"{flag}={value} must be < 1")
    return value


def _params(*items: Param) -> Dict[str, Param]:
  return {p.name: p for p in items}


PARAMS: Dict[str, Param] = _params(
    # Likelihood and optimiser kind (every model).
    Param("decoder_variance", float, "Variance of --likelihood=gaussian (WAE's "
          "0.05*||x-y||^2 is 10).", positive=True),
    Param("optimizer", str, "Optimizer of the auto-encoder and of the adversarial players: "
          "adam or rmsprop (default: the model's; maskaae: rmsprop, as its authors).",
          choices=("adam", "rmsprop")),
    # Divergence weights.
    Param("beta", float, "KL weight of the VAE family (vae, beta_vae, ...).", minimum=0),
    Param("reg_weight", float, "lambda: weight of the divergence D_Z (MMD, adversarial "
          "critic; FlexAE: of the encoder's adversarial loss; flexae_flow: of the codes' "
          "NLL).", minimum=0),
    Param("mmd_kernel", str, "MMD kernel of wae_mmd: imq or rbf.", choices=("imq", "rbf")),
    Param("latent_l2", float, "RAE: weight of ||z||^2.", minimum=0),
    Param("decoder_l2", float, "RAE-L2: weight of the decoder's L2 weight decay.", minimum=0),
    Param("gp_weight", float, "RAE-GP: weight of the decoder gradient penalty.", minimum=0),
    # Adversarial players (wae_gan, aae, flexae, maskaae).
    Param("critic_steps", int, "Critic updates per auto-encoder step.", minimum=1),
    Param("critic_learning_rate", float, "Learning rate of the latent critic.",
          positive=True),
    Param("generator_learning_rate", float, "Adam rate of the learned prior: FlexAE's "
          "generator (authors: 2e-4) or the flow's maximum-likelihood fit.", positive=True),
    Param("encoder_adversary_learning_rate", float, "Rate of the encoder's own adversarial "
          "update (flexae, authors: 1e-5; aae and maskaae: 1e-4; with --reg_weight it sets "
          "how hard the codes are pulled to the prior).", positive=True),
    Param("adversary_beta_1", float, "Adam beta_1 of the critic, prior and encoder players "
          "(flexae authors: 0; aae: 0.5).", minimum=0, below_one=True),
    Param("adversary_beta_2", float, "Adam beta_2 of those players (authors: 0.9).",
          minimum=0, below_one=True),
    # ---- Issue 9: FactorVAE and InjFlow (factor_vae, injflow, injflow_gmm) ----
    Param("tc_weight", float, "factor_vae: gamma, the weight of the total correlation "
          "(paper: 35 on dSprites, the default; configs/factor_vae.flags: 10 on MNIST).",
          minimum=0),
    Param("jacobian_weight", float, "injflow: weight of the decoder-Jacobian penalty "
          "(default 1e-4; with --latent_l2 = half of it, the flow bound's balance).",
          minimum=0),
    Param("jacobian_form", str, "injflow: log (m/2 log(||J||_F^2 / m), the Jensen bound on "
          "1/2 log det J^T J; default) or frobenius (||J||_F^2).",
          choices=("log", "frobenius")),
    Param("jacobian_projections", int, "injflow: random Jacobian-vector products per code "
          "estimating ||J||_F^2 (default 1; 0 = exact, m products).", minimum=0),
    # MaskAAE's mask.
    Param("mask_learning_rate", float, "maskaae: rate of the mask's player (default 5 x "
          "--learning_rate, as the authors).", positive=True),
    Param("mask_variance_weight", float, "maskaae: weight of the variance penalty on closed "
          "dimensions (authors: 100).", minimum=0),
    Param("mask_reconstruction_weight", float, "maskaae: weight of the reconstruction cost "
          "in the mask's loss, per-example sum units (default: images 1000 / data size, the "
          "authors' 1000 x per-pixel mean BCE; vectors 1).", minimum=0),
    Param("mask_poly_start", float, "maskaae: start value of c_poly, the weight of "
          "sum |mu (1 - mu)| that drives each mask entry to 0 or 1 (default 2 / m).",
          positive=True),
    Param("mask_poly_period", int, "maskaae: steps between doublings of c_poly (cap 2048). "
          "Default: automatic, the doublings are spread over the run after "
          "--mask_poly_delay so the cap is reached at its last step (the authors: period "
          "4R over 500k steps, no delay). Set it explicitly to keep the schedule when "
          "extending a run with more --epochs.", minimum=1),
    Param("mask_poly_delay", int, "maskaae: steps before c_poly's first doubling (default: "
          "60% of the run's steps, so the mask finds its dimensions before it is polarised; "
          "the authors: 0).", minimum=0),
    Param("mask_rate_drop_epoch", int, "maskaae: from this epoch (counted from 0, as "
          "--lr_drops) the learning rates of --mask_rate_drop_players are divided by 5, "
          "the authors' rate drop (theirs: the auto-encoder's and the mask's at step 5R). "
          "Default: 80% of --epochs (set it explicitly to keep it when extending a run with "
          "more --epochs); 0 = no drop (better for short runs at a large m: at 540 steps "
          "and m >= 64 the drop left more dimensions open). --lr_drops or "
          "--plateau_patience replace it.",
          minimum=0),
    Param("mask_rate_drop_players", str, "maskaae: whose rates --mask_rate_drop_epoch "
          "divides: all (default: every player's, the critic's and the encoder's "
          "adversarial step too) or autoencoder_mask (the authors': the auto-encoder's and "
          "the mask's only). --lr_drops always divides every player's.",
          choices=("all", "autoencoder_mask")),
    Param("mask_init_max", float, "maskaae: psi starts U(0, this) (mask mu = "
          "1 - exp(-psi); authors: 5).", positive=True),
    Param("mask_psi_max", float, "maskaae: upper bound of psi, so open dimensions stay able "
          "to close (default: none, as the authors).", positive=True),
    # ---- VAE family (issue 9): vae_iaf, vae_vamp, info_vae. ----
    Param("iaf_steps", int, "vae_iaf: inverse autoregressive flow steps T refining the "
          "Gaussian posterior (default 2, the paper's smallest MNIST flow).", minimum=0),
    Param("iaf_width", int, "vae_iaf: hidden units of each step's MADE (2 layers) and size "
          "of the encoder's context h (default 320, the paper's MNIST width).",
          positive=True),
    Param("num_pseudo_inputs", int, "vae_vamp: K, learned pseudo-inputs of the VampPrior "
          "(authors: 500).", positive=True),
    Param("prior_candidates", int, "vae_iop: N(0, I) candidates per generated sample, one "
          "kept with probability softmax(T) (sampling-importance-resampling from q(z); "
          "default 64).", positive=True),
    Param("info_alpha", float, "info_vae: alpha; the KL weight is 1 - alpha and the MMD "
          "weight alpha + lambda - 1 (default 0, the InfoVAE paper's MNIST setting)."),
    Param("info_lambda", float, "info_vae: lambda, with alpha the MMD weight alpha + lambda "
          "- 1 on the aggregate posterior (default 1000).", minimum=0),
)

# Weights every model accepts (the likelihood's variance and the optimiser kind).
GENERIC = {"decoder_variance": 1.0, "optimizer": "adam"}


def check_weights(weights: Iterable[Tuple[str, Any]]) -> Tuple[Tuple[str, Any], ...]:
  """Sorted ((name, value), ...) with every name declared and every value valid.

  None values are dropped (unset = the model's default).
  """
  out = {}
  for name, value in weights:
    if name not in PARAMS:
      raise ConfigError(f"unknown model weight --{name}; known: {', '.join(sorted(PARAMS))}")
    if value is not None:
      out[name] = PARAMS[name].check(value)
  return tuple(sorted(out.items()))
