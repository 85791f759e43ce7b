"""Latent-space diagnostics: active dimensions, covariance and NAC.

NAC (normalized absolute correlation, the MaskAAE paper's Table 2; the exact formula is
not in its code, this is the reading in /work/shared/reference/models.md): the mean
absolute off-diagonal Pearson correlation of the encoded codes over the L active
dimensions,

  NAC = 1 / (L (L - 1)) sum_{i != j} |rho_ij|.

0 for independent dimensions (up to sampling noise, ~ sqrt(2 / (pi N)) for N samples),
1 when all dimensions are scaled copies of one. Lower NAC = codes closer to the
isotropic prior's correlation structure.
"""
from typing import Optional

import numpy as np

from rae_tf.errors import ConfigError

# MaskAAE's rule: a dimension is active when its mask entry mu_i >= 0.1.
MASK_THRESHOLD = 0.1
# Default for active_dims_from_variance (relative to the largest variance). A dimension
# multiplied by a mask entry of 0.1 has 0.1^2 = 1e-2 of its variance left, so this marks
# the same dimensions inactive as MaskAAE's mask rule when the unmasked codes have
# comparable variances (the prior N(0, I) pushes them to), and it needs no mask: it
# works for any model's codes and does not depend on the codes' overall scale.
VARIANCE_THRESHOLD = 1e-2


def check_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
  """Validates [N, L] codes (N >= 2, finite) and returns them as float64."""
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2:
    raise ConfigError(f"{name}: expected 2-D [N, latent_dim] codes, got shape "
                      f"{codes.shape}; encode to flat latent vectors first.")
  if codes.shape[0] < 2:
    raise ConfigError(f"{name}: need at least 2 codes, got {codes.shape[0]}; encode more "
                      "samples.")
  if not np.all(np.isfinite(codes)):
    raise ConfigError(f"{name}: codes contain NaN or inf; check the encoder (a diverged "
                      "run?).")
  return codes


def latent_covariance(codes: np.ndarray) -> np.ndarray:
  """[L, L] covariance of [N, L] codes (float64, ddof=1)."""
  codes = check_codes(codes)
  return np.atleast_2d(np.cov(codes, rowvar=False))


def active_dims_from_variance(codes: np.ndarray, threshold: float = VARIANCE_THRESHOLD,
                              relative: bool = True) -> np.ndarray:
  """Active dimensions from the code variances.

  Args:
    codes: [N, L] codes.
    threshold: a dimension is active when its variance > threshold * max variance
      (relative=True; default 1e-2, i.e. std above 10% of the largest std, matching the
      MaskAAE mask rule mu >= 0.1, see VARIANCE_THRESHOLD) or > threshold (relative=False).
    relative: whether `threshold` is relative to the largest variance.

  Returns:
    [L] bool mask. All False when every dimension is constant.
  """
  codes = check_codes(codes)
  variances = codes.var(axis=0)
  limit = threshold * variances.max() if relative else threshold
  return (variances > limit) & (variances > 0)


def active_dims_from_mask(mask_values: np.ndarray,
                          threshold: float = MASK_THRESHOLD) -> np.ndarray:
  """MaskAAE's active dimensions: mask entry mu_i >= threshold (0.1).

  Args:
    mask_values: [L] mask mu = 1 - exp(-psi) in [0, 1).
    threshold: the activity threshold.

  Returns:
    [L] bool mask.
  """
  mask_values = np.asarray(mask_values, np.float64)
  if mask_values.ndim != 1:
    raise ConfigError(f"mask_values: expected a 1-D [latent_dim] mask, got shape "
                      f"{mask_values.shape}.")
  return mask_values >= threshold


def nac(codes: np.ndarray, active: Optional[np.ndarray] = None) -> float:
  """Normalized absolute correlation of codes over the active dimensions.

  Dimensions with zero variance (constant: max == min) have no Pearson correlation and
  are always dropped, also from a given `active` mask.

  Args:
    codes: [N, L] codes (for MaskAAE, the masked codes mu * z_e or the raw z_e: the
      correlation does not depend on a per-dimension scale).
    active: optional [L] bool mask (e.g. from active_dims_from_mask); None = all
      non-constant dimensions.

  Returns:
    NAC in [0, 1]; nan when fewer than 2 dimensions remain (no off-diagonal pairs; callers
    should report it as "n/a", not 0).
  """
  codes = check_codes(codes)
  keep = np.ptp(codes, axis=0) > 0
  if active is not None:
    active = np.asarray(active, bool)
    if active.shape != (codes.shape[1],):
      raise ConfigError(f"nac: active mask has shape {active.shape}, codes have "
                        f"{codes.shape[1]} dims; pass one bool per latent dimension.")
    keep &= active
  num = int(keep.sum())
  if num < 2:
    return float("nan")
  rho = np.corrcoef(codes[:, keep], rowvar=False)
  off_diagonal = np.abs(rho).sum() - np.trace(np.abs(rho))
  # Round-off can put |rho| a hair above 1.
  return float(min(1.0, off_diagonal / (num * (num - 1))))
