"""Keras callbacks of a training run: checkpoints and TensorBoard logging.

TensorBoard logging is done here, from callbacks with an explicit step, not with
`tf.summary` inside `train_step` (there the step is frozen at trace time).
"""
import functools
import json
import math
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rae_tf import outputs
from rae_tf.errors import TrainingDiverged
from rae_tf.metrics.latent import MASK_THRESHOLD
from rae_tf.images import tile_images
from rae_tf.viz import plots


def _floating(variables) -> list:
  """The floating-point variables (integer counters cannot hold a NaN)."""
  return [v for v in variables if tf.as_dtype(v.dtype).is_floating]


def _finite_flags(variables) -> tf.Tensor:
  """One boolean per variable: all its values are finite."""
  return tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in variables])


def _names_not_ok(variables, flags) -> List[str]:
  """Names of the variables whose flag is False."""
  return [v.path if hasattr(v, "path") else v.name for v, ok in zip(variables, flags)
          if not ok]


def non_finite_variables(variables) -> List[str]:
  """Names of the variables holding a NaN or an infinity (one fused check, no copies)."""
  variables = _floating(variables)
  if not variables:
    return []
  return _names_not_ok(variables, _finite_flags(variables).numpy())


class DivergenceGuard(keras.callbacks.Callback):
  """Stops training at the first step whose losses or weights are not finite.

  The step's logs are running means over the epoch, so one non-finite step makes them
  non-finite at once. Raising (rather than `stop_training`) skips every later callback of
  the step and of the epoch: no checkpoint and no export are written after it. Weights
  (and optimizer slots) are checked by `check_variables`, which the checkpoint callback
  calls before every save.

  Args:
    variables: every variable the run's checkpoint holds.
    last_good: a callable returning a description of the last good checkpoint.
  """

  def __init__(self, variables, last_good):
    super().__init__()
    self.variables = _floating(variables)
    self.last_good = last_good
    self._epoch = 0
    # The check before every save, compiled once: eagerly it dispatches two ops per
    # variable (~21 ms for the quickstart's 112 variables, ~2.5 ms compiled).
    self._finite_flags = tf.function(functools.partial(_finite_flags, self.variables))

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch

  def _fail(self, what: str):
    step = int(self.model.optimizer.iterations.numpy())
    raise TrainingDiverged(
        f"training diverged at step {step} (epoch {self._epoch + 1}): {what}; stopped "
        f"without saving or exporting; {self.last_good()}. Lower --learning_rate or "
        "change the weights of the objective")

  def on_train_batch_end(self, batch, logs=None):
    bad = [k for k, v in (logs or {}).items() if not math.isfinite(float(v))]
    if bad:
      terms = [k for k in bad if k != "loss"] or bad
      self._fail("non-finite " + ", ".join(f"{k}={float(logs[k])}" for k in terms))

  def check_variables(self):
    bad = (_names_not_ok(self.variables, self._finite_flags().numpy()) if self.variables
           else [])
    if bad:
      self._fail(f"non-finite weights in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")


class RunCheckpoint(keras.callbacks.Callback):
  """Saves the run's tf.train.Checkpoint every `every_steps` steps and after each epoch.

  Checkpoints are numbered by the global step (the main optimizer's `iterations`), which
  is also the data position: the training stream's k-th batch depends only on (seed, k).
  A checkpoint whose variables are not all finite is never written.

  Args:
    manager: a tf.train.CheckpointManager over the run's checkpoint.
    epoch: the tf.Variable counting finished epochs, tracked by the checkpoint.
    guard: the DivergenceGuard whose `check_variables` runs before every save.
    every_steps: also save every this many steps (0 = only after each epoch).
  """

  def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable,
               guard: DivergenceGuard, every_steps: int = 0):
    super().__init__()
    self.manager = manager
    self.epoch = epoch
    self.guard = guard
    self.every_steps = int(every_steps)
    self._last_step = None

  def save(self):
    step = int(self.model.optimizer.iterations.numpy())
    if step == self._last_step:
      return
    self.guard.check_variables()
    self.manager.save(checkpoint_number=step)
    self._last_step = step

  def on_train_batch_end(self, batch, logs=None):
    if self.every_steps and int(self.model.optimizer.iterations.numpy()) % self.every_steps == 0:
      self.save()

  def on_epoch_end(self, epoch, logs=None):
    self.epoch.assign(epoch + 1)
    self.save()


class TensorBoardLogger(keras.callbacks.Callback):
  """Writes per-step losses, per-epoch losses, image grids and latent histograms.

  Per-step values are recovered from the epoch's running means that `train_step` returns:
  the mean over the last `log_every_steps` steps is (k * mean_k - j * mean_j) / (k - j).

  Args:
    logdir: the run's TensorBoard directory (a "train" sub-writer is used).
    sample_x: a few test examples for reconstructions and latent histograms.
    is_image: whether to write image grids.
    log_every_steps: how often to write per-step losses.
    num_samples: prior samples in the sample grid (fixed seeds 0..n-1, so grids are
      comparable across epochs).
    mask_history_path: a model with a mask: the file `MaskHistoryRecorder` keeps (listed
      before this callback), drawn as the mask over the whole run, resumes included.
  """

  def __init__(self, logdir: str, sample_x: np.ndarray, is_image: bool,
               log_every_steps: int = 20, num_samples: int = 64,
               mask_history_path: Optional[str] = None):
    super().__init__()
    self.writer = tf.summary.create_file_writer(logdir)
    self.sample_x = sample_x
    self.is_image = is_image
    self.log_every_steps = log_every_steps
    self.num_samples = num_samples
    self._last = (0, None)  # (batch count in epoch, logs) at the last write.
    self._epoch_start = time.time()
    self.mask_history_path = mask_history_path
    self._snapshot = None  # The per-epoch tf.function, built at the first epoch's end.

  def on_epoch_begin(self, epoch, logs=None):
    self._last = (0, None)
    self._epoch_start = time.time()

  def on_train_batch_end(self, batch, logs=None):
    count = batch + 1
    if not logs or count - self._last[0] < self.log_every_steps:
      return
    step = int(self.model.optimizer.iterations.numpy())
    prev_count, prev_logs = self._last
    with self.writer.as_default(step=step):
      for name, value in logs.items():
        value = float(value)
        if prev_logs is not None and name in prev_logs:
          value = (count * value - prev_count * float(prev_logs[name])) / (count - prev_count)
        tf.summary.scalar(f"step/{name}", value)
    self._last = (count, dict(logs))

  def _epoch_snapshot(self):
    """One tf.function (traced once) for the per-epoch pictures: the sample codes and
    their histograms, reconstructions, prior samples and (a learned prior) prior codes.
    Run eagerly these cost ~0.5 s an epoch on the quickstart's net (per-op dispatch)."""
    if self._snapshot is None:
      model, is_image = self.model, self.is_image
      n = min(8, len(self.sample_x))
      learned_prior = bool(model.prior.trainable_variables)
      writer = self.writer

      @tf.function(reduce_retracing=True)
      def snapshot(x, seeds, step):
        codes = model.encode(x)
        with writer.as_default(step=step):
          for i in range(min(codes.shape[1], 16)):
            tf.summary.histogram(f"latent/dim_{i:02d}", codes[:, i])
          tf.summary.histogram("latent/all", codes)
        out = {"codes": codes}
        if is_image:
          out["reconstructions"] = model.reconstruct(x[:n])
          out["samples"] = model.sample_from_seeds(seeds)[0]
        if learned_prior:
          out["prior_z"] = model.latent_from_seeds(tf.range(tf.shape(x)[0], dtype=tf.int64))
        return out

      self._snapshot = snapshot
    return self._snapshot

  def on_epoch_end(self, epoch, logs=None):
    model = self.model
    step = int(model.optimizer.iterations.numpy())
    snap = {k: v.numpy() for k, v in self._epoch_snapshot()(
        tf.constant(self.sample_x), tf.range(self.num_samples, dtype=tf.int64),
        tf.constant(step, tf.int64)).items()}
    with self.writer.as_default(step=step):
      for name, value in (logs or {}).items():
        if name != "learning_rate":  # Written below for every schedule.
          tf.summary.scalar(f"epoch/{name}", float(value))
      tf.summary.scalar("epoch/seconds", time.time() - self._epoch_start)
      tf.summary.scalar("epoch/learning_rate", float(model.optimizer.learning_rate.numpy()))
      for player in model.players[1:]:
        tf.summary.scalar(f"learning_rate/{player.name}",
                          float(player.optimizer.learning_rate.numpy()))
      if self.is_image:
        n = len(snap["reconstructions"])
        pairs = np.concatenate([self.sample_x[:n], snap["reconstructions"]])  # Real over
        tf.summary.image("reconstructions", tile_images(pairs, columns=n)[None],  # recon.
                         step=step)
        tf.summary.image("prior_samples", tile_images(snap["samples"])[None], step=step)
      if "prior_z" in snap:  # A learned prior: does it cover the codes?
        tf.summary.image("latent/prior_vs_codes", plots.prior_codes_projection(
            snap["codes"], snap["prior_z"], f"step {step}")[None], step=step)
      mask = model.mask_values()
      if mask is not None:  # MaskAAE: m_A, the mask, and the mask over training so far.
        tf.summary.scalar("mask/active_dims", int(np.sum(mask >= MASK_THRESHOLD)), step=step)
        tf.summary.histogram("mask/values", mask, step=step)
        _, history = read_mask_history(self.mask_history_path)
        tf.summary.image("mask/over_training", plots.mask_history_image(
            history if len(history) else mask[None])[None], step=step)
    self.writer.flush()


def write_hparams(logdir: str, hparams: Dict[str, Any]):
  """Records the run's configuration in TensorBoard's HParams dashboard."""
  from tensorboard.plugins.hparams import api as hp_api  # pylint: disable=g-import-not-at-top
  clean = {k: v for k, v in hparams.items() if isinstance(v, (bool, int, float, str))}
  with tf.summary.create_file_writer(logdir).as_default():
    hp_api.hparams(clean)


class LearningRateDrops(keras.callbacks.Callback):
  """Divides every optimizer's learning rate by cumulative factors from given epochs.

  WAE's schedule is drops ((30, 2.0), (50, 5.0)): / 2 from epoch 30, / 10 from epoch 50.
  Set from the base rates at every epoch start, so a resumed run gets the right rate.

  Args:
    drops: sorted (epoch, factor) pairs; epochs count from 0 like Keras' `epoch`.
    base_rates: {optimizer: its undecayed learning rate}.
  """

  def __init__(self, drops, base_rates):
    super().__init__()
    self.drops = tuple(drops)
    self.base_rates = dict(base_rates)

  def on_epoch_begin(self, epoch, logs=None):
    factor = 1.0
    for start, f in self.drops:
      if epoch >= start:
        factor *= f
    for optimizer, base in self.base_rates.items():
      optimizer.learning_rate.assign(base / factor)


class PlateauHalving(keras.callbacks.Callback):
  """RAE's schedule: multiply the auto-encoder's rate by `factor` when the epoch loss has
  not improved for `patience` epochs.

  Unlike keras.callbacks.ReduceLROnPlateau, its state (best loss, epochs waited) lives in
  variables that the run's checkpoint holds, so a resumed run decays exactly as an
  uninterrupted one. Place it before the checkpoint callback.

  Args:
    optimizer: the optimizer whose rate to decay.
    patience: epochs without improvement before a decay.
    factor: the multiplier (0.5 halves).
    min_delta: improvements smaller than this do not count.
  """

  def __init__(self, optimizer, patience: int, factor: float = 0.5, min_delta: float = 1e-4):
    super().__init__()
    self.optimizer = optimizer
    self.patience = int(patience)
    self.factor = float(factor)
    self.min_delta = float(min_delta)
    self.best = tf.Variable(float("inf"), dtype=tf.float64, trainable=False,
                            name="plateau_best")
    self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="plateau_wait")

  def state(self) -> Dict[str, tf.Variable]:
    """The variables to put in the run's checkpoint."""
    return {"plateau_best": self.best, "plateau_wait": self.wait}

  def on_epoch_end(self, epoch, logs=None):
    loss = float((logs or {}).get("loss", float("nan")))
    if loss < float(self.best.numpy()) - self.min_delta:
      self.best.assign(loss)
      self.wait.assign(0)
      return
    self.wait.assign_add(1)
    if int(self.wait.numpy()) >= self.patience:
      self.optimizer.learning_rate.assign(self.optimizer.learning_rate * self.factor)
      self.wait.assign(0)


MASK_HISTORY_FILE = "mask_history.json"  # In a masked model's run directory.


def read_mask_history(path: Optional[str]) -> Tuple[List[int], np.ndarray]:
  """(epochs, [T, m] mask values) kept by `MaskHistoryRecorder`, in epoch order.

  Args:
    path: the history file (None or missing: nothing recorded).

  Returns:
    The recorded epochs (1-based) and their mask values; ([], empty array) when none.
  """
  try:
    with open(path) as f:
      by_epoch = {int(k): v for k, v in json.load(f).get("mask_by_epoch", {}).items()}
  except (OSError, TypeError, ValueError):
    return [], np.zeros((0, 0))
  epochs = sorted(by_epoch)
  return epochs, np.asarray([by_epoch[e] for e in epochs], np.float64)


class MaskHistoryRecorder(keras.callbacks.Callback):
  """Keeps a masked model's mask at every epoch end in a JSON file of the run.

  The file ({"mask_by_epoch": {epoch: [mu_1..mu_m]}}) survives a resume (a resumed run
  adds its epochs; a retrained epoch replaces its entry), so the mask over training
  (TensorBoard's `mask/over_training`, the seed's Fig. 6) covers the whole run.

  Args:
    path: the history file, e.g. <workdir>/mask_history.json.
  """

  def __init__(self, path: str):
    super().__init__()
    self.path = path

  def on_epoch_end(self, epoch, logs=None):
    mask = self.model.mask_values()
    if mask is None:
      return
    epochs, history = read_mask_history(self.path)
    by_epoch = {e: list(map(float, h)) for e, h in zip(epochs, history)}
    by_epoch[int(epoch) + 1] = [float(v) for v in mask]
    outputs.atomic_write(self.path, json.dumps(
        {"mask_by_epoch": {str(k): by_epoch[k] for k in sorted(by_epoch)}}))
