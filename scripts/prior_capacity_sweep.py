r"""FlexAE's bias-variance in the prior's capacity (the seed's Table 5): on limited training
data, train FlexAE with prior generators of increasing capacity and compare their FIDs.

  python scripts/prior_capacity_sweep.py                  # CPU scale: mnist10k, 40 epochs
  python scripts/prior_capacity_sweep.py --out_dir=runs/pc_fashion \
      --dataset=npz:../shared/data/fashion_mnist.npz      # 10% of Fashion-MNIST: 6,000 images
  python scripts/prior_capacity_sweep.py --out_dir=runs/pc_paper --dataset=mnist \
      --data_dir=DIR --arch=infogan --width=64 --latent_dim=32 --batch_size=128 \
      --epochs=300 --learning_rate=2e-4 --critic_width=1024 --critic_depth=4 \
      --critic_learning_rate=1e-4 --generator_learning_rate=2e-4 \
      --encoder_adversary_learning_rate=1e-5 --adversary_beta_1=0 \
      --features=inception --inception_weights=PATH  # paper scale: the authors' recipe

The capacity ladder (--capacities, WIDTHxDEPTH per model; the prior generator G of model i
is noise N(0, I_m) -> DEPTH x Dense(WIDTH, ReLU) -> Dense(m)); parameter counts for m = 16:

  model  G width x depth  G params
  1        16 x 1               544
  2        64 x 1             2,128
  3       128 x 2            20,752
  4       256 x 3           140,048
  5       512 x 4           804,880
  6      1024 x 4         3,182,608   (the authors' G)

Every model sees the same seeded random --train_fraction of the training split (default
10%: 900 images of the bundled mnist10k), the same auto-encoder, critic, rates, epochs and
seed; only G differs. Each is evaluated against the full data set's test split
(min(10000, its size) samples by default): generation FID (prior samples) and
reconstruction FID, with domain features for labelled images and raw features for vectors,
plus improved precision/recall. Writes <out_dir>/prior_capacity.json, prior_capacity.md (a
Markdown table) and prior_capacity.png (FIDs against the model index), rewritten after each
model. The defaults (CPU scale: dcgan width 32, m = 16, 40 epochs of 9 steps) take about
18 minutes on a busy 2-core CPU (measured: the same with --epochs=20 in 9.6 min). Do not
go much below 40 epochs: after 20 the reconstruction FIDs were ~170, after 40 ~30 (most
likely BatchNorm's moving statistics, momentum 0.99, had not settled in 180 steps).

Each model trains in its own workdir, <out_dir>/runs/model<i>_w<W>_d<D>, and its
evaluation is cached there: re-running the same command after a kill resumes where it
stopped (raise --epochs to train every model further). Bad input exits with status 2 and
one `error:` line before anything is written; a diverged run with status 3; Ctrl-C with
130. TensorFlow's C++ log is hidden: --verbosity=0 shows its warnings, --verbosity=1 all.
"""
import shlex
import sys

from absl import app

from rae_tf import cli
from rae_tf import experiments
from rae_tf.experiments import PriorCapacityConfig

HELP = {
    "dataset": "Data: mnist10k (bundled, offline), synthetic, synthetic_image, mnist, "
               "fashion_mnist, cifar10, celeb_a (tensorflow-datasets) or npz:PATH.",
    "data_dir": "tensorflow-datasets data directory.",
    "true_latent_dim": "synthetic data: dimension n of the true latent.",
    "ambient_dim": "synthetic data: dimension d of x = f(z).",
    "num_examples": "synthetic data: training examples (before --train_fraction).",
    "train_fraction": "Share of the training split every model trains on (a seeded random "
                      "subset, written once to <out_dir>/data/).",
    "capacities": "Prior generator per model, WIDTHxDEPTH separated by commas (model 1 "
                  "first): DEPTH hidden Dense(WIDTH, ReLU) layers, then Dense(m).",
    "epochs": "Epochs per model (over the subset; a resumed sweep trains up to this).",
    "steps_per_epoch": "Steps per epoch (default: one pass over the subset).",
    "batch_size": "Batch size.",
    "learning_rate": "Adam rate of the auto-encoder.",
    "seed": "Seed of every run (weights, data order, noise) and of the subset.",
    "arch": "Auto-encoder network: dcgan, infogan (images) or mlp.",
    "width": "Auto-encoder base width.",
    "depth": "Hidden layers of the mlp auto-encoder.",
    "latent_dim": "Latent dimension m.",
    "critic_width": "Units per layer of the latent WGAN-GP critic (same for every model).",
    "critic_depth": "Hidden layers of the critic.",
    "critic_steps": "Critic updates per step.",
    "critic_learning_rate": "Adam rate of the critic.",
    "generator_learning_rate": "Adam rate of the prior generator G.",
    "encoder_adversary_learning_rate": "Adam rate of the encoder's adversarial update.",
    "adversary_beta_1": "Adam beta_1 of the critic, prior and encoder players.",
    "adversary_beta_2": "Adam beta_2 of those players.",
    "train_flags": "Further scripts/train.py flags for every run, e.g. "
                   "\"--reg_weight=2 --prior_noise_dim=32\" (not the ones this script has).",
    "num_samples": "Samples per metric (default: min(10000, the test split's size)).",
    "features": "FID features: domain, inception or raw (default: domain for labelled "
                "images, raw otherwise).",
    "inception_weights": "Keras InceptionV3 notop weights file (--features=inception).",
    "prd_runs": "PRD k-means runs averaged.",
    "figures": "Also write evaluate's PNG figures into each run's eval/ folder.",
    "out_dir": "Output folder: runs/, data/, feature_cache/, prior_capacity.{json,md,png}.",
}
cli.define_flags(PriorCapacityConfig, HELP)


def main(argv):
  def sweep():
    config = cli.config_from_flags(PriorCapacityConfig)  # Validates: no TensorFlow yet.
    experiments.check_sweep_inputs(config)
    cli.import_quietly("rae_tf.training")  # The slow TensorFlow import, quietly.
    command = " ".join(shlex.quote(a) for a in ["python"] + sys.argv)
    experiments.run_prior_capacity_sweep(config, command=command)

  cli.run_or_exit(sweep, argv, interrupted="interrupted; run the same command again to "
                  "resume the sweep where it stopped")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
