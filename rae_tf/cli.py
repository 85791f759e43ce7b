"""Helpers for the thin absl entry points in scripts/: dataclass <-> flags, exit codes.

The scripts own FLAGS; these helpers take the FlagValues they are given, so library code
stays free of global flag state.
"""
import dataclasses
import sys
import typing
from typing import Callable, Dict

from absl import flags

from rae_tf.errors import ConfigError


def _base_type(kind):
  if typing.get_origin(kind) is typing.Union:  # Optional[X] -> X.
    kind = [a for a in typing.get_args(kind) if a is not type(None)][0]
  return kind


def define_flags(config_cls, help_text: Dict[str, str], flag_values=flags.FLAGS):
  """Defines one typed absl flag per dataclass field, default from the dataclass.

  Args:
    config_cls: a dataclass type.
    help_text: field name -> help string; every field must have one.
    flag_values: where to define them.
  """
  definers = {int: flags.DEFINE_integer, float: flags.DEFINE_float,
              str: flags.DEFINE_string, bool: flags.DEFINE_bool}
  for field in dataclasses.fields(config_cls):
    definers[_base_type(field.type)](field.name, field.default, help_text[field.name],
                                     flag_values=flag_values)


def config_from_flags(config_cls, flag_values=flags.FLAGS):
  """Builds the (frozen, validating) config dataclass from parsed flags."""
  return config_cls(**{f.name: flag_values[f.name].value
                       for f in dataclasses.fields(config_cls)})


def error_exit(message: str):
  """One `error:` line on stderr and exit status 2: the contract for bad input."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def make_flags_parser(flag_values=flags.FLAGS) -> Callable:
  """An absl `flags_parser` that turns flag errors into error_exit (not a traceback)."""
  def parse(argv):
    try:
      return flag_values(argv)
    except flags.Error as e:
      error_exit(f"{e}. See --helpfull for the flags.")
  return parse


def run_or_exit(fn: Callable, argv):
  """Runs fn(); ConfigError -> error_exit. Rejects stray positional arguments."""
  if len(argv) > 1:
    error_exit(f"unexpected arguments {argv[1:]}; flags look like --name=value")
  try:
    return fn()
  except ConfigError as e:
    error_exit(str(e))
