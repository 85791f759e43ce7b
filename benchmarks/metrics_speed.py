r"""Wall-clock seconds of the evaluation metrics on feature sets, on the CPU.

  python benchmarks/metrics_speed.py                   # 10,000 x 10,000, dim 128
  python benchmarks/metrics_speed.py --n=50000 --dim=2048

Times FID (Gaussian statistics + sqrtm), PRD (20 clusters, 10 k-means runs, 1001 angles)
and improved precision/recall (k = 3) between two Gaussian feature sets, the second
slightly shifted. Features only: the feature networks are not timed. Prints one line per
metric and the total.
"""
import time

from absl import app
from absl import flags
import numpy as np

from rae_tf.metrics import fid, improved_pr, prd

flags.DEFINE_integer("n", 10000, "Features per set (real and generated).")
flags.DEFINE_integer("dim", 128, "Feature dimension.")
flags.DEFINE_integer("prd_runs", 10, "PRD k-means runs.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic features.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  rng = np.random.default_rng(FLAGS.seed)
  real = rng.normal(size=(FLAGS.n, FLAGS.dim)).astype(np.float32)
  generated = (rng.normal(size=(FLAGS.n, FLAGS.dim)) + 0.1).astype(np.float32)
  print(f"{FLAGS.n} x {FLAGS.n} features, dim {FLAGS.dim}")
  total = 0.0

  start = time.perf_counter()
  value = fid.fid_from_features(real, generated)
  seconds = time.perf_counter() - start
  total += seconds
  print(f"FID               {seconds:7.2f} s   (fid={value:.4f})")

  start = time.perf_counter()
  result = prd.compute_prd(real, generated, num_runs=FLAGS.prd_runs)
  seconds = time.perf_counter() - start
  total += seconds
  print(f"PRD ({FLAGS.prd_runs:2d} runs)     {seconds:7.2f} s   "
        f"(F_8={result.f_8:.4f}, F_1/8={result.f_1_8:.4f})")

  start = time.perf_counter()
  result = improved_pr.improved_precision_recall(real, generated)
  seconds = time.perf_counter() - start
  total += seconds
  print(f"improved P&R      {seconds:7.2f} s   "
        f"(precision={result.precision:.4f}, recall={result.recall:.4f})")
  print(f"total             {total:7.2f} s")


if __name__ == "__main__":
  app.run(main)
