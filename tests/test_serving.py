"""Serving: the SavedModel contract, exports (permissions, leftovers, concurrency,
models.config), scripts/export.py, and the REST client against a stand-in TF Serving."""
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rae_tf import export
from rae_tf import images as rae_images
from rae_tf import serving
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

from conftest import ROOT, run_python
from serving_standin import StandIn

EXPORT_SCRIPT = os.path.join(ROOT, "scripts", "export.py")
CLIENT_SCRIPT = os.path.join(ROOT, "scripts", "sample_client.py")


def _config(tmp_path):
  return TrainConfig.make(model="rae_l2", dataset="synthetic_image", true_latent_dim=3,
                     num_examples=64, latent_dim=4, arch="dcgan", width=4, batch_size=16,
                     epochs=1, learning_rate=1e-3, workdir=str(tmp_path / "run"),
                     export_dir=str(tmp_path / "saved_models"), export_name="toy",
                     log_every_steps=1, num_image_samples=4)


def _popen(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  env.pop("TF_CONFIG", None)
  return subprocess.Popen([sys.executable] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def _one_error_line(proc_stderr):
  lines = [l for l in proc_stderr.strip().splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), proc_stderr[-2000:]
  return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("serving")
  config = _config(tmp_path)
  old = os.umask(0o077)  # Even so, TF Serving (another user) must be able to read it.
  try:
    result = training.train(config, verbose=0)
  finally:
    os.umask(old)
  return config, result


@pytest.fixture(scope="module")
def loaded(trained):
  return tf.saved_model.load(trained[1].export_path)


def _sample(loaded, seeds):
  out = loaded.signatures["serving_default"](seed=tf.constant(seeds, tf.int64))
  return out["image"].numpy(), out["latent"].numpy()


# --------------------------------------------------------------- (a), (b) saved_model_cli

SMC_CHECK = r"""
import json, os, sys
import numpy as np
from tensorflow.python.tools import saved_model_cli as smc  # What `saved_model_cli run` runs.
path, out = sys.argv[1:3]

def run(sig, **feed):
  d = os.path.join(out, f"{sig}-{len(os.listdir(out))}")
  smc.run_saved_model_with_feed_dict(path, "serve", sig, feed, d, True)
  return {f[:-4]: np.load(os.path.join(d, f)) for f in os.listdir(d)}

a = run("serving_default", seed=np.array([5, 6, 5], np.int64))
b = run("serving_default", seed=np.array([6], np.int64))
enc = run("encode", image=a["image"])["latent"]
dec = run("decode", latent=a["latent"])["image"]
rec = run("reconstruct", image=a["image"])["image"]
full = run("serving_default", seed=np.arange(4096, dtype=np.int64))["image"]
try:
  run("serving_default", seed=np.arange(4097, dtype=np.int64))
  refused = ""
except Exception as e:  # InvalidArgumentError from the graph.
  refused = str(e)
np.savez(os.path.join(out, "result.npz"), image=a["image"], latent=a["latent"],
         image6=b["image"], enc=enc, dec=dec, rec=rec)
print(json.dumps({"full": list(full.shape), "refused": refused[-400:],
                  "modules": sorted(m for m in ("rae_tf", "tensorflow_probability")
                                    if m in sys.modules)}))
"""


def test_signatures_under_saved_model_cli_in_fresh_process(trained, loaded, tmp_path):
  _, result = trained
  script = tmp_path / "smc_check.py"
  script.write_text(SMC_CHECK)
  out = tmp_path / "smc"
  out.mkdir()
  proc = run_python([str(script), result.export_path, str(out)])
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  assert report["modules"] == []
  got = np.load(out / "result.npz")
  img, z = got["image"], got["latent"]
  assert img.shape == (3, 28, 28, 1) and z.shape == (3, 4)
  # Deterministic per seed: bit-identical within a request; across requests of other sizes
  # and across loaders up to float rounding (CPU kernels block by batch size).
  np.testing.assert_array_equal(img[0], img[2])
  np.testing.assert_allclose(img[1], got["image6"][0], atol=1e-6)
  assert np.abs(img[0] - img[1]).max() > 0
  ref_img, ref_z = _sample(loaded, [5, 6, 5])
  np.testing.assert_allclose(img, ref_img, atol=1e-6)
  np.testing.assert_allclose(z, ref_z, atol=1e-6)
  assert got["enc"].shape == (3, 4)
  np.testing.assert_allclose(got["dec"], img, atol=1e-5)
  assert got["rec"].shape == (3, 28, 28, 1)
  # (b) The maximum batch works; one more is refused inside the graph with the message.
  assert report["full"] == [export.MAX_BATCH, 28, 28, 1]
  assert "serving_default: at most 4096 seeds per request, got 4097" in report["refused"]


def test_batch_limit_in_every_signature(loaded):
  sig = loaded.signatures
  big = export.MAX_BATCH + 1
  cases = [("serving_default", {"seed": tf.range(big, dtype=tf.int64)}, "seeds"),
           ("decode", {"latent": tf.zeros([big, 4])}, "latent codes"),
           ("encode", {"image": tf.zeros([big, 28, 28, 1])}, "images"),
           ("reconstruct", {"image": tf.zeros([big, 28, 28, 1])}, "images")]
  for name, inputs, what in cases:
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"{name}: at most 4096 {what} per request, got 4097"):
      sig[name](**inputs)
  assert sig["decode"](latent=tf.zeros([export.MAX_BATCH, 4]))["image"].shape[0] == 4096


def test_bad_dtypes_and_shapes_are_refused(loaded):
  sig = loaded.signatures
  with pytest.raises(tf.errors.InvalidArgumentError, match="int64"):
    sig["serving_default"](seed=tf.constant([1.5, 2.0]))
  bad_shapes = [("serving_default", {"seed": tf.constant([[1]], tf.int64)}, r"\[\?\]"),
                ("serving_default", {"seed": tf.constant(1, tf.int64)}, r"\[\?\]"),
                ("decode", {"latent": tf.zeros([2, 5])}, r"\[\?,4\]"),
                ("encode", {"image": tf.zeros([2, 27, 28, 1])}, r"\[\?,28,28,1\]"),
                ("reconstruct", {"image": tf.zeros([2, 28, 28])}, r"\[\?,28,28,1\]")]
  for name, inputs, expected in bad_shapes:
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected "
                       "shape " + expected):
      sig[name](**inputs)


# --------------------------------------------------------------- (d), (e), (f), (g) exports


def test_exports_are_readable_by_other_users(trained):
  config, result = trained  # Exported under umask 077.
  for dirpath, dirnames, filenames in os.walk(result.export_path):
    assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o755, dirpath
    for f in filenames:
      assert stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode) == 0o644, f
  for d in (config.export_dir, os.path.dirname(result.export_path)):
    assert stat.S_IMODE(os.stat(d).st_mode) & 0o005 == 0o005, d  # Others can traverse.
  config_file = os.path.join(config.export_dir, "models.config")
  assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o644


def test_stale_temporaries_removed_live_ones_kept(trained):
  import fcntl  # pylint: disable=g-import-not-at-top
  config, result = trained
  model_root = os.path.join(config.export_dir, "leftovers")
  os.makedirs(model_root)
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()  # Its pid is now free: an export killed mid-write.
  stale = os.path.join(model_root, f".tmp-{dead.pid}-killed")
  live = os.path.join(model_root, f".tmp-{os.getpid()}-running")
  locked = os.path.join(model_root, f".tmp-{dead.pid}-otherpidnamespace")
  for d in (stale, live, locked):
    os.makedirs(os.path.join(d, "variables"))
  fd = os.open(locked, os.O_RDONLY)  # An exporter whose pid we cannot see holds its lock.
  fcntl.flock(fd, fcntl.LOCK_EX)
  try:
    path = export.export_saved_model(result.model, config.export_dir, "leftovers", True)
  finally:
    os.close(fd)
  assert path == os.path.join(model_root, "1")
  assert not os.path.exists(stale)
  assert os.path.isdir(live) and os.path.isdir(locked)
  assert sorted(os.listdir(model_root)) == sorted(
      ["1", os.path.basename(live), os.path.basename(locked)])


class _FakeArchive:
  """Stands in for ExportArchive: concurrency is about the files, not the graph."""

  def write_out(self, path, verbose=False):
    del verbose
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
      f.write(b"fake")
    os.mkdir(os.path.join(path, "variables"))
    threading.Event().wait(0.02)


def test_concurrent_exports_get_distinct_versions(tmp_path, monkeypatch):
  monkeypatch.setattr(export, "_build_archive", lambda model, is_image: _FakeArchive())
  n = 8
  barrier = threading.Barrier(n)
  paths, errors = [], []

  def one():
    try:
      barrier.wait()
      paths.append(export.export_saved_model(None, str(tmp_path), "same", True))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=one) for _ in range(n)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=60)
  assert not errors, errors
  assert sorted(os.path.basename(p) for p in paths) == [str(i) for i in range(1, n + 1)]
  assert sorted(os.listdir(tmp_path / "same")) == sorted(str(i) for i in range(1, n + 1))
  assert "same" in (tmp_path / "models.config").read_text()


def _parse_models_config(text):
  """(name, base_path, platform) triples; asserts the overall text-format structure."""
  assert re.fullmatch(r"model_config_list \{\n(  config \{\n(    \w+: \"[^\"\n]*\"\n)+  \}\n)*"
                      r"\}\n", text), text
  return re.findall(r'config \{\s*name: "([^"]*)"\s*base_path: "([^"]*)"\s*'
                    r'model_platform: "([^"]*)"\s*\}', text)


def test_models_config_lists_every_exported_model(trained, tmp_path):
  config, _ = trained
  root = config.export_dir
  entries = _parse_models_config(open(os.path.join(root, "models.config")).read())
  served = export.served_models(root)
  assert "toy" in served
  assert [e[0] for e in entries] == served
  for name, base_path, platform in entries:
    assert base_path == os.path.join(os.path.abspath(root), name) and os.path.isabs(base_path)
    assert platform == "tensorflow"
  # Directories without a complete version are not models; the file is replaced atomically.
  os.makedirs(tmp_path / "root" / "empty")
  os.makedirs(tmp_path / "root" / "half" / "1" / "variables")  # No saved_model.pb.
  os.makedirs(tmp_path / "root" / "half" / ".tmp-1-x")
  os.makedirs(tmp_path / "root" / "good" / "3")
  (tmp_path / "root" / "good" / "3" / "saved_model.pb").write_bytes(b"")
  (tmp_path / "root" / "notes.txt").write_text("x")
  path = export.write_models_config(str(tmp_path / "root"))
  entries = _parse_models_config(open(path).read())
  assert entries == [("good", str(tmp_path / "root" / "good"), "tensorflow")]
  assert sorted(os.listdir(tmp_path / "root")) == ["empty", "good", "half", "models.config",
                                                   "notes.txt"]


def test_check_export_root(tmp_path):
  assert export.check_export_root(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
  assert not (tmp_path / "a").exists()  # Checked, not created.
  (tmp_path / "file").write_text("x")
  for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
    with pytest.raises(ConfigError, match="--export_dir=.*file"):
      export.check_export_root(str(bad))
  with pytest.raises(ConfigError, match="--export_name"):
    export.check_model_name("../up")


# --------------------------------------------------------------- (h) scripts/export.py


def test_export_script_reexports_a_run_concurrently(trained, loaded, tmp_path):
  config, _ = trained
  root = tmp_path / "reexport"
  procs = [_popen([EXPORT_SCRIPT, f"--workdir={config.workdir}", f"--export_dir={root}",
                   "--export_name=again"]) for _ in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (stdout, stderr) in zip(procs, outs):
    assert p.returncode == 0, stderr[-3000:]
  paths = sorted(stdout.strip().splitlines()[-1] for stdout, _ in outs)
  assert paths == [str(root / "again" / "1"), str(root / "again" / "2")]
  assert _parse_models_config((root / "models.config").read_text())[0][0] == "again"
  again = tf.saved_model.load(paths[0])
  seeds = [0, 7, 42]
  np.testing.assert_allclose(_sample(again, seeds)[0], _sample(loaded, seeds)[0], atol=1e-6)


def test_export_script_bad_input_writes_nothing(trained, tmp_path):
  config, _ = trained
  a_file = tmp_path / "a_file"
  a_file.write_text("keep")
  proc = run_python([EXPORT_SCRIPT, f"--workdir={config.workdir}", f"--export_dir={a_file}"])
  assert proc.returncode == 2
  assert "--export_dir" in _one_error_line(proc.stderr)
  assert a_file.read_text() == "keep"
  exports = tmp_path / "exports"
  proc = run_python([EXPORT_SCRIPT, f"--workdir={tmp_path / 'missing'}",
                     f"--export_dir={exports}"])
  assert proc.returncode == 2
  assert "--workdir" in _one_error_line(proc.stderr)
  assert not exports.exists() and not (tmp_path / "missing").exists()


# --------------------------------------------------------------- (i) client + stand-in


@pytest.fixture(scope="module")
def standin(trained):
  with StandIn({"toy": trained[1].export_path}) as server:
    yield server


def test_rest_contract_of_the_standin(standin, loaded):
  outputs = serving.predict_rest(standin.address, "toy", {"seed": [3, 4]})
  ref_img, ref_z = _sample(loaded, [3, 4])
  np.testing.assert_allclose(outputs["image"], ref_img, atol=1e-6)
  np.testing.assert_allclose(outputs["latent"], ref_z, atol=1e-6)
  # Row form, as TF Serving: one prediction object per instance.
  import urllib.request  # pylint: disable=g-import-not-at-top
  body = json.dumps({"signature_name": "decode", "instances": ref_z.tolist()}).encode()
  request = urllib.request.Request(f"http://{standin.address}/v1/models/toy:predict", body)
  with urllib.request.urlopen(request, timeout=30) as response:
    rows = json.loads(response.read())["predictions"]
  np.testing.assert_allclose(np.asarray(rows), ref_img, atol=1e-5)
  # Refusals come back as HTTP 400 {"error": ...}: ServerError.
  with pytest.raises(serving.ServerError, match="at most 4096 seeds per request, got 4097"):
    serving.predict_rest(standin.address, "toy", {"seed": list(range(4097))})
  with pytest.raises(serving.ServerError, match="HTTP 400.*int64"):
    serving.predict_rest(standin.address, "toy", {"seed": [1.5]})
  with pytest.raises(serving.ServerError, match=r"HTTP 400.*\[\?,4\]"):
    serving.predict_rest(standin.address, "toy", {"latent": [[0.0] * 5]}, signature="decode")
  with pytest.raises(serving.ServerError, match="HTTP 404"):
    serving.predict_rest(standin.address, "nope", {"seed": [1]})


def _client(args, tmp_path):
  # A `tensorflow` that cannot be imported: the REST client must not need it.
  fake = tmp_path / "no_tf" / "tensorflow"
  fake.mkdir(parents=True, exist_ok=True)
  (fake / "__init__.py").write_text("raise ImportError('the REST client imported TF')\n")
  return run_python([CLIENT_SCRIPT] + args, timeout=120,
                    env_extra={"PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}"})


def test_sample_client_writes_grid(standin, loaded, tmp_path):
  out = tmp_path / "grid.png"
  proc = _client([f"--server={standin.address}", "--model=toy", "--n=64", f"--out={out}",
                  "--seed=10"], tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with Image.open(out) as picture:
    assert picture.format == "PNG" and picture.size == (8 * 29 - 1, 8 * 29 - 1)
    pixels = np.asarray(picture)
  expected = rae_images.tile_images(_sample(loaded, np.arange(10, 74))[0])
  assert np.abs(pixels.astype(np.float32) - expected[..., 0] * 255).max() <= 1.0


def test_sample_client_errors(standin, tmp_path):
  out = tmp_path / "grid.png"
  before = standin.requests
  proc = _client([f"--server={standin.address}", "--model=toy", "--n=4097", f"--out={out}"],
                 tmp_path)
  assert proc.returncode == 2 and "4096" in _one_error_line(proc.stderr)
  assert standin.requests == before  # Refused before sending.
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
  proc = _client([f"--server=127.0.0.1:{closed}", "--model=toy", f"--out={out}"], tmp_path)
  assert proc.returncode == 2 and "connection refused" in _one_error_line(proc.stderr)
  proc = _client([f"--server={standin.address}", "--model=toy", "--signature=nope",
                  f"--out={out}"], tmp_path)
  assert proc.returncode == 1 and "nope" in _one_error_line(proc.stderr)
  assert not out.exists()
  try:
    import tensorflow_serving  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    proc = _client([f"--server={standin.address}", "--model=toy", "--protocol=grpc",
                    f"--out={out}"], tmp_path)
    assert proc.returncode == 2 and "tensorflow-serving-api" in _one_error_line(proc.stderr)
