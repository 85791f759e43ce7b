"""The data source interface: configuration, spec, `DataSource` and the `DATASETS` registry.

The concern modules (`npz`, `synthetic`, `tfds`) register their dataset builders in
`DATASETS`; `rae_tf.data.get_data_source` looks names up there.
"""
import dataclasses
import re
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from rae_tf.errors import ConfigError
from rae_tf.registry import Registry

DATASETS = Registry("dataset", "--dataset")

NPZ_PREFIX = "npz:"


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which dataset to load and how.

  Attributes:
    name: a name registered in `DATASETS` or `npz:PATH`.
    data_dir: tensorflow-datasets data_dir (None: its default, ~/tensorflow_datasets).
    true_latent_dim: dimension n of the synthetic latent space.
    ambient_dim: dimension d of the synthetic vectors (`synthetic` only).
    num_examples: synthetic train size; the test set has max(1000, num_examples // 10).
    seed: seed of the synthetic generator.
  """
  name: str = "mnist10k"
  data_dir: Optional[str] = None
  true_latent_dim: int = 8
  ambient_dim: int = 64
  num_examples: int = 10000
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """What one dataset looks like.

  Attributes:
    name: the dataset name as given to `--dataset`.
    shape: shape of one example: (H, W, C) for images, (d,) for vectors.
    is_image: whether examples are images with values in [0, 1].
    num_train: number of training examples.
    num_test: number of test examples.
    true_latent_dim: the known manifold dimension (synthetic data only).
  """
  name: str
  shape: Tuple[int, ...]
  is_image: bool
  num_train: int
  num_test: int
  true_latent_dim: Optional[int] = None


class DataSource:
  """A dataset: its spec, batched train / test pipelines and in-memory arrays."""

  spec: DataSpec

  def train_dataset(self, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                    drop_remainder: bool = True) -> tf.data.Dataset:
    """One epoch of float32 training batches [batch, *spec.shape], without labels.

    Args:
      batch_size: examples per batch.
      shuffle: shuffle the examples; iterating the dataset again (or `.repeat()`) reshuffles,
        and two pipelines built with the same seed give the same sequence of epochs.
      seed: shuffle seed.
      drop_remainder: drop the last incomplete batch, so all batches have a static shape.

    Returns:
      A prefetched `tf.data.Dataset`.
    """
    raise NotImplementedError

  def training_stream(self, batch_size: int, *, seed: int = 0,
                      start_step: int = 0) -> tf.data.Dataset:
    """An endless stream of training batches, pass after pass, from batch `start_step` on.

    Used by the trainer with `steps_per_epoch`. The k-th batch of the stream is a pure
    function of (seed, k): a run resumed at step k (any `steps_per_epoch`, even mid-epoch)
    sees exactly the batches an uninterrupted run would.

    Args:
      batch_size: examples per batch (incomplete batches are dropped).
      seed: shuffle seed.
      start_step: index of the first batch (the global step to resume from).
    """
    # This fallback cannot seek: a fresh pipeline with the same seed repeats the same
    # sequence of shuffles, so skipping reproduces the position (slowly, by reading).
    return self.train_dataset(batch_size, seed=seed).repeat().skip(int(start_step))

  def test_dataset(self, batch_size: int, *,
                   drop_remainder: bool = False) -> tf.data.Dataset:
    """The test split in a fixed order as float32 batches [batch, *spec.shape].

    Args:
      batch_size: examples per batch.
      drop_remainder: drop the last incomplete batch.

    Returns:
      A prefetched `tf.data.Dataset`.
    """
    raise NotImplementedError

  def arrays(self, split: str = "test",
             limit: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The first `limit` examples of a split as numpy arrays.

    Args:
      split: "train" or "test".
      limit: number of examples (None: all); ConfigError when more than the split holds.

    Returns:
      (x, y): float32 x [N, *spec.shape] (images in [0, 1]) and int64 labels [N] or None.
    """
    raise NotImplementedError

  @property
  def has_attributes(self) -> bool:
    """Whether `attribute_mask` can work without an explicit attribute."""
    return self.arrays("test", limit=1)[1] is not None

  def attribute_mask(self, split: str, attribute: Optional[str] = None,
                     limit: Optional[int] = None) -> Tuple[np.ndarray, str]:
    """Which examples have an attribute, for latent attribute manipulation.

    For labelled data sets the attribute is a class id (default: the most frequent class);
    CelebA overrides this with its binary attributes.

    Args:
      split: "train" or "test".
      attribute: the class id as a string (e.g. "3"), or None.
      limit: the first `limit` examples, in the order of `arrays(split, limit)`.

    Returns:
      (bool [N] mask, a display name such as "class 3").
    """
    _, y = self.arrays(split, limit=limit)
    if y is None:
      raise ConfigError(f"--dataset={self.spec.name} has no labels to define an attribute; "
                        "use a labelled data set (npz with y_train/y_test) or --figures=false")
    if attribute is None:
      k = int(np.bincount(y).argmax())
    else:
      try:
        k = int(attribute)
      except ValueError:
        raise ConfigError(f"--attribute={attribute!r}: --dataset={self.spec.name} has class "
                          "labels; pass a class id such as --attribute=3") from None
    if not np.any(y == k):
      raise ConfigError(f"--attribute={k}: no {split} example has class {k}; pass one of "
                        f"{sorted(set(y.tolist()))[:20]}")
    return y == k, f"class {k}"

  def _check_split_and_limit(self, split: str, limit: Optional[int]) -> int:
    """Returns the number of examples to take; raises ConfigError on bad arguments."""
    if split not in ("train", "test"):
      raise ConfigError(f"dataset {self.spec.name!r}: unknown split {split!r}; "
                        "use split='train' or split='test'")
    available = self.spec.num_train if split == "train" else self.spec.num_test
    if limit is None:
      return available
    if limit < 0 or limit > available:
      raise ConfigError(
          f"--dataset={self.spec.name}: asked for {limit} {split} examples but the {split} "
          f"split has {available}; ask for at most {available}")
    return limit


def _check_batch_size(spec: DataSpec, batch_size: int, num: int, split: str,
                      drop_remainder: bool):
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ConfigError(f"--batch_size={batch_size}: must be a positive integer")
  if drop_remainder and batch_size > num:
    # Otherwise the pipeline is empty and a repeat()ed training loop would spin forever.
    raise ConfigError(
        f"--batch_size={batch_size} is larger than the {num} {split} examples of "
        f"--dataset={spec.name}; lower --batch_size or use more data")


def _one_line(text: str, max_len: int = 160) -> str:
  text = re.sub(r"\s+", " ", str(text)).strip()
  return text if len(text) <= max_len else text[:max_len - 3] + "..."
