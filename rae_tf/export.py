"""SavedModel export in TF Serving's layout: <export_root>/<name>/<version>/.

Built with `keras.export.ExportArchive` (a hand-made tf.Module fails under
`saved_model_cli run` / TF Serving). Signatures:
  serving_default: seed int64 [batch] -> {image|x: samples, latent: codes}; one prior sample
                   per seed, the same seed always giving the same sample (stateless RNG),
                   whatever else is in the request (bit-identical for the same request;
                   in batches of another size up to float rounding, ~1e-7, as CPU kernels
                   block by batch size).
  decode:          latent float32 [batch, m] -> {image|x}
  encode:          image|x [batch, ...] -> {latent}: the code (encoder mean)
  reconstruct:     image|x [batch, ...] -> {image|x}
Images are float32 in [0, 1], [batch, H, W, C]. The export needs neither Keras nor TFP to load.

Serving contract:
  * At most MAX_BATCH (4096) rows per request, in every signature. A bigger request fails
    inside the graph, before any work, with InvalidArgument "serving_default: at most 4096
    seeds per request, got N" (TF Serving answers HTTP 400 with that message) instead of
    allocating until the server dies.
  * Wrong dtypes (float seeds) and shapes (a latent of the wrong width, images of the wrong
    size) are refused by the signatures' TensorSpecs.
  * A version appears atomically: it is written to `<name>/.tmp-<pid>-*` and renamed into
    place, so TF Serving never sees half a model. Leftovers of killed exports are removed by
    the next export of that name (only those whose process is gone and whose directory lock
    is free, never those of an export still running).
  * Concurrent exports of one name (threads or processes) get distinct versions: the
    version number is chosen and the rename done under an fcntl.flock on
    `<name>/.export.lock` (TF Serving ignores non-numeric entries; the lock file is removed
    after use).
  * Version directories are 0755, their files 0644 (TF Serving runs as its own user);
    directories this module creates are 0755 whatever the umask.
  * After every export `<export_root>/models.config` (TF Serving's --model_config_file text
    format) lists every model under the root that has a version; see write_models_config.

Library functions for other code: check_export_root (validate --export_dir before doing
work), check_model_name, export_saved_model, check_export_run (the cheap checks of
expost.export_run, which re-exports a training run), write_models_config. TensorFlow / Keras are imported
only by the functions that need them, so the checks and models.config writing are cheap.
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from typing import List, Optional

from rae_tf import eval_config
from rae_tf import outputs
from rae_tf.errors import ConfigError

MAX_BATCH = 4096
SIGNATURES = ("serving_default", "decode", "encode", "reconstruct")
MODELS_CONFIG = "models.config"
DIR_MODE = 0o755
FILE_MODE = 0o644

_TMP_PREFIX = ".tmp-"
_TMP_RE = re.compile(r"^\.tmp-(\d+)-")
_EXPORT_LOCK = ".export.lock"
_CONFIG_LOCK = ".models.config.lock"
_CONFIG_TMP_PREFIX = ".models.config.tmp-"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def data_key(is_image: bool) -> str:
  """The name of the data tensor in signatures: "image" for images, "x" for vectors."""
  return "image" if is_image else "x"


def next_version(model_root: str) -> int:
  """1 + the largest integer version directory under model_root (1 if none)."""
  if not os.path.isdir(model_root):
    return 1
  versions = [int(d) for d in os.listdir(model_root) if d.isdigit()]
  return max(versions, default=0) + 1


# ----------------------------------------------------------------------------- checks


def check_export_root(path: str, flag: str = "--export_dir") -> str:
  """Raises ConfigError unless `path` is (or can be created as) a writable directory.

  Creates nothing: call it before any expensive work so bad input fails fast.

  Args:
    path: the SavedModel root.
    flag: the flag name used in the message.
  Returns:
    The absolute path.
  """
  if not path:
    raise ConfigError(f"{flag} is empty; pass a directory for the SavedModels")
  outputs.check_creatable_dir(path, flag)
  return os.path.abspath(path)


def check_model_name(name: str, flag: str = "--export_name") -> str:
  """Raises ConfigError unless `name` is a usable model name (directory and URL part)."""
  if not name or not _NAME_RE.match(name):
    raise ConfigError(f"{flag}={name!r} is not a usable model name: use letters, digits, "
                      "'_', '-' and '.', not starting with '.' or '-'")
  return name


# ----------------------------------------------------------------------------- files


def _pid_alive(pid: int) -> bool:
  if pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Someone else's process.
  return True


def _lock_dir(path: str) -> Optional[int]:
  """A non-blocking exclusive flock on a directory: its fd, or None if held elsewhere."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    os.close(fd)
    return None
  return fd


def remove_stale_temporaries(model_root: str) -> List[str]:
  """Removes `.tmp-<pid>-*` leftovers of killed exports; returns what it removed.

  A temporary directory is removed only if its pid is not a live process *and* nobody holds
  its directory lock (an exporter locks its temporary directory while writing), so exports
  running in other processes, containers or threads are never touched.
  """
  removed = []
  try:
    entries = os.listdir(model_root)
  except FileNotFoundError:
    return removed
  for entry in entries:
    match = _TMP_RE.match(entry)
    path = os.path.join(model_root, entry)
    if not match or os.path.islink(path) or not os.path.isdir(path):
      continue
    if _pid_alive(int(match.group(1))):
      continue
    fd = _lock_dir(path)
    if fd is None:
      continue
    try:
      shutil.rmtree(path, ignore_errors=True)
    finally:
      os.close(fd)
    removed.append(path)
  return removed


def _makedirs_readable(path: str):
  """os.makedirs, with every directory it creates made 0755 whatever the umask."""
  missing = []
  probe = os.path.abspath(path)
  while not os.path.exists(probe):
    missing.append(probe)
    probe = os.path.dirname(probe)
  os.makedirs(path, exist_ok=True)
  for d in missing:
    try:
      os.chmod(d, DIR_MODE)
    except OSError:
      pass


def _make_readable(root: str):
  """Directories 0755, files 0644, under and including root."""
  os.chmod(root, DIR_MODE)
  for dirpath, dirnames, filenames in os.walk(root):
    for d in dirnames:
      os.chmod(os.path.join(dirpath, d), DIR_MODE)
    for f in filenames:
      os.chmod(os.path.join(dirpath, f), FILE_MODE)


def served_models(export_root: str) -> List[str]:
  """Sorted model names under export_root with >= 1 numeric version holding saved_model.pb."""
  names = []
  try:
    entries = sorted(os.listdir(export_root))
  except FileNotFoundError:
    return names
  for name in entries:
    model_root = os.path.join(export_root, name)
    if not _NAME_RE.match(name) or not os.path.isdir(model_root):
      continue
    try:
      children = os.listdir(model_root)
    except OSError:
      continue
    if any(v.isdigit() and os.path.isfile(os.path.join(model_root, v, "saved_model.pb"))
           for v in children):
      names.append(name)
  return names


def _text_proto_string(s: str) -> str:
  return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def models_config_text(export_root: str, names: List[str]) -> str:
  """TF Serving's ModelServerConfig in text format, one config per model name."""
  root = os.path.abspath(export_root)
  lines = ["model_config_list {"]
  for name in names:
    lines += ["  config {",
              f"    name: {_text_proto_string(name)}",
              f"    base_path: {_text_proto_string(os.path.join(root, name))}",
              '    model_platform: "tensorflow"',
              "  }"]
  lines.append("}")
  return "\n".join(lines) + "\n"


def write_models_config(export_root: str) -> str:
  """(Re)writes <export_root>/models.config for `tensorflow_model_server --model_config_file`.

  Lists every model directory under export_root holding at least one numeric version with
  a saved_model.pb, with its absolute base_path. Written atomically (temporary file +
  os.replace, mode 0644) under a root-level flock, so concurrent exports never lose an
  entry: the last writer scans after every earlier export was already in place.

  Returns:
    The path of models.config.
  """
  root = os.path.abspath(export_root)
  if not os.path.isdir(root):
    raise ConfigError(f"{export_root} is not a directory; nothing to list in {MODELS_CONFIG}")
  path = os.path.join(root, MODELS_CONFIG)
  with outputs.waiting_file_lock(os.path.join(root, _CONFIG_LOCK)):
    for entry in os.listdir(root):  # Leftovers of writers killed mid-write.
      match = re.match(re.escape(_CONFIG_TMP_PREFIX) + r"(\d+)-", entry)
      if match and not _pid_alive(int(match.group(1))):
        with contextlib.suppress(OSError):
          os.unlink(os.path.join(root, entry))
    text = models_config_text(root, served_models(root))
    fd, tmp = tempfile.mkstemp(prefix=f"{_CONFIG_TMP_PREFIX}{os.getpid()}-", dir=root)
    try:
      with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fchmod(f.fileno(), FILE_MODE)
        os.fsync(f.fileno())
      os.replace(tmp, path)
    except BaseException:
      with contextlib.suppress(OSError):
        os.unlink(tmp)
      raise
  return path


# ----------------------------------------------------------------------------- export


def _checked(tensor, signature: str, row_shape, what: str):
  """`tensor`, gated by in-graph checks: shape [batch] + row_shape and batch <= MAX_BATCH.

  The TensorSpecs alone refuse wrong dtypes but not wrong shapes at serving time (a
  loaded signature, TF Serving's C++ session do not check shapes; ops would fail later with
  obscure messages, or not at all). EnsureShape checks the shape (it survives tracing and
  Grappler, unlike an Assert on tf.rank, which is folded away from the static shape), then
  an Assert, on which the output depends, checks the batch size before any work. TF Serving
  returns the messages as InvalidArgument (HTTP 400).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tensor = tf.ensure_shape(tensor, [None] + [int(d) for d in row_shape])
  n = tf.shape(tensor, out_type=tf.int64)[0]
  check = tf.debugging.Assert(
      n <= MAX_BATCH,
      [tf.strings.format(f"{signature}: at most {MAX_BATCH} {what} per request, got {{}}",
                         n)])
  with tf.control_dependencies([check]):
    return tf.identity(tensor)


def _build_archive(model, is_image: bool):
  """The keras.export.ExportArchive with the four signatures (see the module docstring)."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  key = data_key(is_image)
  rows = "images" if is_image else "vectors"
  data_spec = tf.TensorSpec((None,) + tuple(model.data_shape), tf.float32, name=key)

  archive = keras.export.ExportArchive()
  archive.track(model)

  shape = tuple(model.data_shape)

  def serve(seed):
    images, z = model.sample_from_seeds(_checked(seed, "serving_default", (), "seeds"))
    return {key: images, "latent": z}

  def decode(latent):
    return {key: model.decode(_checked(latent, "decode", (model.latent_dim,),
                                       "latent codes"))}

  def encode(x):
    return {"latent": model.encode(_checked(x, "encode", shape, rows))}

  def reconstruct(x):
    return {key: model.reconstruct(_checked(x, "reconstruct", shape, rows))}

  archive.add_endpoint("serving_default", serve,
                       input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
  archive.add_endpoint("decode", decode,
                       input_signature=[tf.TensorSpec([None, model.latent_dim], tf.float32,
                                                      name="latent")])
  archive.add_endpoint("encode", encode, input_signature=[data_spec])
  archive.add_endpoint("reconstruct", reconstruct, input_signature=[data_spec])
  return archive


def export_saved_model(model, export_root: str, name: str, is_image: bool,
                       version: Optional[int] = None) -> str:
  """Writes the SavedModel, publishes it as the next version and returns its directory.

  The archive is written to a temporary sibling directory `.tmp-<pid>-*` and renamed into
  place under the model's lock, so a failed export never leaves a half-written version that
  TF Serving would try to load, and concurrent exports never collide. Then models.config
  of export_root is rewritten.

  Args:
    model: a built RegularizedAutoEncoder.
    export_root: the root folder (TF Serving's model base path is export_root/name).
    name: the model name (directory).
    is_image: whether the data are images (sets the tensor names).
    version: the version number; default: the next free one.
  Returns:
    The path export_root/name/version.
  Raises:
    ConfigError: export_root is not a writable directory, or the name is unusable.
    FileExistsError: the requested version exists.
  """
  check_export_root(export_root)
  check_model_name(name)
  model_root = os.path.join(export_root, name)
  if version is not None and os.path.exists(os.path.join(model_root, str(int(version)))):
    raise FileExistsError(f"export version {os.path.join(model_root, str(int(version)))} "
                          "already exists")
  _makedirs_readable(model_root)
  remove_stale_temporaries(model_root)
  archive = _build_archive(model, is_image)
  tmp = tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=model_root)
  guard = _lock_dir(tmp)  # Marks it live for remove_stale_temporaries in other processes.
  try:
    archive.write_out(tmp, verbose=False)
    _make_readable(tmp)
    with outputs.waiting_file_lock(os.path.join(model_root, _EXPORT_LOCK)):
      chosen = next_version(model_root) if version is None else int(version)
      final = os.path.join(model_root, str(chosen))
      if os.path.exists(final):
        raise FileExistsError(f"export version {final} already exists")
      os.rename(tmp, final)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  finally:
    if guard is not None:
      os.close(guard)
  write_models_config(export_root)
  return final


def check_export_run(workdir: str, export_root: str, name: Optional[str] = None,
                     prior: str = "trained"):
  """The cheap checks of export_run (no TensorFlow): ConfigError on bad input.

  Checks the export root (creatable / writable), the name, and that workdir is a run
  directory with a readable config.json (and the ex-post prior's file for prior="gmm",
  "flow", "vae"). Whether it has
  a usable checkpoint is checked when loading it.
  """
  check_export_root(export_root)
  if name is not None:
    check_model_name(name)
  if prior not in eval_config.PRIORS:
    raise ConfigError(f"unknown --prior={prior!r}; choose one of: "
                      + ", ".join(eval_config.PRIORS))
  if not workdir:
    raise ConfigError("--workdir is required: the training run to export")
  if not os.path.isdir(workdir):
    raise ConfigError(f"--workdir={workdir} does not exist or is not a directory; pass a "
                      "training run directory")
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      json.load(f)
  except FileNotFoundError:
    raise ConfigError(f"--workdir={workdir} has no config.json; pass the --workdir of a "
                      "finished scripts/train.py run") from None
  except (OSError, ValueError) as e:
    raise ConfigError(f"--workdir={workdir}: cannot read config.json "
                      f"({getattr(e, 'strerror', None) or e})") from None
  if prior != "trained":
    path = os.path.join(workdir, eval_config.EXPOST_FILES[prior])
    if not os.path.exists(path):
      raise ConfigError(f"--prior={prior}: {path} not found; fit it first with "
                        f"scripts/fit_prior.py --workdir={workdir} --expost={prior}")
