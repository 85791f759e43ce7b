r"""Asks a running TF Serving for samples of a rae_tf model and writes them as a PNG grid.

  docker run -p 8501:8501 -v "$PWD/saved_models:$PWD/saved_models" tensorflow/serving \
      --model_config_file="$PWD/saved_models/models.config"
  python scripts/sample_client.py --server=localhost:8501 --model=quickstart --n=64 \
      --out=grid.png

REST by default (needs neither TensorFlow nor anything beyond numpy and Pillow);
--protocol=grpc talks to TF Serving's gRPC port (8500) and needs
`pip install tensorflow-serving-api`. Seeds are seed..seed+n-1: the same seeds always give
the same images. At most 4096 per request.

Exit status: 0 done; 2 bad flags or no server reachable at --server (connection refused,
unknown host); 1 the server answered with an error, a malformed answer, or too late.
Every failure is one `error:` line on stderr.
"""
import sys

from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import serving

flags.DEFINE_string("server", "localhost:8501", "TF Serving HOST:PORT (REST 8501, gRPC 8500).")
flags.DEFINE_string("model", None, "Served model name (a name in models.config).")
flags.DEFINE_integer("n", 64, f"Number of samples, 1..{serving.MAX_BATCH}.")
flags.DEFINE_string("out", "grid.png", "Output PNG path.")
flags.DEFINE_integer("seed", 0, "First seed (samples use seed..seed+n-1).")
flags.DEFINE_string("signature", "serving_default", "Signature name.")
flags.DEFINE_enum("protocol", "rest", list(serving.PROTOCOLS), "rest or grpc.")
flags.DEFINE_integer("version", None, "Model version (default: the latest served).")
flags.DEFINE_float("timeout", serving.DEFAULT_TIMEOUT, "Seconds to wait for the answer.")
FLAGS = flags.FLAGS


def main(argv):

  def run():
    if not FLAGS.model:
      cli.error_exit("--model is required: the served model name")
    try:
      width, height = serving.sample_grid(
          FLAGS.server, FLAGS.model, FLAGS.n, FLAGS.out, seed=FLAGS.seed,
          signature=FLAGS.signature, protocol=FLAGS.protocol, version=FLAGS.version,
          timeout=FLAGS.timeout)
    except serving.ServerError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1)
    print(f"[rae_tf] {FLAGS.n} samples of {FLAGS.model} ({width}x{height} px): {FLAGS.out}")

  cli.run_or_exit(run, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
