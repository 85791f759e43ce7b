"""EvalConfig (the flags of scripts/evaluate.py) and its checks, without TensorFlow.

`rae_tf.evaluation` (which imports TensorFlow) re-exports EvalConfig and FEATURES; the
script validates its flags here first, so bad input is answered at once. The ex-post
priors' kinds, files and fit options (scripts/fit_prior.py, `--prior=gmm|flow|vae`) are
checked here too, for the same reason; `rae_tf.runs` re-exports the file names.
"""
import dataclasses
import os
from typing import Optional, Tuple

from rae_tf import catalog
from rae_tf.errors import ConfigError

FEATURES = ("domain", "inception", "raw")
# Ex-post priors fitted to a run's training codes (rae_tf.expost), one file each in the run.
EXPOST_KINDS = ("gmm", "flow", "vae")
EXPOST_FILES = {"gmm": "gmm_prior.npz", "flow": "flow_prior.npz", "vae": "vae_prior.npz"}
PRIORS = ("trained",) + EXPOST_KINDS
EMBEDDINGS = ("pca", "tsne")  # = rae_tf.viz.EMBEDDING_METHODS (tests/test_cli.py checks).
# Samples per metric when --num_samples is not given (the papers' 10,000), capped at the
# test split's size.
DEFAULT_NUM_SAMPLES = 10000
GMM_FILE = EXPOST_FILES["gmm"]
CONFIG_FILE = "config.json"  # A run's TrainConfig.
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to evaluate and how (flags of scripts/evaluate.py).

  Attributes:
    workdir: a training run directory (config.json + checkpoints/).
    export_dir: a SavedModel version directory (instead of --workdir); needs --dataset.
    dataset: data set to compare with (default: the run's).
    data_dir: tensorflow-datasets directory.
    num_samples: generated samples, reconstructions and test images per metric; None:
      min(DEFAULT_NUM_SAMPLES, the test split's size).
    features: "domain", "inception" or "raw"; None: domain for labelled images, else raw.
    inception_weights: InceptionV3 notop weights file (features="inception").
    cache_dir: where the domain classifier is cached (default: <out_dir>/../feature_cache).
    out_dir: output folder (default: <workdir>/eval, or eval/<name>-<version>).
    batch_size: batch size for sampling and encoding.
    seed: first sample seed.
    draws: independent sample draws for the generation FID (draw k uses seeds
      seed + k * num_samples ...): `fid_generation` is their mean, `fid_generation_sd`
      their standard deviation, `fid_generation_draws` each; PRD and precision / recall
      use the first draw. One draw's FID moves by its sampling noise (about +-10 % with
      1,000 samples), so compare models on several draws.
    prd_runs: PRD k-means runs averaged.
    domain_epochs: training epochs of the domain classifier (when not cached).
    embedding: "pca" or "tsne" for the code scatter plot.
    attribute: the attribute of the manipulation figure: a class id for labelled data
      (default: the most frequent class), a CelebA attribute name (default "Smiling").
    prior: "trained" (the model's own prior), or an ex-post prior fitted by
      scripts/fit_prior.py --expost=KIND and saved in the workdir: "gmm", "flow", "vae".
    figures: whether to write PNG figures.
  """
  workdir: Optional[str] = None
  export_dir: Optional[str] = None
  dataset: Optional[str] = None
  data_dir: Optional[str] = None
  num_samples: Optional[int] = None
  features: Optional[str] = None
  inception_weights: Optional[str] = None
  cache_dir: Optional[str] = None
  out_dir: Optional[str] = None
  batch_size: int = 500
  seed: int = 0
  draws: int = 1
  prd_runs: int = 10
  domain_epochs: int = 3
  embedding: str = "pca"
  attribute: Optional[str] = None
  prior: str = "trained"
  figures: bool = True

  def __post_init__(self):
    if bool(self.workdir) == bool(self.export_dir):
      raise ConfigError("pass exactly one of --workdir (a training run) or --export_dir "
                        "(a SavedModel version directory)")
    if self.export_dir and not self.dataset:
      raise ConfigError("--export_dir needs --dataset (the data the model was trained on)")
    if self.num_samples is not None and self.num_samples < 2:
      raise ConfigError(f"--num_samples={self.num_samples} must be >= 2")
    if self.batch_size < 1:
      raise ConfigError(f"--batch_size={self.batch_size} must be >= 1")
    if self.features is not None and self.features not in FEATURES:
      raise ConfigError(f"unknown --features={self.features!r}; choose one of: "
                        + ", ".join(FEATURES))
    if self.prior not in PRIORS:
      raise ConfigError(f"unknown --prior={self.prior!r}; choose one of: "
                        + ", ".join(PRIORS))
    if self.prior != "trained" and not self.workdir:
      raise ConfigError(f"--prior={self.prior} needs --workdir (an exported "
                        f"*_{self.prior} SavedModel already samples its prior: pass it with "
                        "--prior=trained)")
    if self.prd_runs < 1:
      raise ConfigError(f"--prd_runs={self.prd_runs} must be >= 1")
    if self.draws < 1:
      raise ConfigError(f"--draws={self.draws} must be >= 1")
    if self.embedding not in EMBEDDINGS:
      raise ConfigError(f"unknown --embedding={self.embedding!r}; choose one of: "
                        + ", ".join(EMBEDDINGS))
    catalog.check_name("dataset", self.dataset)


def check_run_dir(workdir: str) -> str:
  """Returns <workdir>/config.json; ConfigError when workdir is not a training run."""
  if not os.path.isdir(workdir):
    raise ConfigError(f"--workdir={workdir} does not exist; pass a training run directory")
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise ConfigError(f"--workdir={workdir} has no config.json; pass the --workdir of a "
                      "finished scripts/train.py run")
  return path


def check_export_dir(path: str):
  """ConfigError unless `path` is a SavedModel directory."""
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise ConfigError(f"--export_dir={path} holds no saved_model.pb; pass a version "
                      "directory such as saved_models/<name>/1")


def check_expost_kind(kind: str, flag: str = "--expost") -> str:
  """ConfigError unless `kind` is an ex-post prior kind."""
  if kind not in EXPOST_KINDS:
    raise ConfigError(f"unknown {flag}={kind!r}; choose one of: " + ", ".join(EXPOST_KINDS))
  return kind


def expost_file(workdir: str, kind: str) -> str:
  """<workdir>/<the fit file of `kind`>."""
  return os.path.join(workdir, EXPOST_FILES[check_expost_kind(kind)])


def check_expost_file(workdir: str, kind: str):
  """ConfigError unless scripts/fit_prior.py has saved the run's ex-post prior `kind`."""
  path = expost_file(workdir, kind)
  if not os.path.exists(path):
    fix = "" if kind == "gmm" else f" --expost={kind}"
    raise ConfigError(f"{path} not found: fit it first with scripts/fit_prior.py "
                      f"--workdir={workdir}{fix}")


def check_gmm_file(workdir: str):
  """ConfigError unless scripts/fit_prior.py has saved the run's GMM."""
  check_expost_file(workdir, "gmm")


# The fit options of each ex-post kind and their defaults (flags of scripts/fit_prior.py).
# gmm: the RAE paper's K = 10. flow: rae_tf.priors.ExpostFlowPrior (RealNVP) by maximum
# likelihood. vae: Dai & Wipf's second stage (rae_tf.priors.SecondStageVAEPrior), 3 x FC1024
# encoder and decoder as in their paper. Training runs `steps` Adam steps on minibatches of
# `batch_size` codes and reports every `log_every` steps (0: never).
EXPOST_OPTIONS = {
    "gmm": {"components": 10},
    "flow": {"steps": 3000, "learning_rate": 1e-3, "batch_size": 256, "couplings": 4,
             "width": 128, "depth": 2, "log_every": 500},
    "vae": {"steps": 3000, "learning_rate": 1e-3, "batch_size": 256, "width": 1024,
            "depth": 3, "log_every": 500},
}
_POSITIVE_INTS = ("components", "steps", "batch_size", "couplings", "width", "depth")


def expost_options(kind: str, **given) -> dict:
  """The fit options of `kind`: its defaults, overridden by the non-None `given` ones.

  Raises:
    ConfigError: an unknown kind, an option `kind` does not take, or a bad value (the
      message names the flag --<option> and the fix).
  """
  defaults = EXPOST_OPTIONS[check_expost_kind(kind)]
  given = {k: v for k, v in given.items() if v is not None}
  for name in sorted(set(given) - set(defaults)):
    takers = [k for k in EXPOST_KINDS if name in EXPOST_OPTIONS[k]]
    hint = (f"it applies to --expost={'|'.join(takers)}" if takers
            else "it is not a fit option")
    raise ConfigError(f"--{name} does not apply to --expost={kind} ({hint}); drop it. "
                      f"--expost={kind} takes: "
                      + ", ".join(f"--{k}" for k in defaults))
  options = {**defaults, **given}
  for name, value in options.items():
    if name in _POSITIVE_INTS and (isinstance(value, bool) or int(value) != value
                                   or value < 1):
      raise ConfigError(f"--{name}={value} must be an integer >= 1 (default "
                        f"{defaults[name]})")
    if name == "learning_rate" and not 0 < value < 1:
      raise ConfigError(f"--learning_rate={value} must be in (0, 1) (default "
                        f"{defaults[name]})")
    if name == "log_every" and (int(value) != value or value < 0):
      raise ConfigError(f"--log_every={value} must be an integer >= 0 (0: no progress "
                        "lines)")
  return options


def check_inputs(config: EvalConfig):
  """The files the flags name must exist: checked before anything slow is loaded."""
  if config.workdir:
    check_run_dir(config.workdir)
    if config.prior in EXPOST_KINDS:
      check_expost_file(config.workdir, config.prior)
  else:
    check_export_dir(config.export_dir)
  catalog.check_dataset_file(config.dataset)
  if config.features == "inception":
    if not config.inception_weights:
      raise ConfigError(f"--features=inception needs --inception_weights: the Keras file "
                        f"{INCEPTION_WEIGHTS_FILE} (see README, Evaluating), or use "
                        "--features=domain")
    if not os.path.isfile(config.inception_weights):
      raise ConfigError(f"--inception_weights={config.inception_weights}: no such file; "
                        f"pass the path of {INCEPTION_WEIGHTS_FILE}, or use "
                        "--features=domain")


def resolve_num_samples(config: EvalConfig, num_test: int,
                        dataset: str) -> Tuple[int, Optional[str]]:
  """(samples per metric, a note saying why when the default was used).

  Raises:
    ConfigError: an explicit --num_samples larger than the test split.
  """
  if config.num_samples is not None:
    if config.num_samples > num_test:
      raise ConfigError(f"--num_samples={config.num_samples} exceeds the {num_test} test "
                        f"examples of --dataset={dataset}; lower --num_samples (or leave "
                        "it unset to use them all)")
    return config.num_samples, None
  if num_test < 2:
    raise ConfigError(f"--dataset={dataset} has {num_test} test example(s); evaluation "
                      "needs at least 2")
  if num_test < DEFAULT_NUM_SAMPLES:
    return num_test, (f"--num_samples={num_test} (the test split's size; pass "
                      "--num_samples to change)")
  return DEFAULT_NUM_SAMPLES, (f"--num_samples={DEFAULT_NUM_SAMPLES} (the default, as in "
                               f"the papers; the test split has {num_test}; pass "
                               "--num_samples to change)")
