"""Keras callbacks of a training run: checkpoints and TensorBoard logging.

TensorBoard logging is done here, from callbacks with an explicit step, not with
`tf.summary` inside `train_step` (there the step is frozen at trace time).
"""
import time
from typing import Any, Dict

import keras
import numpy as np
import tensorflow as tf

from rae_tf.images import tile_images


class EpochCheckpoint(keras.callbacks.Callback):
  """Saves a tf.train.Checkpoint (model, every optimizer, epoch counter) after each epoch.

  Args:
    manager: a tf.train.CheckpointManager.
    epoch: the tf.Variable counting finished epochs, tracked by the checkpoint.
  """

  def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable):
    super().__init__()
    self.manager = manager
    self.epoch = epoch

  def on_epoch_end(self, epoch, logs=None):
    self.epoch.assign(epoch + 1)
    self.manager.save(checkpoint_number=epoch + 1)


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
  """

  def __init__(self, logdir: str, sample_x: np.ndarray, is_image: bool,
               log_every_steps: int = 20, num_samples: int = 64):
    super().__init__()
    self.writer = tf.summary.create_file_writer(logdir)
    self.sample_x = sample_x
    self.is_image = is_image
    self.log_every_steps = log_every_steps
    self.num_samples = num_samples
    self._last = (0, None)  # (batch count in epoch, logs) at the last write.
    self._epoch_start = time.time()

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

  def on_epoch_end(self, epoch, logs=None):
    model = self.model
    step = int(model.optimizer.iterations.numpy())
    with self.writer.as_default(step=step):
      for name, value in (logs or {}).items():
        if name != "learning_rate":  # Written below for every schedule.
          tf.summary.scalar(f"epoch/{name}", float(value))
      tf.summary.scalar("epoch/seconds", time.time() - self._epoch_start)
      tf.summary.scalar("epoch/learning_rate", float(model.optimizer.learning_rate.numpy()))
      codes = model.encode(self.sample_x).numpy()
      for i in range(min(codes.shape[1], 16)):
        tf.summary.histogram(f"latent/dim_{i:02d}", codes[:, i])
      tf.summary.histogram("latent/all", codes)
      if self.is_image:
        n = min(8, len(self.sample_x))
        recon = model.reconstruct(self.sample_x[:n]).numpy()
        pairs = np.concatenate([self.sample_x[:n], recon])  # Real row over reconstructed row.
        tf.summary.image("reconstructions", tile_images(pairs, columns=n)[None], step=step)
        samples, _ = model.sample_from_seeds(tf.range(self.num_samples, dtype=tf.int64))
        tf.summary.image("prior_samples", tile_images(samples.numpy())[None], step=step)
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
