"""FactorVAE, VAE-IOP, InjFlow and the +GMM recipes: their terms, critics, players, exports."""
import os

import numpy as np
import pytest
import tensorflow as tf
import keras

from rae_tf import critic_terms
from rae_tf import jacobian
from rae_tf import players as rae_players
from rae_tf import regularizers
from rae_tf.errors import ConfigError


def _forward(z, seed=(3, 5), **kw):
  """A Forward carrying codes z (what the critic players read)."""
  z = tf.constant(z, tf.float32)
  return regularizers.Forward(x=z, z=z, z_mean=z, z_log_var=kw.get("z_log_var"), logits=z,
                              prior_z=kw.get("prior_z", tf.zeros_like(z)),
                              seed=tf.constant(seed, tf.int64), model=kw.get("model"))


def _correlated_codes(n, seed=0):
  """[n, 2] codes with corr(z_1, z_2) ~ 0.95: a large total correlation."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, 1))
  return np.concatenate([a, 0.95 * a + 0.3 * rng.normal(size=(n, 1))], 1).astype(np.float32)


def _round_trip(layer, call):
  """get_config -> from_config gives the same config and the same outputs."""
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config
  out = call(layer)
  clone_out = call(clone)  # Builds the clone's networks, then copy the weights over.
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(call(clone), out, rtol=1e-6, atol=1e-6)
  del clone_out
  return clone


# ---- FactorVAE's total correlation -----------------------------------------------------
def test_permute_dims_permutes_each_column_independently():
  z = tf.constant(np.arange(40, dtype=np.float32).reshape(10, 4))
  seed = tf.constant([1, 2], tf.int64)
  out = critic_terms.permute_dims(z, seed).numpy()
  for j in range(4):
    assert sorted(out[:, j]) == sorted(z.numpy()[:, j])
  assert not np.array_equal(out[:, 0] // 4, out[:, 1] // 4)  # Rows broken apart.
  np.testing.assert_array_equal(out, critic_terms.permute_dims(z, seed))
  assert not np.array_equal(out, critic_terms.permute_dims(z, seed + [0, 1]))


def test_tc_critic_learns_to_separate_codes_from_permuted_codes():
  keras.utils.set_random_seed(0)
  critic = critic_terms.build_ratio_critic(2, width=32, depth=2, name="d")
  term = critic_terms.TotalCorrelation(critic, 10.0, learning_rate=3e-3, name="tc")
  term.build_networks(2)
  player, = term.players(model=None)
  assert player.name == "tc_critic"
  player.optimizer.build(player.variables())

  @tf.function
  def step(z, seed):
    fwd = regularizers.Forward(x=z, z=z, z_mean=z, z_log_var=None, logits=z, prior_z=z,
                               seed=seed, model=None)
    return rae_players.play(player, rae_players.PlayState(z, seed, None, fwd), 1)

  for i in range(300):
    step(tf.constant(_correlated_codes(256, seed=i)), tf.constant([0, i], tf.int64))
  assert int(player.optimizer.iterations) == 300
  z = _correlated_codes(2000, seed=10_000)
  shuffled = critic_terms.permute_dims(tf.constant(z), tf.constant([9, 9], tf.int64))
  accuracy = 0.5 * (np.mean(term.log_ratio(z).numpy() > 0)
                    + np.mean(term.log_ratio(shuffled).numpy() < 0))
  assert accuracy > 0.7, accuracy
  # E_q[T(z)] estimates TC = -1/2 log(1 - rho^2) ~ 1.1 nats for rho ~ 0.95.
  assert 0.5 < float(term.compute(_forward(z))) < 2.0


def test_tc_uses_first_half_against_permuted_second_half():
  term = critic_terms.TotalCorrelation(critic_terms.build_ratio_critic(3, width=4, depth=1))
  z = np.arange(24, dtype=np.float32).reshape(8, 3)
  fwd = _forward(z)
  codes, reference = term._critic_samples(rae_players.PlayState(z, fwd.seed, None, fwd), 0)
  np.testing.assert_array_equal(codes, z[:4])
  for j in range(3):
    assert sorted(reference.numpy()[:, j]) == sorted(z[4:, j])


def test_density_ratio_terms_round_trip():
  z = tf.constant(_correlated_codes(6))
  for cls, kw in ((critic_terms.TotalCorrelation, dict(critic_steps=2, learning_rate=2e-4,
                                                       adam_beta_1=0.4, adam_beta_2=0.8)),
                  (critic_terms.ImplicitOptimalPriorKL, dict(critic_steps=3,
                                                             learning_rate=1e-3))):
    critic = critic_terms.build_ratio_critic(2, width=8, depth=2, activation="tanh")
    term = cls(critic, 35.0, name="t", **kw)
    term.build_networks(2)
    clone = _round_trip(term, lambda t: t.log_ratio(z))
    assert (clone.coefficient, clone.critic_steps, clone.learning_rate) == (
        35.0, kw["critic_steps"], kw["learning_rate"])
    assert clone.in_autoencoder_loss and clone.has_players
  rmsprop = critic_terms.TotalCorrelation(critic, optimizer="rmsprop")  # --optimizer.
  assert isinstance(rmsprop.players(None)[0].optimizer, keras.optimizers.RMSprop)
  assert type(rmsprop).from_config(rmsprop.get_config()).optimizer == "rmsprop"


def test_iop_kl_is_gaussian_kl_minus_log_ratio():
  critic = critic_terms.build_ratio_critic(2, width=8, depth=1)
  term = critic_terms.ImplicitOptimalPriorKL(critic, 1.0)
  mean = tf.constant([[0.5, -1.0], [0.0, 2.0]])
  log_var = tf.constant([[0.1, -0.3], [0.0, 0.2]])
  fwd = _forward(mean, z_log_var=log_var)
  kl = 0.5 * np.sum(mean ** 2 + np.exp(log_var) - 1.0 - log_var, axis=1)
  expected = np.mean(kl - term.log_ratio(mean).numpy())
  assert float(term.compute(fwd)) == pytest.approx(expected, rel=1e-5)
  with pytest.raises(ConfigError, match="Gaussian encoder"):
    term.compute(_forward(mean))


class _Owner:
  """Stands in for a model: DensityRatioPrior.attach_model reads only `terms`."""

  def __init__(self, terms):
    self.terms = terms


def test_density_ratio_prior_resamples_by_the_critic_per_seed():
  """VAE-IOP's sampler keeps, per seed, one of K N(0, I) candidates with probability
  softmax(T): a critic T(z) = 8 z_1 turns N(0, I) into draws with z_1 > 0; the same seed
  gives the same code in any batch."""
  from rae_tf import priors  # pylint: disable=g-import-not-at-top
  critic = critic_terms.build_ratio_critic(2, width=4, depth=0, name="ratio")
  critic.set_weights([np.array([[8.0], [0.0]], np.float32), np.zeros([1], np.float32)])
  term = critic_terms.ImplicitOptimalPriorKL(critic, 1.0)
  prior = priors.DensityRatioPrior(2, num_candidates=32)
  with pytest.raises(ConfigError, match="not attached"):
    prior.sample_from_seeds(tf.constant([1], tf.int64))
  with pytest.raises(ConfigError, match="--model=vae_iop"):
    prior.attach_model(_Owner([regularizers.KLDivergence(1.0)]))
  prior.attach_model(_Owner([term]))
  seeds = tf.range(400, dtype=tf.int64)
  z = prior.sample_from_seeds(seeds).numpy()
  assert np.mean(z[:, 0] > 0) > 0.97 and abs(np.mean(z[:, 1])) < 0.15  # z_2 untouched.
  reference = prior.sample(400, tf.constant([0, 0], tf.int64)).numpy()  # Training: N(0, I).
  assert 0.4 < np.mean(reference[:, 0] > 0) < 0.6
  np.testing.assert_array_equal(prior.sample_from_seeds(tf.constant([7, 3], tf.int64)),
                                z[[7, 3]])
  clone = priors.DensityRatioPrior.from_config(prior.get_config())
  assert clone.get_config() == prior.get_config() and clone.num_candidates == 32


# ---- InjFlow's decoder-Jacobian term ---------------------------------------------------
def _linear_decoder(m=3, d=5, seed=0):
  w = np.random.default_rng(seed).normal(size=(m, d)).astype(np.float32)
  return (lambda z: tf.matmul(z, w)), float(np.sum(w ** 2))


def test_jacobian_frobenius_exact_for_a_linear_decoder():
  decode, exact = _linear_decoder()
  z = tf.random.stateless_normal([4, 3], seed=[1, 1])
  np.testing.assert_allclose(jacobian.jacobian_frobenius_sq(decode, z, 0), [exact] * 4,
                             rtol=1e-5)


def test_jacobian_frobenius_random_projections_are_unbiased():
  decode, exact = _linear_decoder()
  z = tf.zeros([2000, 3])
  est = jacobian.jacobian_frobenius_sq(decode, z, 4, seed=tf.constant([3, 4], tf.int64))
  assert float(tf.reduce_mean(est)) == pytest.approx(exact, rel=0.05)
  assert float(tf.math.reduce_std(est)) > 0  # Stochastic per example.


def test_jacobian_term_gradient_reaches_decoder_weights():
  keras.utils.set_random_seed(0)
  decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(5)])
  term = jacobian.DecoderJacobianPenalty(1.0, form="frobenius", num_projections=0)
  z = tf.random.stateless_normal([6, 3], seed=[2, 2])
  with tf.GradientTape() as tape:
    value = tf.reduce_mean(term.value(decoder, z, None))
  kernels = [v for v in decoder.trainable_variables if "kernel" in v.path]
  grads = tape.gradient(value, kernels)  # (The output bias does not move J.)
  assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
  # Shrinking the decoder's gain lowers ||J||_F^2.
  for v in decoder.trainable_variables:
    v.assign(0.5 * v)
  assert float(tf.reduce_mean(term.value(decoder, z, None))) < float(value)


def test_jacobian_log_form_and_round_trip():
  decode, exact = _linear_decoder(m=3)
  z = tf.zeros([2, 3])
  term = jacobian.DecoderJacobianPenalty(0.5, form="log", num_projections=0, name="jac")
  np.testing.assert_allclose(term.value(decode, z, None), [1.5 * np.log(exact / 3)] * 2,
                             rtol=1e-5)
  clone = jacobian.DecoderJacobianPenalty.from_config(term.get_config())
  assert clone.get_config() == term.get_config()
  np.testing.assert_allclose(clone.value(decode, z, None), term.value(decode, z, None))
  with pytest.raises(ConfigError, match="form"):
    jacobian.DecoderJacobianPenalty(form="det")


# ---- The registered models -------------------------------------------------------------
NEW_MODELS = ("factor_vae", "vae_iop", "injflow", "injflow_gmm", "ae_gmm", "rae_l2_gmm",
              "rae_gp_gmm", "rae_sn_gmm")


def _tiny(model, **kw):
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  base = dict(model=model, dataset="synthetic", true_latent_dim=3, ambient_dim=12,
              num_examples=64, latent_dim=4, arch="mlp", width=16, depth=1,
              batch_size=16, learning_rate=2e-3, critic_width=16, critic_depth=2,
              workdir="unused", seed=0, epochs=1)
  base.update(kw)
  return TrainConfig.make(**base)


def _compiled(config):
  from rae_tf import data as rae_data  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  source = rae_data.get_data_source(training.data_config(config))
  model, hp = training.build_compiled_model(config, source.spec, tf.distribute.get_strategy())
  x, _ = source.arrays("train", limit=config.batch_size)
  return model, hp, tf.constant(x)


def test_new_models_are_registered_and_in_the_catalog():
  from rae_tf import catalog  # pylint: disable=g-import-not-at-top
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  for name in NEW_MODELS:
    assert name in zoo.MODELS.names() and name in catalog.MODELS
  for base in ("ae", "rae_l2", "rae_gp", "rae_sn", "injflow"):
    recipe, gmm = zoo.MODELS.get(base), zoo.MODELS.get(f"{base}_gmm")
    assert gmm.expost == "gmm" and recipe.expost is None
    assert gmm.terms is recipe.terms and gmm.defaults == recipe.defaults  # Reused parts.
  iop = zoo.MODELS.get("vae_iop")
  assert iop.expost == "gmm" and iop.prior == "density_ratio"  # q(z) through T, and a GMM.
  with pytest.raises(ConfigError, match="--model=vae_iop"):
    zoo.build_model(_tiny("ae", prior="density_ratio"), (12,), False)


@pytest.mark.parametrize("name,players,steps", [
    ("factor_vae", ["autoencoder", "tc_critic"], 1),
    ("vae_iop", ["autoencoder", "iop_kl_critic"], 10),
])
def test_critic_player_steps_as_scheduled(name, players, steps):
  model, hp, x = _compiled(_tiny(name))
  assert [p.name for p in model.players] == players
  assert hp["critic_steps"] == steps
  step = tf.function(model.train_step)
  for _ in range(3):
    logs = step(x)
  assert int(model.optimizer.iterations) == 3
  assert {n: int(o.iterations) for n, o in model.extra_optimizers.items()} == {
      players[1]: 3 * steps}
  critic = model.terms[-1].critic
  critic_ids = {id(v) for v in critic.trainable_variables}
  assert not critic_ids & {id(v) for v in model.autoencoder_variables}
  assert np.isfinite(float(logs["loss"]))


def test_model_hparams_defaults():
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  hp = zoo.resolve_hparams(_tiny("factor_vae"), is_image=True)
  assert (hp["tc_weight"], hp["beta"], hp["critic_learning_rate"], hp["adversary_beta_1"],
          hp["adversary_beta_2"]) == (35.0, 1.0, 1e-4, 0.5, 0.9)
  hp = zoo.resolve_hparams(_tiny("injflow", jacobian_form="frobenius"), is_image=True)
  assert hp["jacobian_form"] == "frobenius" and hp["jacobian_projections"] == 1
  with pytest.raises(ConfigError, match="tc_weight"):
    zoo.resolve_hparams(_tiny("vae", tc_weight=3.0), is_image=True)


@pytest.mark.parametrize("name", ["factor_vae", "vae_iop", "injflow"])
def test_export_samples_per_seed(tmp_path, name):
  from rae_tf import export  # pylint: disable=g-import-not-at-top
  extra = {"critic_steps": 1} if name != "injflow" else {}  # A quick export check.
  model, _, x = _compiled(_tiny(name, **extra))
  step = tf.function(model.train_step)
  for _ in range(2):
    step(x)
  path = export.export_saved_model(model, str(tmp_path), name, is_image=False)
  loaded = tf.saved_model.load(path)
  serve = loaded.signatures["serving_default"]
  out = serve(seed=tf.constant([3, 4, 3], tf.int64))
  assert out["x"].shape == (3, 12) and out["latent"].shape == (3, 4)
  assert np.all(np.isfinite(out["x"].numpy()))
  np.testing.assert_array_equal(out["x"][0], out["x"][2])  # Same seed, same sample.
  assert not np.allclose(out["x"][0], out["x"][1])
  again = serve(seed=tf.constant([3], tf.int64))["x"]
  np.testing.assert_allclose(again[0], out["x"][0], atol=1e-5)


def test_model_config_round_trip_with_new_terms():
  from rae_tf.models import RegularizedAutoEncoder  # pylint: disable=g-import-not-at-top
  for name in ("factor_vae", "vae_iop", "injflow"):
    model, _, x = _compiled(_tiny(name))
    config = model.get_config()
    clone = RegularizedAutoEncoder.from_config(config)
    clone.build_all()
    assert clone.term_names == model.term_names
    assert [t.get_config() for t in clone.terms] == [t.get_config() for t in model.terms]
    clone.set_weights(model.get_weights())
    seed = tf.constant([1, 2], tf.int64)
    np.testing.assert_allclose(clone.compute_losses(clone.forward(x, seed))["loss"],
                               model.compute_losses(model.forward(x, seed))["loss"],
                               rtol=1e-5)


def test_gmm_recipe_trains_then_exports_the_mixture(tmp_path):
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  config = _tiny("rae_l2_gmm", workdir=str(tmp_path / "run"),
                 export_dir=str(tmp_path / "exp"))
  result = training.train(config, verbose=0)
  assert os.path.exists(os.path.join(result.export_path, "saved_model.pb"))
  versions = tmp_path / "exp" / "rae_l2_gmm_gmm"
  assert (versions / "1" / "saved_model.pb").exists()
  serve = tf.saved_model.load(str(versions / "1")).signatures["serving_default"]
  out = serve(seed=tf.constant([5, 6, 5], tf.int64))
  assert out["x"].shape == (3, 12) and np.all(np.isfinite(out["x"].numpy()))
  np.testing.assert_array_equal(out["latent"][0], out["latent"][2])


MIRROR_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from rae_tf import training
from rae_tf.config import TrainConfig
training.configure_cpu_devices(2)
weights, losses = {}, {}
for strategy in ("default", "mirrored"):
  config = TrainConfig.make(model=sys.argv[1], dataset="synthetic", true_latent_dim=3,
                            ambient_dim=12, num_examples=96, latent_dim=4, arch="mlp",
                            width=16, depth=2, batch_size=32, epochs=1, critic_width=16,
                            critic_depth=2, strategy=strategy, cpu_devices=2, seed=1,
                            workdir=sys.argv[2] + "/" + strategy, export_dir="",
                            **json.loads(sys.argv[3]))
  tf.keras.utils.set_random_seed(1)
  result = training.train(config, verbose=0)
  weights[strategy] = [w.numpy() for w in result.model.weights]
  losses[strategy] = float(result.history["loss"][-1])
  iters = {n: int(o.iterations.numpy()) for n, o in result.model.extra_optimizers.items()}
  iters["main"] = int(result.model.optimizer.iterations.numpy())
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights["default"], weights["mirrored"]))
print(json.dumps({"diff": diff, "iters": iters, "losses": losses}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("model,weights,iters,exact", [
    # Replica-sliced projections: the Jacobian estimate is the single device's.
    ("injflow", {}, {"main": 3}, True),
    # Codes vs replica-sliced N(0, I) draws: the critic's mean loss is the global one.
    ("vae_iop", {"critic_steps": 2}, {"main": 3, "iop_kl_critic": 6}, True),
    # Each replica permutes its own half-batches: equal in expectation, not bit for bit.
    ("factor_vae", {}, {"main": 3, "tc_critic": 3}, False),
])
def test_mirrored_training(tmp_path, model, weights, iters, exact):
  import json  # pylint: disable=g-import-not-at-top
  from conftest import run_python  # pylint: disable=g-import-not-at-top
  script = tmp_path / "mirror.py"
  script.write_text(MIRROR_SCRIPT)
  proc = run_python([str(script), model, str(tmp_path), json.dumps(weights)])
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["iters"] == iters
  assert all(np.isfinite(v) for v in out["losses"].values())
  if exact:
    assert out["diff"] < 1e-5, out
