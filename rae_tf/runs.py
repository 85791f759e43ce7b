"""A training run directory: its files, rebuilding its model, reading it back.

A run (`scripts/train.py --workdir=RUN`) is `config.json` (the TrainConfig),
`checkpoints/` (model, optimizers, epoch counter and the config again, see
`make_checkpoint`) and, once fitted, one ex-post prior file per kind (`EXPOST_FILES`).
Training writes runs (`rae_tf.training`, which builds its model and checkpoint here);
evaluation, ex-post priors and re-export read them (`load_run`), and compute with the
model through a `Generator`, which also wraps an exported SavedModel.

This module sits below training, evaluation and expost and imports none of them.
"""
import json
import os
from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rae_tf import data as rae_data
from rae_tf import eval_config
from rae_tf import outputs
from rae_tf import players
from rae_tf import precision
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError
from rae_tf.models import zoo

# The file names live in the light eval_config (scripts check them before TensorFlow
# loads); re-exported here as the run directory's vocabulary.
from rae_tf.eval_config import CONFIG_FILE  # pylint: disable=unused-import
from rae_tf.eval_config import EXPOST_FILES  # pylint: disable=unused-import
from rae_tf.eval_config import GMM_FILE  # pylint: disable=unused-import

CHECKPOINT_DIR = "checkpoints"
# The run's configuration is stored inside every checkpoint under this name.
CHECKPOINT_CONFIG_KEY = "run_config/.ATTRIBUTES/VARIABLE_VALUE"


def data_config(config: TrainConfig) -> "rae_data.DataConfig":
  """The DataConfig of the data a run trains on."""
  return rae_data.DataConfig(name=config.dataset, data_dir=config.data_dir,
                             true_latent_dim=config.true_latent_dim,
                             ambient_dim=config.ambient_dim,
                             num_examples=config.num_examples, seed=config.seed)


def build_compiled_model(config: TrainConfig, spec, strategy):
  """Builds the model, its networks and every optimizer inside the strategy scope.

  Seeds every generator first (Python, NumPy, TensorFlow, Keras), so the initial weights
  of every network are a function of --seed. With --mixed_precision the networks are
  constructed under its Keras dtype policy (float32 variables: the same initial weights)
  and every player's optimizer is wrapped for it (`rae_tf.precision`).

  Args:
    config: the run's configuration.
    spec: the data's DataSpec (shape, is_image, num_train).
    strategy: the tf.distribute strategy whose scope holds the variables.
  Returns:
    (the compiled RegularizedAutoEncoder, its resolved hparams dict).
  """
  keras.utils.set_random_seed(config.seed)
  with strategy.scope():
    total_steps = config.epochs * (config.steps_per_epoch
                                   or max(1, spec.num_train // config.batch_size))
    with precision.policy_scope(config.mixed_precision):
      model, hparams = zoo.build_model(config, spec.shape, spec.is_image, total_steps)
      model.build_all()  # Some parts construct their networks when built.
    optimizer = players.make_optimizer(hparams["optimizer"], config.learning_rate,
                                       config.adam_beta_1, name="optimizer")
    model.compile(optimizer=precision.wrap_optimizer(optimizer, config.mixed_precision),
                  mixed_precision=config.mixed_precision)
  return model, hparams


def make_checkpoint(model, epoch: tf.Variable, **extra) -> tf.train.Checkpoint:
  """The run's checkpoint: model, every optimizer, the epoch counter and `extra` objects.

  The main optimizer's `iterations` is the global step and the data position.
  """
  optimizers = {f"optimizer_{name}": opt for name, opt in model.extra_optimizers.items()}
  return tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch,
                             **optimizers, **extra)


def checkpoint_identity(workdir: str) -> str:
  """'ckpt-<step>:<digest of its index>' of the run's latest checkpoint ('' if none).

  A checkpoint can be rewritten under the same name (e.g. after --prior_refine_steps): its
  index file, which holds every tensor's checksum, tells the weights apart.
  """
  latest = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
  if latest is None:
    return ""
  return f"{os.path.basename(latest)}:{outputs.file_digest(latest + '.index')}"


def load_run(workdir: str):
  """(model, TrainConfig, epochs done, DataSource) of a run, from its latest checkpoint.

  Raises:
    ConfigError: workdir is not a run, has no checkpoint, or its checkpoint does not match
      the model this rae_tf version builds from its config.json.
  """
  path = eval_config.check_run_dir(workdir)
  with open(path) as f:
    config = TrainConfig.from_dict(json.load(f)).replace(strategy="default", cpu_devices=0)
  latest = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
  if latest is None:
    raise ConfigError(f"--workdir={workdir} has no checkpoint yet; train at least one epoch")
  source = rae_data.get_data_source(data_config(config))
  model, _ = build_compiled_model(config, source.spec, tf.distribute.get_strategy())
  epoch = tf.Variable(0, dtype=tf.int64)
  status = make_checkpoint(model, epoch).restore(latest)
  try:
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise ConfigError(f"--workdir={workdir}: checkpoint {latest} does not match the model "
                      f"this rae_tf version builds from its config.json ({str(e)[:120]}...); "
                      "evaluate its SavedModel with --export_dir instead") from None
  # The checkpoint may hold more than evaluation restores (e.g. the run's config): no
  # "unrestored values" warnings for those.
  status.expect_partial()
  return model, config, int(epoch.numpy()), source


def batched(fn, x, batch_size):
  """fn over x in batches, outputs (or tuples of outputs) concatenated."""
  outs = [fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
  if isinstance(outs[0], tuple):
    return tuple(np.concatenate(parts) for parts in zip(*outs))
  return np.concatenate(outs)


class Generator:
  """The four operations evaluation needs, from a Keras model or a SavedModel."""

  latent_dim: int
  mask_values: Optional[np.ndarray] = None

  def sample(self, seeds: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    raise NotImplementedError

  def encode(self, x: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def decode(self, z: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def reconstruct(self, x: np.ndarray) -> np.ndarray:
    raise NotImplementedError


class KerasGenerator(Generator):
  """A RegularizedAutoEncoder restored from a training run."""

  def __init__(self, model):
    self.model = model
    self.latent_dim = model.latent_dim
    self._sample = tf.function(model.sample_from_seeds, reduce_retracing=True)
    self._encode = tf.function(model.encode, reduce_retracing=True)
    self._decode = tf.function(model.decode, reduce_retracing=True)
    self._reconstruct = tf.function(model.reconstruct, reduce_retracing=True)
    mask_fn = getattr(model, "mask_values", None)
    mask = mask_fn() if callable(mask_fn) else None  # None: a model without a mask.
    self.mask_values = None if mask is None else np.asarray(mask)

  def sample(self, seeds):
    images, z = self._sample(tf.constant(seeds, tf.int64))
    return images.numpy(), z.numpy()

  def encode(self, x):
    return self._encode(tf.constant(x)).numpy()

  def decode(self, z):
    return self._decode(tf.constant(z, tf.float32)).numpy()

  def reconstruct(self, x):
    return self._reconstruct(tf.constant(x)).numpy()


class SavedModelGenerator(Generator):
  """An exported SavedModel, through its serving signatures."""

  def __init__(self, path: str):
    eval_config.check_export_dir(path)
    self.loaded = tf.saved_model.load(path)
    sig = self.loaded.signatures
    missing = {"serving_default", "encode", "decode", "reconstruct"} - set(sig)
    if missing:
      raise ConfigError(f"--export_dir={path} lacks signatures {sorted(missing)}; export it "
                        "with rae_tf (scripts/train.py)")
    self._sig = sig
    self.key = [k for k in sig["decode"].structured_outputs][0]
    self.latent_dim = int(sig["decode"].structured_input_signature[1]["latent"].shape[-1])

  def sample(self, seeds):
    out = self._sig["serving_default"](seed=tf.constant(seeds, tf.int64))
    return out[self.key].numpy(), out["latent"].numpy()

  def encode(self, x):
    return self._sig["encode"](**{self.key: tf.constant(x)})["latent"].numpy()

  def decode(self, z):
    return self._sig["decode"](latent=tf.constant(z, tf.float32))[self.key].numpy()

  def reconstruct(self, x):
    return self._sig["reconstruct"](**{self.key: tf.constant(x)})[self.key].numpy()
