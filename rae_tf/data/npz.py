"""NumPy archives: `--dataset=npz:PATH` and the bundled `mnist10k`, validated on load.

`npz:PATH`: a NumPy archive with arrays `x_train`, `x_test` (optionally `y_train`, `y_test`):
uint8 images [N, H, W] or [N, H, W, C], float images in [0, 1], or float vectors [N, d].
`mnist10k` is `rae_tf/data_files/mnist10k.npz` (see `rae_tf/data_files/README.md`).
"""
import os
import zipfile
from typing import Callable, Dict, Optional

import numpy as np

from rae_tf.data.arrays import _array_source
from rae_tf.data.arrays import ArrayDataSource
from rae_tf.data.source import _one_line
from rae_tf.data.source import DATASETS
from rae_tf.data.source import DataConfig
from rae_tf.data.source import NPZ_PREFIX
from rae_tf.errors import ConfigError

# The bundled arrays stay in rae_tf/data_files (package data of rae_tf, next to this package).
_DATA_FILES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data_files")


def _validate_x(x: np.ndarray, key: str, err: Callable[[str], ConfigError]) -> np.ndarray:
  """Checks one x array and returns it as uint8 / float32 with a channel axis for images."""
  if x.dtype.kind not in "uif":
    raise err(f"{key} has dtype {x.dtype}; use uint8 images or float images/vectors")
  if x.ndim not in (2, 3, 4):
    raise err(f"{key} has shape {x.shape} (rank {x.ndim}); use [N, d] vectors, "
              "[N, H, W] or [N, H, W, C] images")
  if x.size == 0:
    raise err(f"{key} is empty (shape {x.shape}); it needs at least one example")
  is_image = x.ndim > 2
  if x.ndim == 4 and x.shape[-1] > 4:
    raise err(f"{key} has shape {x.shape} with {x.shape[-1]} channels; images must be "
              "channels-last [N, H, W, C] with C <= 4")
  if x.ndim == 3:
    x = x[..., np.newaxis]
  if x.dtype.kind == "f":
    if not np.all(np.isfinite(x)):
      raise err(f"{key} contains NaN or inf values; remove or replace them")
    if is_image and (x.min() < 0.0 or x.max() > 1.0):
      raise err(f"{key} holds float images in [{x.min():.4g}, {x.max():.4g}]; float images "
                "must lie in [0, 1] (or store uint8 0-255)")
    return x.astype(np.float32, copy=False)
  # Integer arrays.
  if is_image:
    if x.min() < 0 or x.max() > 255:
      raise err(f"{key} holds integer images in [{x.min()}, {x.max()}]; integer images must "
                "be uint8 0-255")
    return x.astype(np.uint8, copy=False)
  return x.astype(np.float32)


def _validate_y(y: np.ndarray, key: str, num: int,
                err: Callable[[str], ConfigError]) -> np.ndarray:
  if y.ndim != 1 or y.shape[0] != num:
    raise err(f"{key} has shape {y.shape} but must be [{num}], one label per example")
  if y.dtype.kind not in "iu" and not (
      y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
    raise err(f"{key} has dtype {y.dtype}; labels must be integers")
  return y.astype(np.int64)


def _arrays_from_npz(path: str, where: str, fix: str) -> Dict[str, Optional[np.ndarray]]:
  """Reads and validates x_train, x_test (and optional labels) from an .npz file.

  Args:
    path: the file.
    where: prefix of error messages, naming the flag and file.
    fix: what to do, appended to errors about the file as a whole.

  Returns:
    Dict with x_train, x_test (uint8 or float32, images with a channel axis) and
    y_train, y_test (int64 or None).
  """
  def err(message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")

  if not os.path.exists(path):
    raise err(f"file not found; {fix}")
  if not os.path.isfile(path):
    raise err(f"not a file; {fix}")
  try:
    archive = np.load(path, allow_pickle=False)
  except (zipfile.BadZipFile, ValueError, OSError, EOFError):
    # Not numpy's message: for a non-zip file it talks about pickles, which misleads.
    raise err(f"not a valid .npz archive (not a readable zip file); {fix}") from None
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise err("holds a single array, not an .npz archive; save with "
              "np.savez(path, x_train=..., x_test=...)")
  with archive:
    present = sorted(archive.files)
    arrays = {}
    for key in ("x_train", "x_test", "y_train", "y_test"):
      if key not in present:
        if key.startswith("x"):
          raise err(f"missing array {key!r} (present: {', '.join(present) or 'none'}); "
                    "save with np.savez(path, x_train=..., x_test=...)")
        arrays[key] = None
        continue
      try:
        arrays[key] = archive[key]
      except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise err(f"cannot read array {key!r} ({type(e).__name__}: {_one_line(e, 80)}); "
                  "save plain numeric arrays with np.savez") from None

  x_train = _validate_x(arrays["x_train"], "x_train", err)
  x_test = _validate_x(arrays["x_test"], "x_test", err)
  if x_train.shape[1:] != x_test.shape[1:]:
    raise err(f"x_train examples have shape {x_train.shape[1:]} but x_test examples "
              f"{x_test.shape[1:]}; both splits must have the same example shape")
  out = {"x_train": x_train, "x_test": x_test}
  for split, x in (("train", x_train), ("test", x_test)):
    y = arrays[f"y_{split}"]
    out[f"y_{split}"] = None if y is None else _validate_y(y, f"y_{split}", x.shape[0], err)
  return out


def load_npz(path: str) -> ArrayDataSource:
  """The data source for `--dataset=npz:PATH`.

  Args:
    path: an .npz file with arrays x_train, x_test (optionally y_train, y_test).

  Returns:
    An ArrayDataSource named "npz:PATH"; ConfigError when the file is unusable.
  """
  name = NPZ_PREFIX + path
  fix = "pass the path of an .npz with arrays x_train and x_test"
  if not path:
    raise ConfigError(f"--dataset={name}: no file given; {fix}, e.g. --dataset=npz:/data/x.npz")
  arrays = _arrays_from_npz(os.path.expanduser(path), f"--dataset={name}", fix)
  return _array_source(name, arrays)


@DATASETS.register("mnist10k")
def _mnist10k(config: DataConfig) -> ArrayDataSource:
  """The bundled 10,000-image MNIST subset (9,003 train, 997 test), 28x28x1."""
  del config  # Nothing to configure.
  path = os.path.join(_DATA_FILES_DIR, "mnist10k.npz")
  arrays = _arrays_from_npz(path, f"--dataset=mnist10k: bundled file {path}",
                            "reinstall rae_tf (pip install .) to restore its package data")
  return _array_source("mnist10k", arrays)
