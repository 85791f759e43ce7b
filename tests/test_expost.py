"""Ex-post priors (RAE + GMM, RealNVP flow, 2-stage VAE): fit, sample per seed, export,
evaluate, and the fit_prior.py command line."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import eval_config
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


# ----------------------------------------------------------------- flow and 2-stage VAE

# Tiny fits: seconds each on the CPU.
FLOW_OPTIONS = {"steps": 200, "couplings": 2, "width": 32, "learning_rate": 3e-3,
                "log_every": 0}
VAE_OPTIONS = {"steps": 1000, "width": 64, "depth": 2, "learning_rate": 3e-3, "log_every": 0}
SEEDS = tf.constant([5, 6, 5], tf.int64)


def _correlated_codes(n=1000):
  """4-d Gaussian codes, dims 0 and 1 correlated 0.8, off the origin and not unit scale."""
  rng = np.random.default_rng(0)
  cov = np.array([[1.0, 0.8, 0, 0], [0.8, 1.0, 0, 0], [0, 0, 0.25, -0.1], [0, 0, -0.1, 0.25]])
  return rng.multivariate_normal([3, -2, 1, 0], 4 * cov, size=n).astype(np.float32)


def _draws(prior, n=2000):
  return tf.function(prior.sample_from_seeds)(tf.range(n, dtype=tf.int64)).numpy()


@pytest.mark.parametrize("kind,options", [("flow", FLOW_OPTIONS), ("vae", VAE_OPTIONS)])
def test_fit_moves_samples_toward_the_codes(kind, options):
  codes = _correlated_codes()
  prior = expost.fit(kind, codes, **options)
  z = _draws(prior)
  assert prior.in_latent_space
  np.testing.assert_allclose(z.mean(0), codes.mean(0), atol=0.25)  # std 2 and 1.
  # The correlation of dims 0 and 1 (0.8) is learnt (an untrained flow has none).
  assert np.corrcoef(z.T)[0, 1] > 0.6, np.corrcoef(z.T)[0, 1]
  # Covariance: closer to the codes' than the best Gaussian without correlations
  # (relative error 0.49), which is where an untrained flow starts (a VAE: at ~1).
  cov = np.cov(codes.T)
  error = lambda c: np.linalg.norm(c - cov) / np.linalg.norm(cov)
  assert error(np.diag(np.diag(cov))) > 0.45
  assert error(np.cov(z.T)) < 0.3, np.round(np.cov(z.T), 2)


def test_second_stage_samples_keep_the_codes_spread_before_gamma_shrinks():
  # A short fit leaves gamma_z near 1 and the decoder's mean nearly constant: the
  # ancestral draw's noise still spreads the samples like the codes (the mean alone
  # would put every sample at the codes' centre).
  codes = _correlated_codes()
  prior = expost.fit("vae", codes, **{**VAE_OPTIONS, "steps": 20})
  gamma = float(np.exp(prior.log_gamma.numpy()))
  assert gamma > 0.5, gamma
  spread = _draws(prior).std(0) / codes.std(0)
  assert np.all((spread > 0.7) & (spread < 1.5)), spread
  mean_only = prior.decode(tf.random.stateless_normal([2000, 4], seed=[1, 2])).numpy()
  assert np.all(mean_only.std(0) / codes.std(0) < 0.5)  # What the mean alone gives.


@pytest.mark.parametrize("kind,options", [("flow", FLOW_OPTIONS), ("vae", VAE_OPTIONS)])
def test_deterministic_per_seed_and_get_config_round_trip(kind, options, tmp_path):
  codes = _correlated_codes(300)
  short = {**options, "steps": 5}
  prior = expost.fit(kind, codes, seed=1, **short)
  z = prior.sample_from_seeds(SEEDS).numpy()
  if kind == "vae":  # The same seed, the same fit (one code path for both; a flow's
    # training step takes ~10 s to trace on this CPU, so it is fitted once here).
    again = expost.fit(kind, codes, seed=1, **short)
    np.testing.assert_array_equal(z, again.sample_from_seeds(SEEDS).numpy())
  np.testing.assert_array_equal(z[0], z[2])  # Same seed, same draw.
  assert not np.allclose(z[0], z[1])
  np.testing.assert_array_equal(prior.sample(4, tf.constant([1, 2], tf.int64)),
                                prior.sample(4, tf.constant([1, 2], tf.int64)))
  # config -> object -> the same config; with the weights, the same samples.
  config = prior.get_config()
  clone = type(prior).from_config(config)
  assert clone.get_config() == config
  clone.build()
  clone.set_weights(prior.get_weights())
  np.testing.assert_array_equal(clone.sample_from_seeds(SEEDS), z)
  # The file fit_for_run writes (Keras serialisation + weights) round-trips too.
  path = str(tmp_path / "prior.npz")
  expost.save_expost(prior, kind, path)
  loaded = expost.load_layer(path)
  assert type(loaded) is type(prior) and loaded.get_config() == config
  np.testing.assert_array_equal(loaded.sample_from_seeds(SEEDS), z)


def test_bad_fit_options_are_config_errors():
  codes = _correlated_codes(50)
  with pytest.raises(ConfigError, match="--couplings does not apply to --expost=vae"):
    expost.fit("vae", codes, couplings=2)
  with pytest.raises(ConfigError, match="--steps=0 must be"):
    expost.fit("flow", codes, steps=0)
  with pytest.raises(ConfigError, match="--learning_rate"):
    expost.fit("vae", codes, learning_rate=0.0)
  with pytest.raises(ConfigError, match="unknown --expost='nf'"):
    expost.fit("nf", codes)
  with pytest.raises(ConfigError, match="m >= 2"):
    expost.fit("flow", codes[:, :1])


@pytest.fixture(scope="module")
def fitted_flow_vae(fitted, tmp_path_factory):
  config, _, _ = fitted
  exports = str(tmp_path_factory.mktemp("expost_exports"))
  out = {}
  for kind, options in (("flow", FLOW_OPTIONS), ("vae", VAE_OPTIONS)):
    out[kind] = expost.fit_for_run(config.workdir, kind, export_dir=exports, seed=0,
                                   **{**options, "steps": 50})
  return config, out


def test_flow_and_vae_exports_sample_without_tfp_or_rae_tf(fitted_flow_vae, tmp_path):
  config, out = fitted_flow_vae
  for kind, (prior, path) in out.items():
    assert path.endswith(os.path.join(f"rae_l2_{kind}", "1"))
    assert os.path.exists(os.path.join(config.workdir, eval_config.EXPOST_FILES[kind]))
    assert type(expost.load_expost(config.workdir, kind)) is type(prior)
  script = tmp_path / "check.py"
  script.write_text(
      "import json, sys\nimport tensorflow as tf\nout = {}\n"
      "for path in sys.argv[1:]:\n"
      "  m = tf.saved_model.load(path)\n"
      "  r = m.signatures['serving_default'](seed=tf.constant([5, 6, 5], tf.int64))\n"
      "  out[path] = {'z': r['latent'].numpy().tolist(), 'images': r['image'].shape[0]}\n"
      "print(json.dumps({'out': out, 'tfp': 'tensorflow_probability' in sys.modules, "
      "'rae_tf': any(n.startswith('rae_tf') for n in sys.modules)}))\n")
  paths = [path for _, path in out.values()]
  proc = run_python([str(script)] + paths, env_extra={"PYTHONPATH": ""})
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert not result["tfp"] and not result["rae_tf"]
  for kind, (prior, path) in out.items():
    z = np.array(result["out"][path]["z"])
    np.testing.assert_array_equal(z[0], z[2])
    assert not np.allclose(z[0], z[1])
    # The exported sampler is the fitted prior: the same draws as in-process.
    np.testing.assert_allclose(z, prior.sample_from_seeds(SEEDS), atol=1e-5, err_msg=kind)


def test_evaluate_with_flow_prior(fitted_flow_vae, tmp_path):
  config, _ = fitted_flow_vae
  results = evaluation.evaluate(evaluation.EvalConfig(
      workdir=config.workdir, prior="flow", num_samples=300, prd_runs=1, figures=False,
      features="raw",
      out_dir=str(tmp_path / "e")))
  assert results["run"] == "rae_l2+flow" and np.isfinite(results["fid_generation"])


def test_evaluate_asks_for_the_missing_fit(tmp_path):
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(ConfigError, match="fit_prior.py --workdir=.* --expost=vae"):
    eval_config.check_inputs(evaluation.EvalConfig(workdir=str(tmp_path), prior="vae"))
  with pytest.raises(ConfigError, match="choose one of: trained, gmm, flow, vae"):
    evaluation.EvalConfig(workdir=str(tmp_path), prior="nf")


@pytest.mark.parametrize("args,flag", [
    (["--expost=nf"], "--expost"),
    (["--expost=flow", "--components=3"], "--components"),
    (["--expost=vae", "--steps=0"], "--steps"),
    (["--expost=flow", "--learning_rate=2"], "--learning_rate"),
])
def test_fit_prior_cli_bad_options(args, flag, tmp_path):
  (tmp_path / "config.json").write_text("{}")
  proc = run_python([os.path.join(ROOT, "scripts", "fit_prior.py"), f"--workdir={tmp_path}",
                     f"--export_dir={tmp_path / 'exports'}"] + args)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr
  assert lines[0].startswith("error: ") and flag in lines[0], lines
  assert sorted(os.listdir(tmp_path)) == ["config.json"]  # Nothing written.


def test_export_run_reexports_each_fitted_prior(fitted_flow_vae, tmp_path):
  """scripts/export.py's library call: a run re-exported with its fitted flow samples it."""
  config, out = fitted_flow_vae
  path = expost.export_run(config.workdir, str(tmp_path), prior="flow")
  assert path == str(tmp_path / f"{config.run_name}_flow" / "1")
  loaded = tf.saved_model.load(path)
  z = loaded.signatures["serving_default"](seed=tf.constant([3, 4], tf.int64))["latent"]
  np.testing.assert_allclose(z.numpy(), _draws(out["flow"][0], 5)[3:5], rtol=1e-4,
                             atol=1e-5)


def test_export_run_asks_for_a_missing_fit(tmp_path):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text("{}")
  with pytest.raises(ConfigError, match="--prior=vae: .*vae_prior.npz not found; fit it "
                                        "first with scripts/fit_prior.py"):
    expost.export_run(str(tmp_path / "run"), str(tmp_path / "exports"), prior="vae")
  assert not (tmp_path / "exports").exists()
