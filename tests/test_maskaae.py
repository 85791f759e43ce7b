"""MaskAAE (a trainable latent mask) and AAE: tiny synthetic runs, players, export, configs."""
import glob
import json
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from rae_tf import latent_transforms
from rae_tf.metrics.latent import MASK_THRESHOLD
from rae_tf import networks
from rae_tf import players as rae_players
from rae_tf import priors
from rae_tf import regularizers
from rae_tf import training
from rae_tf.config import TrainConfig
from rae_tf.models import RegularizedAutoEncoder, build_model

from conftest import run_python

# Data of true dimension 2 in 8 ambient dims; m = 6 latent dims, so the mask has to close some.
TINY = dict(dataset="synthetic", true_latent_dim=2, ambient_dim=8, num_examples=256,
            latent_dim=6, arch="mlp", width=32, depth=2, critic_width=32, critic_depth=2,
            batch_size=32, learning_rate=1e-3, log_every_steps=50, num_image_samples=4, seed=0)
EPOCHS = 30  # 8 steps an epoch: 240 steps.
# Tuned for 240 steps (the model's defaults are for 100k+ steps): 2 critic steps, faster
# critic, encoder and mask; a weak reconstruction pull on the mask (seen here: weight 125 =
# 1000 / D kept all 6 dims open, weights 1-5 closed at most the one dim that started lowest);
# c_poly held at its start 2/m for the whole run (doubling every 15 steps from step 0 froze
# the mask at 0/1 before the adversarial term had closed anything, as models.md measured).
MASK_FLAGS = dict(critic_steps=2, critic_learning_rate=1e-3,
                  encoder_adversary_learning_rate=1e-3, mask_learning_rate=0.02,
                  mask_reconstruction_weight=0.1, mask_poly_period=100000)


def _config(tmp_path, name="run", model="maskaae", **kw):
  return TrainConfig.make(**{**TINY, "model": model, "workdir": str(tmp_path / name),
                        "export_dir": str(tmp_path / "exports"), **kw})


def _train_x(config):
  x, _ = training.rae_data.get_data_source(training.data_config(config)).arrays("train")
  return tf.constant(x)


@pytest.fixture(scope="module")
def maskaae_run(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("maskaae")
  config = _config(tmp_path, epochs=EPOCHS, export_name="maskaae_tiny", **MASK_FLAGS)
  source = training.rae_data.get_data_source(training.data_config(config))
  # The same seed builds the same initial mask as the training run below.
  initial, hp = training.build_compiled_model(config, source.spec,
                                              tf.distribute.get_strategy())
  mask_before = initial.mask_values()
  result = training.train(config, verbose=0)
  return config, result, mask_before, hp


# ------------------------------------------------------------------------- the mask closes

def test_mask_closes_dimensions_the_data_does_not_have(maskaae_run):
  config, result, mask_before, _ = maskaae_run
  m = config.latent_dim
  start = int(np.sum(mask_before >= MASK_THRESHOLD))
  end = result.model.latent_transform.active_dims()
  mask_after = result.model.mask_values()
  # Seen here: start 6 (mu 0.65..0.99), end 4 (two entries < 0.06); seeds 1 and 2 gave 5, 4.
  assert end < start and end < m, (start, end, mask_before, mask_after)
  assert end >= config.true_latent_dim, mask_after  # Reconstruction keeps 2 dims open.
  assert result.history["active_dims"][-1] == pytest.approx(end)
  rec = result.history["reconstruction"]
  assert rec[-1] < 0.5 * rec[0], rec
  # The variance penalty makes the raw codes of closed dims (nearly) constant.
  raw = result.model.encode_distribution(_train_x(config))[0].numpy()
  closed = mask_after < MASK_THRESHOLD
  assert raw[:, closed].std(0).max() < 0.2 * raw[:, ~closed].std(0).min(), raw.std(0)


def test_every_player_steps_as_scheduled(maskaae_run):
  config, result, _, hp = maskaae_run
  model = result.model
  steps = EPOCHS * (config.num_examples // config.batch_size)
  assert [p.name for p in model.players] == [
      "autoencoder", "adversary_critic", "adversary_encoder", "adversary_mask"]
  assert int(model.optimizer.iterations.numpy()) == steps
  iters = {n: int(o.iterations.numpy()) for n, o in model.extra_optimizers.items()}
  assert iters == {"adversary_critic": config.weight("critic_steps") * steps,
                   "adversary_encoder": steps, "adversary_mask": steps}
  for opt in [model.optimizer] + list(model.extra_optimizers.values()):
    assert isinstance(opt, keras.optimizers.RMSprop), opt
    assert opt.rho == pytest.approx(0.9)
  # The default rate drop: every player's rate / 5 from epoch 24 (80 % of 30) on.
  assert hp["mask_rate_drop_epoch"] == 24
  rates = {n: float(o.learning_rate.numpy()) for n, o in model.extra_optimizers.items()}
  assert rates == pytest.approx({"adversary_critic": 2e-4, "adversary_encoder": 2e-4,
                                 "adversary_mask": 0.004})
  assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
  assert hp["mask_poly_period"] == 100000 and hp["optimizer"] == "rmsprop"
  # The auto-encoder's optimizer does not train the mask; the mask player trains only psi.
  psi = model.latent_transform.psi
  assert id(psi) not in {id(v) for v in model.autoencoder_variables}
  assert [id(v) for v in model.players[3].variables()] == [id(psi)]
  assert {"mask_poly", "adversary_mask", "mask_variance"} <= set(result.history)


def test_rate_drop_default_override_and_off(tmp_path):
  """--mask_rate_drop_epoch: 80 % of the epochs by default, explicit, 0 = none; to every
  player or (--mask_rate_drop_players=autoencoder_mask) the AE and the mask only; --lr_drops
  and --plateau_patience replace it (a short run: rates after its last epoch)."""
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  hp = zoo.resolve_hparams(_config(tmp_path, epochs=45), is_image=False, data_shape=(8,))
  assert hp["mask_rate_drop_epoch"] == 36 and zoo.rate_drops(hp) == ((36, 5.0),)
  hp = zoo.resolve_hparams(_config(tmp_path, epochs=45, mask_rate_drop_epoch=0),
                           is_image=False, data_shape=(8,))
  assert zoo.rate_drops(hp) == ()
  assert zoo.rate_drops(zoo.resolve_hparams(_config(tmp_path, model="aae"), False)) == ()

  def final_rates(name, **kw):
    config = _config(tmp_path, name, epochs=5, steps_per_epoch=1, export_dir="",
                     mask_learning_rate=0.02, critic_learning_rate=0.01, **kw)
    model = training.train(config, verbose=0).model
    return {"autoencoder": float(model.optimizer.learning_rate.numpy()),
            **{n: float(o.learning_rate.numpy()) for n, o in model.extra_optimizers.items()}}

  ae, critic, encoder = _config(tmp_path).learning_rate, 0.01, 1e-4  # The recipe's encoder rate.
  # Epoch 4 = round(0.8 x 5): every player's rate / 5.
  assert final_rates("default") == pytest.approx({
      "autoencoder": ae / 5, "adversary_critic": critic / 5, "adversary_encoder": encoder / 5,
      "adversary_mask": 0.02 / 5})
  # The authors' choice: the auto-encoder's and the mask's only.
  assert final_rates("authors", mask_rate_drop_players="autoencoder_mask") == pytest.approx({
      "autoencoder": ae / 5, "adversary_critic": critic, "adversary_encoder": encoder,
      "adversary_mask": 0.02 / 5})
  assert final_rates("off", mask_rate_drop_epoch=0)["adversary_mask"] == pytest.approx(0.02)
  # --lr_drops divides every player's, whatever --mask_rate_drop_players says.
  assert final_rates("lr_drops", lr_drops="1:2", mask_rate_drop_players="autoencoder_mask"
                     ) == pytest.approx({"autoencoder": ae / 2, "adversary_critic": critic / 2,
                                         "adversary_encoder": encoder / 2,
                                         "adversary_mask": 0.02 / 2})


def test_psi_stays_non_negative(maskaae_run):
  _, result, _, _ = maskaae_run
  assert float(result.model.latent_transform.psi.numpy().min()) >= 0.0
  # Keras 3 applies `variable.constraint` after the optimizer's update: a step that would
  # take psi below zero leaves exactly 0 in the variable (not only in mask()'s max(psi, 0)).
  layer = latent_transforms.MaskLayer(4, init_max=0.01, seed=3)
  opt = rae_players.make_optimizer("rmsprop", 1.0, name="mask")
  opt.build(layer.trainable_variables)
  tf.function(lambda: opt.apply_gradients([(tf.ones([4]), layer.psi)]))()
  np.testing.assert_array_equal(layer.psi.numpy(), np.zeros(4, np.float32))
  unconstrained = keras.Variable(np.full(4, 0.005, np.float32))
  opt2 = rae_players.make_optimizer("rmsprop", 1.0, name="plain")
  opt2.build([unconstrained])
  opt2.apply_gradients([(tf.ones([4]), unconstrained)])
  assert float(unconstrained.numpy().max()) < 0  # The same step without the constraint.


def test_tensorboard_shows_the_mask(maskaae_run):
  config, _, _, _ = maskaae_run
  tags = set()
  for path in glob.glob(os.path.join(config.workdir, "tensorboard", "**", "events.*"),
                        recursive=True):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  for tag in ("mask/active_dims", "mask/values", "mask/over_training", "epoch/active_dims",
              "epoch/mask_poly", "epoch/adversary_mask", "epoch/mask_variance",
              "epoch/adversary_encoder", "epoch/adversary_critic"):
    assert tag in tags, (tag, sorted(tags))


def test_mask_history_file_covers_every_epoch(maskaae_run):
  from rae_tf import callbacks as rae_callbacks  # pylint: disable=g-import-not-at-top
  config, result, _, _ = maskaae_run
  epochs, history = rae_callbacks.read_mask_history(
      os.path.join(config.workdir, rae_callbacks.MASK_HISTORY_FILE))
  assert epochs == list(range(1, config.epochs + 1))
  np.testing.assert_allclose(history[-1], result.model.mask_values(), rtol=1e-6)


# --------------------------------------------------------------------- masked codes, export

EXPORT_CHECK = r"""
import json, os, sys
import numpy as np
from tensorflow.python.tools import saved_model_cli as smc  # What `saved_model_cli run` runs.
path, out = sys.argv[1:3]

def run(sig, **feed):
  d = os.path.join(out, f"{sig}-{len(os.listdir(out))}")
  smc.run_saved_model_with_feed_dict(path, "serve", sig, feed, d, True)
  return {f[:-4]: np.load(os.path.join(d, f)) for f in os.listdir(d)}

a = run("serving_default", seed=np.array([5, 6, 7, 5], np.int64))
enc = run("encode", x=np.load(os.path.join(out, "..", "x.npy")))["latent"]
np.savez(os.path.join(out, "..", "result.npz"), latent=a["latent"], x=a["x"], enc=enc)
print(json.dumps({"modules": sorted(m for m in ("rae_tf", "tensorflow_probability")
                                    if m in sys.modules)}))
"""


def test_encode_and_exported_latent_are_masked(maskaae_run, tmp_path):
  config, result, _, _ = maskaae_run
  model = result.model
  mask = model.mask_values()
  assert np.sum(mask < 0.1) >= 1  # Else "masked" could not be told from "not masked".
  x = _train_x(config)[:16]
  raw = model.encode_distribution(x)[0].numpy()
  np.testing.assert_allclose(model.encode(x).numpy(), raw * mask, atol=1e-6)

  np.save(tmp_path / "x.npy", x.numpy())
  (tmp_path / "smc").mkdir()
  script = tmp_path / "check.py"
  script.write_text(EXPORT_CHECK)
  proc = run_python([str(script), result.export_path, str(tmp_path / "smc")])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert json.loads(proc.stdout.strip().splitlines()[-1])["modules"] == []
  got = np.load(tmp_path / "result.npz")
  seeds = tf.constant([5, 6, 7, 5], tf.int64)
  raw_prior = model.prior.sample_from_seeds(seeds).numpy()  # N(0, I) before the mask.
  np.testing.assert_allclose(got["latent"], mask * raw_prior, atol=1e-5)
  assert np.abs(got["latent"] - raw_prior).max() > 0.1  # It did change the draw.
  np.testing.assert_allclose(got["enc"], raw * mask, atol=1e-5)
  images, _ = model.sample_from_seeds(seeds)
  np.testing.assert_allclose(got["x"], images.numpy(), atol=1e-5)


def test_ex_post_gmm_is_not_masked_twice(maskaae_run):
  config, result, _, _ = maskaae_run
  model = result.model
  codes = model.encode(_train_x(config)).numpy().astype(np.float64)
  # A 2-component mixture on the (masked) codes, set directly (no slow EM on this CPU).
  halves = np.array_split(codes[np.argsort(codes[:, 0])], 2)
  gmm = priors.GaussianMixturePrior(config.latent_dim, 2, name="gmm_prior")
  gmm.set_parameters([0.5, 0.5], [h.mean(0) for h in halves],
                     [np.cov(h.T) + 1e-2 * np.eye(config.latent_dim) for h in halves])
  seeds = tf.range(8, dtype=tf.int64)
  prior = model.prior
  try:
    model.prior = gmm
    got = model.latent_from_seeds(seeds).numpy()
    batch = model.sample_prior(8, tf.constant([1, 2], tf.int64)).numpy()
  finally:
    model.prior = prior
  draws = gmm.sample_from_seeds(seeds).numpy()
  np.testing.assert_array_equal(got, draws)
  np.testing.assert_array_equal(batch, gmm.sample(8, tf.constant([1, 2], tf.int64)).numpy())
  # Masking them again would have changed them: the GMM's draws are not already masked
  # exactly (its components have some spread in closed dims), mu * draws != draws.
  assert np.abs(model.mask_values() * draws - draws).max() > 1e-4


# ---------------------------------------------------------------------- config round trips

def _round_trip(obj, call):
  """keras-hub style: config -> object -> the same config, and the same outputs."""
  config = obj.get_config()
  clone = obj.__class__.from_config(config)
  assert clone.get_config() == config
  call(clone)  # Builds any lazily created weights.
  assert len(obj.weights) == len(clone.weights)
  for a, b in zip(obj.weights, clone.weights):
    b.assign(a)
  np.testing.assert_allclose(np.asarray(call(obj)), np.asarray(call(clone)), atol=1e-6)
  return clone


def test_latent_transforms_round_trip():
  z = tf.constant(np.random.default_rng(0).normal(size=(3, 5)), tf.float32)
  mask = latent_transforms.MaskLayer(5, init_max=2.0, seed=7, name="mask")
  clone = _round_trip(mask, lambda t: t(z))
  assert clone.psi.constraint is not None
  np.testing.assert_allclose(mask(z).numpy(), z.numpy() * mask.mask_values(), atol=1e-7)
  _round_trip(latent_transforms.IdentityTransform(name="identity"), lambda t: t(z))


def _fake_forward(mask_layer, z_raw):
  model = types.SimpleNamespace(latent_transform=mask_layer)
  return regularizers.Forward(x=None, z=mask_layer(z_raw), z_mean=z_raw, z_log_var=None,
                              logits=None, prior_z=None, seed=tf.constant([0, 0], tf.int64),
                              model=model, z_raw=z_raw)


def test_mask_terms_round_trip():
  z = tf.constant(np.random.default_rng(1).normal(size=(8, 4)), tf.float32)
  layer = latent_transforms.MaskLayer(4, seed=2)
  term = regularizers.MaskedVariancePenalty(50.0, sharpness=5.0, name="mask_variance")
  clone = _round_trip(term, lambda t: t.compute(_fake_forward(layer, z)))
  assert clone.in_autoencoder_loss and clone.coefficient == 50.0
  critic = networks.build_critic(4, width=8, depth=1)
  adv = regularizers.MaskedLatentAdversary(
      critic, 0.5, critic_steps=3, learning_rate=2e-4, encoder_learning_rate=3e-4,
      mask_learning_rate=1e-3, reconstruction_weight=7.0, poly_start=0.25, poly_period=10,
      poly_cap=64.0, poly_delay=5, optimizer="adam", name="adversary")
  clone = _round_trip(adv, lambda t: t.critic(z))
  assert not clone.in_autoencoder_loss
  for step in (0, 14, 15, 200):
    assert float(clone.poly_weight(step)) == float(adv.poly_weight(step))
  assert [float(adv.poly_weight(s)) for s in (0, 14, 15, 25, 200)] == [0.25, 0.25, 0.5, 1.0,
                                                                       64.0]


def test_maskaae_model_round_trip(tmp_path):
  config = _config(tmp_path, latent_dim=4, width=16, critic_width=8, **MASK_FLAGS)
  model, _ = build_model(config, (8,), False, total_steps=100)
  model.build_all()
  cfg = model.get_config()
  clone = RegularizedAutoEncoder.from_config(cfg)
  clone.build_all()
  assert clone.get_config() == cfg
  assert isinstance(clone.latent_transform, latent_transforms.MaskLayer)
  assert clone.term_names == ["mask_variance", "adversary"]
  assert len(clone.weights) == len(model.weights)
  for a, b in zip(model.weights, clone.weights):
    assert a.shape == b.shape, (a.path, b.path)
    b.assign(a)
  x = tf.constant(np.random.default_rng(2).uniform(size=(5, 8)), tf.float32)
  seeds = tf.constant([1, 2, 3], tf.int64)
  for fn in (lambda m: m.encode(x), lambda m: m(x), lambda m: m.sample_from_seeds(seeds)[0],
             lambda m: m.latent_from_seeds(seeds)):
    np.testing.assert_allclose(fn(model).numpy(), fn(clone).numpy(), atol=1e-6)
  np.testing.assert_array_equal(model.mask_values(), clone.mask_values())


# ------------------------------------------------------------------------- AAE and WAE-GAN

def test_aae_trains_with_a_separate_encoder_phase(tmp_path):
  config = _config(tmp_path, "aae", model="aae", epochs=8, export_dir="")
  result = training.train(config, verbose=0)
  model = result.model
  assert [p.name for p in model.players] == ["autoencoder", "adversary_critic",
                                             "adversary_encoder"]
  steps = 8 * (config.num_examples // config.batch_size)
  assert {n: int(o.iterations.numpy()) for n, o in model.extra_optimizers.items()} == {
      "adversary_critic": steps, "adversary_encoder": steps}
  term = model.terms[0]
  assert not term.in_autoencoder_loss
  # "adversary" is logged, not part of the auto-encoder's loss: loss == reconstruction.
  losses = model.compute_losses(model.forward(_train_x(config)[:64],
                                              tf.constant([0, 0], tf.int64)))
  assert float(losses["adversary"]) > 0.01
  np.testing.assert_allclose(float(losses["loss"]), float(losses["reconstruction"]),
                             rtol=1e-6)
  loss = result.history["loss"]
  assert loss[-1] < 0.85 * loss[0], loss
  assert all(isinstance(o, keras.optimizers.Adam) for o in model.extra_optimizers.values())


def test_wae_gan_keeps_the_encoder_loss_in_the_autoencoder_loss(tmp_path):
  config = _config(tmp_path, model="wae_gan")
  model, _ = build_model(config, (8,), False)
  model.compile(optimizer=keras.optimizers.Adam(1e-3))
  assert [p.name for p in model.players] == ["autoencoder", "adversary_critic"]
  term = model.terms[0]
  assert term.in_autoencoder_loss and term.encoder_learning_rate is None
  losses = model.compute_losses(model.forward(_train_x(config)[:64],
                                              tf.constant([0, 0], tf.int64)))
  np.testing.assert_allclose(
      float(losses["loss"]),
      float(losses["reconstruction"]) + term.coefficient * float(losses["adversary"]),
      rtol=1e-6)
  assert float(losses["adversary"]) > 0.01
