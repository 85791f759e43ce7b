"""scripts/train.py: bad input is one line on stderr, exit status 2, no traceback, no files."""
import os

import pytest

from conftest import ROOT, run_python

TRAIN = os.path.join(ROOT, "scripts", "train.py")


@pytest.mark.parametrize("args,needle", [
    (["--model=nope"], "--model"),
    (["--dataset=nope"], "--dataset"),
    (["--arch=nope"], "--arch"),
    (["--latent_dim=0"], "--latent_dim"),
    (["--batch_size=-4"], "--batch_size"),
    (["--dataset=npz:/nonexistent/file.npz"], "npz"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["--flagfile=/nonexistent/x.flags"], "x.flags"),
    (["--strategy=tpu"], "--strategy"),
    (["--strategy=multi_worker"], "TF_CONFIG"),
    (["--latent_dim=abc"], "latent_dim"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
  workdir = tmp_path / "run"
  exports = tmp_path / "exports"
  proc = run_python([TRAIN, f"--workdir={workdir}", f"--export_dir={exports}"] + args)
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert "Traceback" not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
  assert not workdir.exists() and not exports.exists()


def test_flagfile_and_override(tmp_path):
  flagfile = tmp_path / "tiny.flags"
  flagfile.write_text("\n".join([
      "# a comment", "--model=ae", "--dataset=synthetic", "--ambient_dim=8",
      "--true_latent_dim=2", "--num_examples=64", "--arch=mlp", "--width=8", "--depth=1",
      "--batch_size=16", "--epochs=1", "--latent_dim=3",
      f"--workdir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}"]))
  proc = run_python([TRAIN, f"--flagfile={flagfile}", "--latent_dim=2"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "SavedModel (" in proc.stdout and "tensorboard --logdir" in proc.stdout
  assert '"latent_dim": 2' in (tmp_path / "run" / "config.json").read_text()
  assert (tmp_path / "exports" / "ae" / "1" / "saved_model.pb").exists()
