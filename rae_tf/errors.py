"""User-facing errors.

`ConfigError` carries one line that names the offending flag/file and the fix. The
scripts in `scripts/` catch it, print it and exit with status 2 (no traceback).
"""


class ConfigError(ValueError):
  """Bad user input: an unknown name, an out-of-range value, an unreadable file."""


class TrainingDiverged(RuntimeError):
  """A loss or weight became non-finite: training stopped before writing anything bad.

  The scripts print its one line and exit with status 3.
  """


class RunFailed(RuntimeError):
  """A benchmark's run failed in its own process; the message names its log.

  The scripts print its one line and exit with status 1.
  """
