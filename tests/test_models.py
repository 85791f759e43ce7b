"""Every registered model trains: its loss decreases over a few steps on synthetic data."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import keras

from rae_tf import data as rae_data
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError
from rae_tf.models import MODELS, RegularizedAutoEncoder, build_model, resolve_hparams
from rae_tf.models import zoo


def _tiny(model, **kw):
  base = dict(model=model, dataset="synthetic", true_latent_dim=3, ambient_dim=12,
              num_examples=256, latent_dim=4, arch="mlp", width=32, depth=2,
              batch_size=32, learning_rate=2e-3, critic_width=16, critic_depth=2,
              workdir="unused", seed=0)
  base.update(kw)
  return TrainConfig.make(**base)


def _fixed_batch(config):
  source = rae_data.get_data_source(training.data_config(config))
  x, _ = source.arrays("train", limit=config.batch_size)
  return tf.constant(x)


def _distinct_recipes():
  """Registered names minus aliases (vae_bce) and +ex-post variants (rae_l2_gmm): their
  training step is their twin's, trained already."""
  return [name for name in MODELS.names() if zoo.training_twin(name) == name]


@pytest.mark.parametrize("name", _distinct_recipes())
def test_registered_model_loss_decreases(name):
  keras.utils.set_random_seed(0)  # Initial weights independent of the tests run before.
  config = _tiny(name)
  x = _fixed_batch(config)
  model, _ = training.build_compiled_model(
      config, rae_data.get_data_source(training.data_config(config)).spec,
      tf.distribute.get_strategy())
  step = tf.function(model.train_step)
  # The objective itself, except for adversarial models whose critic term may rise.
  key = "reconstruction" if model.adversarial_terms else "loss"
  first = [float(model.compute_losses(model.forward(x, tf.constant([0, 0], tf.int64)))[key])]
  for _ in range(120):
    logs = step(x)
  model.reset_metrics()
  last = float(model.compute_losses(model.forward(x, tf.constant([0, 0], tf.int64)))[key])
  assert np.isfinite(last)
  assert last < 0.85 * first[0], (name, key, first[0], last)
  assert set(logs) >= {"loss", "reconstruction"}


def test_image_models_on_dcgan():
  model, x, hp = _tiny_image_model("vae")
  assert hp["likelihood"] == "bernoulli"
  logs = model.train_step(x)
  assert np.isfinite(float(logs["loss"]))
  images, z = model.sample_from_seeds(tf.constant([1, 2], tf.int64))
  assert images.shape == (2, 28, 28, 1) and z.shape == (2, 4)
  assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0


def test_model_hparams_defaults_and_overrides():
  assert resolve_hparams(_tiny("wae_mmd"), is_image=True)["reg_weight"] == 10.0
  assert resolve_hparams(_tiny("wae_mmd", reg_weight=3.0), is_image=True)["reg_weight"] == 3.0
  # Vectors have no Bernoulli likelihood: the VAE falls back to a Gaussian decoder.
  assert resolve_hparams(_tiny("vae"), is_image=False)["likelihood"] == "gaussian"
  with pytest.raises(ConfigError, match="--beta"):
    resolve_hparams(_tiny("vae", beta=-1.0), is_image=False)


def test_unknown_model_lists_choices():
  with pytest.raises(ConfigError, match="rae_l2"):
    build_model(_tiny("nope"), (12,), False)


def test_spectral_norm_model_wraps_layers():
  model, _ = build_model(_tiny("rae_sn"), (12,), False)
  kinds = {type(l).__name__ for l in model.decoder.layers}
  assert "SpectralNormalization" in kinds


def test_model_config_round_trip():
  model, _ = build_model(_tiny("wae_gan"), (12,), False)
  model.build_all()
  clone = RegularizedAutoEncoder.from_config(model.get_config())
  clone.build_all()
  assert clone.latent_dim == model.latent_dim
  assert clone.term_names == ["adversary"]
  assert len(clone.weights) == len(model.weights)


@pytest.mark.parametrize("name", list(MODELS.names()))
def test_every_recipe_round_trips_config_and_outputs(name):
  """keras-hub style: get_config -> from_config -> the same config and, with the same
  weights, the same reconstructions and the same prior samples per seed."""
  config = _tiny(name)
  model, _ = build_model(config, (12,), False, total_steps=100)
  model.build_all()
  clone = RegularizedAutoEncoder.from_config(model.get_config())
  clone.build_all()
  ser = keras.saving.serialize_keras_object
  assert ser(clone.get_config()) == ser(model.get_config()), name
  assert [w.shape for w in clone.weights] == [w.shape for w in model.weights], name
  clone.set_weights(model.get_weights())
  x = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
  np.testing.assert_allclose(clone.reconstruct(x).numpy(), model.reconstruct(x).numpy(),
                             rtol=1e-5, atol=1e-6, err_msg=name)
  seeds = tf.constant([1, 2, 3], tf.int64)
  np.testing.assert_allclose(clone.sample_from_seeds(seeds)[0].numpy(),
                             model.sample_from_seeds(seeds)[0].numpy(),
                             rtol=1e-5, atol=1e-6, err_msg=name)


def test_maskaae_conv_decoder_has_no_batch_norm():
  """MaskAAE's decoder must see the mask's scale (see zoo's maskaae entry); others keep BN."""
  def has_bn(name):
    config = _tiny(name, dataset="synthetic_image", arch="dcgan", width=4)
    model, _ = build_model(config, (28, 28, 1), True, total_steps=100)
    return any(isinstance(l, keras.layers.BatchNormalization) for l in model.decoder.layers)
  assert not has_bn("maskaae")
  assert has_bn("aae")


def test_stochastic_encoder_noise_depends_on_step_not_call():
  config = _tiny("vae")
  model, _ = build_model(config, (12,), False)
  model.build_all()
  x = tf.zeros([4, 12])
  seed = tf.constant([5, 7], tf.int64)
  a = model.forward(x, seed).z
  b = model.forward(x, seed).z
  c = model.forward(x, seed + [0, 1]).z
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_vae_with_learned_decoder_variance_learns_gamma():
  keras.utils.set_random_seed(0)
  config = _tiny("vae", likelihood="gaussian_learned")
  x = _fixed_batch(config)
  model, hp = training.build_compiled_model(
      config, rae_data.get_data_source(training.data_config(config)).spec,
      tf.distribute.get_strategy())
  assert hp["likelihood"] == "gaussian_learned"
  assert any("log_gamma" in v.path for v in model.autoencoder_variables)
  step = tf.function(model.train_step)
  for _ in range(100):
    step(x)
  # Reconstructions improve, so the learned decoder noise level gamma shrinks below 1.
  assert float(model.likelihood.log_gamma.numpy()) < -0.05


def test_closed_form_kl_refuses_another_prior():
  with pytest.raises(ConfigError, match="--prior=flow: --model=vae's kl term is the "
                                        "closed-form KL"):
    build_model(_tiny("vae", prior="flow"), (12,), False)
  build_model(_tiny("vae_vamp", prior="standard_normal"), (12,), False)  # Monte-Carlo KL.


def _tiny_image_model(name):
  """(model, 8 training images, resolved hparams): a width-4 dcgan model on synthetic images."""
  keras.utils.set_random_seed(0)
  config = _tiny(name, dataset="synthetic_image", arch="dcgan", width=4, batch_size=8)
  source = rae_data.get_data_source(training.data_config(config))
  model, hp = training.build_compiled_model(config, source.spec, tf.distribute.get_strategy())
  x, _ = source.arrays("train", limit=8)
  return model, tf.constant(x), hp


@pytest.mark.parametrize("name,term_name,recorder", [
    ("rae_gp", "decoder_gp", "decoder_tape"),
    ("injflow", "jacobian", "decoder_accumulator")])
def test_decoder_derivative_terms_read_the_forward_pass(name, term_name, recorder):
  """RAE-GP's dD/dz and InjFlow's J v come from the forward pass's own decoder pass (a
  tape / a forward accumulator recorded it): the same value and parameter gradients as a
  separate second pass, and a training step runs the decoder once."""
  model, x, _ = _tiny_image_model(name)
  term = model.terms[model.term_names.index(term_name)]
  seed = tf.constant([1, 2], tf.int64)

  def term_value(shared):
    with tf.GradientTape() as tape:
      fwd = model.forward(x, seed, training=True)
      assert getattr(fwd, recorder) is not None
      if not shared:
        fwd = dataclasses.replace(fwd, **{recorder: None})
      value = term.compute(fwd)
    return value, tape.gradient(value, model.decoder.trainable_variables
                                + model.encoder.trainable_variables)

  shared, separate = term_value(True), term_value(False)
  assert float(shared[0]) != 0.0
  np.testing.assert_allclose(float(shared[0]), float(separate[0]), rtol=1e-5)
  assert sum(g is not None for g in shared[1]) == sum(g is not None for g in separate[1]) > 0
  for a, b in zip(shared[1], separate[1]):
    if a is not None:
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)

  calls = []
  decoder_call = model.decoder.call

  def counting_call(*args, **kwargs):
    calls.append(1)
    return decoder_call(*args, **kwargs)

  model.decoder.call = counting_call
  model.train_step(x)
  assert len(calls) == 1


@pytest.mark.parametrize("name", ["rae_gp", "injflow"])
def test_evaluation_leaves_batch_norm_statistics_alone(name):
  """A test step's terms run their decoder passes in inference mode, like the forward
  pass: batch norm's moving statistics do not move (they did under training=True)."""
  model, x, _ = _tiny_image_model(name)
  model.train_step(x)
  stats = [v for v in model.decoder.non_trainable_variables if "moving" in v.path]
  assert stats
  before = [v.numpy().copy() for v in stats]
  model.test_step(x)
  for v, b in zip(stats, before):
    np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)
  model.train_step(x)
  assert any(not np.array_equal(v.numpy(), b) for v, b in zip(stats, before))
