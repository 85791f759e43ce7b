"""train(config): data -> model -> fit (checkpoints, TensorBoard) -> SavedModel."""
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, Optional, Tuple

import keras
import tensorflow as tf

from rae_tf import callbacks as rae_callbacks
from rae_tf import data as rae_data
from rae_tf import export as rae_export
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError
from rae_tf.models import zoo


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


def data_config(config: TrainConfig) -> "rae_data.DataConfig":
  return rae_data.DataConfig(name=config.dataset, data_dir=config.data_dir,
                             true_latent_dim=config.true_latent_dim,
                             ambient_dim=config.ambient_dim,
                             num_examples=config.num_examples, seed=config.seed)


def check_workdir(config: TrainConfig):
  """Refuses to resume a workdir that was trained with a different configuration."""
  path = os.path.join(config.workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f"--workdir={config.workdir}: unreadable config.json ({e}); "
                      "remove it or use a new --workdir") from None
  new = config.to_dict()
  changed = sorted(k for k in new if k not in TrainConfig.RESUMABLE_CHANGES
                   and k in old and old[k] != new[k])
  if changed:
    detail = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in changed)
    raise ConfigError(f"--workdir={config.workdir} holds a run with another configuration "
                      f"({detail}); use a new --workdir or the same flags to resume")


def build_compiled_model(config: TrainConfig, spec, strategy):
  """Builds the model, its networks and every optimizer inside the strategy scope."""
  with strategy.scope():
    model, hparams = zoo.build_model(config, spec.shape, spec.is_image)
    model.build_all()
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate,
                                                  beta_1=config.adam_beta_1))
  return model, hparams


def make_checkpoint(model, epoch: tf.Variable) -> tf.train.Checkpoint:
  optimizers = {f"optimizer_{name}": opt for name, opt in model.extra_optimizers.items()}
  return tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch, **optimizers)


def _say(msg: str):
  print(f"[rae_tf] {msg}", flush=True)


def train(config: TrainConfig, verbose: Optional[int] = None) -> TrainResult:
  """Trains (or resumes) one run and exports it.

  Args:
    config: the run's configuration.
    verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch); default: a bar
      on a terminal, one line per epoch otherwise.
  Returns:
    A TrainResult.
  Raises:
    ConfigError: for bad input, before anything is written.
  """
  strategy = make_strategy(config)
  replicas = strategy.num_replicas_in_sync
  if config.batch_size % replicas:
    raise ConfigError(f"--batch_size={config.batch_size} must be divisible by the "
                      f"{replicas} replicas of --strategy={config.strategy}")
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
  try:
    return _train(config, strategy, source, model, hparams, restore_dir, verbose,
                  is_chief)
  finally:
    if scratch:
      shutil.rmtree(scratch, ignore_errors=True)


def _train(config, strategy, source, model, hparams, restore_dir, verbose, is_chief):
  """The part of train() after validation: write the run, restore, fit, export."""
  spec = source.spec
  replicas = strategy.num_replicas_in_sync
  os.makedirs(config.workdir, exist_ok=True)
  with open(os.path.join(config.workdir, "config.json"), "w") as f:
    f.write(config.to_json())
  with open(os.path.join(config.workdir, "hparams.json"), "w") as f:
    json.dump(hparams, f, indent=2, sort_keys=True)

  with strategy.scope():
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
  checkpoint = make_checkpoint(model, epoch)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(config.workdir, "checkpoints"),
                                       max_to_keep=3)
  latest = tf.train.latest_checkpoint(restore_dir)
  if latest:
    try:
      checkpoint.restore(latest).assert_existing_objects_matched()
    except AssertionError as e:
      raise ConfigError(f"--workdir={os.path.dirname(restore_dir)}: checkpoint {latest} "
                        "does not match the model this rae_tf version builds "
                        f"({str(e)[:100]}...); use a new --workdir") from None
    _say(f"resumed from {latest} (epoch {int(epoch.numpy())})")
  initial_epoch = int(epoch.numpy())

  logdir = os.path.join(config.workdir, "tensorboard")
  if initial_epoch == 0:
    rae_callbacks.write_hparams(logdir, {**config.to_dict(), **hparams})
  sample_x, _ = source.arrays("test", limit=min(config.num_image_samples, spec.num_test))
  cbs = [
      rae_callbacks.EpochCheckpoint(manager, epoch),
      rae_callbacks.TensorBoardLogger(logdir, sample_x, spec.is_image,
                                      config.log_every_steps, config.num_image_samples),
  ]
  if config.lr_drops:
    cbs.append(rae_callbacks.LearningRateDrops(config.parsed_lr_drops(),
                                               _base_rates(model, config)))
  if config.plateau_patience:
    # RAE's schedule: halve the auto-encoder's rate when the epoch loss stops improving.
    cbs.append(keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5,
                                                 patience=config.plateau_patience))
  history: Dict[str, list] = {}
  if initial_epoch < config.epochs:
    train_ds = source.training_stream(config.batch_size, seed=config.seed,
                                      start_epoch=initial_epoch)
    steps = config.steps_per_epoch or spec.num_train // config.batch_size
    _say(f"training {config.model} on {config.dataset} {spec.shape} "
         f"for epochs {initial_epoch + 1}..{config.epochs}, {replicas} replica(s); "
         f"TensorBoard: tensorboard --logdir {logdir}")
    if verbose is None:
      verbose = (1 if sys.stdout.isatty() else 2) if is_chief else 0
    with warnings.catch_warnings():
      # Keras warns that fit's shuffle=True is ignored for a tf.data input: we shuffle there.
      warnings.filterwarnings("ignore", message=".*shuffle=True.*")
      fit = model.fit(train_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=steps, callbacks=cbs, verbose=verbose)
    history = fit.history
  else:
    _say(f"{config.workdir} already holds {initial_epoch} epochs (>= --epochs={config.epochs})")

  export_path = None
  if config.export_dir:
    export_path = _export_once(model, config, spec, int(epoch.numpy()))
  if is_chief:
    _say(f"done: {int(epoch.numpy())} epochs in {config.workdir} (checkpoints/, "
         f"config.json); view: tensorboard --logdir {logdir}")
  # A non-chief worker's workdir and export were scratch copies, deleted by train().
  return TrainResult(model=model, hparams=hparams, history=history,
                     epochs_done=int(epoch.numpy()),
                     export_path=export_path if is_chief else None,
                     workdir=config.workdir if is_chief else None)


def _base_rates(model, config):
  """The configured (undecayed) rates; a resumed optimizer holds an already decayed one."""
  rates = {model.optimizer: config.learning_rate}
  for name, opt in model.extra_optimizers.items():
    term = model.terms[model.term_names.index(name)]
    rates[opt] = term.learning_rate
  return rates


def _export_once(model, config: TrainConfig, spec, epochs_done: int) -> str:
  """Exports unless this workdir already exported the same number of epochs."""
  record = os.path.join(config.workdir, "export.json")
  if os.path.exists(record):
    with open(record) as f:
      last = json.load(f)
    if last.get("epochs") == epochs_done and os.path.isdir(last.get("path", "")):
      _say(f"SavedModel of epoch {epochs_done} already at {last['path']}")
      return last["path"]
  _say(f"exporting the SavedModel under {config.export_dir} ...")
  start = time.time()
  path = rae_export.export_saved_model(model, config.export_dir, config.run_name,
                                       spec.is_image)
  with open(record, "w") as f:
    json.dump({"path": path, "epochs": epochs_done}, f)
  _say(f"SavedModel ({time.time() - start:.0f} s): {path}\n  try: saved_model_cli run --dir {path} --tag_set serve "
       f"--signature_def serving_default --input_exprs 'seed=[1,2,3]'")
  return path
