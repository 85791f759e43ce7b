"""Every flagfile in configs/ (and the design card's ./flexae.flags) parses and validates."""
import glob
import os

import pytest

from conftest import ROOT, run_python

TRAIN = os.path.join(ROOT, "scripts", "train.py")
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "configs", "*.flags"))) + [
    os.path.join(ROOT, "flexae.flags")]


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=os.path.basename)
def test_flagfile_parses_and_validates(tmp_path, flagfile):
  # An unknown data set is checked last, after every other flag of the file was parsed and
  # validated, and before TensorFlow loads: a fast, side-effect-free dry run.
  proc = run_python([TRAIN, f"--flagfile={os.path.relpath(flagfile, ROOT)}",
                     "--dataset=no_such_data", f"--workdir={tmp_path / 'run'}"], timeout=60)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "unknown dataset 'no_such_data'" in proc.stderr, proc.stderr[-2000:]
  assert not (tmp_path / "run").exists()


def test_design_card_command_trains_flexae(tmp_path):
  """`python scripts/train.py --flagfile=flexae.flags` from the repo root, shrunk by flags."""
  proc = run_python([TRAIN, "--flagfile=flexae.flags", "--dataset=synthetic",
                     "--ambient_dim=8", "--true_latent_dim=2", "--num_examples=64",
                     "--arch=mlp", "--width=8", "--depth=1", "--latent_dim=2",
                     "--batch_size=16", "--epochs=1", "--critic_width=8",
                     "--critic_depth=1", "--prior_width=8", "--prior_depth=1",
                     f"--workdir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exp'}"])
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "training flexae" in proc.stdout
  assert (tmp_path / "exp" / "flexae_mnist" / "1" / "saved_model.pb").exists()
