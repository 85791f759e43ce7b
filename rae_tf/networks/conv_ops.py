"""2-D convolutions whose filter gradient is one matrix product (for TensorFlow on CPUs).

A convolution's filter gradient is patches(input)^T @ output_gradient: every output position
contributes the outer product of the input window it read and its gradient. TensorFlow's
CPU build computes it with oneDNN's dedicated backward-weights primitive, which on the dcgan
shapes (few output positions, many channels) runs far below the machine's matrix-product
rate: the 28x28 decoder's first transposed convolution at width 128 (batch 100) took 69 ms
in float32 and 95 ms in bfloat16 on a 2-core AMX Xeon, against 51 / 20 ms for the same
numbers as `extract_patches` + `matmul` (2026-11-30, benchmarks/conv_grad_speed.py);
`faster` says where the matmul form is used. The forward pass and the input gradient keep
TensorFlow's own kernels; only the filter gradient changes, and it is the same sum in
another order (float32 results agree to ~1e-6 relative).

GPUs have good native kernels (cuDNN) and the patch matrix costs memory, so `conv2d` and
`conv2d_transpose` use the matmul form only when TensorFlow sees no GPU.

The gradient functions are built from differentiable ops, so second derivatives (RAE-GP's
and InjFlow's double backward passes) work through them.
"""
import functools
import math
from typing import Sequence, Tuple

import tensorflow as tf


@functools.lru_cache(maxsize=None)
def matmul_filter_gradient_enabled() -> bool:
  """True when TensorFlow has no GPU: the CPU is where the matmul form is faster."""
  return not tf.config.list_logical_devices("GPU")


def _pads(big: int, small: int, kernel: int, stride: int, padding: str) -> Tuple[int, int]:
  """(before, after) zero padding of a size-`big` axis that TF's conv2d applies when it
  maps it to `small` positions ('VALID': none; 'SAME': the total split low-first)."""
  if padding == "VALID":
    return 0, 0
  total = max((small - 1) * stride + kernel - big, 0)
  return total // 2, total - total // 2


def _output_size(big: int, kernel: int, stride: int, padding: str) -> int:
  """The positions TF's conv2d produces along an axis of size `big`."""
  return -(-big // stride) if padding == "SAME" else (big - kernel) // stride + 1


def supported(big_shape: Sequence, small_shape: Sequence, kernel_size: Sequence[int],
              strides: Sequence[int], padding: str) -> bool:
  """Whether the matmul form applies: no GPU, static spatial sizes, and TF's conv2d maps
  `big_shape` onto `small_shape` (so the padding rule of `_pads` is the one in use)."""
  sizes = list(big_shape[1:3]) + list(small_shape[1:3])
  if (not matmul_filter_gradient_enabled() or padding not in ("SAME", "VALID")
      or any(not isinstance(s, int) for s in sizes)):
    return False
  return all(small == _output_size(big, k, s, padding) for big, small, k, s in
             zip(big_shape[1:3], small_shape[1:3], kernel_size, strides))


def faster(small_shape: Sequence, kernel_shape: Sequence[int], dtype) -> bool:
  """Whether the matmul form beat TensorFlow's filter gradient on this kind of layer.

  `python benchmarks/conv_grad_speed.py` (every dcgan layer at widths 32 and 128, batch 100,
  float32 and bfloat16; 2-core AMX Xeon, 2026-11-30): the matmul form won on every layer
  where at least two of these hold, and elsewhere lost or tied (one exception, 2.6 -> 2.2
  ms, left native):
    * few output positions (<= 4 x 4), where the native primitive has little to split;
    * a 16-bit dtype, where the native primitive ran below its own float32 speed;
    * a large kernel (>= 1M weights), where the product dominates the patch copy.
  E.g. width 128, decoder 4x4 -> 7x7: 69 -> 51 ms (float32), 95 -> 20 ms (bfloat16).
  """
  few_positions = small_shape[1] * small_shape[2] <= 16
  low_precision = tf.as_dtype(dtype) != tf.float32
  large_kernel = math.prod(kernel_shape) >= 1_000_000
  return few_positions + low_precision + large_kernel >= 2


def filter_gradient(big, small, kernel_shape: Sequence[int], strides: Sequence[int],
                    padding: str):
  """d(sum(small * conv2d(big, K))) / dK = patches(big)^T @ small, shaped like K.

  Args:
    big: [B, H, W, Cb], the convolution's input (a transposed convolution's output side).
    small: [B, h, w, Cs], the gradient at (or value of) the convolution's output side.
    kernel_shape: (kh, kw, Cb, Cs).
    strides: (sh, sw).
    padding: "SAME" or "VALID", as TF's conv2d.

  Returns:
    [kh, kw, Cb, Cs] in `big`'s dtype.
  """
  kh, kw, cb, cs = kernel_shape
  (top, bottom), (left, right) = (
      _pads(big.shape[i + 1], small.shape[i + 1], (kh, kw)[i], strides[i], padding)
      for i in range(2))
  if top or bottom or left or right:
    big = tf.pad(big, [[0, 0], [top, bottom], [left, right], [0, 0]])
  # extract_patches orders each patch (row, column, channel): the kernel's own layout.
  patches = tf.image.extract_patches(big, [1, kh, kw, 1], [1, strides[0], strides[1], 1],
                                     [1, 1, 1, 1], "VALID")
  product = tf.matmul(tf.reshape(patches, [-1, kh * kw * cb]),
                      tf.reshape(small, [-1, cs]), transpose_a=True)
  return tf.reshape(product, [kh, kw, cb, cs])


def conv2d(x, kernel, strides: Sequence[int], padding: str):
  """tf.nn.conv2d (NHWC, no dilation) with the matmul filter gradient.

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout].
    strides: (sh, sw).
    padding: "SAME" or "VALID".

  Returns:
    [B, h, w, Cout], exactly tf.nn.conv2d's result.
  """
  strides = tuple(strides)

  @tf.custom_gradient
  def forward(x, kernel):
    y = tf.nn.conv2d(x, kernel, strides, padding)

    def grad(dy):
      dx = tf.nn.conv2d_transpose(dy, kernel, tf.shape(x), strides, padding)
      return dx, filter_gradient(x, dy, kernel.shape, strides, padding)
    return y, grad

  y_shape = [None] + [_output_size(x.shape[i + 1], kernel.shape[i], strides[i], padding)
                      if isinstance(x.shape[i + 1], int) else None for i in range(2)]
  if not (supported(x.shape, y_shape, kernel.shape[:2], strides, padding)
          and faster(y_shape, kernel.shape, x.dtype)):
    return tf.nn.conv2d(x, kernel, strides, padding)
  return forward(x, kernel)


def conv2d_transpose(x, kernel, output_shape, strides: Sequence[int], padding: str):
  """tf.nn.conv2d_transpose (NHWC, no dilation) with the matmul filter gradient.

  Args:
    x: [B, h, w, Cin].
    kernel: [kh, kw, Cout, Cin] (Keras' Conv2DTranspose layout).
    output_shape: [B, H, W, Cout] (a list whose batch entry may be a tensor); H and W static.
    strides: (sh, sw).
    padding: "SAME" or "VALID".

  Returns:
    [B, H, W, Cout], exactly tf.nn.conv2d_transpose's result.
  """
  strides = tuple(strides)

  @tf.custom_gradient
  def forward(x, kernel):
    y = tf.nn.conv2d_transpose(x, kernel, output_shape, strides, padding)

    def grad(dy):
      dx = tf.nn.conv2d(dy, kernel, strides, padding)
      return dx, filter_gradient(dy, x, kernel.shape, strides, padding)
    return y, grad

  big_shape = [None, output_shape[1], output_shape[2]]
  if not (supported(big_shape, x.shape, kernel.shape[:2], strides, padding)
          and faster(x.shape, kernel.shape, x.dtype)):
    return tf.nn.conv2d_transpose(x, kernel, output_shape, strides, padding)
  return forward(x, kernel)

