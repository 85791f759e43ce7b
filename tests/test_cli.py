"""The scripts' contract: bad input is one line on stderr, exit status 2, no traceback, no
files, answered before TensorFlow loads; OS errors, divergence and Ctrl-C are one line too;
a successful run prints rae_tf's lines, not TensorFlow's start-up log."""
import errno
import os
import subprocess
import sys
import time

import pytest

from rae_tf import catalog
from rae_tf import cli
from rae_tf import eval_config
from rae_tf.errors import ConfigError, TrainingDiverged

from conftest import ROOT, run_python

TRAIN = os.path.join(ROOT, "scripts", "train.py")
EVALUATE = os.path.join(ROOT, "scripts", "evaluate.py")
FIT_PRIOR = os.path.join(ROOT, "scripts", "fit_prior.py")


@pytest.mark.parametrize("args,needle", [
    (["--model=nope"], "--model"),
    (["--dataset=nope"], "--dataset"),
    (["--arch=nope"], "--arch"),
    (["--latent_dim=0"], "--latent_dim"),
    (["--batch_size=-4"], "--batch_size"),
    (["--dataset=npz:/nonexistent/file.npz"], "npz"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["--flagfile=/nonexistent/x.flags"], "x.flags"),
    (["--strategy=tpu"], "--strategy"),
    (["--strategy=multi_worker"], "TF_CONFIG"),
    (["--latent_dim=abc"], "latent_dim"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
  workdir = tmp_path / "run"
  exports = tmp_path / "exports"
  proc = run_python([TRAIN, f"--workdir={workdir}", f"--export_dir={exports}"] + args)
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert "Traceback" not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
  assert not workdir.exists() and not exports.exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """One tiny scripts/train.py run from a flagfile, as a user runs it (no TF_CPP_* set)."""
  tmp_path = tmp_path_factory.mktemp("tiny")
  flagfile = tmp_path / "tiny.flags"
  flagfile.write_text("\n".join([
      "# a comment", "--model=ae", "--dataset=synthetic", "--ambient_dim=8",
      "--true_latent_dim=2", "--num_examples=64", "--arch=mlp", "--width=8", "--depth=1",
      "--batch_size=16", "--epochs=1", "--latent_dim=3",
      f"--workdir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}"]))
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("TF_CPP_", "GRPC_VERBOSITY")) and k != "TF_CONFIG"}
  env["PYTHONPATH"] = ROOT
  proc = subprocess.run([sys.executable, TRAIN, f"--flagfile={flagfile}", "--latent_dim=2"],
                        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
  return tmp_path, proc


def test_flagfile_and_override(tiny_run):
  tmp_path, proc = tiny_run
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "SavedModel (" in proc.stdout and "tensorboard --logdir" in proc.stdout
  assert '"latent_dim": 2' in (tmp_path / "run" / "config.json").read_text()
  assert (tmp_path / "exports" / "ae" / "1" / "saved_model.pb").exists()


def test_start_is_quiet(tiny_run):
  _, proc = tiny_run
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.startswith("[rae_tf] "), proc.stdout[:500]
  for line in proc.stderr.splitlines():
    for needle in ("cuInit", "E0000", "absl::InitializeLog", "oneDNN", "cudart"):
      assert needle not in line, proc.stderr[-3000:]
    assert not line.startswith(("W0000", "I0000")), proc.stderr[-3000:]


# Runs a script in a fresh process and reports whether it imported TensorFlow.
_RUN_AND_CHECK_IMPORTS = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
  runpy.run_path(sys.argv[0], run_name="__main__")
  code = 0
except SystemExit as e:
  code = e.code
print("TF_IMPORTED" if "tensorflow" in sys.modules else "TF_NOT_IMPORTED")
sys.exit(code)
"""


@pytest.mark.parametrize("script,args,needle", [
    (TRAIN, ["--model=nope"], "--model"),
    (TRAIN, ["--arch=nope", "--likelihood=gaussian"], "--arch"),
    (TRAIN, ["--dataset=npz:/nonexistent/file.npz"], "file not found"),
    (EVALUATE, ["--workdir=/nonexistent/run"], "--workdir"),
    (EVALUATE, ["--workdir=/nonexistent/run", "--dataset=nope"], "--dataset"),
    (FIT_PRIOR, ["--workdir=/nonexistent/run"], "--workdir"),
])
def test_bad_input_answered_before_tensorflow_loads(tmp_path, script, args, needle):
  start = time.time()
  proc = run_python(["-c", _RUN_AND_CHECK_IMPORTS, script,
                     f"--export_dir={tmp_path / 'exports'}"] + args
                    if script == TRAIN else ["-c", _RUN_AND_CHECK_IMPORTS, script] + args)
  seconds = time.time() - start
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.startswith("error: ") and needle in proc.stderr, proc.stderr
  assert len(proc.stderr.splitlines()) == 1, proc.stderr
  assert "TF_NOT_IMPORTED" in proc.stdout
  # Importing TensorFlow alone takes ~5-10 s here; the answer takes ~0.5 s.
  assert seconds < 4, seconds


def test_light_modules_do_not_import_tensorflow():
  proc = run_python(["-c", "import sys, rae_tf.config, rae_tf.cli, rae_tf.catalog, "
                     "rae_tf.eval_config; assert 'tensorflow' not in sys.modules, "
                     "sorted(m for m in sys.modules if 'tensorflow' in m)[:5]"])
  assert proc.returncode == 0, proc.stderr[-2000:]


def test_importing_the_package_turns_onednn_on_unless_the_user_said_otherwise():
  # TensorFlow logs this line when it loads with its oneDNN kernels on.
  on_line = "oneDNN custom operations are on"
  unset = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  unset.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="0")
  for env, expect_on in ((unset, True), (dict(unset, TF_ENABLE_ONEDNN_OPTS="0"), False)):
    proc = subprocess.run([sys.executable, "-c", "import rae_tf, tensorflow"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (on_line in proc.stderr) == expect_on, proc.stderr[-2000:]


def test_light_lists_equal_the_registries():
  from rae_tf import data, divergences, evaluation, expost, likelihoods, networks, viz  # pylint: disable=g-import-not-at-top,g-multiple-import
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  assert catalog.MODELS == tuple(zoo.MODELS.names())
  assert catalog.ARCHITECTURES == tuple(networks.ARCHITECTURES.names())
  assert catalog.DATASETS == tuple(data.DATASETS.names())
  assert catalog.LIKELIHOODS == tuple(likelihoods.LIKELIHOODS.names())
  assert catalog.MMD_KERNELS == tuple(divergences.MMD_KERNELS.names())
  assert catalog.NPZ_PREFIX == data.NPZ_PREFIX
  assert eval_config.GMM_FILE == expost.GMM_FILE
  assert eval_config.EMBEDDINGS == tuple(viz.EMBEDDING_METHODS)
  assert evaluation.EvalConfig is eval_config.EvalConfig
  assert evaluation.FEATURES == eval_config.FEATURES


def test_bad_flagfile_bytes_exit_2(tmp_path):
  flagfile = tmp_path / "binary.flags"
  flagfile.write_bytes(b"\xff\xfe--model=ae\n")
  proc = run_python([TRAIN, f"--flagfile={flagfile}", f"--workdir={tmp_path / 'run'}"])
  assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.startswith("error: ") and "--flagfile" in proc.stderr


def test_missing_flagfile_is_one_plain_line(tmp_path):
  proc = run_python([TRAIN, f"--flagfile={tmp_path / 'absent.flags'}",
                     f"--workdir={tmp_path / 'run'}"])
  assert proc.returncode == 2 and not (tmp_path / "run").exists()
  assert proc.stderr.startswith("error: Unable to open flagfile: ") and "absent.flags" in \
      proc.stderr and "ERROR" not in proc.stderr and ".." not in proc.stderr, proc.stderr


# ------------------------------------------------------------------ run_or_exit, in-process


def _raise(e):
  def fn():
    raise e
  return fn


@pytest.mark.parametrize("exc,status,line", [
    (ConfigError("--x=1 must be 2"), 2, "error: --x=1 must be 2"),
    (TrainingDiverged("loss became nan at step 3"), 3, "error: loss became nan at step 3"),
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/a/ckpt"), 1,
     "error: /runs/a/ckpt: No space left on device; free some disk space or write elsewhere"),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/runs/a"), 1,
     "error: /runs/a: Permission denied; check the permissions or write elsewhere"),
    (OSError(errno.EROFS, os.strerror(errno.EROFS), "/ro/run", None), 1,
     "error: /ro/run: Read-only file system; write to a writable directory"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_run_or_exit_maps_user_facing_errors(capsys, exc, status, line):
  with pytest.raises(SystemExit) as info:
    cli.run_or_exit(_raise(exc), ["script"])
  assert info.value.code == status
  assert capsys.readouterr().err.splitlines() == [line]


def test_run_or_exit_os_error_without_file_names_the_code(capsys):
  with pytest.raises(SystemExit) as info:
    cli.run_or_exit(_raise(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))), ["script"])
  assert info.value.code == 1
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and "No space left" in err[0]
  assert "test_cli.py" in err[0]  # Where it failed.


def test_run_or_exit_maps_tensorflow_file_errors(capsys):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  full = tf.errors.ResourceExhaustedError(
      None, None, "{{function_node __wrapped__SaveV2_dtypes_3_device_/job:localhost}} "
      "/runs/a/ckpt-1_temp/part-0; No space left on device [Op:SaveV2] name: ")
  with pytest.raises(SystemExit) as info:
    cli.run_or_exit(_raise(full), ["script"])
  assert info.value.code == 1
  assert capsys.readouterr().err.splitlines() == [
      "error: /runs/a/ckpt-1_temp/part-0: No space left on device; free some disk space or "
      "write elsewhere"]
  # Not a file-system error: a bug, kept as a traceback.
  oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
  with pytest.raises(tf.errors.ResourceExhaustedError):
    cli.run_or_exit(_raise(oom), ["script"])


def test_run_or_exit_keeps_tracebacks_of_bugs():
  with pytest.raises(ZeroDivisionError):
    cli.run_or_exit(lambda: 1 / 0, ["script"])
  with pytest.raises(TypeError):
    cli.run_or_exit(_raise(TypeError("bug")), ["script"])


# ------------------------------------------------------------------ quiet TensorFlow import


def test_tf_log_level_follows_verbosity(monkeypatch):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(logging, "set_verbosity", lambda v: None)
  for argv, user, want in ([[], None, 3], [["--verbosity=-1"], None, 3],
                           [["--verbosity=0"], None, 1], [["--verbosity=1"], None, 0],
                           [["--verbosity=1"], "2", 2]):
    fv = flags.FlagValues()
    flags.DEFINE_integer("verbosity", -1, "absl's verbosity", flag_values=fv)
    fv(["prog"] + argv)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user is not None:
      env["TF_CPP_MIN_LOG_LEVEL"] = user
    monkeypatch.setattr(os, "environ", env)  # A copy: the test process keeps its own.
    monkeypatch.setattr(cli, "_tf_log_level", None)
    assert cli.configure_logging(fv) == want, argv
    assert env["TF_CPP_MIN_LOG_LEVEL"] == str(want)


def test_start_up_filter_keeps_what_matters():
  text = "\n".join([
      "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
      "I0000 00:00:1795772387.074510    3253 cudart_stub.cc:31] Could not find cuda drivers",
      "I0000 00:00:1795772961.863016   10277 cpu_feature_guard.cc:227] This TensorFlow binary",
      "To enable the following instructions: AVX2 FMA, in other operations, rebuild ...",
      "E0000 00:00:1795772389.864295    3253 cuda_platform.cc:52] failed call to cuInit",
      "2024-05-01 12:00:00.000000: I tensorflow/core/util/port.cc:113] oneDNN custom ops",
      "/site-packages/x.py:3: DeprecationWarning: something",
      "  call()",
      "F0000 00:00:1795772389.864295    3253 x.cc:1] fatal"])
  assert cli._filter_start_up_lines(text, 3) == [
      "/site-packages/x.py:3: DeprecationWarning: something", "  call()",
      "F0000 00:00:1795772389.864295    3253 x.cc:1] fatal"]
  assert len(cli._filter_start_up_lines(text, 2)) == 4  # + the E line.
  assert cli._filter_start_up_lines(text, 0) == text.splitlines()


# ------------------------------------------------------------------ evaluation defaults


def test_evaluate_num_samples_defaults_to_the_test_split(tmp_path, capsys):
  from rae_tf import evaluation, training  # pylint: disable=g-import-not-at-top,g-multiple-import
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  config = TrainConfig.make(model="ae", dataset="synthetic", true_latent_dim=2, ambient_dim=6,
                       num_examples=64, latent_dim=2, arch="mlp", width=8, depth=1,
                       batch_size=16, epochs=1, workdir=str(tmp_path / "run"),
                       export_dir="")
  training.train(config, verbose=0)
  capsys.readouterr()
  results = evaluation.evaluate(evaluation.EvalConfig(workdir=config.workdir, prd_runs=1,
                                                      figures=False))
  assert results["num_samples"] == 1000  # synthetic: max(1000, num_examples // 10) tests.
  out = capsys.readouterr().out
  assert ("[rae_tf] --num_samples=1000 (the test split's size; pass --num_samples to "
          "change)") in out
  with pytest.raises(ConfigError, match="--num_samples=1001 exceeds the 1000 test"):
    evaluation.evaluate(evaluation.EvalConfig(workdir=config.workdir, num_samples=1001))


def test_eval_config_checks_without_tensorflow(tmp_path):
  with pytest.raises(ConfigError, match="--export_dir needs --dataset"):
    eval_config.EvalConfig(export_dir="x")
  with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
    eval_config.EvalConfig(workdir="x", dataset="nope")
  with pytest.raises(ConfigError, match="--embedding"):
    eval_config.EvalConfig(workdir="x", embedding="umap")
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(ConfigError, match="fit_prior"):
    eval_config.check_inputs(eval_config.EvalConfig(workdir=str(tmp_path), prior="gmm"))
  with pytest.raises(ConfigError, match="--inception_weights"):
    eval_config.check_inputs(eval_config.EvalConfig(workdir=str(tmp_path),
                                                    features="inception"))
  assert eval_config.resolve_num_samples(eval_config.EvalConfig(workdir="x"), 50000,
                                         "mnist")[0] == 10000
