"""Tests for rae_tf.data: offline sources, pipelines and every npz error case."""
import os

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import data
from rae_tf.errors import ConfigError

SHARED_FASHION = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                              "fashion_mnist.npz")


def _small_synthetic(**kwargs):
  cfg = dict(name="synthetic", true_latent_dim=2, ambient_dim=10, num_examples=2000, seed=0)
  cfg.update(kwargs)
  return data.get_data_source(data.DataConfig(**cfg))


def _epoch(ds):
  return np.concatenate([b.numpy() for b in ds], axis=0)


# ----------------------------------------------------------------------------- registry


def test_registered_names():
  assert set(data.DATASETS.names()) == {
      "mnist10k", "synthetic", "synthetic_image", "mnist", "fashion_mnist", "cifar10",
      "celeb_a"}


def test_unknown_dataset_lists_choices():
  with pytest.raises(ConfigError) as e:
    data.get_data_source(data.DataConfig(name="imagenet"))
  msg = str(e.value)
  assert "--dataset" in msg and "'imagenet'" in msg
  assert "mnist10k" in msg and "synthetic" in msg and "npz:PATH" in msg
  assert "\n" not in msg


# ----------------------------------------------------------------------------- mnist10k


def test_mnist10k_package_data():
  assert os.path.isfile(os.path.join(data.npz._DATA_FILES_DIR, "mnist10k.npz"))
  assert os.path.isfile(os.path.join(data.npz._DATA_FILES_DIR, "README.md"))


def test_mnist10k_spec_and_arrays():
  src = data.get_data_source(data.DataConfig())
  assert src.spec == data.DataSpec("mnist10k", (28, 28, 1), True, 9003, 997, None)
  x, y = src.arrays("test")
  assert x.dtype == np.float32 and x.shape == (997, 28, 28, 1)
  assert x.min() == 0.0 and x.max() == 1.0
  assert y.dtype == np.int64 and y.shape == (997,) and set(np.unique(y)) == set(range(10))
  x, y = src.arrays("train", limit=10)
  assert x.shape == (10, 28, 28, 1) and y.shape == (10,)
  assert 0.05 < x.mean() < 0.25  # Mostly black background, some ink.


def test_arrays_bad_limit_and_split():
  src = data.get_data_source(data.DataConfig())
  with pytest.raises(ConfigError, match="at most 997"):
    src.arrays("test", limit=998)
  with pytest.raises(ConfigError, match="split"):
    src.arrays("validation")
  assert src.arrays("test", limit=0)[0].shape == (0, 28, 28, 1)


# ----------------------------------------------------------------------------- pipelines


def test_train_dataset_shapes_and_drop_remainder():
  src = data.get_data_source(data.DataConfig())
  ds = src.train_dataset(128)
  assert ds.element_spec.shape.as_list() == [128, 28, 28, 1]
  assert ds.element_spec.dtype == tf.float32
  batches = [b.numpy() for b in ds]
  assert len(batches) == 9003 // 128
  assert all(b.shape == (128, 28, 28, 1) for b in batches)
  assert 0.0 <= min(b.min() for b in batches) and max(b.max() for b in batches) <= 1.0

  batches = list(src.train_dataset(128, drop_remainder=False))
  assert len(batches) == 9003 // 128 + 1 and batches[-1].shape[0] == 9003 % 128


def test_train_dataset_reshuffles_deterministically():
  src = _small_synthetic()
  ds1 = src.train_dataset(100, seed=3)
  ds2 = src.train_dataset(100, seed=3)
  a1, a2 = _epoch(ds1), _epoch(ds1)
  b1, b2 = _epoch(ds2), _epoch(ds2)
  assert not np.array_equal(a1, a2)  # Reshuffled every epoch.
  np.testing.assert_array_equal(a1, b1)  # Same seed, same epochs.
  np.testing.assert_array_equal(a2, b2)
  # Each epoch is a permutation of the training set.
  x, _ = src.arrays("train")
  order = np.lexsort(a1.T)
  np.testing.assert_array_equal(a1[order], x[np.lexsort(x.T)])
  other = _epoch(src.train_dataset(100, seed=4))
  assert not np.array_equal(a1, other)
  # With repeat() the epochs differ as well.
  two = _epoch(src.train_dataset(1000, seed=3).repeat(2))
  assert not np.array_equal(two[:2000], two[2000:])


def test_unshuffled_and_test_order_match_arrays():
  src = _small_synthetic()
  np.testing.assert_array_equal(
      _epoch(src.train_dataset(64, shuffle=False, drop_remainder=False)),
      src.arrays("train")[0])
  test = src.test_dataset(300)
  assert test.element_spec.shape.as_list() == [None, 10]
  np.testing.assert_array_equal(_epoch(test), src.arrays("test")[0])
  assert len(list(src.test_dataset(300, drop_remainder=True))) == 1000 // 300


def test_batch_size_checks():
  src = _small_synthetic(num_examples=50)
  with pytest.raises(ConfigError, match="--batch_size=64 is larger than the 50 train"):
    src.train_dataset(64)
  assert _epoch(src.train_dataset(64, drop_remainder=False)).shape == (50, 10)
  with pytest.raises(ConfigError, match="--batch_size=0"):
    src.train_dataset(0)


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_spec_and_standardisation():
  src = data.get_data_source(data.DataConfig(name="synthetic", num_examples=3000))
  assert src.spec == data.DataSpec("synthetic", (64,), False, 3000, 1000, 8)
  x, y = src.arrays("train")
  assert y is None and x.dtype == np.float32 and np.all(np.isfinite(x))
  np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
  np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-3)
  xt, _ = src.arrays("test")
  assert abs(xt.mean()) < 0.2 and 0.8 < xt.std() < 1.2  # Same f, independent draw.
  assert data.get_data_source(
      data.DataConfig(name="synthetic", num_examples=50000)).spec.num_test == 5000


def test_synthetic_determinism():
  a, b, c = _small_synthetic(), _small_synthetic(), _small_synthetic(seed=1)
  np.testing.assert_array_equal(a.arrays("train")[0], b.arrays("train")[0])
  np.testing.assert_array_equal(a.arrays("test")[0], b.arrays("test")[0])
  assert not np.allclose(a.arrays("train")[0], c.arrays("train")[0])
  assert not np.allclose(a.arrays("train")[0][:1000], a.arrays("test")[0])


def _local_singular_values(x, num_points=5, k=40):
  """Normalised singular values of centred k-neighbourhoods of a few points, averaged."""
  rng = np.random.default_rng(0)
  out = []
  for i in rng.choice(len(x), num_points, replace=False):
    nbrs = x[np.argsort(np.sum((x - x[i]) ** 2, axis=1))[:k]]
    s = np.linalg.svd(nbrs - nbrs.mean(axis=0), compute_uv=False)
    out.append(s / s[0])
  return np.mean(out, axis=0)


def test_synthetic_true_dimension():
  x, _ = _small_synthetic().arrays("train")
  global_s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
  assert global_s[2] / global_s[0] > 0.02  # Curved: not a 2-dim linear subspace.
  local = _local_singular_values(x)
  assert local[1] > 0.3  # Two dominant directions locally ...
  assert local[2] < 0.1  # ... and little else.


def test_synthetic_image():
  cfg = data.DataConfig(name="synthetic_image", true_latent_dim=3, num_examples=2000)
  src = data.get_data_source(cfg)
  assert src.spec == data.DataSpec("synthetic_image", (28, 28, 1), True, 2000, 1000, 3)
  x, y = src.arrays("train")
  assert y is None and x.dtype == np.float32 and x.shape == (2000, 28, 28, 1)
  assert 0.0 < x.min() and x.max() < 1.0 and x.std() > 0.1
  np.testing.assert_array_equal(x, data.get_data_source(cfg).arrays("train")[0])
  local = _local_singular_values(x.reshape(2000, -1))
  # sigmoid(2 f) is more curved than f, so ask for a clear gap after 3 rather than ~0.
  assert local[2] > 0.4 and local[3] < 0.35 * local[2]
  batch = next(iter(src.train_dataset(32)))
  assert batch.shape == (32, 28, 28, 1) and batch.dtype == tf.float32


@pytest.mark.parametrize("kwargs, flag", [
    (dict(true_latent_dim=0), "--true_latent_dim=0"),
    (dict(true_latent_dim=8, ambient_dim=8), "--ambient_dim=8"),
    (dict(num_examples=0), "--num_examples=0"),
    (dict(name="synthetic_image", true_latent_dim=784), "--true_latent_dim"),
])
def test_synthetic_validation(kwargs, flag):
  cfg = dict(name="synthetic")
  cfg.update(kwargs)
  with pytest.raises(ConfigError) as e:
    data.get_data_source(data.DataConfig(**cfg))
  assert flag in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------- npz


def _npz(tmp_path, name="d.npz", **arrays):
  path = str(tmp_path / name)
  np.savez(path, **arrays)
  return path


def _load(path):
  return data.get_data_source(data.DataConfig(name="npz:" + path))


def test_npz_uint8_rank3_images(tmp_path):
  rng = np.random.default_rng(0)
  path = _npz(tmp_path, x_train=rng.integers(0, 256, (20, 5, 6), dtype=np.uint8),
              x_test=rng.integers(0, 256, (7, 5, 6), dtype=np.uint8),
              y_train=np.arange(20), y_test=np.arange(7).astype(np.uint8))
  src = _load(path)
  assert src.spec == data.DataSpec("npz:" + path, (5, 6, 1), True, 20, 7, None)
  x, y = src.arrays("test")
  assert x.shape == (7, 5, 6, 1) and x.dtype == np.float32 and x.max() <= 1.0
  np.testing.assert_array_equal(y, np.arange(7))
  assert _epoch(src.train_dataset(4)).shape == (20, 5, 6, 1)


def test_npz_float_images_and_vectors(tmp_path):
  rng = np.random.default_rng(0)
  path = _npz(tmp_path, x_train=rng.random((10, 4, 4, 3)), x_test=rng.random((3, 4, 4, 3)))
  src = _load(path)
  assert src.spec.shape == (4, 4, 3) and src.spec.is_image
  assert src.arrays("train")[1] is None
  np.testing.assert_allclose(_epoch(src.train_dataset(5, shuffle=False)),
                             src.arrays("train")[0])
  # Vectors may hold any finite values.
  path = _npz(tmp_path, "v.npz", x_train=rng.normal(size=(10, 3)) * 50,
              x_test=rng.normal(size=(4, 3)))
  src = _load(path)
  assert src.spec.shape == (3,) and not src.spec.is_image
  assert src.arrays("train")[0].dtype == np.float32


def _bad_cases(tmp_path):
  u8 = lambda *s: np.zeros(s, np.uint8)
  f32 = lambda *s: np.full(s, 0.5, np.float32)
  nan = f32(4, 3, 3)
  nan[1, 1, 1] = np.nan
  inf = f32(4, 5)
  inf[0, 0] = np.inf
  garbage = tmp_path / "garbage.npz"
  garbage.write_bytes(b"this is not a zip file at all" * 10)
  truncated = tmp_path / "truncated.npz"
  np.savez(str(truncated), x_train=u8(100, 8, 8), x_test=u8(10, 8, 8))
  truncated.write_bytes(truncated.read_bytes()[:300])
  single = tmp_path / "single.npy"
  np.save(str(single), u8(4, 3, 3))
  return [
      (str(tmp_path / "missing.npz"), "file not found"),
      (str(tmp_path), "not a file"),
      (str(garbage), "not a valid .npz"),
      (str(truncated), "npz"),
      (str(single), "single array"),
      (_npz(tmp_path, "nokey.npz", x_train=u8(4, 3, 3), images=u8(2, 3, 3)),
       "missing array 'x_test' (present: images, x_train)"),
      (_npz(tmp_path, "rank1.npz", x_train=f32(4), x_test=f32(4)), "rank 1"),
      (_npz(tmp_path, "rank5.npz", x_train=u8(2, 3, 3, 1, 1), x_test=u8(2, 3, 3, 1, 1)),
       "rank 5"),
      (_npz(tmp_path, "nchw.npz", x_train=u8(2, 3, 8, 8), x_test=u8(2, 3, 8, 8)),
       "channels-last"),
      (_npz(tmp_path, "mismatch.npz", x_train=u8(4, 3, 3), x_test=u8(4, 3, 4)),
       "same example shape"),
      (_npz(tmp_path, "nan.npz", x_train=nan, x_test=f32(2, 3, 3)), "NaN or inf"),
      (_npz(tmp_path, "inf.npz", x_train=f32(4, 5), x_test=inf), "NaN or inf"),
      (_npz(tmp_path, "empty.npz", x_train=u8(0, 3, 3), x_test=u8(2, 3, 3)), "empty"),
      (_npz(tmp_path, "range.npz", x_train=f32(4, 3, 3) * 255, x_test=f32(2, 3, 3)),
       "must lie in [0, 1]"),
      (_npz(tmp_path, "neg.npz", x_train=f32(4, 3, 3) - 1, x_test=f32(2, 3, 3)),
       "must lie in [0, 1]"),
      (_npz(tmp_path, "int.npz", x_train=np.full((4, 3, 3), 300), x_test=u8(2, 3, 3)),
       "uint8 0-255"),
      (_npz(tmp_path, "bool.npz", x_train=np.zeros((4, 3), bool), x_test=f32(2, 3)),
       "dtype bool"),
      (_npz(tmp_path, "labels.npz", x_train=u8(4, 3, 3), x_test=u8(2, 3, 3),
            y_train=np.arange(3)), "y_train has shape (3,)"),
      (_npz(tmp_path, "flabels.npz", x_train=u8(4, 3, 3), x_test=u8(2, 3, 3),
            y_test=np.array([0.5, 1.0])), "labels must be integers"),
  ]


def test_npz_errors(tmp_path):
  for path, expected in _bad_cases(tmp_path):
    with pytest.raises(ConfigError) as e:
      _load(path)
    msg = str(e.value)
    assert msg.startswith(f"--dataset=npz:{path}:"), msg
    assert expected in msg, (expected, msg)
    assert "\n" not in msg, msg


def test_npz_empty_path():
  with pytest.raises(ConfigError, match="no file given"):
    data.get_data_source(data.DataConfig(name="npz:"))


@pytest.mark.skipif(not os.path.exists(SHARED_FASHION), reason="no shared data")
def test_npz_shared_fashion_mnist():
  src = _load(SHARED_FASHION)
  assert src.spec.shape == (28, 28, 1) and src.spec.is_image
  assert (src.spec.num_train, src.spec.num_test) == (60000, 10000)
  batch = next(iter(src.train_dataset(256)))
  assert batch.shape == (256, 28, 28, 1) and float(tf.reduce_max(batch)) <= 1.0


# ----------------------------------------------------------------------------- tfds


def test_tfds_offline_error(monkeypatch, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  calls = []

  def fail(name, **kwargs):
    calls.append(kwargs["download"])
    raise OSError("network is unreachable\nsecond line")

  monkeypatch.setattr(tfds, "load", fail)
  for name in ("mnist", "fashion_mnist", "cifar10", "celeb_a"):
    with pytest.raises(ConfigError) as e:
      data.get_data_source(data.DataConfig(name=name, data_dir=str(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg
    assert f"--dataset={name}" in msg and f"--data_dir={tmp_path}" in msg
    assert f"tfds.load('{name}'" in msg and "npz:" in msg
  assert calls == [False, True] * 4  # Prepared data first, then a download attempt.
  with pytest.raises(ConfigError, match="--data_dir=~/tensorflow_datasets"):
    data.get_data_source(data.DataConfig(name="mnist"))


def test_tfds_small_dataset_in_memory(monkeypatch):
  """After a failed download=False load, a successful download is materialised."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  def fake_load(name, *, split, data_dir, download, batch_size, as_supervised):
    assert name == "mnist" and batch_size == -1 and as_supervised and data_dir == "/d"
    if not download:
      raise AssertionError("not prepared")
    sizes = {"train": 12, "test": 5}
    return [(tf.fill([sizes[s], 28, 28, 1], tf.constant(255, tf.uint8)),
             tf.range(sizes[s], dtype=tf.int64)) for s in split]

  monkeypatch.setattr(tfds, "load", fake_load)
  src = data.get_data_source(data.DataConfig(name="mnist", data_dir="/d"))
  assert src.spec == data.DataSpec("mnist", (28, 28, 1), True, 12, 5, None)
  x, y = src.arrays("train")
  assert x.shape == (12, 28, 28, 1) and x.min() == 1.0
  np.testing.assert_array_equal(y, np.arange(12))


def test_celeb_a_pipeline_with_fake_tfds(monkeypatch):
  """The streamed CelebA crop / resize / batch code, on fake 218x178 images."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  sizes = {"train": 10, "test": 6}

  class FakeSplit:

    def __init__(self, n):
      self.num_examples = n

  class FakeInfo:
    splits = {k: FakeSplit(v) for k, v in sizes.items()}

  def fake_load(name, *, split, data_dir, download, with_info=False, **kwargs):
    del kwargs
    assert name == "celeb_a" and data_dir == "/d"
    if not download and with_info:
      raise AssertionError("not prepared")  # The first check falls back to a download.
    # Pixel value = example index in rows 45:173, cols 25:153; 255 outside the crop.
    images = np.full((sizes[split], 218, 178, 3), 255, np.uint8)
    for i in range(sizes[split]):
      images[i, 45:173, 25:153] = i
    smiling = np.arange(sizes[split]) % 2 == 0
    ds = tf.data.Dataset.from_tensor_slices(
        {"image": images, "attributes": {"Smiling": smiling, "Male": ~smiling}})
    return (ds, FakeInfo()) if with_info else ds

  monkeypatch.setattr(tfds, "load", fake_load)
  src = data.get_data_source(data.DataConfig(name="celeb_a", data_dir="/d"))
  assert src.spec == data.DataSpec("celeb_a", (64, 64, 3), True, 10, 6, None)
  batches = list(src.train_dataset(4, seed=1))
  assert len(batches) == 2 and all(b.shape == (4, 64, 64, 3) for b in batches)
  values = np.concatenate([np.round(b.numpy()[:, 0, 0, 0] * 255) for b in batches])
  assert len(set(values)) == 8 and set(values) <= set(range(10))  # 8 distinct examples.
  for b in batches:  # Each image is constant: the crop excluded the 255 border.
    np.testing.assert_allclose(b.numpy(), b.numpy()[:, :1, :1, :1] * np.ones((1, 64, 64, 3)),
                               atol=1e-6)
  x, y = src.arrays("test", limit=5)
  assert y is None and x.shape == (5, 64, 64, 3)
  np.testing.assert_allclose(x[:, 0, 0, 0], np.arange(5) / 255.0, atol=1e-6)
  assert _epoch(src.test_dataset(4)).shape == (6, 64, 64, 3)
  mask, name = src.attribute_mask("test", limit=5)
  assert name == "Smiling" and mask.tolist() == [True, False, True, False, True]
  mask, name = src.attribute_mask("train", "Male")
  assert name == "Male" and mask.sum() == 5 and not mask[0]
  with pytest.raises(ConfigError, match="--attribute"):
    src.attribute_mask("test", "Wings")


def test_class_attribute_mask():
  src = data.get_data_source(data.DataConfig(name="mnist10k"))
  mask, name = src.attribute_mask("test", "3", limit=100)
  _, y = src.arrays("test", limit=100)
  assert name == "class 3" and np.array_equal(mask, y == 3)
  assert src.has_attributes
  with pytest.raises(ConfigError, match="--attribute"):
    src.attribute_mask("test", "three")
  synthetic = data.get_data_source(data.DataConfig(name="synthetic", num_examples=20))
  assert not synthetic.has_attributes
  with pytest.raises(ConfigError, match="no labels"):
    synthetic.attribute_mask("test")


def test_training_stream_is_a_pure_function_of_seed_and_step():
  source = data.get_data_source(data.DataConfig(name="synthetic", ambient_dim=6,
                                                true_latent_dim=2, num_examples=50))
  steps = 50 // 8  # 6 batches per pass, remainder dropped per pass.
  full = [b.numpy() for b in source.training_stream(8, seed=3).take(3 * steps)]
  # Resuming at any step (a pass boundary or mid-pass) replays the same batches exactly.
  for start in (2 * steps, 7, steps + 1):
    resumed = [b.numpy() for b in
               source.training_stream(8, seed=3, start_step=start).take(3 * steps - start)]
    assert len(resumed) == 3 * steps - start
    for a, b in zip(full[start:], resumed):
      np.testing.assert_array_equal(a, b)
  assert not np.array_equal(full[0], full[steps])  # Passes are reshuffled.
  epoch0 = np.concatenate(full[:steps])
  assert len({row.tobytes() for row in epoch0}) == steps * 8  # No repeats within a pass.
  other = next(iter(source.training_stream(8, seed=4))).numpy()
  assert not np.array_equal(full[0], other)
