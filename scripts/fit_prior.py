r"""Fits an ex-post GMM prior to a trained run's codes (RAE + GMM) and exports it.

  python scripts/fit_prior.py --workdir=runs/quickstart
  python scripts/evaluate.py --workdir=runs/quickstart --prior=gmm

Saves <workdir>/gmm_prior.npz and a SavedModel <export_dir>/<name>_gmm/<version> whose
serving_default samples the mixture.

Bad input exits with status 2 and one line (checked before TensorFlow loads), a
file-system error with status 1, Ctrl-C with 130. TensorFlow's C++ log is hidden:
--verbosity=0 shows its warnings, --verbosity=1 everything.
"""
import os

from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import eval_config
from rae_tf.errors import ConfigError

flags.DEFINE_string("workdir", None, "Training run directory.")
flags.DEFINE_integer("components", 10, "Mixture components (RAE paper: 10).")
flags.DEFINE_string("export_dir", "saved_models", "SavedModel root; empty = no export.")
flags.DEFINE_integer("seed", 0, "EM initialisation seed.")
flags.DEFINE_integer("limit", None, "Fit on the first LIMIT training examples (default all).")
FLAGS = flags.FLAGS


def main(argv):
  def fit():
    if not FLAGS.workdir:
      raise ConfigError("--workdir is required: the training run whose codes to fit")
    eval_config.check_run_dir(FLAGS.workdir)
    if FLAGS.components < 1:
      raise ConfigError(f"--components={FLAGS.components} must be >= 1")
    if FLAGS.limit is not None and FLAGS.limit < 1:
      raise ConfigError(f"--limit={FLAGS.limit} must be >= 1 (or leave it unset for all "
                        "training examples)")
    expost = cli.import_quietly("rae_tf.expost")  # The slow TensorFlow import.
    prior, path = expost.fit_gmm_for_run(FLAGS.workdir, FLAGS.components,
                                         FLAGS.export_dir or None, FLAGS.seed, FLAGS.limit)
    print(f"[rae_tf] {prior.num_components}-component GMM saved in "
          f"{os.path.join(FLAGS.workdir, expost.GMM_FILE)}")
    if path:
      print(f"[rae_tf] SavedModel sampling the GMM: {path}")

  cli.run_or_exit(fit, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
