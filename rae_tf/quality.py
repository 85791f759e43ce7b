"""The quality benchmark (benchmarks/quality.py): every registered model on the real data
here, ranked.

`run_quality(QualityConfig)` trains every registered model (or a subset) on each data file
with one shared net / latent size / batch / epochs / seed and each model's own recipe,
evaluates it with its own prior and its ex-post samplers (one row each), and writes
`<out>.md` / `<out>.json`: per data set a table ranked by generation FID and sentences
saying which rows beat which (FlexAE's and MaskAAE's losses named), computed from the
numbers. `merge_quality_reports` joins reports of disjoint model lists run as separate
processes (or machines) with the same settings into one table.

Every run lives in `<work_root>/runs/<data>/<model>_<hash>` and its evaluations are cached
there: a killed benchmark resumes, and a model added to the registry trains only that
model. Importing this module does not import TensorFlow.
"""
import dataclasses
import json
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


from rae_tf import catalog
from rae_tf import experiments
from rae_tf.benchmark_runs import PlannedRun
from rae_tf.benchmark_runs import REPO
from rae_tf.benchmark_runs import domain_cache_dir
from rae_tf.benchmark_runs import SCALES
from rae_tf.benchmark_runs import SHARED_DATA
from rae_tf.benchmark_runs import row_name
from rae_tf.benchmark_runs import say_progress
from rae_tf.benchmark_runs import check_inputs
from rae_tf.benchmark_runs import check_npz
from rae_tf.benchmark_runs import data_key_of
from rae_tf.benchmark_runs import measure_runs
from rae_tf.benchmark_runs import model_overrides
from rae_tf.benchmark_runs import parse_model_flags
from rae_tf.benchmark_runs import rank_rows
from rae_tf.benchmark_runs import ranking_sentences
from rae_tf.benchmark_runs import recipe_prior
from rae_tf.benchmark_runs import run_workdir
from rae_tf.benchmark_runs import write_report
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError


EXPOST_MODES = ("recipe", "gmm", "none")

# ------------------------------------------------------------------- the quality benchmark

SCALE_DEFAULTS = {
    # Issue 10's CPU table: the dcgan width-32 net, 10 epochs, domain features.
    "small": {"width": 32, "epochs": 10, "features": "domain"},
    # GPU machines: the RAE paper's width-128 net and 100 epochs, Inception FID.
    "paper": {"width": 128, "epochs": 100, "features": "inception"},
}
DEFAULT_NPZ = ",".join(os.path.normpath(os.path.join(SHARED_DATA, f))
                       for f in ("fashion_mnist.npz", "mnist10k.npz"))


@dataclasses.dataclass(frozen=True)
class QualityConfig:
  """benchmarks/quality.py's flags.

  Attributes:
    models: comma-separated registered models; "" = every model registered at run time.
    npz_files: comma-separated .npz data files (x_train, x_test, y_train, y_test); an
      absent file is skipped with a message.
    scale: "small" (dcgan width 32, 10 epochs, domain FID) or "paper" (width 128, 100
      epochs, Inception FID from --inception_weights); --width / --epochs / --features
      override the scale's value.
    width, epochs, features: None = the scale's value.
    steps_per_epoch: None = one pass over the training split (smoke runs set it).
    latent_dim, batch_size, seed: shared by every run.
    model_flags: per-model extra scripts/train.py flags, 'MODEL:FLAGS;MODEL:FLAGS'.
    expost: "recipe": rows for the ex-post priors the recipes set (ModelRecipe.expost:
      ae_gmm, rae_l2_gmm, ...); "gmm": also a "+gmm" row for every other model; "none":
      only each model's own prior.
    gmm_components: components of the ex-post GMM.
    num_samples: samples per metric (None: min(10000, the test split)).
    inception_weights: InceptionV3 notop weights file (features "inception").
    prd_runs: PRD k-means runs.
    draws: independent sample draws averaged in each generation FID (EvalConfig.draws).
    work_root: runs (<work_root>/runs/<data>/<model>_<hash>) and, unless --domain_cache,
      the domain classifier cache (<work_root>/feature_cache).
    domain_cache: folder of the domain classifiers (None: <work_root>/feature_cache). Its
      training is not bit-reproducible, so domain FIDs compare only under one classifier:
      benchmarks/domain_classifiers holds the ones behind benchmarks/RESULTS_2026-11-29.md.
    out: report path without extension (OUT.md, OUT.json).
    jobs: runs trained at once, each in its own process with cores / jobs threads
      (benchmark_runs.measure_runs); 1 = one after another in this process.
    merge: comma-separated report .json files to join into one report at --out instead
      of training (see merge_quality_reports); "" = train and measure.
    drop_rows: with --merge, comma-separated "DATA:ROW" rows left out of the merged table
      (e.g. rows measured by code since fixed); the report lists them.
  """
  models: str = ""
  npz_files: str = DEFAULT_NPZ
  scale: str = "small"
  width: Optional[int] = None
  epochs: Optional[int] = None
  steps_per_epoch: Optional[int] = None
  latent_dim: int = 16
  batch_size: int = 100
  seed: int = 0
  model_flags: str = ""
  expost: str = "recipe"
  gmm_components: int = 10
  num_samples: Optional[int] = None
  features: Optional[str] = None
  inception_weights: Optional[str] = None
  prd_runs: int = 10
  draws: int = 1
  merge: str = ""
  drop_rows: str = ""
  work_root: str = "runs/quality"
  domain_cache: Optional[str] = None
  out: str = os.path.join(REPO, "benchmarks", "RESULTS")
  jobs: int = 1

  def __post_init__(self):
    if self.scale not in SCALES:
      raise ConfigError(f"--scale={self.scale!r}: choose one of {', '.join(SCALES)}")
    if self.expost not in EXPOST_MODES:
      raise ConfigError(f"--expost={self.expost!r}: choose one of {', '.join(EXPOST_MODES)}")
    for name in ("width", "epochs", "steps_per_epoch", "num_samples"):
      value = getattr(self, name)
      if value is not None and value < 1:
        raise ConfigError(f"--{name}={value} must be >= 1")
    for name in ("latent_dim", "batch_size", "gmm_components", "prd_runs", "jobs", "draws"):
      if getattr(self, name) < 1:
        raise ConfigError(f"--{name}={getattr(self, name)} must be >= 1")
    if not self.work_root or not self.out:
      raise ConfigError("--work_root and --out must name paths")
    if self.out.endswith(os.sep) or os.path.isdir(self.out):
      raise ConfigError(f"--out={self.out} is a directory; pass a path without extension, "
                        "e.g. benchmarks/RESULTS")
    if not self.npz_paths():
      raise ConfigError("--npz_files names no file; pass comma-separated .npz paths")
    for model in self.model_list():
      if not re.fullmatch(r"[A-Za-z0-9_]+", model):
        raise ConfigError(f"--models={self.models!r}: expected comma-separated model names")
    flags_by_model = parse_model_flags(self.model_flags)
    for model in flags_by_model:
      model_overrides(flags_by_model, model)
    self.request()
    for item in self.drop_row_list():
      if not self.merge:
        raise ConfigError("--drop_rows is for --merge: pass the reports to join too")
      if len(item) != 2 or not all(item):
        raise ConfigError(f"--drop_rows={self.drop_rows!r}: expected comma-separated "
                          "DATA:ROW, e.g. fashion_mnist:vae_vamp")
    for path in self.merge_paths():
      if not os.path.isfile(path):
        raise ConfigError(f"--merge: {path} not found; pass the .json reports of earlier "
                          "quality runs, comma-separated")

  def drop_row_list(self) -> Tuple[Tuple[str, ...], ...]:
    return tuple(tuple(p.strip().split(":", 1)) for p in self.drop_rows.split(",")
                 if p.strip())

  def merge_paths(self) -> Tuple[str, ...]:
    return tuple(p.strip() for p in self.merge.split(",") if p.strip())

  def model_list(self) -> Tuple[str, ...]:
    return tuple(m.strip() for m in self.models.split(",") if m.strip())

  def npz_paths(self) -> Tuple[str, ...]:
    return tuple(p.strip() for p in self.npz_files.split(",") if p.strip())

  def setting(self, name: str):
    value = getattr(self, name)
    return SCALE_DEFAULTS[self.scale][name] if value is None else value

  def request(self) -> experiments.EvalRequest:
    return experiments.EvalRequest(
        num_samples=self.num_samples, features=self.setting("features"),
        inception_weights=self.inception_weights,
        cache_dir=domain_cache_dir(self.domain_cache, self.work_root),
        prd_runs=self.prd_runs, gmm_components=self.gmm_components, draws=self.draws)

  def train_config(self, model: str, path: str) -> TrainConfig:
    data_key = data_key_of(path)
    config = TrainConfig.make(**{
        **model_overrides(parse_model_flags(self.model_flags), model),
        "model": model, "dataset": f"{catalog.NPZ_PREFIX}{os.path.abspath(path)}",
        "arch": "dcgan", "width": self.setting("width"), "latent_dim": self.latent_dim,
        "batch_size": self.batch_size, "epochs": self.setting("epochs"),
        "steps_per_epoch": self.steps_per_epoch, "seed": self.seed, "export_dir": "",
        "export_name": None, "workdir": "placeholder"})
    return config.replace(workdir=run_workdir(self.work_root, data_key, config))

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def split_npz_files(config: QualityConfig, say: Callable[[str], None] = say_progress
                    ) -> Tuple[List[str], Dict[str, str]]:
  """(present files, {data key: absent path}); says which are skipped. Checks the
  present ones (labelled images, enough test images) without importing TensorFlow."""
  present, skipped = [], {}
  for path in config.npz_paths():
    if os.path.isfile(path):
      check_npz(path, config.num_samples)
      present.append(path)
    else:
      skipped[data_key_of(path)] = path
      say(f"skipped {path}: not found (the benchmark needs an .npz with x_train, x_test, "
          "y_train, y_test; pass --npz_files=PATH,...)")
  if not present:
    say("no data file present: nothing measured, nothing written")
  return present, skipped


def same_training(models: Sequence[str], recipes: Dict[str, Any],
                  twins: Dict[str, str], expost: str = "recipe") -> Dict[str, str]:
  """{model: the row that reports it} for the models trained as their twin.

  An alias (vae_bce) is its twin's row ("vae"); a one-command ex-post recipe (rae_l2_gmm,
  two_stage_vae) is its twin's ex-post row ("rae_l2+gmm", "vae_learned_var+vae").
  """
  out = {}
  for model in models:
    twin = twins.get(model, model)
    if twin != model:
      own = getattr(recipes[model], "expost", None)
      out[model] = row_name(twin, own if own and expost != "none" else "trained")
  return out


def plan_quality(config: QualityConfig, registered: Sequence[str],
                 recipes: Dict[str, Any], paths: Sequence[str],
                 twins: Optional[Dict[str, str]] = None,
                 say: Callable[[str], None] = say_progress) -> List[PlannedRun]:
  """The runs of the benchmark: every (data file, model) with its samplers.

  A model that trains exactly like another (`twins`, from zoo.training_twin: aliases and
  the one-command ex-post recipes) is not trained again: its twin's run gains its ex-post
  row (see `same_training`).

  Args:
    config: the benchmark.
    registered: the registry's model names (zoo.MODELS.names()).
    recipes: model name -> its ModelRecipe (for .expost and .prior).
    paths: the data files present.
    twins: model name -> the model it trains as (None: every model trains itself).
    say: where the note on unused --model_flags entries goes.
  """
  twins = twins or {}
  models = config.model_list() or tuple(registered)
  unknown = [m for m in models if m not in registered]
  if unknown:
    raise ConfigError(f"--models: {', '.join(unknown)} not registered; registered: "
                      f"{', '.join(registered)}")
  flagged = parse_model_flags(config.model_flags)
  unknown = sorted(set(flagged) - set(registered))
  if unknown:
    raise ConfigError(f"--model_flags names {', '.join(unknown)}, not registered; "
                      f"registered: {', '.join(registered)}")
  for model in flagged:
    twin = twins.get(model, model)
    if twin != model:
      raise ConfigError(f"--model_flags names {model}, which trains as {twin} (same "
                        f"recipe{', then an ex-post prior' if recipes[model].expost else ''}"
                        f"): give the flags to {twin}")
  # One flags file (benchmarks/model_flags_small.txt) serves any --models subset: entries
  # for registered models that are not trained here are left out, and said so.
  trained = {twins.get(m, m) for m in models}
  unused = sorted(set(flagged) - trained)
  if unused:
    say(f"--model_flags: not training {', '.join(unused)} here; their flags are unused")
  runs: Dict[str, List[str]] = {}  # Model trained -> its priors, in --models order.
  for model in models:
    twin = twins.get(model, model)
    priors = runs.setdefault(twin, ["trained"])
    for recipe in (recipes[twin], recipes[model]):
      own = getattr(recipe, "expost", None)
      if own and config.expost != "none" and own not in priors:
        priors.append(own)
    if config.expost == "gmm" and "gmm" not in priors:
      priors.append("gmm")
  return [PlannedRun(model, data_key_of(path), config.train_config(model, path),
                     tuple(priors), recipe_prior(recipes[model]))
          for path in paths for model, priors in runs.items()]


def _quality_markdown(report: Dict[str, Any]) -> str:
  cfg = report["config"]
  lines = ["# Model quality: every registered model (issue 10)", "",
           f"Date: {report['date']}  ",
           f"Command: `{report['command']}`  " if report["command"]
           else "Command: (library call)  ",
           f"Scale {cfg['scale']}: dcgan width {report['settings']['width']}, m = "
           f"{cfg['latent_dim']}, batch {cfg['batch_size']}, {report['settings']['epochs']} "
           f"epochs" + (f" of {cfg['steps_per_epoch']} steps" if cfg["steps_per_epoch"]
                        else "") + f", seed {cfg['seed']}; each model's own recipe"
           + (f", plus `{cfg['model_flags']}`" if cfg["model_flags"] else "") + ".  ",
           f"Samplers: each model's own prior; ex-post rows: --expost={cfg['expost']} "
           f"(GMM-{cfg['gmm_components']}, full covariance, on the training codes).  ",
           "Lower FID is better; precision / recall: improved P&R (k = 3) and PRD "
           "F_1/8 / F_8, higher is better. m_A: active dimensions; NAC: mean |off-diagonal "
           "correlation| of the test codes. Training minutes are summed over resumes.", ""]
  if report.get("same_training"):
    lines += ["Trained once, reported under their twin's row (the same recipe; ex-post "
              "recipes add their prior's row): " + ", ".join(
                  f"{model} = {row}" for model, row in report["same_training"].items())
              + ".", ""]
  sources = report.get("sources")
  if sources:
    lines += [f"Merged from {len(sources)} reports (`--merge`; the *src* column names each "
              "row's; where two held a row the later one's is shown):", ""]
    lines += [f"{i}. `{s['path']}`: {s['date']}, {s['runs_done']} of {s['runs_planned']} "
              f"runs done; `{s['command']}`" for i, s in enumerate(sources)]
    lines += [f"* replaced: {r}" for r in report.get("replaced_rows", [])]
    lines += [f"* left out (`--drop_rows`): {r}" for r in report.get("dropped_rows", [])]
    lines += [""]
  elif not report["complete"]:
    lines += [f"**Incomplete: {report['runs_done']} of {report['runs_planned']} runs done "
              "(run the same command again to resume).**", ""]
  for key, entry in report["datasets"].items():
    if entry["status"] != "measured":
      lines += [f"## {key}", "", f"Skipped: {entry['status']}.", ""]
      continue
    lines += [f"## {key}", ""]
    rows = entry["rows"]
    first = next((r for r in rows.values() if r.get("status") == "ok"), {})
    lines.append(f"Data `{entry['path']}`; {first.get('num_samples', '–')} samples per "
                 f"metric, {first.get('fid_label', 'FID')}"
                 + (f" (classifier test accuracy "
                    f"{first['domain_classifier_test_accuracy']:.3f}"
                    + (f", weights {first['domain_classifier_id']}"
                       if first.get("domain_classifier_id") else "") + ")"
                    if first.get("domain_classifier_test_accuracy") else "")
                 + experiments.draws_clause(_setting(report, "draws")) + ".")
    lines.append("")
    body = []
    for rank, name in enumerate(rank_rows(rows), 1):
      r = rows[name]
      src = [str(r.get("source", "–"))] if sources else []
      if r.get("status") != "ok":
        body.append([rank, name, r.get("sampler", r["prior"]), r["status"]] + ["–"] * 9
                    + src)
        continue
      body.append([rank, name, r["sampler"], experiments.fmt_generation_fid(r),
                   experiments.fmt(r["fid_reconstruction"]),
                   experiments.fmt(r["improved_precision"], 3),
                   experiments.fmt(r["improved_recall"], 3),
                   experiments.fmt(r["prd_f1_8_precision"], 3),
                   experiments.fmt(r["prd_f8_recall"], 3),
                   f"{r['active_dims']} / {r['latent_dim']}", experiments.fmt(r["nac"], 3),
                   experiments.fmt(r["train_minutes"], 1), r["epochs"]] + src)
    lines += [experiments.markdown_table(
        ["rank", "row", "sampler", "gen. FID", "rec. FID", "precision", "recall",
         "PRD F_1/8", "PRD F_8", "m_A / m", "NAC", "train min", "epochs"]
        + (["src"] if sources else []), body,
        right=[True, False, False] + [True] * (11 if sources else 10)), ""]
    lines += [f"* {s}" for s in entry["ranking"]] + [""]
  return "\n".join(lines)


def run_quality(config: QualityConfig, command: Optional[str] = None,
                verbose: Optional[int] = None,
                say: Callable[[str], None] = say_progress) -> Optional[Dict[str, Any]]:
  """Trains and evaluates every planned model on every present data file.

  Rewrites <out>.json and <out>.md after every run (marked incomplete until the last).

  Args:
    config: the benchmark.
    command: the command line, recorded in the report.
    verbose: Keras progress output of training.
    say: where progress lines go.

  Returns:
    The report, or None when no data file is present (nothing written).

  Raises:
    ConfigError: bad input (unknown model, bad --model_flags for a model, an unreadable
      npz, a workdir trained with other settings), before anything is written.
  """
  present, skipped = split_npz_files(config, say)
  if not present:
    return None
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  registered = tuple(zoo.MODELS.names())
  recipes = {name: zoo.MODELS.get(name) for name in registered}
  check_inputs(config.setting("features"), config.inception_weights,
               [(config.work_root, "--work_root"),
                (os.path.dirname(os.path.abspath(config.out)), "--out")])
  twins = {name: zoo.training_twin(name) for name in registered}
  plan = plan_quality(config, registered, recipes, present, twins, say)
  for run in plan:  # Refuse bad model flags and mismatching workdirs before any work.
    zoo.resolve_hparams(run.train_config, is_image=True, data_shape=(28, 28, 1))
    training.check_workdir(run.train_config)
  request = config.request()
  report = {"benchmark": "quality", "date": experiments.now(), "command": command,
            "config": config.to_dict(), "registered_models": list(registered),
            "settings": {"width": config.setting("width"),
                         "epochs": config.setting("epochs"),
                         "features": config.setting("features")},
            "same_training": same_training(config.model_list() or registered, recipes,
                                           twins, config.expost),
            "datasets": {}, "runs_planned": len(plan), "runs_done": 0, "complete": False}
  for key, path in skipped.items():
    report["datasets"][key] = {"path": path, "status": f"{path} not found", "rows": {}}
  for path in present:
    report["datasets"][data_key_of(path)] = {"path": path, "status": "measured",
                                             "rows": {}, "ranking": []}
  start = time.time()

  def started(index: int):
    run = plan[index]
    say(f"quality {index + 1}/{len(plan)}: {run.key} on {run.data_key} "
        f"({run.train_config.epochs} epochs) in {run.train_config.workdir} ...")

  def done(index: int, rows: Dict[str, Dict[str, Any]]):
    entry = report["datasets"][plan[index].data_key]
    entry["rows"].update(rows)
    entry["ranking"] = ranking_sentences(entry["rows"])
    report["runs_done"] += 1
    report["complete"] = report["runs_done"] == len(plan)
    for name, r in rows.items():
      say(f"{plan[index].data_key} {name}: " + (
          f"generation FID {experiments.fmt(r['fid_generation'])}, reconstruction FID "
          f"{experiments.fmt(r['fid_reconstruction'])}" if r["status"] == "ok"
          else r["status"]) + f" [{(time.time() - start) / 60:.1f} min elapsed]")
    write_report(config.out, report, _quality_markdown(report))

  measure_runs([(run, request) for run in plan], done, started, jobs=config.jobs,
               verbose=verbose, say=say)
  say(f"wrote {config.out}.md and {config.out}.json")
  return report


# Settings that must agree for rows of several reports to share one table.
MERGE_KEYS = ("scale", "latent_dim", "batch_size", "seed", "steps_per_epoch", "expost",
              "gmm_components", "num_samples", "prd_runs", "draws")


def _setting(report: Dict[str, Any], key: str):
  """A report's QualityConfig field; one written before the field existed: its default."""
  return report["config"].get(key, experiments.field_defaults(QualityConfig).get(key))


def load_report(path: str, flag: str = "--merge") -> Dict[str, Any]:
  """A quality report .json written by run_quality (ConfigError naming `flag` if not)."""
  try:
    with open(path) as f:
      report = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f"{flag}: {path} is not a readable JSON report ({e})") from None
  if not isinstance(report, dict) or report.get("benchmark") != "quality":
    raise ConfigError(f"{flag}: {path} is not a quality report (written by "
                      "benchmarks/quality.py --out)")
  return report


def _without_source(row: Dict[str, Any]) -> Dict[str, Any]:
  return {k: v for k, v in row.items() if k != "source"}


def _check_one_classifier(data_key: str, rows: Dict[str, Dict[str, Any]],
                          names: Sequence[str]) -> None:
  """Refuses a data set whose rows were measured by different domain classifiers.

  A retrained classifier gives other domain FIDs, so such rows do not share a ranking.
  Rows carry the classifier's weights fingerprint (older reports only its test accuracy,
  compared to 4 digits).
  """
  seen: Dict[str, Tuple[str, str]] = {}  # "id" / "accuracy" -> (value, source name).
  for row in rows.values():
    if row.get("status") != "ok" or row.get("features", "domain") != "domain":
      continue
    source = names[row["source"]]
    marks = {"id": row.get("domain_classifier_id")}
    if row.get("domain_classifier_test_accuracy") is not None:
      marks["accuracy"] = f"{row['domain_classifier_test_accuracy']:.4f}"
    for kind, value in marks.items():
      if value is None:
        continue
      value_seen, where = seen.setdefault(kind, (value, source))
      if value_seen != value:
        what = "weights" if kind == "id" else "test accuracy"
        raise ConfigError(
            f"--merge: {data_key} rows were measured by different domain classifiers "
            f"({what} {value_seen} in {where}, {value} in {source}); their domain FIDs "
            "are not comparable: evaluate every run with one --domain_cache")


def _one_flags_per_model(datasets: Dict[str, Dict[str, Any]],
                         flags_of: Sequence[Dict[str, str]],
                         names: Sequence[str]) -> Dict[str, str]:
  """{model: the --model_flags its merged rows were trained with}.

  A later report may re-run a model with other flags (e.g. a changed recipe) when it
  replaces, or --drop_rows removes, every earlier row of that model: one table holds one
  setting per model. Rows kept from reports that gave the model other flags: ConfigError.
  """
  used: Dict[str, Tuple[str, str, str]] = {}  # Model -> (flags, row, source name).
  for key, entry in sorted(datasets.items()):
    for row, values in sorted(entry["rows"].items()):
      model, source = values["model"], values["source"]  # The model the run trained.
      text = flags_of[source].get(model, "")
      seen = used.setdefault(model, (text, f"{key}:{row}", names[source]))
      if seen[0] != text:
        raise ConfigError(
            f"--merge: {model}'s rows were trained with other flags ({seen[1]} from "
            f"{seen[2]}: {seen[0]!r}; {key}:{row} from {names[source]}: {text!r}); "
            f"re-run {model} for every data set or leave the old rows out with --drop_rows")
  flags = {m: f for m, (f, _, _) in used.items() if f}
  for report_flags in flags_of:  # Models without rows keep the latest flags given.
    flags.update({m: f for m, f in report_flags.items() if m not in used})
  return flags


def merge_quality_reports(reports: Sequence[Dict[str, Any]], names: Sequence[str],
                          command: Optional[str] = None,
                          drop_rows: Sequence[Tuple[str, str]] = ()) -> Dict[str, Any]:
  """One report from several quality runs with the same settings (e.g. disjoint --models
  run as parallel processes or on several machines).

  Rows are joined per data set and ranked again; where two reports hold the same row, the
  later one wins and the report says so (unless the two are identical copies). Each row keeps the index of its source, and the
  report lists the sources (date, command, runs done), so a table assembled from runs
  of different code versions shows it.

  Args:
    reports: quality reports (run_quality's or load_report's), earliest first.
    names: what to call each source (its path).
    command: the merging command line, recorded in the report.
    drop_rows: (data key, row) pairs left out of the result (each must exist); the
      report lists them with their source.

  Raises:
    ConfigError: no reports, or settings (MERGE_KEYS, width, epochs, features) that differ
      between reports, or a model's kept rows trained with different --model_flags (a
      later report may re-run a model with new flags by replacing all its rows), or one
      data set's rows measured by different domain classifiers, or a drop_rows row that
      no report holds.
  """
  if not reports:
    raise ConfigError("--merge: give at least one report .json")
  first = reports[0]
  for name, report in zip(names[1:], reports[1:]):
    for key in MERGE_KEYS:
      ours, theirs = _setting(report, key), _setting(first, key)
      if ours != theirs:
        raise ConfigError(f"--merge: {name} has {key}={ours!r}, {names[0]} {theirs!r}; "
                          "only reports with the same settings share a table")
    for key in ("width", "epochs", "features"):
      if report["settings"].get(key) != first["settings"].get(key):
        raise ConfigError(f"--merge: {name} has {key}={report['settings'].get(key)!r}, "
                          f"{names[0]} {first['settings'].get(key)!r}; only reports with "
                          "the same settings share a table")
  flags_of = [parse_model_flags(r["config"].get("model_flags", "")) for r in reports]
  datasets: Dict[str, Dict[str, Any]] = {}
  replaced: List[str] = []
  for index, report in enumerate(reports):
    for key, entry in report["datasets"].items():
      merged = datasets.setdefault(key, {"path": entry["path"], "status": entry["status"],
                                         "rows": {}, "ranking": []})
      if entry["status"] == "measured":
        merged["status"] = "measured"
      for row, values in entry.get("rows", {}).items():
        earlier = merged["rows"].get(row)
        if earlier is not None and _without_source(earlier) != _without_source(values):
          # The same row copied into two reports is not a replacement.
          replaced.append(f"{key} {row}: {names[merged['rows'][row]['source']]} -> "
                          f"{names[index]}")
        merged["rows"][row] = {**values, "source": index}
  dropped: List[str] = []
  for data_key, row in drop_rows:
    held = datasets.get(data_key, {}).get("rows", {})
    if row not in held:
      raise ConfigError(f"--drop_rows: no report holds {data_key}:{row}; rows there: "
                        f"{', '.join(sorted(held)) or 'none'}")
    dropped.append(f"{data_key} {row} (from {names[held.pop(row)['source']]})")
  model_flags = _one_flags_per_model(datasets, flags_of, names)
  for key, entry in datasets.items():
    _check_one_classifier(key, entry["rows"], names)
    entry["ranking"] = ranking_sentences(entry["rows"]) if entry["rows"] else []
  same = {}
  registered: List[str] = []
  for report in reports:
    same.update(report.get("same_training") or {})
    registered += [m for m in report.get("registered_models", []) if m not in registered]
  return {
      "benchmark": "quality", "date": experiments.now(), "command": command,
      "config": {**first["config"], "model_flags": ";".join(
          f'{m}:"{f}"' for m, f in sorted(model_flags.items())), "merge": ",".join(names)},
      "settings": dict(first["settings"]), "registered_models": registered,
      "same_training": same, "datasets": datasets,
      "runs_planned": sum(r.get("runs_planned", 0) for r in reports),
      "runs_done": sum(r.get("runs_done", 0) for r in reports),
      "complete": all(r.get("complete") for r in reports),
      "sources": [{"path": name, "date": r.get("date"), "command": r.get("command"),
                   "runs_done": r.get("runs_done"), "runs_planned": r.get("runs_planned"),
                   "complete": r.get("complete")} for name, r in zip(names, reports)],
      "replaced_rows": replaced, "dropped_rows": dropped}


def run_merge(config: QualityConfig, command: Optional[str] = None,
              say: Callable[[str], None] = say_progress) -> Dict[str, Any]:
  """Joins --merge's reports into --out (.md and .json); nothing is trained."""
  names = config.merge_paths()
  check_inputs(None, None, [(os.path.dirname(os.path.abspath(config.out)), "--out")])
  report = merge_quality_reports([load_report(p) for p in names], names, command,
                                 drop_rows=config.drop_row_list())
  write_report(config.out, report, _quality_markdown(report))
  say(f"merged {len(names)} reports: wrote {config.out}.md and {config.out}.json")
  return report
