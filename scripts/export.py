r"""Re-exports a finished training run as a SavedModel for TF Serving, without training.

  python scripts/export.py --workdir=runs/quickstart
  python scripts/export.py --workdir=runs/quickstart --export_dir=saved_models \
      --export_name=quickstart

Loads <workdir>/config.json and the latest checkpoint, writes the next version
<export_dir>/<name>/<version> (name: the run's export name) and rewrites
<export_dir>/models.config. Prints the version directory. Bad input (a missing run, no
checkpoint, an --export_dir that is a file or not writable) is one `error:` line and exit
status 2, and nothing is written.
"""

from absl import app
from absl import flags

from rae_tf import cli

flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints/).")
flags.DEFINE_string("export_dir", "saved_models", "SavedModel root (TF Serving base paths "
                    "are <export_dir>/<name>; models.config is written there).")
flags.DEFINE_string("export_name", None, "Model name (default: the run's --export_name, "
                    "else its model; with an ex-post --prior plus '_<prior>').")
flags.DEFINE_enum("prior", "trained", ["trained", "gmm", "flow", "vae"],
                  "Export the model's own prior, or an ex-post prior fitted by "
                  "scripts/fit_prior.py --expost=gmm|flow|vae.")
FLAGS = flags.FLAGS


def main(argv):
  def export():
    if not FLAGS.workdir:
      cli.error_exit("--workdir is required: the training run to export")
    from rae_tf import export as rae_export  # pylint: disable=g-import-not-at-top
    # Bad input fails here, before TensorFlow loads and before anything is written.
    rae_export.check_export_run(FLAGS.workdir, FLAGS.export_dir, FLAGS.export_name,
                                FLAGS.prior)
    expost = cli.import_quietly("rae_tf.expost")  # The slow TF import, without its log.
    print(expost.export_run(FLAGS.workdir, FLAGS.export_dir, FLAGS.export_name,
                            prior=FLAGS.prior))

  cli.run_or_exit(export, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
