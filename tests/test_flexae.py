"""FlexAE and flexae_flow: learned priors trained by players of their own."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import networks
from rae_tf import priors
from rae_tf import regularizers
from rae_tf import training
from rae_tf.config import TrainConfig

from conftest import run_python

TINY = dict(dataset="synthetic", true_latent_dim=2, ambient_dim=8, num_examples=128,
            latent_dim=3, arch="mlp", width=16, depth=2, critic_width=16, critic_depth=2,
            prior_width=16, prior_depth=2, batch_size=32, learning_rate=2e-3,
            log_every_steps=5, num_image_samples=4)


def _config(tmp_path, name="run", **kw):
  return TrainConfig.make(**{**TINY, "model": "flexae", "workdir": str(tmp_path / name),
                        "export_dir": str(tmp_path / "exports"), **kw})


def _moment_gap(a, b):
  """||mean_a - mean_b|| + ||cov_a - cov_b||_F: how far two samples are apart."""
  return float(np.linalg.norm(a.mean(0) - b.mean(0))
               + np.linalg.norm(np.cov(a.T) - np.cov(b.T)))


def _codes_and_prior(model, x):
  codes = model.encode(x).numpy()
  prior = model.prior.sample_from_seeds(tf.range(2000, dtype=tf.int64)).numpy()
  return codes, prior


@pytest.fixture(scope="module")
def flexae_run(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("flexae")
  # Tiny nets and few steps: a critic faster than the generator (beta_1 0.5) keeps the
  # adversarial game stable at this scale (the authors' rates need far more steps).
  config = _config(tmp_path, epochs=25, learning_rate=1e-3, critic_width=64,
                   prior_width=64, critic_learning_rate=2e-3, generator_learning_rate=5e-4,
                   encoder_adversary_learning_rate=1e-4, adversary_beta_1=0.5)
  spec_source = training.rae_data.get_data_source(training.data_config(config))
  x, _ = spec_source.arrays("train")
  initial, _ = training.build_compiled_model(config, spec_source.spec,
                                             tf.distribute.get_strategy())
  _, prior_before = _codes_and_prior(initial, x)
  result = training.train(config, verbose=0)
  return config, result, x, prior_before


def test_prior_moves_toward_codes_while_reconstruction_improves(flexae_run):
  _, result, x, prior_before = flexae_run
  codes, prior_after = _codes_and_prior(result.model, x)
  before, after = _moment_gap(codes, prior_before), _moment_gap(codes, prior_after)
  assert after < 0.6 * before, (before, after)
  assert result.history["adversary"][-1] > 0  # The critic tells codes from prior samples.
  rec = result.history["reconstruction"]
  assert rec[-1] < 0.7 * rec[0], rec


def test_every_player_steps_as_scheduled(flexae_run):
  config, result, _, _ = flexae_run
  steps = config.epochs * (config.num_examples // config.batch_size)
  model = result.model
  assert [p.name for p in model.players] == [
      "autoencoder", "adversary_critic", "adversary_prior", "adversary_encoder"]
  assert int(model.optimizer.iterations.numpy()) == steps
  iters = {n: int(o.iterations.numpy()) for n, o in model.extra_optimizers.items()}
  assert iters == {"adversary_critic": 5 * steps, "adversary_prior": steps,
                   "adversary_encoder": steps}
  # Adam (beta_1, 0.9) for the three adversarial players (authors: beta_1 = 0).
  for name in iters:
    opt = model.extra_optimizers[name]
    assert (opt.beta_1, opt.beta_2) == (config.weight("adversary_beta_1"), 0.9)
  # The auto-encoder's optimizer does not train the learned prior.
  prior_ids = {id(v) for v in model.prior.trainable_variables}
  assert prior_ids and not prior_ids & {id(v) for v in model.autoencoder_variables}


def test_tensorboard_has_projection_and_every_player(flexae_run):
  config, _, _, _ = flexae_run
  tags = set()
  for path in glob.glob(os.path.join(config.workdir, "tensorboard", "**", "events.*"),
                        recursive=True):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  for tag in ("latent/prior_vs_codes", "epoch/adversary", "epoch/adversary_critic",
              "epoch/adversary_prior", "epoch/adversary_encoder",
              "learning_rate/adversary_critic", "learning_rate/adversary_encoder"):
    assert tag in tags, (tag, sorted(tags))


def test_resume_restores_all_four_optimizers(tmp_path):
  kw = dict(epochs=2, steps_per_epoch=3, export_dir="")
  full = training.train(_config(tmp_path, "full", **kw), verbose=0)
  part = _config(tmp_path, "part", **kw)
  training.train(part.replace(epochs=1), verbose=0)
  resumed = training.train(part, verbose=0)
  for name, opt in full.model.extra_optimizers.items():
    other = resumed.model.extra_optimizers[name]
    assert int(other.iterations.numpy()) == int(opt.iterations.numpy())
    for a, b in zip(opt.variables, other.variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}: {a.path}")
  for a, b in zip(full.model.weights, resumed.model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


EXPORT_CHECK = r"""
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
f = m.signatures["serving_default"]
a = f(seed=tf.constant([5, 6, 5], tf.int64))
b = f(seed=tf.constant([5], tf.int64))
print(json.dumps(dict(
    same=float(np.abs(a["x"].numpy()[0] - a["x"].numpy()[2]).max()),
    across=float(np.abs(a["latent"].numpy()[0] - b["latent"].numpy()[0]).max()),
    differ=float(np.abs(a["x"].numpy()[0] - a["x"].numpy()[1]).max()),
    latent=a["latent"].numpy().tolist(),
    imported=sorted(k for k in ("rae_tf", "tensorflow_probability") if k in sys.modules))))
"""


# flexae_flow's export path is the same signature code (slow: a second fresh process).
@pytest.mark.parametrize("model", ["flexae", pytest.param("flexae_flow",
                                                          marks=pytest.mark.slow)])
def test_export_samples_the_learned_prior_without_tfp(tmp_path, model):
  config = _config(tmp_path, model=model, epochs=1, export_name=model)
  result = training.train(config, verbose=0)
  script = tmp_path / "check.py"
  script.write_text(EXPORT_CHECK)
  proc = run_python([str(script), result.export_path])
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["same"] == 0.0 and out["differ"] > 0 and out["across"] < 1e-5
  assert out["imported"] == []
  # The served latent is the learned prior's sample for that seed: G(eps(seed)).
  expected = result.model.prior.sample_from_seeds(tf.constant([5, 6], tf.int64)).numpy()
  np.testing.assert_allclose(np.array(out["latent"])[:2], expected, atol=1e-5)
  cli = run_python(["-c", "from tensorflow.python.tools.saved_model_cli import main; main()",
                    "run", "--dir", result.export_path, "--tag_set", "serve",
                    "--signature_def", "serving_default", "--input_exprs", "seed=[1,2]"])
  assert cli.returncode == 0 and "Result for output key latent" in cli.stdout, cli.stderr[-2000:]


def result_config(tmp_path):
  return _config(tmp_path, model="flexae_flow")


def test_flexae_flow_fits_the_codes(tmp_path):
  result = training.train(_config(tmp_path, model="flexae_flow", epochs=6, export_dir="",
                                  generator_learning_rate=1e-2), verbose=0)
  nll = result.history["flow_prior"]  # Negative log-likelihood per dimension of the codes.
  assert nll[-1] < nll[0] - 0.2, nll
  # Better than the base N(0, I) the flow started as, on the final codes.
  x, _ = training.rae_data.get_data_source(training.data_config(result_config(tmp_path))
                                           ).arrays("train")
  codes = result.model.encode(x)
  flow_nll = -float(tf.reduce_mean(result.model.prior.log_prob(codes)))
  base_nll = -float(tf.reduce_mean(
      priors.StandardNormalPrior(3).distribution().log_prob(codes)))
  assert flow_nll < base_nll - 0.5, (flow_nll, base_nll)
  assert int(result.model.extra_optimizers["flow_prior"].iterations.numpy()) == 6 * 4


def _round_trip(layer, call):
  config = layer.get_config()
  clone = layer.__class__.from_config(config)
  assert clone.get_config() == config
  call(clone)
  for a, b in zip(layer.weights, clone.weights):
    b.assign(a)
  np.testing.assert_allclose(call(layer).numpy(), call(clone).numpy(), atol=1e-6)


def test_learned_prior_config_round_trip():
  gen = networks.build_prior_generator(4, 3, width=8, depth=2)
  for base in ("normal", "uniform"):
    prior = priors.LearnedPrior(3, gen, 4, base=base, name="prior")
    _round_trip(prior, lambda p: p.sample_from_seeds(tf.constant([1, 2], tf.int64)))


def test_flow_prior_config_round_trip_and_density():
  prior = priors.FlowPrior(3, num_couplings=2, width=8, depth=1, name="prior")
  _round_trip(prior, lambda p: p.sample_from_seeds(tf.constant([1, 2], tf.int64)))
  # Zero-initialised couplings: the flow starts as the identity, log p = N(0, I)'s.
  z = tf.constant([[0.1, -0.2, 0.3]])
  np.testing.assert_allclose(prior.log_prob(z).numpy(),
                             priors.StandardNormalPrior(3).distribution().log_prob(z).numpy(),
                             atol=1e-5)


def test_flexae_terms_config_round_trip():
  critic = networks.build_critic(3, width=8, depth=1)
  term = regularizers.LearnedPriorAdversary(critic, 0.5, critic_steps=3,
                                            generator_learning_rate=1e-3, name="adversary")
  _round_trip(term, lambda t: t.critic(tf.ones((2, 3))))
  fit = regularizers.FlowPriorFit(0.1, learning_rate=1e-2, name="flow")
  clone = regularizers.FlowPriorFit.from_config(fit.get_config())
  assert clone.get_config() == fit.get_config() and clone.in_autoencoder_loss


def test_flexae_needs_a_learned_prior(tmp_path):
  from rae_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="--prior=learned"):
    training.train(_config(tmp_path, prior="standard_normal", epochs=1), verbose=0)
  assert not (tmp_path / "run").exists()


_REFINE_KW = dict(epochs=4, learning_rate=1e-3, critic_width=64, prior_width=64,
                  critic_learning_rate=2e-3, generator_learning_rate=5e-4,
                  encoder_adversary_learning_rate=1e-4, adversary_beta_1=0.5, export_dir="")


def test_prior_refinement_fits_the_final_codes(tmp_path):
  kw = _REFINE_KW
  plain = training.train(_config(tmp_path, "plain", **kw), verbose=0)
  refined_config = _config(tmp_path, "refined", prior_refine_steps=300, **kw)
  refined = training.train(refined_config, verbose=0)
  x, _ = training.rae_data.get_data_source(training.data_config(refined_config)).arrays("train")
  # Same auto-encoder (the refinement freezes it); a prior much closer to its codes.
  for a, b in zip(plain.model.encoder.weights, refined.model.encoder.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  gap_plain = _moment_gap(*_codes_and_prior(plain.model, x))
  gap_refined = _moment_gap(*_codes_and_prior(refined.model, x))
  assert gap_refined < 0.6 * gap_plain, (gap_plain, gap_refined)
  # Rerunning the finished command neither trains nor refines again.
  before = [w.numpy() for w in refined.model.prior.weights]
  again = training.train(refined_config, verbose=0)
  for a, b in zip(before, again.model.prior.weights):
    np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.slow  # Suite time (three more trainings each).
@pytest.mark.parametrize("half_life", [0, 40])
def test_prior_refinement_continues_exactly(tmp_path, half_life):
  """Refining a finished run further continues exactly: 100 steps, then up to 300 (with a
  decaying rate too: its factor depends on the step alone)."""
  refined_config = _config(tmp_path, "refined", prior_refine_steps=300,
                           prior_refine_half_life=half_life, **_REFINE_KW)
  before = [w.numpy() for w in training.train(refined_config, verbose=0).model.prior.weights]
  split = refined_config.replace(workdir=str(tmp_path / "split"))
  training.train(split.replace(prior_refine_steps=100), verbose=0)
  continued = training.train(split, verbose=0)
  for a, b in zip(before, continued.model.prior.weights):
    np.testing.assert_array_equal(a, b.numpy())


def test_half_life_without_refinement_is_refused(tmp_path):
  from rae_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="--prior_refine_steps"):
    _config(tmp_path, prior_refine_half_life=100)
  with pytest.raises(ConfigError, match=">= 0"):
    _config(tmp_path, prior_refine_steps=10, prior_refine_half_life=-1)


def test_refine_rate_scale_halves_every_half_life():
  from rae_tf import prior_refinement  # pylint: disable=g-import-not-at-top
  scale = prior_refinement.refine_rate_scale
  assert [scale(i, 0) for i in (0, 50, 10**6)] == [1.0, 1.0, 1.0]
  assert [scale(i, 40) for i in (0, 40, 80, 120)] == [1.0, 0.5, 0.25, 0.125]


def test_refinement_continued_on_a_finished_run_is_exported(tmp_path):
  """A larger --prior_refine_steps on a finished run serves the further-refined prior (the
  export used to be skipped because the training step had not changed), and the players'
  rates are their own again after a decayed refinement."""
  config = _config(tmp_path, epochs=1, prior_refine_steps=20, prior_refine_half_life=5)
  first = training.train(config, verbose=0)
  for player in first.model.players:
    if player.fits_prior:
      assert float(player.optimizer.learning_rate.numpy()) == pytest.approx(
          player.learning_rate), player.name
  more = training.train(config.replace(prior_refine_steps=40), verbose=0)
  assert more.export_path != first.export_path
  seeds = tf.constant([1, 2, 3], tf.int64)
  served = [tf.saved_model.load(p).signatures["serving_default"](seed=seeds)["latent"].numpy()
            for p in (first.export_path, more.export_path)]
  assert np.abs(served[0] - served[1]).max() > 1e-4
  np.testing.assert_allclose(served[1], more.model.prior.sample_from_seeds(seeds).numpy(),
                             atol=1e-5)
  # The same command again neither refines nor exports again.
  assert training.train(config.replace(prior_refine_steps=40), verbose=0).export_path == \
      more.export_path
