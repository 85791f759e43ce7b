"""Players: the update phases of one training step (TF-GAN's per-player train ops).

A model's objective is reconstruction + sum_k lambda_k * term_k, but models with networks
of their own (a latent critic, a learned prior's generator, MaskAAE's mask) update them in
separate phases with separate optimizers. Each phase is a `Player`: its name, the variables
it updates, its loss, its optimizer and how many updates it makes per step. The model's
`train_step`, `compile`, the run's checkpoint, the learning-rate schedules, the TensorBoard
trackers and the mirrored path all iterate over the same ordered list of players; the
auto-encoder is simply the first player.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import keras
import tensorflow as tf

from rae_tf.optimizers import FusedAdam


@dataclasses.dataclass
class PlayState:
  """What the players of one training step share.

  Attributes:
    x: the (replica-local) input batch.
    seed: the step's stateless seed base ([2] int64).
    model: the RegularizedAutoEncoder.
    fwd: the auto-encoder's forward pass (`rae_tf.regularizers.Forward`), set by the
      auto-encoder player, which runs first.
  """
  x: tf.Tensor
  seed: tf.Tensor
  model: Any
  fwd: Any = None


# A player's loss: (state, inner step index) -> (replica-local mean loss, logs or None).
LossFn = Callable[[PlayState, int], Tuple[tf.Tensor, Optional[Dict[str, tf.Tensor]]]]


@dataclasses.dataclass
class Player:
  """One update phase of a training step.

  Attributes:
    name: unique name: the log key of its loss and the checkpoint key of its optimizer.
    variables: returns the variables this player updates.
    loss: the player's loss (see LossFn); minimised by `optimizer` over `variables`.
    optimizer: its own optimizer (built in the strategy scope by the model's compile).
    learning_rate: its undecayed rate (learning-rate schedules scale from it).
    steps: updates per training step (e.g. 5 critic steps).
    fits_prior: the player fits a learned prior to the codes (a critic, a generator, a
      flow): it also runs in the prior refinement on the final codes.
    log_names: names of extra scalars its loss returns in its logs (tracked per epoch).
  """
  name: str
  variables: Callable[[], List[tf.Variable]]
  loss: LossFn
  optimizer: keras.optimizers.Optimizer
  learning_rate: float
  steps: int = 1
  fits_prior: bool = False
  log_names: Tuple[str, ...] = ()


def adam(learning_rate: float, beta_1: float = 0.9, beta_2: float = 0.999,
         name: str = "adam") -> keras.optimizers.Optimizer:
  """An Adam optimizer (the default of every player; one fused kernel per update)."""
  return FusedAdam(learning_rate, beta_1=beta_1, beta_2=beta_2, name=name)


OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(kind: str, learning_rate: float, beta_1: float = 0.9,
                   beta_2: float = 0.999, name: str = "optimizer"
                   ) -> keras.optimizers.Optimizer:
  """A player's optimizer by name.

  Args:
    kind: "adam" (betas beta_1, beta_2) or "rmsprop" (MaskAAE's authors: TF1 RMSProp,
      decay 0.9, no momentum; the betas are ignored).
    learning_rate: its rate.
    beta_1, beta_2: Adam's betas.
    name: the optimizer's name.
  """
  if kind == "adam":
    return adam(learning_rate, beta_1, beta_2, name=f"{name}_adam")
  if kind == "rmsprop":
    return keras.optimizers.RMSprop(learning_rate, rho=0.9, name=f"{name}_rmsprop")
  raise ValueError(f"unknown optimizer {kind!r}; choose one of {OPTIMIZERS}")


def play(player: Player, state: PlayState, replicas) -> Dict[str, tf.Tensor]:
  """Runs the player's `steps` updates; returns its logs (default {name: last loss}).

  Optimizers SUM gradients over replicas, so the replica-local mean is divided by the
  replica count inside the tape (trackers get the unscaled value). The loss is then
  scaled by the optimizer's `scale_loss` (a float16 run's dynamic loss scale,
  `rae_tf.precision`; the loss itself otherwise) and `apply_gradients` unscales.
  """
  logs = {}
  for i in range(player.steps):
    variables = player.variables()
    with tf.GradientTape() as tape:
      loss, extra = player.loss(state, i)
      scaled = player.optimizer.scale_loss(loss / tf.cast(replicas, loss.dtype))
    grads = tape.gradient(scaled, variables)
    player.optimizer.apply_gradients(zip(grads, variables))
    logs = dict(extra) if extra else {player.name: loss}
  return logs
