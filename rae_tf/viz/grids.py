"""Image grids saved as PNG: samples, reconstructions, nearest training neighbours."""
import os

import numpy as np

from rae_tf.errors import ConfigError
from rae_tf.images import tile_images


def as_images(images, name: str = "images") -> np.ndarray:
  """Returns float32 [N, H, W, C] images in [0, 1] from float or uint8 input.

  Args:
    images: [N, H, W, C] or [N, H, W] (one channel) array; uint8 is scaled by 1/255.
    name: what to call the argument in the error message.

  Returns:
    The images as float32 [N, H, W, C]; values are not clipped (tiling clips).
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise ConfigError(f"{name}: expected [N, H, W, C] images, got shape {images.shape}; "
                      "reshape flat vectors to images before plotting.")
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  return images.astype(np.float32)


def _check_columns(columns: int) -> int:
  if int(columns) < 1:
    raise ConfigError(f"columns={columns}: give at least one column per row.")
  return int(columns)


def save_png(image: np.ndarray, path: str) -> str:
  """Writes one image as a PNG file (grayscale when it has one channel).

  Args:
    image: [H, W, C] (C in 1, 3, 4) or [H, W]; float in [0, 1] or uint8.
    path: output file; parent folders are created.

  Returns:
    The path written.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
    raise ConfigError(f"save_png: expected an [H, W, C] image with C in 1, 3, 4, got "
                      f"shape {image.shape}.")
  if image.dtype != np.uint8:
    # Rounding (not truncation) so 0.5 / 255 steps survive a save/load round trip.
    image = np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  Image.fromarray(image).save(path, format="PNG")
  return path


def sample_grid(images: np.ndarray, path: str, columns: int = 10) -> np.ndarray:
  """Tiles images into a grid, saves it as PNG and returns it.

  Args:
    images: [N, H, W, C] in [0, 1] (or uint8).
    path: output PNG path.
    columns: images per row (fewer when N is smaller).

  Returns:
    The grid, float32 [rows*(H+1)-1, cols*(W+1)-1, C] in [0, 1].
  """
  images = as_images(images)
  columns = min(_check_columns(columns), len(images))
  grid = tile_images(images, columns=columns)
  save_png(grid, path)
  return grid


def reconstruction_pairs(x: np.ndarray, x_rec: np.ndarray, path: str,
                         columns: int = 10) -> np.ndarray:
  """Real rows over reconstructed rows: real chunk 1, its reconstructions, real chunk 2, ...

  A last, partial chunk is padded with white cells so each reconstruction stays directly
  under its original.

  Args:
    x: [N, H, W, C] real images.
    x_rec: [N, H, W, C] their reconstructions.
    path: output PNG path.
    columns: images per row (fewer when N is smaller).

  Returns:
    The grid; rows alternate real / reconstructed.
  """
  x, x_rec = as_images(x, "x"), as_images(x_rec, "x_rec")
  if x.shape != x_rec.shape:
    raise ConfigError(f"reconstruction_pairs: x {x.shape} and x_rec {x_rec.shape} differ; "
                      "pass one reconstruction per image.")
  n = len(x)
  columns = min(_check_columns(columns), n)
  blank = np.ones((1,) + x.shape[1:], np.float32)
  cells = []
  for start in range(0, n, columns):
    pad = [blank] * (columns - len(x[start:start + columns]))
    cells += [x[start:start + columns]] + pad + [x_rec[start:start + columns]] + pad
  grid = tile_images(np.concatenate(cells), columns=columns)
  save_png(grid, path)
  return grid


def neighbour_grid(generated_images: np.ndarray, train_images: np.ndarray, k: int,
                   path: str) -> np.ndarray:
  """One row per generated sample: the sample, then its k nearest training images.

  Distances are Euclidean in pixel space (see `nearest_neighbours`).

  Args:
    generated_images: [Q, H, W, C] generated samples.
    train_images: [N, H, W, C] training images.
    k: neighbours per sample.
    path: output PNG path.

  Returns:
    The grid, Q rows of k + 1 images.
  """
  from rae_tf.viz.neighbours import nearest_neighbours  # pylint: disable=g-import-not-at-top
  generated = as_images(generated_images, "generated_images")
  train = as_images(train_images, "train_images")
  if generated.shape[1:] != train.shape[1:]:
    raise ConfigError(f"neighbour_grid: generated images {generated.shape[1:]} and training "
                      f"images {train.shape[1:]} differ in size; use the same dataset.")
  index = nearest_neighbours(generated.reshape(len(generated), -1),
                             train.reshape(len(train), -1), k)
  rows = np.concatenate([generated[:, None], train[index]], axis=1)
  grid = tile_images(rows.reshape((-1,) + generated.shape[1:]), columns=k + 1)
  save_png(grid, path)
  return grid
