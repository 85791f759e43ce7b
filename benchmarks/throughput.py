r"""Training throughput (images/s) and peak resident memory per model, on the CPU.

  python benchmarks/throughput.py                       # all models, dcgan width 32 and 128
  python benchmarks/throughput.py --models=rae_l2 --widths=32 --steps=30

Each (model, width) runs in its own process so that peak RSS is that model's alone. A run
trains with the same `model.fit` path as scripts/train.py on the bundled MNIST subset
(28x28x1), batch 100, after a warm-up that absorbs tracing. Prints a table.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import child_result  # pylint: disable=g-import-not-at-top
from rae_tf.config import MIXED_PRECISION  # pylint: disable=g-import-not-at-top

flags.DEFINE_list("models", ["ae", "vae", "beta_vae", "wae_mmd", "wae_gan", "rae_l2",
                             "rae_gp", "rae_sn"], "Models to time.")
flags.DEFINE_list("widths", ["32", "128"], "dcgan widths to time.")
flags.DEFINE_string("arch", "dcgan", "Architecture.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("latent_dim", 16, "Latent dimension.")
flags.DEFINE_integer("steps", 20, "Timed training steps.")
flags.DEFINE_integer("warmup", 5, "Untimed steps first (tracing, allocation).")
flags.DEFINE_string("json_out", "", "Also write the rows as JSON here.")
flags.DEFINE_enum("mixed_precision", "none", list(MIXED_PRECISION),
                  "Networks' precision (scripts/train.py --mixed_precision).")
flags.DEFINE_string("_child", "", "Internal: run one measurement (model:width).")
FLAGS = flags.FLAGS


def measure(model_name: str, width: int) -> dict:
  """Times `FLAGS.steps` fit steps after `FLAGS.warmup`; returns a result row."""
  import resource  # pylint: disable=g-import-not-at-top
  import fit_timing  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top

  config = TrainConfig.make(model=model_name, dataset="mnist10k", arch=FLAGS.arch, width=width,
                            latent_dim=FLAGS.latent_dim, batch_size=FLAGS.batch_size,
                            mixed_precision=FLAGS.mixed_precision, workdir="unused",
                            export_dir="")
  seconds, _ = fit_timing.time_fit_steps(config, FLAGS.steps, FLAGS.warmup)
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
  return {"model": model_name, "arch": FLAGS.arch, "width": width,
          "mixed_precision": FLAGS.mixed_precision,
          "batch": FLAGS.batch_size, "img_per_s": FLAGS.steps * FLAGS.batch_size / seconds,
          "ms_per_step": 1000.0 * seconds / FLAGS.steps, "peak_rss_mib": peak_mib}


def main(argv):
  del argv
  if FLAGS._child:  # pylint: disable=protected-access
    name, width = FLAGS._child.split(":")  # pylint: disable=protected-access
    child_result.emit(measure(name, int(width)))
    return
  rows = []
  print(f"{'model':10s} {'arch':7s} {'width':>5s} {'batch':>5s} {'img/s':>8s} "
        f"{'ms/step':>8s} {'peak RSS MiB':>12s}", flush=True)
  for width in FLAGS.widths:
    for name in FLAGS.models:
      args = [sys.executable, os.path.abspath(__file__), f"--_child={name}:{width}",
              f"--arch={FLAGS.arch}", f"--batch_size={FLAGS.batch_size}",
              f"--latent_dim={FLAGS.latent_dim}", f"--steps={FLAGS.steps}",
              f"--warmup={FLAGS.warmup}", f"--mixed_precision={FLAGS.mixed_precision}"]
      row, error = child_result.run(args)
      if row is None:
        print(f"{name:10s} {FLAGS.arch:7s} {width:>5s} failed: {error}")
        continue
      rows.append(row)
      print(f"{row['model']:10s} {row['arch']:7s} {row['width']:5d} {row['batch']:5d} "
            f"{row['img_per_s']:8.1f} {row['ms_per_step']:8.1f} {row['peak_rss_mib']:12.0f}",
            flush=True)
  if FLAGS.json_out:
    with open(FLAGS.json_out, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  app.run(main)
