"""End to end: train -> workdir (config, checkpoints, TensorBoard) -> resume -> export."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

from conftest import run_python


def _config(tmp_path, **kw):
  base = dict(model="rae_l2", dataset="synthetic_image", true_latent_dim=3, num_examples=64,
              latent_dim=4, arch="dcgan", width=4, batch_size=16, epochs=1,
              learning_rate=1e-3, workdir=str(tmp_path / "run"),
              export_dir=str(tmp_path / "saved_models"), export_name="toy",
              log_every_steps=1, num_image_samples=4)
  base.update(kw)
  return TrainConfig.make(**base)


def _event_tags(logdir):
  tags = set()
  for path in glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.add(value.tag)
  return tags


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("train")
  config = _config(tmp_path)
  return config, training.train(config, verbose=0)


def test_workdir_contents(trained):
  config, result = trained
  assert result.epochs_done == 1
  with open(os.path.join(config.workdir, "config.json")) as f:
    assert TrainConfig.from_dict(json.load(f)) == config
  # Checkpoints are numbered by the global step: 64 examples / batch 16 = 4 steps.
  assert glob.glob(os.path.join(config.workdir, "checkpoints", "ckpt-4.*"))
  tags = _event_tags(os.path.join(config.workdir, "tensorboard"))
  for tag in ("step/loss", "step/reconstruction", "epoch/loss", "epoch/learning_rate",
              "reconstructions",
              "prior_samples", "latent/dim_00", "_hparams_/session_start_info"):
    assert tag in tags, (tag, sorted(tags))


def test_extra_callbacks_and_per_epoch_summaries_traced_once(tmp_path):
  """train(callbacks=...) calls a user callback every epoch; the logger's per-epoch
  pictures (histograms, grids) are one tf.function traced once, written at each epoch's
  global step."""
  import keras  # pylint: disable=g-import-not-at-top

  class Recorder(keras.callbacks.Callback):
    def __init__(self):
      super().__init__()
      self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
      self.epochs.append(epoch)

  recorder = Recorder()
  config = _config(tmp_path, epochs=2, export_dir="")
  training.train(config, verbose=0, callbacks=[recorder])
  assert recorder.epochs == [0, 1]
  steps = {}
  for path in glob.glob(os.path.join(config.workdir, "tensorboard", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        steps.setdefault(value.tag, []).append(event.step)
  assert sorted(steps["latent/all"]) == [4, 8], steps["latent/all"]
  assert sorted(steps["latent/dim_03"]) == [4, 8]
  assert sorted(steps["prior_samples"]) == [4, 8]


def test_logger_snapshot_is_traced_once(trained, tmp_path):
  from rae_tf import callbacks as rae_callbacks  # pylint: disable=g-import-not-at-top
  _, result = trained
  x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
  logger = rae_callbacks.TensorBoardLogger(str(tmp_path / "tb"), x, True, num_samples=4)
  logger.set_model(result.model)
  for epoch in range(3):
    logger.on_epoch_end(epoch, {"loss": 1.0})
  assert logger._snapshot.experimental_get_tracing_count() == 1  # pylint: disable=protected-access


def test_export_layout(trained):
  config, result = trained
  assert result.export_path == os.path.join(config.export_dir, "toy", "1")
  assert os.path.exists(os.path.join(result.export_path, "saved_model.pb"))
  leftovers = [d for d in os.listdir(os.path.dirname(result.export_path)) if d.startswith(".")]
  assert not leftovers


def test_resume_continues_from_checkpoint(trained, tmp_path):
  config, result = trained
  before = [w.numpy() for w in result.model.weights]
  iterations = int(result.model.optimizer.iterations.numpy())
  again = training.train(config.replace(epochs=2), verbose=0)
  assert again.epochs_done == 2
  # Resumed, not restarted: the step counter continues from the first run's.
  assert int(again.model.optimizer.iterations.numpy()) == 2 * iterations
  assert len(again.history["loss"]) == 1
  assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, again.model.weights))
  assert again.export_path.endswith(os.path.join("toy", "2"))
  # Nothing left to train: no new export either.
  third = training.train(config.replace(epochs=2), verbose=0)
  assert third.history == {} and third.export_path == again.export_path


def test_resume_refuses_other_config(trained):
  config, _ = trained
  with pytest.raises(ConfigError, match="latent_dim"):
    training.train(config.replace(latent_dim=5), verbose=0)


def test_batch_larger_than_dataset_is_config_error(tmp_path):
  with pytest.raises(ConfigError, match="--batch_size"):
    training.train(_config(tmp_path, batch_size=1000), verbose=0)
  assert not os.path.exists(tmp_path / "run")  # Nothing half-written.


EXPORT_CHECK = r"""
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
out = m.signatures["serving_default"](seed=tf.constant([3, 4, 3], tf.int64))
img, z = out["image"].numpy(), out["latent"].numpy()
enc = m.signatures["encode"](image=tf.constant(img))["latent"].numpy()
dec = m.signatures["decode"](latent=tf.constant(z))["image"].numpy()
rec = m.signatures["reconstruct"](image=tf.constant(img))["image"].numpy()
print(json.dumps(dict(shape=list(img.shape), zshape=list(z.shape), enc=list(enc.shape),
      same_seed=float(np.abs(img[0] - img[2]).max()), diff_seed=float(np.abs(img[0] - img[1]).max()),
      decode_matches=float(np.abs(dec - img).max()), rec_shape=list(rec.shape),
      lo=float(img.min()), hi=float(img.max()),
      imported=sorted(m for m in ("rae_tf", "tensorflow_probability") if m in sys.modules))))
"""


def test_export_round_trip_in_fresh_process(trained, tmp_path):
  _, result = trained
  script = tmp_path / "check.py"
  script.write_text(EXPORT_CHECK)
  proc = run_python([str(script), result.export_path])
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["shape"] == [3, 28, 28, 1] and out["zshape"] == [3, 4] and out["enc"] == [3, 4]
  assert out["same_seed"] == 0.0 and out["diff_seed"] > 0.0
  assert out["decode_matches"] < 1e-5
  assert out["rec_shape"] == [3, 28, 28, 1]
  assert 0.0 <= out["lo"] and out["hi"] <= 1.0
  assert out["imported"] == []  # Serving needs neither rae_tf nor TFP.


def test_export_runs_under_saved_model_cli(trained):
  _, result = trained
  args = ["-c", "from tensorflow.python.tools.saved_model_cli import main; main()"]
  proc = run_python(args + ["run", "--dir", result.export_path, "--tag_set", "serve",
                            "--signature_def", "serving_default",
                            "--input_exprs", "seed=[1,2]"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "Result for output key image" in proc.stdout
  assert "Result for output key latent" in proc.stdout


def test_failed_export_leaves_nothing_behind(trained, tmp_path, monkeypatch):
  from rae_tf import export  # pylint: disable=g-import-not-at-top
  _, result = trained

  def broken_save(obj, path, *args, **kwargs):
    os.makedirs(os.path.join(path, "variables"))  # Partially written, then it fails.
    raise OSError("disk full")

  # ExportArchive.write_out saves through tf.saved_model.save.
  monkeypatch.setattr(tf.saved_model, "save", broken_save)
  with pytest.raises(OSError, match="disk full"):
    export.export_saved_model(result.model, str(tmp_path), "broken", is_image=True)
  assert os.listdir(tmp_path / "broken") == []  # No version dir, no temporary dir.


def test_lr_drops_schedule_and_resume(tmp_path):
  config = _config(tmp_path, model="wae_gan", critic_width=8, critic_depth=1, epochs=2,
                   lr_drops="1:2,2:5", learning_rate=1e-3, export_dir="")
  result = training.train(config, verbose=0)
  critic_lr = result.model.terms[0].learning_rate
  np.testing.assert_allclose(float(result.model.optimizer.learning_rate.numpy()), 5e-4)
  np.testing.assert_allclose(
      float(result.model.extra_optimizers["adversary_critic"].learning_rate.numpy()), critic_lr / 2)
  resumed = training.train(config.replace(epochs=3), verbose=0)
  # From the configured rate, not the restored (already halved) one: 1e-3 / 2 / 5.
  np.testing.assert_allclose(float(resumed.model.optimizer.learning_rate.numpy()), 1e-4)


def test_lr_schedule_flags_are_validated():
  for bad in ("30", "x:2", "0:2", "30:-1"):
    with pytest.raises(ConfigError, match="--lr_drops"):
      TrainConfig.make(lr_drops=bad)
  with pytest.raises(ConfigError, match="alternative"):
    TrainConfig.make(lr_drops="3:2", plateau_patience=2)
  assert TrainConfig.make(lr_drops="50:5,30:2").parsed_lr_drops() == ((30, 2.0), (50, 5.0))
