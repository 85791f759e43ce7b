r"""How good can any prior be for a trained auto-encoder? Decode its own training codes.

  python benchmarks/prior_ceiling.py --workdir=RUN --cache_dir=benchmarks/domain_classifiers

A prior fitted to (or trained on) the codes of the training images can at best reproduce
their distribution, the aggregate posterior. This script samples it exactly: it encodes
--num_samples random training images, decodes the codes, and measures those images against
the test images as scripts/evaluate.py measures prior samples (domain FID, improved
precision / recall with k = 3), beside the test images' own reconstructions. The numbers
bound what a better prior (GMM, flow, FlexAE's learned prior) could reach with this
auto-encoder; the gap between them and a row's generation numbers is the prior's share.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from rae_tf import cli  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("workdir", "", "Run directory of a trained model (scripts/train.py).")
flags.DEFINE_string("cache_dir", "", "Domain-classifier cache (as scripts/evaluate.py).")
flags.DEFINE_integer("num_samples", 10000, "Training codes decoded; test images compared.")
flags.DEFINE_integer("seed", 0, "Which training images are drawn.")
flags.DEFINE_integer("batch_size", 500, "Encode / decode batch size.")
flags.DEFINE_string("json_out", "", "Also write the numbers as JSON here.")
FLAGS = flags.FLAGS


def main(argv):
  def ceiling():
    import numpy as np  # pylint: disable=g-import-not-at-top
    from rae_tf import metrics  # pylint: disable=g-import-not-at-top
    from rae_tf import runs  # pylint: disable=g-import-not-at-top
    from rae_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
    from rae_tf.eval_config import EvalConfig  # pylint: disable=g-import-not-at-top
    from rae_tf.metrics import features  # pylint: disable=g-import-not-at-top

    if not FLAGS.workdir or not FLAGS.cache_dir:
      raise ConfigError("give --workdir (a trained run) and --cache_dir (the domain "
                        "classifier cache, e.g. benchmarks/domain_classifiers)")
    model, _, _, source = runs.load_run(FLAGS.workdir)
    generator = runs.KerasGenerator(model)
    x_train, y_train = source.arrays("train")
    x_test, y_test = source.arrays("test", limit=FLAGS.num_samples)
    # scripts/evaluate.py's classifier settings, so its cached classifier is the one used.
    net = features.get_domain_features(FLAGS.cache_dir, x_train, y_train, *source.arrays("test"),
                                       epochs=EvalConfig.domain_epochs)
    pick = np.random.default_rng(FLAGS.seed).choice(len(x_train), len(x_test), replace=False)
    print(f"[prior_ceiling] encoding and decoding {len(pick)} training images ...", flush=True)
    codes = runs.batched(generator.encode, x_train[pick], FLAGS.batch_size)
    decoded = runs.batched(generator.decode, codes, FLAGS.batch_size)
    reconstructed = runs.batched(generator.reconstruct, x_test, FLAGS.batch_size)
    f_test = net.features(x_test)
    result = {"workdir": FLAGS.workdir, "num_samples": len(x_test),
              "domain_classifier_id": net.fingerprint}
    for name, images in (("decoded_training_codes", decoded),
                         ("test_reconstructions", reconstructed)):
      f = net.features(images)
      pr = metrics.improved_precision_recall(f_test, f)
      result[name] = {"fid": metrics.fid_from_features(f_test, f),
                      "precision": pr.precision, "recall": pr.recall}
      print(f"[prior_ceiling] {name:24s} domain FID {result[name]['fid']:.2f}, precision "
            f"{pr.precision:.3f}, recall {pr.recall:.3f}", flush=True)
    if FLAGS.json_out:
      with open(FLAGS.json_out, "w") as f:
        json.dump({k: (float(v) if isinstance(v, np.floating) else v)
                   for k, v in result.items()}, f, indent=2, default=float)

  cli.run_or_exit(ceiling, argv)


if __name__ == "__main__":
  app.run(main)
