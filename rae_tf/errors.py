"""User-facing errors.

`ConfigError` carries one line that names the offending flag/file and the fix. The
scripts in `scripts/` catch it, print it and exit with status 2 (no traceback).
"""


class ConfigError(ValueError):
  """Bad user input: an unknown name, an out-of-range value, an unreadable file."""
