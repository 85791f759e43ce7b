"""rae_tf.latent_dim_experiments on tiny synthetic data: the sweep's report files (one row per
(model, m), m_A <= m, finite FIDs), the mask history and covariance figures (runs reused),
the NAC table (NAC in [0, 1]), run naming, bad input refused; the scripts' fast refusals."""
import json
import os

import numpy as np
import pytest

from rae_tf import latent_dim_experiments as lde
from rae_tf.errors import ConfigError

from conftest import ROOT, run_python

SCRIPTS = {name: os.path.join(ROOT, "scripts", f"{name}.py")
           for name in ("latent_dim_sweep", "mask_behaviour", "nac_table")}
TINY = dict(dataset="synthetic", true_latent_dim=2, ambient_dim=8, num_examples=128,
            latent_dims="2,4", epochs=2, batch_size=32, arch="mlp", width=16, depth=1,
            num_samples=100, prd_runs=1)
EXPECTED_ROWS = [("wae_mmd", 2), ("maskaae", 2), ("wae_mmd", 4), ("maskaae", 4)]


def _png_ok(path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    return image.format == "PNG" and image.size[0] > 200


@pytest.fixture(scope="module")
def work(tmp_path_factory):
  root = tmp_path_factory.mktemp("ld")
  config = lde.LatentDimSweepConfig(**TINY, work_root=str(root / "work"),
                                    out=str(root / "sweep"))
  report = lde.run_latent_dim_sweep(config, command="pytest", verbose=0)
  return root, config, report


def test_sweep_writes_one_row_per_model_and_m(work):
  _, config, report = work
  with open(config.out + ".json") as f:
    saved = json.load(f)
  assert saved["complete"] and saved["command"] == "pytest"
  assert saved["true_latent_dim"] == 2
  assert [(r["model"], r["m"]) for r in saved["rows"]] == EXPECTED_ROWS
  for row in saved["rows"]:
    assert 0 <= row["active_dims"] <= row["m"] == row["latent_dim"]
    assert np.isfinite(row["fid_generation"]) and np.isfinite(row["fid_reconstruction"])
    assert row["fid_label"] == "raw-data FID" and row["epochs"] == 2
    assert row["fid_generation_sd"] > 0  # The default 5 sample draws differ.
  for row in saved["rows"]:
    if row["model"] == "maskaae":  # m_A is the mask's count at the end of training.
      assert row["mask_epochs_recorded"] == 2
      assert row["active_dims"] == sum(v >= 0.1 for v in row["final_mask"])
  md = open(config.out + ".md").read()
  table = [l for l in md.splitlines() if l.startswith("| ")]
  assert len(table) == 2 + 4 and "`pytest`" in md and "Date:" in md
  assert all(" ± " in line for line in table[2:]) and "5 sample draws" in md
  assert all(_png_ok(config.out + s) for s in ("_fid.png", "_active_dims.png"))
  assert report["rows"][0]["fid_generation"] == saved["rows"][0]["fid_generation"]


def test_mask_behaviour_reuses_runs_and_writes_figures(work, capsys):
  root, sweep, _ = work
  config = lde.MaskBehaviourConfig(**TINY, work_root=sweep.work_root,
                                   out=str(root / "mask"), covariance_samples=200)
  report = lde.run_mask_behaviour(config, verbose=0)
  said = capsys.readouterr().out
  assert said.count("reused from") == 4, said  # Same settings: the sweep's runs.
  assert [f["m"] for f in report["figures"]] == [2, 4]
  for fig in report["figures"]:
    m = fig["m"]
    history = np.asarray(fig["mask_history"]["mask"])
    assert fig["mask_history"]["epochs"] == [1, 2] and history.shape == (2, m)
    assert np.all((history >= 0) & (history < 1))
    assert fig["mask_active_last"] == int(np.sum(history[-1] >= 0.1))
    assert _png_ok(f"{config.out}_mask_m{m}.png")
    for model in ("wae_mmd", "maskaae"):
      assert _png_ok(f"{config.out}_cov_{model}_m{m}.png")
      cov = np.asarray(fig["covariance"][model])
      assert cov.shape == (m, m) and np.allclose(cov, cov.T)
  md = open(config.out + ".md").read()
  assert "mask_m4.png" in md and "cov_maskaae_m2.png" in md


def test_nac_table_values_in_unit_interval(work):
  root, sweep, _ = work
  config = lde.NacTableConfig(**TINY, work_root=sweep.work_root, out=str(root / "nac"))
  lde.run_nac_table(config, command="pytest nac", verbose=0)
  with open(config.out + ".json") as f:
    saved = json.load(f)
  assert [(r["model"], r["m"]) for r in saved["rows"]] == EXPECTED_ROWS
  for row in saved["rows"]:
    assert row["active_dims"] <= row["m"]
    if row["active_dims"] >= 2:
      assert 0.0 <= row["nac"] <= 1.0 and np.isfinite(row["nac"])
  md = open(config.out + ".md").read()
  table = [l for l in md.splitlines() if l.startswith("| ")]
  assert table[0].startswith("| m | NAC wae_mmd | NAC maskaae | m_A wae_mmd")
  assert len(table) == (2 + 2) + (2 + 4)  # The m x model table, then one row per run.


def test_mask_history_of_a_run_without_one_is_empty(tmp_path):
  epochs, history = lde.mask_history(str(tmp_path))
  assert epochs == [] and history.size == 0


def test_runs_are_named_by_their_settings(tmp_path):
  a = lde.LatentDimSweepConfig(**TINY, work_root=str(tmp_path))
  b = lde.NacTableConfig(**TINY, work_root=str(tmp_path))
  c = lde.LatentDimSweepConfig(**{**TINY, "maskaae_flags": "--mask_learning_rate=5e-3"},
                               work_root=str(tmp_path))
  assert a.train_config("maskaae", 4).workdir == b.train_config("maskaae", 4).workdir
  assert a.train_config("wae_mmd", 4).workdir == c.train_config("wae_mmd", 4).workdir
  assert a.train_config("maskaae", 4).workdir != c.train_config("maskaae", 4).workdir
  assert c.train_config("maskaae", 4).weight("mask_learning_rate") == 5e-3
  assert c.train_config("wae_mmd", 4).weight("mask_learning_rate") is None


@pytest.mark.parametrize("changes,needle", [
    (dict(latent_dims="4,x"), "positive integers"),
    (dict(latent_dims="0,4"), "positive integers"),
    (dict(latent_dims="4,4"), "repeated"),
    (dict(wae_model="vae"), "--wae_model"),
    (dict(maskaae_flags="--latent_dim=3"), "--latent_dim"),
    (dict(maskaae_flags="--epochs=3"), "--epochs"),
    (dict(wae_flags="--no_such_flag=1"), "no_such_flag"),
    (dict(dataset="nope"), "--dataset"),
    (dict(epochs=0), "--epochs"),
    (dict(draws=0), "--draws"),
])
def test_bad_config_refused(tmp_path, changes, needle):
  with pytest.raises(ConfigError, match=needle):
    lde.LatentDimSweepConfig(**{**TINY, **changes}, work_root=str(tmp_path / "w"))


def test_bad_data_refused_before_anything_is_written(tmp_path):
  config = lde.NacTableConfig(**{**TINY, "num_samples": 5000}, work_root=str(tmp_path / "w"),
                              out=str(tmp_path / "o" / "nac"))
  with pytest.raises(ConfigError, match="--num_samples=5000 exceeds"):
    lde.run_nac_table(config, verbose=0)
  assert not os.path.exists(tmp_path / "w") and not os.path.exists(tmp_path / "o")


@pytest.mark.parametrize("script,args,needle", [
    ("latent_dim_sweep", ["--latent_dims=2,two"], "positive integers"),
    ("mask_behaviour", ["--maskaae_flags=--workdir=x"], "--workdir"),
    ("nac_table", ["--wae_model=vae"], "--wae_model"),
    ("nac_table", ["--dataset=npz:/nonexistent/x.npz"], "file not found"),
])
def test_scripts_bad_flags_exit_2_nothing_written(tmp_path, script, args, needle):
  work_root, out = tmp_path / "w", tmp_path / "o" / "report"
  proc = run_python([SCRIPTS[script], f"--work_root={work_root}", f"--out={out}"] + args,
                    timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and needle in errors[0], proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert not work_root.exists() and not out.parent.exists()
