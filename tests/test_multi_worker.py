"""--strategy=multi_worker: two worker processes on loopback give single-device weights."""
import json
import os
import socket
import subprocess
import sys

import numpy as np

from conftest import ROOT

SCRIPT = r"""
import json, os, sys
import numpy as np
import keras
from rae_tf import training
from rae_tf.config import TrainConfig
strategy, workdir, exports, out = sys.argv[1:5]
config = TrainConfig.make(model="wae_gan", dataset="synthetic", true_latent_dim=3, ambient_dim=12,
                     num_examples=96, latent_dim=4, arch="mlp", width=16, depth=2,
                     batch_size=32, epochs=2, critic_width=16, critic_depth=2,
                     critic_steps=2, seed=1, strategy=strategy, workdir=workdir,
                     export_dir=exports)
keras.utils.set_random_seed(1)
result = training.train(config, verbose=0)
np.savez(out, *[w.numpy() for w in result.model.weights])
print("RESULT " + json.dumps({"workdir": result.workdir, "export": result.export_path,
                              "epochs": result.epochs_done}))
"""


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def _env(tf_config=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  env.pop("TF_CONFIG", None)
  if tf_config:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return env


def _result(stdout):
  return json.loads([l for l in stdout.splitlines() if l.startswith("RESULT ")][-1][7:])


def test_two_workers_match_single_device(tmp_path):
  script = tmp_path / "worker.py"
  script.write_text(SCRIPT)
  single = subprocess.run(
      [sys.executable, str(script), "default", str(tmp_path / "single"),
       str(tmp_path / "single_exports"), str(tmp_path / "single.npz")],
      capture_output=True, text=True, timeout=300, env=_env())
  assert single.returncode == 0, single.stderr[-3000:]

  cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
  procs = [subprocess.Popen(
      [sys.executable, str(script), "multi_worker", str(tmp_path / "multi"),
       str(tmp_path / "multi_exports"), str(tmp_path / f"worker{i}.npz")],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=_env({"cluster": cluster, "task": {"type": "worker", "index": i}}))
           for i in range(2)]
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=300))
  finally:
    for p in procs:
      p.kill()
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]

  expected = np.load(tmp_path / "single.npz")
  for i in range(2):
    got = np.load(tmp_path / f"worker{i}.npz")
    diff = max(float(np.max(np.abs(expected[k] - got[k]))) for k in expected.files)
    assert diff < 1e-5, (i, diff)
  chief, other = _result(outputs[0][0]), _result(outputs[1][0])
  assert chief["epochs"] == other["epochs"] == 2
  # Only the chief writes the run and the export; the other worker's copy is scratch.
  assert chief["export"] == str(tmp_path / "multi_exports" / "wae_gan" / "1")
  assert other["workdir"] is None and other["export"] is None
  assert os.listdir(tmp_path / "multi_exports" / "wae_gan") == ["1"]
  assert (tmp_path / "multi" / "checkpoints" / "checkpoint").exists()
