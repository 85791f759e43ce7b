"""Trustworthy runs: seeded, exactly resumable (even after SIGKILL), divergence-guarded,
one writer per workdir, outputs validated before any work."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import outputs
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError, TrainingDiverged

from conftest import ROOT, run_python

TRAIN = os.path.join(ROOT, "scripts", "train.py")

# A tiny vector model with an adversarial critic: two optimizers, per-step prior noise.
TINY = dict(model="wae_gan", dataset="synthetic", true_latent_dim=2, ambient_dim=8,
            num_examples=64, latent_dim=3, arch="mlp", width=8, depth=1, critic_width=8,
            critic_depth=1, batch_size=16, learning_rate=1e-3, export_dir="",
            log_every_steps=1, num_image_samples=4)


def _config(tmp_path, name="run", **kw):
  return TrainConfig.make(**{**TINY, "workdir": str(tmp_path / name), **kw})


def _checkpoint_values(workdir):
  """{variable key: value} of the workdir's latest checkpoint (every network, optimizer)."""
  latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
  reader = tf.train.load_checkpoint(latest)
  keys = [k for k in reader.get_variable_to_shape_map() if "OPTIMIZER_SLOT" not in k
          and not k.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "run_config", "save_counter"))]
  return latest, {k: reader.get_tensor(k) for k in keys}


def _assert_same_checkpoints(a, b):
  (_, va), (_, vb) = _checkpoint_values(a), _checkpoint_values(b)
  assert va.keys() == vb.keys()
  # Networks are stored once, under the optimizer that trains them: AE and critic.
  assert any(k.startswith("optimizer/_trainable_variables") for k in va)
  assert any(k.startswith("optimizer_adversary_critic/_trainable_variables") for k in va)
  for k in va:
    np.testing.assert_array_equal(va[k], vb[k], err_msg=k)


def test_same_seed_gives_bit_identical_checkpoints(tmp_path):
  a = training.train(_config(tmp_path, "a", epochs=2, steps_per_epoch=3), verbose=0)
  b = training.train(_config(tmp_path, "b", epochs=2, steps_per_epoch=3), verbose=0)
  _assert_same_checkpoints(a.workdir, b.workdir)
  c = training.train(_config(tmp_path, "c", epochs=2, steps_per_epoch=3, seed=1), verbose=0)
  _, va = _checkpoint_values(a.workdir)
  _, vc = _checkpoint_values(c.workdir)
  assert any(not np.array_equal(va[k], vc[k]) for k in va)  # The seed matters.


def test_initial_weights_follow_the_seed(tmp_path):
  spec = training.rae_data.get_data_source(training.data_config(_config(tmp_path))).spec
  strategy = tf.distribute.get_strategy()
  first = [w.numpy() for w in training.build_compiled_model(_config(tmp_path), spec,
                                                            strategy)[0].weights]
  again = [w.numpy() for w in training.build_compiled_model(_config(tmp_path), spec,
                                                            strategy)[0].weights]
  other = [w.numpy() for w in training.build_compiled_model(_config(tmp_path, seed=5), spec,
                                                            strategy)[0].weights]
  for x, y in zip(first, again):
    np.testing.assert_array_equal(x, y)
  assert any(not np.array_equal(x, y) for x, y in zip(first, other))


def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
  # 5 steps per epoch over 4 batches per pass: epochs and passes do not align.
  kw = dict(epochs=3, steps_per_epoch=5, checkpoint_every_steps=7)
  full = training.train(_config(tmp_path, "full", **kw), verbose=0)
  cut = _config(tmp_path, "cut", **kw)
  training.train(cut.replace(epochs=2), verbose=0)  # Checkpoints at steps 5, 7, 10.
  ckpt_dir = os.path.join(cut.workdir, "checkpoints")
  # Simulate a kill right after the step-7 checkpoint (mid epoch 2): forget later ones.
  kept = os.path.join(ckpt_dir, "ckpt-7")
  assert os.path.exists(kept + ".index")
  for name in os.listdir(ckpt_dir):
    if name.startswith("ckpt-10."):
      os.remove(os.path.join(ckpt_dir, name))
  with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:  # The manager's state file.
    f.write('model_checkpoint_path: "ckpt-7"\nall_model_checkpoint_paths: "ckpt-5"\n'
            'all_model_checkpoint_paths: "ckpt-7"\n')
  resumed = training.train(cut, verbose=0)
  assert resumed.history["loss"] and len(resumed.history["loss"]) == 2  # Rest of 2, then 3.
  assert int(resumed.model.optimizer.iterations.numpy()) == 15
  _assert_same_checkpoints(full.workdir, cut.workdir)


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
  """A real SIGKILL of a training subprocess at an arbitrary moment, then the same command."""
  args = [TRAIN, "--model=wae_gan", "--dataset=synthetic", "--true_latent_dim=2",
          "--ambient_dim=8", "--num_examples=64", "--latent_dim=3", "--arch=mlp",
          "--width=8", "--depth=1", "--critic_width=8", "--critic_depth=1",
          "--batch_size=16", "--epochs=16", "--steps_per_epoch=25",
          "--checkpoint_every_steps=30", "--export_dir=", "--log_every_steps=5"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
  killed = str(tmp_path / "killed")
  proc = subprocess.Popen([sys.executable] + args + [f"--workdir={killed}"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
  ckpt_dir = os.path.join(killed, "checkpoints")
  deadline = time.time() + 120
  try:
    while time.time() < deadline and proc.poll() is None:
      latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
      if latest and int(latest.rsplit("-", 1)[1]) >= 100:
        break
      time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
  finally:
    proc.kill()
    proc.wait()
  step_at_kill = int(tf.train.latest_checkpoint(ckpt_dir).rsplit("-", 1)[1])
  assert 100 <= step_at_kill < 400
  rerun = run_python(args + [f"--workdir={killed}"])
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert "resumed from" in rerun.stdout
  full = run_python(args + [f"--workdir={tmp_path / 'full'}"])
  assert full.returncode == 0, full.stderr[-2000:]
  assert _checkpoint_values(killed)[0].endswith("ckpt-400")
  _assert_same_checkpoints(killed, str(tmp_path / "full"))


def test_divergence_stops_without_bad_checkpoint_or_export(tmp_path):
  exports = tmp_path / "exports"
  good = training.train(_config(tmp_path, "good", model="vae", epochs=1,
                                export_dir=str(exports), export_name="m"), verbose=0)
  assert good.export_path.endswith(os.path.join("m", "1"))
  bad = _config(tmp_path, "bad", model="vae", learning_rate=1e3, epochs=5,
                checkpoint_every_steps=1, export_dir=str(exports), export_name="m")
  with pytest.raises(TrainingDiverged, match=r"step \d+ \(epoch 1\): non-finite .*kl"):
    training.train(bad, verbose=0)
  assert [d for d in os.listdir(exports / "m") if d.isdigit()] == ["1"]  # Nothing shipped.
  ckpt_dir = os.path.join(bad.workdir, "checkpoints")
  for index in tf.train.get_checkpoint_state(ckpt_dir).all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(index)
    for key in reader.get_variable_to_shape_map():
      value = reader.get_tensor(key)
      if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        assert np.isfinite(value).all(), (index, key)


def test_guard_weight_check_reads_the_current_values():
  """The compiled pre-save check sees each save's values (not those it was traced with),
  names the bad variables, and ignores integer ones."""
  import types  # pylint: disable=g-import-not-at-top
  from rae_tf import callbacks as rae_callbacks  # pylint: disable=g-import-not-at-top
  good = tf.Variable([1.0, 2.0], name="good_kernel")
  watched = tf.Variable([0.5, 0.5], name="watched_kernel")
  steps = tf.Variable(7, dtype=tf.int64, name="steps")
  guard = rae_callbacks.DivergenceGuard([good, watched, steps], lambda: "kept ckpt-1")
  guard.set_model(types.SimpleNamespace(optimizer=types.SimpleNamespace(iterations=steps)))
  assert [v.name for v in guard.variables] == ["good_kernel:0", "watched_kernel:0"]
  guard.check_variables()  # Finite: traces and passes.
  watched.assign([0.5, float("nan")])
  with pytest.raises(TrainingDiverged, match=r"step 7 .*non-finite weights in watched_kernel.*"
                                             r"kept ckpt-1"):
    guard.check_variables()
  watched.assign([0.5, float("inf")])
  with pytest.raises(TrainingDiverged, match="watched_kernel"):
    guard.check_variables()
  watched.assign([0.5, 0.5])
  guard.check_variables()  # Finite again: passes.
  assert rae_callbacks.non_finite_variables([good, watched]) == []


def test_divergence_exits_3_with_one_line(tmp_path):
  proc = run_python([TRAIN, "--model=vae", "--dataset=synthetic", "--ambient_dim=8",
                     "--true_latent_dim=2", "--num_examples=64", "--arch=mlp", "--width=8",
                     "--depth=1", "--batch_size=16", "--epochs=3", "--learning_rate=1e3",
                     f"--workdir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exp'}"])
  assert proc.returncode == 3, (proc.returncode, proc.stderr[-2000:])
  assert "Traceback" not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and "diverged at step" in lines[0], proc.stderr[-2000:]
  assert not (tmp_path / "exp").exists()


def test_second_writer_is_refused(tmp_path):
  config = _config(tmp_path, epochs=1)
  with outputs.DirectoryLock(config.workdir):
    with pytest.raises(ConfigError, match=rf"in use by process {os.getpid()}"):
      training.train(config, verbose=0)
  training.train(config, verbose=0)  # Released: the next writer gets it.


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
  workdir = tmp_path / "run"
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from rae_tf import outputs; "
       f"outputs.DirectoryLock({str(workdir)!r}).acquire(); print('held', flush=True); "
       "time.sleep(60)"], stdout=subprocess.PIPE, text=True,
      env=dict(os.environ, PYTHONPATH=ROOT))
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match=f"process {holder.pid}"):
      outputs.DirectoryLock(str(workdir)).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    outputs.DirectoryLock(str(workdir)).acquire().release()  # No stale lock.
  finally:
    holder.kill()


@pytest.mark.parametrize("field,bad", [
    ("workdir", "/proc/rae_tf_x"), ("workdir", "FILE/run"), ("export_dir", "FILE"),
    ("export_dir", "FILE/sub")])
def test_unwritable_outputs_refused_before_any_work(tmp_path, field, bad):
  regular = tmp_path / "a_file"
  regular.write_text("x")
  value = bad.replace("FILE", str(regular))
  config = _config(tmp_path, epochs=1, **{field: value})
  with pytest.raises(ConfigError, match=f"--{field}="):
    training.train(config, verbose=0)
  assert sorted(os.listdir(tmp_path)) == ["a_file"]  # Nothing written anywhere.


def test_checkpoints_refuse_other_flags_without_config_json(tmp_path):
  config = _config(tmp_path, epochs=1)
  training.train(config, verbose=0)
  os.remove(os.path.join(config.workdir, "config.json"))
  for change in (dict(latent_dim=5), dict(learning_rate=5e-4)):
    with pytest.raises(ConfigError, match=f"another configuration.*{next(iter(change))}"):
      training.train(config.replace(epochs=2, **change), verbose=0)
    assert not os.path.exists(os.path.join(config.workdir, "config.json"))
  resumed = training.train(config.replace(epochs=2), verbose=0)  # Same flags: resumes.
  assert resumed.epochs_done == 2
  with open(os.path.join(config.workdir, "config.json")) as f:
    assert json.load(f)["epochs"] == 2


def test_plateau_schedule_state_survives_resume(tmp_path):
  kw = dict(model="ae", epochs=4, steps_per_epoch=2, plateau_patience=1,
            learning_rate=1e-5)
  full = training.train(_config(tmp_path, "full", **kw), verbose=0)
  part = _config(tmp_path, "part", **kw)
  training.train(part.replace(epochs=2), verbose=0)
  resumed = training.train(part, verbose=0)
  np.testing.assert_allclose(float(resumed.model.optimizer.learning_rate.numpy()),
                             float(full.model.optimizer.learning_rate.numpy()))
  _, va = _checkpoint_values(full.workdir)
  _, vb = _checkpoint_values(part.workdir)
  for k in va:
    np.testing.assert_array_equal(va[k], vb[k], err_msg=k)


def test_resume_warns_when_the_resolved_hyper_parameters_changed(tmp_path, capsys):
  # MaskAAE's automatic rate-drop epoch follows --epochs: extending the run moves it.
  config = _config(tmp_path, model="maskaae", epochs=2, steps_per_epoch=1)
  training.train(config, verbose=0)
  hparams_path = os.path.join(config.workdir, "hparams.json")
  with open(hparams_path) as f:
    assert json.load(f)["mask_rate_drop_epoch"] == 2  # round(0.8 x 2).
  capsys.readouterr()
  training.train(config, verbose=0)  # The same flags: nothing to say.
  assert "warning" not in capsys.readouterr().out
  training.train(config.replace(epochs=5), verbose=0)
  out = capsys.readouterr().out
  assert "warning: the model's resolved hyper-parameters differ" in out
  assert "mask_rate_drop_epoch: 2 -> 4" in out and "mask_poly_delay: 1 -> 3" in out, out
  with open(hparams_path) as f:
    assert json.load(f)["mask_rate_drop_epoch"] == 4  # The run's file says what it now uses.
  # A default this rae_tf resolves that the run's file lacks (a newer version's default).
  with open(hparams_path) as f:
    old = json.load(f)
  del old["mask_rate_drop_players"]
  with open(hparams_path, "w") as f:
    json.dump(old, f)
  training.train(config.replace(epochs=6), verbose=0)
  assert "mask_rate_drop_players: None -> 'all'" in capsys.readouterr().out
  # A finished run that trains no further keeps its file as trained, and says so.
  with open(hparams_path) as f:
    trained = json.load(f)
  trained["mask_init_max"] = 4.0
  with open(hparams_path, "w") as f:
    json.dump(trained, f)
  training.train(config.replace(epochs=6), verbose=0)
  out = capsys.readouterr().out
  assert "warning" not in out and "note: this rae_tf resolves" in out, out
  assert "mask_init_max: 4.0 -> 5.0" in out
  with open(hparams_path) as f:
    assert json.load(f) == trained


@pytest.mark.slow  # A fresh process (~16 s) for a flag that only sets TF's op determinism.
def test_deterministic_flag_trains(tmp_path):
  # Op determinism is process-wide and permanent: try it in a fresh process.
  proc = run_python([TRAIN, "--model=ae", "--dataset=synthetic", "--ambient_dim=8",
                     "--true_latent_dim=2", "--num_examples=64", "--arch=mlp", "--width=8",
                     "--depth=1", "--batch_size=16", "--epochs=1", "--deterministic",
                     f"--workdir={tmp_path / 'run'}", "--export_dir="])
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (tmp_path / "run" / "checkpoints" / "checkpoint").exists()
