"""Image grids for TensorBoard and PNG figures."""
import math

import numpy as np


def tile_images(images: np.ndarray, columns: int = 0, pad: int = 1) -> np.ndarray:
  """Tiles [N, H, W, C] images in [0, 1] into one [rows*(H+pad), cols*(W+pad), C] grid.

  Args:
    images: the images.
    columns: images per row; default ceil(sqrt(N)).
    pad: pixels of white space between images.
  """
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  columns = columns or int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / columns))
  grid = np.ones((rows * (h + pad) - pad, columns * (w + pad) - pad, c), np.float32)
  for i in range(n):
    r, col = divmod(i, columns)
    grid[r * (h + pad):r * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = images[i]
  return np.clip(grid, 0.0, 1.0)
