r"""Evaluates a trained model: FID, precision/recall, NAC, active dims, figures.

  python scripts/evaluate.py --workdir=runs/quickstart
  python scripts/evaluate.py --workdir=runs/rae_l2_mnist --features=inception \
      --inception_weights=/path/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
  python scripts/evaluate.py --export_dir=saved_models/quickstart/1 --dataset=mnist10k
  python scripts/evaluate.py --workdir=runs/quickstart --prior=flow   # after fit_prior.py

Writes <out_dir>/metrics.json and PNG figures, the same scalars and images to the run's
TensorBoard (tensorboard/eval), and prints a short table. "domain" features give a
*domain FID*, comparable only with other domain FIDs, never with published Inception FIDs.
By default every metric uses min(10000, the test split's size) samples.

Bad input exits with status 2 and one line (checked before TensorFlow loads), a
file-system error with status 1, Ctrl-C with 130. TensorFlow's C++ log is hidden:
--verbosity=0 shows its warnings, --verbosity=1 everything.
"""
from absl import app

from rae_tf import cli
from rae_tf import eval_config
from rae_tf.eval_config import EvalConfig

HELP = {
    "workdir": "Training run directory to evaluate (config.json + checkpoints/).",
    "export_dir": "Or: a SavedModel version directory (saved_models/<name>/<version>); "
                  "then --dataset is required.",
    "dataset": "Data set to compare with (default: the run's).",
    "data_dir": "tensorflow-datasets directory (default: the run's).",
    "num_samples": "Generated samples / reconstructions / test images per metric "
                   "(default: 10000 as in the papers, or the test split's size when "
                   "smaller; at most the test split's size).",
    "features": "Feature network: domain (classifier trained on the data's labels; "
                "'domain FID'), inception (needs --inception_weights) or raw (the data). "
                "Default: domain for labelled images, raw otherwise.",
    "inception_weights": "Local Keras InceptionV3 notop weights file "
                         "(inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5).",
    "cache_dir": "Domain classifier cache (default: feature_cache/ beside --out_dir).",
    "out_dir": "Output folder (default: <workdir>/eval, or eval/<name>-<version>).",
    "batch_size": "Batch size for sampling, encoding and reconstruction.",
    "seed": "First sample seed (samples use seeds seed..seed+num_samples-1).",
    "draws": "Independent sample draws for the generation FID (draw k uses seeds "
             "seed + k * num_samples ...): fid_generation is their mean, "
             "fid_generation_sd their standard deviation. One draw's FID carries its "
             "sampling noise (about +-10 % with 1,000 samples); PRD and precision/recall "
             "use the first draw.",
    "prd_runs": "PRD k-means runs averaged (paper: 10).",
    "domain_epochs": "Training epochs of the domain classifier when it is not cached.",
    "embedding": "2-D embedding of the codes for the scatter plot: pca or tsne.",
    "attribute": "Attribute of the manipulation figure: a class id for labelled data "
                 "(default: the most frequent class) or a CelebA attribute name (default "
                 "Smiling).",
    "prior": "Sample from the model's trained prior, or from an ex-post prior fitted by "
             "scripts/fit_prior.py --expost=KIND: gmm (RAE + GMM), flow (RealNVP) or vae "
             "(Dai & Wipf's second stage).",
    "figures": "Write PNG figures (samples, reconstructions, interpolations, ...).",
}
cli.define_flags(EvalConfig, HELP)


def main(argv):
  def evaluate():
    config = cli.config_from_flags(EvalConfig)  # Checks the flags: no TensorFlow yet.
    eval_config.check_inputs(config)  # The files they name.
    evaluation = cli.import_quietly("rae_tf.evaluation")  # The slow TensorFlow import.
    results = evaluation.evaluate(config)
    print(f"[rae_tf] {results['run']} on {results['dataset']}:")
    print(evaluation.format_table(results))
    print(f"[rae_tf] metrics.json and figures in {results['out_dir']}")

  cli.run_or_exit(evaluate, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
