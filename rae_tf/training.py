"""train(config): data -> model -> fit (checkpoints, TensorBoard) -> SavedModel."""
import dataclasses
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from rae_tf import callbacks as rae_callbacks
from rae_tf import data as rae_data
from rae_tf import export as rae_export
from rae_tf import expost
from rae_tf import model_params
from rae_tf import outputs
from rae_tf import prior_refinement
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError, TrainingDiverged
from rae_tf.models import zoo
# Building a run's model and checkpoint is shared with the code that reads runs back; the
# names stay importable from here (training.build_compiled_model, ...).
from rae_tf.runs import build_compiled_model
from rae_tf.runs import CHECKPOINT_CONFIG_KEY as _CONFIG_KEY
from rae_tf.runs import data_config
from rae_tf.runs import make_checkpoint


@dataclasses.dataclass
class TrainResult:
  """What a run produced.

  Attributes:
    model: the trained RegularizedAutoEncoder.
    hparams: the model's resolved part choices and weights.
    history: per-epoch logs of this invocation (empty if nothing was left to train).
    epochs_done: epochs trained in total, including resumed ones.
    export_path: the SavedModel directory, or None if export was disabled.
    workdir: the run directory.
  """
  model: Any
  hparams: Dict[str, Any]
  history: Dict[str, list]
  epochs_done: int
  export_path: Optional[str]
  workdir: str


def configure_cpu_devices(count: int):
  """Splits the host CPU into `count` logical devices (to run MirroredStrategy on a CPU)."""
  if count <= 1:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  current = tf.config.get_logical_device_configuration(cpu)
  if current and len(current) == count:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
  except RuntimeError as e:
    raise ConfigError(f"--cpu_devices={count}: TensorFlow is already initialised with "
                      f"another device layout; set it before anything runs ({e})") from None


def make_strategy(config: TrainConfig) -> tf.distribute.Strategy:
  """The tf.distribute strategy named by --strategy."""
  configure_cpu_devices(config.cpu_devices)
  if config.strategy == "default":
    return tf.distribute.get_strategy()
  if config.strategy == "multi_worker":
    if not os.environ.get("TF_CONFIG"):
      raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                        "(the cluster's workers and this task's index) in every worker")
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = tf.config.list_logical_devices("GPU")
  if gpus:
    return tf.distribute.MirroredStrategy()
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
  return tf.distribute.MirroredStrategy(devices=cpus)


def worker_role(strategy) -> Tuple[bool, int]:
  """(is_chief, task index): the chief writes the run; other workers write to scratch."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
    return True, 0
  task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return task_type == "chief" or (not has_chief and task_id == 0), task_id


def _describe_changes(old: Dict[str, Any], new: Dict[str, Any], keys) -> str:
  """'name: old -> new, ...' for the keys of `keys` whose values differ (absent = None)."""
  return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(keys)
                   if old.get(k) != new.get(k))


def _changed_fields(old: Dict[str, Any], new: Dict[str, Any]) -> str:
  """'name: old -> new, ...' for fields that may not change when resuming ('' if none).

  Both sides are normalised through TrainConfig (a run written before the model weights
  became a sub-config compares equal to the same flags now); a weight set on one side
  only counts as changed (None on the other side).
  """
  try:
    old = TrainConfig.from_dict(old).to_dict()
  except (ConfigError, TypeError):
    pass  # Written by another rae_tf version: compare what both have.
  weights = set(model_params.PARAMS)
  keys = {k for k in new if k in old or k in weights} | (set(old) & weights)
  return _describe_changes(old, new, keys - set(TrainConfig.RESUMABLE_CHANGES))


def check_workdir(config: TrainConfig):
  """Refuses to resume a workdir that was trained with a different configuration.

  Reads `config.json`; the configuration stored inside the checkpoints is checked again
  after the model is built (`_restore`), so deleting config.json does not bypass it.
  """
  path = os.path.join(config.workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f"--workdir={config.workdir}: unreadable config.json ({e}); "
                      "remove it or use a new --workdir") from None
  detail = _changed_fields(old, config.to_dict())
  if detail:
    raise ConfigError(f"--workdir={config.workdir} holds a run with another configuration "
                      f"({detail}); use a new --workdir or the same flags to resume")


def check_outputs(config: TrainConfig):
  """Raises ConfigError unless the workdir and export root can be created and written."""
  outputs.check_creatable_dir(config.workdir, "--workdir")
  if config.export_dir:
    rae_export.check_export_root(config.export_dir)  # The check export itself runs.


def _say(msg: str):
  print(f"[rae_tf] {msg}", flush=True)


def train(config: TrainConfig, verbose: Optional[int] = None,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainResult:
  """Trains (or resumes) one run and exports it.

  Guarantees: the same config (and --seed) on the same machine gives bit-identical
  checkpoints on a CPU; a run killed at any moment and restarted continues from its last
  checkpoint to the weights of an uninterrupted run; a non-finite loss or weight stops it
  with TrainingDiverged before anything non-finite is saved or exported; one process at a
  time writes a workdir.

  Args:
    config: the run's configuration.
    verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch); default: a bar
      on a terminal, one line per epoch otherwise.
    callbacks: extra Keras callbacks, called after the run's own (divergence guard,
      TensorBoard, checkpoints) in every epoch, e.g. a timer or a custom logger.
  Returns:
    A TrainResult.
  Raises:
    ConfigError: for bad input, before anything is written.
    TrainingDiverged: a loss or weight became non-finite.
  """
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  strategy = make_strategy(config)
  replicas = strategy.num_replicas_in_sync
  if config.batch_size % replicas:
    raise ConfigError(f"--batch_size={config.batch_size} must be divisible by the "
                      f"{replicas} replicas of --strategy={config.strategy}")
  check_outputs(config)
  source = rae_data.get_data_source(data_config(config))
  spec = source.spec
  if spec.num_train < config.batch_size:
    raise ConfigError(f"--batch_size={config.batch_size} exceeds the {spec.num_train} "
                      f"training examples of --dataset={config.dataset}; lower it")
  check_workdir(config)
  model, hparams = build_compiled_model(config, spec, strategy)

  # Multi-worker: every worker takes part in each save (collective ops), but only the chief
  # writes the run; the others write to a scratch copy that is deleted at the end. All
  # restore from the chief's checkpoints (a shared file system).
  is_chief, task_id = worker_role(strategy)
  restore_dir = os.path.join(config.workdir, "checkpoints")
  scratch = None
  if not is_chief:
    scratch = tempfile.mkdtemp(prefix=f"rae_tf_worker{task_id}_")
    config = config.replace(workdir=os.path.join(scratch, "run"),
                            export_dir=os.path.join(scratch, "export") if config.export_dir
                            else "")
  created = not os.path.exists(config.workdir)
  lock = outputs.DirectoryLock(config.workdir, "--workdir")
  try:
    lock.acquire()
    return _train(config, strategy, source, model, hparams, restore_dir, verbose,
                  is_chief, callbacks)
  except ConfigError:
    if created and not os.path.exists(os.path.join(config.workdir, "config.json")):
      shutil.rmtree(config.workdir, ignore_errors=True)  # Refused: leave nothing behind.
    raise
  finally:
    lock.release()
    if scratch:
      shutil.rmtree(scratch, ignore_errors=True)


def _changed_hparams(path: str, hparams: Dict[str, Any]) -> str:
  """'name: old -> new, ...' between a run's hparams.json and the resolved `hparams` ('' if
  equal or if the file is absent or unreadable; a key on one side only shows as None)."""
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError):
    return ""
  new = json.loads(json.dumps(hparams))  # As the file holds them (tuples -> lists).
  return _describe_changes(old, new, set(old) | set(new))


def _restore(checkpoint, model, epoch, restore_dir: str, config: TrainConfig):
  """Restores the latest checkpoint, refusing one written for another configuration."""
  latest = tf.train.latest_checkpoint(restore_dir)
  if not latest:
    return None
  workdir = os.path.dirname(restore_dir)
  try:
    stored = tf.train.load_checkpoint(latest).get_tensor(_CONFIG_KEY)
  except (tf.errors.OpError, ValueError):
    stored = None  # Written by an older rae_tf: rely on the structural check below.
  if stored is not None:
    detail = _changed_fields(json.loads(stored), config.to_dict())
    if detail:
      raise ConfigError(f"--workdir={workdir}: its checkpoints were trained with another "
                        f"configuration ({detail}); use a new --workdir or the same flags "
                        "to resume")
  try:
    # The networks and optimizers must match exactly; bookkeeping added by later rae_tf
    # versions (stored config, refinement state) may be absent and keeps its default.
    # expect_partial: the bookkeeping this structural check leaves out is restored next.
    (make_checkpoint(model, epoch).restore(latest).assert_existing_objects_matched()
     .expect_partial())
    checkpoint.restore(latest).expect_partial()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ConfigError(f"--workdir={workdir}: checkpoint {latest} does not match the model "
                      f"these flags build ({str(e).splitlines()[0][:100]}...); use a new "
                      "--workdir") from None
  return latest


def _train(config, strategy, source, model, hparams, restore_dir, verbose, is_chief,
           extra_callbacks=()):
  """The part of train() after validation: restore, write the run, fit, export."""
  spec = source.spec
  replicas = strategy.num_replicas_in_sync
  with strategy.scope():
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
  # The configuration travels inside every checkpoint (checked on resume).
  run_config = tf.Variable(config.to_json(), dtype=tf.string, trainable=False,
                           name="run_config")
  plateau = (rae_callbacks.PlateauHalving(model.optimizer, config.plateau_patience)
             if config.plateau_patience else None)
  # The global step at which the prior was refined (-1: never), and how many steps.
  refined = (tf.Variable(-1, dtype=tf.int64, trainable=False, name="prior_refined_at"),
             tf.Variable(0, dtype=tf.int64, trainable=False, name="prior_refined_steps"))
  checkpoint = make_checkpoint(model, epoch, run_config=run_config,
                               prior_refined_at=refined[0], prior_refined_steps=refined[1],
                               **(plateau.state() if plateau else {}))
  latest = _restore(checkpoint, model, epoch, restore_dir, config)
  run_config.assign(config.to_json())
  steps = config.steps_per_epoch or spec.num_train // config.batch_size
  start_step = int(model.optimizer.iterations.numpy())
  initial_epoch, offset = divmod(start_step, steps)
  trains = initial_epoch < config.epochs
  hparams_path = os.path.join(config.workdir, "hparams.json")
  if latest:
    _say(f"resumed from {latest} (step {start_step}, epoch {int(epoch.numpy())})")
    changed = _changed_hparams(hparams_path, hparams)
    if changed and trains:
      _say(f"warning: the model's resolved hyper-parameters differ from the run's "
           f"({changed}): automatic values follow the new --epochs, or this rae_tf's "
           "defaults changed since the run started; it continues with the new values "
           "(set them as flags, or use a new --workdir, to keep the run's)")
    elif changed:
      _say(f"note: this rae_tf resolves other hyper-parameters than the finished run's "
           f"hparams.json ({changed}); the run and its file are left as trained")
  # Every check passed: only now write the run's files (hparams.json: what trains next).
  outputs.atomic_write(os.path.join(config.workdir, "config.json"), config.to_json())
  if trains or not latest:
    outputs.atomic_write(hparams_path, json.dumps(hparams, indent=2, sort_keys=True))
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(config.workdir, "checkpoints"),
                                       max_to_keep=3)
  logdir = os.path.join(config.workdir, "tensorboard")
  if start_step == 0:
    rae_callbacks.write_hparams(logdir, {**config.to_dict(), **hparams})
  sample_x, _ = source.arrays("test", limit=min(config.num_image_samples, spec.num_test))

  def last_good():
    kept = manager.latest_checkpoint or latest
    return (f"the last good checkpoint {kept} is kept" if kept
            else "no checkpoint was written")

  guard = rae_callbacks.DivergenceGuard(checkpoint_variables(model), last_good)
  saver = rae_callbacks.RunCheckpoint(manager, epoch, guard, config.checkpoint_every_steps)
  cbs = [guard]
  # --lr_drops (every player's), else the recipe's own drop (MaskAAE's, to the players it
  # names), unless the plateau schedule runs.
  drops, dropped = config.parsed_lr_drops(), lambda name: True
  if not drops and not config.plateau_patience:
    drops = zoo.rate_drops(hparams)
    dropped = functools.partial(zoo.rate_drop_applies, hparams)
  if drops:
    cbs.append(rae_callbacks.LearningRateDrops(drops, _base_rates(model, config, dropped)))
  mask_path = None
  if model.mask_values() is not None:  # Before the logger, which draws the file.
    mask_path = os.path.join(config.workdir, rae_callbacks.MASK_HISTORY_FILE)
    cbs.append(rae_callbacks.MaskHistoryRecorder(mask_path))
  cbs.append(rae_callbacks.TensorBoardLogger(logdir, sample_x, spec.is_image,
                                             config.log_every_steps, config.num_image_samples,
                                             mask_history_path=mask_path))
  if plateau:
    cbs.append(plateau)  # Before the checkpoint, which holds its state.
  cbs.append(saver)
  cbs.extend(extra_callbacks)

  history: Dict[str, list] = {}
  if trains:
    _say(f"training {config.model} on {config.dataset} {spec.shape} "
         f"for epochs {initial_epoch + 1}..{config.epochs}, {replicas} replica(s); "
         f"TensorBoard: tensorboard --logdir {logdir}")
    if verbose is None:
      verbose = (1 if sys.stdout.isatty() else 2) if is_chief else 0
    # A run resumed mid-epoch first finishes that epoch's remaining steps.
    segments = []
    if offset:
      segments.append((initial_epoch, initial_epoch + 1, steps - offset))
      initial_epoch += 1
    if initial_epoch < config.epochs:
      segments.append((initial_epoch, config.epochs, steps))
    for first, end, seg_steps in segments:
      train_ds = source.training_stream(config.batch_size, seed=config.seed,
                                        start_step=int(model.optimizer.iterations.numpy()))
      with warnings.catch_warnings():
        # Keras warns that fit's shuffle=True is ignored for a tf.data input: we shuffle there.
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        fit = model.fit(train_ds, epochs=end, initial_epoch=first, steps_per_epoch=seg_steps,
                        callbacks=cbs, verbose=verbose)
      for name, values in fit.history.items():
        history.setdefault(name, []).extend(values)
  else:
    _say(f"{config.workdir} already holds {initial_epoch} epochs (>= --epochs={config.epochs})")

  if config.prior_refine_steps:
    _refine_prior(model, source, config, refined, manager)

  export_path = None
  if config.export_dir:
    step = int(model.optimizer.iterations.numpy())
    export_path = _export_once(model, config, spec, step, _refined_steps(refined, step))
  kind = zoo.MODELS.get(config.model).expost
  if kind and is_chief:  # One-command recipes: RAE + GMM, the 2-stage VAE.
    _fit_expost_once(config, kind)
  if is_chief:
    _say(f"done: {int(epoch.numpy())} epochs in {config.workdir} (checkpoints/, "
         f"config.json); view: tensorboard --logdir {logdir}")
  # A non-chief worker's workdir and export were scratch copies, deleted by train().
  return TrainResult(model=model, hparams=hparams, history=history,
                     epochs_done=int(epoch.numpy()),
                     export_path=export_path if is_chief else None,
                     workdir=config.workdir if is_chief else None)


def _refined_steps(refined, step: int) -> int:
  """Refinement steps the checkpoint holds for training step `step` (0 if its refinement
  belongs to an earlier step: more training makes the refined prior stale)."""
  refined_at, done = refined
  return int(done.numpy()) if int(refined_at.numpy()) == step else 0


def _refine_prior(model, source, config: TrainConfig, refined, manager):
  """Fits the learned prior to the final codes up to --prior_refine_steps refinement steps.

  `refined` = (global step at which it was refined, refinement steps done), both in the
  checkpoint: a finished refinement is not repeated, a larger --prior_refine_steps on a
  finished run continues it, and a killed one restarts from the last checkpoint.
  """
  refined_at, done = refined
  step = int(model.optimizer.iterations.numpy())
  start = _refined_steps(refined, step)
  if start >= config.prior_refine_steps:
    return
  _say(f"refining the prior on the final codes, steps {start + 1}..{config.prior_refine_steps}"
       " (auto-encoder frozen) ...")
  codes = prior_refinement.encode_all(
      model, source.train_dataset(500, shuffle=False, drop_remainder=False))
  prior_refinement.refine_prior(model, codes, config.prior_refine_steps, config.batch_size,
                                config.seed, start=start,
                                half_life=config.prior_refine_half_life, say=_say)
  bad = rae_callbacks.non_finite_variables(checkpoint_variables(model))
  if bad:
    raise TrainingDiverged(f"prior refinement left non-finite weights in {bad[0]}; nothing "
                           "saved or exported")
  refined_at.assign(step)
  done.assign(config.prior_refine_steps)
  manager.save(checkpoint_number=step)


def checkpoint_variables(model):
  """The model's weights, then its optimizers' variables (for finiteness checks)."""
  variables = list(model.weights) + list(model.optimizer.variables)
  for opt in model.extra_optimizers.values():
    variables += list(opt.variables)
  return variables


def _base_rates(model, config, include=lambda name: True):
  """The configured (undecayed) rate of every player `include(name)` accepts; a resumed
  optimizer holds a decayed one."""
  return {p.optimizer: (config.learning_rate if p.optimizer is model.optimizer
                        else p.learning_rate) for p in model.players if include(p.name)}


def _fit_expost_once(config: TrainConfig, kind: str):
  """Fits the recipe's ex-post prior to the final codes (and exports <name>_<kind>), unless
  the run already holds that fit (a re-run of a finished run; expost.fit_for_run_once)."""
  fitted, path = expost.fit_for_run_once(config.workdir, kind,
                                         export_dir=config.export_dir or None, seed=config.seed)
  if fitted and path:
    _say(f"SavedModel sampling the ex-post {kind} prior: {path}")


def _export_once(model, config: TrainConfig, spec, step: int, refined_steps: int) -> str:
  """Exports unless this workdir already exported the model of the same step and the same
  prior refinement (a refinement continued on a finished run exports the new prior).

  Raises:
    TrainingDiverged: the weights are not all finite (a divergence never ships).
  """
  record = os.path.join(config.workdir, "export.json")
  if os.path.exists(record):
    with open(record) as f:
      last = json.load(f)
    if (last.get("step") == step and last.get("prior_refined_steps", 0) == refined_steps
        and os.path.isdir(last.get("path", ""))):
      _say(f"SavedModel of step {step} already at {last['path']}")
      return last["path"]
  bad = rae_callbacks.non_finite_variables(model.weights)
  if bad:
    raise TrainingDiverged(f"not exporting: non-finite weights in {', '.join(bad[:3])}")
  _say(f"exporting the SavedModel under {config.export_dir} ...")
  start = time.time()
  path = rae_export.export_saved_model(model, config.export_dir, config.run_name,
                                       spec.is_image)
  outputs.atomic_write(record, json.dumps({"path": path, "step": step,
                                           "prior_refined_steps": refined_steps}))
  _say(f"SavedModel ({time.time() - start:.0f} s): {path}\n  try: saved_model_cli run --dir {path} --tag_set serve "
       f"--signature_def serving_default --input_exprs 'seed=[1,2,3]'")
  return path
