"""Divergences between the encoded distribution Q(z) and the prior P(z).

Pure functions on tensors, so they can be unit-tested on known values.
"""
import tensorflow as tf

from rae_tf.registry import Registry

MMD_KERNELS = Registry("MMD kernel", "--mmd_kernel")

# WAE's multi-scale sum for the IMQ kernel: C = 2 * m * sigma_z^2 * s.
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def kl_diagonal_gaussian_to_standard_normal(mean, log_var):
  """KL(N(mean, diag(exp(log_var))) || N(0, I)) per example, shape [batch]."""
  return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=1)


def _squared_distances(a, b):
  aa = tf.reduce_sum(tf.square(a), axis=1, keepdims=True)
  bb = tf.reduce_sum(tf.square(b), axis=1, keepdims=True)
  return tf.maximum(aa - 2.0 * tf.matmul(a, b, transpose_b=True) + tf.transpose(bb), 0.0)


@MMD_KERNELS.register("imq")
def imq_kernel(sq_dist, latent_dim, prior_variance=1.0):
  """Inverse multiquadric k = C / (C + d^2), summed over WAE's scales of C = 2 m sigma^2 s."""
  base = 2.0 * latent_dim * prior_variance
  return tf.add_n([base * s / (base * s + sq_dist) for s in IMQ_SCALES])


@MMD_KERNELS.register("rbf")
def rbf_kernel(sq_dist, latent_dim, prior_variance=1.0):
  """Gaussian kernel exp(-d^2 / C) with WAE's bandwidth C = 2 m sigma^2."""
  return tf.exp(-sq_dist / (2.0 * latent_dim * prior_variance))


def mmd(q_samples, p_samples, kernel: str = "imq", prior_variance: float = 1.0):
  """Unbiased MMD^2 estimate between two equally sized samples (WAE's estimator).

  Within-set terms exclude i == j and are divided by n^2 - n; the cross term by n^2.

  Args:
    q_samples: [n, m] encoded codes.
    p_samples: [n, m] prior samples.
    kernel: "imq" or "rbf".
    prior_variance: sigma_z^2 of the prior, sets the kernel scale.
  Returns:
    A scalar.
  """
  kernel_fn = MMD_KERNELS.get(kernel)
  n = tf.cast(tf.shape(q_samples)[0], q_samples.dtype)
  m = tf.cast(tf.shape(q_samples)[1], q_samples.dtype)
  k_qq = kernel_fn(_squared_distances(q_samples, q_samples), m, prior_variance)
  k_pp = kernel_fn(_squared_distances(p_samples, p_samples), m, prior_variance)
  k_qp = kernel_fn(_squared_distances(q_samples, p_samples), m, prior_variance)
  off_diag = lambda k: tf.reduce_sum(k) - tf.reduce_sum(tf.linalg.diag_part(k))
  return ((off_diag(k_qq) + off_diag(k_pp)) / (n * n - n)
          - 2.0 * tf.reduce_sum(k_qp) / (n * n))
