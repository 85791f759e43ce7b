"""Fréchet distance between Gaussians fitted to feature sets (FID).

FID (Heusel et al. 2017, the TTUR code) is the Fréchet / 2-Wasserstein distance between
two Gaussians:

  d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}).

Everything here is float64 numpy. Which feature network produced the features decides what
the number means: Inception pool features give an "Inception FID" (and only with the exact
protocol of a paper is it comparable to that paper's numbers); the features of
`rae_tf.metrics.features.DomainClassifierFeatures` give a "domain FID", comparable only
with other domain FIDs computed with the same classifier.
"""
from typing import Tuple
import warnings

import numpy as np
import scipy.linalg

from rae_tf.errors import ConfigError

# Added to both covariance diagonals when sqrtm(S1 S2) is not finite (as TTUR does);
# happens when a covariance is singular, e.g. fewer samples than feature dimensions.
_SQRTM_EPS = 1e-6
# An imaginary part of sqrtm's diagonal above this (relative to the real diagonal's
# scale) is not round-off: the product S1 S2 is far from PSD, i.e. bad input.
_IMAG_RTOL = 1e-3


def check_features(features: np.ndarray, name: str = "features", min_rows: int = 2) -> np.ndarray:
  """Validates a feature matrix and returns it as float64.

  Args:
    features: array-like [N, D].
    name: what to call it in the error message.
    min_rows: the least N accepted.

  Returns:
    The features as a float64 [N, D] array.

  Raises:
    ConfigError: not 2-D, fewer than `min_rows` rows, or non-finite values.
  """
  features = np.asarray(features, dtype=np.float64)
  if features.ndim != 2:
    raise ConfigError(f"{name}: expected a 2-D [N, D] feature array, got shape "
                      f"{features.shape}; flatten or pool the features first.")
  if features.shape[0] < min_rows:
    raise ConfigError(f"{name}: need at least {min_rows} feature rows, got "
                      f"{features.shape[0]}; evaluate on more samples.")
  if not np.all(np.isfinite(features)):
    raise ConfigError(f"{name}: features contain NaN or inf; check the model outputs "
                      "(a diverged run?) before computing metrics.")
  return features


def check_same_dim(f1: np.ndarray, f2: np.ndarray) -> None:
  """Raises ConfigError if two [N, D] feature arrays differ in D."""
  if f1.shape[1] != f2.shape[1]:
    raise ConfigError(f"feature dims differ ({f1.shape[1]} vs {f2.shape[1]}); compute "
                      "real and generated features with the same feature network.")


def gaussian_stats(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and covariance of a feature set, as in TTUR (np.cov, ddof=1).

  Args:
    features: [N, D] features, N >= 2.

  Returns:
    (mu [D], sigma [D, D]), float64.
  """
  features = check_features(features)
  mu = features.mean(axis=0)
  sigma = np.cov(features, rowvar=False)
  # np.cov returns a 0-d array for D == 1; keep the [D, D] contract.
  return mu, np.atleast_2d(sigma)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
  """scipy.linalg.sqrtm without its "Matrix is singular" warning.

  Singular covariances are routine (dead ReLU feature units have zero variance) and the
  Schur square root of such products is still accurate; a result that is not finite is
  handled by the caller, as TTUR does (it called sqrtm with disp=False).
  """
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
    return scipy.linalg.sqrtm(matrix)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = _SQRTM_EPS) -> float:
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

  Args:
    mu1: [D] mean of the first Gaussian (e.g. generated features).
    sigma1: [D, D] covariance of the first Gaussian.
    mu2: [D] mean of the second Gaussian (e.g. real features).
    sigma2: [D, D] covariance of the second Gaussian.
    eps: added to both diagonals if sqrtm(sigma1 @ sigma2) comes out non-finite.

  Returns:
    The squared Fréchet distance (what papers call FID), a Python float >= 0 up to
    round-off.

  Raises:
    ConfigError: shapes do not match.
    ValueError: sqrtm has a large imaginary component (covariances not PSD).
  """
  mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  d = mu1.shape[0]
  if (mu1.ndim != 1 or mu2.shape != (d,) or sigma1.shape != (d, d)
      or sigma2.shape != (d, d)):
    raise ConfigError(f"frechet_distance: shapes do not match (mu1 {mu1.shape}, mu2 "
                      f"{mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}); use "
                      "statistics of features from the same network.")
  diff = mu1 - mu2
  covmean = _sqrtm(sigma1 @ sigma2)
  if not np.all(np.isfinite(covmean)):
    # Singular product gone wrong: regularise both covariances slightly, as TTUR does.
    offset = np.eye(d) * eps
    covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    diag = np.diagonal(covmean)
    scale = max(1.0, float(np.max(np.abs(diag.real))))
    max_imag = float(np.max(np.abs(diag.imag)))
    if max_imag > _IMAG_RTOL * scale:
      raise ValueError(f"frechet_distance: sqrtm(sigma1 @ sigma2) has a large imaginary "
                       f"component ({max_imag:.3g}); the covariances are not PSD - check "
                       "that they come from gaussian_stats on finite features.")
    covmean = covmean.real
  fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
  return float(fid)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID between two feature sets (e.g. generated vs real, 10,000 each).

  The value depends on the feature network: label it "Inception FID" or "domain FID"
  accordingly (see the module docstring).

  Args:
    features1: [N1, D] features, N1 >= 2.
    features2: [N2, D] features, N2 >= 2, same D.

  Returns:
    The FID, a Python float.

  Raises:
    ConfigError: not 2-D, fewer than 2 rows, non-finite values, or different D.
  """
  features1 = check_features(features1, "features1")
  features2 = check_features(features2, "features2")
  check_same_dim(features1, features2)
  mu1, sigma1 = gaussian_stats(features1)
  mu2, sigma2 = gaussian_stats(features2)
  return frechet_distance(mu1, sigma1, mu2, sigma2)
