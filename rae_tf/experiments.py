"""Experiments built from train() and evaluate(): one train+evaluate step, the prior-capacity
sweep (FlexAE's bias-variance study, the seed's Table 5) and their report files.

* `train_and_evaluate(train_config, request)`: trains (or resumes) one run, then evaluates
  it with the trained prior and, if asked, with the ex-post GMM (RAE + GMM). Evaluation
  results are cached in the run directory, keyed by the checkpoint and the request (its
  domain classifier folder by the classifier it holds, so a moved folder is reused), so a
  re-run (e.g. of a killed sweep or benchmark) only does what is missing. Used by
  `run_prior_capacity_sweep` and by `benchmarks/flexae_quality.py`.
* `run_prior_capacity_sweep(PriorCapacityConfig)`: trains FlexAE on a fraction of the
  training split with prior generators of increasing capacity and writes
  `<out_dir>/prior_capacity.{json,md,png}` (generation / reconstruction FID per model).
* `parse_train_flags("--prior_width=256 ...")`: TrainConfig overrides from scripts/train.py
  flag syntax, for flags passed through to runs.

Importing this module does not import TensorFlow (the scripts check their flags first);
the functions that train or evaluate import it on first use.
"""
import dataclasses
import datetime
import gc
import hashlib
import io
import json
import logging
import math
import os
import re
import shlex
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from rae_tf import catalog
from rae_tf import eval_config
from rae_tf import outputs
from rae_tf.viz import plots
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

# The default capacity ladder of the prior generator G (models 1-6), as width x depth:
# depth hidden Dense(width, ReLU) layers, then Dense(m). The authors' G is 1024 x 4.
DEFAULT_CAPACITIES = "16x1,64x1,128x2,256x3,512x4,1024x4"
SWEEP_JSON = "prior_capacity.json"
SWEEP_MD = "prior_capacity.md"
SWEEP_PNG = "prior_capacity.png"
EVAL_CACHE = "experiment_eval_{prior}.json"  # In each run directory.


def _say(msg: str):
  print(f"[rae_tf] {msg}", flush=True)


# ------------------------------------------------------------------- flags pass-through


def parse_train_flags(text: str, flag: str = "--train_flags",
                      forbidden: Sequence[str] = ()) -> Dict[str, Any]:
  """TrainConfig overrides from a string of scripts/train.py flags.

  "--critic_learning_rate=1e-3 --prior_width=256" -> {"critic_learning_rate": 0.001,
  "prior_width": 256}. Values are parsed and typed by absl exactly as scripts/train.py
  does (so --flagfile=... works too); only flags that appear are returned.

  Args:
    text: the flags, shell-quoted as on a command line ("" = none).
    flag: the flag that carried them, for messages.
    forbidden: TrainConfig fields the caller sets itself; naming one is an error.

  Returns:
    {field: value} for the flags given.

  Raises:
    ConfigError: unparsable text, an unknown flag, a bad value, a forbidden field.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from rae_tf import cli  # pylint: disable=g-import-not-at-top
  if not text or not text.strip():
    return {}
  try:
    argv = shlex.split(text)
  except ValueError as e:
    raise ConfigError(f"{flag}={text!r}: {e}; quote it as one shell word") from None
  values = flags.FlagValues()
  cli.define_flags(TrainConfig, {f.name: f"TrainConfig.{f.name}"
                                 for f in dataclasses.fields(TrainConfig)}, values)
  try:
    rest = values(["train_flags"] + argv)
  except flags.Error as e:
    raise ConfigError(f"{flag}: {e} (it takes flags of scripts/train.py)") from None
  except OSError as e:  # An unreadable --flagfile.
    raise ConfigError(f"{flag}: cannot read the flags: {cli.describe_os_error(e)}") from None
  if len(rest) > 1:
    raise ConfigError(f"{flag}: unexpected arguments {rest[1:]}; flags look like "
                      "--name=value")
  given = cli.flag_values_given(TrainConfig, values, only_present=True)
  clash = sorted(set(given) & set(forbidden))
  if clash:
    raise ConfigError(f"{flag} may not set {', '.join('--' + c for c in clash)}: "
                      "set by the experiment itself (use its own flags where it has them)")
  return given


# ------------------------------------------------------------------- train + evaluate


@dataclasses.dataclass(frozen=True)
class EvalRequest:
  """How `train_and_evaluate` evaluates a run (the EvalConfig fields that matter).

  Attributes:
    dataset: data to compare with (None: the run's own).
    data_dir: tensorflow-datasets directory of `dataset`.
    num_samples: samples per metric (None: min(10000, test split)).
    features: "domain", "inception", "raw" or None (domain for labelled images, else raw).
    inception_weights: for features="inception".
    cache_dir: domain classifier cache (None: evaluate's default beside the run's eval/).
    batch_size: evaluation batch size.
    prd_runs: PRD k-means runs.
    draws: independent sample draws averaged in the generation FID (EvalConfig.draws).
    figures: also write evaluate's PNG figures into each run's eval folder.
    gmm_components: components of the ex-post GMM (prior "gmm").
  """
  dataset: Optional[str] = None
  data_dir: Optional[str] = None
  num_samples: Optional[int] = None
  features: Optional[str] = None
  inception_weights: Optional[str] = None
  cache_dir: Optional[str] = None
  batch_size: int = 500
  prd_runs: int = 10
  figures: bool = False
  gmm_components: int = 10
  draws: int = 1

  def __post_init__(self):
    if self.gmm_components < 1:
      raise ConfigError(f"--gmm_components={self.gmm_components} must be >= 1")
    # EvalConfig checks the rest (samples, features, batch size, PRD runs, dataset name).
    self.eval_config("placeholder")

  def eval_config(self, workdir: str, prior: str = "trained") -> eval_config.EvalConfig:
    return eval_config.EvalConfig(
        workdir=workdir, dataset=self.dataset, data_dir=self.data_dir,
        num_samples=self.num_samples, features=self.features,
        inception_weights=self.inception_weights, cache_dir=self.cache_dir,
        batch_size=self.batch_size, prd_runs=self.prd_runs, prior=prior,
        figures=self.figures, draws=self.draws)


@dataclasses.dataclass
class RunOutcome:
  """What `train_and_evaluate` produced for one run.

  Attributes:
    workdir: the run directory.
    epochs: epochs trained in total.
    checkpoint: the evaluated checkpoint's name (ckpt-<n>).
    train_seconds: wall time of this invocation's training (0-ish when already done).
    prior_params: trainable weights of the prior (0 for a fixed N(0, I)).
    hparams: the model's resolved part choices and weights.
    metrics: prior ("trained", "gmm") -> evaluate()'s results (JSON-safe).
    eval_seconds: prior -> wall time of its evaluation (0 when cached).
  """
  workdir: str
  epochs: int
  checkpoint: str
  train_seconds: float
  prior_params: int
  hparams: Dict[str, Any]
  metrics: Dict[str, Dict[str, Any]]
  eval_seconds: Dict[str, float]


class _DropRetracingNotes(logging.Filter):
  """Drops TensorFlow's "N out of the last N calls ... triggered tf.function retracing"
  warning: expected here, where every run of a sweep builds and evaluates a new model."""

  def filter(self, record):
    return "triggered tf.function retracing" not in record.getMessage()


_RETRACING_FILTER = _DropRetracingNotes()


def json_safe(value):
  """value with numpy scalars/arrays as Python numbers and lists; NaN -> None, inf -> "inf"."""
  if isinstance(value, dict):
    return {str(k): json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(v) for v in value]
  if isinstance(value, np.ndarray):
    return json_safe(value.tolist())
  if isinstance(value, np.bool_):
    return bool(value)
  if isinstance(value, np.integer):
    return int(value)
  if isinstance(value, (float, np.floating)):
    value = float(value)
    return value if math.isfinite(value) else None if math.isnan(value) else str(value)
  return value


def _same_request(cached: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
  """Whether a cached evaluation answers `wanted` (EvalRequest as a dict).

  The domain classifier's folder is compared by content, not by path: a moved or copied
  folder (say, benchmarks/domain_classifiers in another clone) reuses the evaluations made
  under it as long as it still holds the classifier, by its weights' fingerprint, that
  measured them. A field the cached request lacks (one added to EvalRequest later) holds
  its default there.
  """
  request = {**field_defaults(EvalRequest), **(cached.get("request") or {})}
  folder = wanted.get("cache_dir")
  if not folder:
    return request == wanted
  drop = lambda d: {k: v for k, v in d.items() if k != "cache_dir"}
  if drop(request) != drop(wanted):
    return False
  used = cached["results"].get("domain_classifier_id")
  if used is None:  # Raw or Inception features: the folder was never read.
    return True
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  return used in features.cached_fingerprints(folder)


def _read_json(path: str) -> Optional[Dict[str, Any]]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def train_and_evaluate(train_config: TrainConfig, request: EvalRequest,
                       priors: Sequence[str] = ("trained",),
                       verbose: Optional[int] = None) -> RunOutcome:
  """Trains (or resumes) one run, then evaluates it with each prior in `priors`.

  A finished run is not trained again (train() resumes and finds nothing left to do); an
  evaluation is reused from `<workdir>/experiment_eval_<prior>.json` when it was made for
  the same checkpoint and the same request. An ex-post prior ("gmm", "flow", "vae") is
  first fitted (expost.fit_for_run with its default options, the GMM with
  `request.gmm_components` components; seed = the run's seed) unless the run already holds
  that fit (expost.fit_for_run_once: e.g. the recipe's own, made by training).

  Args:
    train_config: the run.
    request: how to evaluate it.
    priors: "trained" (the model's own prior) and/or ex-post priors "gmm", "flow", "vae".
    verbose: Keras progress output of training (see training.train).

  Returns:
    A RunOutcome.

  Raises:
    ConfigError, TrainingDiverged: from train() and evaluate().
  """
  import keras  # pylint: disable=g-import-not-at-top
  from rae_tf import evaluation  # pylint: disable=g-import-not-at-top
  from rae_tf import expost  # pylint: disable=g-import-not-at-top
  from rae_tf import runs  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  logging.getLogger("tensorflow").addFilter(_RETRACING_FILTER)  # Idempotent.
  for prior in priors:
    if prior not in eval_config.PRIORS:
      raise ConfigError(f"unknown prior {prior!r}; choose from {eval_config.PRIORS}")
  start = time.time()
  result = training.train(train_config, verbose=verbose)
  train_seconds = time.time() - start
  workdir = result.workdir
  prior_params = int(sum(int(np.prod(w.shape)) for w in result.model.prior.trainable_weights))
  epochs, hparams = result.epochs_done, json_safe(result.hparams)
  del result
  identity = runs.checkpoint_identity(workdir)  # Tells a rewritten checkpoint apart.
  checkpoint = identity.split(":")[0]
  metrics, eval_seconds = {}, {}
  wanted = json_safe(dataclasses.asdict(request))
  for prior in priors:
    cache = os.path.join(workdir, EVAL_CACHE.format(prior=prior))
    cached = _read_json(cache)
    if (cached and cached.get("checkpoint") == identity and "results" in cached
        and _same_request(cached, wanted)):
      _say(f"{workdir}: evaluation ({prior} prior) of {checkpoint} reused from {cache}")
      metrics[prior], eval_seconds[prior] = cached["results"], 0.0
      continue
    t0 = time.time()
    if prior != "trained":  # An ex-post prior: fitted to this checkpoint's codes first.
      options = {"components": request.gmm_components} if prior == "gmm" else {}
      expost.fit_for_run_once(workdir, prior, seed=train_config.seed, **options)
    results = json_safe(evaluation.evaluate(request.eval_config(workdir, prior)))
    eval_seconds[prior] = time.time() - t0
    outputs.atomic_write(cache, json.dumps({"checkpoint": identity, "request": wanted,
                                            "results": results}, indent=2, sort_keys=True))
    metrics[prior] = results
  keras.backend.clear_session()  # Free the run's graphs before the next one.
  gc.collect()
  return RunOutcome(workdir=workdir, epochs=epochs, checkpoint=checkpoint,
                    train_seconds=train_seconds, prior_params=prior_params,
                    hparams=hparams, metrics=metrics, eval_seconds=eval_seconds)


# ------------------------------------------------------------------- report helpers


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   right: Sequence[bool] = ()) -> str:
  """A GitHub Markdown table; `right[i]` right-aligns column i (numbers).

  Raises:
    ValueError: a row with another number of cells than `headers` (it would shift columns).
  """
  for row in rows:
    if len(row) != len(headers):
      raise ValueError(f"table row {list(row)} has {len(row)} cells for {len(headers)} "
                       "headers")
  align = ["---:" if i < len(right) and right[i] else "---" for i in range(len(headers))]
  lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def fmt(value, digits: int = 2) -> str:
  """A metric for a table: fixed digits, '–' when missing or not finite."""
  if value is None or isinstance(value, str):
    return "–" if value is None else value
  return f"{value:.{digits}f}" if math.isfinite(value) else "–"


def fmt_sd(sd, digits: int = 2) -> str:
  """" ± sd" to follow a mean in a table cell ("" when there is no sd: one draw)."""
  return f" ± {fmt(sd, digits)}" if sd is not None else ""


def fmt_generation_fid(row: Dict[str, Any]) -> str:
  """A row's generation FID for a table: "mean ± sd" when measured over several draws."""
  return fmt(row.get("fid_generation")) + fmt_sd(row.get("fid_generation_sd"))


def draws_clause(draws: int) -> str:
  """The report header's words for `draws` sample draws ("" for one)."""
  return f"; generation FID: mean ± sd of {draws} sample draws" if draws > 1 else ""


def field_defaults(cls) -> Dict[str, Any]:
  """A dataclass's field defaults: what a record written before a field existed holds."""
  return {f.name: f.default for f in dataclasses.fields(cls)
          if f.default is not dataclasses.MISSING}


def now() -> str:
  return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# ------------------------------------------------------------------- the capacity sweep


def parse_capacities(text: str) -> Tuple[Tuple[int, int], ...]:
  """"16x1,64x1,128x2" -> ((16, 1), (64, 1), (128, 2)): (width, depth) per model."""
  levels = []
  for item in (text or "").split(","):
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", item)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
      raise ConfigError(f"--capacities={text!r}: expected WIDTHxDEPTH items (positive "
                        f"integers) separated by commas, such as {DEFAULT_CAPACITIES}")
    levels.append((int(match.group(1)), int(match.group(2))))
  if len(levels) < 2:
    raise ConfigError(f"--capacities={text!r}: a sweep needs at least 2 capacity levels")
  if len(set(levels)) != len(levels):
    raise ConfigError(f"--capacities={text!r}: a capacity level is repeated")
  return tuple(levels)


# TrainConfig fields the sweep sets per model or holds as its own fields: not overridable
# through --train_flags.
_SWEEP_SET = ("model", "dataset", "data_dir", "workdir", "export_dir", "export_name",
              "prior_width", "prior_depth")


@dataclasses.dataclass(frozen=True)
class PriorCapacityConfig:
  """The prior-capacity sweep (flags of scripts/prior_capacity_sweep.py).

  Defaults are the CPU scale: the bundled mnist10k subset (10% = 900 training images),
  the width-32 dcgan net, m = 16, 40 epochs (360 steps: about the fewest after which
  BatchNorm's moving statistics, momentum 0.99, let inference-mode reconstructions mean
  something), a 256 x 3 WGAN-GP critic and the faster-than-authors' adversarial rates
  that FlexAE needs to move in a few hundred steps (configs/flexae_cpu.flags' values).

  Attributes:
    dataset, data_dir: the data (any --dataset of scripts/train.py).
    true_latent_dim, ambient_dim, num_examples: synthetic data (as scripts/train.py).
    train_fraction: share of the training split the models see (a seeded random subset,
      written once as an npz under <out_dir>/data); evaluation compares with the full
      data set's test split.
    capacities: "WxD,...": the prior generator of model i has D hidden layers of W units.
    epochs, steps_per_epoch, batch_size, learning_rate, seed: optimisation (per model).
    arch, width, depth, latent_dim: the auto-encoder (the same for every model).
    critic_*, generator_learning_rate, encoder_adversary_learning_rate, adversary_beta_*:
      FlexAE's other players (the same for every model).
    train_flags: further scripts/train.py flags for every run (e.g. "--reg_weight=2").
    num_samples, features, inception_weights, prd_runs, figures: evaluation (see
      scripts/evaluate.py).
    out_dir: where runs/, data/, feature_cache/ and the report files go.
  """
  dataset: str = "mnist10k"
  data_dir: Optional[str] = None
  true_latent_dim: int = 8
  ambient_dim: int = 64
  num_examples: int = 10000
  train_fraction: float = 0.1
  capacities: str = DEFAULT_CAPACITIES
  epochs: int = 40
  steps_per_epoch: Optional[int] = None
  batch_size: int = 100
  learning_rate: float = 5e-4
  seed: int = 0
  arch: str = "dcgan"
  width: int = 32
  depth: int = 4
  latent_dim: int = 16
  critic_width: int = 256
  critic_depth: int = 3
  critic_steps: int = 5
  critic_learning_rate: float = 1e-3
  generator_learning_rate: float = 5e-4
  encoder_adversary_learning_rate: float = 5e-5
  adversary_beta_1: float = 0.5
  adversary_beta_2: float = 0.9
  train_flags: str = ""
  num_samples: Optional[int] = None
  features: Optional[str] = None
  inception_weights: Optional[str] = None
  prd_runs: int = 10
  figures: bool = False
  out_dir: str = "runs/prior_capacity"

  def __post_init__(self):
    if not 0 < self.train_fraction <= 1:
      raise ConfigError(f"--train_fraction={self.train_fraction} must be in (0, 1]")
    if not self.out_dir:
      raise ConfigError("--out_dir must name a directory for the runs and the report")
    catalog.check_name("dataset", self.dataset)
    self.levels()
    self.overrides()
    self.request()
    # Every run's configuration is valid (sizes, rates, names): checked now, not after
    # the first model has trained.
    for i, (w, d) in enumerate(self.levels(), 1):
      self.train_config(i, w, d, "npz:placeholder")

  def levels(self) -> Tuple[Tuple[int, int], ...]:
    return parse_capacities(self.capacities)

  def overrides(self) -> Dict[str, Any]:
    own = set(f.name for f in dataclasses.fields(self)) & set(
        f.name for f in dataclasses.fields(TrainConfig))
    return parse_train_flags(self.train_flags, "--train_flags",
                             forbidden=sorted(own | set(_SWEEP_SET)))

  def request(self) -> EvalRequest:
    return EvalRequest(dataset=self.dataset, data_dir=self.data_dir,
                       num_samples=self.num_samples, features=self.features,
                       inception_weights=self.inception_weights,
                       cache_dir=os.path.join(os.path.abspath(self.out_dir),
                                              "feature_cache"),
                       prd_runs=self.prd_runs, figures=self.figures)

  def run_dir(self, index: int, width: int, depth: int) -> str:
    return os.path.join(os.path.abspath(self.out_dir), "runs",
                        f"model{index}_w{width}_d{depth}")

  def train_config(self, index: int, width: int, depth: int, dataset: str) -> TrainConfig:
    """Model `index`'s run: FlexAE with a width x depth prior generator on `dataset`."""
    shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)
              if f.name in {g.name for g in dataclasses.fields(self)}
              and f.name not in ("dataset", "data_dir")}
    return TrainConfig.make(**{**shared, **self.overrides(), "model": "flexae",
                          "dataset": dataset, "prior_width": width, "prior_depth": depth,
                          "workdir": self.run_dir(index, width, depth), "export_dir": "",
                          "export_name": None})

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def check_sweep_inputs(config: PriorCapacityConfig):
  """The files and directories the flags name, before anything slow is loaded."""
  catalog.check_dataset_file(config.dataset)
  if config.features == "inception":
    if not config.inception_weights or not os.path.isfile(config.inception_weights):
      raise ConfigError(f"--features=inception needs --inception_weights=PATH of an "
                        f"existing {eval_config.INCEPTION_WEIGHTS_FILE} (see README, "
                        "Evaluating), or use --features=domain")
  outputs.check_creatable_dir(config.out_dir, "--out_dir")


def _train_subset(config: PriorCapacityConfig, base: TrainConfig):
  """(npz path to write, arrays, summary): a seeded random `train_fraction` of the training
  split, plus at most 1,000 test examples (the runs' own test split only feeds
  TensorBoard's sample grids: metrics compare with the full data set's test split).

  The file name holds a hash of the arrays, so a workdir trained on another subset is
  refused on resume (its --dataset differs) instead of silently continuing.
  """
  from rae_tf import data as rae_data  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  source = rae_data.get_data_source(training.data_config(
      base.replace(dataset=config.dataset, data_dir=config.data_dir)))
  spec = source.spec
  n = int(round(config.train_fraction * spec.num_train))
  if n < config.batch_size:
    raise ConfigError(f"--train_fraction={config.train_fraction} of the {spec.num_train} "
                      f"training examples of --dataset={config.dataset} leaves {n}, fewer "
                      f"than --batch_size={config.batch_size}; raise the fraction or lower "
                      "the batch size")
  if config.num_samples is not None and config.num_samples > spec.num_test:
    raise ConfigError(f"--num_samples={config.num_samples} exceeds the {spec.num_test} test "
                      f"examples of --dataset={config.dataset}; lower it (or leave it unset)")
  labelled = source.arrays("test", limit=1)[1] is not None
  if config.features in ("domain", "inception") and not spec.is_image:
    raise ConfigError(f"--features={config.features} needs images; --dataset="
                      f"{config.dataset} holds vectors: use --features=raw")
  if config.features == "domain" and not labelled:
    raise ConfigError(f"--features=domain needs labels; --dataset={config.dataset} has "
                      "none: use --features=raw (or inception)")
  if isinstance(source, rae_data.ArrayDataSource):  # In memory: a seeded random subset.
    x_all, y_all = source.arrays("train")
    pick = np.sort(np.random.default_rng([config.seed, 7]).permutation(spec.num_train)[:n])
    x, y = x_all[pick], None if y_all is None else y_all[pick]
    how = f"a random {n} of {spec.num_train} (seed {config.seed})"
  else:  # Streamed (CelebA): the first n of the split's fixed order.
    x, y = source.arrays("train", limit=n)
    how = f"the first {n} of {spec.num_train}"
  x_test, y_test = source.arrays("test", limit=min(1000, spec.num_test))
  arrays = {"x_train": x, "x_test": x_test}
  if spec.is_image:  # Back to uint8 when the images are exactly k/255 (they usually are).
    for key in ("x_train", "x_test"):
      u8 = np.round(arrays[key] * 255.0).astype(np.uint8)
      if np.array_equal(u8.astype(np.float32) / np.float32(255.0), arrays[key]):
        arrays[key] = u8
  if y is not None and y_test is not None:
    arrays["y_train"], arrays["y_test"] = y, y_test
  digest = hashlib.sha256()
  for key in sorted(arrays):
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(arrays[key]).tobytes())
  slug = re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(config.dataset)).strip("_")
  path = os.path.join(os.path.abspath(config.out_dir), "data",
                      f"{slug}_train{config.train_fraction:g}_{digest.hexdigest()[:12]}.npz")
  summary = {"path": path, "num_train": n, "of_num_train": spec.num_train,
             "num_test_in_file": int(len(x_test)), "eval_test_split": spec.num_test,
             "selection": how, "shape": list(spec.shape)}
  return path, arrays, summary


def _write_npz(path: str, arrays: Dict[str, np.ndarray]):
  """np.savez through a temporary sibling and a rename (never a half-written file)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  outputs.atomic_write(path, buffer.getvalue())


def describe_shape(fids: Sequence[Optional[float]]) -> str:
  """One sentence on how generation FID moves with the model index (lower is better)."""
  values = [f for f in fids if f is not None and not isinstance(f, str)]
  if len(values) < 2 or len(values) != len(fids):
    return "incomplete: not every model has a finite generation FID"
  best = int(np.argmin(values))
  down = all(a >= b for a, b in zip(values[:best], values[1:best + 1]))
  up = all(a <= b for a, b in zip(values[best:], values[best + 1:]))
  n = len(values)
  if 0 < best < n - 1:
    mono = ("monotonically on both sides" if down and up else
            "but not monotonically (" + ", ".join(
                side for side, ok in (("before", down), ("after", up)) if not ok)
            + " the minimum the curve also moves the other way)")
    return (f"expected bias-variance shape: generation FID improves with capacity up to "
            f"model {best + 1} ({values[best]:.2f}) and worsens after it, {mono}")
  if best == n - 1:
    return (f"no bias-variance turn: the largest prior (model {n}) has the best generation "
            f"FID ({values[best]:.2f}); "
            + ("FID falls monotonically with capacity" if down
               else "FID is not monotone in capacity"))
  return (f"no bias-variance turn: the smallest prior (model 1) has the best generation FID "
          f"({values[best]:.2f}); "
          + ("FID rises monotonically with capacity" if up
             else "FID is not monotone in capacity"))


def _sweep_markdown(report: Dict[str, Any]) -> str:
  cfg, sub = report["config"], report["train_subset"]
  rows = []
  for r in report["models"]:
    rows.append([r["index"], f"{r['prior_width']} × {r['prior_depth']}",
                 f"{r['prior_params']:,}", r["epochs"], fmt(r["fid_generation"]),
                 fmt(r["fid_reconstruction"]), fmt(r["improved_precision"], 3),
                 fmt(r["improved_recall"], 3)])
  label = report["models"][0]["fid_label"] if report["models"] else "FID"
  lines = [
      "# FlexAE prior capacity (bias-variance, the seed's Table 5)", "",
      f"Date: {report['date']}  ", f"Command: `{report['command']}`  " if report["command"]
      else "Command: (library call)  ",
      f"Data: `{cfg['dataset']}`, training on {sub['selection']} training examples "
      f"(--train_fraction={cfg['train_fraction']:g}); metrics against "
      f"{report['num_samples']} test examples of the full data set, {label}.  ",
      f"Auto-encoder: {cfg['arch']} width {cfg['width']}, m = {cfg['latent_dim']}, batch "
      f"{cfg['batch_size']}, {cfg['epochs']} epochs, lr {cfg['learning_rate']:g}, seed "
      f"{cfg['seed']}; critic {cfg['critic_width']} × {cfg['critic_depth']}, "
      f"{cfg['critic_steps']} steps, lr {cfg['critic_learning_rate']:g}; prior G lr "
      f"{cfg['generator_learning_rate']:g}; encoder-adversarial lr "
      f"{cfg['encoder_adversary_learning_rate']:g}; Adam betas ({cfg['adversary_beta_1']:g}, "
      f"{cfg['adversary_beta_2']:g})" + (f"; also `{cfg['train_flags']}`"
                                         if cfg["train_flags"] else "") + ".  ",
      "Prior generator G of model i: noise N(0, I_m) → depth × Dense(width, ReLU) → "
      "Dense(m).", "",
      markdown_table(["model", "G width × depth", "G params", "epochs", "generation FID",
                      "reconstruction FID", "precision", "recall"], rows,
                     right=[True, False, True, True, True, True, True, True]),
      "", f"Shape: {report['shape']}." if report["complete"]
      else f"Incomplete: {len(report['models'])} of {len(report['levels'])} models done.",
      ""]
  return "\n".join(lines)


def _sweep_png(report: Dict[str, Any]) -> bytes:
  fig = plots.new_figure(6.4, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  models = report["models"]
  index = [r["index"] for r in models]
  for key, label, style in (("fid_generation", "generation", "o-"),
                            ("fid_reconstruction", "reconstruction", "s--")):
    values = [r[key] if isinstance(r[key], float) else np.nan for r in models]
    ax.plot(index, values, style, label=f"{label} FID")
  ax.set_xticks([i for i, _ in enumerate(report["levels"], 1)])
  ax.set_xticklabels([f"{i}\n{w}×{d}" for i, (w, d) in enumerate(report["levels"], 1)])
  ax.set_xlim(0.5, len(report["levels"]) + 0.5)
  ax.set_xlabel("model (prior generator width × depth)")
  ax.set_ylabel(models[0]["fid_label"] if models else "FID")
  ax.set_title(f"FlexAE prior capacity, {report['config']['dataset']}, "
               f"{report['train_subset']['num_train']} training examples")
  ax.grid(alpha=0.3)
  ax.legend()
  return plots.png_bytes(fig)


def _write_sweep_report(config: PriorCapacityConfig, report: Dict[str, Any]):
  out = os.path.abspath(config.out_dir)
  outputs.atomic_write(os.path.join(out, SWEEP_JSON),
                       json.dumps(json_safe(report), indent=2, sort_keys=True))
  outputs.atomic_write(os.path.join(out, SWEEP_MD), _sweep_markdown(report))
  outputs.atomic_write(os.path.join(out, SWEEP_PNG), _sweep_png(report))


def run_prior_capacity_sweep(config: PriorCapacityConfig, command: Optional[str] = None,
                             verbose: Optional[int] = None,
                             say: Callable[[str], None] = _say) -> Dict[str, Any]:
  """Trains FlexAE once per prior capacity on a training subset and compares the FIDs.

  Every model trains in its own workdir under <out_dir>/runs (resumed when the sweep is
  run again, e.g. after a kill), on the same subset, seed and settings except the prior
  generator's width and depth; each is evaluated (generation and reconstruction FID,
  improved precision/recall) against the full data set's test split. After each model
  the report files are rewritten (marked incomplete until the last one):
  <out_dir>/prior_capacity.json, prior_capacity.md (a Markdown table) and
  prior_capacity.png (FIDs against the model index).

  Args:
    config: the sweep.
    command: the command line, recorded in the report.
    verbose: Keras progress output of training (training.train's).
    say: where progress lines go.

  Returns:
    The report (also in prior_capacity.json).

  Raises:
    ConfigError: bad input, before anything is written (also a workdir under --out_dir
      trained with other settings).
    TrainingDiverged: a run diverged (the runs before it are kept and reported).
  """
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  check_sweep_inputs(config)
  levels = config.levels()
  base = config.train_config(1, *levels[0], dataset=config.dataset)
  path, arrays, subset = _train_subset(config, base)
  configs = [config.train_config(i, w, d, f"npz:{path}")
             for i, (w, d) in enumerate(levels, 1)]
  for tc in configs:  # A resumed sweep must match: refuse before any work.
    try:
      training.check_workdir(tc)
    except ConfigError as e:
      raise ConfigError(f"--out_dir={config.out_dir}: {e} (every run of the sweep lives "
                        "under --out_dir: pass the flags it was started with to resume, or "
                        "use a new --out_dir)") from None
  request = config.request()
  lock = outputs.DirectoryLock(os.path.abspath(config.out_dir), "--out_dir")
  with lock:
    if not os.path.exists(path):
      _write_npz(path, arrays)
    del arrays
    say(f"prior-capacity sweep: {len(levels)} FlexAE models on {subset['selection']} "
        f"training examples of {config.dataset} -> {path}")
    for i, (w, d) in enumerate(levels, 1):
      say(f"  model {i}: prior generator {d} x Dense({w}) -> Dense({config.latent_dim})")
    report = {"experiment": "prior_capacity", "date": now(), "command": command,
              "config": config.to_dict(), "levels": [list(l) for l in levels],
              "train_subset": subset, "models": [], "complete": False, "shape": None,
              "num_samples": None}
    start = time.time()
    for i, (tc, (w, d)) in enumerate(zip(configs, levels), 1):
      say(f"model {i}/{len(levels)} (prior {w} x {d}): training {tc.epochs} epochs in "
          f"{tc.workdir} ...")
      outcome = train_and_evaluate(tc, request, ("trained",), verbose=verbose)
      m = outcome.metrics["trained"]
      row = {"index": i, "prior_width": w, "prior_depth": d,
             "prior_params": outcome.prior_params, "epochs": outcome.epochs,
             "workdir": outcome.workdir, "checkpoint": outcome.checkpoint,
             "train_seconds": round(outcome.train_seconds, 1),
             "eval_seconds": round(outcome.eval_seconds["trained"], 1)}
      for key in ("fid_generation", "fid_reconstruction", "improved_precision",
                  "improved_recall", "prd_f8_recall", "prd_f1_8_precision", "active_dims",
                  "nac", "fid_label", "features", "num_samples"):
        row[key] = m.get(key)
      report["models"].append(row)
      report["num_samples"] = m.get("num_samples")
      report["complete"] = i == len(levels)
      if report["complete"]:
        report["shape"] = describe_shape([r["fid_generation"] for r in report["models"]])
      elapsed = time.time() - start
      say(f"model {i}/{len(levels)} (prior {w} x {d}, {outcome.prior_params:,} params): "
          f"generation FID {fmt(row['fid_generation'])}, reconstruction FID "
          f"{fmt(row['fid_reconstruction'])}, precision/recall "
          f"{fmt(row['improved_precision'], 3)}/{fmt(row['improved_recall'], 3)} "
          f"[{elapsed / 60:.1f} min elapsed"
          + (f", ~{elapsed / i * (len(levels) - i) / 60:.1f} min left]"
             if i < len(levels) else "]"))
      _write_sweep_report(config, report)
  say(f"shape: {report['shape']}")
  say(f"wrote {os.path.join(config.out_dir, SWEEP_JSON)}, {SWEEP_MD} and {SWEEP_PNG}")
  return report
