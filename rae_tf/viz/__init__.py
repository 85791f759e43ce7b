"""Figures for regularized auto-encoders, on numpy arrays and plain decode callables.

Every function writes a PNG under the path it is given (creating folders) and is
deterministic. Decoders are passed as `decode_fn(z [B, m]) -> images [B, H, W, C]`, e.g.
`lambda z: model.decode(z).numpy()`.

  grids       save_png, sample_grid, reconstruction_pairs, neighbour_grid.
  latent      interpolate, interpolation_grid, attribute_direction, attribute_manipulation.
  neighbours  nearest_neighbours (exact, chunked, pixel space).
  plots       embedding_plot (PCA / t-SNE), covariance_heatmap, figure_to_array.
"""
from rae_tf.viz.grids import neighbour_grid
from rae_tf.viz.grids import reconstruction_pairs
from rae_tf.viz.grids import sample_grid
from rae_tf.viz.grids import save_png
from rae_tf.viz.latent import attribute_direction
from rae_tf.viz.latent import attribute_manipulation
from rae_tf.viz.latent import INTERPOLATION_MODES
from rae_tf.viz.latent import interpolate
from rae_tf.viz.latent import interpolation_grid
from rae_tf.viz.neighbours import nearest_neighbours
from rae_tf.viz.plots import covariance_heatmap
from rae_tf.viz.plots import EMBEDDING_METHODS
from rae_tf.viz.plots import embedding_plot
from rae_tf.viz.plots import figure_to_array
