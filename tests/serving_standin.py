"""A stand-in for TF Serving's REST predict API, serving SavedModels loaded in-process.

No TF Serving binary is installable here; this answers the same contract closely enough
for client tests:
  POST /v1/models/NAME[/versions/V]:predict
    {"signature_name": S, "inputs": {...} | value}    -> {"outputs": {...} | value}
    {"signature_name": S, "instances": [row, ...]}    -> {"predictions": [row, ...]}
  errors: HTTP 400 (bad request, failed run: TF's InvalidArgument), 404 (unknown model or
  URL), {"error": "..."}.
Like TF Serving, JSON numbers are converted to the signature's dtype and a fractional
number for an integer input is refused.
"""
import http.server
import json
import re
import threading

import numpy as np
import tensorflow as tf

_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")


class BadRequest(Exception):

  def __init__(self, message, status=400):
    super().__init__(message)
    self.status = status


def _to_array(value, spec, name):
  arr = np.asarray(value)
  if arr.dtype == object:
    raise BadRequest(f"input {name!r}: ragged or non-numeric JSON")
  if spec.dtype.is_integer:
    if arr.dtype.kind == "f":
      raise BadRequest(f"JSON Value for input {name!r} is not of expected type: "
                       f"{spec.dtype.name} (got fractional numbers)")
    if arr.dtype.kind not in "iu" and arr.size:
      raise BadRequest(f"input {name!r}: expected {spec.dtype.name}")
  elif spec.dtype.is_floating and arr.dtype.kind not in "iuf" and arr.size:
    raise BadRequest(f"input {name!r}: expected {spec.dtype.name}")
  return tf.constant(arr.astype(spec.dtype.as_numpy_dtype))


class StandIn:
  """Serves {name: SavedModel path} on 127.0.0.1:<ephemeral port> in a daemon thread."""

  def __init__(self, models):
    self.models = {name: tf.saved_model.load(path) for name, path in models.items()}
    self.requests = 0
    standin = self

    class Handler(http.server.BaseHTTPRequestHandler):
      timeout = 30  # Socket timeout: a stuck client cannot hold a thread forever.

      def log_message(self, *args):
        pass

      def _reply(self, status, obj):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

      def do_GET(self):
        self._reply(404, {"error": "Malformed request: GET " + self.path})

      def do_POST(self):
        standin.requests += 1
        try:
          length = int(self.headers.get("Content-Length", 0))
          self._reply(200, standin.predict(self.path, self.rfile.read(length)))
        except BadRequest as e:
          self._reply(e.status, {"error": str(e)})

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.server.daemon_threads = True
    self.port = self.server.server_address[1]
    self.address = f"127.0.0.1:{self.port}"
    self.thread = threading.Thread(target=self.server.serve_forever,
                                   kwargs={"poll_interval": 0.1}, daemon=True)

  def __enter__(self):
    self.thread.start()
    return self

  def __exit__(self, *exc):
    self.server.shutdown()
    self.server.server_close()
    self.thread.join(timeout=10)

  def predict(self, path, raw):
    match = _PATH.match(path)
    if not match:
      raise BadRequest(f"Malformed request: POST {path}", 404)
    name = match.group(1)
    if name not in self.models:
      raise BadRequest(f"Servable not found for request: Latest({name})", 404)
    try:
      body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
      raise BadRequest(f"JSON Parse error: {e}") from None
    if not isinstance(body, dict):
      raise BadRequest("JSON Value: not an object")
    signature = body.get("signature_name", "serving_default")
    signatures = self.models[name].signatures
    if signature not in signatures:
      raise BadRequest(f'Serving signature name: "{signature}" not found in signature def')
    fn = signatures[signature]
    specs = fn.structured_input_signature[1]
    if ("inputs" in body) == ("instances" in body):
      raise BadRequest("Missing 'inputs' or 'instances' key" if "inputs" not in body
                       else "Both 'inputs' and 'instances' given")
    columnar = "inputs" in body
    if columnar:
      given = body["inputs"]
      if not isinstance(given, dict):
        if len(specs) != 1:
          raise BadRequest("unnamed 'inputs' need a signature with one input")
        given = {next(iter(specs)): given}
    else:
      rows = body["instances"]
      if not isinstance(rows, list) or not rows:
        raise BadRequest("'instances' must be a non-empty list")
      if all(isinstance(r, dict) for r in rows):
        given = {k: [r.get(k) for r in rows] for k in rows[0]}
      elif len(specs) == 1:
        given = {next(iter(specs)): rows}
      else:
        raise BadRequest("rows of 'instances' must be objects for a signature with "
                         "several inputs")
    if set(given) != set(specs):
      raise BadRequest(f"inputs {sorted(given)} do not match the signature's {sorted(specs)}")
    tensors = {k: _to_array(v, specs[k], k) for k, v in given.items()}
    try:
      outputs = fn(**tensors)
    except (tf.errors.OpError, TypeError, ValueError) as e:
      message = getattr(e, "message", None) or str(e)
      raise BadRequest(" ".join(message.split())) from None
    outputs = {k: v.numpy() for k, v in outputs.items()}
    if columnar:
      if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
      return {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    n = len(next(iter(outputs.values())))
    if len(outputs) == 1:
      return {"predictions": next(iter(outputs.values())).tolist()}
    return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(n)]}
