r"""The seed's Tables 1-5 and Figs. 2, 5, 6, 7 regenerated with rae_tf, beside the
published numbers (rae_tf/seed_tables.py) and the gap.

  python scripts/reproduce.py --table=1                  # small scale: this 2-core CPU
  python scripts/reproduce.py --table=1 --jobs=2         # two runs at once
  python scripts/reproduce.py --table=3 --model_flags='flexae:"--critic_width=256"'
  python scripts/reproduce.py --table=2                  # NAC (scripts/nac_table.py's runs)
  python scripts/reproduce.py --table=5                  # prior capacity (bias-variance)
  python scripts/reproduce.py --table=fig2               # Figs. 2 and 5 (one sweep)
  python scripts/reproduce.py --table=fig6               # Figs. 6 and 7 (one experiment)
  python scripts/reproduce.py --table=3 --scale=paper --data_dir=DIR \
      --inception_weights=PATH                           # GPU machines, tfds data

What each table runs (rae_tf.reproduction):
  1, 3, 4  the models the table lists (each with its recipe; "not registered" for a row
           whose model the registry does not have), each data set the table has: small
           scale = the MNIST subset (--mnist_npz) and Fashion-MNIST (--fashion_npz);
           CIFAR-10 and CelebA say "not run" (no data here). Table 4 compares PRD
           F_1/8 / F_8 with the seed's precision / recall. Tables 1, 3, 4 share runs.
  2        latent_dim_experiments.run_nac_table: WAE and MaskAAE at m = 16 ... 256, MNIST.
  5        experiments.run_prior_capacity_sweep: FlexAE with 6 prior capacities on 10% of
           the training split, per data set.
  fig2/5   latent_dim_experiments.run_latent_dim_sweep on synthetic data, n = 8 and 16
           (paper scale: also MNIST).
  fig6/7   latent_dim_experiments.run_mask_behaviour on MNIST at m = 32, 64, 110.

Small-scale budget (each table < 1 hour on the 2-core CPU; measured from nothing with
--jobs=2: Table 1 34 min, Table 3 31 min, Table 4 1 min on Table 3's runs; Tables 2 / 5
11 / 18 min): Tables 1/3/4 dcgan width 32, m = 16, batch 100, 5 epochs
x 100 steps, 2,000 samples per metric (997 for the MNIST subset), domain FID; Table 2 and
Figs. 6/7 MLP 3 x 256 on the MNIST subset, 6 epochs (540 steps), MaskAAE with a 256 x 3
critic; Figs. 2/5 the same on synthetic data, m = 4 ... 64, 6 x 100 steps; Table 5 the
prior-capacity sweep's CPU defaults (40 epochs of 9 steps, ~18-27 min). Paper scale: the
papers' settings (RAE: width 128, 100 epochs, m 16 / 128 / 64; MaskAAE: MLP 4 x 1024,
batch 64, 500k steps; FlexAE: infogan nets, 300 epochs), tfds data under --data_dir,
Inception FID on 10,000 samples. --epochs, --steps_per_epoch and --num_samples override
the budget (smoke runs).

Writes <out_dir>/table<N>.md, .json and .png (fig2_5* / fig6_7* for the figures, plus the
experiments' own PNGs), rewritten after every run; runs live under --work_root and are
reused, so a killed run resumes. The gap is measured minus published; at small scale the
FIDs are domain FIDs on a CPU budget, so compare orders, not values. Bad input: one
`error:` line, exit status 2, nothing written.
"""
import shlex
import sys

from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import reproduction

HELP = {
    "table": "Which: 1, 2, 3, 4, 5, fig2, fig5 (the same sweep), fig6, fig7 (the same "
             "experiment).",
    "scale": "small (this CPU, the data here) or paper (the papers' settings, tfds data, "
             "Inception FID: GPU machines).",
    "mnist_npz": "The MNIST data of the small scale (an absent file: that column says so).",
    "fashion_npz": "The Fashion-MNIST data of the small scale.",
    "data_dir": "tensorflow-datasets directory (paper scale).",
    "epochs": "Epochs of every run (default: the scale's budget).",
    "steps_per_epoch": "Steps per epoch (default: the scale's budget).",
    "num_samples": "Samples per metric (default: the scale's budget).",
    "draws": "Independent sample draws averaged in each generation FID (default: 1 for "
             "Tables 1, 3, 4; 5 for the latent-dimension tables and figures).",
    "seed": "Seed of every run.",
    "model_flags": "Extra scripts/train.py flags per model, 'MODEL:FLAGS;MODEL:FLAGS' "
                   "(Tables 1, 3, 4; the others refuse it).",
    "inception_weights": "Keras InceptionV3 notop weights file (paper scale).",
    "work_root": "Runs (shared by the tables, resumable) and, unless --domain_cache, the "
                 "domain classifier cache.",
    "domain_cache": "Folder of the domain classifiers of Tables 1, 3, 4, refused by the "
                    "others (default "
                    "<work_root>/feature_cache); benchmarks/domain_classifiers holds the "
                    "ones behind benchmarks/RESULTS_2026-11-29.md, so the tables compare "
                    "with it.",
    "out_dir": "Reports: table<N>.md / .json / .png.",
    "jobs": "Tables 1, 3, 4: runs trained at once, each in its own process with cores/jobs threads and its "
            "output in <run dir>/benchmark.log. 1: one after another in this process. On a "
            "2-core CPU 2 gained only 1.05x (benchmarks/README.md); more cores, more gain. "
            "Tables 2, 5 and the figures refuse --jobs > 1.",
}
cli.define_flags(reproduction.ReproduceConfig, HELP)


def main(argv):
  def work():
    config = cli.config_from_flags(reproduction.ReproduceConfig, flags.FLAGS)  # No TF yet.
    cli.import_quietly("rae_tf.training")
    command = " ".join(shlex.quote(a) for a in ["python"] + sys.argv)
    reproduction.run_reproduction(config, command=command)

  cli.run_or_exit(work, argv, interrupted="interrupted; run the same command again to "
                  "resume (finished runs and evaluations are reused)")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
