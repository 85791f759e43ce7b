r"""Filter gradients of dcgan's convolutions: TensorFlow's kernel against conv_ops' matmul form.

  python benchmarks/conv_grad_speed.py                 # widths 32 and 128, float32 and bfloat16
  python benchmarks/conv_grad_speed.py --widths=128 --dtypes=bfloat16 --repeats=50

For each convolution of the 28x28 dcgan net (batch --batch_size) times the filter gradient
two ways: `tf.compat.v1.nn.conv2d_backprop_filter` (oneDNN's backward-weights primitive on
CPUs) and `rae_tf.networks.conv_ops.filter_gradient` (extract_patches + one matmul), each a
tf.function, --repeats calls after 3 untimed ones; prints a Markdown table with the relative
difference of the two results and which form `conv_ops.faster` picks. These numbers are what
the rule in `conv_ops.faster` was read from; time on a quiet machine.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

flags.DEFINE_list("widths", ["32", "128"], "dcgan widths.")
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Dtypes of the tensors.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("repeats", 20, "Timed calls per form.")
FLAGS = flags.FLAGS


def layers(width: int):
  """(name, big H, big channels, small h, small channels, kernel, padding) per conv:
  `big` is a convolution's input (a transposed convolution's output), as TF's conv2d sees it."""
  w = width
  return [("enc. conv 28->14", 28, 1, 14, w, 4, "SAME"),
          ("enc. conv 14->7", 14, w, 7, 2 * w, 4, "SAME"),
          ("enc. conv 8->3", 8, 2 * w, 3, 4 * w, 4, "VALID"),
          ("dec. convT 4->7", 7, 4 * w, 4, 8 * w, 3, "SAME"),
          ("dec. convT 7->15", 15, 2 * w, 7, 4 * w, 3, "VALID"),
          ("dec. convT 14->29", 29, 1, 14, 2 * w, 3, "VALID")]


def _ms(fn, *args) -> float:
  for _ in range(3):
    result = fn(*args)
  start = time.perf_counter()
  for _ in range(FLAGS.repeats):
    result = fn(*args)
  result.numpy()
  return 1000.0 * (time.perf_counter() - start) / FLAGS.repeats


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rae_tf.networks import conv_ops  # pylint: disable=g-import-not-at-top

  print("| width | dtype | layer (output positions) | native ms | matmul ms | rel. diff | "
        "conv_ops picks |")
  print("| ---: | --- | --- | ---: | ---: | ---: | --- |")
  for width in (int(w) for w in FLAGS.widths):
    for dtype in FLAGS.dtypes:
      for name, big, cb, small, cs, k, padding in layers(width):
        b = FLAGS.batch_size
        big_t = tf.cast(tf.random.normal([b, big, big, cb]), dtype)
        small_t = tf.cast(tf.random.normal([b, small, small, cs]), dtype)
        shape = [k, k, cb, cs]
        native = tf.function(lambda x, y, shape=shape, padding=padding:
                             tf.compat.v1.nn.conv2d_backprop_filter(
                                 x, shape, y, [1, 2, 2, 1], padding))
        matmul = tf.function(lambda x, y, shape=shape, padding=padding:
                             conv_ops.filter_gradient(x, y, shape, (2, 2), padding))
        a = tf.cast(native(big_t, small_t), tf.float32)
        diff = float(tf.reduce_max(tf.abs(a - tf.cast(matmul(big_t, small_t), tf.float32)))
                     / tf.reduce_max(tf.abs(a)))
        picks = "matmul" if conv_ops.faster([b, small, small, cs], shape, dtype) else "native"
        print(f"| {width} | {dtype} | {name} ({small * small}) | {_ms(native, big_t, small_t):.1f} "
              f"| {_ms(matmul, big_t, small_t):.1f} | {diff:.1e} | {picks} |", flush=True)


if __name__ == "__main__":
  app.run(main)
