r"""Fits an ex-post GMM prior to a trained run's codes (RAE + GMM) and exports it.

  python scripts/fit_prior.py --workdir=runs/quickstart
  python scripts/evaluate.py --workdir=runs/quickstart --prior=gmm --num_samples=997

Saves <workdir>/gmm_prior.npz and a SavedModel <export_dir>/<name>_gmm/<version> whose
serving_default samples the mixture.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from rae_tf import cli

flags.DEFINE_string("workdir", None, "Training run directory.")
flags.DEFINE_integer("components", 10, "Mixture components (RAE paper: 10).")
flags.DEFINE_string("export_dir", "saved_models", "SavedModel root; empty = no export.")
flags.DEFINE_integer("seed", 0, "EM initialisation seed.")
flags.DEFINE_integer("limit", None, "Fit on the first LIMIT training examples (default all).")
FLAGS = flags.FLAGS


def main(argv):
  logging.set_verbosity(logging.WARNING)

  def fit():
    if not FLAGS.workdir:
      cli.error_exit("--workdir is required: the training run whose codes to fit")
    from rae_tf import expost  # pylint: disable=g-import-not-at-top
    prior, path = expost.fit_gmm_for_run(FLAGS.workdir, FLAGS.components,
                                         FLAGS.export_dir or None, FLAGS.seed, FLAGS.limit)
    print(f"[rae_tf] {prior.num_components}-component GMM saved in "
          f"{os.path.join(FLAGS.workdir, expost.GMM_FILE)}")
    if path:
      print(f"[rae_tf] SavedModel sampling the GMM: {path}")

  cli.run_or_exit(fit, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
