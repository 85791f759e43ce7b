"""Client for rae_tf SavedModels served by TF Serving (see rae_tf.export for the contract).

REST (default) needs only the standard library, numpy and PIL, not TensorFlow:
  POST http://HOST:PORT/v1/models/NAME[/versions/V]:predict
       {"signature_name": "serving_default", "inputs": {"seed": [0, 1, ...]}}
  ->   {"outputs": {"image": [...], "latent": [...]}}
gRPC (TF Serving's port 8500) needs `pip install tensorflow-serving-api` (and TensorFlow).

Errors:
  ConfigError (scripts exit 2): bad arguments, or no answer from the server at all
    (connection refused, unknown host): check --server.
  ServerError (scripts exit 1): the server was reached but the request failed (HTTP error,
    an {"error": ...} answer, a malformed answer, a timeout).
"""
import http.client
import io
import json
import os
import socket
import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

import numpy as np

from rae_tf import outputs
from rae_tf.errors import ConfigError

MAX_BATCH = 4096  # rae_tf.export.MAX_BATCH (not imported: that module needs TensorFlow).
PROTOCOLS = ("rest", "grpc")
DEFAULT_TIMEOUT = 60.0
GRPC_PACKAGE = "tensorflow-serving-api"


class ServerError(RuntimeError):
  """The server was reached but the request failed; the message is one line."""


def _one_line(text: str, limit: int = 400) -> str:
  text = " ".join(str(text).split())
  return text if len(text) <= limit else text[:limit] + "..."


def parse_server(server: str) -> Tuple[str, int]:
  """"HOST:PORT" -> (host, port); ConfigError if malformed."""
  if not server or server.count(":") < 1 or "/" in server:
    raise ConfigError(f"--server={server!r} must be HOST:PORT, e.g. localhost:8501")
  host, _, port = server.rpartition(":")
  host = host.strip("[]")  # [::1]:8501
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ConfigError(f"--server={server!r} must be HOST:PORT with a port in 1..65535, e.g. "
                      "localhost:8501")
  return host, int(port)


def predict_url(server: str, model: str, version: Optional[int] = None) -> str:
  host, port = parse_server(server)
  if ":" in host:
    host = f"[{host}]"
  if not model or "/" in model or ":" in model:
    raise ConfigError(f"--model={model!r} must be the served model name")
  path = f"/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "")
  return f"http://{host}:{port}{path}:predict"


def check_seeds(n: int, seed: int = 0) -> np.ndarray:
  """seed, seed+1, ..., seed+n-1 as int64; ConfigError unless 1 <= n <= MAX_BATCH."""
  if not 1 <= n <= MAX_BATCH:
    raise ConfigError(f"--n={n} must be in 1..{MAX_BATCH} (the export's maximum batch per "
                      "request); split bigger requests")
  if not -2**63 <= seed <= 2**63 - n:
    raise ConfigError(f"--seed={seed}: seeds must fit in int64")
  return np.arange(seed, seed + n, dtype=np.int64)


def predict_rest(server: str, model: str, inputs: Dict[str, object],
                 signature: str = "serving_default", version: Optional[int] = None,
                 timeout: float = DEFAULT_TIMEOUT) -> Dict[str, np.ndarray]:
  """One REST predict call in the columnar ("inputs") form; outputs as numpy arrays.

  Args:
    server: HOST:PORT of TF Serving's REST API (--rest_api_port, 8501 by default).
    model: the model name.
    inputs: input name -> array-like (lists or numpy arrays).
    signature: the signature name.
    version: a model version (default: the latest the server has loaded).
    timeout: seconds to wait for the answer.
  Raises:
    ConfigError: unreachable server or bad arguments.
    ServerError: the server answered with an error, nothing usable, or too late.
  """
  url = predict_url(server, model, version)
  body = {"signature_name": signature,
          "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}
  request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                   headers={"Content-Type": "application/json"},
                                   method="POST")
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      raw = response.read()
  except urllib.error.HTTPError as e:
    raise ServerError(f"{url}: HTTP {e.code}: {_error_text(e)}") from None
  except urllib.error.URLError as e:
    reason = e.reason
    if isinstance(reason, (socket.timeout, TimeoutError)):
      raise ServerError(f"{url}: no answer within {timeout:g} s") from None
    if isinstance(reason, ConnectionRefusedError):
      raise ConfigError(f"--server={server}: connection refused; is TF Serving running "
                        "there with its REST API (--rest_api_port)?") from None
    raise ConfigError(f"--server={server}: cannot connect ({_one_line(reason)})") from None
  except (socket.timeout, TimeoutError):
    raise ServerError(f"{url}: no answer within {timeout:g} s") from None
  except (OSError, http.client.HTTPException) as e:  # Reset mid-answer, bad status line.
    raise ServerError(f"{url}: connection failed ({_one_line(e)})") from None
  try:
    answer = json.loads(raw.decode("utf-8"))
  except (UnicodeDecodeError, ValueError):
    raise ServerError(f"{url}: the answer is not JSON: {_one_line(raw[:200])}") from None
  if isinstance(answer, dict) and "error" in answer:
    raise ServerError(f"{url}: {_one_line(answer['error'])}")
  if not isinstance(answer, dict) or "outputs" not in answer:
    raise ServerError(f"{url}: the answer has no 'outputs': {_one_line(str(answer)[:200])}")
  outputs = answer["outputs"]
  if not isinstance(outputs, dict):  # A single-output signature answers the bare tensor.
    outputs = {"output": outputs}
  try:
    return {k: np.asarray(v, np.float32) for k, v in outputs.items()}
  except (TypeError, ValueError):
    raise ServerError(f"{url}: the outputs are not numeric arrays") from None


def _error_text(e: urllib.error.HTTPError) -> str:
  try:
    raw = e.read()
  except OSError:
    raw = b""
  try:
    answer = json.loads(raw.decode("utf-8"))
    if isinstance(answer, dict) and "error" in answer:
      return _one_line(answer["error"])
  except (UnicodeDecodeError, ValueError):
    pass
  return _one_line(raw.decode("utf-8", "replace")[:300] or e.reason)


def predict_grpc(server: str, model: str, inputs: Dict[str, object],
                 signature: str = "serving_default", version: Optional[int] = None,
                 timeout: float = DEFAULT_TIMEOUT) -> Dict[str, np.ndarray]:
  """The same call through TF Serving's gRPC API (--port, 8500 by default).

  Needs the `tensorflow-serving-api` package (imported here, not at module import).
  """
  try:
    # pylint: disable=g-import-not-at-top
    import grpc
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    import tensorflow as tf
  except ImportError as e:
    raise ConfigError(f"--protocol=grpc needs the {GRPC_PACKAGE} package (pip install "
                      f"{GRPC_PACKAGE}); or use --protocol=rest ({e})") from None
  parse_server(server)
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = int(version)
  for name, value in inputs.items():
    value = np.asarray(value)
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value, shape=value.shape))
  with grpc.insecure_channel(server) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
      response = stub.Predict(request, timeout=timeout)
    except grpc.RpcError as e:
      code = e.code() if hasattr(e, "code") else None
      details = _one_line(e.details() if hasattr(e, "details") else e)
      if code == grpc.StatusCode.UNAVAILABLE:
        raise ConfigError(f"--server={server}: gRPC unavailable ({details}); is TF Serving "
                          "running there with its gRPC API (--port)?") from None
      if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise ServerError(f"{server}: no answer within {timeout:g} s") from None
      raise ServerError(f"{server}: {code.name if code else 'error'}: {details}") from None
  return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def sample(server: str, model: str, n: int, seed: int = 0,
           signature: str = "serving_default", protocol: str = "rest",
           version: Optional[int] = None,
           timeout: float = DEFAULT_TIMEOUT) -> Dict[str, np.ndarray]:
  """n prior samples (seeds seed..seed+n-1) from a served rae_tf model: its outputs."""
  if protocol not in PROTOCOLS:
    raise ConfigError(f"unknown --protocol={protocol!r}; choose rest or grpc")
  seeds = check_seeds(n, seed)
  predict = predict_rest if protocol == "rest" else predict_grpc
  return predict(server, model, {"seed": seeds}, signature=signature, version=version,
                 timeout=timeout)


def images_from_outputs(outputs: Dict[str, np.ndarray], n: int) -> np.ndarray:
  """The [n, H, W, C] images of an answer; ServerError/ConfigError if there are none."""
  if "image" not in outputs:
    if "x" in outputs:
      raise ConfigError("the model serves vectors (output 'x'), not images: there is "
                        "nothing to draw")
    raise ServerError(f"the answer has no 'image' output (outputs: {sorted(outputs)})")
  images = np.asarray(outputs["image"], np.float32)
  if images.ndim != 4 or images.shape[0] != n or images.shape[-1] not in (1, 3):
    raise ServerError(f"'image' has shape {list(images.shape)}, expected [{n}, H, W, 1 or 3]")
  return images


def check_out_path(out: str, flag: str = "--out") -> str:
  """ConfigError unless `out` is a writable PNG path (checked before any request)."""
  if not out:
    raise ConfigError(f"{flag} is empty; pass a .png path")
  if not out.lower().endswith(".png"):
    raise ConfigError(f"{flag}={out} must end in .png")
  parent = os.path.dirname(os.path.abspath(out))
  if os.path.isdir(out):
    raise ConfigError(f"{flag}={out} is a directory; pass a .png file path")
  if not os.path.isdir(parent):
    raise ConfigError(f"{flag}={out}: directory {parent} does not exist")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ConfigError(f"{flag}={out}: directory {parent} is not writable")
  return out


def write_grid(images: np.ndarray, out: str, columns: int = 0) -> Tuple[int, int]:
  """Writes the images tiled into one PNG (atomically); returns its (width, height)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rae_tf import images as rae_images  # pylint: disable=g-import-not-at-top
  grid = rae_images.tile_images(images, columns=columns)
  pixels = np.round(grid * 255.0).astype(np.uint8)
  picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
  buffer = io.BytesIO()
  picture.save(buffer, format="PNG")
  outputs.atomic_write(out, buffer.getvalue())
  return picture.size


def sample_grid(server: str, model: str, n: int, out: str, seed: int = 0,
                signature: str = "serving_default", protocol: str = "rest",
                version: Optional[int] = None,
                timeout: float = DEFAULT_TIMEOUT) -> Tuple[int, int]:
  """Asks the server for n samples and writes them as a PNG grid; returns (width, height)."""
  check_out_path(out)
  outputs = sample(server, model, n, seed=seed, signature=signature, protocol=protocol,
                   version=version, timeout=timeout)
  return write_grid(images_from_outputs(outputs, n), out)
