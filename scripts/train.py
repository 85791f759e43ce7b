r"""Trains a regularized auto-encoder model, writes TensorBoard logs and a SavedModel.

  python scripts/train.py --flagfile=configs/quickstart.flags
  python scripts/train.py --flagfile=configs/wae_mmd.flags --latent_dim=8 --workdir=runs/w8

Re-running the same command resumes from the workdir's last checkpoint. Bad input exits
with status 2 and one line that says what to fix (checked before TensorFlow loads); a
diverged run with status 3, a file-system error (disk full, permission denied) with status
1, Ctrl-C with 130. TensorFlow's C++ log is hidden: --verbosity=0 shows its warnings,
--verbosity=1 everything.
"""
import os

from absl import app
from absl import flags

from rae_tf import catalog
from rae_tf import cli
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

HELP = {
    "model": "Registered model: " + ", ".join(catalog.MODELS) + " (README: Models).",
    "latent_dim": "Latent dimension m.",
    "arch": "Network architecture: mlp (vectors or images), dcgan, infogan (images).",
    "width": "Base width: channels of the first conv (dcgan, infogan) or units per layer (mlp).",
    "depth": "Hidden layers of the mlp encoder/decoder.",
    "dataset": "Data: synthetic, synthetic_image, mnist10k (bundled, offline), mnist, "
               "fashion_mnist, cifar10, celeb_a (tensorflow-datasets), or npz:PATH.",
    "data_dir": "tensorflow-datasets data directory (pre-downloaded data sets).",
    "true_latent_dim": "synthetic data: dimension n of the true latent z ~ N(0, I_n).",
    "ambient_dim": "synthetic data: dimension d of x = f(z).",
    "num_examples": "synthetic data: number of training examples.",
    "epochs": "Total epochs (a resumed run trains up to this number).",
    "steps_per_epoch": "Steps per epoch (default: one pass over the training set).",
    "batch_size": "Global batch size (split over replicas).",
    "learning_rate": "Learning rate of the auto-encoder's optimizer.",
    "adam_beta_1": "Adam beta_1 of the auto-encoder.",
    "lr_drops": "Step schedule EPOCH:FACTOR,...: divide every optimizer's learning rate by "
                "FACTOR from EPOCH on, cumulatively (WAE: 30:2,50:5). Replaces maskaae's own "
                "drop (--mask_rate_drop_epoch).",
    "plateau_patience": "If > 0: halve the auto-encoder's learning rate when the epoch loss "
                        "has not improved for this many epochs (RAE: 5).",
    "seed": "Seed of every random choice: initial weights of every network, data order and "
            "the per-step noise. Same flags + seed on the same machine = bit-identical "
            "checkpoints on a CPU.",
    "deterministic": "Also turn on TensorFlow op determinism "
                     "(tf.config.experimental.enable_op_determinism): needed for "
                     "bit-identical runs on GPUs, where some kernels are otherwise "
                     "non-deterministic; costs speed there (none measurable on a CPU).",
    "strategy": "tf.distribute strategy: default (one device), mirrored (all GPUs, or "
                "--cpu_devices logical CPUs) or multi_worker (MultiWorkerMirroredStrategy; "
                "every worker runs the same command with its own TF_CONFIG).",
    "mixed_precision": "none (float32), bfloat16 or float16: every network computes in "
                       "that precision with float32 variables (Keras mixed_* policies); "
                       "losses, checkpoints and exports stay float32; float16 adds "
                       "dynamic loss scaling to every optimizer.",
    "cpu_devices": "Split the CPU into this many logical devices (to try --strategy=mirrored "
                   "without GPUs); 0 = leave as is.",
    "likelihood": "Decoder likelihood: bernoulli, gaussian (fixed variance), mse, "
                  "gaussian_learned (default: the model's).",
    "prior_variance": "sigma_z^2 used for the MMD kernel scale C = 2*m*sigma_z^2.",
    "critic_width": "Units per layer of the latent critic (wae_gan, aae, flexae, maskaae).",
    "critic_depth": "Hidden layers of the latent critic.",
    "prior": "Latent prior: standard_normal, learned (FlexAE: z = G(eps), trained by its own "
             "player), flow (RealNVP, explicit density), vamp (vae_vamp's pseudo-inputs) or "
             "density_ratio (vae_iop: N(0, I) resampled by its critic). Default: the "
             "model's.",
    "prior_width": "Units per layer of the learned prior's generator G (FlexAE authors: "
                   "1024) or of each flow coupling network.",
    "prior_depth": "Hidden layers of the generator G (authors: 4) or of each coupling net.",
    "prior_noise_dim": "Noise size m' of the learned prior (0 = m; the seed asks m' >= m).",
    "prior_noise": "Base distribution of the learned prior's noise: normal N(0, I) or "
                   "uniform U(-1, 1).",
    "flow_couplings": "Affine coupling layers of the flow prior (flexae_flow).",
    "prior_refine_steps": "After training, fit the learned prior (critic + generator, or "
                          "the flow) to the final codes of the training set for this many "
                          "more steps, the auto-encoder frozen (0 = off). Cheap: no images.",
    "prior_refine_half_life": "Halve the prior players' rates every this many refinement "
                              "steps so the adversarial game settles instead of stopping "
                              "mid-oscillation (0 = constant rates).",
    "workdir": "Run directory: TensorBoard logs, checkpoints, config.json.",
    "export_dir": "SavedModel root (TF Serving layout <export_dir>/<name>/<version>); "
                  "empty = no export.",
    "export_name": "Model name under --export_dir (default: --model).",
    "log_every_steps": "Write per-step losses to TensorBoard every this many steps.",
    "num_image_samples": "Prior samples in the per-epoch TensorBoard sample grid.",
    "checkpoint_every_steps": "Also checkpoint every this many steps (0 = only at the end "
                              "of each epoch): a killed run loses at most this many steps.",
}


cli.define_flags(TrainConfig, HELP)
FLAGS = flags.FLAGS


def main(argv):
  def train():
    config = cli.config_from_flags(TrainConfig)  # Names and sizes: no TensorFlow yet.
    catalog.check_dataset_file(config.dataset)
    if config.strategy == "multi_worker" and not os.environ.get("TF_CONFIG"):
      raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                        "(the cluster's workers and this task's index) in every worker")
    training = cli.import_quietly("rae_tf.training")  # The slow TensorFlow import.
    training.train(config)

  cli.run_or_exit(train, argv, interrupted="interrupted; run the same command again to "
                  "resume from the last checkpoint")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
