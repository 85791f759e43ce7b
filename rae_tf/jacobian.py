"""The decoder-Jacobian regulariser of InjFlow (Kumar, Poole & Murphy 2020).

An injective decoder g: R^m -> R^D pushes the prior forward to a density on its image,
  log p(x) = log p_z(z) - 1/2 log det(J^T J),  z = f(x), J = dg/dz [D, m].
log det(J^T J) = sum_i log s_i^2 (s_i the singular values) is bounded by Jensen's
inequality, sum_i log s_i^2 <= m log(||J||_F^2 / m), and once more by log u <= u - 1,
giving penalties on log ||J||_F^2 ("log" form) or ||J||_F^2 ("frobenius" form).
||J||_F^2 = E_v ||J v||^2 for v ~ N(0, I_m) (Hutchinson), and J v is one forward-mode
Jacobian-vector product (`tf.autodiff.ForwardAccumulator`), which an outer GradientTape
differentiates for training: no [D, m] Jacobian is ever formed.
"""
import keras
import tensorflow as tf

from rae_tf import sampling
from rae_tf.errors import ConfigError
from rae_tf.regularizers import Term

FORMS = ("log", "frobenius")

# Salt of the projection draws (apart from the step's other draws, see rae_tf.sampling).
_SALT_PROJECTIONS = 9000


def _flat_square_norm(t):
  return tf.reduce_sum(tf.square(tf.reshape(t, [tf.shape(t)[0], -1])), axis=1)


def projection_tangents(z, num_projections: int = 1, seed=None):
  """The tangents of the ||J||_F^2 estimate at codes z [batch, m]: K draws v_k ~ N(0, I_m)
  (num_projections K > 0, stateless from `seed`), or the m basis vectors (0: exact)."""
  batch, m = tf.shape(z)[0], z.shape[-1]
  if num_projections < 0:
    raise ConfigError(f"num_projections={num_projections} must be >= 0 (0 = exact)")
  if num_projections == 0:
    return [tf.one_hot(tf.fill([batch], k), m, dtype=z.dtype) for k in range(m)]
  if seed is None:
    raise ValueError("a stochastic Jacobian estimate needs a seed")
  return [sampling.normal(batch, [m], seed + tf.constant([0, k], tf.int64), z.dtype)
          for k in range(num_projections)]


def jacobian_frobenius_sq(fn, z, num_projections: int = 1, seed=None, first_jvp=None):
  """Per-example ||d fn / dz||_F^2 [batch]: exact, or a stochastic estimate.

  Args:
    fn: a batched map z [batch, m] -> [batch, ...] (examples independent of each other).
    z: [batch, m] points.
    num_projections: K > 0: the mean of ||J v_k||^2 over K projections v_k ~ N(0, I_m)
      (unbiased); 0: exact, sum_k ||J e_k||^2 over the m basis vectors (m products).
    seed: [2] int64 stateless seed of the projections (needed for K > 0).
    first_jvp: J v_1 for the first of `projection_tangents(z, num_projections, seed)`, when
      the caller has it (the model's forward pass records it); None: computed here.
  """
  total = 0.0
  for k, v in enumerate(projection_tangents(z, num_projections, seed)):
    if k == 0 and first_jvp is not None:
      jvp = first_jvp
    else:
      with tf.autodiff.ForwardAccumulator(primals=z, tangents=v) as acc:
        out = fn(z)
      jvp = acc.jvp(out)
    total += _flat_square_norm(jvp)
  return total if num_projections == 0 else total / float(num_projections)


@keras.saving.register_keras_serializable(package="rae_tf")
class DecoderJacobianPenalty(Term):
  """InjFlow's decoder-Jacobian term, batch mean over the codes z of the step.

  form "log": m/2 * log(||J_g(z)||_F^2 / m), the Jensen bound on 1/2 log det(J^T J) (its
  weight relative to ||z||^2 / 2 is the flow's, so code scale and decoder gain balance as
  under N(0, I)); form "frobenius": ||J_g(z)||_F^2. J is the Jacobian of the decoded mean
  (what the likelihood compares with x) at the code; ||J||_F^2 is estimated with
  `num_projections` random Jacobian-vector products (0 = exact, m products).

  Args:
    coefficient: its weight.
    form: "log" or "frobenius".
    num_projections: K random projections per example (0: exact).
  """

  def __init__(self, coefficient=1.0, form="log", num_projections=1, **kwargs):
    super().__init__(coefficient, **kwargs)
    if form not in FORMS:
      raise ConfigError(f"unknown Jacobian penalty form {form!r}; choose one of: "
                        + ", ".join(FORMS))
    if int(num_projections) < 0:
      raise ConfigError(f"--jacobian_projections={num_projections} must be >= 0 "
                        "(0 = exact)")
    self.form = form
    self.num_projections = int(num_projections)

  def value(self, decode, z, seed, first_jvp=None):
    """The term's per-example value [batch] for a decoder map `decode` at codes z
    (`first_jvp`: see `jacobian_frobenius_sq`)."""
    frobenius_sq = jacobian_frobenius_sq(decode, z, self.num_projections, seed, first_jvp)
    if self.form == "frobenius":
      return frobenius_sq
    m = float(z.shape[-1])
    # The floor keeps the log finite for a (momentarily) flat decoder.
    return 0.5 * m * tf.math.log(frobenius_sq / m + 1e-12)

  def _seed(self, step_seed):
    return step_seed + tf.constant([_SALT_PROJECTIONS, 0], tf.int64)

  def decoder_tangent(self, z, seed):
    # The forward pass's decoder pass gives the first product (saves a decoder pass).
    return projection_tangents(z, self.num_projections, self._seed(seed))[0]

  def compute(self, fwd):
    model = fwd.model

    def decode(z):
      return model.likelihood.mean(model.decoder_logits(z, training=fwd.training))

    first_jvp = None
    if fwd.decoder_accumulator is not None:
      with fwd.decoder_accumulator:
        out = model.likelihood.mean(fwd.logits)
      first_jvp = fwd.decoder_accumulator.jvp(out)
    return tf.reduce_mean(self.value(decode, fwd.z, self._seed(fwd.seed), first_jvp))

  def get_config(self):
    return {**super().get_config(), "form": self.form,
            "num_projections": self.num_projections}
