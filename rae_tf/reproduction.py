"""The reproduction of the seed's Tables 1-5 / Figs. 2, 5, 6, 7 (scripts/reproduce.py), from
train() and evaluate().

`run_reproduction(ReproduceConfig)` runs one of the seed's tables or figures at small (this
2-core CPU) or paper (GPU, tfds data, Inception FID) scale, written beside the published
numbers (rae_tf.seed_tables) with the gap, plus a PNG. Tables 1, 3, 4 are quality-style runs
of the models the table lists (benchmark_runs.measure_runs, --jobs at once); Table 2 is
latent_dim_experiments.run_nac_table, Table 5 experiments.run_prior_capacity_sweep, Figs.
2/5 run_latent_dim_sweep and Figs. 6/7 run_mask_behaviour.

Every run lives in `<work_root>/runs/<data>/<model>_<hash>` (the hash names its settings,
except --epochs, so raising the epochs resumes) and its evaluations are cached there
(experiments.train_and_evaluate): a killed run resumes and Tables 1, 3 and 4 share the runs
they have in common. A row whose model is not registered says "not registered"; a data set
that is not here says so and the rest runs. Importing this module does not import
TensorFlow.
"""
import dataclasses
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


from rae_tf import catalog
from rae_tf import experiments
from rae_tf import outputs
from rae_tf import seed_tables
from rae_tf.benchmark_runs import PlannedRun
from rae_tf.benchmark_runs import SCALES
from rae_tf.benchmark_runs import SHARED_DATA
from rae_tf.benchmark_runs import as_number
from rae_tf.benchmark_runs import say_progress
from rae_tf.benchmark_runs import check_inputs
from rae_tf.benchmark_runs import dataset_unavailable
from rae_tf.benchmark_runs import domain_cache_dir
from rae_tf.benchmark_runs import fmt_gap
from rae_tf.benchmark_runs import gap
from rae_tf.benchmark_runs import measure_runs
from rae_tf.benchmark_runs import model_overrides
from rae_tf.benchmark_runs import parse_model_flags
from rae_tf.benchmark_runs import recipe_prior
from rae_tf.benchmark_runs import resolve_candidate
from rae_tf.benchmark_runs import row_overrides
from rae_tf.benchmark_runs import run_workdir
from rae_tf.benchmark_runs import write_report
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError
from rae_tf.viz import plots


# ------------------------------------------------------------------- the seed's tables

TABLES = ("1", "2", "3", "4", "5", "fig2", "fig5", "fig6", "fig7")
# Latent size per data set at paper scale: the RAE paper's (Ghosh et al. 2020: MNIST 16,
# CIFAR-10 128, CelebA 64), whose protocol Table 3 cites; Fashion-MNIST as MNIST.
PAPER_LATENT = {seed_tables.MNIST: 16, seed_tables.FASHION: 16, seed_tables.CIFAR10: 128,
                seed_tables.CELEBA: 64}
# Tables 1, 3, 4 per scale. Small: ~500 steps a run (5 x 100; BatchNorm's statistics
# need ~360, see benchmarks/README's prior-capacity section) and 2,000 samples per metric
# (capped at the test split: 997 for mnist10k), so a table's ~10-16 runs fit in an hour
# on the 2-core CPU at the measured rates (simple models ~2,400 img/s, MaskAAE 0.3-0.6
# s/step, FlexAE's authors' critic ~1.4 s/step). Paper: the RAE paper's settings.
MODEL_TABLE_BUDGET = {
    "small": {"width": 32, "epochs": 5, "steps_per_epoch": 100, "num_samples": 2000,
              "features": "domain"},
    "paper": {"width": 128, "epochs": 100, "steps_per_epoch": None, "num_samples": 10000,
              "features": "inception"},
}
# MaskAAE at small scale in the latent-dimension experiments: configs/maskaae_synthetic's
# 256 x 3 critic (measured: m_A within 2 of n at m = 64, 6.6-7 min a run) instead of 512 x 4.
SMALL_MASKAAE_FLAGS = "--critic_width=256 --critic_depth=3"
SMALL_LATENT_EPOCHS = 6  # x 100 steps (synthetic) or 90 (mnist10k): ~600 steps a run.


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
  """scripts/reproduce.py's flags.

  Attributes:
    table: "1".."5", or "fig2", "fig5" (one latent-size sweep), "fig6", "fig7" (one
      mask-behaviour run).
    scale: "small" (this CPU, the data here: the MNIST subset, Fashion-MNIST, synthetic)
      or "paper" (the papers' settings, tensorflow-datasets data under --data_dir,
      Inception FID from --inception_weights: for GPU machines).
    mnist_npz, fashion_npz: the small scale's data files (absent: that column says so).
    data_dir: tensorflow-datasets directory (paper scale).
    epochs, steps_per_epoch, num_samples: override the scale's budget (smoke runs).
    draws: independent sample draws averaged in each generation FID (EvalConfig.draws);
      None: one for Tables 1, 3, 4, the latent-dim experiments' default (5) for the rest.
    seed: every run's seed.
    model_flags: per-model extra scripts/train.py flags, 'MODEL:FLAGS;...' (Tables 1, 3, 4).
    inception_weights: InceptionV3 notop weights (paper scale).
    work_root: the runs, shared by the tables (<work_root>/runs/<data>/<model>_<hash>,
      <work_root>/latent_dim, <work_root>/prior_capacity).
    domain_cache: folder of the domain classifiers of Tables 1, 3, 4 (None:
      <work_root>/feature_cache). Domain FIDs compare only under one classifier;
      benchmarks/domain_classifiers holds the ones behind benchmarks/RESULTS_2026-11-29.md.
    out_dir: the reports: table<N>.md / .json / .png (and the experiments' figures).
    jobs: Tables 1, 3, 4: runs trained at once, each in its own process with cores / jobs
      threads (benchmark_runs.measure_runs); 1 = one after another in this process.
  The other tables refuse jobs > 1, domain_cache and model_flags (ConfigError) rather
  than ignore them.
  """
  table: str = "1"
  scale: str = "small"
  mnist_npz: str = os.path.normpath(os.path.join(SHARED_DATA, "mnist10k.npz"))
  fashion_npz: str = os.path.normpath(os.path.join(SHARED_DATA, "fashion_mnist.npz"))
  data_dir: Optional[str] = None
  epochs: Optional[int] = None
  steps_per_epoch: Optional[int] = None
  num_samples: Optional[int] = None
  draws: Optional[int] = None
  seed: int = 0
  model_flags: str = ""
  inception_weights: Optional[str] = None
  work_root: str = "runs/reproduce"
  domain_cache: Optional[str] = None
  out_dir: str = "runs/reproduce/report"
  jobs: int = 1

  def __post_init__(self):
    if self.table not in TABLES:
      raise ConfigError(f"--table={self.table!r}: choose one of {', '.join(TABLES)}")
    if self.scale not in SCALES:
      raise ConfigError(f"--scale={self.scale!r}: choose one of {', '.join(SCALES)}")
    for name in ("epochs", "steps_per_epoch", "num_samples", "draws"):
      value = getattr(self, name)
      if value is not None and value < 1:
        raise ConfigError(f"--{name}={value} must be >= 1")
    if self.jobs < 1:
      raise ConfigError(f"--jobs={self.jobs} must be >= 1")
    if not self.work_root or not self.out_dir:
      raise ConfigError("--work_root and --out_dir must name paths")
    if self.table not in _MODEL_TABLES:
      # Silently ignoring them would let a user believe they took effect.
      for flag, given in (("jobs", self.jobs != 1), ("domain_cache", self.domain_cache),
                          ("model_flags", self.model_flags)):
        if given:
          raise ConfigError(f"--{flag} applies to Tables 1, 3, 4 only; --table="
                            f"{self.table} trains its runs one after another in this "
                            f"process with its own settings: drop --{flag}")
    flags_by_model = parse_model_flags(self.model_flags)
    for model in flags_by_model:
      model_overrides(flags_by_model, model)

  def features(self) -> str:
    return MODEL_TABLE_BUDGET[self.scale]["features"]

  def dataset(self, key: str) -> Tuple[Optional[str], Optional[str]]:
    """(--dataset value, None) for a table column, or (None, why it is not run)."""
    if self.scale == "paper":
      why = dataset_unavailable(key, self.data_dir)
      return (None, why) if why else (key, None)
    path = {seed_tables.MNIST: self.mnist_npz, seed_tables.FASHION: self.fashion_npz}.get(key)
    if path is None:
      return None, (f"no {seed_tables.DATASET_TITLES[key]} data here (small scale runs "
                    "the MNIST subset and Fashion-MNIST; --scale=paper with tfds data)")
    if not os.path.isfile(path):
      return None, f"{path} not found"
    return f"{catalog.NPZ_PREFIX}{os.path.abspath(path)}", None

  def budget(self, name: str):
    value = getattr(self, name, None)
    return MODEL_TABLE_BUDGET[self.scale][name] if value is None else value

  def model_table_draws(self) -> int:
    """Sample draws of Tables 1, 3, 4 (one unless --draws)."""
    return self.draws or 1

  def latent_epochs(self, paper: int) -> int:
    return self.epochs or (paper if self.scale == "paper" else SMALL_LATENT_EPOCHS)

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


_MODEL_TABLES = {
    "1": ("Table 1: generation FID", seed_tables.TABLE1, seed_tables.TABLE1_DATASETS),
    "3": ("Table 3: reconstruction / generation FID", seed_tables.TABLE3,
          seed_tables.TABLE3_DATASETS),
    "4": ("Table 4: precision / recall", seed_tables.TABLE4, seed_tables.TABLE4_DATASETS),
}


def measured_cell(table: str, row: Dict[str, Any]):
  """The measured value(s) comparable with the seed's cell of `table`."""
  if row.get("status") != "ok":
    return None
  if table == "1":
    return row.get("fid_generation")
  if table == "3":
    return (row.get("fid_reconstruction"), row.get("fid_generation"))
  return (row.get("prd_f1_8_precision"), row.get("prd_f8_recall"))  # Table 4: PRD.


def fmt_cell(value, digits: int = 2) -> str:
  if isinstance(value, (tuple, list)):
    return " / ".join(experiments.fmt(v, digits) for v in value)
  return experiments.fmt(value, digits)


def fmt_gap_cell(value, digits: int = 2) -> str:
  if isinstance(value, (tuple, list)):
    return " / ".join(fmt_gap(v, digits) for v in value)
  return fmt_gap(value, digits)


def comparison_rows(table: str, seed_rows: Sequence[seed_tables.SeedRow],
                    datasets: Sequence[str], measured: Dict[Tuple[str, str], Dict[str, Any]],
                    resolved: Optional[Dict[str, Optional[str]]] = None
                    ) -> List[Dict[str, Any]]:
  """One entry per seed row: per data set the published cell, the measured one, the gap.

  Args:
    table: "1", "3" or "4".
    seed_rows: the seed's rows.
    datasets: the table's data-set keys.
    measured: (row label, data key) -> the measured row (measure()'s, or a status-only
      row: "not registered", "data missing", "not run").
    resolved: row label -> the registered model that reproduces it (None: not registered).
  """
  out = []
  for row in seed_rows:
    model = (resolved or {}).get(row.label)
    entry = {"label": row.label, "model": model, "prior": row.prior,
             "flags": row.flags, "registered": model is not None, "cells": {}}
    for key in datasets:
      m = measured.get((row.label, key), {"status": "not run"})
      value = measured_cell(table, m)
      published = seed_tables.published_cell(row, key)
      entry["cells"][key] = {"published": published, "measured": value,
                             "measured_sd": (m.get("fid_generation_sd") if table in ("1", "3")
                                             and value is not None else None),
                             "gap": gap(value, published), "status": m.get("status"),
                             "model": m.get("model"), "sampler": m.get("sampler")}
    out.append(entry)
  return out


def _model_table_markdown(report: Dict[str, Any]) -> str:
  table, digits = report["table"], (3 if report["table"] == "4" else 2)
  datasets = report["datasets"]
  headers, right = ["seed row", "model"], [False, False]
  for key in datasets:  # A data set not run here shows its published column only.
    title = seed_tables.DATASET_TITLES[key]
    if key in report["unavailable"]:
      headers.append(f"{title} published (not run)")
      right.append(True)
    else:
      headers += [f"{title} published", f"{title} measured", f"{title} gap"]
      right += [True, True, True]
  body = []
  for entry in report["comparison"]:
    if not entry["registered"]:
      label = "not registered"
    else:
      label = entry["model"] + (f" {entry['flags']}" if entry["flags"] else "") + (
          f" + {entry['prior']}" if entry["prior"] != "trained" else "")
    cells = [entry["label"], label]
    for key in datasets:
      c = entry["cells"][key]
      if key in report["unavailable"]:
        cells.append(fmt_cell(c["published"], digits))
        continue
      sd = experiments.fmt_sd(c.get("measured_sd"), digits)  # Several --draws: " ± sd".
      measured = (fmt_cell(c["measured"], digits) + sd if c["status"] == "ok"
                  else c["status"] or "–")
      cells += [fmt_cell(c["published"], digits), measured, fmt_gap_cell(c["gap"], digits)]
    body.append(cells)
  what = {"1": "generation FID (lower is better)",
          "3": "reconstruction / generation FID (lower is better)",
          "4": "precision / recall: PRD F_1/8 / F_8 (Sajjadi et al., the seed's [21]; "
               "higher is better)"}[table]
  lines = _repro_header(report) + [
      f"Cells: {what}; gap = measured − published"
      + (experiments.draws_clause(report.get("budget", {}).get(
          "sample draws per generation FID", 1)) if table in ("1", "3") else "") + ".", "",
      experiments.markdown_table(headers, body, right), ""]
  for key, why in report["unavailable"].items():
    lines.append(f"* {seed_tables.DATASET_TITLES[key]}: not run: {why}.")
  missing = [e["label"] for e in report["comparison"] if not e["registered"]]
  if missing:
    lines.append("* Not registered in rae_tf.models.zoo (no run; the row fills in once a "
                 "model of its name is registered): " + ", ".join(missing) + ".")
  for key in report["datasets"]:
    ids = sorted({(r.get("domain_classifier_test_accuracy"), r.get("domain_classifier_id"))
                  for label_key, r in report.get("rows", {}).items()
                  if label_key.endswith(f" | {key}") and r.get("status") == "ok"
                  and r.get("domain_classifier_test_accuracy") is not None},
                 key=str)
    if ids:
      lines.append(f"* {seed_tables.DATASET_TITLES[key]} domain classifier: " + "; ".join(
          f"test accuracy {acc:.4f}, weights {wid or 'not recorded'}" for acc, wid in ids)
          + ".")
  if table == "4":
    lines.append("* Improved precision / recall (Kynkäänniemi et al., k = 3) of the same "
                 "runs are in the JSON (`rows`).")
  return "\n".join(lines + [""])


def _repro_header(report: Dict[str, Any]) -> List[str]:
  budget = report.get("budget", {})
  fid = report["table"] in ("1", "3", "5")
  return [f"# Reproducing the seed's {report['title']}", "",
          f"Date: {report['date']}  ",
          f"Command: `{report['command']}`  " if report["command"]
          else "Command: (library call)  ",
          f"Scale: {report['config']['scale']}"
          + ("; " + ", ".join(f"{k} {v}" for k, v in budget.items()) if budget else "")
          + ".  ",
          "Published numbers: the seed (rae_landscape.txt, transcribed in "
          "rae_tf/seed_tables.py)" + (", Inception FID on 10,000 samples. " if fid else ". ")
          + ("**Measured at small scale: a CPU budget far below the papers' and a domain "
             "classifier's features for FID and precision / recall, so compare orders and "
             "directions, not values.**" if report["config"]["scale"] == "small" else
             "Measured at the papers' settings with Inception features."), ""]


def _model_table_png(report: Dict[str, Any]) -> bytes:
  import numpy as np  # pylint: disable=g-import-not-at-top
  keys = [k for k in report["datasets"] if k not in report["unavailable"]] or list(
      report["datasets"])[:1]
  fig = plots.new_figure(max(6.0, 1.2 * len(report["comparison"])), 3.2 * len(keys))
  table = report["table"]
  part = None if table == "1" else 1  # Table 3: the generation FID; Table 4: recall.
  for i, key in enumerate(keys, 1):
    ax = fig.add_subplot(len(keys), 1, i)
    labels, pub, mea = [], [], []
    for entry in report["comparison"]:
      c = entry["cells"][key]
      p, m = c["published"], c["measured"]
      if part is not None:
        p = p[part] if isinstance(p, (tuple, list)) else None
        m = m[part] if isinstance(m, (tuple, list)) else None
      labels.append(entry["label"])
      pub.append(np.nan if p is None else p)
      mea.append(np.nan if m is None else m)
    x = np.arange(len(labels))
    ax.bar(x - 0.2, pub, 0.4, label="published")
    ax.bar(x + 0.2, mea, 0.4, label=f"measured ({report['config']['scale']})")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel({"1": "generation FID", "3": "generation FID", "4": "recall (F_8)"}[table])
    ax.set_title(seed_tables.DATASET_TITLES[key])
    ax.legend(fontsize=7)
  return plots.png_bytes(fig)


def _run_model_table(config: ReproduceConfig, command: Optional[str], verbose, say
                     ) -> Dict[str, Any]:
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  title, seed_rows, datasets = _MODEL_TABLES[config.table]
  registered = tuple(zoo.MODELS.names())
  flags_by_model = parse_model_flags(config.model_flags)
  columns, unavailable = {}, {}
  for key in datasets:
    dataset, why = config.dataset(key)
    if why:
      unavailable[key] = why
      say(f"Table {config.table}, {seed_tables.DATASET_TITLES[key]}: not run: {why}")
    else:
      columns[key] = dataset
  check_inputs(config.features(), config.inception_weights,
               [(config.work_root, "--work_root"), (config.out_dir, "--out_dir")])
  measured: Dict[Tuple[str, str], Dict[str, Any]] = {}
  candidates = {row.label: resolve_candidate(row.models, registered) for row in seed_rows}
  resolved = {label: (c[0] + (f" {c[1]}" if c[1] else "")) if c else None
              for label, c in candidates.items()}
  plan = []
  for row in seed_rows:
    model, model_flags = candidates[row.label] or (None, "")
    for key in datasets:
      if key in unavailable:
        measured[(row.label, key)] = {"status": "data missing"}
      elif model is None:
        measured[(row.label, key)] = {"status": "not registered"}
      else:
        overrides = row_overrides(flags_by_model, model, f"{model_flags} {row.flags}",
                                  f"seed row {row.label}")
        samples = config.budget("num_samples")
        tc = TrainConfig.make(**{
            **overrides, "model": model, "dataset": columns[key],
            "data_dir": config.data_dir if config.scale == "paper" else None,
            "arch": "dcgan", "width": config.budget("width"),
            "latent_dim": PAPER_LATENT[key] if config.scale == "paper" else 16,
            "batch_size": 100, "epochs": config.budget("epochs"),
            "steps_per_epoch": config.budget("steps_per_epoch"), "seed": config.seed,
            "export_dir": "", "export_name": None, "workdir": "placeholder"})
        tc = tc.replace(workdir=run_workdir(config.work_root, key, tc))
        recipe = zoo.MODELS.get(model)
        measured[(row.label, key)] = {"status": "pending"}
        plan.append((row, key, samples, PlannedRun(
            model, key, tc, (row.prior,), recipe_prior(recipe))))
  for _, _, _, run in plan:  # Bad flags, mismatching workdirs: refused before any work.
    zoo.resolve_hparams(run.train_config, is_image=True, data_shape=(28, 28, 1))
    training.check_workdir(run.train_config)
  budget = {"net": "dcgan", "width": config.budget("width"),
            "m": "16" if config.scale == "small" else "16 / 128 / 64 (MNIST / CIFAR / CelebA)",
            "batch": 100, "epochs": config.budget("epochs"),
            "steps per epoch": config.budget("steps_per_epoch") or "one pass",
            "samples per metric": f"≤ {config.budget('num_samples')}",
            "sample draws per generation FID": config.model_table_draws(),
            "features": config.features(), "seed": config.seed}
  report = {"reproduce": f"table{config.table}", "table": config.table, "title": title,
            "date": experiments.now(), "command": command, "config": config.to_dict(),
            "budget": budget, "datasets": list(datasets), "unavailable": unavailable,
            "rows": {}, "comparison": [], "complete": False}
  out = os.path.join(config.out_dir, f"table{config.table}")

  def write():
    report["comparison"] = comparison_rows(config.table, seed_rows, datasets, measured,
                                           resolved)
    report["rows"] = {f"{label} | {key}": r for (label, key), r in measured.items()}
    write_report(out, report, _model_table_markdown(report))
    outputs.atomic_write(out + ".png", _model_table_png(report))

  start = time.time()
  finished = []

  def started(index: int):
    row, key, _, run = plan[index]
    say(f"Table {config.table} {index + 1}/{len(plan)}: {row.label} ({run.key}) on {key} ...")

  def done(index: int, rows: Dict[str, Dict[str, Any]]):
    row, key, _, _ = plan[index]
    measured[(row.label, key)] = next(iter(rows.values()))
    finished.append(index)
    report["complete"] = len(finished) == len(plan)
    say(f"Table {config.table} {len(finished)}/{len(plan)} done: {row.label} on {key}: "
        f"{fmt_cell(measured_cell(config.table, measured[(row.label, key)]))} "
        f"[{(time.time() - start) / 60:.1f} min elapsed]")
    write()

  measure_runs([(run, _request_for(config, run.train_config, samples))
                for _, _, samples, run in plan], done, started, jobs=config.jobs,
               verbose=verbose, say=say)
  if not plan:
    report["complete"] = True
    write()
  return report


def _request_for(config: ReproduceConfig, tc: TrainConfig, samples: int
                 ) -> experiments.EvalRequest:
  """The evaluation of one run: `samples` capped at the run's test split."""
  num = config.num_samples or samples
  if tc.dataset.startswith(catalog.NPZ_PREFIX):
    import numpy as np  # pylint: disable=g-import-not-at-top
    with np.load(tc.dataset[len(catalog.NPZ_PREFIX):], allow_pickle=False) as f:
      num = min(num, int(f["x_test"].shape[0]))
  return experiments.EvalRequest(
      dataset=None, data_dir=config.data_dir if config.scale == "paper" else None,
      num_samples=num, features=config.features(),
      inception_weights=config.inception_weights,
      cache_dir=domain_cache_dir(config.domain_cache, config.work_root),
      draws=config.model_table_draws())


# Table 2, Figs. 2/5/6/7: the latent-dimension experiments.


def _latent_config(config: ReproduceConfig, cls, dataset_key: str, **extra):
  """A latent_dim_experiments config at the chosen scale (None + reason when no data)."""
  if dataset_key == "synthetic":
    dataset = "synthetic"
  else:
    dataset, why = config.dataset(dataset_key)
    if why:
      return None, why
  common = dict(dataset=dataset, seed=config.seed, num_samples=config.num_samples,
                steps_per_epoch=config.steps_per_epoch,
                work_root=os.path.join(config.work_root, "latent_dim"))
  if config.scale == "paper":
    # The authors' MNIST nets and schedule (models.md): MLPs 4 x 1024, RMSProp 1e-4, batch
    # 64, 500k steps (533 epochs of MNIST's 938 steps); the WAE baseline is WAE-GAN
    # (MaskAAE's adversarial analogue).
    common.update(arch="mlp", width=1024, depth=4, batch_size=64, learning_rate=1e-4,
                  epochs=config.latent_epochs(533), wae_model="wae_gan",
                  data_dir=config.data_dir if dataset != "synthetic" else None,
                  features="inception" if dataset != "synthetic" else "raw",
                  inception_weights=(config.inception_weights if dataset != "synthetic"
                                     else None))
  else:
    common.update(arch="mlp", width=256, depth=3, batch_size=100, learning_rate=1e-3,
                  epochs=config.latent_epochs(SMALL_LATENT_EPOCHS), wae_model="wae_mmd",
                  maskaae_flags=SMALL_MASKAAE_FLAGS)
  if config.draws:
    common["draws"] = config.draws
  common.update(extra)
  return cls(**common), None


def _latent_table2(config: ReproduceConfig, command, verbose, say) -> Dict[str, Any]:
  from rae_tf import latent_dim_experiments as lde  # pylint: disable=g-import-not-at-top
  nac_config, why = _latent_config(
      config, lde.NacTableConfig, seed_tables.MNIST, latent_dims="16,32,64,128,256",
      out=os.path.join(os.path.abspath(config.out_dir), "table2_runs"))
  report = {"reproduce": "table2", "table": "2", "date": experiments.now(),
            "title": "Table 2: NAC and active dimensions m_A (WAE vs MaskAAE)",
            "command": command, "config": config.to_dict(), "unavailable": {},
            "budget": {}, "comparison": []}
  if why:
    report["unavailable"][seed_tables.MNIST] = why
    say(f"Table 2: not run: {why}")
  else:
    lde.check_inputs(nac_config)
    report["budget"] = _latent_budget(nac_config)
    nac = lde.run_nac_table(nac_config, command=command, verbose=verbose, say=say)
    report["experiment"] = nac
    report["comparison"] = table2_comparison(nac["rows"], nac_config.wae_model)
  _write_table2(config, report)
  return report


def _latent_budget(c) -> Dict[str, Any]:
  return {"data": c.dataset, "net": f"{c.arch} {c.width} x {c.depth}",
          "m": c.latent_dims, "batch": c.batch_size, "epochs": c.epochs,
          "WAE": c.wae_model, "MaskAAE flags": c.maskaae_flags or "none",
          "sample draws per generation FID": c.draws, "seed": c.seed}


def table2_comparison(rows: Sequence[Dict[str, Any]], wae_model: str
                      ) -> List[Dict[str, Any]]:
  """Per m of the seed's Table 2: published and measured (m_A, NAC) of both models, gaps."""
  by = {(r["model"], r["m"]): r for r in rows}
  out = []
  for m, (wae_a, wae_nac, mask_a, mask_nac) in seed_tables.TABLE2.items():
    entry = {"m": m}
    for name, model, published in (("wae", wae_model, (wae_a, wae_nac)),
                                   ("maskaae", "maskaae", (mask_a, mask_nac))):
      r = by.get((model, m))
      measured = (r.get("active_dims"), r.get("nac")) if r else (None, None)
      entry[name] = {"published": published, "measured": measured,
                     "gap": gap(measured, published)}
    out.append(entry)
  return out


def _write_table2(config: ReproduceConfig, report: Dict[str, Any]):
  body = []
  for e in report["comparison"]:
    cells = [e["m"]]
    for name in ("wae", "maskaae"):
      c = e[name]
      cells += [fmt_cell(c["published"][0], 0), _int_or_dash(c["measured"][0]),
                fmt_gap(c["gap"][0], 0), experiments.fmt(c["published"][1], 3),
                experiments.fmt(c["measured"][1], 3), fmt_gap(c["gap"][1], 3)]
    body.append(cells)
  headers = ["m"] + [f"{n} {k}" for n in ("WAE", "MaskAAE")
                     for k in ("m_A pub.", "m_A meas.", "m_A gap", "NAC pub.", "NAC meas.",
                               "NAC gap")]
  lines = _repro_header(report)
  if report["unavailable"]:
    lines += [f"Not run: {report['unavailable'][seed_tables.MNIST]}.", ""]
  lines += [experiments.markdown_table(headers, body, [True] * len(headers)), "",
            f"* The seed's table also has a row `{seed_tables.TABLE2_EXTRA_ROW}` whose "
            "setting is not recoverable from the text; not compared.",
            "* The seed does not name the data set; MNIST (here the 10,000-image subset at "
            "small scale) is assumed, as in Figs. 6 and 7.", ""]
  rows = [e for e in report["comparison"]
          if all(isinstance(e[n]["measured"][1], float) for n in ("wae", "maskaae"))]
  if rows:
    below = [e["m"] for e in rows if e["maskaae"]["measured"][1] < e["wae"]["measured"][1]]
    lines.append(f"* Measured: MaskAAE's NAC is below the WAE's (the seed's claim) at m in "
                 f"{below or 'none'} of {[e['m'] for e in rows]}.")
  out = os.path.join(config.out_dir, "table2")
  write_report(out, report, "\n".join(lines + [""]))
  fig = plots.new_figure(6.0, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  for name, style in (("wae", "s"), ("maskaae", "o")):
    ms = [e["m"] for e in report["comparison"]]
    ax.plot(ms, [e[name]["published"][1] for e in report["comparison"]], style + "--",
            label=f"{name} published")
    ax.plot(ms, [e[name]["measured"][1] if e[name]["measured"][1] is not None
                 else float("nan") for e in report["comparison"]], style + "-",
            label=f"{name} measured")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("latent dimension m")
  ax.set_ylabel("NAC")
  ax.set_title("Table 2: NAC, published vs measured")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  outputs.atomic_write(out + ".png", plots.png_bytes(fig))


def _int_or_dash(value) -> str:
  return "–" if value is None else str(value)


def _latent_figs(config: ReproduceConfig, command, verbose, say) -> Dict[str, Any]:
  from rae_tf import latent_dim_experiments as lde  # pylint: disable=g-import-not-at-top
  sweep = config.table in ("fig2", "fig5")
  name = "fig2_5" if sweep else "fig6_7"
  report = {"reproduce": name, "table": config.table, "date": experiments.now(),
            "command": command, "config": config.to_dict(), "unavailable": {},
            "budget": {}, "panels": {}, "comparison": [],
            "title": ("Figs. 2 and 5: generation FID and m_A against the latent size m"
                      if sweep else "Figs. 6 and 7: MaskAAE's mask over training and "
                      "the latent covariances (MNIST)")}
  out_dir = os.path.abspath(config.out_dir)
  if sweep:
    panels = [("synthetic_n8", "synthetic", {"true_latent_dim": 8}),
              ("synthetic_n16", "synthetic", {"true_latent_dim": 16})]
    if config.scale == "paper":
      panels.append(("mnist", seed_tables.MNIST, {}))
    dims = "2,4,8,16,32,64,128" if config.scale == "paper" else "4,8,16,32,64"
  else:
    panels = [("mnist", seed_tables.MNIST, {})]
    dims = ",".join(str(m) for m in seed_tables.FIG6_ACTIVE_DIMS)
  for panel, key, extra in panels:
    cls = lde.LatentDimSweepConfig if sweep else lde.MaskBehaviourConfig
    c, why = _latent_config(config, cls, key, latent_dims=dims,
                            out=os.path.join(out_dir, f"{name}_{panel}"), **extra)
    if why:
      report["unavailable"][panel] = why
      say(f"{config.table} panel {panel}: not run: {why}")
      continue
    lde.check_inputs(c)
    report["budget"][panel] = _latent_budget(c)
    run = lde.run_latent_dim_sweep if sweep else lde.run_mask_behaviour
    result = run(c, command=command, verbose=verbose, say=say)
    report["panels"][panel] = {"out": c.out, "true_latent_dim": c.true_dim(),
                               "rows": result["rows"], "wae_model": c.wae_model,
                               "figures": sorted(f for f in os.listdir(out_dir)
                                                 if f.startswith(f"{name}_{panel}")
                                                 and f.endswith(".png"))}
  report["comparison"] = latent_statements(report, sweep)
  lines = _repro_header({**report, "budget": {}})  # Per-panel budgets follow.
  lines += ["The seed prints no numbers for Figs. 2, 5 and 7 (curves and heat maps): the "
            "statements below check their claims on the measured runs; Fig. 6's caption "
            "gives m_A, compared with its gap.", ""]
  for panel, b in report["budget"].items():
    lines.append(f"* {panel}: " + ", ".join(f"{k} {v}" for k, v in b.items()) + ".")
  for panel, why in report["unavailable"].items():
    lines.append(f"* {panel}: not run: {why}.")
  lines.append("")
  if not sweep:
    body = [[e["m"], e["published"], _int_or_dash(e["measured"]), fmt_gap(e["gap"], 0)]
            for e in report.get("fig6", [])]
    lines += ["MaskAAE's active dimensions m_A after training (Fig. 6's caption):", "",
              experiments.markdown_table(["m", "m_A published", "m_A measured", "gap"],
                                         body, [True] * 4), ""]
  lines += [f"* {s}" for s in report["comparison"]] + [""]
  for panel, p in report["panels"].items():
    lines.append(f"* {panel} figures: " + ", ".join(f"`{f}`" for f in p["figures"]))
  write_report(os.path.join(out_dir, name), report, "\n".join(lines + [""]))
  return report


def latent_statements(report: Dict[str, Any], sweep: bool) -> List[str]:
  """What the seed's figures claim, checked on the measured rows (no published numbers:
  Figs. 2, 5 and 7 are curves; Fig. 6's caption gives m_A)."""
  out = []
  for panel, p in report["panels"].items():
    rows, wae = p["rows"], p["wae_model"]
    fid = {(r["model"], r["m"]): r.get("fid_generation") for r in rows}
    ms = sorted({r["m"] for r in rows})
    wae_fids = [(fid.get((wae, m)), m) for m in ms if as_number(fid.get((wae, m))) is not None]
    if sweep and wae_fids:
      best_fid, best_m = min(wae_fids)
      out.append(f"{panel}: {wae}'s generation FID is best at m = {best_m} ({best_fid:.2f})"
                 + ("; it worsens on both sides (the seed's Fig. 2)"
                    if ms[0] < best_m < ms[-1] else
                    "; not worse on both sides of it (the seed's Fig. 2 shape not seen)"))
    n = p.get("true_latent_dim")
    mask = {r["m"]: r.get("active_dims") for r in rows if r["model"] == "maskaae"}
    if sweep and n and mask:
      out.append(f"{panel}: MaskAAE's m_A per m: "
                 + ", ".join(f"m = {m}: {mask[m]}" for m in sorted(mask))
                 + f" (true n = {n}; the seed's Fig. 5: m_A near n for m ≥ n)")
    if not sweep:
      nac = {(r["model"], r["m"]): r.get("nac") for r in rows}
      for m in ms:
        a, b = nac.get((wae, m)), nac.get(("maskaae", m))
        if as_number(a) is not None and as_number(b) is not None:
          out.append(f"{panel}, m = {m}: NAC {wae} {a:.3f}, maskaae {b:.3f} (Fig. 7: "
                     "MaskAAE's codes less correlated) — "
                     + ("as the seed shows" if b < a else "not as the seed shows"))
      report["fig6"] = [{"m": m, "published": pub, "measured": mask.get(m),
                         "gap": gap(mask.get(m), pub)}
                        for m, pub in seed_tables.FIG6_ACTIVE_DIMS.items()]
  if not sweep and "fig6" not in report:
    report["fig6"] = [{"m": m, "published": pub, "measured": None, "gap": None}
                      for m, pub in seed_tables.FIG6_ACTIVE_DIMS.items()]
  return out


# Table 5: the prior-capacity sweep.

# The authors' recipe at paper scale (scripts/prior_capacity_sweep.py's docstring).
_PAPER_CAPACITY = dict(arch="infogan", width=64, batch_size=128, epochs=300,
                       learning_rate=2e-4, critic_width=1024, critic_depth=4,
                       critic_learning_rate=1e-4, generator_learning_rate=2e-4,
                       encoder_adversary_learning_rate=1e-5, adversary_beta_1=0.0,
                       features="inception")
_PAPER_CAPACITY_LATENT = {seed_tables.MNIST: 32, seed_tables.CIFAR10: 128,
                          seed_tables.CELEBA: 128}  # FlexAE's code (models.md).


def table5_comparison(models: Sequence[Dict[str, Any]], published
                      ) -> List[Dict[str, Any]]:
  """Per model 1-6: published and measured (reconstruction, generation) FID and the gap."""
  out = []
  for i, pub in enumerate(published, 1):
    r = next((m for m in models if m.get("index") == i), None)
    measured = (r.get("fid_reconstruction"), r.get("fid_generation")) if r else (None, None)
    out.append({"index": i, "published": pub, "measured": measured,
                "gap": gap(measured, pub)})
  return out


def _table5(config: ReproduceConfig, command, verbose, say) -> Dict[str, Any]:
  from rae_tf.experiments import PriorCapacityConfig  # pylint: disable=g-import-not-at-top
  report = {"reproduce": "table5", "table": "5", "date": experiments.now(),
            "title": "Table 5: FlexAE's prior capacity (bias-variance)", "command": command,
            "config": config.to_dict(), "unavailable": {}, "budget": {}, "datasets": {}}
  for key, published in seed_tables.TABLE5.items():
    dataset, why = config.dataset(key)
    if why:
      report["unavailable"][key] = why
      say(f"Table 5, {seed_tables.DATASET_TITLES[key]}: not run: {why}")
      continue
    kw = dict(dataset=dataset, seed=config.seed, num_samples=config.num_samples,
              steps_per_epoch=config.steps_per_epoch,
              out_dir=os.path.join(os.path.abspath(config.work_root), "prior_capacity", key))
    if config.scale == "paper":
      kw.update(_PAPER_CAPACITY, data_dir=config.data_dir,
                latent_dim=_PAPER_CAPACITY_LATENT[key],
                inception_weights=config.inception_weights)
    if config.epochs:
      kw["epochs"] = config.epochs
    pc = PriorCapacityConfig(**kw)  # Small: its CPU-scale defaults (40 epochs of 9 steps).
    experiments.check_sweep_inputs(pc)
    report["budget"][key] = {"data": pc.dataset, "train fraction": pc.train_fraction,
                             "net": f"{pc.arch} {pc.width}", "m": pc.latent_dim,
                             "epochs": pc.epochs, "critic": f"{pc.critic_width} x "
                             f"{pc.critic_depth}", "capacities": pc.capacities}
    sweep = experiments.run_prior_capacity_sweep(pc, command=command, verbose=verbose,
                                                 say=say)
    report["datasets"][key] = {
        "sweep": sweep, "comparison": table5_comparison(sweep["models"], published),
        "published_shape": experiments.describe_shape([g for _, g in published]),
        "measured_shape": sweep["shape"]}
  _write_table5(config, report)
  return report


def _write_table5(config: ReproduceConfig, report: Dict[str, Any]):
  lines = _repro_header({**report, "budget": {}})  # Per-data-set budgets follow.
  for key, b in report["budget"].items():
    lines.append(f"* {seed_tables.DATASET_TITLES[key]}: "
                 + ", ".join(f"{k} {v}" for k, v in b.items()) + ".")
  for key, why in report["unavailable"].items():
    lines.append(f"* {seed_tables.DATASET_TITLES[key]}: not run: {why}.")
  lines.append("")
  for key, d in report["datasets"].items():
    body = [[e["index"], fmt_cell(e["published"]), fmt_cell(e["measured"]),
             fmt_gap_cell(e["gap"])] for e in d["comparison"]]
    lines += [f"## {seed_tables.DATASET_TITLES[key]}", "",
              "Cells: reconstruction / generation FID.", "",
              experiments.markdown_table(["model", "published", "measured", "gap"], body,
                                         [True] * 4), "",
              f"* Published shape: {d['published_shape']}.",
              f"* Measured shape: {d['measured_shape'] or 'incomplete'}.", ""]
  out = os.path.join(config.out_dir, "table5")
  write_report(out, report, "\n".join(lines + [""]))
  fig = plots.new_figure(6.4, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  for key, d in report["datasets"].items():
    idx = [e["index"] for e in d["comparison"]]
    ax.plot(idx, [e["published"][1] for e in d["comparison"]], "o--",
            label=f"{seed_tables.DATASET_TITLES[key]} published")
    ax.plot(idx, [e["measured"][1] if e["measured"][1] is not None else float("nan")
                  for e in d["comparison"]], "o-",
            label=f"{seed_tables.DATASET_TITLES[key]} measured")
  ax.set_xlabel("model (prior capacity, increasing)")
  ax.set_ylabel("generation FID")
  ax.set_title("Table 5: generation FID against prior capacity")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  outputs.atomic_write(out + ".png", plots.png_bytes(fig))


def run_reproduction(config: ReproduceConfig, command: Optional[str] = None,
                     verbose: Optional[int] = None,
                     say: Callable[[str], None] = say_progress) -> Dict[str, Any]:
  """Regenerates one of the seed's tables or figures beside its published numbers.

  Writes <out_dir>/table<N>.md, .json and .png (Figs. 2/5: fig2_5*, Figs. 6/7: fig6_7*,
  with the latent-dimension experiments' own PNGs), rewritten after every run.

  Args:
    config: which table, at which scale.
    command: the command line, recorded in the report.
    verbose: Keras progress output of training.
    say: where progress lines go.

  Returns:
    The report (also in the JSON file).

  Raises:
    ConfigError: bad input, before anything is written.
  """
  if config.table in _MODEL_TABLES:
    return _run_model_table(config, command, verbose, say)
  if config.table == "2":
    return _latent_table2(config, command, verbose, say)
  if config.table == "5":
    return _table5(config, command, verbose, say)
  return _latent_figs(config, command, verbose, say)
