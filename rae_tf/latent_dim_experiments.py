"""Issue 8's latent-dimension experiments: WAE against MaskAAE as the latent size m grows.

* `run_latent_dim_sweep(LatentDimSweepConfig)`: trains the WAE and MaskAAE for every m of
  `latent_dims`, evaluates each (generation / reconstruction FID, m_A, NAC) and writes
  `<out>.json`, `<out>.md`, `<out>_fid.png` (generation FID against m, the seed's Fig. 2)
  and `<out>_active_dims.png` (m_A against m with the identity line and, for synthetic
  data, the true dimension n; the seed's Fig. 5).
* `run_mask_behaviour(MaskBehaviourConfig)`: the same runs for a few m, plus MaskAAE's
  mask over training (`<out>_mask_m<m>.png`, the seed's Fig. 6) and the latent covariance
  of the test codes of both models (`<out>_cov_<model>_m<m>.png`, the seed's Fig. 7).
* `run_nac_table(NacTableConfig)`: NAC and m_A of both models for every m (the seed's
  Table 2): `<out>.json` and `<out>.md`.

Every (model, m) run trains in `<work_root>/runs/<model>_m<m>_<hash>`, the hash naming
its TrainConfig (the fields that differ from TrainConfig's defaults), so re-running a
command resumes (finished runs and their evaluations are reused, see
experiments.train_and_evaluate) and the three experiments share runs when their settings
agree. The hash names the flags, not the code: after a model's registered defaults change
(rae_tf.models.zoo), use a new work root, or the old runs are reused. Each report row
records the run's resolved hparams. MaskAAE runs record the mask at every epoch end in
`<run>/mask_history.json` (rae_tf.callbacks.MaskHistoryRecorder, part of every run).

Importing this module does not import TensorFlow (the scripts check their flags first).
"""
import dataclasses
import hashlib
import json
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rae_tf import catalog
from rae_tf import experiments
from rae_tf import outputs
from rae_tf.viz import plots
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

WAE_MODELS = ("wae_mmd", "wae_gan")
MASK_MODEL = "maskaae"
MASK_THRESHOLD = 0.1  # mu_i >= 0.1: an active dimension (rae_tf.metrics.latent's rule).
SYNTHETIC_DATASETS = ("synthetic", "synthetic_image")  # Known true dimension n.
# TrainConfig fields the experiments set themselves or hold as their own shared fields:
# --wae_flags / --maskaae_flags may not change them (they make the comparison).
_FIXED = ("model", "dataset", "data_dir", "workdir", "export_dir", "export_name",
          "latent_dim", "true_latent_dim", "ambient_dim", "num_examples", "epochs",
          "steps_per_epoch", "batch_size", "seed", "arch", "width", "depth", "strategy",
          "cpu_devices")


def _say(msg: str):
  print(f"[rae_tf] {msg}", flush=True)


def parse_latent_dims(text: str, flag: str = "--latent_dims") -> Tuple[int, ...]:
  """"2,4,8" -> (2, 4, 8): distinct positive latent sizes, in the order given.

  Args:
    text: comma-separated positive integers.
    flag: the flag that carried them, for messages.

  Raises:
    ConfigError: not integers, not positive, repeated or empty.
  """
  items = [t.strip() for t in (text or "").split(",")]
  if not all(re.fullmatch(r"\d+", t) for t in items) or any(int(t) < 1 for t in items):
    raise ConfigError(f"{flag}={text!r}: expected positive integers separated by commas, "
                      "such as 2,4,8,16")
  dims = tuple(int(t) for t in items)
  if len(set(dims)) != len(dims):
    raise ConfigError(f"{flag}={text!r}: a latent size is repeated")
  return dims


# ------------------------------------------------------------------- configuration

# Help of the flags the scripts define from the config dataclasses (cli.define_flags).
FLAG_HELP = {
    "dataset": "Data: synthetic (vectors on a known n-dimensional manifold), "
               "synthetic_image, mnist10k (bundled), mnist, fashion_mnist, cifar10, "
               "celeb_a (tensorflow-datasets) or npz:PATH.",
    "data_dir": "tensorflow-datasets data directory.",
    "true_latent_dim": "synthetic data: the true dimension n (drawn in the figures).",
    "ambient_dim": "synthetic data: dimension d of the vectors.",
    "num_examples": "synthetic data: training examples (the test split has "
                    "max(1000, N/10)).",
    "latent_dims": "Latent sizes m, comma-separated; every model trains once per m.",
    "wae_model": "The WAE baseline: wae_mmd (default: deterministic, no critic, stable "
                 "in few steps) or wae_gan (a latent GAN critic, the adversarial analogue "
                 "of MaskAAE).",
    "epochs": "Epochs of every run (a run with other settings trains in its own workdir).",
    "steps_per_epoch": "Steps per epoch (default: one pass over the training split).",
    "batch_size": "Batch size of every run.",
    "learning_rate": "Auto-encoder learning rate of every run (MaskAAE's mask trains at "
                     "5x this unless --maskaae_flags sets --mask_learning_rate).",
    "seed": "Seed of every run (weights, data order, noise).",
    "arch": "Auto-encoder network: mlp (vectors or images), dcgan or infogan (images).",
    "width": "Auto-encoder width (mlp: units per layer).",
    "depth": "Hidden layers of the mlp auto-encoder.",
    "wae_flags": "Further scripts/train.py flags for the WAE runs only, e.g. "
                 "\"--reg_weight=100\" (not the shared data/net/epochs/seed/m flags).",
    "maskaae_flags": "Further scripts/train.py flags for the MaskAAE runs only, e.g. "
                     "\"--mask_learning_rate=5e-3 --mask_poly_period=600\" (not the "
                     "shared data/net/epochs/seed/m flags).",
    "num_samples": "Samples per metric (default: min(10000, the test split's size)).",
    "features": "FID features: raw, domain or inception (default: domain for labelled "
                "images, raw otherwise: synthetic vectors get raw-data FID).",
    "inception_weights": "Keras InceptionV3 notop weights file (--features=inception).",
    "prd_runs": "PRD k-means runs averaged.",
    "draws": "Independent sample draws averaged in each generation FID (the sweep's "
             "report gives mean +- sd). One draw's FID moves by about +-10 % with 1,000 "
             "samples: enough to swap neighbouring m.",
    "covariance_samples": "Test examples encoded for each covariance heat map.",
    "work_root": "Runs (<work_root>/runs/<model>_m<m>_<hash>, resumable; shared by the "
                 "three experiments when their settings agree) and the feature cache.",
    "out": "Report path without extension (OUT.json, OUT.md and OUT_*.png).",
}


@dataclasses.dataclass(frozen=True)
class LatentDimConfig:
  """What the three experiments share (their scripts' common flags).

  CPU-scale defaults: synthetic vectors (10,000 in R^64 on an 8-dimensional manifold), MLP
  auto-encoders of 3 x 256 units, 10 epochs of 100 steps, batch 100.

  Attributes:
    dataset, data_dir: the data (any --dataset of scripts/train.py).
    true_latent_dim, ambient_dim, num_examples: synthetic data (as scripts/train.py).
    latent_dims: the latent sizes m, comma-separated.
    wae_model: the WAE baseline: wae_mmd (default) or wae_gan.
    epochs, steps_per_epoch, batch_size, learning_rate, seed: optimisation (every run).
    arch, width, depth: the auto-encoder (every run).
    wae_flags, maskaae_flags: further scripts/train.py flags for the WAE or the MaskAAE
      runs only (not the ones above, which make the comparison).
    num_samples, features, inception_weights, prd_runs, draws: evaluation
      (scripts/evaluate.py).
    work_root: the runs (<work_root>/runs/...) and the feature cache.
    out: report path without extension.
  """
  dataset: str = "synthetic"
  data_dir: Optional[str] = None
  true_latent_dim: int = 8
  ambient_dim: int = 64
  num_examples: int = 10000
  latent_dims: str = "2,4,8,16,32,64,128"
  wae_model: str = "wae_mmd"
  epochs: int = 10
  steps_per_epoch: Optional[int] = None
  batch_size: int = 100
  learning_rate: float = 1e-3
  seed: int = 0
  arch: str = "mlp"
  width: int = 256
  depth: int = 3
  wae_flags: str = ""
  maskaae_flags: str = ""
  num_samples: Optional[int] = None
  features: Optional[str] = None
  inception_weights: Optional[str] = None
  prd_runs: int = 10
  draws: int = 5
  work_root: str = "runs/latent_dim"
  out: str = "runs/latent_dim/report"

  def __post_init__(self):
    if self.wae_model not in WAE_MODELS:
      raise ConfigError(f"--wae_model={self.wae_model!r}: choose one of "
                        f"{', '.join(WAE_MODELS)}")
    if not self.work_root or not self.out:
      raise ConfigError("--work_root and --out must name paths")
    if self.out.endswith(os.sep) or os.path.isdir(self.out):
      raise ConfigError(f"--out={self.out} is a directory; pass a path prefix without "
                        "extension, e.g. runs/latent_dim/report")
    catalog.check_name("dataset", self.dataset)
    self.dims()
    self.request()
    for model in self.models():  # Every run's configuration is valid, before any work.
      for m in self.dims():
        self.train_config(model, m)

  def dims(self) -> Tuple[int, ...]:
    return parse_latent_dims(self.latent_dims)

  def models(self) -> Tuple[str, str]:
    return (self.wae_model, MASK_MODEL)

  def overrides(self, model: str) -> Dict[str, Any]:
    if model == MASK_MODEL:
      return experiments.parse_train_flags(self.maskaae_flags, "--maskaae_flags", _FIXED)
    return experiments.parse_train_flags(self.wae_flags, "--wae_flags", _FIXED)

  def request(self) -> experiments.EvalRequest:
    return experiments.EvalRequest(
        num_samples=self.num_samples, features=self.features,
        inception_weights=self.inception_weights,
        cache_dir=os.path.join(os.path.abspath(self.work_root), "feature_cache"),
        prd_runs=self.prd_runs, draws=self.draws)

  def train_config(self, model: str, latent_dim: int) -> TrainConfig:
    """The run of `model` at latent size `latent_dim`: the model's registered defaults,
    the shared settings, then --wae_flags / --maskaae_flags."""
    shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)
              if f.name in {g.name for g in dataclasses.fields(LatentDimConfig)}}
    config = TrainConfig.make(**{**shared, **self.overrides(model), "model": model,
                            "latent_dim": latent_dim, "export_dir": "",
                            "export_name": None, "workdir": "placeholder"})
    # The fields that differ from TrainConfig's defaults name the run (a field added to
    # TrainConfig later, with its default, does not move existing runs).
    defaults = TrainConfig().to_dict()
    identity = {k: v for k, v in config.to_dict().items()
                if k != "workdir" and v != defaults.get(k)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return config.replace(workdir=os.path.join(
        os.path.abspath(self.work_root), "runs",
        f"{model}_m{latent_dim}_{key.hexdigest()[:10]}"))

  def true_dim(self) -> Optional[int]:
    """The data's known dimension n (synthetic data), else None."""
    return self.true_latent_dim if self.dataset in SYNTHETIC_DATASETS else None

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LatentDimSweepConfig(LatentDimConfig):
  """The latent-size sweep (Figs. 2 and 5): see LatentDimConfig."""
  out: str = "runs/latent_dim/sweep"


@dataclasses.dataclass(frozen=True)
class MaskBehaviourConfig(LatentDimConfig):
  """The mask over training and the latent covariances (Figs. 6 and 7).

  Attributes (beyond LatentDimConfig):
    covariance_samples: test examples encoded for the covariance heat maps.
  """
  latent_dims: str = "16,32,64"
  covariance_samples: int = 1000
  out: str = "runs/latent_dim/mask"

  def __post_init__(self):
    super().__post_init__()
    if self.covariance_samples < 2:
      raise ConfigError(f"--covariance_samples={self.covariance_samples} must be >= 2")


@dataclasses.dataclass(frozen=True)
class NacTableConfig(LatentDimConfig):
  """NAC and m_A of both models per m (Table 2): see LatentDimConfig."""
  latent_dims: str = "16,32,64,128,256"
  out: str = "runs/latent_dim/nac"


def check_inputs(config: LatentDimConfig):
  """The files and directories the flags name, before anything slow is loaded."""
  catalog.check_dataset_file(config.dataset)
  if config.features == "inception" and (not config.inception_weights or
                                         not os.path.isfile(config.inception_weights)):
    raise ConfigError("--features=inception needs --inception_weights=PATH of an existing "
                      "weights file (see README, Evaluating), or use --features=raw/domain")
  outputs.check_creatable_dir(config.work_root, "--work_root")
  outputs.check_creatable_dir(os.path.dirname(os.path.abspath(config.out)), "--out")


def _check_data(config: LatentDimConfig):
  """The data set against the evaluation and batch flags (loads the data set)."""
  from rae_tf import data as rae_data  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  first = config.train_config(config.wae_model, config.dims()[0])
  source = rae_data.get_data_source(training.data_config(first))
  spec = source.spec
  if spec.num_train < config.batch_size:
    raise ConfigError(f"--batch_size={config.batch_size} exceeds the {spec.num_train} "
                      f"training examples of --dataset={config.dataset}")
  if config.num_samples is not None and config.num_samples > spec.num_test:
    raise ConfigError(f"--num_samples={config.num_samples} exceeds the {spec.num_test} test "
                      f"examples of --dataset={config.dataset}; lower it (or leave it unset)")
  if config.features in ("domain", "inception") and not spec.is_image:
    raise ConfigError(f"--features={config.features} needs images; --dataset="
                      f"{config.dataset} holds vectors: use --features=raw")
  if config.features == "domain" and source.arrays("test", limit=1)[1] is None:
    raise ConfigError(f"--features=domain needs labels; --dataset={config.dataset} has "
                      "none: use --features=raw (or inception)")
  for model in config.models():
    for m in config.dims():
      try:
        training.check_workdir(config.train_config(model, m))
      except ConfigError as e:
        raise ConfigError(f"--work_root={config.work_root}: {e}") from None


def script_main(config_cls, run: Callable[..., Dict[str, Any]], argv, flag_values):
  """The body of the three scripts: flags -> config (no TensorFlow yet) -> input checks
  -> quiet TensorFlow import -> `run(config, command=...)`, with cli.run_or_exit's exit
  statuses (bad input: one `error:` line, status 2, nothing written).

  Args:
    config_cls: the experiment's config dataclass.
    run: run_latent_dim_sweep, run_mask_behaviour or run_nac_table.
    argv: absl's remaining argv.
    flag_values: the script's parsed FlagValues (its flags from cli.define_flags).
  """
  import shlex  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from rae_tf import cli  # pylint: disable=g-import-not-at-top

  def work():
    config = cli.config_from_flags(config_cls, flag_values)
    check_inputs(config)
    cli.import_quietly("rae_tf.training")
    run(config, command=" ".join(shlex.quote(a) for a in ["python"] + sys.argv))

  cli.run_or_exit(work, argv, interrupted="interrupted; run the same command again to "
                  "resume (finished runs and evaluations are reused)")


# ------------------------------------------------------------------- mask history


def mask_history(workdir: str) -> Tuple[List[int], np.ndarray]:
  """(epochs, [T, m] mask values) recorded in a MaskAAE run, in epoch order.

  Args:
    workdir: the run directory.

  Returns:
    The recorded epochs (1-based) and their mask values; ([], empty) when none were.
  """
  from rae_tf import callbacks  # pylint: disable=g-import-not-at-top
  return callbacks.read_mask_history(os.path.join(workdir, callbacks.MASK_HISTORY_FILE))


# ------------------------------------------------------------------- the runs


_METRIC_KEYS = ("fid_generation", "fid_generation_sd", "fid_reconstruction",
                "improved_precision", "improved_recall", "active_dims", "active_dims_rule",
                "nac", "latent_dim", "fid_label", "features", "num_samples")


def _run_all(config: LatentDimConfig, name: str, verbose: Optional[int],
             say: Callable[[str], None],
             after_each: Callable[[List[Dict[str, Any]]], None]) -> List[Dict[str, Any]]:
  """Trains and evaluates every (model, m) of `config`; one row per run.

  `after_each(rows)` runs after every run (the callers rewrite their report files).
  """
  plan = [(model, m) for m in config.dims() for model in config.models()]
  request = config.request()
  rows: List[Dict[str, Any]] = []
  start = time.time()
  for i, (model, m) in enumerate(plan, 1):
    tc = config.train_config(model, m)
    say(f"{name} {i}/{len(plan)}: {model}, m = {m}: {tc.epochs} epochs in {tc.workdir} ...")
    outcome = experiments.train_and_evaluate(tc, request, ("trained",), verbose=verbose)
    metrics = outcome.metrics["trained"]
    row = {"model": model, "m": m, "epochs": outcome.epochs, "workdir": outcome.workdir,
           "checkpoint": outcome.checkpoint,
           "train_seconds": round(outcome.train_seconds, 1),
           "eval_seconds": round(outcome.eval_seconds["trained"], 1),
           "hparams": outcome.hparams,  # The model's defaults as resolved for this run.
           **{k: metrics.get(k) for k in _METRIC_KEYS}}
    if model == MASK_MODEL:
      epochs, history = mask_history(outcome.workdir)
      row["mask_epochs_recorded"] = len(epochs)
      row["final_mask"] = history[-1].tolist() if len(epochs) else None
    rows.append(row)
    elapsed = time.time() - start
    say(f"{name} {i}/{len(plan)}: {model}, m = {m}: generation FID "
        f"{experiments.fmt(row['fid_generation'])}, m_A {row['active_dims']} / {m}, NAC "
        f"{experiments.fmt(row['nac'], 3)} [{elapsed / 60:.1f} min elapsed"
        + (f", ~{elapsed / i * (len(plan) - i) / 60:.1f} min left]" if i < len(plan)
           else "]"))
    after_each(rows)
  return rows


def _prepare(config: LatentDimConfig):
  check_inputs(config)
  _check_data(config)
  os.makedirs(os.path.dirname(os.path.abspath(config.out)) or ".", exist_ok=True)


def _header(title: str, report: Dict[str, Any]) -> List[str]:
  cfg = report["config"]
  data = f"`{cfg['dataset']}`"
  if cfg["dataset"] == "synthetic":
    data += (f" ({cfg['num_examples']} vectors in R^{cfg['ambient_dim']} on a "
             f"manifold of dimension n = {cfg['true_latent_dim']})")
  extra = "".join(f"; {flag} `{cfg[key]}`" for key, flag in (
      ("wae_flags", "WAE flags"), ("maskaae_flags", "MaskAAE flags")) if cfg[key])
  return [
      f"# {title}", "",
      f"Date: {report['date']}  ",
      f"Command: `{report['command']}`  " if report["command"]
      else "Command: (library call)  ",
      f"Data: {data}; metrics on {report['num_samples']} test examples, "
      f"{report['fid_label']}{experiments.draws_clause(cfg.get('draws', 1))}.  ",
      f"Models: {cfg['wae_model']} and maskaae with their registered defaults{extra}; "
      f"{cfg['arch']} width {cfg['width']} depth {cfg['depth']}, batch {cfg['batch_size']}, "
      f"{cfg['epochs']} epochs, lr {cfg['learning_rate']:g}, seed {cfg['seed']}.  ",
      f"m_A: MaskAAE #{{mu_i >= {MASK_THRESHOLD}}}; {cfg['wae_model']} #{{code variance > "
      "1e-2 x the largest}. NAC: mean |off-diagonal correlation| of the test codes over "
      "the active dimensions.", ""]


def _row_table(rows: Sequence[Dict[str, Any]]) -> str:
  body = [[r["model"], r["m"], experiments.fmt_generation_fid(r),
           experiments.fmt(r["fid_reconstruction"]), r["active_dims"],
           experiments.fmt(r["nac"], 3), r["epochs"]] for r in rows]
  return experiments.markdown_table(
      ["model", "m", "generation FID", "reconstruction FID", "m_A", "NAC", "epochs"], body,
      right=[False, True, True, True, True, True, True])


def _new_report(experiment: str, config: LatentDimConfig,
                command: Optional[str]) -> Dict[str, Any]:
  return {"experiment": experiment, "date": experiments.now(), "command": command,
          "config": config.to_dict(), "latent_dims": list(config.dims()),
          "models": list(config.models()), "true_latent_dim": config.true_dim(),
          "rows": [], "complete": False, "num_samples": None, "fid_label": None}


def _update(report: Dict[str, Any], rows: List[Dict[str, Any]], total: int):
  report["rows"] = rows
  report["complete"] = len(rows) == total
  if rows:
    report["num_samples"], report["fid_label"] = rows[-1]["num_samples"], rows[-1]["fid_label"]


def _write_json(path: str, report: Dict[str, Any]):
  outputs.atomic_write(path, json.dumps(experiments.json_safe(report), indent=2,
                                        sort_keys=True))




def _series(rows, model, key):
  picked = sorted((r["m"], r.get(key)) for r in rows if r["model"] == model)
  return ([m for m, _ in picked],
          [v if isinstance(v, (int, float)) else np.nan for _, v in picked])  # None: nan.


# ------------------------------------------------------------------- 1. the sweep


def _fid_png(report: Dict[str, Any]) -> bytes:
  fig = plots.new_figure()
  ax = fig.add_subplot(1, 1, 1)
  for model, style in zip(report["models"], ("s--", "o-")):
    ms, fids = _series(report["rows"], model, "fid_generation")
    _, sds = _series(report["rows"], model, "fid_generation_sd")  # nan: one draw.
    ax.errorbar(ms, fids, yerr=np.nan_to_num(sds), fmt=style, capsize=3, label=model)
  ax.set_xscale("log", base=2)
  ax.set_xticks(report["latent_dims"])
  ax.set_xticklabels([str(m) for m in report["latent_dims"]])
  if report["true_latent_dim"]:
    ax.axvline(report["true_latent_dim"], color="gray", linestyle=":",
               label=f"true n = {report['true_latent_dim']}")
  ax.set_xlabel("latent dimension m")
  ax.set_ylabel(f"generation {report['fid_label'] or 'FID'}")
  ax.set_title(f"generation FID against m, {report['config']['dataset']}")
  ax.grid(alpha=0.3)
  ax.legend()
  return plots.png_bytes(fig)


def _active_dims_png(report: Dict[str, Any]) -> bytes:
  fig = plots.new_figure()
  ax = fig.add_subplot(1, 1, 1)
  dims = report["latent_dims"]
  ax.plot(sorted(dims), sorted(dims), color="gray", linewidth=1, label="m_A = m")
  for model, style in zip(report["models"], ("s--", "o-")):
    ms, active = _series(report["rows"], model, "active_dims")
    rule = "mask" if model == MASK_MODEL else "variance"
    ax.plot(ms, active, style, label=f"{model} ({rule} rule)")
  if report["true_latent_dim"]:
    ax.axhline(report["true_latent_dim"], color="tab:red", linestyle=":",
               label=f"true n = {report['true_latent_dim']}")
  ax.set_xscale("log", base=2)
  ax.set_yscale("symlog", base=2, linthresh=1)  # symlog: m_A = 0 stays on the plot.
  ax.set_xticks(dims)
  ax.set_xticklabels([str(m) for m in dims])
  yticks = sorted(set(dims) | ({report["true_latent_dim"]} if report["true_latent_dim"]
                               else set()))
  ax.set_yticks(yticks)
  ax.set_yticklabels([str(v) for v in yticks])
  ax.set_xlabel("latent dimension m")
  ax.set_ylabel("active dimensions m_A")
  ax.set_title(f"active dimensions against m, {report['config']['dataset']}")
  ax.grid(alpha=0.3)
  ax.legend()
  return plots.png_bytes(fig)


def _sweep_markdown(report: Dict[str, Any], out: str) -> str:
  lines = _header("Latent dimension: WAE vs MaskAAE (the seed's Figs. 2 and 5)", report)
  lines += [_row_table(report["rows"]), ""]
  n = report["true_latent_dim"]
  mask_rows = [r for r in report["rows"] if r["model"] == MASK_MODEL]
  if n and mask_rows:
    hits = [r["m"] for r in mask_rows if r["active_dims"] == min(n, r["m"])]
    lines.append(f"True dimension n = {n}. MaskAAE's m_A equals min(n, m) at m in "
                 f"{hits or 'none'} of {[r['m'] for r in mask_rows]}.")
  lines += [f"Figures: `{os.path.basename(out)}_fid.png` (generation FID against m), "
            f"`{os.path.basename(out)}_active_dims.png` (m_A against m).",
            "" if report["complete"] else
            f"Incomplete: {len(report['rows'])} of "
            f"{len(report['latent_dims']) * 2} runs done.", ""]
  return "\n".join(lines)


def run_latent_dim_sweep(config: LatentDimSweepConfig, command: Optional[str] = None,
                         verbose: Optional[int] = None,
                         say: Callable[[str], None] = _say) -> Dict[str, Any]:
  """Trains and evaluates the WAE and MaskAAE at every latent size m (Figs. 2 and 5).

  After each run, rewrites <out>.json, <out>.md (one row per (model, m): generation and
  reconstruction FID, m_A, NAC), <out>_fid.png (generation FID against m) and
  <out>_active_dims.png (m_A against m, the identity line and the true n of synthetic
  data); marked incomplete until the last run.

  Args:
    config: the sweep.
    command: the command line, recorded in the report.
    verbose: Keras progress output of training (training.train's).
    say: where progress lines go.

  Returns:
    The report (also in <out>.json).

  Raises:
    ConfigError: bad input, before anything is written.
    TrainingDiverged: a run diverged (the runs before it are kept and reported).
  """
  _prepare(config)
  report = _new_report("latent_dim_sweep", config, command)
  total = len(config.dims()) * 2

  def write(rows):
    _update(report, rows, total)
    _write_json(config.out + ".json", report)
    outputs.atomic_write(config.out + ".md", _sweep_markdown(report, config.out))
    outputs.atomic_write(config.out + "_fid.png", _fid_png(report))
    outputs.atomic_write(config.out + "_active_dims.png", _active_dims_png(report))

  _run_all(config, "latent-dim sweep", verbose, say, write)
  say(f"wrote {config.out}.json, .md, _fid.png and _active_dims.png")
  return report


# ------------------------------------------------------------------- 2. mask behaviour


def _test_codes(workdir: str, num: int, batch_size: int = 500) -> np.ndarray:
  """[N, m] codes E(x) (MaskAAE: the masked codes mu * z_e) of the run's test examples."""
  import keras  # pylint: disable=g-import-not-at-top
  from rae_tf import evaluation  # pylint: disable=g-import-not-at-top
  model, _, _, source = evaluation.load_run(workdir)
  x_test, _ = source.arrays("test", limit=min(num, source.spec.num_test))
  codes = evaluation.batched(lambda x: model.encode(x).numpy(), x_test, batch_size)
  del model
  keras.backend.clear_session()
  return np.asarray(codes, np.float64)


def _mask_markdown(report: Dict[str, Any], out: str) -> str:
  lines = _header("MaskAAE's mask over training and the latent covariance (the seed's "
                  "Figs. 6 and 7)", report)
  lines += [_row_table(report["rows"]), ""]
  body = []
  for fig in report["figures"]:
    body.append([fig["m"], fig["mask_epochs"], fig["mask_active_first"],
                 fig["mask_active_last"], f"`{fig['mask_png'] or '–'}`",
                 " ".join(f"`{p}`" for p in fig["covariance_png"].values())])
  lines += ["Mask over training (one column per epoch end, Fig. 6) and covariance of the "
            "test codes (Fig. 7; MaskAAE: the masked codes):", "",
            experiments.markdown_table(
                ["m", "epochs recorded", "m_A after epoch 1", "m_A at the end", "mask PNG",
                 "covariance PNGs"], body, right=[True, True, True, True, False, False]),
            "", "" if report["complete"] else
            f"Incomplete: {len(report['rows'])} of {len(report['latent_dims']) * 2} runs "
            "done.", ""]
  return "\n".join(lines)


def run_mask_behaviour(config: MaskBehaviourConfig, command: Optional[str] = None,
                       verbose: Optional[int] = None,
                       say: Callable[[str], None] = _say) -> Dict[str, Any]:
  """MaskAAE's mask over training (Fig. 6) and WAE vs MaskAAE latent covariances (Fig. 7).

  Trains (or reuses) the WAE and MaskAAE at every m; MaskAAE runs record their mask at
  each epoch end. Writes, per m, <out>_mask_m<m>.png (plots.mask_history_image of the
  recorded epochs) and <out>_cov_<model>_m<m>.png (plots.covariance_heatmap of the
  covariance of `covariance_samples` encoded test examples), then <out>.json and <out>.md.

  Args:
    config: the experiment.
    command: the command line, recorded in the report.
    verbose: Keras progress output of training.
    say: where progress lines go.

  Returns:
    The report (also in <out>.json).

  Raises:
    ConfigError: bad input, before anything is written.
    TrainingDiverged: a run diverged.
  """
  from rae_tf.metrics import latent as latent_metrics  # pylint: disable=g-import-not-at-top
  _prepare(config)
  report = _new_report("mask_behaviour", config, command)
  report["figures"] = []
  total = len(config.dims()) * 2
  base = os.path.basename(config.out)

  def write(rows):
    _update(report, rows, total)
    done = {(r["model"], r["m"]): r for r in rows}
    m = rows[-1]["m"]
    if all((model, m) in done for model in config.models()):  # Both runs of this m.
      fig = {"m": m, "covariance_png": {}, "mask_png": None}
      epochs, history = mask_history(done[(MASK_MODEL, m)]["workdir"])
      fig["mask_epochs"] = len(epochs)
      fig["mask_active_first"] = (int(np.sum(history[0] >= MASK_THRESHOLD))
                                  if len(epochs) else None)
      fig["mask_active_last"] = (int(np.sum(history[-1] >= MASK_THRESHOLD))
                                 if len(epochs) else None)
      fig["mask_history"] = {"epochs": epochs, "mask": history.tolist()}
      if len(epochs):
        fig["mask_png"] = f"{base}_mask_m{m}.png"
        plots.mask_history_image(history, f"MaskAAE mask, m = {m}",
                                 path=f"{config.out}_mask_m{m}.png",
                                 xlabel=f"epoch ({epochs[0]}..{epochs[-1]})")
      else:
        say(f"m = {m}: no mask history in {done[(MASK_MODEL, m)]['workdir']} (trained "
            "before rae_tf recorded masks): no mask figure")
      for model in config.models():
        codes = _test_codes(done[(model, m)]["workdir"], config.covariance_samples)
        cov = latent_metrics.latent_covariance(codes)
        name = f"{base}_cov_{model}_m{m}.png"
        plots.covariance_heatmap(cov, f"{config.out}_cov_{model}_m{m}.png",
                                 title=f"{model}, m = {m}: covariance of E(x)")
        fig["covariance_png"][model] = name
        fig.setdefault("covariance", {})[model] = cov.tolist()
      report["figures"].append(fig)
    _write_json(config.out + ".json", report)
    outputs.atomic_write(config.out + ".md", _mask_markdown(report, config.out))

  _run_all(config, "mask behaviour", verbose, say, write)
  say(f"wrote {config.out}.json, .md, {base}_mask_m*.png and {base}_cov_*_m*.png")
  return report


# ------------------------------------------------------------------- 3. the NAC table


def _nac_markdown(report: Dict[str, Any]) -> str:
  lines = _header("NAC: WAE vs MaskAAE (the seed's Table 2)", report)
  models = report["models"]
  by = {(r["model"], r["m"]): r for r in report["rows"]}
  body = []
  for m in report["latent_dims"]:
    cells = [m]
    for key, digits in (("nac", 3), ("active_dims", None)):
      for model in models:
        r = by.get((model, m))
        value = None if r is None else r[key]
        cells.append(experiments.fmt(value, digits) if digits else
                     ("–" if value is None else value))
    body.append(cells)
  headers = ["m"] + [f"NAC {m}" for m in models] + [f"m_A {m}" for m in models]
  lines += [experiments.markdown_table(headers, body, right=[True] * len(headers)), "",
            "Per run:", "", _row_table(report["rows"]), "",
            "" if report["complete"] else
            f"Incomplete: {len(report['rows'])} of {len(report['latent_dims']) * 2} runs "
            "done.", ""]
  return "\n".join(lines)


def run_nac_table(config: NacTableConfig, command: Optional[str] = None,
                  verbose: Optional[int] = None,
                  say: Callable[[str], None] = _say) -> Dict[str, Any]:
  """NAC and m_A of the WAE and MaskAAE at every m (Table 2): <out>.json and <out>.md.

  NAC is evaluate()'s: the mean absolute off-diagonal Pearson correlation of the encoded
  test codes over the active dimensions (MaskAAE: mu >= 0.1; the WAE: code variance above
  1e-2 of the largest); None when fewer than two dimensions are active.

  Args:
    config: the table.
    command: the command line, recorded in the report.
    verbose: Keras progress output of training.
    say: where progress lines go.

  Returns:
    The report (also in <out>.json).

  Raises:
    ConfigError: bad input, before anything is written.
    TrainingDiverged: a run diverged.
  """
  _prepare(config)
  report = _new_report("nac_table", config, command)
  total = len(config.dims()) * 2

  def write(rows):
    _update(report, rows, total)
    _write_json(config.out + ".json", report)
    outputs.atomic_write(config.out + ".md", _nac_markdown(report))

  _run_all(config, "NAC table", verbose, say, write)
  say(f"wrote {config.out}.json and {config.out}.md")
  return report
