"""Ex-post GMM prior (RAE + GMM): fit, sample deterministically, export, evaluate."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import evaluation
from rae_tf import expost
from rae_tf import priors
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

from conftest import ROOT, run_python


def test_fit_recovers_two_clusters_and_samples_per_seed():
  rng = np.random.default_rng(0)
  codes = np.concatenate([rng.normal(-4, 0.3, (300, 3)), rng.normal(4, 0.3, (300, 3))])
  prior = priors.fit_gmm_prior(codes, 2)
  np.testing.assert_allclose(np.sort(prior.means.numpy()[:, 0]), [-4, 4], atol=0.1)
  np.testing.assert_allclose(tf.nn.softmax(prior.logits).numpy(), [0.5, 0.5], atol=0.02)
  z = prior.sample_from_seeds(tf.constant([7, 8, 7], tf.int64)).numpy()
  np.testing.assert_array_equal(z[0], z[2])
  assert not np.allclose(z[0], z[1])
  many = prior.sample(2000, tf.constant([1, 2], tf.int64)).numpy()
  assert abs(np.mean(many[:, 0] > 0) - 0.5) < 0.05  # Both components are sampled.
  assert np.all(np.abs(np.abs(many[:, 0]) - 4) < 2)  # ... near their means.


def test_too_few_codes_is_config_error():
  with pytest.raises(ConfigError, match="--components"):
    priors.fit_gmm_prior(np.zeros((3, 2)), 10)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("gmm")
  config = TrainConfig(model="rae_l2", dataset="synthetic_image", true_latent_dim=2,
                       num_examples=200, latent_dim=3, arch="dcgan", width=4, batch_size=50,
                       epochs=1, workdir=str(tmp / "run"), export_dir="")
  training.train(config, verbose=0)
  prior, path = expost.fit_gmm_for_run(config.workdir, 3, export_dir=str(tmp / "exports"))
  return config, prior, path


def test_gmm_export_samples_the_mixture_without_tfp(fitted, tmp_path):
  config, prior, path = fitted
  assert path.endswith(os.path.join("rae_l2_gmm", "1"))
  assert os.path.exists(os.path.join(config.workdir, expost.GMM_FILE))
  script = tmp_path / "check.py"
  script.write_text(
      "import json, sys\nimport tensorflow as tf\n"
      "m = tf.saved_model.load(sys.argv[1])\n"
      "z = m.signatures['serving_default'](seed=tf.constant([5, 6, 5], tf.int64))['latent']\n"
      "print(json.dumps({'z': z.numpy().tolist(), "
      "'tfp': 'tensorflow_probability' in sys.modules}))\n")
  proc = run_python([str(script), path])
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert not out["tfp"]
  z = np.array(out["z"])
  np.testing.assert_array_equal(z[0], z[2])
  # The exported sampler is the fitted mixture: the same draws as the prior in-process.
  np.testing.assert_allclose(z, prior.sample_from_seeds(tf.constant([5, 6, 5], tf.int64)),
                             atol=1e-5)


def test_evaluate_with_gmm_prior(fitted, tmp_path):
  config, prior, _ = fitted
  results = evaluation.evaluate(evaluation.EvalConfig(
      workdir=config.workdir, prior="gmm", num_samples=300, prd_runs=1, figures=False,
      out_dir=str(tmp_path / "e")))
  assert results["run"] == "rae_l2+gmm" and np.isfinite(results["fid_generation"])
  with pytest.raises(ConfigError, match="--prior"):
    evaluation.EvalConfig(export_dir="x", dataset="mnist10k", prior="gmm")


def test_fit_prior_cli_errors(tmp_path):
  proc = run_python([os.path.join(ROOT, "scripts", "fit_prior.py")])
  assert proc.returncode == 2 and "--workdir" in proc.stderr and "Traceback" not in proc.stderr
  proc = run_python([os.path.join(ROOT, "scripts", "fit_prior.py"), f"--workdir={tmp_path}"])
  assert proc.returncode == 2 and "config.json" in proc.stderr
