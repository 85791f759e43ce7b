"""Helpers shared by the architectures: validation, optional spectral normalisation."""
import keras

from rae_tf.errors import ConfigError

KERNEL_INIT = "glorot_normal"


def check_sizes(width: int, depth: int):
  if width < 1:
    raise ConfigError(f"--width={width} must be >= 1")
  if depth < 1:
    raise ConfigError(f"--depth={depth} must be >= 1")


def maybe_sn(layer, spectral_norm: bool):
  """Wraps a kernel layer in spectral normalisation (RAE-SN) when asked."""
  return keras.layers.SpectralNormalization(layer) if spectral_norm else layer


def image_shape(arch: str, shape, sizes=None):
  """Checks that `shape` is an image (H, W, C) with H == W in `sizes`; returns it."""
  if len(shape) != 3:
    raise ConfigError(f"--arch={arch} needs images [H, W, C], got examples of shape "
                      f"{tuple(shape)}; use --arch=mlp for vector data")
  h, w, _ = shape
  if h != w or (sizes is not None and h not in sizes):
    supported = ", ".join(f"{s}x{s}" for s in sizes) if sizes else "square"
    raise ConfigError(f"--arch={arch} does not support {h}x{w} images (supported: "
                      f"{supported}); use --arch=mlp or resize the data")
  return tuple(shape)
