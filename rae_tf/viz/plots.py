"""Matplotlib figures: code embeddings and covariance heat maps.

Figures are bare `matplotlib.figure.Figure`s drawn on an Agg canvas, so no pyplot state
or display is involved; matplotlib and scikit-learn are imported on first use.
"""
from typing import Optional

import numpy as np

from rae_tf.errors import ConfigError
from rae_tf.viz.grids import save_png

EMBEDDING_METHODS = ("pca", "tsne")


def new_figure(width: float = 6.0, height: float = 4.0, dpi: int = 100):
  """A bare Figure on an Agg canvas (no pyplot state, no display). Sizes in inches."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(width, height), dpi=dpi)
  FigureCanvasAgg(fig)
  return fig


def png_bytes(fig) -> bytes:
  """The figure as PNG bytes (tight layout, no software metadata: stable across runs)."""
  import io  # pylint: disable=g-import-not-at-top
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", metadata={"Software": None})
  return buf.getvalue()


def figure_to_array(fig) -> np.ndarray:
  """Renders a matplotlib figure to an [H, W, 3] float32 image in [0, 1].

  Args:
    fig: a matplotlib Figure (pyplot-made or bare).

  Returns:
    The RGB pixels, e.g. for tf.summary.image.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  canvas = fig.canvas
  if not hasattr(canvas, "buffer_rgba"):
    canvas = FigureCanvasAgg(fig)
  canvas.draw()
  rgba = np.asarray(canvas.buffer_rgba())
  return rgba[..., :3].astype(np.float32) / 255.0


def _save_figure(fig, path: str) -> np.ndarray:
  # Saving the rendered pixels keeps the PNG identical to the TensorBoard image and free
  # of matplotlib's version metadata (byte-identical across runs).
  image = figure_to_array(fig)
  save_png(image, path)
  return image


def embedding_plot(codes: np.ndarray, labels: Optional[np.ndarray], path: str,
                   method: str = "pca", max_points: int = 2000, return_image: bool = False,
                   random_state: int = 0):
  """2-D scatter plot of latent codes, coloured by label, saved as PNG.

  Args:
    codes: [N, m] latent codes.
    labels: [N] labels (integer classes get a legend, other values a colour bar) or None.
    path: output PNG path.
    method: "pca" or "tsne" (scikit-learn, fixed random_state).
    max_points: at most this many codes are embedded, drawn with a fixed seed.
    return_image: return the rendered figure instead of the coordinates.
    random_state: seed of the subsample and of t-SNE.

  Returns:
    The [min(N, max_points), 2] coordinates, or with return_image=True the [H, W, 3]
    image in [0, 1].
  """
  if method not in EMBEDDING_METHODS:
    raise ConfigError(f"--embedding={method!r} is unknown; use one of "
                      f"{', '.join(EMBEDDING_METHODS)}.")
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or len(codes) < 2:
    raise ConfigError(f"embedding_plot: codes have shape {codes.shape}; pass [N, m] codes "
                      "with N >= 2.")
  if labels is not None:
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(codes):
      raise ConfigError(f"embedding_plot: {len(labels)} labels for {len(codes)} codes; "
                        "pass one label per code (or None).")
  if int(max_points) < 2:
    raise ConfigError(f"embedding_plot: max_points={max_points}; use at least 2.")
  if len(codes) > max_points:
    keep = np.sort(np.random.default_rng(random_state).choice(
        len(codes), int(max_points), replace=False))
    codes = codes[keep]
    labels = labels[keep] if labels is not None else None
  if codes.shape[1] == 1:
    # A 1-D code has one informative axis; plot it against zeros.
    coords = np.concatenate([codes - codes.mean(), np.zeros_like(codes)], axis=1)
  elif method == "pca":
    from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top
    coords = PCA(n_components=2, random_state=random_state).fit_transform(codes)
  else:
    from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top
    # Perplexity must stay below the number of points for small sets.
    perplexity = float(min(30.0, max(1.0, (len(codes) - 1) / 3.0)))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca",
                  random_state=random_state).fit_transform(codes)

  fig = new_figure(5.0, 4.5)
  ax = fig.add_subplot(111)
  if labels is None:
    ax.scatter(coords[:, 0], coords[:, 1], s=4, alpha=0.6)
  elif np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
    classes = np.unique(labels)
    cmap = _categorical_cmap(len(classes))
    for i, c in enumerate(classes):
      sel = labels == c
      ax.scatter(coords[sel, 0], coords[sel, 1], s=4, alpha=0.6, color=cmap(i),
                 label=str(c))
    if len(classes) <= 20:
      # Outside the axes so the legend never hides points.
      ax.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5),
                frameon=False)
  else:
    points = ax.scatter(coords[:, 0], coords[:, 1], s=4, alpha=0.6,
                        c=labels.astype(np.float64), cmap="viridis")
    fig.colorbar(points, ax=ax)
  ax.set_title(f"codes ({method.upper() if method == 'pca' else 't-SNE'})")
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  image = _save_figure(fig, path)
  return image if return_image else coords


def _categorical_cmap(n: int):
  import matplotlib  # pylint: disable=g-import-not-at-top
  name = "tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"
  cmap = matplotlib.colormaps[name]
  if name == "turbo":
    return lambda i: cmap(i / max(n - 1, 1))
  return cmap


def covariance_heatmap(cov: np.ndarray, path: str, title: str = "",
                       return_image: bool = False) -> Optional[np.ndarray]:
  """Heat map of an [m, m] (covariance) matrix with a colour bar, saved as PNG.

  The colour scale is symmetric around zero so positive and negative entries compare.

  Args:
    cov: [m, m] matrix.
    path: output PNG path.
    title: figure title.
    return_image: also return the rendered figure.

  Returns:
    None, or with return_image=True the [H, W, 3] image in [0, 1].
  """
  cov = np.asarray(cov, np.float64)
  if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
    raise ConfigError(f"covariance_heatmap: matrix has shape {cov.shape}; pass a square "
                      "[m, m] matrix.")
  vmax = float(np.max(np.abs(cov))) if cov.size else 1.0
  vmax = vmax if np.isfinite(vmax) and vmax > 0 else 1.0
  fig = new_figure(5.0, 4.2)
  ax = fig.add_subplot(111)
  heat = ax.imshow(cov, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
  fig.colorbar(heat, ax=ax)
  if title:
    ax.set_title(title)
  # Latent dimensions are whole numbers.
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.yaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set_xlabel("latent dimension")
  ax.set_ylabel("latent dimension")
  fig.tight_layout()
  image = _save_figure(fig, path)
  return image if return_image else None


def prior_codes_projection(codes: np.ndarray, prior_samples: np.ndarray,
                           title: str = "") -> np.ndarray:
  """Prior samples over encoded codes, projected on the codes' top-2 principal axes.

  Shows how well a learned prior covers the code distribution (FlexAE's TensorBoard
  image): orange points outside the blue cloud are samples that decode to off-manifold
  images; blue regions without orange are codes the prior never generates (low recall).

  Args:
    codes: [N, m] encoded codes.
    prior_samples: [M, m] prior samples.
    title: the figure's title.

  Returns:
    The rendered [H, W, 3] float32 image in [0, 1].
  """
  codes = np.asarray(codes, np.float64)
  prior_samples = np.asarray(prior_samples, np.float64)
  mean = codes.mean(axis=0)
  if codes.shape[1] >= 2:
    _, _, vt = np.linalg.svd(codes - mean, full_matrices=False)
    axes = vt[:2].T
  else:
    axes = np.eye(codes.shape[1], 2)
  c2, p2 = (codes - mean) @ axes, (prior_samples - mean) @ axes
  fig = new_figure(4.0, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  ax.scatter(c2[:, 0], c2[:, 1], s=4, alpha=0.5, color="tab:blue", label="codes E(x)")
  ax.scatter(p2[:, 0], p2[:, 1], s=4, alpha=0.5, color="tab:orange", label="prior samples")
  ax.set_xlabel("PC 1 of the codes")
  ax.set_ylabel("PC 2")
  ax.legend(loc="upper right", fontsize=7, markerscale=3)
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  return figure_to_array(fig)


def mask_history_image(history: np.ndarray, title: str = "mask over training",
                       path: Optional[str] = None, xlabel: str = "epoch") -> np.ndarray:
  """MaskAAE's mask over training: a heat map of mu (time on x, latent dimension on y).

  The seed's Fig. 6: spurious dimensions fade from yellow (mu = 1) to dark (mu = 0).

  Args:
    history: [T, m] mask values mu in [0, 1], one row per epoch (or per logged step).
    title: the figure's title.
    path: also save the PNG here (None: do not save).
    xlabel: what the rows of `history` are.

  Returns:
    The rendered [H, W, 3] float32 image in [0, 1].
  """
  from rae_tf.metrics.latent import MASK_THRESHOLD  # pylint: disable=g-import-not-at-top
  history = np.atleast_2d(np.asarray(history, np.float64))
  if history.ndim != 2:
    raise ConfigError(f"mask history: expected [T, m], got shape {history.shape}")
  fig = new_figure(5.0, 3.2)
  ax = fig.add_subplot(1, 1, 1)
  image = ax.imshow(history.T, aspect="auto", origin="lower", vmin=0.0, vmax=1.0,
                    cmap="viridis", interpolation="nearest",
                    extent=(0.5, history.shape[0] + 0.5, -0.5, history.shape[1] - 0.5))
  fig.colorbar(image, ax=ax, label="mask mu")
  ax.set_xlabel(xlabel)
  ax.set_ylabel("latent dimension")
  ax.set_title(f"{title} (m_A = {int(np.sum(history[-1] >= MASK_THRESHOLD))})", fontsize=9)
  fig.tight_layout()
  return _save_figure(fig, path) if path else figure_to_array(fig)
