"""BUILD's py_test entry point runs a test file's tests, and fails when one fails."""
import os

from conftest import ROOT, run_python

RUNNER = os.path.join(ROOT, "tests", "run_pytest.py")


def test_runner_runs_the_file_and_reports_a_failure(tmp_path):
  (tmp_path / "test_sample.py").write_text(
      "def test_passes():\n  assert 1 + 1 == 2\n\n"
      "def test_fails():\n  assert 1 + 1 == 3\n")
  proc = run_python([RUNNER, "-q", "-p", "no:cacheprovider", str(tmp_path / "test_sample.py")],
                    cwd=str(tmp_path))
  assert proc.returncode == 1 and "1 failed, 1 passed" in proc.stdout, proc.stdout
  proc = run_python([RUNNER, "-q", "-p", "no:cacheprovider",
                     str(tmp_path / "test_sample.py") + "::test_passes"], cwd=str(tmp_path))
  assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout


def test_build_runs_every_test_file_through_the_runner():
  with open(os.path.join(ROOT, "BUILD")) as f:
    build = f.read()
  rule = build[build.index("[py_test("):]
  assert 'main = "tests/run_pytest.py"' in rule and 'args = ["$(location %s)" % test]' in rule
  assert "main = test" not in rule  # A test module run as a script passes without testing.
