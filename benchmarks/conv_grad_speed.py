r"""Filter gradients of dcgan's convolutions: TensorFlow's kernel against conv_ops' matmul form.

  python benchmarks/conv_grad_speed.py                 # widths 32 and 128, float32 and bfloat16
  python benchmarks/conv_grad_speed.py --widths=128 --dtypes=bfloat16 --repeats=50

For each convolution of the 28x28 dcgan net (batch --batch_size) times the filter gradient
two ways: `tf.compat.v1.nn.conv2d_backprop_filter` (oneDNN's backward-weights primitive on
CPUs) and `rae_tf.networks.conv_ops.filter_gradient` (extract_patches + one matmul), each a
tf.function, --repeats calls after 3 untimed ones; prints a Markdown table with the relative
difference of the two results and which form `conv_ops.faster` picks. These numbers are what
the rule in `conv_ops.faster` was read from; time on a quiet machine.

`--passes=all` times each layer's whole training pass instead (forward, input and filter
gradients of sum(y * c)) in three forms: TensorFlow's kernels, conv_ops' matmul filter
gradient, and conv_ops' whole-matmul form (the rule in `conv_ops.whole_matmul`):

  python benchmarks/conv_grad_speed.py --passes=all --widths=32,128
  python benchmarks/conv_grad_speed.py --passes=all --sizes=32,64 --widths=128  # other nets
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

flags.DEFINE_list("widths", ["32", "128"], "dcgan widths.")
flags.DEFINE_list("sizes", ["28"], "Image sizes of the dcgan nets (28, 32, 64).")
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Dtypes of the tensors.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("repeats", 20, "Timed calls per form.")
flags.DEFINE_enum("passes", "filter", ["filter", "all"],
                  "filter: the filter gradient alone; all: forward + both gradients.")
FLAGS = flags.FLAGS


def layers(width: int, size: int = 28):
  """(name, big H, big channels, small h, small channels, kernel, padding) per conv of the
  size x size dcgan net: `big` is a convolution's input (a transposed convolution's
  output), as TF's conv2d sees it."""
  w = width
  if size == 28:
    return [("enc. conv 28->14", 28, 1, 14, w, 4, "SAME"),
            ("enc. conv 14->7", 14, w, 7, 2 * w, 4, "SAME"),
            ("enc. conv 8->3", 8, 2 * w, 3, 4 * w, 4, "VALID"),
            ("dec. convT 4->7", 7, 4 * w, 4, 8 * w, 3, "SAME"),
            ("dec. convT 7->15", 15, 2 * w, 7, 4 * w, 3, "VALID"),
            ("dec. convT 14->29", 29, 1, 14, 2 * w, 3, "VALID")]
  # 32 / 64: k4 s2 'same' ladders (3 colour channels), see rae_tf/networks/dcgan.py.
  enc = [(size >> i, 3 if i == 0 else w << (i - 1), size >> (i + 1), w << i) for i in range(4)]
  dec = [(8, 4 * w, 4, 8 * w)] + [(8 << i, (4 * w) >> i, 4 << i, (8 * w) >> i)
                                  for i in range(1, size.bit_length() - 3)]
  dec[-1] = (dec[-1][0], 3) + dec[-1][2:]
  return ([(f"enc. conv {b}->{s}", b, cb, s, cs, 4, "SAME") for b, cb, s, cs in enc]
          + [(f"dec. convT {s}->{b}", b, cb, s, cs, 4, "SAME") for b, cb, s, cs in dec])


def _rows():
  """(width, dtype, layer row) for every --widths x --dtypes x --sizes layer."""
  for width in (int(w) for w in FLAGS.widths):
    for dtype in FLAGS.dtypes:
      for size in FLAGS.sizes:
        for row in layers(width, int(size)):
          yield width, dtype, row


def _ms(fn, *args) -> float:
  for _ in range(3):
    result = fn(*args)
  start = time.perf_counter()
  for _ in range(FLAGS.repeats):
    result = fn(*args)
  result.numpy()
  return 1000.0 * (time.perf_counter() - start) / FLAGS.repeats


def _whole_pass(tf, conv_ops, form: str, transpose: bool, padding: str, big_hw):
  """A tf.function (x, kernel, c) -> [y, dx, dkernel] with conv_ops forced to `form`."""
  def conv(x, kernel):
    if form == "native":
      return (tf.nn.conv2d_transpose(x, kernel, [tf.shape(x)[0], *big_hw, kernel.shape[2]],
                                     (2, 2), padding) if transpose
              else tf.nn.conv2d(x, kernel, (2, 2), padding))
    saved = conv_ops.faster, conv_ops.whole_matmul
    conv_ops.faster = lambda *args: form == "filter matmul"
    conv_ops.whole_matmul = lambda *args: form == "whole matmul"
    try:  # the forms are chosen while tracing
      return (conv_ops.conv2d_transpose(x, kernel, [tf.shape(x)[0], *big_hw, kernel.shape[2]],
                                        (2, 2), padding) if transpose
              else conv_ops.conv2d(x, kernel, (2, 2), padding))
    finally:
      conv_ops.faster, conv_ops.whole_matmul = saved

  @tf.function
  def step(x, kernel, c):
    with tf.GradientTape() as tape:
      tape.watch([x, kernel])
      y = conv(x, kernel)
      loss = tf.reduce_sum(tf.cast(y, tf.float32) * c)
    return [y] + tape.gradient(loss, [x, kernel])
  return step


def _all_passes(tf, conv_ops):
  forms = ("native", "filter matmul", "whole matmul")
  print("| width | dtype | layer | " + " | ".join(f"{f} ms" for f in forms)
        + " | max rel. diff | conv_ops picks |")
  print("| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |")
  for width, dtype, (name, big, cb, small, cs, k, padding) in _rows():
    transpose, b = name.startswith("dec."), FLAGS.batch_size
    x = tf.cast(tf.random.normal([b] + ([small, small, cs] if transpose
                                        else [big, big, cb])), dtype)
    kernel = tf.cast(tf.random.normal([k, k, cb, cs]) * 0.05, dtype)
    c = tf.random.normal([b] + ([big, big, cb] if transpose else [small, small, cs]))
    times, results = [], []
    for form in forms:
      step = _whole_pass(tf, conv_ops, form, transpose, padding, [big, big])
      times.append(_ms(lambda *a, step=step: step(*a)[-1], x, kernel, c))
      results.append([tf.cast(r, tf.float32) for r in step(x, kernel, c)])
    diff = max(float(tf.reduce_max(tf.abs(a - r)) / tf.reduce_max(tf.abs(a)))
               for other in results[1:] for a, r in zip(results[0], other))
    small_shape, kshape = [b, small, small, cs], [k, k, cb, cs]
    picks = ("whole matmul" if conv_ops.whole_matmul(small_shape, kshape) else
             "filter matmul" if conv_ops.faster(small_shape, kshape, dtype) else "native")
    print(f"| {width} | {dtype} | {name} | " + " | ".join(f"{t:.1f}" for t in times)
          + f" | {diff:.1e} | {picks} |", flush=True)


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rae_tf.networks import conv_ops  # pylint: disable=g-import-not-at-top

  if FLAGS.passes == "all":
    _all_passes(tf, conv_ops)
    return

  print("| width | dtype | layer (output positions) | native ms | matmul ms | rel. diff | "
        "conv_ops picks |")
  print("| ---: | --- | --- | ---: | ---: | ---: | --- |")
  for width, dtype, (name, big, cb, small, cs, k, padding) in _rows():
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
