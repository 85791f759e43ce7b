"""Synthetic data on a known manifold: `synthetic` (vectors) and `synthetic_image`.

z ~ N(0, I_n), x = f(z) with f a fixed random smooth tanh MLP (weights drawn from
`numpy.random.default_rng(seed)`), standardised per dimension with train statistics;
`synthetic_image` renders x as 28x28x1 images sigmoid(2 * standardised f(z)).
"""
from typing import Optional, Tuple

import numpy as np

from rae_tf.data.arrays import _array_source
from rae_tf.data.arrays import ArrayDataSource
from rae_tf.data.source import DATASETS
from rae_tf.data.source import DataConfig
from rae_tf.errors import ConfigError


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
