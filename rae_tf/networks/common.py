"""Helpers shared by the architectures: validation, spectral norm, fast standard layers.

The three layer classes here compute exactly what their Keras parents compute (same
variables, same initialisers, same maths); they only pick a faster TensorFlow kernel where
one exists. With dcgan's exact-equivalent padding forms they take a width-128 28x28 training
step at batch 100 on a 2-core CPU from ~165 to ~250 images/s (width 32: ~2000 to ~2600):

  * `BatchNormalization` runs the fused `FusedBatchNormV3` kernel (Keras 3 dropped the
    `fused` option and normalises with ~10 separate element-wise ops). Its double backprop
    (RAE-GP through BN) is exact, where Keras' differs slightly: tf.nn.moments stops the
    gradient through the mean inside the variance.
  * `Conv2D` computes a convolution whose kernel covers its whole input (output 1x1, the
    last dcgan encoder block on 28x28 images) as one matmul; oneDNN's convolution is ~6x
    slower on that shape.
  * `Conv2D` and `Conv2DTranspose` take their filter gradient as one matmul on CPUs
    (`conv_ops`): oneDNN's backward-weights primitive is slow on dcgan's shapes.
"""
import math
from typing import Optional, Sequence, Tuple

import keras
import tensorflow as tf

from rae_tf.errors import ConfigError
from rae_tf.networks import conv_ops

KERNEL_INIT = "glorot_normal"
# Moving statistics = 0.9 * old + 0.1 * batch: PyTorch's default (momentum=0.1), as the
# peer's layout, instead of Keras' 0.99. With 0.99 the statistics lag ~100 steps behind a
# drifting activation scale, so a short run served a different function than it trained:
# rae_l2, MNIST subset, 500 steps: reconstruction MSE 0.016 in training mode, 0.027
# served, domain FID 40.0; with 0.9: 0.014 served, FID 1.3.
BN_MOMENTUM = 0.9


def check_sizes(width, depth, width_flag: str = "--width", depth_flag: str = "--depth"):
  """Raises ConfigError unless width and depth are integers >= 1.

  Args:
    width: units / base channels per layer.
    depth: number of hidden layers.
    width_flag: the flag that set `width`, named in the error.
    depth_flag: the flag that set `depth`, named in the error.
  """
  for value, flag in ((width, width_flag), (depth, depth_flag)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConfigError(f"{flag}={value!r} must be an integer >= 1")


def check_dim(value, what: str, flag: str = "--latent_dim") -> int:
  """Returns `value` as an int, raising ConfigError unless it is an integer >= 1.

  Args:
    value: a vector size (latent size, encoder output size).
    what: what the size is, for the error message.
    flag: the flag that sets it.

  Returns:
    int(value).
  """
  if isinstance(value, bool) or int(value) != value or value < 1:
    raise ConfigError(f"{what} must be an integer >= 1, got {value!r}; set {flag} >= 1")
  return int(value)


def check_data_shape(shape) -> Tuple[int, ...]:
  """Returns one example's shape as a tuple of ints >= 1, else raises ConfigError.

  Args:
    shape: the shape of one example, without the batch dimension.

  Returns:
    The shape as a tuple of ints.
  """
  try:
    shape = tuple(int(d) for d in shape)
  except (TypeError, ValueError):
    shape = ()
  if not shape or min(shape) < 1:
    raise ConfigError(f"examples must have a known, non-empty shape, got {shape}; "
                      "check --dataset")
  return shape


def image_shape(arch: str, shape: Sequence[int],
                sizes: Optional[Sequence[int]] = None) -> Tuple[int, int, int]:
  """Checks that `shape` is a square image (H, W, C), with H in `sizes` when given.

  Args:
    arch: the architecture name, for the error message.
    shape: the shape of one example.
    sizes: the supported image sizes, or None for any square size.

  Returns:
    The shape as a tuple (H, W, C).
  """
  shape = check_data_shape(shape)
  if len(shape) != 3:
    raise ConfigError(f"--arch={arch} needs images [H, W, C], got examples of shape "
                      f"{shape}; use --arch=mlp for vector data")
  h, w, _ = shape
  if h != w or (sizes is not None and h not in sizes):
    supported = ", ".join(f"{s}x{s}" for s in sizes) if sizes else "square H == W"
    raise ConfigError(f"--arch={arch} does not support {h}x{w} images (supported: "
                      f"{supported}); use --arch=mlp or resize the data")
  return shape


def maybe_sn(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
  """Wraps a kernel layer in spectral normalisation (RAE-SN) when asked.

  Args:
    layer: a Dense / Conv2D / Conv2DTranspose layer.
    spectral_norm: whether to wrap it.

  Returns:
    `layer`, or `keras.layers.SpectralNormalization(layer)`.
  """
  return keras.layers.SpectralNormalization(layer) if spectral_norm else layer


def bn_relu(h, batch_norm: bool = True):
  """BatchNormalization (fused kernel, momentum BN_MOMENTUM) followed by ReLU.

  Args:
    h: a symbolic tensor [B, C] or [B, H, W, C].
    batch_norm: False = ReLU only (a decoder whose input scale must matter: MaskAAE).

  Returns:
    The symbolic output.
  """
  return keras.layers.ReLU()(BatchNormalization(momentum=BN_MOMENTUM)(h) if batch_norm else h)


@keras.saving.register_keras_serializable(package="rae_tf")
class BatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization` computed with TensorFlow's fused kernel.

  Same variables, momentum / epsilon semantics and moving-statistics update as the parent
  (which uses the biased batch variance); inputs the fused kernel cannot take (masks,
  renorm, synchronized, non-last axis, rank other than 2 or 4, dtypes other than float32 /
  bfloat16 / float16) go to the parent's implementation.
  """

  def _can_fuse(self, inputs, mask) -> bool:
    rank = inputs.shape.rank
    return (mask is None and not self.renorm and not self.synchronized
            and rank in (2, 4) and self.axis in (-1, rank - 1)
            and inputs.dtype in (tf.float32, tf.bfloat16, tf.float16))

  def call(self, inputs, training=None, mask=None):
    if not self._can_fuse(inputs, mask):
      return super().call(inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    x = inputs if inputs.shape.rank == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
    ones = tf.ones([channels], tf.float32)
    # The fused kernel takes 16-bit x with float32 scale / offset / statistics and
    # normalises in float32, as Keras' own layer does for mixed-precision inputs.
    scale = tf.cast(self.gamma, tf.float32) if self.scale else ones
    offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros_like(ones)
    if training and self.trainable:
      y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
          x=x, scale=scale, offset=offset, mean=tf.constant([], tf.float32),
          variance=tf.constant([], tf.float32), epsilon=self.epsilon,
          data_format="NHWC", is_training=True)
      # The fused kernel reports the Bessel-corrected variance; Keras tracks the biased one.
      count = tf.cast(tf.size(x, out_type=tf.int64) // channels, tf.float32)
      variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))
      momentum = self.momentum
      self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
      self.moving_variance.assign(
          self.moving_variance * momentum + variance * (1.0 - momentum))
    else:
      y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
          x=x, scale=scale, offset=offset,
          mean=tf.cast(self.moving_mean, tf.float32),
          variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
          data_format="NHWC", is_training=False)
    return y if inputs.shape.rank == 4 else tf.reshape(y, tf.shape(inputs))


@keras.saving.register_keras_serializable(package="rae_tf")
class Conv2D(keras.layers.Conv2D):
  """`keras.layers.Conv2D` with faster CPU kernels for the same result.

  When the kernel exactly covers a channels_last input, the convolution is one dot product
  per output channel; flattening both in (h, w, c) order and multiplying
  (`conv_ops.matmul_few_rows`, whose input gradient suits a batch of few rows) gives the
  same result with the same kernel variable. Other plain (channels_last, undilated, ungrouped)
  convolutions take their filter gradient as one matmul (`conv_ops.conv2d`). Every other
  case is the parent's convolution.
  """

  def _whole_input(self, inputs) -> bool:
    return self.padding == "valid" and tuple(inputs.shape[1:3]) == tuple(self.kernel_size)

  def call(self, inputs):
    if not _plain(self):
      return super().call(inputs)
    kernel = tf.convert_to_tensor(self.kernel)
    if self._whole_input(inputs):
      fan_in = math.prod(self.kernel_size) * inputs.shape[-1]
      y = conv_ops.matmul_few_rows(tf.reshape(inputs, [-1, fan_in]),
                                   tf.reshape(kernel, [fan_in, self.filters]))
      y = tf.reshape(y, [-1, 1, 1, self.filters])
    else:
      y = conv_ops.conv2d(inputs, kernel, self.strides, self.padding.upper())
    return _bias_and_activation(self, y)


@keras.saving.register_keras_serializable(package="rae_tf")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
  """`keras.layers.Conv2DTranspose` whose filter gradient is one matmul on CPUs.

  Plain (channels_last, undilated) cases call `conv_ops.conv2d_transpose` with the output
  shape Keras computes; every other case is the parent's.
  """

  def call(self, inputs):
    if not _plain(self):
      return super().call(inputs)
    _, height, width, channels = self.compute_output_shape(inputs.shape)
    output_shape = [tf.shape(inputs)[0], height, width, channels]
    y = conv_ops.conv2d_transpose(inputs, tf.convert_to_tensor(self.kernel), output_shape,
                                  self.strides, self.padding.upper())
    return _bias_and_activation(self, y)


@keras.saving.register_keras_serializable(package="rae_tf")
class Cropping2D(keras.layers.Cropping2D):
  """`keras.layers.Cropping2D` as one `tf.slice` for channels_last inputs of static size.

  The parent crops with a strided slice, whose gradient op (StridedSliceGrad) took ~20 ms
  a step on dcgan's 15x15x256 decoder map at width 128 (2-core CPU); a plain slice's
  gradient is a pad. Same result; other cases are the parent's.
  """

  def call(self, inputs):
    (top, bottom), (left, right) = self.cropping
    _, height, width, _ = inputs.shape
    if self.data_format != "channels_last" or height is None or width is None:
      return super().call(inputs)
    return tf.slice(inputs, [0, top, left, 0],
                    [-1, height - top - bottom, width - left - right, -1])


def _plain(layer) -> bool:
  """A channels_last, undilated, ungrouped conv layer: the case the fast forms cover."""
  return (layer.data_format == "channels_last" and getattr(layer, "groups", 1) == 1
          and tuple(layer.dilation_rate) == (1, 1))


def _bias_and_activation(layer, y):
  """A conv layer's bias and activation, as the Keras parents apply them."""
  if layer.use_bias:
    y = tf.nn.bias_add(y, tf.convert_to_tensor(layer.bias))
  return layer.activation(y) if layer.activation is not None else y
