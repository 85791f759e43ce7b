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


