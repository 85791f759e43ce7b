"""Precision and recall for distributions (PRD) of Sajjadi et al. 2018.

arXiv:1806.00035. Real ("reference", distribution P) and generated ("evaluated",
distribution Q) features are pooled and clustered with MiniBatchKMeans (20 clusters);
the cluster histograms of the two sets are discrete distributions P and Q. For 1001
equally spaced angles theta in (0, pi/2), lambda = tan(theta):

  alpha(lambda) = sum_w min(lambda P(w), Q(w))     -> precision
  beta(lambda)  = alpha(lambda) / lambda           -> recall

Which is which, checked against the authors' reference code (`compute_prd(eval_dist,
ref_dist)`: precision = sum min(ref_dist * slope, eval_dist), recall = precision / slope)
and the paper's definition: Q has precision alpha at recall beta w.r.t. P when
P = beta mu + (1 - beta) nu_P and Q = alpha mu + (1 - alpha) nu_Q. Intuitively, mass of
Q in clusters P does not cover lowers precision (generated samples off the data);
mass of P in clusters Q does not reach lowers recall (modes missed).

The curves are averaged over `num_runs` clusterings (different k-means seeds). The
summary pair is max F_8 (weighs recall: "recall-like") and max F_{1/8} (weighs
precision: "precision-like"), F_b = (1 + b^2) p r / (b^2 p + r).
"""
import dataclasses
import os
from typing import Optional, Sequence, Union

import numpy as np
import sklearn.cluster

from rae_tf.errors import ConfigError
from rae_tf.metrics.fid import check_features, check_same_dim

# Angles 0 and pi/2 are replaced by eps and pi/2 - eps (tan would be 0 / inf).
_ANGLE_EPS = 1e-10
# Guards F_beta against 0/0 when precision and recall are both 0.
_F_EPS = 1e-10


@dataclasses.dataclass(frozen=True)
class PRDResult:
  """A PRD curve and its summary.

  Attributes:
    precision: [num_angles] precision (alpha) curve, averaged over runs.
    recall: [num_angles] recall (beta) curve, same angles.
    f_8: max F_8 over the curve (recall-like summary).
    f_1_8: max F_{1/8} over the curve (precision-like summary).
    num_samples: features per set actually used (after balancing).
  """
  precision: np.ndarray
  recall: np.ndarray
  f_8: float
  f_1_8: float
  num_samples: int


def prd_curve(eval_dist: np.ndarray, ref_dist: np.ndarray,
              num_angles: int = 1001) -> tuple:
  """PRD curve of two discrete distributions over the same states.

  Args:
    eval_dist: [K] probabilities of the evaluated (generated) distribution Q.
    ref_dist: [K] probabilities of the reference (real) distribution P.
    num_angles: angles in (0, pi/2); at least 3.

  Returns:
    (precision, recall), each [num_angles], clipped to [0, 1] (round-off can push
    identical distributions a hair above 1).
  """
  if num_angles < 3:
    raise ConfigError(f"num_angles must be >= 3, got {num_angles}.")
  angles = np.linspace(_ANGLE_EPS, np.pi / 2 - _ANGLE_EPS, num_angles)
  slopes = np.tan(angles)[:, None]
  precision = np.minimum(np.asarray(ref_dist)[None, :] * slopes,
                         np.asarray(eval_dist)[None, :]).sum(axis=1)
  recall = precision / slopes[:, 0]
  return np.clip(precision, 0.0, 1.0), np.clip(recall, 0.0, 1.0)


def f_beta(precision: np.ndarray, recall: np.ndarray, beta: float) -> np.ndarray:
  """F_beta = (1 + b^2) p r / (b^2 p + r), elementwise (beta > 1 favours recall)."""
  precision = np.asarray(precision, np.float64)
  recall = np.asarray(recall, np.float64)
  return (1 + beta**2) * precision * recall / (beta**2 * precision + recall + _F_EPS)


def _balance(real: np.ndarray, generated: np.ndarray, max_imbalance: float,
             rng: np.random.Generator) -> tuple:
  """Subsamples the larger set to the size of the smaller one (see compute_prd)."""
  n_real, n_gen = len(real), len(generated)
  n = min(n_real, n_gen)
  if max(n_real, n_gen) > max_imbalance * n:
    raise ConfigError(
        f"PRD needs about equal numbers of real and generated features, got {n_real} real "
        f"vs {n_gen} generated (more than {max_imbalance:g}x apart); evaluate as many "
        "generated samples as real ones.")
  # A random subset, not the first n rows: data sets are often stored sorted by class.
  if n_real > n:
    real = real[np.sort(rng.choice(n_real, n, replace=False))]
  if n_gen > n:
    generated = generated[np.sort(rng.choice(n_gen, n, replace=False))]
  return real, generated


def _cluster_histograms(real: np.ndarray, generated: np.ndarray, num_clusters: int,
                        seed: int, n_init: int) -> tuple:
  """Clusters the union; returns (generated histogram Q, real histogram P)."""
  data = np.concatenate([generated, real], axis=0)
  kmeans = sklearn.cluster.MiniBatchKMeans(
      n_clusters=num_clusters, n_init=n_init, random_state=seed)
  labels = kmeans.fit(data).labels_
  eval_counts = np.bincount(labels[:len(generated)], minlength=num_clusters)
  ref_counts = np.bincount(labels[len(generated):], minlength=num_clusters)
  return eval_counts / eval_counts.sum(), ref_counts / ref_counts.sum()


def compute_prd(real_features: np.ndarray, generated_features: np.ndarray,
                num_clusters: int = 20, num_angles: int = 1001, num_runs: int = 10,
                seed: int = 0, n_init: int = 10, max_imbalance: float = 2.0) -> PRDResult:
  """PRD of generated features w.r.t. real features (Sajjadi et al. 2018).

  Unequal set sizes: k-means on an unbalanced union is biased towards the larger set,
  so the reference code demands equal sizes. Here the larger set is randomly subsampled
  (seeded) to the size of the smaller one when the sizes are within `max_imbalance`x of
  each other (e.g. 10,000 generated vs 9,984 test features); further apart raises
  ConfigError, since silently dropping most of a set hides a mistake upstream.

  Args:
    real_features: [N1, D] features of real (test) images: the reference P.
    generated_features: [N2, D] features of generated images: the evaluated Q.
    num_clusters: k-means clusters (paper: 20).
    num_angles: points on the curve (paper: 1001).
    num_runs: clusterings to average the curves over (paper: 10); run i uses k-means
      seed `seed + i`.
    seed: base seed (k-means and subsampling); results are deterministic given it.
    n_init: k-means initialisations per run (reference code: 10).
    max_imbalance: largest accepted ratio of the two set sizes.

  Returns:
    A PRDResult.

  Raises:
    ConfigError: bad shapes, different feature dims, too few rows, or sets too unequal.
  """
  real = check_features(real_features, "real_features", min_rows=num_clusters)
  generated = check_features(generated_features, "generated_features",
                             min_rows=num_clusters)
  check_same_dim(real, generated)
  if num_runs < 1:
    raise ConfigError(f"num_runs must be >= 1, got {num_runs}.")
  real, generated = _balance(real, generated, max_imbalance, np.random.default_rng(seed))
  precisions, recalls = [], []
  for run in range(num_runs):
    eval_dist, ref_dist = _cluster_histograms(real, generated, num_clusters, seed + run,
                                              n_init)
    precision, recall = prd_curve(eval_dist, ref_dist, num_angles)
    precisions.append(precision)
    recalls.append(recall)
  precision = np.mean(precisions, axis=0)
  recall = np.mean(recalls, axis=0)
  return PRDResult(precision=precision, recall=recall,
                   f_8=float(np.max(f_beta(precision, recall, 8.0))),
                   f_1_8=float(np.max(f_beta(precision, recall, 1.0 / 8.0))),
                   num_samples=len(real))


def plot_prd(results: Union[PRDResult, Sequence[PRDResult]], path: str,
             labels: Optional[Sequence[str]] = None, backend: str = "auto") -> str:
  """Writes PRD curves (precision over recall, both in [0, 1]) as a PNG.

  Uses matplotlib when it is installed, else draws a plain line plot with PIL (no new
  dependency just for a figure).

  Args:
    results: one PRDResult or several (one curve each).
    path: output .png path; parent folders are created.
    labels: optional legend entries, one per result.
    backend: "auto", "matplotlib" or "pil".

  Returns:
    The path written.
  """
  if isinstance(results, PRDResult):
    results = [results]
  results = list(results)
  if labels is not None and len(labels) != len(results):
    raise ConfigError(f"plot_prd: {len(labels)} labels for {len(results)} results; give "
                      "one label per curve.")
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  if backend == "auto":
    try:
      import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
      backend = "matplotlib"
    except ImportError:
      backend = "pil"
  if backend == "matplotlib":
    _plot_matplotlib(results, path, labels)
  elif backend == "pil":
    _plot_pil(results, path, labels)
  else:
    raise ConfigError(f"plot_prd: unknown backend {backend!r}; use auto, matplotlib or pil.")
  return path


def _plot_matplotlib(results, path, labels):
  """The reference code's figure: recall on x, precision on y."""
  # A bare Figure (no pyplot): no global backend switch, no display needed.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(3.5, 3.5), dpi=150)
  ax = fig.add_subplot(111)
  for i, result in enumerate(results):
    ax.plot(result.recall, result.precision, alpha=0.7, linewidth=2,
            label=labels[i] if labels else None)
  if labels:
    ax.legend(loc="lower left")
  ax.set_xlim(0, 1)
  ax.set_ylim(0, 1)
  ax.set_xlabel("Recall")
  ax.set_ylabel("Precision")
  fig.tight_layout()
  fig.savefig(path, dpi=150)


_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
            (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def _plot_pil(results, path, labels, size=400, margin=50):
  """A minimal line plot with PIL: axes, 0 / 0.5 / 1 ticks, one polyline per curve."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  image = Image.new("RGB", (size, size), "white")
  draw = ImageDraw.Draw(image)
  side = size - 2 * margin

  def to_pixel(r, p):
    return margin + r * side, size - margin - p * side

  draw.rectangle([margin, margin, size - margin, size - margin], outline="black")
  for t in (0.0, 0.5, 1.0):
    x, y = to_pixel(t, 0.0)
    draw.line([x, y, x, y + 5], fill="black")
    draw.text((x - 8, y + 8), f"{t:g}", fill="black")
    x, y = to_pixel(0.0, t)
    draw.line([x - 5, y, x, y], fill="black")
    draw.text((x - 28, y - 6), f"{t:g}", fill="black")
  draw.text((size // 2 - 18, size - margin + 24), "Recall", fill="black")
  draw.text((4, margin - 20), "Precision", fill="black")
  for i, result in enumerate(results):
    colour = _COLOURS[i % len(_COLOURS)]
    points = [to_pixel(float(r), float(p)) for r, p in zip(result.recall, result.precision)]
    draw.line(points, fill=colour, width=2)
    if labels:
      draw.text((margin + 8, margin + 8 + 14 * i), labels[i], fill=colour)
  image.save(path, format="PNG")
