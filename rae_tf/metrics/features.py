"""Feature networks for FID / PRD / improved P&R.

Two choices, and results must say which one produced them:

* `InceptionFeatures`: Keras' InceptionV3 (ImageNet weights), 2048-d average-pool
  features -> "Inception FID". Note the published FIDs (TTUR code, the RAE and MaskAAE
  tables) used the 2015-12-05 TF Inception graph; Keras' InceptionV3 weights are a
  different export of a similar network, so numbers are close to but not identical with
  published ones. Say so when comparing.
* `DomainClassifierFeatures`: a small conv classifier trained on the data set's own
  labelled training split, 128-d penultimate activations -> "domain FID". Works offline
  and for any image shape, but its numbers are comparable only with other domain FIDs
  computed with the same cached classifier, never with published Inception FIDs.

This module imports TensorFlow / Keras (the other metrics modules are pure numpy).
"""
import hashlib
import json
import logging
import os
from typing import Optional

import numpy as np

from rae_tf import outputs
from rae_tf.errors import ConfigError

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                         "inception_v3/" + INCEPTION_WEIGHTS_FILE)
INCEPTION_SIZE = 299
DOMAIN_FEATURE_DIM = 128
# Bump when the classifier architecture or training changes: old caches are not reused.
_DOMAIN_ARCH_VERSION = 1
# Rows of each image array hashed into the cache key (the labels are hashed in full).
_FINGERPRINT_ROWS = 256
_LOW_ACCURACY = 0.5

_log = logging.getLogger(__name__)


def as_float_images(images: np.ndarray, name: str = "images") -> np.ndarray:
  """Images as float32 [N, H, W, C] in [0, 1].

  Args:
    images: [N, H, W, C] or [N, H, W] (grayscale) floats in [0, 1], or uint8 in [0, 255].
    name: what to call them in error messages.

  Returns:
    float32 [N, H, W, C] array.
  """
  images = np.asarray(images)
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 255.0
  images = images.astype(np.float32, copy=False)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[0] < 1:
    raise ConfigError(f"{name}: expected images [N, H, W, C] (or [N, H, W]), got shape "
                      f"{images.shape}; reshape flat vectors to images first.")
  return images


def preprocess_for_inception(images: np.ndarray, size: int = INCEPTION_SIZE) -> np.ndarray:
  """Prepares images in [0, 1] for InceptionV3.

  Grayscale is tiled to 3 channels (the FID protocol of the RAE / MaskAAE tables),
  values are clipped to [0, 1] (as saving images to 8-bit files would), resized
  bilinearly to size x size and scaled to [-1, 1] (Keras' inception preprocessing).

  Args:
    images: [N, H, W, C] with C in {1, 3} (or [N, H, W]), floats in [0, 1] or uint8.
    size: output side length.

  Returns:
    float32 [N, size, size, 3] numpy array in [-1, 1].
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = as_float_images(images)
  channels = images.shape[-1]
  if channels == 1:
    images = np.repeat(images, 3, axis=-1)
  elif channels != 3:
    raise ConfigError(f"images: InceptionV3 needs 1 or 3 channels, got {channels}; use "
                      "--features=domain for other image types.")
  images = np.clip(images, 0.0, 1.0)
  if images.shape[1:3] != (size, size):
    images = tf.image.resize(images, (size, size), method="bilinear").numpy()
  return images * 2.0 - 1.0


class InceptionFeatures:
  """2048-d InceptionV3 average-pool features ("Inception FID").

  The weights are Keras' ImageNet InceptionV3 without the top, a file the user downloads
  once (this code never downloads):
    https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/
      inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
  (the file `keras.applications.InceptionV3(include_top=False)` fetches into
  ~/.keras/models/). Pass its path as `weights_path` (flag `--inception_weights`).
  """

  label = "Inception FID"
  feature_dim = 2048

  def __init__(self, weights_path: Optional[str]):
    """Builds InceptionV3 and loads the weights.

    Args:
      weights_path: path to the notop weights file (any file Keras' load_weights reads
        for this architecture).

    Raises:
      ConfigError: path missing, not a file, or not InceptionV3 notop weights.
    """
    if not weights_path:
      raise ConfigError("--inception_weights is not set; download " + INCEPTION_WEIGHTS_URL +
                        " and pass its path, or use --features=domain.")
    if not os.path.isfile(weights_path):
      raise ConfigError(f"--inception_weights={weights_path}: no such file; download "
                        f"{INCEPTION_WEIGHTS_URL} there, or use --features=domain.")
    import keras  # pylint: disable=g-import-not-at-top
    self.model = keras.applications.InceptionV3(
        include_top=False, pooling="avg", weights=None,
        input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    try:
      self.model.load_weights(weights_path)
    except (ValueError, OSError, KeyError) as e:
      raise ConfigError(f"--inception_weights={weights_path}: not InceptionV3 notop weights "
                        f"({type(e).__name__}); use {INCEPTION_WEIGHTS_FILE}.") from e
    self.weights_path = weights_path

  def features(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """[N, 2048] float32 pool features of [N, H, W, C] images in [0, 1]."""
    images = as_float_images(images)
    out = []
    for start in range(0, len(images), batch_size):
      batch = preprocess_for_inception(images[start:start + batch_size])
      out.append(np.asarray(self.model(batch, training=False)))
    return np.concatenate(out, axis=0).astype(np.float32)


def _labels(y: Optional[np.ndarray], name: str) -> np.ndarray:
  """Integer class labels [N] from int labels or one-hot [N, K]."""
  if y is None:
    raise ConfigError(f"{name}: domain features need class labels, and this data set has "
                      "none; use --features=inception.")
  y = np.asarray(y)
  if y.ndim == 2:
    y = np.argmax(y, axis=1)
  if y.ndim != 1 or (y.size and (np.any(y < 0) or np.any(y != np.round(y)))):
    raise ConfigError(f"{name}: expected integer class labels [N] (or one-hot [N, K]), got "
                      f"shape {y.shape}; domain features need class labels.")
  return y.astype(np.int64)


def build_domain_classifier(input_shape, num_classes: int, seed: int = 0):
  """The small conv classifier: stride-2 convs (32, 64, ...) down to <= 8 px, then
  Dense 128 ReLU ("penultimate", the features) and a softmax.

  Args:
    input_shape: (H, W, C).
    num_classes: output classes (>= 2).
    seed: initializer seed.

  Returns:
    An uncompiled keras.Model.
  """
  import keras  # pylint: disable=g-import-not-at-top
  layers = keras.layers
  inputs = keras.Input(shape=tuple(input_shape), name="images")
  x = inputs
  filters, side, i = 32, max(input_shape[0], input_shape[1]), 0
  # At least 2 convs; more for bigger images so the flatten stays small (<= 8x8 maps).
  while i < 2 or side > 8:
    x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer=keras.initializers.GlorotUniform(seed + i),
                      name=f"conv{i}")(x)
    side = (side + 1) // 2
    filters = min(filters * 2, 128)
    i += 1
  x = layers.Flatten()(x)
  x = layers.Dense(DOMAIN_FEATURE_DIM, activation="relu", name="penultimate",
                   kernel_initializer=keras.initializers.GlorotUniform(seed + 100))(x)
  outputs = layers.Dense(num_classes, activation="softmax", name="probs",
                         kernel_initializer=keras.initializers.GlorotUniform(seed + 101))(x)
  return keras.Model(inputs, outputs, name="domain_classifier")


class DomainClassifierFeatures:
  """128-d penultimate activations of a classifier trained on the data ("domain FID").

  Domain FIDs are comparable only with other domain FIDs from the same cached classifier
  (same data set and cache key), never with published Inception FIDs.

  Attributes:
    model: the keras classifier.
    test_accuracy: its accuracy on the test split (a sanity check of the features).
    info: the metadata stored in the cache json.
    fingerprint: 12 hex digits of its weights (`weights_fingerprint`): two reports'
      domain FIDs are comparable when their fingerprints agree.
  """

  label = "domain FID"
  feature_dim = DOMAIN_FEATURE_DIM

  def __init__(self, model, test_accuracy: float, info: Optional[dict] = None):
    import keras  # pylint: disable=g-import-not-at-top
    self.model = model
    self.test_accuracy = float(test_accuracy)
    self.info = dict(info or {})
    self.fingerprint = weights_fingerprint(model)
    self._extractor = keras.Model(model.input, model.get_layer("penultimate").output)

  @classmethod
  def train(cls, x_train, y_train, x_test, y_test, epochs: int = 5, batch_size: int = 128,
            seed: int = 0, verbose: int = 0) -> "DomainClassifierFeatures":
    """Trains the classifier (Adam 1e-3, cross-entropy) and measures test accuracy.

    Args:
      x_train: [N, H, W, C] training images in [0, 1] (or uint8).
      y_train: [N] integer labels (or one-hot); None raises ConfigError.
      x_test: [M, H, W, C] test images, same shape.
      y_test: [M] labels.
      epochs: training epochs.
      batch_size: batch size.
      seed: initializer seed (training is not bit-reproducible; the cache makes the
        classifier fixed).
      verbose: keras fit verbosity.

    Returns:
      A DomainClassifierFeatures.
    """
    import keras  # pylint: disable=g-import-not-at-top
    x_train = as_float_images(x_train, "x_train")
    x_test = as_float_images(x_test, "x_test")
    y_train = _labels(y_train, "y_train")
    y_test = _labels(y_test, "y_test")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
      raise ConfigError(f"domain classifier: {len(x_train)} train images vs {len(y_train)} "
                        f"labels, {len(x_test)} test images vs {len(y_test)} labels; pass "
                        "matching images and labels.")
    if x_train.shape[1:] != x_test.shape[1:]:
      raise ConfigError(f"domain classifier: train images {x_train.shape[1:]} vs test "
                        f"images {x_test.shape[1:]}; use splits of the same data set.")
    num_classes = int(max(y_train.max(), y_test.max() if len(y_test) else 0)) + 1
    if num_classes < 2:
      raise ConfigError("domain classifier: the labels have a single class; domain features "
                        "need >= 2 classes, use --features=inception.")
    model = build_domain_classifier(x_train.shape[1:], num_classes, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True,
              verbose=verbose)
    probs = _batched(model, x_test, 512)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == y_test)) if len(y_test) else 0.0
    if accuracy < _LOW_ACCURACY:
      _log.warning("domain classifier test accuracy %.3f is low: domain FID features may "
                   "be poor (train longer?).", accuracy)
    info = {"test_accuracy": accuracy, "input_shape": list(x_train.shape[1:]),
            "num_classes": num_classes, "epochs": epochs, "batch_size": batch_size,
            "seed": seed, "arch_version": _DOMAIN_ARCH_VERSION,
            "feature_dim": DOMAIN_FEATURE_DIM, "label": cls.label}
    return cls(model, accuracy, info)

  def save(self, model_path: str) -> None:
    """Writes `model_path` (.keras) and the json beside it (atomically: tmp + rename)."""
    if not model_path.endswith(".keras"):
      raise ConfigError(f"{model_path}: the domain classifier cache file must end in .keras.")
    os.makedirs(os.path.dirname(os.path.abspath(model_path)), exist_ok=True)
    tmp = f"{model_path[:-len('.keras')]}.tmp{os.getpid()}.keras"
    import keras  # pylint: disable=g-import-not-at-top
    weights_only = keras.models.clone_model(self.model)  # Uncompiled: no Adam moments,
    weights_only.set_weights(self.model.get_weights())  # a third of the file.
    weights_only.save(tmp)
    os.replace(tmp, model_path)
    json_path = _json_path(model_path)
    with open(json_path + f".tmp{os.getpid()}", "w") as f:
      json.dump(dict(self.info, test_accuracy=self.test_accuracy, weights=self.fingerprint),
                f, indent=2)
    os.replace(json_path + f".tmp{os.getpid()}", json_path)

  @classmethod
  def load(cls, model_path: str) -> "DomainClassifierFeatures":
    """Loads a classifier written by `save`."""
    import keras  # pylint: disable=g-import-not-at-top
    json_path = _json_path(model_path)
    if not (os.path.isfile(model_path) and os.path.isfile(json_path)):
      raise ConfigError(f"{model_path}: domain classifier cache incomplete (need the .keras "
                        "file and its .json); delete it to retrain.")
    with open(json_path) as f:
      info = json.load(f)
    model = keras.models.load_model(model_path, compile=False)
    result = cls(model, info["test_accuracy"], info)
    if info.get("weights", result.fingerprint) != result.fingerprint:
      raise ConfigError(f"{model_path}: weights {result.fingerprint}, but its .json names "
                        f"{info['weights']} (a file replaced by hand?); restore the pair or "
                        "delete both to retrain.")
    return result

  def features(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """[N, 128] float32 penultimate activations of images shaped like the training set."""
    images = as_float_images(images)
    expected = tuple(self.model.input_shape[1:])
    if images.shape[1:] != expected:
      raise ConfigError(f"images: shape {images.shape[1:]} but the domain classifier was "
                        f"trained on {expected}; use the same data set (or another "
                        "--domain_cache).")
    return _batched(self._extractor, images, batch_size).astype(np.float32)


def _batched(model, images: np.ndarray, batch_size: int) -> np.ndarray:
  """Calls a keras model on batches (no predict(): fewer retraces, no progress bar)."""
  out = [np.asarray(model(images[i:i + batch_size], training=False))
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out, axis=0)


def weights_fingerprint(model) -> str:
  """12 hex digits of sha256 over a keras model's weights (shapes and bytes, in order).

  The classifier's training is not bit-reproducible (a retrained one gives other domain
  FIDs), so reports record this to say which classifier measured them.
  """
  digest = hashlib.sha256()
  for w in model.get_weights():
    w = np.ascontiguousarray(w, dtype=np.float32)
    digest.update(str(w.shape).encode())
    digest.update(w.tobytes())
  return digest.hexdigest()[:12]


_CACHE_PREFIX = "domain_classifier_"  # <cache_dir>/domain_classifier_<key>.keras / .json


def cached_fingerprints(cache_dir: str) -> set:
  """Weights fingerprints of the complete classifiers (.keras and .json) in `cache_dir`,
  read from their .json files (no model is loaded)."""
  found = set()
  for name in os.listdir(cache_dir) if os.path.isdir(cache_dir) else ():
    if name.startswith(_CACHE_PREFIX) and name.endswith(".keras"):
      path = os.path.join(cache_dir, name)
      try:
        with open(_json_path(path)) as f:
          weights = json.load(f).get("weights")
      except (OSError, ValueError):
        continue
      if weights:
        found.add(weights)
  return found


def _json_path(model_path: str) -> str:
  return model_path[:-len(".keras")] + ".json"


def domain_cache_key(x_train, y_train, x_test, y_test, epochs: int, batch_size: int,
                     seed: int) -> str:
  """A 16-hex key from the data (shapes, all labels, a row sample) and the settings.

  Different data sets of the same shape (MNIST vs Fashion-MNIST) get different keys.
  """
  digest = hashlib.sha256()
  for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
    x = as_float_images(x, f"x_{name}")
    rows = np.linspace(0, len(x) - 1, min(len(x), _FINGERPRINT_ROWS)).astype(int)
    digest.update(f"{name}{x.shape}".encode())
    digest.update(np.ascontiguousarray(x[rows]).tobytes())
    digest.update(np.ascontiguousarray(_labels(y, f"y_{name}")).tobytes())
  digest.update(f"e{epochs}b{batch_size}s{seed}v{_DOMAIN_ARCH_VERSION}".encode())
  return digest.hexdigest()[:16]


def get_domain_features(cache_dir: str, x_train, y_train, x_test, y_test, epochs: int = 5,
                        batch_size: int = 128, seed: int = 0,
                        verbose: int = 0) -> DomainClassifierFeatures:
  """Loads the domain classifier for this data from `cache_dir`, or trains and caches it.

  Cache files: `<cache_dir>/domain_classifier_<key>.keras` and `.json` (test accuracy,
  shapes, settings), key = domain_cache_key(...). Results are "domain FID" numbers.

  Args:
    cache_dir: folder for the cache (created).
    x_train: [N, H, W, C] training images in [0, 1].
    y_train: [N] labels; None (unlabelled data) raises ConfigError pointing to
      --features=inception.
    x_test: [M, H, W, C] test images.
    y_test: [M] labels.
    epochs: training epochs when not cached.
    batch_size: training batch size.
    seed: initializer seed.
    verbose: keras fit verbosity.

  Returns:
    A DomainClassifierFeatures (`.features(images)`, `.test_accuracy`).
  """
  if not cache_dir:
    raise ConfigError("--domain_cache is not set; give a folder to cache the domain "
                      "classifier in.")
  key = domain_cache_key(x_train, y_train, x_test, y_test, epochs, batch_size, seed)
  path = os.path.join(cache_dir, f"{_CACHE_PREFIX}{key}.keras")
  if os.path.isfile(path) and os.path.isfile(_json_path(path)):
    return DomainClassifierFeatures.load(path)
  os.makedirs(cache_dir, exist_ok=True)
  # Training is not bit-reproducible: two processes that both trained would measure their
  # runs under different classifiers. The first trains; the others wait and load its file.
  with outputs.waiting_file_lock(path + ".lock"):
    if os.path.isfile(path) and os.path.isfile(_json_path(path)):
      return DomainClassifierFeatures.load(path)
    result = DomainClassifierFeatures.train(x_train, y_train, x_test, y_test,
                                            epochs=epochs, batch_size=batch_size, seed=seed,
                                            verbose=verbose)
    result.save(path)
  _log.info("domain classifier cached at %s (test accuracy %.4f)", path,
            result.test_accuracy)
  return result
