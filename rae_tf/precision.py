"""Mixed precision (`--mixed_precision=none|bfloat16|float16`): one place for the policy.

What a mixed-precision run does:

* Every network of the model (encoder, decoder, critics, the learned prior's generator, a
  flow prior's coupling nets, the IAF posterior's MADEs, ...) gets Keras' dtype policy
  `mixed_bfloat16` / `mixed_float16`: it computes in the low precision and keeps float32
  variables, so checkpoints hold float32 weights like any run.
* The probabilistic glue computes in float32: network outputs are cast with `to_float32`
  before the posterior, the likelihood, the priors' densities, the latent transform and
  every loss term, so losses, metrics and the decoder's logits are float32.
* float16 needs dynamic loss scaling: `wrap_optimizer` wraps every player's optimizer in a
  `LossScaleOptimizer` (`rae_tf.players.play` scales each loss with
  `optimizer.scale_loss`; `apply_gradients` unscales). bfloat16 has float32's exponent
  range and needs none.

`policy_scope` sets Keras' (thread-local) global policy while a model is constructed and
restores the previous one on exit: Keras stores the policy in each layer when the layer is
constructed, so every network built inside the scope keeps its mixed policy afterwards,
and nothing leaks into later runs or tests. (A per-layer `dtype=` would have to be threaded
through every constructor of every part; the scope reaches each of them, including the
networks parts create lazily when built.) Parts that must stay float32 say so with an
explicit `dtype="float32"`.

This module imports only Keras, TensorFlow and the light rae_tf.config; the model's parts
import it.
"""
import contextlib

import keras
import tensorflow as tf

from rae_tf.config import MIXED_PRECISION

# --mixed_precision values -> Keras dtype policy names.
MODES = MIXED_PRECISION
_POLICIES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def check_mode(mode: str) -> str:
  """Returns `mode` if it is one of MODES, else raises ValueError naming the choices."""
  if mode not in _POLICIES:
    raise ValueError(f"unknown --mixed_precision={mode!r}; choose one of: "
                     + ", ".join(MODES))
  return mode


def policy_name(mode: str) -> str:
  """The Keras dtype policy of a --mixed_precision value ("none" -> "float32")."""
  return _POLICIES[check_mode(mode)]


def compute_dtype(mode: str) -> str:
  """The dtype the networks compute in: float32, bfloat16 or float16."""
  return keras.DTypePolicy(policy_name(mode)).compute_dtype


@contextlib.contextmanager
def policy_scope(mode: str):
  """Layers constructed inside get `mode`'s dtype policy; the previous policy is restored.

  With mode "none" this does nothing at all (float32 runs stay bit-identical).
  """
  name = policy_name(mode)
  if name == "float32":
    yield
    return
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package="rae_tf")
class StepCountingLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
  """Keras' dynamic `LossScaleOptimizer` whose `iterations` also count skipped steps.

  On a step with non-finite (scaled) gradients Keras halves the loss scale and skips the
  update without advancing the inner optimizer's step counter. Here the global step
  (`iterations`: the data position, the per-step seeds, checkpoints and schedules) advances
  on every training step, skipped or not, as in a float32 run.
  """

  def _stateful_handle_non_finite_grads(self):
    super()._stateful_handle_non_finite_grads()
    self.inner_optimizer.iterations.assign_add(1)


def wrap_optimizer(optimizer, mode: str):
  """`optimizer` as mode needs it: loss-scaled for float16, unchanged otherwise.

  An optimizer already loss-scaled is returned as it is.
  """
  if check_mode(mode) != "float16" or isinstance(
      optimizer, keras.optimizers.LossScaleOptimizer):
    return optimizer
  return StepCountingLossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")


def to_float32(x):
  """x cast to float32 (a no-op, the same tensor, when it is float32 already)."""
  if x is None or x.dtype == tf.float32:
    return x
  return tf.cast(x, tf.float32)
