"""rae_tf.experiments: the prior-capacity sweep on tiny synthetic data (report files, one
row per model, finite FIDs, resume without retraining), bad input refused before any work,
train-flag pass-through, the shape sentence; the scripts' fast refusals."""
import dataclasses
import glob
import json
import os

import numpy as np
import pytest

from rae_tf import experiments
from rae_tf.errors import ConfigError
from rae_tf.experiments import PriorCapacityConfig

from conftest import ROOT, run_python, tiny_labelled_npz

SWEEP = os.path.join(ROOT, "scripts", "prior_capacity_sweep.py")
QUALITY = os.path.join(ROOT, "benchmarks", "flexae_quality.py")

TINY = dict(dataset="synthetic", true_latent_dim=2, ambient_dim=8, num_examples=200,
            train_fraction=0.5, capacities="8x1,16x2", epochs=1, arch="mlp", width=8,
            depth=1, latent_dim=3, batch_size=25, critic_width=8, critic_depth=1,
            critic_steps=1, num_samples=100, features="raw", prd_runs=1)


def _config(tmp_path, **kw):
  return PriorCapacityConfig(**{**TINY, "out_dir": str(tmp_path / "sweep"), **kw})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  config = _config(tmp_path_factory.mktemp("pc"))
  report = experiments.run_prior_capacity_sweep(config, command="pytest", verbose=0)
  return config, report


def test_sweep_writes_json_md_png_with_one_row_per_model(sweep):
  config, report = sweep
  out = config.out_dir
  with open(os.path.join(out, experiments.SWEEP_JSON)) as f:
    saved = json.load(f)
  assert saved["complete"] and saved["command"] == "pytest"
  assert [(r["index"], r["prior_width"], r["prior_depth"]) for r in saved["models"]] == [
      (1, 8, 1), (2, 16, 2)]
  for row in saved["models"]:
    assert np.isfinite(row["fid_generation"]) and np.isfinite(row["fid_reconstruction"])
    assert row["fid_label"] == "raw-data FID" and row["num_samples"] == 100
    assert row["epochs"] == 1 and row["prior_params"] > 0
  # Prior generator size grows along the ladder: 3 -> 8 -> 3 vs 3 -> 16 -> 16 -> 3.
  assert saved["models"][0]["prior_params"] == 4 * 8 + 9 * 3
  assert saved["models"][1]["prior_params"] == 4 * 16 + 17 * 16 + 17 * 3
  assert saved["train_subset"]["num_train"] == 100  # Half of the 200 training examples.
  assert saved["shape"] and saved["shape"] == report["shape"]
  md = open(os.path.join(out, experiments.SWEEP_MD)).read()
  table = [l for l in md.splitlines() if l.startswith("| ")]
  assert len(table) == 2 + 2 and "8 × 1" in table[2] and "16 × 2" in table[3]
  assert "Shape:" in md and "`pytest`" in md
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(os.path.join(out, experiments.SWEEP_PNG)) as image:
    assert image.format == "PNG" and image.size[0] > 300


def test_rerun_resumes_without_retraining_or_reevaluating(sweep, capsys):
  config, report = sweep
  again = experiments.run_prior_capacity_sweep(config, verbose=0)
  said = capsys.readouterr().out
  assert said.count("reused from") == 2, said
  assert "already holds 1 epochs" in said
  for a, b in zip(report["models"], again["models"]):
    assert a["fid_generation"] == b["fid_generation"] and a["checkpoint"] == b["checkpoint"]


def test_evaluation_cached_before_a_request_field_existed_is_reused(sweep, capsys):
  # Caches written before EvalRequest.draws existed lack the field: it holds its default.
  config, report = sweep
  caches = glob.glob(os.path.join(config.out_dir, "**", "experiment_eval_trained.json"),
                     recursive=True)
  assert len(caches) == 2, caches
  for path in caches:
    with open(path) as f:
      cached = json.load(f)
    assert cached["request"].pop("draws") == 1
    with open(path, "w") as f:
      json.dump(cached, f)
  again = experiments.run_prior_capacity_sweep(config, verbose=0)
  assert capsys.readouterr().out.count("reused from") == 2
  assert [r["fid_generation"] for r in again["models"]] == [
      r["fid_generation"] for r in report["models"]]


def test_resume_with_other_settings_is_refused_before_work(sweep):
  config, _ = sweep
  before = sorted(os.listdir(config.out_dir))
  with pytest.raises(ConfigError, match="--out_dir=.*learning_rate"):
    experiments.run_prior_capacity_sweep(
        dataclasses.replace(config, learning_rate=1e-2), verbose=0)
  assert sorted(os.listdir(config.out_dir)) == before


def test_rewritten_checkpoint_is_evaluated_again(sweep, capsys):
  # Prior refinement (a resumable flag) rewrites ckpt-<step> under the same name: the
  # cached evaluation must not be reused for the new weights.
  config, report = sweep
  refined = experiments.run_prior_capacity_sweep(
      dataclasses.replace(config, train_flags="--prior_refine_steps=3"), verbose=0)
  said = capsys.readouterr().out
  assert "reused from" not in said and said.count("refining the prior") == 2, said
  for a, b in zip(report["models"], refined["models"]):
    assert a["checkpoint"] == b["checkpoint"]
    assert a["fid_generation"] != b["fid_generation"]
    assert a["fid_reconstruction"] == pytest.approx(b["fid_reconstruction"])


def test_expost_fit_is_reused_across_requests_until_its_file_changes(tmp_path, capsys):
  from rae_tf import expost  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  tc = TrainConfig.make(model="ae", dataset="synthetic", true_latent_dim=2, ambient_dim=6,
                        num_examples=120, latent_dim=2, arch="mlp", width=8, depth=1,
                        batch_size=20, epochs=1, workdir=str(tmp_path / "run"),
                        export_dir="")
  request = experiments.EvalRequest(num_samples=40, features="raw", prd_runs=1,
                                    gmm_components=2)

  def evaluate(**changes):
    outcome = experiments.train_and_evaluate(tc, dataclasses.replace(request, **changes),
                                             ("gmm",), verbose=0)
    return outcome.metrics["gmm"]["fid_generation"], capsys.readouterr().out

  first, said = evaluate()
  assert said.count("fitting the ex-post gmm") == 1, said
  # Another request (more samples): evaluated again, on the same fitted GMM.
  second, said = evaluate(num_samples=50)
  assert "fitting the ex-post" not in said and "ex-post gmm prior of ckpt" in said, said
  assert np.isfinite(second)
  # Other components: a new fit.
  _, said = evaluate(gmm_components=3)
  assert said.count("fitting the ex-post gmm") == 1, said
  # The file rewritten behind its back (scripts/fit_prior.py): fitted again, not trusted.
  expost.fit_for_run(tc.workdir, "gmm", components=2, seed=5)
  capsys.readouterr()
  again, said = evaluate()
  assert said.count("fitting the ex-post gmm") == 1 and "reused from" not in said, said
  assert again == pytest.approx(first)  # Same checkpoint, options, seed: the same fit.


def test_evaluation_follows_a_moved_classifier_folder_by_its_weights(tmp_path, capsys):
  """The evaluation cache knows the domain classifier by its weights, not its folder: a
  copied folder reuses the evaluation; a folder without that classifier evaluates again."""
  import shutil  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  tiny_labelled_npz(tmp_path / "tiny.npz")
  tc = TrainConfig.make(model="ae", dataset=f"npz:{tmp_path / 'tiny.npz'}", arch="mlp",
                        width=8, depth=1, latent_dim=2, batch_size=50, epochs=1,
                        steps_per_epoch=2, workdir=str(tmp_path / "run"), export_dir="")

  def evaluate(folder):
    request = experiments.EvalRequest(num_samples=50, features="domain", prd_runs=1,
                                      cache_dir=str(tmp_path / folder))
    outcome = experiments.train_and_evaluate(tc, request, ("trained",), verbose=0)
    return outcome.metrics["trained"], capsys.readouterr().out

  first, said = evaluate("a")
  assert "reused from" not in said
  shutil.copytree(tmp_path / "a", tmp_path / "b")
  moved, said = evaluate("b")
  assert "reused from" in said and moved == first, said
  (tmp_path / "c").mkdir()
  for f in (tmp_path / "a").glob("*.json"):  # The json without its weights: not it.
    shutil.copy(f, tmp_path / "c")
  other, said = evaluate("c")
  assert "reused from" not in said, said
  assert list((tmp_path / "c").glob("*.keras"))  # Trained its own classifier there.
  assert other["domain_classifier_id"] and np.isfinite(other["fid_generation"])


def test_recipes_own_expost_fit_from_training_is_reused_by_evaluation(tmp_path, capsys):
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  tc = TrainConfig.make(model="ae_gmm", dataset="synthetic", true_latent_dim=2,
                        ambient_dim=6, num_examples=200, latent_dim=2, arch="mlp", width=8,
                        depth=1, batch_size=20, epochs=1, workdir=str(tmp_path / "run"),
                        export_dir="")
  request = experiments.EvalRequest(num_samples=40, features="raw", prd_runs=1)
  outcome = experiments.train_and_evaluate(tc, request, ("gmm",), verbose=0)
  said = capsys.readouterr().out
  # Training fits the recipe's GMM (10 components, the run's seed); evaluation uses it.
  assert said.count("fitting the ex-post gmm") == 1, said
  assert "ex-post gmm prior of ckpt" in said and np.isfinite(
      outcome.metrics["gmm"]["fid_generation"])


@pytest.mark.parametrize("changes,needle", [
    (dict(train_fraction=0.0), "--train_fraction"),
    (dict(train_fraction=1.5), "--train_fraction"),
    (dict(capacities="8x1"), "at least 2"),
    (dict(capacities="8x1,wide"), "WIDTHxDEPTH"),
    (dict(capacities="8x0,8x1"), "WIDTHxDEPTH"),
    (dict(train_flags="--model=ae"), "--model"),
    (dict(train_flags="--prior_width=8"), "--prior_width"),
    (dict(train_flags="--no_such_flag=1"), "no_such_flag"),
    (dict(train_flags="--reg_weight=abc"), "reg_weight"),
    (dict(dataset="nope"), "--dataset"),
    (dict(epochs=0), "--epochs"),
    (dict(features="pixels"), "--features"),
])
def test_bad_config_refused(tmp_path, changes, needle):
  with pytest.raises(ConfigError, match=needle):
    _config(tmp_path, **changes)


@pytest.mark.parametrize("changes,needle", [
    (dict(num_samples=5000), "--num_samples=5000 exceeds"),
    (dict(features="domain"), "needs images"),
    (dict(train_fraction=0.05), "fewer than --batch_size"),
    (dict(dataset="npz:/nonexistent/x.npz"), "file not found"),
])
def test_bad_data_refused_before_anything_is_written(tmp_path, changes, needle):
  config = _config(tmp_path, **changes)
  with pytest.raises(ConfigError, match=needle):
    experiments.run_prior_capacity_sweep(config, verbose=0)
  assert not os.path.exists(config.out_dir)


def test_parse_train_flags_types_and_refusals():
  got = experiments.parse_train_flags("--critic_learning_rate=1e-3 --prior_width=256 "
                                      "--prior_noise=uniform --deterministic")
  assert got == {"critic_learning_rate": 1e-3, "prior_width": 256,
                 "prior_noise": "uniform", "deterministic": True}
  assert experiments.parse_train_flags("  ") == {}
  with pytest.raises(ConfigError, match="--flexae_flags may not set --epochs"):
    experiments.parse_train_flags("--epochs=3", "--flexae_flags", forbidden=["epochs"])
  with pytest.raises(ConfigError, match="unexpected arguments"):
    experiments.parse_train_flags("--prior_width=8 stray")
  with pytest.raises(ConfigError, match="quote"):
    experiments.parse_train_flags("--prior_noise='normal")


def test_describe_shape():
  assert experiments.describe_shape([9, 7, 5, 6, 8]).startswith(
      "expected bias-variance shape: generation FID improves with capacity up to model 3")
  assert "monotonically on both sides" in experiments.describe_shape([9, 7, 5, 6, 8])
  assert "not monotonically" in experiments.describe_shape([9, 10, 5, 6, 8])
  assert experiments.describe_shape([9, 7, 5]).startswith("no bias-variance turn: the "
                                                          "largest prior")
  assert experiments.describe_shape([5, 7, 6]).startswith("no bias-variance turn: the "
                                                          "smallest prior")
  assert experiments.describe_shape([5, None]).startswith("incomplete")


def test_sweep_script_bad_flags_exit_2_nothing_written(tmp_path):
  out = tmp_path / "out"
  for args, needle in ((["--capacities=8x1"], "at least 2"),
                       (["--train_flags=--workdir=x"], "--workdir"),
                       (["--train_fraction=0.001"], "fewer than --batch_size")):
    proc = run_python([SWEEP, f"--out_dir={out}"] + args, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_quality_benchmark_skips_without_data_and_refuses_fixed_flags(tmp_path):
  proc = run_python([QUALITY, f"--npz={tmp_path / 'absent.npz'}",
                     f"--work_root={tmp_path / 'w'}", f"--out={tmp_path / 'q'}"])
  assert proc.returncode == 0 and "skipped" in proc.stdout, proc.stderr[-2000:]
  proc = run_python([QUALITY, "--flexae_flags=--epochs=3", f"--work_root={tmp_path / 'w'}",
                     f"--out={tmp_path / 'q'}"])
  assert proc.returncode == 2 and "--epochs" in proc.stderr, proc.stderr[-2000:]
  assert not (tmp_path / "w").exists() and not os.path.exists(f"{tmp_path / 'q'}.md")


def test_prior_ceiling_decodes_training_codes(tmp_path):
  """benchmarks/prior_ceiling.py on a tiny trained run (FIXTURE data): finite FIDs and
  precision / recall for the decoded training codes and the test reconstructions, the
  domain classifier cached under --cache_dir; a missing run is one error line, exit 2."""
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  npz = str(tmp_path / "tiny.npz")
  tiny_labelled_npz(npz)
  run = str(tmp_path / "run")
  training.train(TrainConfig.make(model="ae", dataset="npz:" + npz, arch="dcgan", width=4,
                                  latent_dim=4, batch_size=50, epochs=1, workdir=run,
                                  export_dir=""), verbose=0)
  script = os.path.join(ROOT, "benchmarks", "prior_ceiling.py")
  out = tmp_path / "ceiling.json"
  result = run_python([script, f"--workdir={run}", f"--cache_dir={tmp_path / 'cache'}",
                       "--num_samples=100", f"--json_out={out}"])
  assert result.returncode == 0, result.stderr[-2000:]
  saved = json.loads(out.read_text())
  assert saved["num_samples"] == 100
  for part in ("decoded_training_codes", "test_reconstructions"):
    assert np.isfinite(saved[part]["fid"]) and saved[part]["fid"] >= 0
    assert 0 <= saved[part]["precision"] <= 1 and 0 <= saved[part]["recall"] <= 1
  assert any(name.endswith(".keras") for name in os.listdir(tmp_path / "cache"))
  missing = run_python([script, f"--workdir={tmp_path / 'nope'}", "--cache_dir=x"])
  assert missing.returncode == 2 and "error: --workdir=" in missing.stderr
  assert "Traceback" not in missing.stderr
