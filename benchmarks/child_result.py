"""The benchmarks' child-process protocol: a child prints one `RESULT {json}` line.

Each measurement runs in a fresh process so that its peak RSS and its TensorFlow state are
its own. Standard library only: benchmarks/pythae_peer.py uses it from a virtual
environment without TensorFlow or rae_tf.
"""
import json
import subprocess
from typing import Optional, Sequence, Tuple

PREFIX = "RESULT "


def emit(row: dict):
  """Prints the child's result line (call once, last)."""
  print(PREFIX + json.dumps(row), flush=True)


def run(args: Sequence[str]) -> Tuple[Optional[dict], str]:
  """Runs a child; (its result row, "") or (None, the last line of its stderr, <= 300
  characters) when it failed or printed no result."""
  proc = subprocess.run(list(args), capture_output=True, text=True)
  found = [l for l in proc.stdout.splitlines() if l.startswith(PREFIX)]
  if proc.returncode or not found:
    return None, (proc.stderr.strip().splitlines() or ["no output"])[-1][-300:]
  return json.loads(found[0][len(PREFIX):]), ""
