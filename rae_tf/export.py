"""SavedModel export in TF Serving's layout: <export_root>/<name>/<version>/.

Built with `keras.export.ExportArchive` (a hand-made tf.Module fails under
`saved_model_cli run` / TF Serving). Signatures:
  serving_default: seed int64 [batch] -> {image|x: samples, latent: codes}; one prior sample
                   per seed, the same seed always giving the same sample (stateless RNG).
  decode:          latent float32 [batch, m] -> {image|x}
  encode:          image|x [batch, ...] -> {latent}: the code (encoder mean)
  reconstruct:     image|x [batch, ...] -> {image|x}
Images are float32 in [0, 1], [batch, H, W, C]. The export needs neither Keras nor TFP to load.
"""
import os
import shutil
import tempfile
from typing import Optional

import keras
import tensorflow as tf


def data_key(is_image: bool) -> str:
  """The name of the data tensor in signatures: "image" for images, "x" for vectors."""
  return "image" if is_image else "x"


def next_version(model_root: str) -> int:
  """1 + the largest integer version directory under model_root (1 if none)."""
  if not os.path.isdir(model_root):
    return 1
  versions = [int(d) for d in os.listdir(model_root) if d.isdigit()]
  return max(versions, default=0) + 1


def export_saved_model(model, export_root: str, name: str, is_image: bool,
                       version: Optional[int] = None) -> str:
  """Writes the SavedModel and returns its directory.

  The archive is written to a temporary sibling directory and renamed into place, so a
  failed export never leaves a half-written version that TF Serving would try to load.

  Args:
    model: a built RegularizedAutoEncoder.
    export_root: the root folder (TF Serving's model base path is export_root/name).
    name: the model name (directory).
    is_image: whether the data are images (sets the tensor names).
    version: the version number; default: the next free one.
  Returns:
    The path export_root/name/version.
  """
  key = data_key(is_image)
  model_root = os.path.join(export_root, name)
  os.makedirs(model_root, exist_ok=True)
  version = next_version(model_root) if version is None else int(version)
  final = os.path.join(model_root, str(version))
  if os.path.exists(final):
    raise FileExistsError(f"export version {final} already exists")
  data_spec = tf.TensorSpec((None,) + tuple(model.data_shape), tf.float32, name=key)

  archive = keras.export.ExportArchive()
  archive.track(model)

  def serve(seed):
    images, z = model.sample_from_seeds(seed)
    return {key: images, "latent": z}

  archive.add_endpoint("serving_default", serve,
                       input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
  archive.add_endpoint("decode", lambda latent: {key: model.decode(latent)},
                       input_signature=[tf.TensorSpec([None, model.latent_dim], tf.float32,
                                                      name="latent")])
  archive.add_endpoint("encode", lambda x: {"latent": model.encode(x)},
                       input_signature=[data_spec])
  archive.add_endpoint("reconstruct", lambda x: {key: model.reconstruct(x)},
                       input_signature=[data_spec])
  tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_root)
  try:
    archive.write_out(tmp, verbose=False)
    os.rename(tmp, final)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return final
