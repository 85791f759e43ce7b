"""Shared test helpers: tiny configs and a subprocess runner for fresh-process checks."""
import os
import subprocess
import sys

import rae_tf  # noqa: F401  # Before TensorFlow: sets the package's oneDNN default, as scripts get.


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(args, env_extra=None, timeout=300, cwd=ROOT):
  """Runs `python args...` in a fresh process; returns CompletedProcess (text)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  env.pop("TF_CONFIG", None)
  env.update(env_extra or {})
  return subprocess.run([sys.executable] + list(args), capture_output=True, text=True,
                        timeout=timeout, cwd=cwd, env=env)


def tiny_labelled_npz(path):
  """A tiny labelled image set (random blobs per class), a FIXTURE, not real data."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  def make(n):
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = np.zeros((n, 28, 28), np.uint8)
    for i, label in enumerate(y):
      x[i, 2 * label:2 * label + 8, 4:24] = 255
    return x, y
  (x_train, y_train), (x_test, y_test) = make(200), make(100)
  np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
