"""Fitting a learned prior to the final codes, the auto-encoder frozen (FlexAE's last phase).

During training a learned prior chases codes that keep moving; at CPU scale it ends behind
them (low recall: parts of the code distribution it never generates). Refinement runs only
the players that fit the prior (`Player.fits_prior`: FlexAE's critic and generator, or the
flow's maximum likelihood) for extra steps on batches of the final codes of the whole
training set. It is cheap (no images pass through the networks) and deterministic per
(seed, step), so a killed refinement simply runs again from the last checkpoint.
"""
import math
from typing import Dict

import numpy as np
import tensorflow as tf

from rae_tf import players as rae_players
from rae_tf import sampling
from rae_tf.errors import ConfigError, TrainingDiverged
from rae_tf.regularizers import Forward

_SALT_REFINE = 9  # Keeps refinement draws apart from the training steps' draws.


def prior_players(model):
  """The model's players that fit its prior (empty for a fixed prior)."""
  return [p for p in model.players if p.fits_prior]


def encode_all(model, dataset: tf.data.Dataset) -> np.ndarray:
  """The codes [N, m] of every example of `dataset` (batched, unshuffled)."""
  return np.concatenate([model.encode(batch[0] if isinstance(batch, (tuple, list))
                                      else batch).numpy() for batch in dataset])


def refine_rate_scale(step: int, half_life: int) -> float:
  """The factor on the prior players' rates at refinement step `step` (0-based).

  A constant rate leaves an adversarial prior oscillating around the codes, so that where
  refinement stops decides its quality; halving the rate every `half_life` steps lets the game
  settle. The factor depends on the step alone, so a refinement continued in pieces equals one
  run. `half_life` 0 keeps the rate constant.
  """
  return 1.0 if half_life <= 0 else 0.5 ** (step / half_life)


def refine_prior(model, codes: np.ndarray, steps: int, batch_size: int, seed: int,
                 start: int = 0, half_life: int = 0, log_every: int = 500,
                 say=None) -> Dict[str, float]:
  """Runs the prior-fitting players for refinement steps start..steps-1 on fixed codes.

  Args:
    model: a compiled RegularizedAutoEncoder with a learned prior.
    codes: [N, m] codes of the training set.
    steps: refinement steps in all (each runs every prior player once, with its own inner
      steps).
    batch_size: codes per step.
    seed: the run's seed.
    start: the first step (steps already done: refining further continues exactly).
    half_life: the players' rates halve every this many refinement steps (0 = constant);
      restored when refinement ends, so a resumed training runs at its own rates.
    log_every: how often to report progress through `say`.
    say: a callable taking a progress line, or None.
  Returns:
    The last step's losses.
  Raises:
    ConfigError: the model has no learned prior.
    TrainingDiverged: a loss became non-finite.
  """
  fitting = prior_players(model)
  if not fitting:
    raise ConfigError("--prior_refine_steps needs a model with a learned prior "
                      "(flexae, flexae_flow)")
  codes_t = tf.constant(np.asarray(codes, np.float32))
  num = int(codes_t.shape[0])

  @tf.function
  def step(i):
    seed_i = sampling.step_seed(seed, _SALT_REFINE, i)
    index = tf.random.stateless_uniform([batch_size], seed_i, 0, num, dtype=tf.int64)
    z = tf.gather(codes_t, index)
    fwd = Forward(x=None, z=z, z_mean=z, z_log_var=None, logits=None, prior_z=None,
                  seed=seed_i, model=model)
    state = rae_players.PlayState(x=None, seed=seed_i, model=model, fwd=fwd)
    logs = {}
    for player in fitting:
      logs.update(rae_players.play(player, state, 1))
    return logs

  # Scaled from (and restored to) the rates the players hold now: a schedule of the
  # training (e.g. --lr_drops) stays in force.
  base_rates = [(p.optimizer, float(p.optimizer.learning_rate.numpy()))
                for p in fitting] if half_life > 0 else []
  logs = {}
  try:
    for i in range(start, steps):
      for optimizer, rate in base_rates:
        optimizer.learning_rate.assign(rate * refine_rate_scale(i, half_life))
      logs = {k: float(v) for k, v in step(tf.constant(i, tf.int64)).items()}
      _check_finite(logs, i)
      if say and ((i + 1) % log_every == 0 or i + 1 == steps):
        say(f"prior refinement {i + 1}/{steps}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in sorted(logs.items()))
            + (f", rates x{refine_rate_scale(i, half_life):.3g}" if half_life > 0 else ""))
  finally:
    for optimizer, rate in base_rates:
      optimizer.learning_rate.assign(rate)
  return logs


def _check_finite(logs, i):
  """Raises TrainingDiverged when a loss of refinement step i is not finite."""
  bad = [k for k, v in logs.items() if not math.isfinite(v)]
  if bad:
    raise TrainingDiverged(f"prior refinement diverged at step {i + 1}: non-finite "
                           + ", ".join(f"{k}={logs[k]}" for k in bad)
                           + "; nothing saved or exported; lower --generator_learning_rate")
