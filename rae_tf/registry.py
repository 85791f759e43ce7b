"""A tiny name -> object registry, so configs choose parts by name."""
from typing import Dict, Generic, Iterable, TypeVar

from rae_tf.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
  """Maps names to objects (classes, factories, specs).

  Args:
    kind: what is registered, used in error messages ("model", "arch", ...).
    flag: the command-line flag that selects an entry, used in error messages.
  """

  def __init__(self, kind: str, flag: str):
    self.kind = kind
    self.flag = flag
    self._entries: Dict[str, T] = {}

  def register(self, name: str, obj: T = None):
    """Registers `obj` under `name`; usable as a decorator when `obj` is omitted."""
    if obj is None:
      def decorator(o: T) -> T:
        self.register(name, o)
        return o
      return decorator
    if name in self._entries:
      raise KeyError(f"{self.kind} {name!r} is registered twice")
    self._entries[name] = obj
    return obj

  def get(self, name: str) -> T:
    """Returns the entry for `name` or raises ConfigError listing the choices."""
    if name not in self._entries:
      raise ConfigError(
          f"unknown {self.kind} {name!r} for {self.flag}; choose one of: "
          f"{', '.join(sorted(self._entries))}")
    return self._entries[name]

  def names(self) -> Iterable[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries
