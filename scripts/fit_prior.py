r"""Fits an ex-post prior to a trained run's codes (RAE + GMM, a flow, a 2-stage VAE) and exports it.

  python scripts/fit_prior.py --workdir=runs/quickstart                 # --expost=gmm
  python scripts/fit_prior.py --workdir=runs/quickstart --expost=flow --steps=5000
  python scripts/fit_prior.py --workdir=runs/quickstart --expost=vae
  python scripts/evaluate.py --workdir=runs/quickstart --prior=flow

Saves <workdir>/{gmm,flow,vae}_prior.npz and a SavedModel <export_dir>/<name>_<kind>/<version>
whose serving_default samples the fitted prior. Options a kind does not take are refused:
--components (gmm); --steps, --learning_rate, --batch_size, --width, --depth, --log_every
(flow, vae); --couplings (flow).

Bad input exits with status 2 and one line (checked before TensorFlow loads), a
file-system error with status 1, Ctrl-C with 130. TensorFlow's C++ log is hidden:
--verbosity=0 shows its warnings, --verbosity=1 everything.
"""
from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import eval_config
from rae_tf import export  # Light: its checks need no TensorFlow.
from rae_tf.errors import ConfigError

flags.DEFINE_string("workdir", None, "Training run directory.")
flags.DEFINE_string("expost", "gmm", "Ex-post prior: " + ", ".join(eval_config.EXPOST_KINDS)
                    + " (RAE + GMM; a RealNVP flow; Dai & Wipf's second-stage VAE).")
flags.DEFINE_integer("components", None, "gmm: mixture components (default 10, the RAE paper).")
flags.DEFINE_integer("steps", None, "flow, vae: Adam steps (default 3000).")
flags.DEFINE_float("learning_rate", None, "flow, vae: Adam learning rate (default 1e-3).")
flags.DEFINE_integer("batch_size", None, "flow, vae: codes per step (default 256).")
flags.DEFINE_integer("couplings", None, "flow: affine coupling layers (default 4).")
flags.DEFINE_integer("width", None, "flow, vae: units per hidden layer (default flow 128, "
                     "vae 1024).")
flags.DEFINE_integer("depth", None, "flow, vae: hidden layers per network (default flow 2, "
                     "vae 3).")
flags.DEFINE_integer("log_every", None, "flow, vae: a progress line every N steps (default "
                     "500; 0 = none).")
flags.DEFINE_string("export_dir", "saved_models", "SavedModel root; empty = no export.")
flags.DEFINE_integer("seed", 0, "Fit seed (EM initialisation; initial weights, minibatches).")
flags.DEFINE_integer("limit", None, "Fit on the first LIMIT training examples (default all).")
FLAGS = flags.FLAGS

OPTION_FLAGS = ("components", "steps", "learning_rate", "batch_size", "couplings", "width",
                "depth", "log_every")


def main(argv):
  def fit():
    if not FLAGS.workdir:
      raise ConfigError("--workdir is required: the training run whose codes to fit")
    eval_config.check_run_dir(FLAGS.workdir)
    options = eval_config.expost_options(
        FLAGS.expost, **{name: FLAGS[name].value for name in OPTION_FLAGS})
    if FLAGS.limit is not None and FLAGS.limit < 1:
      raise ConfigError(f"--limit={FLAGS.limit} must be >= 1 (or leave it unset for all "
                        "training examples)")
    if FLAGS.export_dir:
      export.check_export_root(FLAGS.export_dir)
    expost = cli.import_quietly("rae_tf.expost")  # The slow TensorFlow import.
    _, path = expost.fit_for_run(FLAGS.workdir, FLAGS.expost, FLAGS.export_dir or None,
                                 FLAGS.seed, FLAGS.limit, **options)
    print(f"[rae_tf] {FLAGS.expost} prior {options} saved in "
          f"{eval_config.expost_file(FLAGS.workdir, FLAGS.expost)}")
    if path:
      print(f"[rae_tf] SavedModel sampling it: {path}")

  cli.run_or_exit(fit, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
