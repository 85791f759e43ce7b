"""Helpers for the thin absl entry points in scripts/: flags, quiet start, exit codes.

The scripts own FLAGS; these helpers take the FlagValues they are given, so library code
stays free of global flag state. Importing this module does not import TensorFlow, so a
script answers bad flags in well under a second. The pattern of every script:

  def main(argv):
    def work():
      config = cli.config_from_flags(SomeConfig)        # Validates, no TensorFlow yet.
      training = cli.import_quietly("rae_tf.training")  # TF's start-up log hidden.
      ...
    cli.run_or_exit(work, argv)                         # Errors -> one line + status.

  if __name__ == "__main__":
    app.run(main, flags_parser=cli.make_flags_parser())
"""
import dataclasses
import errno
import importlib
import os
import re
import select
import sys
import tempfile
import traceback
import typing
from typing import Callable, Dict, List, Optional

from absl import flags
from absl import logging as absl_logging

from rae_tf.errors import ConfigError
from rae_tf.errors import RunFailed
from rae_tf.errors import TrainingDiverged


def _base_type(kind):
  if typing.get_origin(kind) is typing.Union:  # Optional[X] -> X.
    kind = [a for a in typing.get_args(kind) if a is not type(None)][0]
  return kind


_DEFINERS = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string,
             bool: flags.DEFINE_bool}


def define_flags(config_cls, help_text: Dict[str, str], flag_values=flags.FLAGS):
  """Defines one typed absl flag per dataclass field, default from the dataclass.

  A field whose metadata holds {"flags": {name: Param}} (TrainConfig.weights) is a group:
  one flag per `rae_tf.model_params.Param`, default None (unset), help from the Param.

  Args:
    config_cls: a dataclass type.
    help_text: field name -> help string; every plain field must have one.
    flag_values: where to define them.
  """
  for field in dataclasses.fields(config_cls):
    group = field.metadata.get("flags")
    if group is not None:
      for param in group.values():
        _DEFINERS[param.kind](param.name, None, param.help, flag_values=flag_values)
    else:
      _DEFINERS[_base_type(field.type)](field.name, field.default, help_text[field.name],
                                        flag_values=flag_values)


def flag_values_given(config_cls, flag_values, only_present: bool = False
                      ) -> Dict[str, object]:
  """{name: value} of config_cls's flags (a group's flags flat, unset ones left out).

  Args:
    config_cls: the dataclass whose flags `define_flags` defined.
    flag_values: parsed flags.
    only_present: only the flags given on the command line / flagfile.
  """
  out = {}
  for field in dataclasses.fields(config_cls):
    group = field.metadata.get("flags")
    for name in (group or (field.name,)):
      if only_present and not flag_values[name].present:
        continue
      if group is None or flag_values[name].value is not None:
        out[name] = flag_values[name].value
  return out


def config_from_flags(config_cls, flag_values=flags.FLAGS):
  """Builds the (frozen, validating) config dataclass from parsed flags."""
  values = flag_values_given(config_cls, flag_values)
  make = getattr(config_cls, "make", None)  # Takes a group's flags flat (TrainConfig).
  return make(**values) if make is not None else config_cls(**values)


def error_exit(message: str):
  """One `error:` line on stderr and exit status 2: the contract for bad input."""
  _exit_with_line(f"error: {message}", 2)


def _exit_with_line(line: str, status: int):
  try:
    sys.stdout.flush()  # Keep the order of what was printed before.
  except (OSError, ValueError):
    pass
  print(line, file=sys.stderr, flush=True)
  sys.exit(status)


def make_flags_parser(flag_values=flags.FLAGS) -> Callable:
  """An absl `flags_parser` that turns flag errors into error_exit (not a traceback)."""
  def parse(argv):
    try:
      return flag_values(argv)
    except flags.Error as e:
      # absl words a missing --flagfile "ERROR:: Unable to open flagfile: ...".
      message = str(e).removeprefix("ERROR:: ").rstrip(".")
      error_exit(f"{message}. See --helpfull for the flags.")
    except OSError as e:  # absl reads --flagfile itself; most errors arrive as flags.Error.
      error_exit(f"cannot read the flags: {describe_os_error(e)}")
    except UnicodeDecodeError as e:
      error_exit(f"cannot read the flags: a --flagfile is not UTF-8 text ({e.reason} at "
                 f"byte {e.start}); pass a text file with one --name=value per line")
  return parse


# ---------------------------------------------------------------------------- quiet start

# TensorFlow's C++ log levels (TF_CPP_MIN_LOG_LEVEL): 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL.
_SEVERITIES = "IWEF"
# absl's C++ format ("I0000 00:00:1795772387.074510    3253 cudart_stub.cc:31] ...") and
# the older TF one ("2024-05-01 12:00:00.000000: I tensorflow/core/...cc:42] ...").
_CPP_LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ |"
                           r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )\S+:\d+\] ")
_ABSL_PRE_INIT = "WARNING: All log messages before absl::InitializeLog() is called"
_tf_log_level: Optional[int] = None  # Decided once per process by configure_logging.


def configure_logging(flag_values=flags.FLAGS) -> int:
  """Sets Python's and TensorFlow's C++ log levels from absl's --verbosity. No TF import.

  Without --verbosity: Python logs warnings (absl's app.run would make it INFO, whose TF
  lines drown the progress bar) and TF_CPP_MIN_LOG_LEVEL=3 (only fatal errors).
  --verbosity=0 (INFO): TF's C++ warnings and errors too (level 1); --verbosity>=1: all of
  TF's C++ log (level 0). A TF_CPP_MIN_LOG_LEVEL set in the environment wins. Must run
  before TensorFlow is imported; later calls return the C++ level chosen by the first.

  Returns:
    The C++ log level (0 INFO ... 3 FATAL).
  """
  global _tf_log_level
  if _tf_log_level is not None:
    return _tf_log_level
  verbosity = None
  if "verbosity" in flag_values and flag_values["verbosity"].present:
    verbosity = flag_values["verbosity"].value
  if verbosity is None:
    absl_logging.set_verbosity(absl_logging.WARNING)
  user = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
  if user is not None:
    try:
      level = int(user)
    except ValueError:
      level = 0  # TensorFlow reads an unparsable value as 0 too.
  else:
    level = 3 if verbosity is None or verbosity < 0 else 1 if verbosity == 0 else 0
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(level)
  if level >= 2:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC (multi-worker) start-up notes.
  _tf_log_level = min(max(level, 0), 3)
  return _tf_log_level


# A line after a dropped log line that still starts something of its own (kept).
_NEW_MESSAGE = re.compile(r"^(Traceback|\S+:\d+: \w*Warning|\w*(Error|Exception|Warning)\b)")


def _filter_start_up_lines(text: str, level: int) -> List[str]:
  """The lines written while TensorFlow loads, minus those below the wanted log level.

  Drops absl's pre-init banner and C++ log lines below `level` together with their
  continuation lines (TF's CPU-feature notice spans two lines); keeps everything else.
  """
  kept, dropping = [], False
  for line in text.splitlines():
    match = _CPP_LOG_LINE.match(line)
    if line.startswith(_ABSL_PRE_INIT):
      dropping = level > 0  # absl's banner before pre-init lines; meaningless alone.
    elif match:
      dropping = _SEVERITIES.index(match.group(1) or match.group(2)) < level
    elif dropping and _NEW_MESSAGE.match(line):
      dropping = False
    if not dropping:
      kept.append(line)
  return kept


def _capture_file():
  """An unnamed file for fd 2 (memfd: no disk needed), or None when none can be had."""
  try:
    if hasattr(os, "memfd_create"):
      return os.fdopen(os.memfd_create("rae_tf_tf_import"), "w+b")
    return tempfile.TemporaryFile()
  except OSError:
    return None


def import_quietly(name: str = "tensorflow", flag_values=flags.FLAGS):
  """Imports module `name` (which imports TensorFlow) without TF's start-up log lines.

  TF_CPP_MIN_LOG_LEVEL (see configure_logging) silences TensorFlow's log once it runs,
  but some shared libraries log while they load, before TF applies the level: absl's
  "All log messages before absl::InitializeLog() ..." banner and, without a GPU,
  "cudart_stub.cc ... Could not find cuda drivers" (twice: two libraries). So while TF
  loads, file descriptor 2 goes to an unnamed file; afterwards every captured line is
  written back to stderr except log lines below the level (with their continuation lines)
  and the banner. Nothing else is dropped: Python warnings and the output before an import
  error still reach the user (only a hard crash inside the import, such as SIGILL on an
  unsupported CPU, would lose them: --verbosity=1 captures nothing). With level 0 nothing
  is captured.

  Args:
    name: the module to import, e.g. "rae_tf.training".
    flag_values: parsed flags (for --verbosity).

  Returns:
    The imported module.
  """
  if "tensorflow" in sys.modules:  # Already loaded (tests, second call): nothing to hide.
    return importlib.import_module(name)
  level = configure_logging(flag_values)
  capture = _capture_file() if level > 0 else None
  if capture is None:
    return importlib.import_module(name)
  with capture:
    try:
      sys.stderr.flush()
      saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # No usable fd 2: import as is.
      return importlib.import_module(name)
    os.dup2(capture.fileno(), 2)
    try:
      return importlib.import_module(name)
    finally:
      try:
        sys.stderr.flush()
      except (OSError, ValueError, AttributeError):
        pass
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      text = capture.read().decode("utf-8", errors="replace")
      kept = _filter_start_up_lines(text, level)
      if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- errors -> one line

# The strerror texts, to recognise TensorFlow's file-system errors ("PATH; No space left on
# device"), which are tf.errors.OpError, not OSError.
_STRERRORS = frozenset(os.strerror(code) for code in errno.errorcode)
_OS_ERROR_HINTS = {
    errno.ENOSPC: "free some disk space or write elsewhere",
    getattr(errno, "EDQUOT", errno.ENOSPC): "free some disk space or write elsewhere",
    errno.EROFS: "write to a writable directory",
    errno.EACCES: "check the permissions or write elsewhere",
    errno.EPERM: "check the permissions or write elsewhere",
}
_HINTS_BY_TEXT = {os.strerror(code): hint for code, hint in _OS_ERROR_HINTS.items()}


def _where(tb) -> str:
  """'dir/file.py:LINE in function' of the innermost rae_tf / scripts frame of a traceback
  (else of the innermost frame), this module's own frames left out."""
  project, innermost = "", ""
  for frame, line in traceback.walk_tb(tb):
    path = os.path.normpath(frame.f_code.co_filename)
    if os.path.abspath(path) == os.path.abspath(__file__):
      continue
    parts = path.split(os.sep)
    innermost = f"{'/'.join(parts[-2:])}:{line} in {frame.f_code.co_name}"
    if "rae_tf" in parts or "scripts" in parts:
      project = innermost
  return project or innermost


def describe_os_error(e: OSError) -> str:
  """'<what failed>: <strerror>[; hint]' for an OSError, on one line."""
  strerror = e.strerror or str(e) or type(e).__name__
  if e.filename is not None:
    what = str(e.filename)
    if e.filename2 is not None:
      what += f" -> {e.filename2}"
  else:
    where = _where(e.__traceback__)
    what = f"an operation on a file or device ({where})" if where else type(e).__name__
  hint = _OS_ERROR_HINTS.get(e.errno)
  return f"{what}: {strerror}" + (f"; {hint}" if hint else "")


def _tf_os_error_line(e: BaseException) -> Optional[str]:
  """'PATH: strerror[; hint]' when e is a TensorFlow OpError that wraps an OS error."""
  if not type(e).__module__.startswith("tensorflow") or not hasattr(e, "message"):
    return None
  message = str(getattr(e, "message", "") or "").strip().splitlines()
  if not message:
    return None
  text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", message[0])
  text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)
  path, sep, strerror = text.rpartition("; ")
  if not sep or not path or strerror not in _STRERRORS:
    return None
  hint = _HINTS_BY_TEXT.get(strerror)
  return f"{path}: {strerror}" + (f"; {hint}" if hint else "")


def _stdout_is_closed() -> bool:
  """True when stdout is a pipe whose reader has gone (`script | head`); then stdout is
  pointed at /dev/null so that Python's exit does not complain about it again."""
  try:
    fd = sys.stdout.fileno()
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    closed = any(events & select.POLLERR for _, events in poll.poll(0))
    if closed:
      devnull = os.open(os.devnull, os.O_WRONLY)
      os.dup2(devnull, fd)
      os.close(devnull)
    return closed
  except (OSError, ValueError, AttributeError):  # No poll (Windows), no fd (captured).
    return False


def run_or_exit(fn: Callable, argv, interrupted: str = "interrupted"):
  """Runs fn(); user-facing failures become one line on stderr and an exit status.

  ConfigError (bad input)                       -> `error: ...`, status 2
  TrainingDiverged                              -> `error: ...`, status 3
  RunFailed (a benchmark run's own process)     -> `error: ...`, status 1
  OSError, TF file-system errors (disk full,
  permission denied, read-only file system ...) -> `error: <what failed>: <strerror>`, 1
  KeyboardInterrupt                             -> `interrupted`, status 130
  Anything else is a bug: its traceback is kept for the report.

  Args:
    fn: the script's work.
    argv: absl's remaining argv; stray positional arguments are rejected.
    interrupted: the line printed on Ctrl-C.
  """
  if len(argv) > 1:
    error_exit(f"unexpected arguments {argv[1:]}; flags look like --name=value")
  try:
    return fn()
  except ConfigError as e:
    error_exit(str(e))
  except TrainingDiverged as e:
    _exit_with_line(f"error: {e}", 3)
  except RunFailed as e:
    _exit_with_line(f"error: {e}", 1)
  except KeyboardInterrupt:
    _exit_with_line(interrupted, 130)
  except BrokenPipeError as e:
    if _stdout_is_closed():  # `script | head`: the reader has gone; leave quietly.
      sys.exit(1)
    _exit_with_line(f"error: {describe_os_error(e)}", 1)
  except OSError as e:
    _exit_with_line(f"error: {describe_os_error(e)}", 1)
  except Exception as e:  # pylint: disable=broad-except
    line = _tf_os_error_line(e)
    if line is None:
      raise  # A bug: keep the traceback.
    _exit_with_line(f"error: {line}", 1)
