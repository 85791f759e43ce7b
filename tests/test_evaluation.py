"""scripts/evaluate.py and rae_tf.evaluation on a tiny trained run."""
import json
import os

import keras
import numpy as np
import pytest

from rae_tf import evaluation
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

from conftest import ROOT, run_python

EVALUATE = os.path.join(ROOT, "scripts", "evaluate.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  # 300 steps: BatchNorm's moving statistics (momentum 0.99) must settle for inference-mode
  # reconstructions to be meaningful.
  keras.utils.set_random_seed(0)
  tmp = tmp_path_factory.mktemp("evalrun")
  config = TrainConfig.make(model="rae_l2", dataset="mnist10k", arch="dcgan", width=8,
                       latent_dim=8, batch_size=50, epochs=2, steps_per_epoch=150,
                       learning_rate=2e-3, workdir=str(tmp / "run"),
                       export_dir=str(tmp / "exports"), export_name="tiny",
                       num_image_samples=4)
  result = training.train(config, verbose=0)
  return config, result


@pytest.fixture(scope="module")
def evaluated(run):
  config, _ = run
  return evaluation.evaluate(evaluation.EvalConfig(
      workdir=config.workdir, num_samples=300, prd_runs=2, domain_epochs=1,
      batch_size=100))


def test_metrics_json_and_values(evaluated):
  with open(os.path.join(evaluated["out_dir"], "metrics.json")) as f:
    saved = json.load(f)
  for key in ("fid_generation", "fid_reconstruction", "prd_f8_recall", "prd_f1_8_precision",
              "improved_precision", "improved_recall", "nac", "active_dims",
              "domain_classifier_test_accuracy"):
    assert key in saved and np.isfinite(saved[key]), key
  assert saved["fid_label"] == "domain FID"
  assert saved["fid_generation"] > 0 and saved["fid_reconstruction"] > 0
  # Reconstructions of the test images are closer to them than prior samples are.
  assert saved["fid_reconstruction"] < saved["fid_generation"]
  assert 0.0 <= saved["improved_precision"] <= 1.0 and 0.0 <= saved["nac"] <= 1.0
  assert 1 <= saved["active_dims"] <= 8 and saved["domain_classifier_test_accuracy"] > 0.5


def test_figures_written(evaluated):
  names = set(os.listdir(evaluated["out_dir"]))
  for name in ("samples.png", "reconstructions.png", "interpolation_linear.png",
               "interpolation_slerp.png", "nearest_neighbours.png", "prd_curve.png",
               "latent_covariance.png", "codes_pca.png"):
    assert name in names, (name, names)
  assert any(n.startswith("attribute_class_") for n in names), names


def test_table_mentions_domain_fid(evaluated):
  table = evaluation.format_table(evaluated)
  assert "domain FID generation" in table and "NAC" in table


def test_saved_model_evaluation_matches_workdir(run, evaluated, tmp_path):
  _, result = run
  from_export = evaluation.evaluate(evaluation.EvalConfig(
      export_dir=result.export_path, dataset="mnist10k", num_samples=300, prd_runs=2,
      domain_epochs=1, batch_size=100, figures=False, out_dir=str(tmp_path / "e"),
      cache_dir=os.path.join(os.path.dirname(evaluated["out_dir"]), "feature_cache")))
  # Same weights, same seeds, same cached classifier: the same numbers.
  np.testing.assert_allclose(from_export["fid_generation"], evaluated["fid_generation"],
                             rtol=1e-3)
  np.testing.assert_allclose(from_export["fid_reconstruction"],
                             evaluated["fid_reconstruction"], rtol=1e-3)


def test_draws_average_independent_sample_draws(run, evaluated, tmp_path):
  config, _ = run
  cache = os.path.join(os.path.dirname(evaluated["out_dir"]), "feature_cache")
  common = dict(workdir=config.workdir, num_samples=300, prd_runs=2, batch_size=100,
                domain_epochs=1, figures=False, cache_dir=cache)
  three = evaluation.evaluate(evaluation.EvalConfig(
      draws=3, out_dir=str(tmp_path / "three"), **common))
  second = evaluation.evaluate(evaluation.EvalConfig(
      seed=300, out_dir=str(tmp_path / "second"), **common))
  draws = three["fid_generation_draws"]
  # Draw 0 is the one-draw evaluation's; draw k samples seeds k * 300 ...
  np.testing.assert_allclose(draws[0], evaluated["fid_generation"], rtol=1e-5)
  np.testing.assert_allclose(draws[1], second["fid_generation"], rtol=1e-5)
  assert len(set(draws)) == 3  # Different seeds, different samples.
  np.testing.assert_allclose(three["fid_generation"], np.mean(draws), rtol=1e-6)
  np.testing.assert_allclose(three["fid_generation_sd"], np.std(draws, ddof=1), rtol=1e-6)
  assert evaluated["fid_generation_sd"] is None
  assert "sd of 3 draws" in evaluation.format_table(three)
  # The other metrics are the first draw's.
  assert three["improved_precision"] == evaluated["improved_precision"]


@pytest.mark.parametrize("kwargs,needle", [
    (dict(workdir="/nonexistent/run"), "--workdir"),
    (dict(num_samples=5000), "--num_samples"),
    (dict(dataset="synthetic"), "shape"),
    (dict(features="inception"), "--inception_weights"),
])
def test_bad_input(run, kwargs, needle):
  config, _ = run
  args = dict(workdir=config.workdir, num_samples=100, figures=False)
  args.update(kwargs)
  with pytest.raises(ConfigError, match=needle):
    evaluation.evaluate(evaluation.EvalConfig(**args))


def test_config_validation():
  with pytest.raises(ConfigError, match="exactly one"):
    evaluation.EvalConfig()
  with pytest.raises(ConfigError, match="--features"):
    evaluation.EvalConfig(workdir="x", features="vgg")
  with pytest.raises(ConfigError, match="--draws=0"):
    evaluation.EvalConfig(workdir="x", draws=0)
  with pytest.raises(ConfigError, match="--dataset"):
    evaluation.evaluate(evaluation.EvalConfig(export_dir="/nonexistent"))


def test_cli_empty_run_dir_exits_2(tmp_path):
  proc = run_python([EVALUATE, f"--workdir={tmp_path}"])
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "config.json" in proc.stderr


def test_cli_prints_table(run, evaluated, tmp_path):
  config, _ = run
  proc = run_python([EVALUATE, f"--workdir={config.workdir}", "--num_samples=200",
                     "--prd_runs=1", f"--out_dir={tmp_path / 'cli'}",
                     f"--cache_dir={os.path.join(os.path.dirname(evaluated['out_dir']), 'feature_cache')}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "domain FID generation" in proc.stdout
  assert (tmp_path / "cli" / "metrics.json").exists()


def test_attribute_figure_for_a_chosen_class(run, evaluated, tmp_path):
  config, _ = run
  evaluation.evaluate(evaluation.EvalConfig(
      workdir=config.workdir, num_samples=100, prd_runs=1, attribute="7",
      out_dir=str(tmp_path / "a"),
      cache_dir=os.path.join(os.path.dirname(evaluated["out_dir"]), "feature_cache")))
  assert (tmp_path / "a" / "attribute_class_7.png").exists()
  with pytest.raises(ConfigError, match="--attribute"):
    evaluation.evaluate(evaluation.EvalConfig(
        workdir=config.workdir, num_samples=100, prd_runs=1, attribute="smile",
        out_dir=str(tmp_path / "b"),
        cache_dir=os.path.join(os.path.dirname(evaluated["out_dir"]), "feature_cache")))


def test_tensorboard_gets_eval_scalars_and_images(run, evaluated):
  import glob  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config, _ = run
  tags = set()
  for path in glob.glob(os.path.join(config.workdir, "tensorboard", "eval", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  for tag in ("eval/fid_generation", "eval/fid_reconstruction", "eval/nac", "eval/samples",
              "eval/reconstructions", "eval/latent_covariance", "eval/interpolation_slerp"):
    assert tag in tags, (tag, sorted(tags))


def test_vector_run_defaults_to_raw_features(tmp_path):
  config = TrainConfig.make(model="wae_mmd", dataset="synthetic", true_latent_dim=2, ambient_dim=6,
                       num_examples=300, latent_dim=3, arch="mlp", width=16, depth=1,
                       batch_size=50, epochs=1, workdir=str(tmp_path / "run"), export_dir="")
  training.train(config, verbose=0)
  results = evaluation.evaluate(evaluation.EvalConfig(workdir=config.workdir,
                                                      num_samples=300, prd_runs=1))
  assert results["features"] == "raw" and results["fid_label"] == "raw-data FID"
  assert np.isfinite(results["fid_generation"])
  assert os.path.exists(os.path.join(results["out_dir"], "codes_pca.png"))
  with pytest.raises(ConfigError, match="--features=raw"):
    evaluation.evaluate(evaluation.EvalConfig(workdir=config.workdir, num_samples=300,
                                              features="domain"))
