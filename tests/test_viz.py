"""Tests for rae_tf.viz: grids, interpolation, attribute directions, neighbours, plots."""
import os

import numpy as np
from PIL import Image
import pytest

from rae_tf import viz
from rae_tf.errors import ConfigError


def _images(n, h=5, w=4, c=1, seed=0):
  return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


def _png_shape(path):
  with Image.open(path) as image:
    return image.size[1], image.size[0], len(image.getbands())


def _cell(grid, row, col, h, w):
  return grid[row * (h + 1):row * (h + 1) + h, col * (w + 1):col * (w + 1) + w]


def _identity_decode(z):
  """Codes of size 6 become 2x3 one-channel images (pixel = code value)."""
  return np.asarray(z, np.float32).reshape(len(z), 2, 3, 1)


def test_save_png_float_uint8_and_gray(tmp_path):
  gray = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4, 1)
  path = viz.save_png(gray, str(tmp_path / "a" / "b" / "gray.png"))
  assert _png_shape(path) == (3, 4, 1)
  with Image.open(path) as image:
    np.testing.assert_array_equal(np.asarray(image), np.round(gray[..., 0] * 255))
  rgb = (np.arange(2 * 3 * 3) * 9).astype(np.uint8).reshape(2, 3, 3)
  path = viz.save_png(rgb, str(tmp_path / "rgb.png"))
  with Image.open(path) as image:
    np.testing.assert_array_equal(np.asarray(image), rgb)


def test_sample_grid_shape_and_file(tmp_path):
  path = str(tmp_path / "out" / "samples.png")
  grid = viz.sample_grid(_images(23, 5, 4, 3), path, columns=10)
  assert grid.shape == (3 * 6 - 1, 10 * 5 - 1, 3)
  assert _png_shape(path) == grid.shape
  # Fewer images than columns: one row, no empty columns.
  assert viz.sample_grid(_images(3), str(tmp_path / "s3.png")).shape == (5, 3 * 5 - 1, 1)


def test_reconstruction_pairs_rows_alternate(tmp_path):
  x, x_rec = _images(13, seed=1), _images(13, seed=2)
  path = str(tmp_path / "rec.png")
  grid = viz.reconstruction_pairs(x, x_rec, path, columns=5)
  assert grid.shape == (6 * 6 - 1, 5 * 5 - 1, 1)
  assert _png_shape(path) == grid.shape
  for i in range(13):
    chunk, col = divmod(i, 5)
    np.testing.assert_allclose(_cell(grid, 2 * chunk, col, 5, 4), x[i])
    np.testing.assert_allclose(_cell(grid, 2 * chunk + 1, col, 5, 4), x_rec[i])
  # The partial last chunk is padded with white.
  np.testing.assert_array_equal(_cell(grid, 5, 4, 5, 4), 1.0)
  with pytest.raises(ConfigError):
    viz.reconstruction_pairs(x, x_rec[:-1], path)


def test_linear_interpolation():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=8), rng.normal(size=8)
  path = viz.interpolate(a, b, 5, "linear")
  assert path.shape == (5, 8)
  np.testing.assert_array_equal(path[0], a)
  np.testing.assert_array_equal(path[-1], b)
  np.testing.assert_allclose(path[2], (a + b) / 2)


def test_slerp_keeps_norm_and_endpoints():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=16), rng.normal(size=16)
  b *= np.linalg.norm(a) / np.linalg.norm(b)
  path = viz.interpolate(a, b, 9, "slerp")
  np.testing.assert_allclose(path[0], a)
  np.testing.assert_allclose(path[-1], b)
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-10)
  # Not the straight line (which shrinks the norm in the middle).
  assert np.linalg.norm(path[4]) > np.linalg.norm((a + b) / 2)
  # Parallel endpoints fall back to linear instead of dividing by sin(0).
  np.testing.assert_allclose(viz.interpolate(a, 2 * a, 3, "slerp"),
                             viz.interpolate(a, 2 * a, 3, "linear"))


def test_interpolation_errors():
  with pytest.raises(ConfigError, match="--interpolation"):
    viz.interpolate(np.zeros(3), np.ones(3), 5, "cubic")
  with pytest.raises(ConfigError):
    viz.interpolate(np.zeros(3), np.ones(3), 1)
  with pytest.raises(ConfigError):
    viz.interpolate(np.zeros(3), np.ones(4), 5)


def test_interpolation_grid(tmp_path):
  rng = np.random.default_rng(2)
  pairs = rng.random((3, 2, 6))
  path = str(tmp_path / "interp.png")
  grid = viz.interpolation_grid(_identity_decode, pairs, 4, "slerp", path)
  assert grid.shape == (3 * 3 - 1, 4 * 4 - 1, 1)
  assert _png_shape(path) == grid.shape
  # Row 1 starts at the first code of pair 1 and ends at its second code.
  np.testing.assert_allclose(_cell(grid, 1, 0, 2, 3)[..., 0], pairs[1, 0].reshape(2, 3),
                             atol=1e-6)
  np.testing.assert_allclose(_cell(grid, 1, 3, 2, 3)[..., 0], pairs[1, 1].reshape(2, 3),
                             atol=1e-6)


def test_attribute_direction_recovers_shift():
  rng = np.random.default_rng(3)
  d = np.array([1.5, -2.0, 0.0, 0.5])
  codes = rng.normal(size=(4000, 4))
  labels = rng.integers(0, 3, size=4000)
  codes[labels == 2] += d
  np.testing.assert_allclose(viz.attribute_direction(codes, labels, 2), d, atol=0.15)
  # A boolean mask for a binary attribute.
  np.testing.assert_allclose(viz.attribute_direction(codes, labels == 2), d, atol=0.15)
  with pytest.raises(ConfigError):
    viz.attribute_direction(codes, labels, 7)
  with pytest.raises(ConfigError):
    viz.attribute_direction(codes, np.zeros(4000, bool) | True)
  with pytest.raises(ConfigError):
    viz.attribute_direction(codes, labels[:-1], 2)


def test_attribute_manipulation_centre_is_original(tmp_path):
  rng = np.random.default_rng(4)
  z = rng.random((3, 6)) * 0.5 + 0.25
  direction = np.full(6, 0.1)
  alphas = np.linspace(-2, 2, 5)
  path = str(tmp_path / "attr.png")
  grid = viz.attribute_manipulation(_identity_decode, z, direction, alphas, path)
  assert grid.shape == (3 * 3 - 1, 5 * 4 - 1, 1)
  assert _png_shape(path) == grid.shape
  for r in range(3):
    np.testing.assert_allclose(_cell(grid, r, 2, 2, 3)[..., 0], z[r].reshape(2, 3),
                               atol=1e-6)
    np.testing.assert_allclose(_cell(grid, r, 4, 2, 3)[..., 0],
                               (z[r] + 2 * direction).reshape(2, 3), atol=1e-6)
  with pytest.raises(ConfigError):
    viz.attribute_manipulation(_identity_decode, z, direction[:4], alphas, path)


def test_nearest_neighbours_match_brute_force():
  rng = np.random.default_rng(5)
  queries, refs = rng.random((37, 20)), rng.random((1000, 20))
  queries[5] = refs[321]
  # Small chunks exercise the running top-k across query and reference blocks.
  got = viz.nearest_neighbours(queries, refs, 7, query_chunk=8, reference_chunk=150)
  dist = ((queries[:, None, :] - refs[None, :, :]) ** 2).sum(-1)
  np.testing.assert_array_equal(got, np.argsort(dist, axis=1, kind="stable")[:, :7])
  assert got[5, 0] == 321
  with pytest.raises(ConfigError):
    viz.nearest_neighbours(queries, refs, 1001)
  with pytest.raises(ConfigError):
    viz.nearest_neighbours(queries, refs[:, :10], 3)


def test_nearest_neighbours_ties_go_to_lower_index():
  refs = np.array([[1.0], [0.0], [1.0], [0.0]])
  np.testing.assert_array_equal(viz.nearest_neighbours(np.array([[0.0]]), refs, 3,
                                                       reference_chunk=1), [[1, 3, 0]])


def test_neighbour_grid(tmp_path):
  train = _images(50, seed=6)
  generated = train[[10, 20]] + 0.001
  path = str(tmp_path / "nn.png")
  grid = viz.neighbour_grid(generated, train, 3, path)
  assert grid.shape == (2 * 6 - 1, 4 * 5 - 1, 1)
  assert _png_shape(path) == grid.shape
  np.testing.assert_allclose(_cell(grid, 0, 0, 5, 4), np.clip(generated[0], 0, 1))
  np.testing.assert_allclose(_cell(grid, 1, 1, 5, 4), train[20])


def test_embedding_plot_pca(tmp_path):
  rng = np.random.default_rng(7)
  codes, labels = rng.normal(size=(300, 5)), rng.integers(0, 10, size=300)
  path = str(tmp_path / "emb" / "pca.png")
  coords = viz.embedding_plot(codes, labels, path, max_points=120)
  assert coords.shape == (120, 2) and os.path.exists(path)
  again = viz.embedding_plot(codes, labels, str(tmp_path / "pca2.png"), max_points=120)
  np.testing.assert_array_equal(coords, again)
  with open(path, "rb") as f1, open(tmp_path / "pca2.png", "rb") as f2:
    assert f1.read() == f2.read()
  assert viz.embedding_plot(codes, None, path).shape == (300, 2)
  image = viz.embedding_plot(codes, rng.random(300), path, return_image=True)
  assert image.ndim == 3 and image.shape[-1] == 3 and 0 <= image.min() <= image.max() <= 1
  assert _png_shape(path) == image.shape


def test_embedding_plot_tsne_small(tmp_path):
  codes = np.random.default_rng(8).normal(size=(40, 4))
  path = str(tmp_path / "tsne.png")
  coords = viz.embedding_plot(codes, np.arange(40) % 3, path, method="tsne")
  assert coords.shape == (40, 2) and np.all(np.isfinite(coords))
  assert os.path.exists(path)


def test_embedding_plot_errors(tmp_path):
  codes = np.zeros((10, 3))
  with pytest.raises(ConfigError, match="umap"):
    viz.embedding_plot(codes, None, str(tmp_path / "x.png"), method="umap")
  with pytest.raises(ConfigError):
    viz.embedding_plot(codes, np.zeros(9), str(tmp_path / "x.png"))


def test_covariance_heatmap(tmp_path):
  rng = np.random.default_rng(9)
  cov = np.cov(rng.normal(size=(100, 6)), rowvar=False)
  path = str(tmp_path / "cov" / "cov.png")
  assert viz.covariance_heatmap(cov, path, title="cov") is None
  assert os.path.exists(path)
  image = viz.covariance_heatmap(cov, path, return_image=True)
  assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.float32
  assert _png_shape(path) == image.shape
  with pytest.raises(ConfigError):
    viz.covariance_heatmap(np.zeros((3, 4)), path)


def test_figure_to_array():
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(2, 1), dpi=50)
  fig.add_subplot(111).plot([0, 1], [1, 0])
  image = viz.figure_to_array(fig)
  assert image.shape == (50, 100, 3) and 0 <= image.min() < image.max() <= 1
