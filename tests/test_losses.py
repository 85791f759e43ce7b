"""Known values of the objective's parts: likelihoods, KL, MMD, regularizer terms."""
import math

import numpy as np
import pytest
import tensorflow as tf

from rae_tf import divergences
from rae_tf import likelihoods
from rae_tf.errors import ConfigError


def test_kl_of_standard_normal_is_zero():
  mean = tf.zeros([5, 3])
  log_var = tf.zeros([5, 3])
  np.testing.assert_allclose(
      divergences.kl_diagonal_gaussian_to_standard_normal(mean, log_var), np.zeros(5))


def test_kl_matches_closed_form():
  mean = tf.constant([[1.0, -2.0]])
  var = np.array([0.5, 2.0])
  expected = 0.5 * np.sum(np.array([1.0, 4.0]) + var - 1.0 - np.log(var))
  got = divergences.kl_diagonal_gaussian_to_standard_normal(
      mean, tf.constant(np.log(var)[None], tf.float32))
  np.testing.assert_allclose(got, [expected], rtol=1e-6)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_same_distribution_small_shifted_positive(kernel):
  rng = np.random.default_rng(0)
  a = tf.constant(rng.normal(size=(400, 4)), tf.float32)
  b = tf.constant(rng.normal(size=(400, 4)), tf.float32)
  same = float(divergences.mmd(a, a, kernel))
  independent = float(divergences.mmd(a, b, kernel))
  shifted = float(divergences.mmd(a, b + 1.5, kernel))
  assert abs(same) < 0.02 * shifted
  assert abs(independent) < 0.05 * shifted
  assert shifted > 0.1


def test_mmd_grows_with_shift():
  rng = np.random.default_rng(1)
  a = tf.constant(rng.normal(size=(200, 8)), tf.float32)
  b = rng.normal(size=(200, 8)).astype(np.float32)
  values = [float(divergences.mmd(a, tf.constant(b + s))) for s in (0.0, 0.5, 1.0, 2.0)]
  assert values == sorted(values)


def test_unknown_kernel_is_config_error():
  with pytest.raises(ConfigError, match="--mmd_kernel"):
    divergences.mmd(tf.zeros([3, 2]), tf.zeros([3, 2]), kernel="cosine")


def test_bernoulli_cost_is_summed_cross_entropy():
  x = tf.constant([[[[1.0], [0.0]]]])  # One 1x2x1 image.
  logits = tf.constant([[[[0.0], [0.0]]]])
  cost = likelihoods.BernoulliLikelihood().cost(x, logits)
  np.testing.assert_allclose(cost, [2 * math.log(2.0)], rtol=1e-6)


def test_bernoulli_rejects_vectors():
  with pytest.raises(ConfigError, match="--likelihood"):
    likelihoods.BernoulliLikelihood(image_output=False)


def test_gaussian_cost_and_wae_scale():
  x = tf.constant([[1.0, 2.0]])
  logits = tf.constant([[0.0, 0.0]])
  cost = likelihoods.GaussianLikelihood(image_output=False, variance=10.0).cost(x, logits)
  np.testing.assert_allclose(cost, [0.05 * 5.0], rtol=1e-6)  # WAE: 0.05 * ||x - y||^2.


def test_mse_cost_is_pixel_mean():
  x = tf.constant([[1.0, 3.0]])
  cost = likelihoods.MeanSquaredErrorLikelihood(image_output=False).cost(x, tf.zeros([1, 2]))
  np.testing.assert_allclose(cost, [5.0])


def test_learned_variance_cost_and_gradient():
  lik = likelihoods.LearnedVarianceGaussianLikelihood(image_output=False)
  x = tf.constant([[1.0, 1.0]])
  with tf.GradientTape() as tape:
    cost = lik.cost(x, tf.zeros([1, 2]))
  # gamma = 1: sum sq / 2 + d * log(2 pi) / 2.
  np.testing.assert_allclose(cost, [1.0 + math.log(2 * math.pi)], rtol=1e-6)
  grad = tape.gradient(cost, lik.log_gamma)
  # d/dlog_gamma [S / (2 e^{2l}) + d l] at l=0 = -S + d = -2 + 2 = 0.
  np.testing.assert_allclose(grad, 0.0, atol=1e-6)


def test_image_likelihoods_apply_sigmoid_mean():
  lik = likelihoods.MeanSquaredErrorLikelihood(image_output=True)
  np.testing.assert_allclose(lik.mean(tf.constant([0.0])), [0.5])
  lik = likelihoods.GaussianLikelihood(image_output=False)
  np.testing.assert_allclose(lik.mean(tf.constant([3.0])), [3.0])


def test_decoder_weight_decay_is_sum_of_squared_decoder_kernels():
  """RAE-L2's term: sum of squares of the decoder's kernels (biases and the encoder left
  out), with gradient 2 * kernel."""
  import types
  import keras
  from rae_tf import regularizers
  keras.utils.set_random_seed(2)
  decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.Dense(2, bias_initializer="ones")])
  fwd = types.SimpleNamespace(model=types.SimpleNamespace(decoder=decoder))
  term = regularizers.DecoderWeightDecay(1e-3, name="decoder_l2")
  kernels = [v for v in decoder.trainable_variables if "kernel" in v.path]
  assert len(kernels) == 2
  with tf.GradientTape() as tape:
    value = term.compute(fwd)
  grads = tape.gradient(value, kernels)
  expected = sum(float(np.sum(np.square(k.numpy()))) for k in kernels)
  np.testing.assert_allclose(float(value), expected, rtol=1e-6)
  for k, g in zip(kernels, grads):
    np.testing.assert_allclose(g, 2.0 * k.numpy(), rtol=1e-6)
