"""Safe run outputs: writability checks before any work, the one-writer lock, atomic writes.

Lower-level than training, export and evaluation (imports no TensorFlow), so every script
can check its output paths before it starts anything slow.
"""
import contextlib
import datetime
import fcntl
import hashlib
import os
import socket
import tempfile
from typing import Union

from rae_tf.errors import ConfigError


def check_creatable_dir(path: str, flag: str):
  """Raises ConfigError unless `path` is, or can be created as, a writable directory.

  Nothing is left behind: the deepest existing ancestor is probed with a temporary file
  that is removed at once.

  Args:
    path: the directory a run will write.
    flag: the flag that named it, for the message (e.g. "--workdir").
  """
  full = os.path.abspath(path)
  existing = full
  while not os.path.lexists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    what = "is" if existing == full else f"sits under {existing}, which is"
    kind = "a file, not a directory" if os.path.isfile(existing) else "not a directory"
    raise ConfigError(f"{flag}={path} {what} {kind}; choose another path")
  try:
    fd, probe = tempfile.mkstemp(dir=existing, prefix=".rae_tf-probe-")
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise ConfigError(f"{flag}={path}: cannot write in {existing} ({e.strerror}); choose "
                      "a writable directory") from None


def atomic_write(path: str, text: Union[str, bytes]):
  """Writes text (or bytes) to `path` through a temporary sibling and a rename, so the file
  is never half-written; the result is readable by all (0644)."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
  try:
    with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
      f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def file_digest(path: str) -> str:
  """16 hex digits of the file's SHA-256 ("none" if it cannot be read)."""
  try:
    with open(path, "rb") as f:
      return hashlib.sha256(f.read()).hexdigest()[:16]
  except OSError:
    return "none"


@contextlib.contextmanager
def waiting_file_lock(path: str, mode: int = 0o644):
  """Waits for an exclusive fcntl.flock on the file `path`, which is removed on release.

  Waiters that locked a file already unlinked by the previous holder notice (the inode
  at `path` is not theirs) and retry, so at most one holder owns the live file.
  """
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
      mine = os.fstat(fd)
      try:
        current = os.stat(path)
      except FileNotFoundError:
        current = None
    except BaseException:
      os.close(fd)
      raise
    if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
      break
    os.close(fd)
  try:
    yield
  finally:
    try:
      os.unlink(path)  # Still holding the lock: nobody else owns this inode.
    except FileNotFoundError:
      pass
    os.close(fd)


class DirectoryLock:
  """An exclusive advisory lock (fcntl.flock) on `<directory>/.lock`.

  The operating system releases it when its holder exits or is killed, so a SIGKILL never
  leaves a stale lock. The file records who holds it, for the refusal message. (flock is
  per host: on a network file system shared between hosts it may not exclude.)

  Args:
    directory: the directory to lock (created if missing).
    flag: the flag that named it, for the message.
  """

  FILE = ".lock"

  def __init__(self, directory: str, flag: str = "--workdir"):
    self.directory = directory
    self.flag = flag
    self.path = os.path.join(directory, self.FILE)
    self._fd = None

  def acquire(self) -> "DirectoryLock":
    os.makedirs(self.directory, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "another process"
      os.close(fd)
      raise ConfigError(f"{self.flag}={self.directory} is in use by {holder}; wait for it "
                        "to finish or use another directory") from None
    since = datetime.datetime.now().isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} since {since}".encode(), 0)
    self._fd = fd
    return self

  def release(self):
    if self._fd is not None:
      os.close(self._fd)  # Closing releases the flock.
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
