"""The frozen training configuration that library code takes (scripts build it from flags)."""
import dataclasses
import json
from typing import Any, Dict, Optional, Tuple

from rae_tf import model_params
from rae_tf.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multi_worker")
# --mixed_precision values (rae_tf.precision.MODES; listed here so flags are checked
# before TensorFlow is imported).
MIXED_PRECISION = ("none", "bfloat16", "float16")


# Values that meant "the model's default" when these were top-level fields with defaults.
_LEGACY_UNSET = {"mask_poly_period": 0, "mask_psi_max": 0.0, "mask_init_max": 5.0}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one training run needs. `None` for a part's weight = the model's default.

  Attributes mirror the flags of scripts/train.py; see that file (or --helpfull) for the
  meaning of each.
  """
  # What to train.
  model: str = "rae_l2"
  latent_dim: int = 16
  arch: str = "dcgan"
  width: int = 32
  depth: int = 4
  # Data.
  dataset: str = "mnist10k"
  data_dir: Optional[str] = None
  true_latent_dim: int = 8
  ambient_dim: int = 64
  num_examples: int = 10000
  # Optimisation.
  epochs: int = 10
  steps_per_epoch: Optional[int] = None
  batch_size: int = 100
  learning_rate: float = 1e-3
  adam_beta_1: float = 0.9
  seed: int = 0
  lr_drops: Optional[str] = None
  plateau_patience: int = 0
  strategy: str = "default"
  cpu_devices: int = 0
  deterministic: bool = False
  mixed_precision: str = "none"
  # Objective parts. Part sizes here; the objective's weights and knobs (beta, reg_weight,
  # critic rates, MaskAAE's schedule, ...) live in `weights`, declared in rae_tf.model_params.
  likelihood: Optional[str] = None
  prior_variance: float = 1.0
  critic_width: int = 512
  critic_depth: int = 4
  # Learned priors (flexae, flexae_flow).
  prior: Optional[str] = None
  prior_width: int = 512
  prior_depth: int = 4
  prior_noise_dim: int = 0
  prior_noise: str = "normal"
  flow_couplings: int = 4
  prior_refine_steps: int = 0
  prior_refine_half_life: int = 0
  # The model's weights set explicitly: sorted ((name, value), ...); unset = the recipe's
  # default (rae_tf.models.zoo). Build with `TrainConfig.make(beta=0.5, ...)`, read with
  # `weight("beta")`.
  weights: Tuple[Tuple[str, Any], ...] = dataclasses.field(
      default=(), metadata={"flags": model_params.PARAMS})  # One flag per Param.
  # Output.
  workdir: str = "runs/default"
  export_dir: Optional[str] = "saved_models"
  export_name: Optional[str] = None
  log_every_steps: int = 20
  num_image_samples: int = 64
  checkpoint_every_steps: int = 0

  def __post_init__(self):
    weights = self.weights.items() if isinstance(self.weights, dict) else self.weights
    object.__setattr__(self, "weights", model_params.check_weights(weights))
    positive = ("latent_dim", "width", "depth", "epochs", "batch_size", "log_every_steps",
                "critic_width", "critic_depth", "num_image_samples", "prior_width",
                "prior_depth", "flow_couplings")
    for name in positive:
      if getattr(self, name) <= 0:
        raise ConfigError(f"--{name}={getattr(self, name)} must be a positive integer")
    if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
      raise ConfigError(f"--steps_per_epoch={self.steps_per_epoch} must be positive "
                        "(or leave it unset for full epochs)")
    if self.learning_rate <= 0:
      raise ConfigError(f"--learning_rate={self.learning_rate} must be > 0")
    if self.strategy not in STRATEGIES:
      raise ConfigError(f"unknown --strategy={self.strategy!r}; choose one of: "
                        + ", ".join(STRATEGIES))
    if self.mixed_precision not in MIXED_PRECISION:
      raise ConfigError(f"unknown --mixed_precision={self.mixed_precision!r}; choose one "
                        "of: " + ", ".join(MIXED_PRECISION))
    self.parsed_lr_drops()  # Validates --lr_drops.
    if self.plateau_patience and self.lr_drops:
      raise ConfigError("--lr_drops and --plateau_patience are alternative schedules; "
                        "pass one of them")
    if self.plateau_patience < 0:
      raise ConfigError(f"--plateau_patience={self.plateau_patience} must be >= 0 "
                        "(0 = off)")
    if self.prior_refine_steps < 0:
      raise ConfigError(f"--prior_refine_steps={self.prior_refine_steps} must be >= 0 "
                        "(0 = no refinement)")
    if self.prior_refine_half_life < 0:
      raise ConfigError(f"--prior_refine_half_life={self.prior_refine_half_life} must be "
                        ">= 0 (0 = a constant rate)")
    if self.prior_refine_half_life and not self.prior_refine_steps:
      raise ConfigError("--prior_refine_half_life schedules the prior refinement: set "
                        "--prior_refine_steps too, or drop it")
    if self.prior_refine_steps and self.strategy != "default":
      raise ConfigError("--prior_refine_steps runs on one device: use --strategy=default "
                        "(or refine later with the same command on one device)")
    if self.prior_noise_dim < 0:
      raise ConfigError(f"--prior_noise_dim={self.prior_noise_dim} must be >= 0 (0 = m)")
    if self.prior_noise not in ("normal", "uniform"):
      raise ConfigError(f"unknown --prior_noise={self.prior_noise!r}; choose normal or "
                        "uniform")
    if self.checkpoint_every_steps < 0:
      raise ConfigError(f"--checkpoint_every_steps={self.checkpoint_every_steps} must be "
                        ">= 0 (0 = a checkpoint at the end of every epoch only)")
    if self.cpu_devices < 0:
      raise ConfigError(f"--cpu_devices={self.cpu_devices} must be >= 0")
    if not self.workdir:
      raise ConfigError("--workdir must name a directory for logs and checkpoints")
    # Names against the registries' light lists (no TensorFlow import: fast answers).
    from rae_tf import catalog  # pylint: disable=g-import-not-at-top
    for kind, name in (("model", self.model), ("architecture", self.arch),
                       ("dataset", self.dataset), ("likelihood", self.likelihood),
                       ("MMD kernel", self.weight("mmd_kernel")), ("prior", self.prior)):
      catalog.check_name(kind, name)

  def parsed_lr_drops(self) -> Tuple[Tuple[int, float], ...]:
    """--lr_drops "30:2,50:5" -> ((30, 2.0), (50, 5.0)): from epoch 30 divide by 2, from 50
    by a further 5 (WAE's schedule). Empty for None."""
    if not self.lr_drops:
      return ()
    drops = []
    for item in self.lr_drops.split(","):
      try:
        epoch, factor = item.split(":")
        drops.append((int(epoch), float(factor)))
      except ValueError:
        raise ConfigError(f"--lr_drops={self.lr_drops!r}: expected EPOCH:FACTOR pairs such "
                          "as 30:2,50:5") from None
      if drops[-1][0] < 1 or drops[-1][1] <= 0:
        raise ConfigError(f"--lr_drops={self.lr_drops!r}: epochs must be >= 1 and factors "
                          "> 0")
    return tuple(sorted(drops))

  def weight(self, name: str, default: Any = None) -> Any:
    """The explicitly set value of model weight `name` (rae_tf.model_params), or default."""
    return dict(self.weights).get(name, default)

  @classmethod
  def make(cls, **kwargs) -> "TrainConfig":
    """A config from flat keywords: fields and model weights alike (beta=0.5, epochs=3)."""
    return cls.from_dict(kwargs)

  def replace(self, **changes) -> "TrainConfig":
    """A copy with fields or model weights changed (a weight set to None is unset)."""
    fields = {f.name for f in dataclasses.fields(self)}
    weights = dict(self.weights)
    for name in [n for n in changes if n not in fields]:
      weights[name] = changes.pop(name)
    return dataclasses.replace(self, weights=tuple(weights.items()), **changes)

  def to_dict(self) -> Dict[str, Any]:
    """Flat: the fields, then each explicitly set weight under its own name."""
    d = dataclasses.asdict(self)
    d.pop("weights")
    d.update(self.weights)
    return d

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
    """From `to_dict`'s flat form (also the config.json of runs before weights were a
    sub-config: their unset weights are None, or 0 / 5.0 for three mask knobs)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known - set(model_params.PARAMS)
    if unknown:
      raise ConfigError(f"unknown config keys {sorted(unknown)}")
    fields = {k: v for k, v in d.items() if k in known and k != "weights"}
    weights = dict(d.get("weights", ()))
    for name in set(d) - known:
      if d[name] is not None and _LEGACY_UNSET.get(name, object()) != d[name]:
        weights[name] = d[name]
    return cls(weights=tuple(weights.items()), **fields)

  @property
  def run_name(self) -> str:
    return self.export_name or self.model

  # Fields that may change between a run and its resumption (more epochs, new export path).
  RESUMABLE_CHANGES = ("epochs", "export_dir", "export_name", "log_every_steps",
                       "workdir", "data_dir", "checkpoint_every_steps", "deterministic",
                       "num_image_samples", "prior_refine_steps", "prior_refine_half_life")
