"""Latent-space figures: interpolations and attribute directions."""
from typing import Callable, Sequence

import numpy as np

from rae_tf.errors import ConfigError
from rae_tf.images import tile_images
from rae_tf.viz.grids import as_images
from rae_tf.viz.grids import save_png

INTERPOLATION_MODES = ("linear", "slerp")

DecodeFn = Callable[[np.ndarray], np.ndarray]


def decode_batched(decode_fn: DecodeFn, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """Decodes float32 codes in batches and returns [N, H, W, C] float32 images.

  Args:
    decode_fn: maps [B, m] float32 codes to [B, H, W, C] images (numpy or tensor).
    z: [N, m] codes.
    batch_size: codes per call, to bound the decoder's memory.

  Returns:
    The decoded images.
  """
  z = np.asarray(z, np.float32)
  parts = [np.asarray(decode_fn(z[i:i + batch_size])) for i in range(0, len(z), batch_size)]
  return as_images(np.concatenate(parts), "decode_fn output")


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int,
                mode: str = "linear") -> np.ndarray:
  """Codes on the path from z_a to z_b, both endpoints included.

  "slerp" follows the great circle (angle from the normalised vectors, as in White 2016,
  "Sampling Generative Networks"); for (anti-)parallel or zero vectors the angle is
  ill-defined and it falls back to linear.

  Args:
    z_a: [m] start code.
    z_b: [m] end code.
    steps: number of codes, >= 2.
    mode: "linear" or "slerp".

  Returns:
    float64 [steps, m]; row 0 is z_a and row steps-1 is z_b.
  """
  if mode not in INTERPOLATION_MODES:
    raise ConfigError(f"--interpolation={mode!r} is unknown; use one of "
                      f"{', '.join(INTERPOLATION_MODES)}.")
  z_a = np.asarray(z_a, np.float64).reshape(-1)
  z_b = np.asarray(z_b, np.float64).reshape(-1)
  if z_a.shape != z_b.shape:
    raise ConfigError(f"interpolate: endpoints have shapes {z_a.shape} and {z_b.shape}; "
                      "pass two codes of the same latent size.")
  if int(steps) < 2:
    raise ConfigError(f"interpolate: steps={steps}; use at least 2 (the two endpoints).")
  t = np.linspace(0.0, 1.0, int(steps))[:, None]
  path = (1.0 - t) * z_a + t * z_b
  if mode == "slerp":
    norm_a, norm_b = np.linalg.norm(z_a), np.linalg.norm(z_b)
    if norm_a > 0 and norm_b > 0:
      cos = np.clip(np.dot(z_a / norm_a, z_b / norm_b), -1.0, 1.0)
      omega = np.arccos(cos)
      sin_omega = np.sin(omega)
      if sin_omega > 1e-6:
        path = (np.sin((1.0 - t) * omega) * z_a + np.sin(t * omega) * z_b) / sin_omega
  # Exact endpoints, whatever the rounding in the formulas above.
  path[0], path[-1] = z_a, z_b
  return path


def interpolation_grid(decode_fn: DecodeFn, z_pairs: np.ndarray, steps: int, mode: str,
                       path: str) -> np.ndarray:
  """Decoded interpolations, one row per pair of codes, saved as PNG.

  Args:
    decode_fn: maps [B, m] codes to [B, H, W, C] images in [0, 1].
    z_pairs: [P, 2, m] start and end codes.
    steps: images per row, endpoints included.
    mode: "linear" or "slerp" (see `interpolate`).
    path: output PNG path.

  Returns:
    The grid, P rows of `steps` images.
  """
  z_pairs = np.asarray(z_pairs)
  if z_pairs.ndim != 3 or z_pairs.shape[1] != 2:
    raise ConfigError(f"interpolation_grid: z_pairs has shape {z_pairs.shape}; expected "
                      "[P, 2, latent_dim] (start and end code per row).")
  codes = np.concatenate([interpolate(a, b, steps, mode) for a, b in z_pairs])
  grid = tile_images(decode_batched(decode_fn, codes), columns=int(steps))
  save_png(grid, path)
  return grid


def attribute_direction(codes: np.ndarray, labels: np.ndarray, positive=True) -> np.ndarray:
  """Mean code of examples with an attribute minus mean code of those without.

  Args:
    codes: [N, m] latent codes.
    labels: [N] class labels, or a boolean mask for a binary attribute.
    positive: the label value that has the attribute (True for a boolean mask).

  Returns:
    float64 [m] direction.
  """
  codes = np.asarray(codes, np.float64)
  labels = np.asarray(labels).reshape(-1)
  if codes.ndim != 2 or len(codes) != len(labels):
    raise ConfigError(f"attribute_direction: codes {codes.shape} and labels {labels.shape} "
                      "do not match; pass [N, m] codes and one label per code.")
  mask = labels == positive
  if not mask.any() or mask.all():
    group = "with" if not mask.any() else "without"
    raise ConfigError(f"attribute_direction: no codes {group} attribute {positive!r}; "
                      "choose a label value that some but not all examples have.")
  return codes[mask].mean(axis=0) - codes[~mask].mean(axis=0)


def attribute_manipulation(decode_fn: DecodeFn, z: np.ndarray, direction: np.ndarray,
                           alphas: Sequence[float], path: str) -> np.ndarray:
  """Row r decodes z_r + alpha * direction for each alpha (alpha = 0 is z_r itself).

  Args:
    decode_fn: maps [B, m] codes to [B, H, W, C] images in [0, 1].
    z: [R, m] codes to edit.
    direction: [m] attribute direction (see `attribute_direction`).
    alphas: step sizes, one column each, e.g. np.linspace(-2, 2, 5).
    path: output PNG path.

  Returns:
    The grid, R rows of len(alphas) images.
  """
  z = np.asarray(z, np.float64)
  direction = np.asarray(direction, np.float64).reshape(-1)
  alphas = np.asarray(alphas, np.float64).reshape(-1)
  if z.ndim != 2 or z.shape[1] != direction.shape[0]:
    raise ConfigError(f"attribute_manipulation: codes {z.shape} and direction "
                      f"{direction.shape} do not match; pass [R, m] codes and an [m] "
                      "direction.")
  if alphas.size == 0:
    raise ConfigError("attribute_manipulation: no alphas; pass at least one step size.")
  codes = z[:, None, :] + alphas[None, :, None] * direction
  grid = tile_images(decode_batched(decode_fn, codes.reshape(-1, z.shape[1])),
                     columns=len(alphas))
  save_png(grid, path)
  return grid
