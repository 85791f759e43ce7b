"""Datasets: images and vectors as fast, deterministic `tf.data` pipelines.

`get_data_source(DataConfig(name=...))` returns a `DataSource`: its `spec` (shape, sizes), its
train / test `tf.data.Dataset`s of float32 batches (no labels) and `arrays()` for evaluation.

Dataset names (`--dataset`):

* `mnist10k` (default): a 10,000-image MNIST subset bundled with the package (9,003 train,
  997 test, 28x28x1); works offline. See `rae_tf/data_files/README.md`.
* `synthetic`: vectors on a known `true_latent_dim`-dimensional manifold in R^ambient_dim:
  z ~ N(0, I_n), x = f(z) with f a fixed random smooth tanh MLP (weights drawn from
  `numpy.random.default_rng(seed)`), standardised per dimension with train statistics.
* `synthetic_image`: the same construction rendered as 28x28x1 images in (0, 1):
  x = sigmoid(2 * standardised f(z)) with f: R^n -> R^784 whose output weights are blurred
  over the 28x28 grid, so the images are spatially smooth; `ambient_dim` is ignored.
* `mnist`, `fashion_mnist`, `cifar10`, `celeb_a`: through tensorflow-datasets from `data_dir`
  (downloaded there when possible). CelebA is cropped to rows 45:173, cols 25:153 and resized
  to 64x64, as in FlexAE, and streamed rather than held in memory.
* `npz:PATH`: a NumPy archive with arrays `x_train`, `x_test` (optionally `y_train`, `y_test`):
  uint8 images [N, H, W] or [N, H, W, C], float images in [0, 1], or float vectors [N, d].

Images are kept in memory as uint8 and converted to float32 in [0, 1] once per batch, which keeps
the input pipeline far faster than the models that consume it.
"""
import dataclasses
import os
import re
import zipfile
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from rae_tf.errors import ConfigError
from rae_tf.registry import Registry

DATASETS = Registry("dataset", "--dataset")

NPZ_PREFIX = "npz:"
_DATA_FILES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_files")
# Shuffle buffer for the streamed CelebA pipeline (about 0.5 GB of 128x128x3 uint8 crops).
_CELEBA_SHUFFLE_BUFFER = 10000
_CELEBA_CROP = (45, 173, 25, 153)  # rows 45:173, cols 25:153 of the 218x178 images.
_CELEBA_SIZE = 64
_CELEBA_DEFAULT_ATTRIBUTE = "Smiling"


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


def get_data_source(config: DataConfig) -> DataSource:
  """Builds the data source that `config.name` selects.

  Args:
    config: the data configuration.

  Returns:
    The DataSource; raises ConfigError for unknown names and unusable data.
  """
  name = config.name
  if name.startswith(NPZ_PREFIX):
    return load_npz(name[len(NPZ_PREFIX):])
  if name not in DATASETS:
    raise ConfigError(
        f"unknown dataset {name!r} for --dataset; choose one of: "
        f"{', '.join(DATASETS.names())}, or npz:PATH for your own arrays")
  return DATASETS.get(name)(config)


# ----------------------------------------------------------------------------- npz files


def _one_line(text: str, max_len: int = 160) -> str:
  text = re.sub(r"\s+", " ", str(text)).strip()
  return text if len(text) <= max_len else text[:max_len - 3] + "..."


def _validate_x(x: np.ndarray, key: str, err: Callable[[str], ConfigError]) -> np.ndarray:
  """Checks one x array and returns it as uint8 / float32 with a channel axis for images."""
  if x.dtype.kind not in "uif":
    raise err(f"{key} has dtype {x.dtype}; use uint8 images or float images/vectors")
  if x.ndim not in (2, 3, 4):
    raise err(f"{key} has shape {x.shape} (rank {x.ndim}); use [N, d] vectors, "
              "[N, H, W] or [N, H, W, C] images")
  if x.size == 0:
    raise err(f"{key} is empty (shape {x.shape}); it needs at least one example")
  is_image = x.ndim > 2
  if x.ndim == 4 and x.shape[-1] > 4:
    raise err(f"{key} has shape {x.shape} with {x.shape[-1]} channels; images must be "
              "channels-last [N, H, W, C] with C <= 4")
  if x.ndim == 3:
    x = x[..., np.newaxis]
  if x.dtype.kind == "f":
    if not np.all(np.isfinite(x)):
      raise err(f"{key} contains NaN or inf values; remove or replace them")
    if is_image and (x.min() < 0.0 or x.max() > 1.0):
      raise err(f"{key} holds float images in [{x.min():.4g}, {x.max():.4g}]; float images "
                "must lie in [0, 1] (or store uint8 0-255)")
    return x.astype(np.float32, copy=False)
  # Integer arrays.
  if is_image:
    if x.min() < 0 or x.max() > 255:
      raise err(f"{key} holds integer images in [{x.min()}, {x.max()}]; integer images must "
                "be uint8 0-255")
    return x.astype(np.uint8, copy=False)
  return x.astype(np.float32)


def _validate_y(y: np.ndarray, key: str, num: int,
                err: Callable[[str], ConfigError]) -> np.ndarray:
  if y.ndim != 1 or y.shape[0] != num:
    raise err(f"{key} has shape {y.shape} but must be [{num}], one label per example")
  if y.dtype.kind not in "iu" and not (
      y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
    raise err(f"{key} has dtype {y.dtype}; labels must be integers")
  return y.astype(np.int64)


def _arrays_from_npz(path: str, where: str, fix: str) -> Dict[str, Optional[np.ndarray]]:
  """Reads and validates x_train, x_test (and optional labels) from an .npz file.

  Args:
    path: the file.
    where: prefix of error messages, naming the flag and file.
    fix: what to do, appended to errors about the file as a whole.

  Returns:
    Dict with x_train, x_test (uint8 or float32, images with a channel axis) and
    y_train, y_test (int64 or None).
  """
  def err(message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")

  if not os.path.exists(path):
    raise err(f"file not found; {fix}")
  if not os.path.isfile(path):
    raise err(f"not a file; {fix}")
  try:
    archive = np.load(path, allow_pickle=False)
  except (zipfile.BadZipFile, ValueError, OSError, EOFError):
    # Not numpy's message: for a non-zip file it talks about pickles, which misleads.
    raise err(f"not a valid .npz archive (not a readable zip file); {fix}") from None
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise err("holds a single array, not an .npz archive; save with "
              "np.savez(path, x_train=..., x_test=...)")
  with archive:
    present = sorted(archive.files)
    arrays = {}
    for key in ("x_train", "x_test", "y_train", "y_test"):
      if key not in present:
        if key.startswith("x"):
          raise err(f"missing array {key!r} (present: {', '.join(present) or 'none'}); "
                    "save with np.savez(path, x_train=..., x_test=...)")
        arrays[key] = None
        continue
      try:
        arrays[key] = archive[key]
      except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise err(f"cannot read array {key!r} ({type(e).__name__}: {_one_line(e, 80)}); "
                  "save plain numeric arrays with np.savez") from None

  x_train = _validate_x(arrays["x_train"], "x_train", err)
  x_test = _validate_x(arrays["x_test"], "x_test", err)
  if x_train.shape[1:] != x_test.shape[1:]:
    raise err(f"x_train examples have shape {x_train.shape[1:]} but x_test examples "
              f"{x_test.shape[1:]}; both splits must have the same example shape")
  out = {"x_train": x_train, "x_test": x_test}
  for split, x in (("train", x_train), ("test", x_test)):
    y = arrays[f"y_{split}"]
    out[f"y_{split}"] = None if y is None else _validate_y(y, f"y_{split}", x.shape[0], err)
  return out


def _array_source(name: str, arrays: Dict[str, Optional[np.ndarray]],
                  true_latent_dim: Optional[int] = None) -> ArrayDataSource:
  x_train, x_test = arrays["x_train"], arrays["x_test"]
  spec = DataSpec(name=name, shape=tuple(int(s) for s in x_train.shape[1:]),
                  is_image=x_train.ndim == 4, num_train=int(x_train.shape[0]),
                  num_test=int(x_test.shape[0]), true_latent_dim=true_latent_dim)
  return ArrayDataSource(spec, x_train, x_test, arrays.get("y_train"), arrays.get("y_test"))


def load_npz(path: str) -> ArrayDataSource:
  """The data source for `--dataset=npz:PATH`.

  Args:
    path: an .npz file with arrays x_train, x_test (optionally y_train, y_test).

  Returns:
    An ArrayDataSource named "npz:PATH"; ConfigError when the file is unusable.
  """
  name = NPZ_PREFIX + path
  fix = "pass the path of an .npz with arrays x_train and x_test"
  if not path:
    raise ConfigError(f"--dataset={name}: no file given; {fix}, e.g. --dataset=npz:/data/x.npz")
  arrays = _arrays_from_npz(os.path.expanduser(path), f"--dataset={name}", fix)
  return _array_source(name, arrays)


@DATASETS.register("mnist10k")
def _mnist10k(config: DataConfig) -> ArrayDataSource:
  """The bundled 10,000-image MNIST subset (9,003 train, 997 test), 28x28x1."""
  del config  # Nothing to configure.
  path = os.path.join(_DATA_FILES_DIR, "mnist10k.npz")
  arrays = _arrays_from_npz(path, f"--dataset=mnist10k: bundled file {path}",
                            "reinstall rae_tf (pip install .) to restore its package data")
  return _array_source("mnist10k", arrays)


# ----------------------------------------------------------------------------- synthetic


def _check_synthetic(config: DataConfig, ambient_dim: Optional[int] = None):
  """Validates the synthetic flags; ambient_dim None means config.ambient_dim (a flag)."""
  if config.true_latent_dim < 1:
    raise ConfigError(f"--true_latent_dim={config.true_latent_dim}: must be at least 1")
  if ambient_dim is None and config.ambient_dim <= config.true_latent_dim:
    raise ConfigError(
        f"--ambient_dim={config.ambient_dim}: must be larger than --true_latent_dim="
        f"{config.true_latent_dim}; raise --ambient_dim or lower --true_latent_dim")
  if ambient_dim is not None and ambient_dim <= config.true_latent_dim:
    raise ConfigError(
        f"--true_latent_dim={config.true_latent_dim}: must be smaller than the {ambient_dim} "
        f"pixels of --dataset={config.name}; lower --true_latent_dim")
  if config.num_examples < 1:
    raise ConfigError(f"--num_examples={config.num_examples}: must be at least 1")


def _gaussian_blur_maps(maps: np.ndarray, side: int, sigma: float) -> np.ndarray:
  """Blurs rows of `maps` [k, side*side], seen as side x side images, with a Gaussian."""
  radius = int(np.ceil(3 * sigma))
  t = np.arange(-radius, radius + 1)
  kernel = np.exp(-0.5 * (t / sigma) ** 2)
  kernel /= kernel.sum()
  images = maps.reshape(-1, side, side)
  # Separable convolution; zero padding keeps the output size ("same").
  blur = lambda a: np.convolve(a, kernel, mode="same")
  images = np.apply_along_axis(blur, 1, images)
  images = np.apply_along_axis(blur, 2, images)
  return images.reshape(maps.shape)


class _RandomMLP:
  """A fixed random smooth map R^n -> R^d: two tanh layers and a linear output.

  Args:
    n: input dimension.
    d: output dimension.
    width: hidden width.
    rng: generator for the weights.
    blur_side: if set, output weights are blurred as blur_side x blur_side images.
  """

  def __init__(self, n: int, d: int, width: int, rng: np.random.Generator,
               blur_side: Optional[int] = None):
    # Fan-in scaled weights keep tanh inputs O(1): smooth but clearly non-linear.
    self.w1 = rng.normal(0.0, 1.0 / np.sqrt(n), (n, width))
    self.b1 = rng.normal(0.0, 0.5, width)
    self.w2 = rng.normal(0.0, 1.5 / np.sqrt(width), (width, width))
    self.b2 = rng.normal(0.0, 0.5, width)
    self.w3 = rng.normal(0.0, 1.0 / np.sqrt(width), (width, d))
    if blur_side is not None:
      self.w3 = _gaussian_blur_maps(self.w3, blur_side, sigma=2.0)

  def __call__(self, z: np.ndarray) -> np.ndarray:
    h = np.tanh(z @ self.w1 + self.b1)
    h = np.tanh(h @ self.w2 + self.b2)
    return h @ self.w3


def _synthetic_arrays(config: DataConfig, ambient_dim: int, width: int,
                      blur_side: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Standardised train / test draws of f(z), z ~ N(0, I_n), for one fixed random f."""
  n = config.true_latent_dim
  f = _RandomMLP(n, ambient_dim, width, np.random.default_rng(config.seed), blur_side)
  # Independent sub-seeds: train and test are separate draws of the same f.
  z_train = np.random.default_rng([config.seed, 1]).standard_normal((config.num_examples, n))
  num_test = max(1000, config.num_examples // 10)
  z_test = np.random.default_rng([config.seed, 2]).standard_normal((num_test, n))
  x_train, x_test = f(z_train), f(z_test)
  mean = x_train.mean(axis=0)
  std = x_train.std(axis=0) if config.num_examples > 1 else np.ones_like(mean)
  std = np.where(std > 1e-8, std, 1.0)
  return (x_train - mean) / std, (x_test - mean) / std


@DATASETS.register("synthetic")
def _synthetic(config: DataConfig) -> ArrayDataSource:
  """Vectors x = f(z) in R^ambient_dim on a true_latent_dim-dimensional manifold."""
  _check_synthetic(config)
  width = max(64, 2 * config.ambient_dim)
  x_train, x_test = _synthetic_arrays(config, config.ambient_dim, width)
  arrays = {"x_train": x_train.astype(np.float32), "x_test": x_test.astype(np.float32)}
  return _array_source("synthetic", arrays, true_latent_dim=config.true_latent_dim)


@DATASETS.register("synthetic_image")
def _synthetic_image(config: DataConfig) -> ArrayDataSource:
  """28x28x1 images sigmoid(2 f(z)) on a true_latent_dim-dimensional manifold."""
  side = 28
  _check_synthetic(config, side * side)
  # A fixed hidden width: 2 * 784 would make generation slow for no benefit.
  x_train, x_test = _synthetic_arrays(config, side * side, width=256, blur_side=side)
  sigmoid = lambda u: 1.0 / (1.0 + np.exp(-2.0 * u))
  arrays = {"x_train": sigmoid(x_train).astype(np.float32).reshape(-1, side, side, 1),
            "x_test": sigmoid(x_test).astype(np.float32).reshape(-1, side, side, 1)}
  return _array_source("synthetic_image", arrays, true_latent_dim=config.true_latent_dim)


# ----------------------------------------------------------------------------- tfds


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
