"""What the quality benchmark and the reproduction of the seed's tables share: naming,
training and measuring one run.

* --model_flags parsing and checking (`parse_model_flags`, `model_overrides`,
  `row_overrides`), registry look-ups of a table's candidate models.
* Run directories: `<work_root>/runs/<data>/<model>_<hash>` (`run_workdir`; the hash names
  the settings except --epochs, so raising the epochs resumes), the training time summed
  over resumes, data-file checks.
* `measure(PlannedRun)`: trains (or resumes) a run and evaluates one row per sampler,
  cached in the run directory (experiments.train_and_evaluate); a divergence is a row
  status.
* Ranking rows by generation FID and the sentences that say who beats whom; the gap to a
  published number; writing a report's .json / .md atomically.

Importing this module does not import TensorFlow.
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


from rae_tf import catalog
from rae_tf import experiments
from rae_tf import outputs
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError
from rae_tf.errors import RunFailed
from rae_tf.errors import TrainingDiverged


SCALES = ("small", "paper")
# Names that mark the models the benchmark's sentences single out (their variants too).
FOCUS_MODELS = ("flexae", "maskaae")
# TrainConfig fields a benchmark sets itself: --model_flags may not change them.
FIXED = ("model", "dataset", "data_dir", "workdir", "export_dir", "export_name", "arch",
         "width", "latent_dim", "batch_size", "epochs", "steps_per_epoch", "seed",
         "strategy", "cpu_devices")
TIMING_FILE = "benchmark_train_seconds.json"  # In each run directory.
# The repository (an editable install) and the project's shared data beside it.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")


def say_progress(msg: str):
  print(f"[rae_tf] {msg}", flush=True)


# ------------------------------------------------------------------- small pure helpers


def domain_cache_dir(domain_cache: Optional[str], work_root: str) -> str:
  """The domain classifiers' folder: --domain_cache, else <work_root>/feature_cache."""
  return os.path.abspath(domain_cache or os.path.join(work_root, "feature_cache"))


def parse_model_flags(text: str, flag: str = "--model_flags") -> Dict[str, str]:
  """'flexae:--critic_width=256 --prior_width=256;maskaae:"--mask_psi_max=3"' ->
  {"flexae": "--critic_width=256 --prior_width=256", "maskaae": "--mask_psi_max=3"}.

  Items are separated by ';'; each is MODEL:FLAGS (scripts/train.py flags, shell syntax;
  one pair of quotes around FLAGS is dropped). The flags themselves are checked by
  `model_overrides`.
  """
  out: Dict[str, str] = {}
  for item in (text or "").split(";"):
    if not item.strip():
      continue
    model, sep, flags_text = item.partition(":")
    model, flags_text = model.strip(), flags_text.strip()
    if not sep or not re.fullmatch(r"[A-Za-z0-9_]+", model):
      raise ConfigError(f"{flag}={text!r}: expected MODEL:FLAGS items separated by ';', "
                        "e.g. flexae:\"--critic_width=256\"")
    if len(flags_text) >= 2 and flags_text[0] == flags_text[-1] and flags_text[0] in "'\"":
      flags_text = flags_text[1:-1]
    if model in out:
      raise ConfigError(f"{flag}: model {model} is named twice; put its flags in one item")
    out[model] = flags_text
  return out


def model_overrides(model_flags: Dict[str, str], model: str,
                    flag: str = "--model_flags") -> Dict[str, Any]:
  """The TrainConfig overrides --model_flags gives `model` (ConfigError if bad)."""
  return experiments.parse_train_flags(model_flags.get(model, ""), f"{flag} ({model})",
                                       FIXED)


def row_overrides(flags_by_model: Dict[str, str], model: str, row_flags: str,
                  where: str) -> Dict[str, Any]:
  """The TrainConfig overrides of a seed row's run of `model`.

  The row's own flags, then --model_flags for the model's training twin (flags given to
  rae_l2 reach the rae_l2_gmm row, as in the quality benchmark), then for the model itself.

  Args:
    flags_by_model: parsed --model_flags.
    model: the registered model the row runs.
    row_flags: the row's flags (scripts/train.py syntax).
    where: names the row in errors.
  """
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  overrides = experiments.parse_train_flags(row_flags.strip(), where, FIXED)
  for name in dict.fromkeys((zoo.training_twin(model), model)):
    overrides.update(model_overrides(flags_by_model, name))
  return overrides


def resolve_candidate(candidates: Sequence[str], registered: Sequence[str]
                      ) -> Optional[Tuple[str, str]]:
  """(model, its flags) of the first registered of `candidates` ("name" or "name
  --flag=value ..."), or None ("not registered")."""
  for candidate in candidates:
    name, _, flags_text = candidate.strip().partition(" ")
    if name in registered:
      return name, flags_text.strip()
  return None


def resolve_model(candidates: Sequence[str], registered: Sequence[str]) -> Optional[str]:
  """The name of the first registered of `candidates`, or None ("not registered")."""
  found = resolve_candidate(candidates, registered)
  return found[0] if found else None


def gap(measured, published):
  """measured - published, element-wise for (a, b) cells; None where either is missing."""
  if isinstance(published, (tuple, list)):
    measured = measured if isinstance(measured, (tuple, list)) else (None,) * len(published)
    return tuple(gap(m, p) for m, p in zip(measured, published))
  if not isinstance(measured, (int, float)) or not isinstance(published, (int, float)):
    return None
  return float(measured) - float(published)


def fmt_gap(value, digits: int = 2) -> str:
  if value is None:
    return "–"
  return f"{value:+.{digits}f}"


def as_number(value) -> Optional[float]:
  return float(value) if isinstance(value, (int, float)) and value == value else None


def rank_rows(rows: Dict[str, Dict[str, Any]], key: str = "fid_generation"
              ) -> List[str]:
  """Row names by `key` ascending (lower FID is better); rows without a number last."""
  with_value = sorted((n for n in rows if as_number(rows[n].get(key)) is not None),
                      key=lambda n: (rows[n][key], n))
  return with_value + sorted(n for n in rows if n not in with_value)


def ranking_sentences(rows: Dict[str, Dict[str, Any]],
                      focus: Sequence[str] = FOCUS_MODELS) -> List[str]:
  """Plain sentences on who beats whom by generation FID, from the numbers.

  One sentence with the whole order, then one per row whose model belongs to a `focus`
  family (flexae, flexae_flow, maskaae, ...): its rank and the rows that beat it, or that
  it beats every other row; a focus family with no measured row says so.
  """
  order = [n for n in rank_rows(rows) if as_number(rows[n].get("fid_generation")) is not None]
  if not order:
    return ["No row has a generation FID yet."]
  out = ["Order by generation FID (lower is better): " + " < ".join(
      f"{n} ({rows[n]['fid_generation']:.2f})" for n in order) + "."]
  missing = [n for n in rows if n not in order]
  if missing:
    out.append("No generation FID (not measured): " + ", ".join(sorted(missing)) + ".")
  for family in focus:
    members = [n for n in order if rows[n].get("model", n).startswith(family)]
    if not members:
      out.append(f"{family}: no measured row.")
      continue
    for name in members:
      rank = order.index(name) + 1
      fid = rows[name]["fid_generation"]
      better = [n for n in order[:rank - 1] if rows[n]["fid_generation"] < fid]
      if not better:
        out.append(f"{name} has the best generation FID ({fid:.2f}): it beats all "
                   f"{len(order) - 1} other rows.")
      else:
        out.append(f"{name} ({fid:.2f}) ranks {rank} of {len(order)}: it loses to "
                   + ", ".join(f"{n} ({rows[n]['fid_generation']:.2f})" for n in better)
                   + (f"; it beats {len(order) - rank} row(s)" if rank < len(order)
                      else "; it beats no row") + ".")
  return out


def run_workdir(work_root: str, data_key: str, config: TrainConfig) -> str:
  """<work_root>/runs/<data_key>/<model>_<hash of the settings except the epochs>.

  --epochs is left out so that raising it resumes the run (train() allows that change);
  every other setting (including --model_flags) names a run of its own. Only the settings
  that differ from TrainConfig's defaults enter the hash, so a field added to TrainConfig
  later (with its default) does not rename existing runs.
  """
  defaults = TrainConfig().to_dict()
  identity = {k: v for k, v in config.to_dict().items()
              if k not in ("workdir", "epochs", "export_dir", "export_name")
              and (k not in defaults or v != defaults[k])}
  key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
  return os.path.join(os.path.abspath(work_root), "runs", data_key,
                      f"{config.model}_{key.hexdigest()[:10]}")


def dataset_unavailable(dataset: str, data_dir: Optional[str] = None) -> Optional[str]:
  """Why `dataset` cannot be used here (None when it can), without loading it.

  npz:PATH needs the file; tensorflow-datasets sets must be prepared under --data_dir
  (or $TFDS_DATA_DIR, ~/tensorflow_datasets): nothing here downloads at run time.
  """
  if dataset.startswith(catalog.NPZ_PREFIX):
    path = os.path.expanduser(dataset[len(catalog.NPZ_PREFIX):])
    return None if os.path.isfile(path) else f"{path} not found"
  if dataset in ("mnist10k", "synthetic", "synthetic_image"):
    return None  # Bundled or generated.
  root = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
      "~/tensorflow_datasets")
  if os.path.isdir(os.path.join(root, dataset)):
    return None
  return (f"tensorflow-datasets {dataset} is not prepared in {root} (prepare it on a "
          "machine with internet and pass --data_dir)")


def summed_train_seconds(workdir: str, outcome) -> float:
  """Total training time of a run over all invocations (kept in the run directory).

  train_and_evaluate times one invocation; a resumed or already finished run would
  otherwise report only the last part (or ~0 s of loading).
  """
  path = os.path.join(workdir, TIMING_FILE)
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    record = {"epochs": 0, "seconds": 0.0}
  if outcome.epochs != record.get("epochs"):  # This invocation trained epochs.
    record = {"epochs": outcome.epochs,
              "seconds": float(record.get("seconds", 0.0)) + outcome.train_seconds}
    outputs.atomic_write(path, json.dumps(record))
  return float(record["seconds"])


METRIC_KEYS = ("fid_generation", "fid_reconstruction", "improved_precision",
               "improved_recall", "prd_f8_recall", "prd_f1_8_precision", "active_dims",
               "latent_dim", "nac", "num_samples", "fid_label", "features")


def sampler_name(prior: str, recipe_prior: str, gmm_components: int) -> str:
  """The sampler column: the recipe's own prior, or the ex-post one of the row."""
  if prior == "trained":
    base, masked = recipe_prior.split("+mask")[0], recipe_prior.endswith("+mask")
    label = {"learned": "learned G(eps)", "flow": "RealNVP flow", "vamp": "VampPrior",
             "standard_normal": "N(0, I)",
             "density_ratio": "N(0, I) resampled by T"}.get(base, base)
    return f"masked {label}" if masked else label
  return {"gmm": f"ex-post GMM-{gmm_components}", "vae": "ex-post second-stage VAE",
          "flow": "ex-post RealNVP flow"}.get(prior, f"ex-post {prior}")


# ------------------------------------------------------------------- measuring runs


@dataclasses.dataclass(frozen=True)
class PlannedRun:
  """One training run and the samplers its rows use.

  Attributes:
    key: the run's name in the report (model, or model plus a variant label).
    data_key: the data set's key.
    train_config: the run (its workdir already under the work root).
    priors: "trained" and/or ex-post kinds; one row each.
    recipe_prior: the recipe's own prior (for the sampler column).
  """
  key: str
  data_key: str
  train_config: TrainConfig
  priors: Tuple[str, ...]
  recipe_prior: str = "standard_normal"


def recipe_prior(recipe) -> str:
  """The recipe's own sampler for the sampler column ("standard_normal+mask": MaskAAE)."""
  prior = getattr(recipe, "prior", "standard_normal")
  masked = getattr(recipe, "latent_transform", "identity") == "mask"
  return f"{prior}+mask" if masked else prior


def measure(run: PlannedRun, request: experiments.EvalRequest,
            verbose: Optional[int] = None) -> Dict[str, Dict[str, Any]]:
  """Trains (or resumes) and evaluates one run: {row name: row} (one row per prior).

  A divergence is a row status, not the end of the benchmark: the other runs still run.
  """
  tc = run.train_config
  base = {"model": tc.model, "run": run.key, "workdir": tc.workdir}
  try:
    outcome = experiments.train_and_evaluate(tc, request, run.priors, verbose=verbose)
  except TrainingDiverged as e:
    return {row_name(run.key, p): {**base, "prior": p, "status": f"diverged: {e}"}
            for p in run.priors}
  seconds = summed_train_seconds(outcome.workdir, outcome)
  rows = {}
  for prior in run.priors:
    m = outcome.metrics[prior]
    rows[row_name(run.key, prior)] = {
        **base, "prior": prior, "status": "ok",
        "sampler": sampler_name(prior, run.recipe_prior, request.gmm_components),
        "epochs": outcome.epochs, "checkpoint": outcome.checkpoint,
        "hparams": outcome.hparams,  # The recipe's defaults as resolved for this run.
        "train_minutes": seconds / 60.0,
        "eval_seconds": outcome.eval_seconds.get(prior, 0.0),
        "domain_classifier_test_accuracy": m.get("domain_classifier_test_accuracy"),
        "domain_classifier_id": m.get("domain_classifier_id"),
        **{k: m.get(k) for k in METRIC_KEYS},
        # Only with several sample draws (rows of one-draw reports stay as they were).
        **({"fid_generation_sd": m["fid_generation_sd"]}
           if m.get("fid_generation_sd") is not None else {})}
  return rows


# Each child of a parallel benchmark appends its output here, in its run directory.
RUN_LOG = "benchmark.log"
# Set for each child: read by TensorFlow (intra-op pool) and the BLAS libraries when they load.
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "MKL_NUM_THREADS")


def threads_per_job(jobs: int) -> int:
  """TensorFlow / BLAS threads for each of `jobs` processes sharing this machine's cores."""
  return max(1, (os.cpu_count() or 1) // jobs)


# Training time relative to a VAE's at the small tables' budget (train minutes of
# benchmarks/reproduce/table3_seed1.json, two runs at once); a model not listed counts 1.
# Only orders the work: the longest runs start first, so none is left alone at the end.
RELATIVE_TRAIN_COST = {"two_stage_vae": 5.2, "injflow": 2.7, "injflow_gmm": 2.8,
                       "vae_vamp": 2.7, "maskaae": 2.6, "flexae": 2.5, "vae_iop": 2.4}


def longest_first(tasks: Sequence[Tuple[PlannedRun, Any]]) -> List[List[int]]:
  """Indices of `tasks` grouped by run directory (one child runs a group in order), the
  groups by estimated training cost, largest first; equal costs keep the plan's order."""
  groups: Dict[str, List[int]] = {}
  for i, (run, _) in enumerate(tasks):
    groups.setdefault(run.train_config.workdir, []).append(i)
  def cost(run: PlannedRun) -> float:
    tc = run.train_config
    return (RELATIVE_TRAIN_COST.get(tc.model, 1.0) * tc.epochs
            * (tc.steps_per_epoch or 1))
  return sorted(groups.values(), key=lambda group: -sum(cost(tasks[i][0]) for i in group))


def measure_runs(tasks: Sequence[Tuple[PlannedRun, experiments.EvalRequest]],
                 on_done: Callable[[int, Dict[str, Dict[str, Any]]], None],
                 on_start: Callable[[int], None] = lambda index: None, jobs: int = 1,
                 verbose: Optional[int] = None, say: Callable[[str], None] = say_progress):
  """Measures every (run, request) of `tasks`; on_done(index, rows) as each finishes.

  jobs = 1: one after another in this process, in order. jobs > 1: up to `jobs` child
  processes at once (`python -c` of `run_task_file`), each with threads_per_job(jobs)
  TensorFlow and BLAS threads and its output appended to <workdir>/benchmark.log; tasks
  that share a run directory run one after another in one child; the longest runs start
  first (`longest_first`). on_done is always called in the caller's thread, so reports
  are written by one writer. On the 2-core CPU here it barely pays: four MNIST runs took
  346 s with jobs = 2 against 362 s with jobs = 1 and two threads (benchmarks/README.md);
  machines with more cores than one small run can use should gain more (not measured).

  The first failure stops the others (each keeps its checkpoints: the same command
  resumes) and is raised: ConfigError for bad input found by a child, RunFailed naming
  the run's log otherwise.

  Args:
    tasks: the runs and their evaluation requests.
    on_done: called with the task's index in `tasks` and measure()'s rows.
    on_start: called with the task's index as it starts (from a worker thread when
      jobs > 1, never while another on_start or on_done runs).
    jobs: processes at once (>= 1).
    verbose: Keras progress output of training (jobs = 1; children log epochs only).
    say: where progress lines go.
  """
  if jobs < 1:
    raise ConfigError(f"--jobs={jobs} must be >= 1")
  if jobs == 1:
    for i, (run, request) in enumerate(tasks):
      on_start(i)
      on_done(i, measure(run, request, verbose))
    return
  groups = longest_first(tasks)
  threads = threads_per_job(jobs)
  say(f"{len(tasks)} run(s), {min(jobs, len(groups))} at a time, each in its own process "
      f"with {threads} thread(s); "
      f"each run's output goes to <its run directory>/{RUN_LOG}")
  stop = threading.Event()
  live: Dict[int, subprocess.Popen] = {}
  lock = threading.Lock()
  callbacks = threading.Lock()  # One at a time: their progress lines never interleave.

  def run_group(indices: List[int]):
    out = []
    for i in indices:
      if stop.is_set():
        break
      with callbacks:
        on_start(i)
      rows = _measure_in_child(i, tasks[i], threads, stop, live, lock)
      if rows is not None:
        out.append((i, rows))
    return out

  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    futures = [pool.submit(run_group, indices) for indices in groups]
    try:
      for future in concurrent.futures.as_completed(futures):
        for i, rows in future.result():
          with callbacks:
            on_done(i, rows)
    except BaseException:
      stop.set()
      for f in futures:
        f.cancel()
      with lock:
        for proc in live.values():
          proc.terminate()  # Their checkpoints stay; the next run of the command resumes.
      raise


def _measure_in_child(index: int, task, threads: int, stop: threading.Event,
                      live: Dict[int, "subprocess.Popen"], lock: threading.Lock
                      ) -> Optional[Dict[str, Dict[str, Any]]]:
  """measure() of `task` in a child process; None when stopped before it started."""
  run = task[0]
  workdir = run.train_config.workdir
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, RUN_LOG)
  with tempfile.TemporaryDirectory(prefix="rae_tf_task_") as tmp:
    task_path, result_path = os.path.join(tmp, "task.pkl"), os.path.join(tmp, "rows.json")
    with open(task_path, "wb") as f:
      pickle.dump(task, f)
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (pkg_root, os.environ.get("PYTHONPATH")) if p))
    for name in THREAD_ENV:
      env[name] = str(threads)
    code = ("import sys; from rae_tf import benchmark_runs; "
            "benchmark_runs.run_task_file(sys.argv[1], sys.argv[2])")
    with open(log_path, "a") as log:
      log.write(f"\n==== {experiments.now()}: {run.key} on {run.data_key} ====\n")
      log.flush()
      with lock:
        if stop.is_set():
          return None
        proc = subprocess.Popen([sys.executable, "-c", code, task_path, result_path],
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
        live[index] = proc
      proc.wait()
      log.write(f"==== {experiments.now()}: exit status {proc.returncode} ====\n")
    with lock:
      live.pop(index, None)
    try:
      with open(result_path) as f:
        result = json.load(f)
    except (OSError, ValueError):
      result = {"error": f"exit status {proc.returncode}, no result", "kind": "crash"}
  if "rows" in result:
    return result["rows"]
  if result.get("kind") == "config":
    raise ConfigError(result["error"])
  raise RunFailed(f"{run.key} on {run.data_key} failed ({result['error']}); its output is "
                  f"in {log_path}")


def run_task_file(task_path: str, result_path: str):
  """A parallel benchmark's child: measures the pickled (run, request) of `task_path`
  and writes {"rows": ...} or {"error": one line, "kind": "config" | "crash"} to
  `result_path` (the traceback of a crash goes to this process's output, the run's log).
  """
  with open(task_path, "rb") as f:
    run, request = pickle.load(f)
  try:
    threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
    if threads:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.threading.set_intra_op_parallelism_threads(threads)
    result = {"rows": measure(run, request, verbose=2)}
  except ConfigError as e:
    result = {"error": str(e), "kind": "config"}
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc()
    result = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:300], "kind": "crash"}
  outputs.atomic_write(result_path, json.dumps(result))


def row_name(key: str, prior: str) -> str:
  return key if prior == "trained" else f"{key}+{prior}"



def data_key_of(path: str) -> str:
  """'../shared/data/fashion_mnist.npz' -> 'fashion_mnist'."""
  stem = os.path.splitext(os.path.basename(path))[0]
  return re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_") or "data"


def check_npz(path: str, num_samples: Optional[int], flag: str = "--npz_files"):
  """The npz must hold labelled images (domain FID) and at least num_samples test images.

  Args:
    path: the .npz file.
    num_samples: samples the metrics will draw (None: no check).
    flag: the flag that named the file, for messages.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  try:
    with np.load(path, allow_pickle=False) as f:
      names = set(f.files)
      num_test = f["y_test"].shape[0] if "y_test" in names else 0
  except (OSError, ValueError) as e:
    raise ConfigError(f"{flag}: {path} is not a readable .npz archive ({e})") from None
  missing = {"x_train", "x_test", "y_train", "y_test"} - names
  if missing:
    raise ConfigError(f"{flag}: {path} lacks {sorted(missing)}; the benchmark needs "
                      "labelled images (x_train, x_test, y_train, y_test)")
  if num_samples is not None and num_samples > num_test:
    raise ConfigError(f"--num_samples={num_samples} exceeds the {num_test} test images of "
                      f"{path}; lower it (or leave it unset)")


def check_inputs(features: Optional[str], inception_weights: Optional[str],
                 dirs: Sequence[Tuple[str, str]]):
  """Inception weights (when asked for) and creatable output directories."""
  if features == "inception" and (not inception_weights or
                                  not os.path.isfile(inception_weights)):
    raise ConfigError("Inception FID (--scale=paper or --features=inception) needs "
                      "--inception_weights=PATH of an existing "
                      "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 (see "
                      "README, Evaluating); or use --features=domain")
  for path, flag in dirs:
    outputs.check_creatable_dir(path, flag)



def write_report(out: str, report: Dict[str, Any], markdown: str):
  """<out>.json (JSON-safe) and <out>.md, each atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
  outputs.atomic_write(out + ".json", json.dumps(experiments.json_safe(report), indent=2,
                                                 sort_keys=True))
  outputs.atomic_write(out + ".md", markdown)
