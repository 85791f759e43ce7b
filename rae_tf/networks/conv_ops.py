"""2-D convolutions as matrix products where that is faster (for TensorFlow on CPUs).

A convolution's filter gradient is patches(input)^T @ output_gradient: every output position
contributes the outer product of the input window it read and its gradient. TensorFlow's
CPU build computes it with oneDNN's dedicated backward-weights primitive, which on the dcgan
shapes (few output positions, many channels) runs far below the machine's matrix-product
rate: the 28x28 decoder's first transposed convolution at width 128 (batch 100) took 69 ms
in float32 and 95 ms in bfloat16 on a 2-core AMX Xeon, against 51 / 20 ms for the same
numbers as a patch matrix + `matmul` (2026-11-30, benchmarks/conv_grad_speed.py);
`faster` says where the matmul filter gradient is used, with the forward pass and the
input gradient left to TensorFlow's own kernels. Every form computes the same sums in
another order (float32 results agree to ~1e-6 relative).

GPUs have good native kernels (cuDNN) and the patch matrix costs memory, so `conv2d` and
`conv2d_transpose` use the matmul forms only when TensorFlow sees no GPU.

Where the small side has few positions and the kernel is large (`whole_matmul`), the
whole convolution is matrix products: a convolution is patches @ kernel, its patch matrix
one gather of the input (`patches`; autodiff's input gradient is a segment sum, not the
slow gradient of extract_patches); a transposed convolution runs one product per output
phase (the sub-pixel form: with stride s, output rows r, r + s, r + 2s, ... each see a
fixed subset of the kernel taps, so no product touches an inserted zero), and its gradients
share one patch matrix of the output gradient. E.g. width 128, batch 100, forward and
both gradients (benchmarks/conv_passes_amx.md, 2-core AMX Xeon, before the gathers):
encoder 8x8 -> 3x3 84 -> 54 ms in float32, 62 -> 24 ms in bfloat16; decoder 4x4 -> 7x7
211 -> 152 ms, 170 -> 42 ms; on a 2-core Zen 5 with the gathers
(benchmarks/conv_passes_zen5.md) 45 -> 28 and 47 -> 16 ms, 119 -> 97 and 137 -> 56 ms.

The gradient functions are built from differentiable ops, so second derivatives (RAE-GP's
and InjFlow's double backward passes) work through them.
"""
import functools
import math
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf


@functools.lru_cache(maxsize=None)
def matmul_forms_enabled() -> bool:
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
  if (not matmul_forms_enabled() or padding not in ("SAME", "VALID")
      or any(not isinstance(s, int) for s in sizes)):
    return False
  return all(small == _output_size(big, k, s, padding) for big, small, k, s in
             zip(big_shape[1:3], small_shape[1:3], kernel_size, strides))


def faster(small_shape: Sequence, kernel_shape: Sequence[int], dtype) -> bool:
  """Whether the matmul form beat TensorFlow's filter gradient on this kind of layer.

  Read off `python benchmarks/conv_grad_speed.py [--passes=all] --sizes=28,32,64` (every
  dcgan layer, widths 32 and 128, batch 100, float32 and bfloat16; 2-core AMX Xeon,
  2026-11-30, benchmarks/conv_passes_amx.md). It won or tied
    * in float32 on layers with a large kernel (>= 1M weights, where the product dominates
      the patch copy) and at most 7 x 7 output positions (with 8 x 8, e.g. the 64x64 net's
      16 -> 8 encoder layer, oneDNN's own kernel won: 287 vs 355 ms forward + backward);
    * in a 16-bit dtype (where the native primitive ran below its own float32 speed) on
      layers with few output positions (<= 4 x 4, where the native primitive has little to
      split), or a medium kernel (>= 256K weights) with at most 8 x 8 positions (with 16 x 16
      it lost: 85 vs 103 ms).
  Elsewhere it lost or tied (one exception, width 128 bfloat16 28x28 decoder 14 -> 29,
  2.8 -> 1.8 ms, left native). E.g. width 128, 28x28 decoder 4x4 -> 7x7: 74 -> 51 ms
  (float32), 97 -> 16 ms (bfloat16), filter gradient alone. A 2-core Zen 5
  (benchmarks/conv_passes_zen5.md) agrees on the layers picked; there a few unpicked ones
  would also win (float32 at 8 x 8 positions, small-kernel bfloat16), where the AMX Xeon
  measured the other way.
  """
  positions = small_shape[1] * small_shape[2]
  weights = math.prod(kernel_shape)
  if tf.as_dtype(dtype) == tf.float32:
    return weights >= 1_000_000 and positions <= 49
  return positions <= 16 or (weights >= 250_000 and positions <= 64)


def whole_matmul(small_shape: Sequence, kernel_shape: Sequence[int]) -> bool:
  """Whether the whole convolution (forward and both gradients) runs as matrix products.

  `python benchmarks/conv_grad_speed.py --passes=all --sizes=28,32,64` (2-core AMX Xeon,
  2026-11-30, batch 100; benchmarks/conv_passes_amx.md): with few small-side positions
  (<= 4 x 4) and a large kernel (>= 1M weights) the whole-matmul form won in float32 and
  bfloat16 on every such layer (width 128: the 28x28 net's encoder 8 -> 3 and decoder
  4 -> 7, the 32x32 / 64x64 nets' 8 -> 4, 4 -> 2 and 4 -> 8); everywhere else (width 32's
  kernels of 0.1-0.3M weights, or 49+ positions) it lost to the native or the
  filter-matmul form. On a 2-core Zen 5 (no AMX; 2026-12-07, benchmarks/conv_passes_zen5.md)
  it won on every layer it picks too.
  """
  return small_shape[1] * small_shape[2] <= 16 and math.prod(kernel_shape) >= 1_000_000


# `matmul_few_rows`: the input-gradient order is switched for at most this many rows and
# kernels of at least this many weights (below, the switch measured slower or even).
FEW_ROWS = 200
FEW_ROWS_MIN_WEIGHTS = 2_000_000


def matmul_few_rows(x, kernel):
  """x @ kernel ([rows, fan_in] @ [fan_in, out]), with a faster input gradient when x has
  few rows and the kernel is large (a convolution whose kernel covers its whole input, e.g.
  dcgan's last 28x28 encoder layer: 100 x 8192 @ 8192 x 1024 at width 128).

  Autodiff's input gradient dy @ kernel^T makes oneDNN pack the large transposed operand on
  every call, which few rows do not amortise; (kernel @ dy^T)^T computes the same numbers
  with the kernel as it is stored. Standalone, 2-core Zen 5, float32 (dy @ K^T vs the
  other order): 8192 x 1024 kernel, 100 rows 9.2 vs 5.9 ms, 200 rows 12.3 vs 10.8, 300 rows
  16.3 vs 15.8, 500 rows 23.6 vs 27.1; 4096 x 512, 100 rows 1.70 vs 1.53, 200 rows 2.58 vs
  2.53, 300 rows 3.42 vs 3.68; 2048 x 256, 100 rows 0.43 vs 0.51. The order is chosen per
  call by the (possibly dynamic) row count; the gradient is differentiable again.
  """
  if not matmul_forms_enabled() or math.prod(kernel.shape) < FEW_ROWS_MIN_WEIGHTS:
    return tf.matmul(x, kernel)

  @tf.custom_gradient
  def forward(x, kernel):
    def grad(dy):
      few = lambda: tf.transpose(tf.matmul(kernel, dy, transpose_b=True))
      many = lambda: tf.matmul(dy, kernel, transpose_b=True)
      rows = dy.shape[0]
      if rows is None:
        dx = tf.cond(tf.shape(dy)[0] <= FEW_ROWS, few, many)
      else:
        dx = few() if rows <= FEW_ROWS else many()
      return dx, tf.matmul(x, dy, transpose_a=True)
    return tf.matmul(x, kernel), grad

  return forward(x, kernel)


def _output_sizes(big_hw: Sequence[int], kernel_hw: Sequence[int], strides: Sequence[int],
                  padding: str) -> Tuple[int, int]:
  return tuple(_output_size(b, k, s, padding) for b, k, s in zip(big_hw, kernel_hw, strides))


def _gather_positions(big, window: np.ndarray):
  """[B * len(window), C]: every image's C-vectors at `window`, flat (row * width + column)
  positions within one image of `big` [B, H, W, C], image by image."""
  _, height, width, channels = big.shape
  first = tf.range(tf.shape(big)[0]) * (height * width)  # each image's first position
  return tf.gather(tf.reshape(big, [-1, channels]),
                   tf.reshape(first[:, None] + window[None, :], [-1]))


def patches(big, kernel_hw: Sequence[int], strides: Sequence[int], padding: str):
  """im2col: [B * h * w, kh * kw * C], row (b, i, j) = the window conv2d reads for output
  (i, j), ordered (row, column, channel) like a conv kernel.

  One gather of the padded input's C-vectors at precomputed positions, so the patch matrix
  is written once. Building it from stride-phase planes and one slice per tap copied it
  three times: standalone (2-core Zen 5, float32, batch 100) 3.9 vs 1.3 ms for the 7x7x512
  output gradient of the 28x28 decoder's 4 -> 7 layer, 6.6 vs 1.7 ms for its 15x15x256
  one; with autodiff's gradient (a segment sum here, pads and a stack there) 3.5 vs 2.6 ms
  for the 8x8x256 encoder input. Both gradients are differentiable again.
  """
  _, height, width, channels = big.shape
  (kh, kw), (sh, sw) = kernel_hw, strides
  h, w = _output_sizes((height, width), kernel_hw, strides, padding)
  (top, _), (left, _) = (_pads(height, h, kh, sh, padding), _pads(width, w, kw, sw, padding))
  bottom = max(0, (h - 1) * sh + kh - top - height)
  right = max(0, (w - 1) * sw + kw - left - width)
  if top or bottom or left or right:
    big = tf.pad(big, [[0, 0], [top, bottom], [left, right], [0, 0]])
  cols = width + left + right
  # Flat position (within one padded image) of every (output i, j; tap di, dj), row-major.
  window = np.array([(i * sh + di) * cols + j * sw + dj for i in range(h) for j in range(w)
                     for di in range(kh) for dj in range(kw)], np.int32)
  return tf.reshape(_gather_positions(big, window), [-1, kh * kw * channels])


def _conv2d_matmul(x, kernel, strides: Sequence[int], padding: str):
  """tf.nn.conv2d as patches @ kernel (autodiff gives the gradients)."""
  h, w = _output_sizes(x.shape[1:3], kernel.shape[:2], strides, padding)
  y = tf.matmul(patches(x, kernel.shape[:2], strides, padding),
                tf.reshape(kernel, [-1, kernel.shape[3]]))
  return tf.reshape(y, [-1, h, w, kernel.shape[3]])


def _phase_taps(phase: int, pad: int, kernel: int, stride: int):
  """(tap, offset) pairs of a transposed convolution's output phase: output row
  stride * j + phase gets input row j + offset through kernel row tap."""
  return [(k, (phase + pad - k) // stride) for k in range(kernel)
          if (phase + pad - k) % stride == 0]


def _conv2d_transpose_phases(x, kernel, output_hw: Sequence[int], strides: Sequence[int],
                             padding: str):
  """tf.nn.conv2d_transpose's value as one matmul per output phase (sub-pixel form).

  Each phase's input rows are one gather of the padded input (as in `patches`), and the
  phases' outputs are interleaved by one gather: rae_l2's width-128 step 285 -> 281 ms
  against slices + concat per phase and pads + stacks to interleave (2-core Zen 5, float32).
  """
  _, h, w, cin = x.shape
  kh, kw, cout, _ = kernel.shape
  (height, width), (sh, sw) = output_hw, strides
  taps = [[_phase_taps(r, _pads(size, small, k, s, padding)[0], k, s) for r in range(s)]
          for size, small, k, s in ((height, h, kh, sh), (width, w, kw, sw))]
  counts = [[-(-(size - r) // s) for r in range(s)] for size, s in ((height, sh), (width, sw))]
  offsets = [[d for phase in axis for _, d in phase] for axis in taps]
  low = [max(0, -min(d)) for d in offsets]
  high = [max(0, n[0] - 1 + max(d) - (size - 1))
          for n, d, size in zip(counts, offsets, (h, w))]
  x = tf.pad(x, [[0, 0], [low[0], high[0]], [low[1], high[1]], [0, 0]])
  # [kh, kw, cin, cout]: a phase's weights are then taps stacked along cin and used as they
  # are; multiplying by a transposed [cout, n * cin] operand ran at ~340 instead of ~470
  # GFLOP/s (oneDNN re-packs it every call; 2-core Zen 5, float32, cout 512).
  kernel = tf.transpose(kernel, [0, 1, 3, 2])
  cols_padded = w + low[1] + high[1]
  outputs = []  # per phase [B, n * m, cout]
  where = {}  # output (row, column) -> its row in the phases' concatenation
  for rh in range(sh):
    for rw in range(sw):
      n, m = counts[0][rh], counts[1][rw]
      pairs = [(ki, di, kj, dj) for ki, di in taps[0][rh] for kj, dj in taps[1][rw]]
      start = len(where)  # the earlier phases' rows
      where.update({(a * sh + rh, c * sw + rw): start + a * m + c
                    for a in range(n) for c in range(m)})
      if pairs:  # output (a, c) of this phase reads input (a + di, c + dj) through each tap
        window = np.array([(a + di + low[0]) * cols_padded + c + dj + low[1] for a in range(n)
                           for c in range(m) for _, di, _, dj in pairs], np.int32)
        inputs = _gather_positions(x, window)
        weights = tf.concat([kernel[ki, kj] for ki, _, kj, _ in pairs], axis=0)
        y = tf.matmul(tf.reshape(inputs, [-1, len(pairs) * cin]), weights)
        outputs.append(tf.reshape(y, [-1, n * m, cout]))
      else:  # a phase no tap reaches (stride > kernel): zeros
        outputs.append(tf.zeros(tf.stack([tf.shape(x)[0], n * m, cout]), x.dtype))
  order = np.array([where[(i, j)] for i in range(height) for j in range(width)], np.int32)
  y = tf.gather(tf.concat(outputs, axis=1), order, axis=1)
  return tf.reshape(y, [-1, height, width, cout])


def _conv2d_transpose_matmul(x, kernel, output_hw: Sequence[int], strides: Sequence[int],
                             padding: str):
  """tf.nn.conv2d_transpose as matmuls: the phase form forward; both gradients from one
  patch matrix of the output gradient (input gradient = P @ kernel, filter = P^T @ x)."""

  @tf.custom_gradient
  def forward(x, kernel):
    def grad(dy):
      kh, kw, _, cin = kernel.shape
      p = patches(dy, (kh, kw), strides, padding)
      dx = tf.reshape(tf.matmul(p, tf.reshape(kernel, [-1, cin])), tf.shape(x))
      dk = tf.matmul(p, tf.reshape(x, [-1, cin]), transpose_a=True)
      return dx, tf.reshape(dk, kernel.shape)
    return _conv2d_transpose_phases(x, kernel, output_hw, strides, padding), grad

  return forward(x, kernel)


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
  product = tf.matmul(patches(big, kernel_shape[:2], strides, padding),
                      tf.reshape(small, [-1, kernel_shape[3]]), transpose_a=True)
  return tf.reshape(product, kernel_shape)


def conv2d(x, kernel, strides: Sequence[int], padding: str):
  """tf.nn.conv2d (NHWC, no dilation), in the matmul form `whole_matmul` or `faster` picks.

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
  if supported(x.shape, y_shape, kernel.shape[:2], strides, padding):
    if whole_matmul(y_shape, kernel.shape):
      return _conv2d_matmul(x, kernel, strides, padding)
    if faster(y_shape, kernel.shape, x.dtype):
      return forward(x, kernel)
  return tf.nn.conv2d(x, kernel, strides, padding)


def conv2d_transpose(x, kernel, output_shape, strides: Sequence[int], padding: str):
  """tf.nn.conv2d_transpose (NHWC, no dilation), in the matmul form `whole_matmul` or
  `faster` picks.

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
  if supported(big_shape, x.shape, kernel.shape[:2], strides, padding):
    if whole_matmul(x.shape, kernel.shape):
      return _conv2d_transpose_matmul(x, kernel, big_shape[1:], strides, padding)
    if faster(x.shape, kernel.shape, x.dtype):
      return forward(x, kernel)
  return tf.nn.conv2d_transpose(x, kernel, output_shape, strides, padding)

