"""Latent transforms: the map from the encoder's raw code into the model's latent space.

`RegularizedAutoEncoder` applies its latent transform once, where a code enters the latent
space: to the encoder's output (training, `encode`, the SavedModel's `encode`) and to every
prior draw (training and sampling). The decoder, the regularizers, the ex-post priors and
the exported `latent` outputs therefore all see transformed codes. The default is the
identity; MaskAAE's `MaskLayer` multiplies by a trainable mask, so Q(z) and P(z) are
compared on the kept dimensions only (the seed's requirement R2).
"""
import keras
import numpy as np
import tensorflow as tf

from rae_tf.metrics.latent import MASK_THRESHOLD
from rae_tf.registry import Registry

LATENT_TRANSFORMS: Registry = Registry("latent transform", "--model")


@LATENT_TRANSFORMS.register("identity")
@keras.saving.register_keras_serializable(package="rae_tf")
class IdentityTransform(keras.layers.Layer):
  """z -> z: the latent space is the encoder's code space."""

  trained_by_autoencoder = True  # It has no variables; nothing to exclude.

  def __init__(self, **kwargs):
    kwargs.setdefault("dtype", "float32")  # Codes stay float32 (see MaskLayer).
    super().__init__(**kwargs)

  def call(self, z):
    return z


class _PsiRange(keras.constraints.Constraint):
  """0 <= psi (the authors' non-negativity constraint) <= psi_max (None: no upper bound),
  applied by the optimizer after every update."""

  def __init__(self, psi_max=None):
    self.psi_max = psi_max

  def __call__(self, w):
    w = tf.maximum(w, 0.0)
    return w if self.psi_max is None else tf.minimum(w, self.psi_max)

  def get_config(self):
    return {"psi_max": self.psi_max}


@LATENT_TRANSFORMS.register("mask")
@keras.saving.register_keras_serializable(package="rae_tf")
class MaskLayer(keras.layers.Layer):
  """MaskAAE's trainable mask: z -> mu * z with mu = 1 - exp(-psi), psi >= 0.

  mu lies in [0, 1): continuous, no sigmoid and no straight-through estimator, as in the
  authors' code. The mask has its own player (`rae_tf.regularizers.MaskedLatentAdversary`),
  so the auto-encoder's optimizer does not train it (`trained_by_autoencoder = False`).

  Args:
    latent_dim: m.
    init_max: psi is initialised U(0, init_max) (authors: 5, i.e. mu in [0, 0.993)).
    seed: seed of that initialisation.
    psi_max: upper bound of psi (None: none, as the authors). Without one, the psi of an
      open dimension keeps growing (mu -> 1 - 1e-7 after a few thousand RMSProp steps),
      and a dimension that opened early can no longer close within a short run.
  """

  trained_by_autoencoder = False

  def __init__(self, latent_dim: int, init_max: float = 5.0, seed: int = 0,
               psi_max=None, **kwargs):
    # float32 under any --mixed_precision: an element-wise product (nothing to gain from
    # bfloat16) where codes enter the latent space, whose losses are float32.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.latent_dim = int(latent_dim)
    self.init_max = float(init_max)
    self.seed = int(seed)
    self.psi_max = None if psi_max is None else float(psi_max)
    self.psi = self.add_weight(
        name="psi", shape=(self.latent_dim,),
        initializer=keras.initializers.RandomUniform(0.0, self.init_max, seed=self.seed),
        constraint=_PsiRange(self.psi_max), trainable=True)

  def mask(self):
    """mu = 1 - exp(-psi), shape [m]."""
    return 1.0 - tf.exp(-tf.maximum(self.psi, 0.0))  # Constrained already; cheap safety.

  def call(self, z):
    return z * self.mask()

  def mask_values(self) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(self.mask()))

  def active_dims(self, threshold: float = MASK_THRESHOLD) -> int:
    """m_A: entries with mu_i >= threshold."""
    return int(np.sum(self.mask_values() >= threshold))

  def get_config(self):
    return {**super().get_config(), "latent_dim": self.latent_dim,
            "init_max": self.init_max, "seed": self.seed, "psi_max": self.psi_max}
