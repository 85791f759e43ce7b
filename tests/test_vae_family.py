"""The VAE family (issue 9): posteriors (Gaussian, IAF), the Monte-Carlo KL, the VampPrior,
and the registered vae_* / two_stage_vae / info_vae models: they train, round-trip through
get_config / from_config and export samplers."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import keras

from rae_tf import likelihoods
from rae_tf import networks
from rae_tf import posteriors
from rae_tf import priors
from rae_tf import regularizers
from rae_tf.errors import ConfigError
from rae_tf.models.rae import RegularizedAutoEncoder

M = 4
SHAPE = (12,)


def _model(posterior=None, prior=None, terms=None, gaussian_encoder=True, seed=0):
  """A tiny vector model built from parts (no recipe)."""
  keras.utils.set_random_seed(seed)
  if posterior is None:
    posterior = (posteriors.DiagonalGaussianPosterior(name="posterior") if gaussian_encoder
                 else posteriors.DeterministicPosterior(name="posterior"))
  encoder = networks.build_encoder("mlp", SHAPE, posterior.encoder_output_dim(M), width=16,
                                   depth=2)
  decoder = networks.build_decoder("mlp", M, SHAPE, width=16, depth=2)
  likelihood = likelihoods.GaussianLikelihood(image_output=False, name="likelihood")
  prior = prior if prior is not None else priors.StandardNormalPrior(M, name="prior")
  terms = terms if terms is not None else {"kl": regularizers.MonteCarloKL(1.0, name="kl")}
  model = RegularizedAutoEncoder(encoder, decoder, likelihood, prior, terms, latent_dim=M,
                                 posterior=posterior, seed=seed)
  model.build_all()
  return model


def _x(n=16):
  return tf.random.stateless_normal([n, SHAPE[0]], seed=[3, 4])


def _same_config_and_outputs(model):
  """get_config -> from_config: the same config, and with the weights the same outputs."""
  config = model.get_config()
  clone = RegularizedAutoEncoder.from_config(config)
  clone.build_all()
  assert clone.get_config() == config
  assert len(clone.weights) == len(model.weights)
  clone.set_weights(model.get_weights())
  x, seeds = _x(), tf.constant([5, 6, 7], tf.int64)
  np.testing.assert_array_equal(clone.encode(x), model.encode(x))
  np.testing.assert_array_equal(clone.sample_from_seeds(seeds)[0],
                                model.sample_from_seeds(seeds)[0])
  seed = tf.constant([1, 2], tf.int64)
  a = model.compute_losses(model.forward(x, seed, training=False))
  b = clone.compute_losses(clone.forward(x, seed, training=False))
  for key in a:
    np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-6)
  return clone


# ---- posteriors ----------------------------------------------------------------------


@pytest.mark.parametrize("posterior", [
    posteriors.DeterministicPosterior(name="posterior"),
    posteriors.DiagonalGaussianPosterior(name="posterior"),
    posteriors.IAFPosterior(M, num_steps=3, width=8, context_dim=5, forget_bias=2.0,
                            name="posterior"),
])
def test_posterior_round_trip(posterior):
  """get_config -> from_config: the same config and, with the weights, the same draws."""
  h = tf.random.stateless_normal([3, posterior.encoder_output_dim(M)], seed=[1, 3])
  eps = tf.random.stateless_normal([3, M], seed=[2, 3])
  want = posterior.draw(h, eps)
  config = posterior.get_config()
  clone = type(posterior).from_config(config)
  assert clone.get_config() == config
  assert clone.encoder_output_dim(M) == posterior.encoder_output_dim(M)
  clone.draw(h, eps)  # Builds the IAF steps.
  clone.set_weights(posterior.get_weights())
  got = clone.draw(h, eps)
  for a, b in zip(want, got):
    if a is None:
      assert b is None
    else:
      np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(clone.code(h), posterior.code(h))


def test_made_and_monte_carlo_kl_round_trip():
  made = posteriors.ConditionalMADE(M, 8, 3, depth=2, reverse=True, forget_bias=1.5)
  z, c = tf.ones([2, M]), tf.ones([2, 3])
  made(z, c)
  clone = posteriors.ConditionalMADE.from_config(made.get_config())
  assert clone.get_config() == made.get_config()
  clone(z, c)
  clone.set_weights(made.get_weights())
  for a, b in zip(made(z, c), clone(z, c)):
    np.testing.assert_array_equal(a, b)
  term = regularizers.MonteCarloKL(0.5, name="kl")
  assert regularizers.MonteCarloKL.from_config(term.get_config()).get_config() == (
      term.get_config())


def test_gaussian_log_q_is_the_normal_density():
  posterior = posteriors.DiagonalGaussianPosterior()
  h = tf.random.stateless_normal([6, 2 * M], seed=[1, 1])
  eps = tf.random.stateless_normal([6, M], seed=[2, 2])
  draw = posterior.draw(h, eps)
  mean, log_var = tf.split(h, 2, axis=-1)
  want = tfp.distributions.MultivariateNormalDiag(mean, tf.exp(0.5 * log_var)).log_prob(draw.z)
  np.testing.assert_allclose(draw.log_q, want, rtol=1e-5, atol=1e-5)


def test_iaf_is_autoregressive_and_log_q_matches_the_jacobian():
  posterior = posteriors.IAFPosterior(M, num_steps=3, width=16, context_dim=6,
                                      name="posterior")
  h = tf.random.stateless_normal([5, posterior.encoder_output_dim(M)], seed=[1, 2])
  posterior.draw(h, tf.zeros([5, M]))  # Builds the steps.
  for step in posterior.steps:  # Non-trivial flows: random output layers.
    step.out_kernel.assign(tf.random.stateless_normal(step.out_kernel.shape, [7, 7]) * 0.5)
  eps = tf.random.stateless_normal([5, M], seed=[3, 4])
  mean, log_var = posterior.parameters(h)
  z0 = mean + tf.exp(0.5 * log_var) * eps
  context = h[:, 2 * M:]
  with tf.GradientTape() as tape:
    tape.watch(z0)
    z, _ = posterior.flow(z0, context)
  jacobian = tape.batch_jacobian(z, z0).numpy()
  # One step: output i depends on z_j, j before i, plus itself through the gate: lower
  # triangular; a reversed second step makes the composition dense, so check step 0.
  with tf.GradientTape() as tape:
    tape.watch(z0)
    shift, s = posterior.steps[0](z0, context)
  upper = tape.batch_jacobian(tf.concat([shift, s], axis=-1), z0).numpy()
  for i in range(M):
    assert np.all(upper[:, i, i:] == 0) and np.all(upper[:, M + i, i:] == 0)
  base = tfp.distributions.MultivariateNormalDiag(mean, tf.exp(0.5 * log_var)).log_prob(z0)
  want = base.numpy() - np.linalg.slogdet(jacobian)[1]
  draw = posterior.draw(h, eps)
  np.testing.assert_allclose(draw.z, z, rtol=1e-6)
  np.testing.assert_allclose(draw.log_q, want, rtol=1e-4, atol=1e-4)
  # The serving code is the flow's image of the mean (eps = 0).
  np.testing.assert_allclose(posterior.code(h), posterior.draw(h, tf.zeros([5, M])).z)


def test_iaf_starts_near_the_identity_with_the_forget_bias():
  posterior = posteriors.IAFPosterior(M, num_steps=2, width=8, forget_bias=50.0)
  h = tf.random.stateless_normal([4, posterior.encoder_output_dim(M)], seed=[1, 2])
  np.testing.assert_allclose(posterior.code(h), h[:, :M], atol=1e-6)


def test_closed_form_kl_refuses_an_iaf_posterior():
  model = _model(posteriors.IAFPosterior(M, num_steps=1, width=8, name="posterior"),
                 terms={"kl": regularizers.KLDivergence(1.0, name="kl")})
  with pytest.raises(ConfigError, match="MonteCarloKL"):
    model.compute_losses(model.forward(_x(), tf.constant([0, 0], tf.int64)))


def test_monte_carlo_kl_averages_to_the_closed_form():
  model = _model(terms={"kl": regularizers.KLDivergence(1.0, name="kl"),
                        "mc_kl": regularizers.MonteCarloKL(0.0, name="mc_kl")})
  x = tf.tile(_x(4), [500, 1])  # 500 draws per example in one pass.
  fwd = model.forward(x, tf.constant([0, 0], tf.int64))
  losses = model.compute_losses(fwd)
  per_draw = (fwd.log_q - regularizers.prior_log_prob(model.prior, fwd.z_raw)).numpy()
  np.testing.assert_allclose(float(losses["mc_kl"]), per_draw.mean(), rtol=1e-5)
  error = abs(per_draw.mean() - float(losses["kl"]))
  assert error < 4 * per_draw.std() / np.sqrt(len(per_draw)), (error, per_draw.std())


def test_iaf_model_round_trip_and_trains():
  model = _model(posteriors.IAFPosterior(M, num_steps=2, width=16, name="posterior"))
  # The flow trains with the auto-encoder.
  names = {v.path for v in model.autoencoder_variables}
  assert any("iaf_step_1" in n for n in names)
  _same_config_and_outputs(model)


# ---- VampPrior -----------------------------------------------------------------------


def _vamp_model(k=7):
  prior = priors.VampPrior(M, SHAPE, num_pseudo_inputs=k, clip=False, name="prior")
  return _model(prior=prior)


def test_vamp_prior_log_prob_is_the_mixture_of_encoder_posteriors():
  model = _vamp_model()
  prior = model.prior
  means, log_vars = model.encode_distribution(prior.inputs())
  mixture = tfp.distributions.MixtureSameFamily(
      tfp.distributions.Categorical(logits=tf.zeros([7])),
      tfp.distributions.MultivariateNormalDiag(means, tf.exp(0.5 * log_vars)))
  z = tf.random.stateless_normal([9, M], seed=[5, 5])
  np.testing.assert_allclose(prior.log_prob(z), mixture.log_prob(z), rtol=1e-5, atol=1e-5)
  # The pseudo-inputs train with the auto-encoder; the encoder is not counted twice.
  variables = model.autoencoder_variables
  assert any("pseudo_inputs" in v.path for v in variables)
  assert len({id(v) for v in variables}) == len(variables)
  assert prior.trainable_variables == [prior.pseudo_inputs]


def test_vamp_prior_samples_per_seed_from_its_components():
  model = _vamp_model(k=3)
  seeds = tf.constant([11, 12, 11, 13], tf.int64)
  z = model.latent_from_seeds(seeds).numpy()
  np.testing.assert_array_equal(z[0], z[2])  # Same seed, same draw (gathered components).
  np.testing.assert_array_equal(z[:2], model.latent_from_seeds(seeds[:2]).numpy())
  # Every draw is a component mean plus its scaled noise for some component k.
  means, log_vars = model.prior.components()
  eps = np.asarray(tf.random.stateless_normal([M], seed=[11, 0]))
  candidates = means.numpy() + np.exp(0.5 * log_vars.numpy()) * eps
  assert np.min(np.abs(candidates - z[0]).max(axis=1)) < 1e-6
  train = model.prior.sample(5, tf.constant([1, 2], tf.int64))
  assert train.shape == (5, M) and np.all(np.isfinite(train))


def test_vamp_prior_clips_images_to_the_unit_interval_and_round_trips():
  prior = priors.VampPrior(M, (4, 4, 1), num_pseudo_inputs=5, name="prior")
  prior.pseudo_inputs.assign(tf.fill([5, 4, 4, 1], 2.0))
  assert float(tf.reduce_max(prior.inputs())) == 1.0
  clone = priors.VampPrior.from_config(prior.get_config())
  assert clone.get_config() == prior.get_config()
  with pytest.raises(ConfigError, match="not attached"):
    clone.sample_from_seeds(tf.constant([1], tf.int64))


def test_vamp_prior_needs_a_gaussian_posterior():
  with pytest.raises(ConfigError, match="diagonal Gaussian"):
    _model(posteriors.IAFPosterior(M, num_steps=1, width=8, name="posterior"),
           prior=priors.VampPrior(M, SHAPE, num_pseudo_inputs=3, clip=False, name="prior"))


def test_vamp_model_round_trip_and_trains():
  model = _vamp_model()
  _same_config_and_outputs(model)
  model.compile(keras.optimizers.Adam(2e-3))
  step = tf.function(model.train_step)
  x = _x(32)
  seed = tf.constant([0, 0], tf.int64)
  first = float(model.compute_losses(model.forward(x, seed))["loss"])
  before = model.prior.pseudo_inputs.numpy().copy()
  for _ in range(60):
    step(x)
  last = float(model.compute_losses(model.forward(x, seed))["loss"])
  assert last < first
  assert not np.array_equal(before, model.prior.pseudo_inputs.numpy())


# ---- registered models ----------------------------------------------------------------

FAMILY = ("vae_bce", "vae_fixed_var", "vae_learned_var", "two_stage_vae", "vae_iaf",
          "vae_vamp", "info_vae")


def _tiny(model, **kw):
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  base = dict(model=model, dataset="synthetic", true_latent_dim=3, ambient_dim=12,
              num_examples=256, latent_dim=M, arch="mlp", width=16, depth=2,
              batch_size=32, learning_rate=2e-3, workdir="unused", seed=0)
  if model == "vae_iaf":
    base["iaf_width"] = 16
  if model == "vae_vamp":
    base["num_pseudo_inputs"] = 10
  base.update(kw)
  return TrainConfig.make(**base)


def _recipe_model(name, **kw):
  from rae_tf.models import build_model  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  model, hp = build_model(_tiny(name, **kw), SHAPE, False)
  model.build_all()
  return model, hp


def test_family_is_registered_and_in_the_catalog():
  from rae_tf import catalog  # pylint: disable=g-import-not-at-top
  from rae_tf.models import MODELS  # pylint: disable=g-import-not-at-top
  for name in FAMILY:
    assert name in MODELS.names() and name in catalog.MODELS
  assert MODELS.get("two_stage_vae").expost == "vae"
  assert MODELS.get("vae_bce").terms is MODELS.get("vae").terms


@pytest.mark.parametrize("name", FAMILY)
def test_family_model_config_round_trip(name):
  model, _ = _recipe_model(name)
  _same_config_and_outputs(model)


def test_family_parts_follow_the_recipes():
  model, hp = _recipe_model("vae_iaf", iaf_steps=3)
  assert isinstance(model.posterior, posteriors.IAFPosterior)
  assert len(model.posterior.steps) == 3 and model.posterior.width == 16
  assert isinstance(model.terms[0], regularizers.MonteCarloKL)
  model, hp = _recipe_model("vae_vamp")
  assert isinstance(model.prior, priors.VampPrior)
  assert model.prior.num_pseudo_inputs == 10 and not model.prior.clip  # Vectors.
  model, hp = _recipe_model("vae_learned_var")
  assert isinstance(model.likelihood, likelihoods.LearnedVarianceGaussianLikelihood)
  model, hp = _recipe_model("vae_fixed_var", decoder_variance=0.5)
  assert model.likelihood.variance == 0.5


def test_info_vae_weights_are_one_minus_alpha_and_alpha_plus_lambda_minus_one():
  model, hp = _recipe_model("info_vae")
  weights = dict(zip(model.term_names, [t.coefficient for t in model.terms]))
  assert weights == {"kl": 1.0, "mmd": 999.0}
  assert model.terms[1].kernel == "rbf"
  model, _ = _recipe_model("info_vae", info_alpha=0.5, info_lambda=10.0)
  assert [t.coefficient for t in model.terms] == [0.5, 9.5]
  with pytest.raises(ConfigError, match="info_alpha"):
    _recipe_model("info_vae", info_alpha=2.0)


def test_vamp_encoder_computes_the_same_function_in_training_and_serving():
  # The pseudo-inputs are encoded in inference mode; with batch norm the encoder could
  # shape the prior through weight scales that batch statistics hide from the data path.
  from rae_tf.models import build_model  # pylint: disable=g-import-not-at-top
  from rae_tf.networks.common import BatchNormalization  # pylint: disable=g-import-not-at-top
  x = tf.random.stateless_uniform([6, 28, 28, 1], seed=[3, 4])
  for name, has_bn in (("vae", True), ("vae_vamp", False)):
    model, _ = build_model(_tiny(name, arch="dcgan", width=4), (28, 28, 1), True)
    assert any(isinstance(layer, BatchNormalization)
               for layer in model.encoder.layers) == has_bn, name
    trained, served = model.encoder(x, training=True), model.encoder(x, training=False)
    assert np.allclose(trained, served, atol=1e-6) != has_bn, name


def test_vamp_prior_refused_with_the_closed_form_kl():
  with pytest.raises(ConfigError, match="vae_vamp"):
    _recipe_model("vae", prior="vamp")


@pytest.mark.parametrize("name", ["vae_iaf", "vae_vamp", "info_vae", "vae_learned_var"])
def test_family_export_samples_per_seed(tmp_path, name):
  from rae_tf import export  # pylint: disable=g-import-not-at-top
  model, _ = _recipe_model(name)
  path = export.export_saved_model(model, str(tmp_path), name, is_image=False)
  serve = tf.saved_model.load(path).signatures["serving_default"]
  seeds = tf.constant([3, 4, 3], tf.int64)
  out = serve(seed=seeds)
  x, z = out["x"].numpy(), out["latent"].numpy()
  assert x.shape == (3,) + SHAPE and z.shape == (3, M)
  assert np.all(np.isfinite(x)) and np.all(np.isfinite(z))
  np.testing.assert_array_equal(x, serve(seed=seeds)["x"].numpy())  # Same request.
  np.testing.assert_allclose(x[0], x[2], rtol=1e-5, atol=1e-6)  # Same seed.
  assert not np.allclose(x[0], x[1])
  np.testing.assert_allclose(z, model.latent_from_seeds(seeds).numpy(), rtol=1e-5,
                             atol=1e-6)
  encoded = tf.saved_model.load(path).signatures["encode"](x=_x(4))["latent"].numpy()
  np.testing.assert_allclose(encoded, model.encode(_x(4)).numpy(), rtol=1e-5, atol=1e-5)


_MIRROR_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from rae_tf import training
from rae_tf.config import TrainConfig
training.configure_cpu_devices(2)
weights = {}
extra = json.loads(sys.argv[3])
for strategy in ("default", "mirrored"):
  config = TrainConfig.make(model=sys.argv[1], dataset="synthetic", true_latent_dim=3,
                            ambient_dim=12, num_examples=96, latent_dim=4, arch="mlp",
                            width=16, depth=2, batch_size=32, epochs=1, strategy=strategy,
                            cpu_devices=2, seed=1, workdir=sys.argv[2] + "/" + strategy,
                            export_dir="", **extra)
  tf.keras.utils.set_random_seed(1)
  result = training.train(config, verbose=0)
  weights[strategy] = [w.numpy() for w in result.model.weights]
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights["default"], weights["mirrored"]))
print(json.dumps({"diff": diff, "n": len(weights["default"])}))
"""


@pytest.mark.slow  # Two trainings in a fresh process each: about a minute apiece.
@pytest.mark.parametrize("name,extra", [("vae_iaf", {"iaf_width": 16}),
                                        ("vae_vamp", {"num_pseudo_inputs": 8})])
def test_mirrored_matches_single_device(tmp_path, name, extra):
  """Posterior noise, IAF steps, the VampPrior's draws and log p(z) are replica-exact."""
  import json  # pylint: disable=g-import-not-at-top
  from conftest import run_python  # pylint: disable=g-import-not-at-top
  script = tmp_path / "mirror.py"
  script.write_text(_MIRROR_SCRIPT)
  proc = run_python([str(script), name, str(tmp_path), json.dumps(extra)])
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["diff"] < 1e-5, out


def test_two_decoder_gradient_readers_share_one_persistent_tape():
  """Two terms that differentiate the decoder at z (here two RAE-GP penalties) both read
  the forward pass's tape (persistent for them): each equals the one-term model's value, and
  a training step updates the weights."""
  def gp(name):
    return regularizers.DecoderGradientPenalty(0.5, name=name)

  one = _model(terms={"gp": gp("gp")}, gaussian_encoder=False)
  two = _model(terms={"gp": gp("gp"), "gp_again": gp("gp_again")}, gaussian_encoder=False)
  two.set_weights(one.get_weights())
  x, seed = _x(), tf.constant([1, 2], tf.int64)
  fwd = two.forward(x, seed, training=True)
  assert fwd.decoder_tape is not None
  losses = two.compute_losses(fwd)
  reference = float(one.compute_losses(one.forward(x, seed, training=True))["gp"])
  assert reference > 0.0
  np.testing.assert_allclose(float(losses["gp"]), reference, rtol=1e-5)
  np.testing.assert_allclose(float(losses["gp_again"]), reference, rtol=1e-5)
  two.compile(optimizer=keras.optimizers.Adam(1e-2))
  before = [w.copy() for w in two.decoder.get_weights()]
  logs = two.train_step(x)
  assert np.isfinite(float(logs["loss"]))
  assert any(not np.array_equal(a, b) for a, b in zip(before, two.decoder.get_weights()))
