"""Tests for rae_tf.optimizers.FusedAdam: Keras' Adam numbers, state and config, one kernel."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from rae_tf.optimizers import FusedAdam


def _train(optimizer, steps=6, sparse=False):
  """Variables after `steps` updates with fixed pseudo-random gradients."""
  rng = np.random.default_rng(0)
  shapes = [(3, 3, 4, 5), (7,), (2, 6)]
  variables = [keras.Variable(rng.standard_normal(s).astype(np.float32)) for s in shapes]
  grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]

  @tf.function
  def apply(g):
    if sparse:  # the last variable gets row-sparse gradients
      g = g[:-1] + [tf.IndexedSlices(g[-1][:1], tf.constant([1]), tf.constant([2, 6]))]
    optimizer.apply(g, variables)

  for g in grads:
    apply([tf.constant(x) for x in g])
  return [v.numpy() for v in variables]


@pytest.mark.parametrize("kwargs", [
    {}, {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
    {"learning_rate": keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)},
    {"amsgrad": True}, {"weight_decay": 0.1}])
def test_fused_adam_matches_keras_adam(kwargs):
  ours = _train(FusedAdam(**{"learning_rate": 0.05, **kwargs}))
  ref = _train(keras.optimizers.Adam(**{"learning_rate": 0.05, **kwargs}))
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # float rounding


def test_fused_adam_sparse_gradients_fall_back():
  for a, b in zip(_train(FusedAdam(0.05), sparse=True),
                  _train(keras.optimizers.Adam(0.05), sparse=True)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # float rounding


def test_fused_adam_runs_one_kernel_per_variable():
  """The dense float32 update is TF's ResourceApplyAdam (not Keras' element-wise ops)."""
  variable = keras.Variable(np.ones((4, 4), np.float32))
  optimizer = FusedAdam(0.1)
  optimizer.build([variable])
  graph = tf.function(lambda g: optimizer.apply([g], [variable])).get_concrete_function(
      tf.TensorSpec((4, 4), tf.float32)).graph
  ops = [op.type for op in graph.get_operations()]
  assert ops.count("ResourceApplyAdam") == 1
  assert "Sqrt" not in ops


def test_fused_adam_state_and_config_are_adams(tmp_path):
  """Same slot variables (a checkpoint written with keras' Adam restores) and config."""
  ref = keras.optimizers.Adam(0.05, beta_1=0.7)
  _train(ref)
  path = tf.train.Checkpoint(optimizer=ref).write(str(tmp_path / "adam"))
  ours = FusedAdam(0.05, beta_1=0.7)
  ours.build([keras.Variable(np.zeros(s, np.float32)) for s in [(3, 3, 4, 5), (7,), (2, 6)]])
  tf.train.Checkpoint(optimizer=ours).read(path).assert_consumed()
  assert int(ours.iterations) == 6
  for restored, source in zip(ours.variables, ref.variables):
    np.testing.assert_array_equal(restored, source)
  config = ours.get_config()
  again = FusedAdam.from_config(config)
  assert again.get_config() == config
  restored = keras.optimizers.deserialize(keras.optimizers.serialize(ours))
  assert isinstance(restored, FusedAdam)
