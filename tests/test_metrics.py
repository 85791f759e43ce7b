"""Correctness tests of rae_tf.metrics (FID, PRD, improved P&R, NAC, feature networks)."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from rae_tf.errors import ConfigError
from rae_tf.metrics import fid, improved_pr, latent, prd


def _gaussian(n, d, seed, shift=0.0):
  return np.random.default_rng(seed).normal(size=(n, d)) + shift


# ---------------------------------------------------------------- FID


def test_fid_of_set_with_itself_is_zero():
  x = _gaussian(2000, 32, 0) @ np.random.default_rng(1).normal(size=(32, 32))
  mu, sigma = fid.gaussian_stats(x)
  value = fid.fid_from_features(x, x)
  assert abs(value) < 1e-6 * np.trace(sigma)


def test_frechet_distance_matches_closed_form_diagonal():
  rng = np.random.default_rng(0)
  d = 16
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  v1, v2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
  expected = np.sum((mu1 - mu2)**2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
  got = fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
  assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_closed_form_full_covariance():
  # Commuting covariances (same eigenvectors): (S1 S2)^{1/2} = Q sqrt(l1 l2) Q^T.
  rng = np.random.default_rng(1)
  d = 12
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  l1, l2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
  s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
  mu1, mu2 = rng.normal(size=d), np.zeros(d)
  expected = mu1 @ mu1 + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_from_samples_near_closed_form():
  # Sample FID of N(0, I) vs N(1, 4 I) approaches d * (1 + 1 + 4 - 2 * 2) = 2 d.
  x, y = _gaussian(20000, 4, 0), 2 * _gaussian(20000, 4, 1) + 1
  assert fid.fid_from_features(x, y) == pytest.approx(8.0, rel=0.03)


def test_frechet_distance_singular_covariance_is_finite():
  # Fewer samples than dims: singular covariances take the eps * I path.
  value = fid.fid_from_features(_gaussian(10, 20, 0), _gaussian(10, 20, 1))
  assert np.isfinite(value) and value > 0


def test_fid_with_dead_feature_units(recwarn):
  # Constant (dead ReLU) feature dims make both covariances singular: the FID equals the
  # FID of the live dims, without a LinAlgWarning.
  x, y = _gaussian(3000, 6, 0), _gaussian(3000, 6, 1, shift=0.5)
  x[:, 2] = y[:, 2] = 0.0
  live = [0, 1, 3, 4, 5]
  assert fid.fid_from_features(x, y) == pytest.approx(
      fid.fid_from_features(x[:, live], y[:, live]), rel=1e-6)
  assert not [w for w in recwarn if "singular" in str(w.message)]


def test_fid_errors():
  with pytest.raises(ConfigError, match="feature dims differ"):
    fid.fid_from_features(_gaussian(10, 3, 0), _gaussian(10, 4, 1))
  with pytest.raises(ConfigError, match="2-D"):
    fid.fid_from_features(np.zeros(10), _gaussian(10, 4, 1))
  with pytest.raises(ConfigError, match="at least 2"):
    fid.fid_from_features(_gaussian(1, 4, 0), _gaussian(10, 4, 1))
  with pytest.raises(ConfigError, match="NaN"):
    fid.fid_from_features(np.full((5, 2), np.nan), _gaussian(10, 2, 1))
  with pytest.raises(ConfigError, match="shapes do not match"):
    fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_frechet_distance_rejects_non_psd():
  # sqrtm of a product with a large negative eigenvalue is genuinely complex.
  with pytest.raises(ValueError, match="imaginary"):
    fid.frechet_distance(np.zeros(2), np.diag([1.0, -4.0]), np.zeros(2), np.eye(2))


# ---------------------------------------------------------------- PRD


def test_prd_identical_sets():
  x = _gaussian(1000, 8, 0)
  result = prd.compute_prd(x, x, num_runs=2)
  assert result.precision.shape == (1001,) and result.recall.shape == (1001,)
  assert result.f_8 > 0.99 and result.f_1_8 > 0.99
  assert result.precision.max() == pytest.approx(1.0) and result.recall.max() == pytest.approx(1.0)


def test_prd_shifted_sets_drop():
  real = _gaussian(1000, 8, 0)
  result = prd.compute_prd(real, _gaussian(1000, 8, 1, shift=1.5), num_runs=2)
  assert result.f_8 < 0.7 and result.f_1_8 < 0.7


def test_prd_semantics_precision_vs_recall():
  # Generated = half of the real modes (mode dropping): high precision, low recall.
  rng = np.random.default_rng(0)
  centers = 10 * rng.normal(size=(4, 8))
  real = centers[rng.integers(0, 4, 2000)] + rng.normal(size=(2000, 8))
  generated = centers[rng.integers(0, 2, 2000)] + rng.normal(size=(2000, 8))
  result = prd.compute_prd(real, generated, num_clusters=8, num_runs=2)
  assert result.f_1_8 > 0.9  # precision-like
  assert result.f_8 < 0.7  # recall-like


def test_prd_curve_closed_form():
  p, r = prd.prd_curve(np.array([0.5, 0.5, 0.0]), np.array([1 / 3, 1 / 3, 1 / 3]), 1001)
  # Generated misses one third of the real mass: max recall 2/3; all of it is on real
  # clusters: max precision 1.
  assert r.max() == pytest.approx(2 / 3, abs=1e-6)
  assert p.max() == pytest.approx(1.0, abs=1e-6)


def test_prd_balancing_and_errors():
  x = _gaussian(300, 4, 0)
  result = prd.compute_prd(x, _gaussian(200, 4, 1), num_runs=1)
  assert result.num_samples == 200
  with pytest.raises(ConfigError, match="equal numbers"):
    prd.compute_prd(x, _gaussian(100, 4, 1))
  with pytest.raises(ConfigError, match="feature dims differ"):
    prd.compute_prd(x, _gaussian(300, 5, 1))


def test_plot_prd_pil(tmp_path):
  x = _gaussian(200, 4, 0)
  results = [prd.compute_prd(x, x, num_runs=1),
             prd.compute_prd(x, _gaussian(200, 4, 1, 1.0), num_runs=1)]
  path = prd.plot_prd(results, str(tmp_path / "sub" / "prd.png"), labels=["same", "shifted"],
                      backend="pil")
  image = Image.open(path)
  assert image.format == "PNG" and image.size == (400, 400)
  assert len(set(image.getdata())) > 2  # Something was drawn.
  # The default backend works whichever is installed.
  assert os.path.isfile(prd.plot_prd(results[0], str(tmp_path / "auto.png")))


# ---------------------------------------------------------------- improved P&R


def test_improved_pr_identical_sets():
  x = _gaussian(2000, 16, 0)
  result = improved_pr.improved_precision_recall(x, x, chunk_size=300)
  assert result.precision == 1.0 and result.recall == 1.0 and result.k == 3


def test_improved_pr_shift_and_chunking():
  real, fake = _gaussian(1500, 16, 0), _gaussian(1200, 16, 1, shift=1.0)
  a = improved_pr.improved_precision_recall(real, fake, chunk_size=256)
  b = improved_pr.improved_precision_recall(real, fake, chunk_size=5000)
  assert (a.precision, a.recall) == (b.precision, b.recall)
  assert a.precision < 0.5 and a.recall < 0.5
  same = improved_pr.improved_precision_recall(real, _gaussian(1200, 16, 2))
  assert same.precision > 0.5 and same.recall > 0.5


def test_improved_pr_matches_brute_force():
  real, fake = _gaussian(300, 5, 0) + 100.0, _gaussian(250, 5, 1, shift=0.3) + 100.0
  d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
  d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
  d_fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)
  r_real, r_fake = np.sort(d_rr, axis=1)[:, 3], np.sort(d_ff, axis=1)[:, 3]
  precision = np.mean(np.any(d_fr <= r_real[None], axis=1))
  recall = np.mean(np.any(d_fr.T <= r_fake[None], axis=1))
  result = improved_pr.improved_precision_recall(real, fake, chunk_size=64)
  assert result.precision == pytest.approx(precision, abs=1 / 250)
  assert result.recall == pytest.approx(recall, abs=1 / 300)


# ---------------------------------------------------------------- latent


def test_nac_independent_codes_near_zero():
  assert latent.nac(_gaussian(5000, 16, 0) * np.arange(1, 17)) < 0.05


def test_nac_perfectly_correlated_is_one():
  base = _gaussian(1000, 1, 0)
  codes = base * np.array([1.0, -2.0, 0.5, 3.0])
  assert latent.nac(codes) == pytest.approx(1.0, abs=1e-9)


def test_nac_active_dims_and_nan():
  rng = np.random.default_rng(0)
  codes = rng.normal(size=(2000, 4))
  codes[:, 1] = codes[:, 0]  # Dims 0 and 1 fully correlated.
  codes[:, 3] = 0.0  # Constant: always dropped.
  assert latent.nac(codes, active=[True, True, False, True]) == pytest.approx(1.0)
  # 3 non-constant dims: pairs (0,1)=1, (0,2)~0, (1,2)~0 -> ~1/3.
  assert latent.nac(codes) == pytest.approx(1 / 3, abs=0.03)
  assert np.isnan(latent.nac(codes, active=[True, False, False, True]))
  with pytest.raises(ConfigError, match="one bool per latent dimension"):
    latent.nac(codes, active=[True, True])


def test_active_dims_from_mask():
  mask = np.array([0.0, 0.05, 0.0999, 0.1, 0.5, 0.99])
  np.testing.assert_array_equal(latent.active_dims_from_mask(mask),
                                [False, False, False, True, True, True])
  np.testing.assert_array_equal(latent.active_dims_from_mask(mask, threshold=0.5),
                                [False] * 4 + [True, True])


def test_active_dims_from_variance():
  codes = _gaussian(5000, 5, 0) * np.array([1.0, 0.5, 0.05, 0.0, 2.0])
  np.testing.assert_array_equal(latent.active_dims_from_variance(codes),
                                [True, True, False, False, True])
  np.testing.assert_array_equal(
      latent.active_dims_from_variance(codes, threshold=1e-4, relative=False),
      [True, True, True, False, True])


def test_latent_covariance():
  codes = _gaussian(20000, 3, 0) * np.array([1.0, 2.0, 3.0])
  cov = latent.latent_covariance(codes)
  assert cov.shape == (3, 3)
  np.testing.assert_allclose(np.diag(cov), [1, 4, 9], rtol=0.05)
  with pytest.raises(ConfigError, match="2-D"):
    latent.latent_covariance(np.zeros(5))


# ---------------------------------------------------------------- feature networks


def _two_class_images(n, shape, seed):
  """Class 0: bright top half; class 1: bright bottom half; plus noise."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  x = 0.2 * rng.uniform(size=(n,) + shape).astype(np.float32)
  half = shape[0] // 2
  x[y == 0, :half] += 0.6
  x[y == 1, half:] += 0.6
  return np.clip(x, 0, 1), y


def test_inception_preprocessing():
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  gray = np.zeros((2, 4, 4, 1), np.float32)
  gray[:, :2] = 1.0
  out = features.preprocess_for_inception(gray, size=8)
  assert out.shape == (2, 8, 8, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out[..., 0], out[..., 2])  # Tiled channels.
  np.testing.assert_allclose(out[:, 0], 1.0)  # Bright rows -> +1.
  np.testing.assert_allclose(out[:, -1], -1.0)  # Dark rows -> -1.
  rgb = np.random.default_rng(0).uniform(size=(1, 5, 5, 3)).astype(np.float32)
  out = features.preprocess_for_inception(rgb, size=5)  # Same size: no resampling.
  np.testing.assert_allclose(out, rgb * 2 - 1, atol=1e-6)
  assert features.preprocess_for_inception(np.full((1, 3, 3), 255, np.uint8), 3).max() == 1.0
  with pytest.raises(ConfigError, match="1 or 3 channels"):
    features.preprocess_for_inception(np.zeros((1, 4, 4, 2)))


def test_inception_weights_errors(tmp_path):
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="--inception_weights"):
    features.InceptionFeatures(None)
  with pytest.raises(ConfigError, match="--inception_weights=.*no such file"):
    features.InceptionFeatures(str(tmp_path / "missing.h5"))


def test_inception_features_with_random_weights(tmp_path):
  # Real weights can't be downloaded here: save a randomly initialised InceptionV3's
  # weights and check the load + feature path end to end.
  import keras  # pylint: disable=g-import-not-at-top
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "inception.weights.h5")
  keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                 input_shape=(299, 299, 3)).save_weights(path)
  net = features.InceptionFeatures(path)
  images = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
  out = net.features(images, batch_size=2)
  assert out.shape == (3, 2048) and np.all(np.isfinite(out))
  assert net.label == "Inception FID"


def test_domain_classifier_trains_and_caches(tmp_path):
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  x_train, y_train = _two_class_images(600, (16, 16, 1), 0)
  x_test, y_test = _two_class_images(200, (16, 16, 1), 1)
  net = features.get_domain_features(str(tmp_path), x_train, y_train, x_test, y_test,
                                     epochs=3, batch_size=64)
  assert net.test_accuracy > 0.9
  assert net.label == "domain FID"
  files = sorted(os.listdir(tmp_path))
  assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".keras")
  feats = net.features(x_test[:50])
  assert feats.shape == (50, 128) and feats.dtype == np.float32
  reloaded = features.get_domain_features(str(tmp_path), x_train, y_train, x_test, y_test,
                                          epochs=3, batch_size=64)
  assert reloaded.test_accuracy == net.test_accuracy
  assert reloaded.fingerprint == net.fingerprint and len(net.fingerprint) == 12
  np.testing.assert_array_equal(reloaded.features(x_test[:50]), feats)
  assert sorted(os.listdir(tmp_path)) == files  # Loaded, not retrained.
  with pytest.raises(ConfigError, match="trained on"):
    reloaded.features(np.zeros((2, 8, 8, 1)))
  meta = json.loads((tmp_path / files[0]).read_text())
  assert meta["weights"] == net.fingerprint
  (tmp_path / files[0]).write_text(json.dumps(dict(meta, weights="0" * 12)))
  with pytest.raises(ConfigError, match="restore the pair"):  # A swapped classifier.
    features.get_domain_features(str(tmp_path), x_train, y_train, x_test, y_test,
                                 epochs=3, batch_size=64)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_domain_classifier_any_shape(shape):
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  model = features.build_domain_classifier(shape, 10)
  extractor = features.DomainClassifierFeatures(model, 0.0)
  assert extractor.features(np.zeros((3,) + shape, np.float32)).shape == (3, 128)


def test_weights_fingerprint_tells_classifiers_apart():
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  model = features.build_domain_classifier((8, 8, 1), 3, seed=0)
  same = features.build_domain_classifier((8, 8, 1), 3, seed=0)
  assert features.weights_fingerprint(model) == features.weights_fingerprint(same)
  weights = same.get_weights()
  weights[-1] = weights[-1] + 1e-6  # One bias nudged: another classifier.
  same.set_weights(weights)
  assert features.weights_fingerprint(model) != features.weights_fingerprint(same)


def test_domain_features_need_labels(tmp_path):
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  x = np.zeros((10, 8, 8, 1), np.float32)
  with pytest.raises(ConfigError, match="--features=inception"):
    features.get_domain_features(str(tmp_path), x, None, x, None)


def test_committed_domain_classifiers_load_and_are_documented():
  """benchmarks/domain_classifiers: each pair loads, matches its fingerprint, is listed."""
  from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top
  folder = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "domain_classifiers")
  readme = open(os.path.join(folder, "README.md")).read()
  paths = sorted(p for p in os.listdir(folder) if p.endswith(".keras"))
  assert len(paths) == 2
  for name in paths:
    net = features.DomainClassifierFeatures.load(os.path.join(folder, name))
    key = name[len("domain_classifier_"):-len(".keras")]
    assert f"| {key} |" in readme and f"| {net.fingerprint} |" in readme
    assert f"| {net.test_accuracy:.4f} |" in readme
