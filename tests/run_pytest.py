"""Runs test files under pytest: the entry point of BUILD's py_test targets.

Bazel runs a py_test's `main` as a plain script; a test module run that way would only
define its test functions and exit 0 without running one. This runs the files given as
arguments through pytest instead (pytest.ini's options; one process: `-n 0`).

  python tests/run_pytest.py tests/test_losses.py
"""
import sys

import pytest

if __name__ == "__main__":
  sys.exit(pytest.main(["-n", "0", *sys.argv[1:]]))
