"""tensorflow-datasets sets: `mnist`, `fashion_mnist`, `cifar10` (in memory) and CelebA.

CelebA is cropped to rows 45:173, cols 25:153 and resized to 64x64, as in FlexAE, and
streamed rather than held in memory (`CelebADataSource`).
"""
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from rae_tf.data.arrays import _array_source
from rae_tf.data.arrays import ArrayDataSource
from rae_tf.data.source import _check_batch_size
from rae_tf.data.source import _one_line
from rae_tf.data.source import DATASETS
from rae_tf.data.source import DataConfig
from rae_tf.data.source import DataSource
from rae_tf.data.source import DataSpec
from rae_tf.errors import ConfigError

# Shuffle buffer for the streamed CelebA pipeline (about 0.5 GB of 128x128x3 uint8 crops).
_CELEBA_SHUFFLE_BUFFER = 10000
_CELEBA_CROP = (45, 173, 25, 153)  # rows 45:173, cols 25:153 of the 218x178 images.
_CELEBA_SIZE = 64
_CELEBA_DEFAULT_ATTRIBUTE = "Smiling"


def _tfds_load(name: str, data_dir: Optional[str], **kwargs):
  """tfds.load from data_dir, downloading only when not prepared; ConfigError on failure."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  # slow import.
  try:
    return tfds.load(name, data_dir=data_dir, download=False, **kwargs)
  except Exception:  # pylint: disable=broad-except  # Not prepared yet: try to download.
    pass
  # Offline, the download retries for minutes before failing: say what is happening.
  print(f"[rae_tf] {name} is not prepared in --data_dir={data_dir or '~/tensorflow_datasets'}"
        "; downloading it with tensorflow-datasets (needs internet) ...", flush=True)
  try:
    return tfds.load(name, data_dir=data_dir, download=True, **kwargs)
  except Exception as e:  # pylint: disable=broad-except  # Offline, no space, bad dir, ...
    shown_dir = data_dir or "~/tensorflow_datasets"
    cmd_dir = data_dir or "DIR"
    raise ConfigError(
        f"--dataset={name}: tensorflow-datasets could not load or download {name!r} into "
        f"--data_dir={shown_dir} ({type(e).__name__}: {_one_line(e, 120)}); on a machine with "
        f"internet run python -c \"import tensorflow_datasets as tfds; tfds.load('{name}', "
        f"data_dir='{cmd_dir}')\" and pass --data_dir={cmd_dir}, or use --dataset=npz:PATH "
        "with arrays x_train and x_test") from None


def _tfds_in_memory(tfds_name: str, config: DataConfig) -> ArrayDataSource:
  """A small tfds image dataset materialised as uint8 numpy arrays."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  (train, test) = _tfds_load(tfds_name, config.data_dir, split=["train", "test"],
                             batch_size=-1, as_supervised=True)
  (x_train, y_train), (x_test, y_test) = tfds.as_numpy(train), tfds.as_numpy(test)
  arrays = {"x_train": np.asarray(x_train, np.uint8), "x_test": np.asarray(x_test, np.uint8),
            "y_train": np.asarray(y_train, np.int64), "y_test": np.asarray(y_test, np.int64)}
  return _array_source(config.name, arrays)


@DATASETS.register("mnist")
def _mnist(config: DataConfig) -> ArrayDataSource:
  """MNIST from tensorflow-datasets (60,000 train, 10,000 test), 28x28x1."""
  return _tfds_in_memory("mnist", config)


@DATASETS.register("fashion_mnist")
def _fashion_mnist(config: DataConfig) -> ArrayDataSource:
  """Fashion-MNIST from tensorflow-datasets (60,000 train, 10,000 test), 28x28x1."""
  return _tfds_in_memory("fashion_mnist", config)


@DATASETS.register("cifar10")
def _cifar10(config: DataConfig) -> ArrayDataSource:
  """CIFAR-10 from tensorflow-datasets (50,000 train, 10,000 test), 32x32x3."""
  return _tfds_in_memory("cifar10", config)


def _celeba_crop(example):
  top, bottom, left, right = _CELEBA_CROP
  return example["image"][top:bottom, left:right, :]


def _celeba_resize_and_scale(crops):
  """uint8 crops [B, 128, 128, 3] -> float32 [B, 64, 64, 3] in [0, 1]."""
  images = tf.cast(crops, tf.float32) * (1.0 / 255.0)
  images = tf.image.resize(images, [_CELEBA_SIZE, _CELEBA_SIZE], method="bilinear")
  return tf.clip_by_value(images, 0.0, 1.0)


class CelebADataSource(DataSource):
  """CelebA streamed from tensorflow-datasets: 64x64x3 crops of the faces, no labels.

  Args:
    config: uses config.data_dir.
  """

  def __init__(self, config: DataConfig):
    self._data_dir = config.data_dir
    # Loads (or downloads) once here, so an unavailable dataset fails before training.
    _, info = _tfds_load("celeb_a", self._data_dir, split="test", with_info=True)
    self.spec = DataSpec(name="celeb_a", shape=(_CELEBA_SIZE, _CELEBA_SIZE, 3), is_image=True,
                         num_train=int(info.splits["train"].num_examples),
                         num_test=int(info.splits["test"].num_examples))

  def _crops(self, split: str, shuffle_files: bool = False, seed: int = 0) -> tf.data.Dataset:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    read_config = tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True)
    ds = tfds.load("celeb_a", split=split, data_dir=self._data_dir, download=False,
                   shuffle_files=shuffle_files, read_config=read_config)
    return ds.map(_celeba_crop, num_parallel_calls=tf.data.AUTOTUNE)

  def train_dataset(self, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                    drop_remainder: bool = True) -> tf.data.Dataset:
    _check_batch_size(self.spec, batch_size, self.spec.num_train, "train", drop_remainder)
    ds = self._crops("train", shuffle_files=shuffle, seed=seed)
    if shuffle:
      ds = ds.shuffle(_CELEBA_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(_celeba_resize_and_scale, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

  def test_dataset(self, batch_size: int, *,
                   drop_remainder: bool = False) -> tf.data.Dataset:
    _check_batch_size(self.spec, batch_size, self.spec.num_test, "test", drop_remainder)
    ds = self._crops("test").batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(_celeba_resize_and_scale, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

  has_attributes = True

  def attribute_mask(self, split: str, attribute: Optional[str] = None,
                     limit: Optional[int] = None) -> Tuple[np.ndarray, str]:
    """CelebA's binary attribute (tfds `attributes`, default "Smiling") per example."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    name = attribute or _CELEBA_DEFAULT_ATTRIBUTE
    num = self._check_split_and_limit(split, limit)
    ds = tfds.load("celeb_a", split=split, data_dir=self._data_dir, download=False)
    available = sorted(ds.element_spec["attributes"])
    if name not in available:
      raise ConfigError(f"--attribute={name!r} is not a CelebA attribute; choose one of: "
                        + ", ".join(available))
    values = [b.numpy() for b in ds.take(num).map(lambda e: e["attributes"][name]).batch(4096)]
    return np.concatenate(values).astype(bool), name

  def arrays(self, split: str = "test",
             limit: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    num = self._check_split_and_limit(split, limit)
    if num == 0:
      return np.zeros((0,) + self.spec.shape, np.float32), None
    ds = self._crops(split).take(num).batch(256).map(_celeba_resize_and_scale)
    return np.concatenate([b.numpy() for b in ds], axis=0), None


@DATASETS.register("celeb_a")
def _celeb_a(config: DataConfig) -> CelebADataSource:
  """CelebA from tensorflow-datasets, cropped to 128x128 and resized to 64x64x3."""
  return CelebADataSource(config)
