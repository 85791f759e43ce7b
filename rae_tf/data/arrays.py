"""The in-memory pipeline: `ArrayDataSource`, numpy arrays as batched `tf.data` pipelines.

Images are kept in memory as uint8 and converted to float32 in [0, 1] once per batch.
"""
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from rae_tf.data.source import _check_batch_size
from rae_tf.data.source import DataSource
from rae_tf.data.source import DataSpec


class ArrayDataSource(DataSource):
  """A dataset held in memory: uint8 images, float32 images in [0, 1] or float32 vectors.

  Args:
    spec: the dataset's spec.
    x_train: [N, *spec.shape] uint8 (images, scaled by 1/255 per batch) or float32.
    x_test: like x_train.
    y_train: int labels [N] or None.
    y_test: int labels [N] or None.
  """

  def __init__(self, spec: DataSpec, x_train: np.ndarray, x_test: np.ndarray,
               y_train: Optional[np.ndarray] = None, y_test: Optional[np.ndarray] = None):
    for x in (x_train, x_test):
      assert x.dtype in (np.uint8, np.float32), x.dtype
      assert tuple(x.shape[1:]) == tuple(spec.shape), (x.shape, spec.shape)
    self.spec = spec
    self._x = {"train": x_train, "test": x_test}
    self._y = {"train": y_train, "test": y_test}
    self._tensors: Dict[str, tf.Tensor] = {}

  def _tensor(self, split: str) -> tf.Tensor:
    # One eager tensor per split, captured by the pipelines (not embedded as a graph constant).
    if split not in self._tensors:
      with tf.device("/CPU:0"):
        self._tensors[split] = tf.convert_to_tensor(self._x[split])
    return self._tensors[split]

  def _batch_gather(self, split: str):
    """indices [B] -> float32 examples [B, ...]: one gather, uint8 scaled to [0, 1]."""
    data = self._tensor(split)
    is_uint8 = self._x[split].dtype == np.uint8

    def gather(indices):
      batch = tf.gather(data, indices)
      return tf.cast(batch, tf.float32) * (1.0 / 255.0) if is_uint8 else batch

    return gather

  def _pipeline(self, split: str, batch_size: int, shuffle: bool, seed: int,
                drop_remainder: bool) -> tf.data.Dataset:
    x = self._x[split]
    num = x.shape[0]
    _check_batch_size(self.spec, batch_size, num, split, drop_remainder)
    gather = self._batch_gather(split)
    # Shuffle indices, not examples: cheap scalars, then one gather and one cast per batch.
    ds = tf.data.Dataset.range(num)
    if shuffle:
      ds = ds.shuffle(num, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)

  def train_dataset(self, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                    drop_remainder: bool = True) -> tf.data.Dataset:
    return self._pipeline("train", batch_size, shuffle, seed, drop_remainder)

  def training_stream(self, batch_size: int, *, seed: int = 0,
                      start_step: int = 0) -> tf.data.Dataset:
    num = self._x["train"].shape[0]
    _check_batch_size(self.spec, batch_size, num, "train", True)
    gather = self._batch_gather("train")
    per_pass = num // batch_size  # Each pass drops its own remainder.
    first_pass, offset = divmod(int(start_step), per_pass)

    def pass_order(p):
      # Stateless: pass p's permutation depends only on (seed, p).
      perm = tf.argsort(tf.random.stateless_uniform(
          [num], seed=tf.stack([tf.cast(seed, tf.int64), p])))
      return tf.data.Dataset.from_tensor_slices(perm).batch(batch_size, drop_remainder=True)

    # Skipping index batches (before the gather) is cheap: a resume mid-pass costs nothing.
    ds = tf.data.Dataset.range(first_pass, 2**62).flat_map(pass_order).skip(offset)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)

  def test_dataset(self, batch_size: int, *,
                   drop_remainder: bool = False) -> tf.data.Dataset:
    return self._pipeline("test", batch_size, False, 0, drop_remainder)

  def arrays(self, split: str = "test",
             limit: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    num = self._check_split_and_limit(split, limit)
    x = self._x[split][:num]
    x = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.copy()
    y = self._y[split]
    return x, (None if y is None else y[:num].astype(np.int64))


def _array_source(name: str, arrays: Dict[str, Optional[np.ndarray]],
                  true_latent_dim: Optional[int] = None) -> ArrayDataSource:
  x_train, x_test = arrays["x_train"], arrays["x_test"]
  spec = DataSpec(name=name, shape=tuple(int(s) for s in x_train.shape[1:]),
                  is_image=x_train.ndim == 4, num_train=int(x_train.shape[0]),
                  num_test=int(x_test.shape[0]), true_latent_dim=true_latent_dim)
  return ArrayDataSource(spec, x_train, x_test, arrays.get("y_train"), arrays.get("y_test"))
