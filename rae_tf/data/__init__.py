"""Datasets: images and vectors as fast, deterministic `tf.data` pipelines.

`get_data_source(DataConfig(name=...))` returns a `DataSource`: its `spec` (shape, sizes), its
train / test `tf.data.Dataset`s of float32 batches (no labels) and `arrays()` for evaluation.

Dataset names (`--dataset`):

* `mnist10k` (default): a 10,000-image MNIST subset bundled with the package (9,003 train,
  997 test, 28x28x1); works offline. See `rae_tf/data_files/README.md`.
* `synthetic`: vectors on a known `true_latent_dim`-dimensional manifold in R^ambient_dim:
  z ~ N(0, I_n), x = f(z) with f a fixed random smooth tanh MLP (weights drawn from
  `numpy.random.default_rng(seed)`), standardised per dimension with train statistics.
* `synthetic_image`: the same construction rendered as 28x28x1 images in (0, 1):
  x = sigmoid(2 * standardised f(z)) with f: R^n -> R^784 whose output weights are blurred
  over the 28x28 grid, so the images are spatially smooth; `ambient_dim` is ignored.
* `mnist`, `fashion_mnist`, `cifar10`, `celeb_a`: through tensorflow-datasets from `data_dir`
  (downloaded there when possible). CelebA is cropped to rows 45:173, cols 25:153 and resized
  to 64x64, as in FlexAE, and streamed rather than held in memory.
* `npz:PATH`: a NumPy archive with arrays `x_train`, `x_test` (optionally `y_train`, `y_test`):
  uint8 images [N, H, W] or [N, H, W, C], float images in [0, 1], or float vectors [N, d].

Images are kept in memory as uint8 and converted to float32 in [0, 1] once per batch, which keeps
the input pipeline far faster than the models that consume it.

Modules (this package re-exports the public names, so `from rae_tf import data` is enough):
  source     DataConfig, DataSpec, the DataSource interface, the DATASETS registry, NPZ_PREFIX.
  arrays     ArrayDataSource: numpy arrays in memory as batched tf.data pipelines.
  npz        load_npz (`npz:PATH`), archive validation, the bundled `mnist10k`.
  synthetic  `synthetic` and `synthetic_image`.
  tfds       tensorflow-datasets sets (`mnist`, `fashion_mnist`, `cifar10`) and
             CelebADataSource (`celeb_a`).
Each module imports only the ones listed above it; importing this package imports them all,
which registers every dataset in DATASETS.
"""
# The concern modules register their datasets when imported (in this order).
from rae_tf.data import npz
from rae_tf.data import synthetic
from rae_tf.data import tfds
# The public names, re-exported (`rae_data.DataConfig`, ...).
from rae_tf.data.arrays import ArrayDataSource
from rae_tf.data.npz import load_npz
from rae_tf.data.source import DATASETS
from rae_tf.data.source import DataConfig
from rae_tf.data.source import DataSource
from rae_tf.data.source import DataSpec
from rae_tf.data.source import NPZ_PREFIX
from rae_tf.data.tfds import CelebADataSource
from rae_tf.errors import ConfigError


def get_data_source(config: DataConfig) -> DataSource:
  """Builds the data source that `config.name` selects.

  Args:
    config: the data configuration.

  Returns:
    The DataSource; raises ConfigError for unknown names and unusable data.
  """
  name = config.name
  if name.startswith(NPZ_PREFIX):
    return load_npz(name[len(NPZ_PREFIX):])
  if name not in DATASETS:
    raise ConfigError(
        f"unknown dataset {name!r} for --dataset; choose one of: "
        f"{', '.join(DATASETS.names())}, or npz:PATH for your own arrays")
  return DATASETS.get(name)(config)
