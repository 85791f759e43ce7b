r"""Wall-clock seconds of the ex-post prior fits (rae_tf.expost) on the CPU.

  python benchmarks/expost_speed.py                        # GMM: 60,000 16-d codes, K = 10
  python benchmarks/expost_speed.py --kinds=gmm,flow,vae   # and the default flow / VAE fits
  python benchmarks/expost_speed.py --synthetic=uniform    # a hard case for EM
  python benchmarks/expost_speed.py --codes=codes.npy      # your own [N, m] codes

The codes are synthetic unless --codes is given: "clusters" (default), 10 anisotropic
Gaussian clusters of random sizes in 16-d, pushed through a mild tanh warp so they are not
an exact mixture; "uniform", the cube [-1, 1]^m, far from any mixture of 10 Gaussians, so EM
needs many more iterations (a pessimistic stand-in for real codes). Times exactly
what `fit_for_run` runs after encoding: `expost.fit(kind, codes)` with the kind's default
options (the GMM: scikit-learn EM, full covariances, k-means init, n_init 1, max_iter 2000,
tol 1e-3, float64). Prints one line per kind; target for the GMM: < 30 s.
"""
import time

from absl import app
from absl import flags
import numpy as np

flags.DEFINE_integer("n", 60000, "Codes (synthetic).")
flags.DEFINE_integer("dim", 16, "Code dimension m (synthetic).")
flags.DEFINE_enum("synthetic", "clusters", ["clusters", "uniform"], "Synthetic codes.")
flags.DEFINE_string("codes", None, "An .npy file of [N, m] codes instead of synthetic ones.")
flags.DEFINE_list("kinds", ["gmm"], "Ex-post kinds to time: gmm, flow, vae.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic codes and of the fits.")
FLAGS = flags.FLAGS


def synthetic_codes(n: int, dim: int, seed: int, kind: str = "clusters") -> np.ndarray:
  """[n, dim] float32: 10 anisotropic clusters of random weights, mildly warped; or
  uniform on [-1, 1]^dim."""
  rng = np.random.default_rng(seed)
  if kind == "uniform":
    return rng.uniform(-1, 1, (n, dim)).astype(np.float32)
  k = 10
  weights = rng.dirichlet(np.full(k, 2.0))
  labels = rng.choice(k, size=n, p=weights)
  means = rng.normal(0, 2.0, (k, dim))
  factors = rng.normal(0, 0.5, (k, dim, dim)) / np.sqrt(dim)
  noise = rng.normal(size=(n, dim))
  codes = means[labels] + np.einsum("nij,nj->ni", factors[labels], noise)
  return (codes + 0.3 * np.tanh(codes)).astype(np.float32)


def main(argv):
  del argv
  from rae_tf import eval_config  # pylint: disable=g-import-not-at-top
  from rae_tf import expost  # pylint: disable=g-import-not-at-top (TensorFlow: after flags)
  codes = (np.load(FLAGS.codes).astype(np.float32) if FLAGS.codes
           else synthetic_codes(FLAGS.n, FLAGS.dim, FLAGS.seed, FLAGS.synthetic))
  print(f"{len(codes)} codes of dimension {codes.shape[1]}"
        + (f" from {FLAGS.codes}" if FLAGS.codes else f" (synthetic, {FLAGS.synthetic})"))
  for kind in FLAGS.kinds:
    options = eval_config.expost_options(kind)
    start = time.perf_counter()
    prior = expost.fit(kind, codes, seed=FLAGS.seed)
    seconds = time.perf_counter() - start
    extra = ""
    if kind == "gmm":
      from sklearn.mixture import GaussianMixture  # pylint: disable=g-import-not-at-top
      import threadpoolctl  # pylint: disable=g-import-not-at-top
      # The same fit again, to report EM's iterations (fit_gmm_prior keeps only the layer).
      gmm = GaussianMixture(options["components"], covariance_type="full", max_iter=2000,
                            tol=1e-3, random_state=FLAGS.seed, reg_covar=1e-6)
      with threadpoolctl.threadpool_limits(1):
        gmm.fit(codes.astype(np.float64))
      extra = f", {gmm.n_iter_} EM iterations, converged {gmm.converged_}"
    print(f"{kind:5s} {seconds:8.2f} s   ({type(prior).__name__}, {options}{extra})",
          flush=True)


if __name__ == "__main__":
  app.run(main)
