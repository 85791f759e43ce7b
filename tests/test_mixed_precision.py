"""--mixed_precision=bfloat16|float16: networks compute in low precision with float32
variables, losses / checkpoints / exports stay float32, float16 optimizers scale losses."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from rae_tf import precision
from rae_tf import runs
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.data import get_data_source
from rae_tf.errors import ConfigError

from conftest import ROOT, run_python

# Tiny vector runs: 128 examples, batch 16 = 8 steps an epoch.
TINY = dict(dataset="synthetic", true_latent_dim=2, ambient_dim=8, num_examples=128,
            latent_dim=3, arch="mlp", width=16, depth=1, critic_width=8, critic_depth=1,
            prior_width=8, prior_depth=1, batch_size=16, learning_rate=1e-3,
            export_dir="", log_every_steps=1, num_image_samples=4)


def _config(tmp_path, name="run", **kw):
  return TrainConfig.make(**{**TINY, "workdir": str(tmp_path / name), **kw})


def _build(config):
  source = get_data_source(runs.data_config(config))
  return runs.build_compiled_model(config, source.spec, tf.distribute.get_strategy())[0]


def _network_layers(model):
  """Every Dense layer of the model's networks (encoder, decoder, critics, generator)."""
  return [l for l in model._flatten_layers() if isinstance(l, keras.layers.Dense)]


@pytest.mark.parametrize("mode,dtype", [("bfloat16", "bfloat16"), ("float16", "float16")])
def test_networks_compute_low_precision_with_float32_variables(tmp_path, mode, dtype):
  model = _build(_config(tmp_path, model="flexae", mixed_precision=mode))
  dense = _network_layers(model)
  # Encoder, decoder, critic and the prior's generator: all in the policy.
  assert len(dense) >= 8
  assert {l.compute_dtype for l in dense} == {dtype}
  assert {l.dtype_policy.name for l in dense} == {f"mixed_{dtype}"}
  assert model.prior.generator.layers[-1].compute_dtype == dtype
  assert {w.dtype for w in model.weights} == {"float32"}
  # The policy was scoped to the construction: nothing leaks into later models.
  assert keras.config.dtype_policy().name == "float32"
  x = tf.random.normal((4, 8))
  assert model.encoder(x).dtype == dtype  # Computes in low precision...
  fwd = model.forward(x, tf.constant([0, 0], tf.int64))
  for t in (fwd.z, fwd.logits, fwd.prior_z):  # ... and hands float32 to the losses.
    assert t.dtype == tf.float32
  losses = model.compute_losses(fwd)
  assert {v.dtype for v in losses.values()} == {tf.float32}


def test_float32_run_is_untouched(tmp_path):
  model = _build(_config(tmp_path, model="wae_gan"))
  assert {l.compute_dtype for l in _network_layers(model)} == {"float32"}
  assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
  assert not any(isinstance(p.optimizer, keras.optimizers.LossScaleOptimizer)
                 for p in model.players)


def test_float16_wraps_every_optimizer_bfloat16_none(tmp_path):
  model = _build(_config(tmp_path, model="flexae", mixed_precision="float16"))
  assert len(model.players) == 4  # Auto-encoder, critic, prior generator, encoder.
  for player in model.players:
    assert isinstance(player.optimizer, keras.optimizers.LossScaleOptimizer), player.name
  model = _build(_config(tmp_path, model="flexae", mixed_precision="bfloat16"))
  assert not any(isinstance(p.optimizer, keras.optimizers.LossScaleOptimizer)
                 for p in model.players)


def test_skipped_float16_step_still_counts():
  var = tf.Variable([1.0, 2.0])
  opt = precision.wrap_optimizer(keras.optimizers.SGD(0.1), "float16")
  opt.build([var])
  scale = float(opt.dynamic_scale.numpy())
  opt.apply_gradients([(tf.constant([np.inf, 1.0]), var)])  # Overflow: skipped.
  np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
  assert float(opt.dynamic_scale.numpy()) == scale / 2
  assert int(opt.iterations.numpy()) == 1  # The global step advances regardless.
  opt.apply_gradients([(opt.scale_loss(tf.constant([1.0, 1.0])), var)])  # Unscaled.
  np.testing.assert_allclose(var.numpy(), [0.9, 1.9], rtol=1e-6)
  assert int(opt.iterations.numpy()) == 2
  assert precision.wrap_optimizer(opt, "float16") is opt
  sgd = keras.optimizers.SGD(0.1)
  assert precision.wrap_optimizer(sgd, "bfloat16") is sgd


@pytest.mark.parametrize("model,mode", [
    ("rae_l2", "bfloat16"), ("rae_l2", "float16"),  # wae_gan: the export test.
    # Slow (suite time): FlexAE's networks in low precision are checked by
    # test_networks_compute_low_precision_with_float32_variables in every run.
    pytest.param("flexae", "bfloat16", marks=pytest.mark.slow),
    pytest.param("flexae", "float16", marks=pytest.mark.slow)])
def test_tiny_runs_train(tmp_path, model, mode):
  config = _config(tmp_path, model=model, mixed_precision=mode, epochs=4)
  result = training.train(config, verbose=0)
  losses = result.history["reconstruction"]
  assert np.all(np.isfinite(result.history["loss"])), result.history
  assert losses[-1] < losses[0], result.history
  for player in result.model.players:
    assert (isinstance(player.optimizer, keras.optimizers.LossScaleOptimizer)
            == (mode == "float16")), player.name
  assert int(result.model.optimizer.iterations.numpy()) == 4 * 8


def test_export_serves_float32_and_resume_needs_the_same_precision(tmp_path):
  config = _config(tmp_path, model="wae_gan", mixed_precision="bfloat16", epochs=1,
                   export_dir=str(tmp_path / "saved_models"), export_name="mp")
  result = training.train(config, verbose=0)
  # Checkpoints hold float32 variables only.
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(
      os.path.join(config.workdir, "checkpoints")))
  dtypes = reader.get_variable_to_dtype_map()
  assert {dtypes[k] for k in dtypes if k.startswith("model/")
          or "_trainable_variables" in k} == {tf.float32}
  # The SavedModel's signatures take and return float32 as a float32 run's do.
  loaded = tf.saved_model.load(result.export_path)
  for name, sig in loaded.signatures.items():
    for spec in sig.structured_input_signature[1].values():
      assert spec.dtype in (tf.float32, tf.int64), (name, spec)
    for spec in sig.structured_outputs.values():
      assert spec.dtype == tf.float32, (name, spec)
  out = loaded.signatures["serving_default"](seed=tf.constant([1, 2], tf.int64))
  assert out["x"].dtype == tf.float32 and np.all(np.isfinite(out["x"].numpy()))
  out = loaded.signatures["reconstruct"](x=tf.random.normal((3, 8)))
  assert out["x"].dtype == tf.float32
  # Another precision is refused (config.json and the checkpoint's stored config)...
  for other in ("none", "float16"):
    with pytest.raises(ConfigError, match="another configuration.*mixed_precision"):
      training.train(config.replace(epochs=2, mixed_precision=other), verbose=0)
  os.remove(os.path.join(config.workdir, "config.json"))
  with pytest.raises(ConfigError, match="another configuration.*mixed_precision"):
    training.train(config.replace(epochs=2, mixed_precision="none"), verbose=0)
  # ... the same one resumes.
  resumed = training.train(config.replace(epochs=2), verbose=0)
  assert resumed.epochs_done == 2
  assert int(resumed.model.optimizer.iterations.numpy()) == 16


@pytest.mark.slow  # Suite time: the float16 loss scales survive a resume (pytest -m slow).
def test_float16_run_resumes_with_its_loss_scale(tmp_path):
  config = _config(tmp_path, model="wae_gan", mixed_precision="float16", epochs=1)
  first = training.train(config, verbose=0)
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(
      os.path.join(config.workdir, "checkpoints")))
  scale_keys = [k for k in reader.get_variable_to_shape_map() if "dynamic_scale" in k]
  assert len(scale_keys) == len(first.model.players)  # Every loss scale is checkpointed.
  resumed = training.train(config.replace(epochs=2), verbose=0)
  assert resumed.epochs_done == 2 and len(resumed.history["loss"]) == 1
  assert np.all(np.isfinite(resumed.history["loss"]))
  assert int(resumed.model.optimizer.iterations.numpy()) == 16


def test_bad_value_is_one_line():
  with pytest.raises(ConfigError, match=r"--mixed_precision='fp8'; choose one of: none, "
                     r"bfloat16, float16"):
    TrainConfig.make(mixed_precision="fp8")
  proc = run_python([os.path.join(ROOT, "scripts", "train.py"), "--mixed_precision=fp8"])
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: unknown --mixed_precision='fp8'"), \
      proc.stderr


def test_benchmark_report_reads_the_machine_and_the_quality_rows(tmp_path):
  """benchmarks/mixed_precision.py --parts=report on FABRICATED rows (a fixture, not a
  measurement): the speed note follows the CPU's recorded 16-bit units, and the quality
  note gives bfloat16's mean relative to float32's."""
  import json  # pylint: disable=g-import-not-at-top
  def speed(mode, img):
    return {"mode": mode, "width": 128, "batch": 100, "steps": 8, "warmup": 3,
            "img_per_s": img, "ms_per_step": 1e5 / img, "speedup_vs_float32": img / 100.0,
            "first_loss": 0.3, "last_loss": 0.2}
  def quality(mode, seed, value):
    return {"mode": mode, "seed": seed, "train_reconstruction": value, "test_mse": value,
            "fid_generation": 10 * value, "fid_reconstruction": value,
            "num_samples": 997, "fid_label": "domain FID"}
  report = {"date": "2026-01-01", "machine": "2 CPUs, fixture",
            "speed": {"rows": [speed("none", 100.0), speed("bfloat16", 150.0)]},
            "quality": {"date": "2026-01-01", "epochs": 2, "verdict": "- fixture",
                        "rows": [quality("none", 0, 1.0), quality("none", 1, 3.0),
                                 quality("bfloat16", 0, 2.2), quality("bfloat16", 1, 2.2)]}}
  script = os.path.join(ROOT, "benchmarks", "mixed_precision.py")
  texts = {}
  for name, features in (("amx", ["avx512_bf16", "amx_bf16"]), ("avx2", [])):
    out = tmp_path / name
    (tmp_path / f"{name}.json").write_text(json.dumps({**report, "cpu_features": features}))
    result = run_python([script, "--parts=report", f"--out={out}"])
    assert result.returncode == 0, result.stderr[-2000:]
    texts[name] = (tmp_path / f"{name}.md").read_text()
  assert "This CPU has avx512_bf16, amx_bf16: oneDNN runs bfloat16" in texts["amx"]
  assert "no native bfloat16 or float16 arithmetic" in texts["avx2"]
  assert "| bfloat16 | 128 | 150.0 |" in texts["amx"] and "| 1.50 |" in texts["amx"]
  # Means: float32 2.0, bfloat16 2.2 -> +10.0% on every metric.
  assert "bfloat16's mean against float32's" in texts["amx"]
  assert "train reconstruction +10.0%, test mse +10.0%, fid generation +10.0%" in texts["amx"]
