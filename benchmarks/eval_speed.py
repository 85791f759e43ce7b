r"""End-to-end evaluation time for 10,000 samples (sampling, domain features, FID, PRD,
improved P&R, latent statistics), on the CPU.

  python benchmarks/eval_speed.py --npz=../shared/data/fashion_mnist.npz

Trains a small RAE-L2 (dcgan width 32) for one epoch on the npz data (10,000 test
images are needed), then runs the evaluation twice: once training the domain classifier
into an empty cache, once with the cached classifier (the steady state). Prints the times.
"""
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

flags.DEFINE_string("npz", "../shared/data/fashion_mnist.npz", "npz data with >= num_samples "
                    "test images.")
flags.DEFINE_integer("num_samples", 10000, "Samples per metric.")
flags.DEFINE_integer("train_steps", 600, "Training steps of the model to evaluate (600 = "
                     "one Fashion-MNIST epoch; far fewer leave BatchNorm statistics unsettled).")
flags.DEFINE_bool("figures", False, "Also time the PNG figures.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from rae_tf import evaluation  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  tmp = tempfile.mkdtemp(prefix="rae_eval_bench_")
  config = TrainConfig.make(model="rae_l2", dataset=f"npz:{os.path.abspath(FLAGS.npz)}",
                       arch="dcgan", width=32, latent_dim=16, batch_size=100, epochs=1,
                       steps_per_epoch=FLAGS.train_steps, workdir=os.path.join(tmp, "run"),
                       export_dir="")
  t0 = time.time()
  training.train(config, verbose=0)
  print(f"trained {FLAGS.train_steps} steps in {time.time() - t0:.1f} s")
  for label in ("cold cache (trains the domain classifier)", "cached domain classifier"):
    t0 = time.time()
    results = evaluation.evaluate(evaluation.EvalConfig(
        workdir=config.workdir, num_samples=FLAGS.num_samples, figures=FLAGS.figures,
        cache_dir=os.path.join(tmp, "cache")))
    total = time.time() - t0
    s = results["seconds"]
    print(f"{label}: total {total:.1f} s (sampling+encoding {s['sampling']:.1f} s, "
          f"features {s['features']:.1f} s, FID+PRD+P&R+NAC {s['metrics']:.1f} s)")
  print(evaluation.format_table(results))


if __name__ == "__main__":
  app.run(main)
