"""rae_tf.reproduction, benchmarks/quality.py and scripts/reproduce.py: the report writers,
rankings and gaps on FABRICATED metric dicts (fixtures below, not measurements), "not
registered" rows, absent data files skipped with a message, bad flags refused (one
`error:` line, exit 2, nothing written), and a tiny end-to-end quality run (slow)."""
import dataclasses
import json
import os

import numpy as np
import pytest

from rae_tf import benchmark_runs
from rae_tf import experiments
from rae_tf import quality
from rae_tf import reproduction
from rae_tf import seed_tables
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError

from conftest import ROOT, run_python, tiny_labelled_npz

QUALITY = os.path.join(ROOT, "benchmarks", "quality.py")
REPRODUCE = os.path.join(ROOT, "scripts", "reproduce.py")


def _fixture_row(model, prior, fid, **extra):
  """A FABRICATED measure() row (test fixture, not a measurement)."""
  return {"model": model, "prior": prior, "status": "ok",
          "sampler": "N(0, I)" if prior == "trained" else "ex-post GMM-10",
          "fid_generation": fid, "fid_reconstruction": fid / 2, "improved_precision": 0.5,
          "improved_recall": 0.4, "prd_f8_recall": 0.8, "prd_f1_8_precision": 0.7,
          "active_dims": 16, "latent_dim": 16, "nac": 0.05, "num_samples": 100,
          "fid_label": "domain FID", "features": "domain", "train_minutes": 1.5,
          "epochs": 10, "checkpoint": "ckpt-1", **extra}


# FABRICATED rows (fixtures): FlexAE loses to RAE + GMM, beats the WAE; MaskAAE diverged.
FIXTURE_ROWS = {
    "rae_l2_gmm+gmm": _fixture_row("rae_l2_gmm", "gmm", 10.0),
    "flexae": _fixture_row("flexae", "trained", 12.0),
    "wae_gan": _fixture_row("wae_gan", "trained", 20.0),
    "maskaae": {"model": "maskaae", "prior": "trained", "status": "diverged: step 3"},
}


def test_rank_and_sentences_from_fixture_numbers():
  assert benchmark_runs.rank_rows(FIXTURE_ROWS) == ["rae_l2_gmm+gmm", "flexae", "wae_gan",
                                                  "maskaae"]
  text = benchmark_runs.ranking_sentences(FIXTURE_ROWS)
  assert text[0].startswith("Order by generation FID") and "rae_l2_gmm+gmm (10.00) < " \
      "flexae (12.00) < wae_gan (20.00)" in text[0]
  flexae = [s for s in text if s.startswith("flexae (")]
  assert flexae == ["flexae (12.00) ranks 2 of 3: it loses to rae_l2_gmm+gmm (10.00); it "
                    "beats 1 row(s)."]
  assert any("No generation FID" in s and "maskaae" in s for s in text)
  assert "maskaae: no measured row." in text
  best = benchmark_runs.ranking_sentences({"flexae": FIXTURE_ROWS["flexae"],
                                         "wae_gan": FIXTURE_ROWS["wae_gan"]})
  assert any(s.startswith("flexae has the best generation FID") for s in best)


def test_gap_scalars_tuples_and_missing():
  assert benchmark_runs.gap(12.5, 10.5) == pytest.approx(2.0)
  assert benchmark_runs.gap((8.0, 7.0), (6.15, 7.30)) == pytest.approx((1.85, -0.3))
  assert benchmark_runs.gap(None, 10.0) is None and benchmark_runs.gap(3.0, None) is None
  assert benchmark_runs.gap((None, 5.0), (1.0, 4.0)) == (None, 1.0)
  assert benchmark_runs.gap(None, (1.0, 2.0)) == (None, None)
  assert benchmark_runs.fmt_gap(-0.3) == "-0.30" and benchmark_runs.fmt_gap(None) == "–"


def test_parse_model_flags_and_refusals():
  got = benchmark_runs.parse_model_flags(
      'flexae:"--critic_width=256 --prior_width=64"; maskaae:--mask_psi_max=3')
  assert got == {"flexae": "--critic_width=256 --prior_width=64",
                 "maskaae": "--mask_psi_max=3"}
  assert benchmark_runs.model_overrides(got, "flexae") == {"critic_width": 256,
                                                         "prior_width": 64}
  assert benchmark_runs.model_overrides(got, "wae_gan") == {}
  for bad in ("flexae --critic_width=3", "flexae:--a=1;flexae:--b=2"):
    with pytest.raises(ConfigError):
      benchmark_runs.parse_model_flags(bad)
  with pytest.raises(ConfigError, match="--epochs"):
    benchmark_runs.model_overrides({"flexae": "--epochs=3"}, "flexae")


def test_row_overrides_take_the_training_twins_flags():
  flags = benchmark_runs.parse_model_flags(
      'rae_l2:"--learning_rate=5e-4 --plateau_patience=5";rae_l2_gmm:--plateau_patience=7')
  got = benchmark_runs.row_overrides(flags, "rae_l2_gmm", " --latent_l2=1e-3", "row")
  assert got == {"latent_l2": 1e-3, "learning_rate": 5e-4, "plateau_patience": 7}
  assert benchmark_runs.row_overrides(flags, "vae", "", "row") == {}
  with pytest.raises(ConfigError, match="row"):
    benchmark_runs.row_overrides(flags, "vae", "--epochs=3", "row")


def test_resolve_model_picks_first_registered():
  assert benchmark_runs.resolve_model(("rae_l2_gmm", "rae_l2"), ("rae_l2",)) == "rae_l2"
  assert benchmark_runs.resolve_model(("two_stage_vae",), ("vae", "rae_l2")) is None
  candidates = ("vae_fixed_var", "vae --likelihood=gaussian")
  assert benchmark_runs.resolve_candidate(candidates, ("vae",)) == ("vae",
                                                                  "--likelihood=gaussian")
  assert benchmark_runs.resolve_candidate(candidates, ("vae", "vae_fixed_var")) == (
      "vae_fixed_var", "")


def test_quality_markdown_and_json_writers(tmp_path):
  report = {"benchmark": "quality", "date": "2026-01-01T00:00:00+00:00",
            "command": "python benchmarks/quality.py --fixture",
            "config": quality.QualityConfig(out=str(tmp_path / "R")).to_dict(),
            "settings": {"width": 32, "epochs": 10, "features": "domain"},
            "runs_planned": 4, "runs_done": 4, "complete": True,
            "datasets": {"fashion_mnist": {"path": "f.npz", "status": "measured",
                                           "rows": FIXTURE_ROWS,
                                           "ranking": benchmark_runs.ranking_sentences(
                                               FIXTURE_ROWS)},
                         "mnist10k": {"path": "m.npz", "status": "m.npz not found",
                                      "rows": {}}}}
  report["datasets"]["fashion_mnist"]["rows"]["wae_gan"]["nac"] = float("nan")
  md = quality._quality_markdown(report)  # pylint: disable=protected-access
  benchmark_runs.write_report(str(tmp_path / "R"), report, md)
  text = (tmp_path / "R.md").read_text()
  table = [l for l in text.splitlines() if l.startswith("| ")]
  assert len(table) == 2 + 4
  assert table[2].startswith("| 1 | rae_l2_gmm+gmm |") and "| 10.00 | 5.00 |" in table[2]
  assert table[5].startswith("| 4 | maskaae |") and "diverged: step 3" in table[5]
  assert "Skipped: m.npz not found." in text and "`python benchmarks/quality.py" in text
  assert "flexae (12.00) ranks 2 of 3: it loses to rae_l2_gmm+gmm" in text
  saved = json.loads((tmp_path / "R.json").read_text())
  assert saved["datasets"]["fashion_mnist"]["rows"]["wae_gan"]["nac"] is None  # NaN.
  assert saved["command"] == report["command"] and saved["date"] == report["date"]


def _fixture_report(rows, tmp_path, date, **config):
  """A quality report around FABRICATED rows (test fixture, not a measurement)."""
  return {"benchmark": "quality", "date": date, "command": f"python quality.py {date}",
          "config": quality.QualityConfig(out=str(tmp_path / "R"), **config).to_dict(),
          "settings": {"width": 32, "epochs": 10, "features": "domain"},
          "registered_models": sorted({r["model"] for r in rows.values()}),
          "same_training": {}, "runs_planned": len(rows), "runs_done": len(rows),
          "complete": True,
          "datasets": {"fashion_mnist": {"path": "f.npz", "status": "measured",
                                         "rows": rows,
                                         "ranking": benchmark_runs.ranking_sentences(rows)}}}


def test_merge_joins_disjoint_reports_ranks_again_and_names_sources(tmp_path):
  first = _fixture_report({"flexae": _fixture_row("flexae", "trained", 12.0),
                           "wae_gan": _fixture_row("wae_gan", "trained", 20.0)},
                          tmp_path, "2026-01-01", model_flags='flexae:"--critic_steps=5"')
  second = _fixture_report({"rae_l2+gmm": _fixture_row("rae_l2", "gmm", 10.0),
                            "wae_gan": _fixture_row("wae_gan", "trained", 18.0)},
                           tmp_path, "2026-01-02")
  paths = []
  for i, report in enumerate((first, second)):
    benchmark_runs.write_report(str(tmp_path / f"r{i}"), report, "fixture")
    paths.append(str(tmp_path / f"r{i}.json"))
  config = quality.QualityConfig(merge=",".join(paths), out=str(tmp_path / "M"))
  merged = quality.run_merge(config, command="merge", say=lambda _: None)
  rows = merged["datasets"]["fashion_mnist"]["rows"]
  assert set(rows) == {"flexae", "wae_gan", "rae_l2+gmm"}
  assert rows["wae_gan"]["fid_generation"] == 18.0 and rows["wae_gan"]["source"] == 1
  assert rows["flexae"]["source"] == 0
  assert merged["replaced_rows"] == [f"fashion_mnist wae_gan: {paths[0]} -> {paths[1]}"]
  ranking = merged["datasets"]["fashion_mnist"]["ranking"]
  assert "rae_l2+gmm (10.00) < flexae (12.00) < wae_gan (18.00)" in ranking[0]
  assert merged["config"]["model_flags"] == 'flexae:"--critic_steps=5"'
  text = (tmp_path / "M.md").read_text()
  table = [l for l in text.splitlines() if l.startswith("| ")]
  assert table[0].endswith("| epochs | src |") and table[2].startswith("| 1 | rae_l2+gmm |")
  assert table[2].endswith("| 1 |") and f"`{paths[0]}`: 2026-01-01" in text
  # Other settings, or other flags for one model, are different runs: refused.
  with pytest.raises(ConfigError, match="latent_dim"):
    quality.merge_quality_reports([first, _fixture_report({}, tmp_path, "d", latent_dim=8)],
                                  ["a", "b"])
  # A report naming other flags for a model it has no rows of changes nothing.
  quiet = quality.merge_quality_reports(
      [first, _fixture_report({}, tmp_path, "d", model_flags="flexae:--critic_steps=1")],
      ["a", "b"])
  assert quiet["config"]["model_flags"] == 'flexae:"--critic_steps=5"'


def test_several_draws_reach_rows_tables_and_merges(tmp_path, monkeypatch):
  """--draws: rows keep the generation FID's sd (only when measured), the table shows
  mean +- sd, a report written before the setting existed merges as one draw."""
  def fake_train_and_evaluate(tc, request, priors, verbose=None):
    os.makedirs(tc.workdir, exist_ok=True)  # Training would have made it.
    fids = {"trained": (12.0, 0.25), "gmm": (10.0, None)}  # FABRICATED metrics.
    return experiments.RunOutcome(
        workdir=tc.workdir, epochs=1, checkpoint="ckpt-1", train_seconds=1.0,
        prior_params=0, hparams={}, eval_seconds={p: 0.0 for p in priors},
        metrics={p: {**_fixture_row("rae_l2", p, fids[p][0]),
                     "fid_generation_sd": fids[p][1]} for p in priors})
  monkeypatch.setattr(experiments, "train_and_evaluate", fake_train_and_evaluate)
  config = quality.QualityConfig(draws=3, out=str(tmp_path / "R"))
  assert config.request().draws == 3
  run = benchmark_runs.PlannedRun("rae_l2", "fashion_mnist", TrainConfig.make(
      model="rae_l2", workdir=str(tmp_path / "run")), ("trained", "gmm"))
  rows = benchmark_runs.measure(run, config.request())
  assert rows["rae_l2"]["fid_generation_sd"] == 0.25
  assert "fid_generation_sd" not in rows["rae_l2+gmm"]
  report = _fixture_report(rows, tmp_path, "2026-01-01", draws=3)
  md = quality._quality_markdown(report)  # pylint: disable=protected-access
  table = [l for l in md.splitlines() if l.startswith("| ")]
  assert "generation FID: mean ± sd of 3 sample draws" in md
  assert "| 12.00 ± 0.25 |" in table[3] and "| 10.00 |" in table[2]
  with pytest.raises(ConfigError, match="draws"):
    quality.merge_quality_reports([_fixture_report({}, tmp_path, "a"), report], ["a", "b"])
  old = _fixture_report({}, tmp_path, "a")
  del old["config"]["draws"]  # Written before --draws existed: one draw.
  quality.merge_quality_reports([old, _fixture_report({}, tmp_path, "b")], ["a", "b"])


def test_merge_takes_a_model_rerun_with_new_flags_only_for_all_its_rows(tmp_path):
  """A later report may re-run one model with new flags: allowed when it replaces (or
  --drop_rows removes) every earlier row of that model, refused when old rows would stay
  beside new ones under one flags entry."""
  old = _fixture_report({"flexae": _fixture_row("flexae", "trained", 12.0),
                         "wae_gan": _fixture_row("wae_gan", "trained", 20.0)},
                        tmp_path, "1", model_flags='flexae:"--prior_refine_steps=3000"')
  old["datasets"]["mnist10k"] = {
      "path": "m.npz", "status": "measured",
      "rows": {"flexae": _fixture_row("flexae", "trained", 5.0)}, "ranking": []}
  new = _fixture_report({"flexae": _fixture_row("flexae", "trained", 4.0)}, tmp_path, "2",
                        model_flags='flexae:"--prior_refine_steps=25000"')
  with pytest.raises(ConfigError, match=r"flexae's rows were trained with other flags.*"
                                        r"mnist10k:flexae from o.*--drop_rows"):
    quality.merge_quality_reports([old, new], ["o", "n"])
  new["datasets"]["mnist10k"] = {
      "path": "m.npz", "status": "measured",
      "rows": {"flexae": _fixture_row("flexae", "trained", 2.0)}, "ranking": []}
  merged = quality.merge_quality_reports([old, new], ["o", "n"])
  assert merged["config"]["model_flags"] == 'flexae:"--prior_refine_steps=25000"'
  fashion = merged["datasets"]["fashion_mnist"]["rows"]
  assert fashion["flexae"]["fid_generation"] == 4.0 and fashion["flexae"]["source"] == 1
  assert fashion["wae_gan"]["source"] == 0
  assert merged["replaced_rows"] == ["fashion_mnist flexae: o -> n", "mnist10k flexae: o -> n"]
  # The old row left out instead of re-run: also one setting per model.
  del new["datasets"]["mnist10k"]
  kept = quality.merge_quality_reports([old, new], ["o", "n"],
                                       drop_rows=[("mnist10k", "flexae")])
  assert kept["config"]["model_flags"] == 'flexae:"--prior_refine_steps=25000"'
  assert kept["dropped_rows"] == ["mnist10k flexae (from o)"]


def test_merge_refuses_rows_of_different_domain_classifiers(tmp_path):
  def report(date, **extra):
    return _fixture_report({f"m{date}": _fixture_row("vae", "trained", 9.0, **extra)},
                           tmp_path, date)
  old = report("1", domain_classifier_test_accuracy=0.9007)
  new = report("2", domain_classifier_test_accuracy=0.9007, domain_classifier_id="aaaa")
  other = report("3", domain_classifier_test_accuracy=0.9007, domain_classifier_id="bbbb")
  retrained = report("4", domain_classifier_test_accuracy=0.8991)
  # The same accuracy and one fingerprint (the old row has none): one table.
  rows = quality.merge_quality_reports([old, new], ["o", "n"])["datasets"]["fashion_mnist"]
  assert set(rows["rows"]) == {"m1", "m2"}
  with pytest.raises(ConfigError, match=r"weights aaaa in n, bbbb in x.*--domain_cache"):
    quality.merge_quality_reports([old, new, other], ["o", "n", "x"])
  with pytest.raises(ConfigError, match=r"test accuracy 0.9007 in o, 0.8991 in r"):
    quality.merge_quality_reports([old, retrained], ["o", "r"])
  # A row left out (stale code) no longer blocks the merge, and the report says so.
  kept = quality.merge_quality_reports([old, retrained], ["o", "r"],
                                       drop_rows=[("fashion_mnist", "m4")])
  assert set(kept["datasets"]["fashion_mnist"]["rows"]) == {"m1"}
  assert kept["dropped_rows"] == ["fashion_mnist m4 (from r)"]
  with pytest.raises(ConfigError, match="no report holds fashion_mnist:m9"):
    quality.merge_quality_reports([old], ["o"], drop_rows=[("fashion_mnist", "m9")])


def test_quality_script_merge_refuses_missing_and_foreign_files(tmp_path):
  out = tmp_path / "M"
  (tmp_path / "other.json").write_text(json.dumps({"benchmark": "speed"}))
  for merge, needle in ((tmp_path / "absent.json", "not found"),
                        (tmp_path / "other.json", "not a quality report")):
    proc = run_python([QUALITY, f"--merge={merge}", f"--out={out}"], timeout=120)
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert "--merge" in errors[0] and "Traceback" not in proc.stderr
    assert not os.path.exists(f"{out}.md") and not os.path.exists(f"{out}.json")
  proc = run_python([QUALITY, "--drop_rows=fashion_mnist", f"--merge={tmp_path / 'x.json'}",
                     f"--out={out}"], timeout=120)
  assert proc.returncode == 2 and "error: --drop_rows" in proc.stderr, proc.stderr


def test_markdown_table_refuses_rows_that_would_shift_columns():
  with pytest.raises(ValueError, match="3 cells for 2 headers"):
    experiments.markdown_table(["a", "b"], [[1, 2, 3]])


def test_model_table_comparison_not_registered_and_missing_data(tmp_path):
  rows = seed_tables.TABLE3[:2] + (seed_tables.SeedRow(
      "Future model", ("not_a_registered_model",), published={seed_tables.MNIST: (1.0, 2.0)}),)
  measured = {  # FABRICATED measurements (fixtures).
      ("VAE [1]", "mnist"): _fixture_row("vae", "trained", 60.0,
                                         domain_classifier_test_accuracy=0.9428,
                                         domain_classifier_id="cc7eb7738a07"),
      ("β-VAE [4]", "mnist"): {"status": "diverged: x"},
      ("Future model", "mnist"): {"status": "not registered"},
  }
  for row in rows:
    for key in ("cifar10", "celeb_a"):
      measured[(row.label, key)] = {"status": "data missing"}
  resolved = {"VAE [1]": "vae", "β-VAE [4]": "beta_vae", "Future model": None}
  comparison = reproduction.comparison_rows("3", rows, seed_tables.TABLE3_DATASETS,
                                            measured, resolved)
  vae = comparison[0]["cells"]["mnist"]
  assert vae["published"] == (65.10, 57.04) and vae["measured"] == (30.0, 60.0)
  assert vae["gap"] == pytest.approx((30.0 - 65.10, 60.0 - 57.04))
  assert comparison[1]["cells"]["mnist"]["gap"] == (None, None)
  assert not comparison[2]["registered"]
  report = {"table": "3", "title": "Table 3", "date": "d", "command": None,
            "config": {"scale": "small"}, "budget": {"epochs": 5},
            "datasets": list(seed_tables.TABLE3_DATASETS), "comparison": comparison,
            "unavailable": {"cifar10": "no CIFAR-10 data here", "celeb_a": "no CelebA"},
            "rows": {f"{label} | {key}": r for (label, key), r in measured.items()}}
  md = reproduction._model_table_markdown(report)  # pylint: disable=protected-access
  assert "* MNIST domain classifier: test accuracy 0.9428, weights cc7eb7738a07." in md
  lines = [l for l in md.splitlines() if l.startswith("| ")]
  assert lines[0].endswith("| CIFAR-10 published (not run) | CelebA published (not run) |")
  assert lines[2] == ("| VAE [1] | vae | 65.10 / 57.04 | 30.00 / 60.00 | -35.10 / +2.96 | "
                      "176.50 / 169.10 | 62.36 / 72.48 |")
  assert "| Future model | not registered |" in lines[4]
  assert "diverged: x" in lines[3]
  assert "CIFAR-10: not run: no CIFAR-10 data here" in md
  assert "Not registered in rae_tf.models.zoo" in md and "Future model" in md
  png = reproduction._model_table_png(report)  # pylint: disable=protected-access
  assert png[:4] == b"\x89PNG"


def test_model_table_cells_show_the_sd_of_several_draws():
  """--draws > 1: Table 1 / 3 cells read "mean ± sd" (the gap stays on the mean)."""
  rows = seed_tables.TABLE1[:2]
  measured = {  # FABRICATED measurements (fixtures).
      (rows[0].label, "mnist"): _fixture_row("vae", "trained", 60.0,
                                             fid_generation_sd=1.25),
      (rows[1].label, "mnist"): _fixture_row("vae", "trained", 50.0),  # One draw: no sd.
  }
  comparison = reproduction.comparison_rows("1", rows, ("mnist",), measured)
  cell = comparison[0]["cells"]["mnist"]
  assert cell["measured"] == 60.0 and cell["measured_sd"] == 1.25
  assert comparison[1]["cells"]["mnist"]["measured_sd"] is None
  report = {"table": "1", "title": "Table 1", "date": "d", "command": None,
            "config": {"scale": "small"},
            "budget": {"epochs": 5, "sample draws per generation FID": 5},
            "datasets": ["mnist"], "comparison": comparison, "unavailable": {}, "rows": {}}
  md = reproduction._model_table_markdown(report)  # pylint: disable=protected-access
  lines = [l for l in md.splitlines() if l.startswith("| ")]
  assert "| 60.00 ± 1.25 |" in lines[2] and "| 50.00 |" in lines[3]
  assert "± 1.25" not in lines[3]
  assert "generation FID: mean ± sd of 5 sample draws" in md


def test_table2_and_table5_comparisons_from_fixtures():
  rows = [  # FABRICATED nac-table rows (fixtures).
      {"model": "wae_mmd", "m": 16, "active_dims": 16, "nac": 0.05},
      {"model": "maskaae", "m": 16, "active_dims": 8, "nac": 0.02}]
  comp = reproduction.table2_comparison(rows, "wae_mmd")
  assert [e["m"] for e in comp] == sorted(seed_tables.TABLE2)
  assert comp[0]["maskaae"]["gap"] == pytest.approx((8 - 9, 0.02 - 0.030))
  assert comp[1]["wae"]["measured"] == (None, None) and comp[1]["wae"]["gap"] == (None,
                                                                                   None)
  models = [{"index": 1, "fid_reconstruction": 70.0, "fid_generation": 50.0}]
  comp5 = reproduction.table5_comparison(models, seed_tables.TABLE5["mnist"])
  assert len(comp5) == 6 and comp5[0]["gap"] == pytest.approx((70.0 - 60.51, 50.0 - 55.49))
  assert comp5[5]["measured"] == (None, None)


def test_seed_tables_are_complete():
  assert len(seed_tables.TABLE1) == 8 and len(seed_tables.TABLE3) == 13
  assert all(len(r.published) == 4 for r in seed_tables.TABLE1)
  assert all(set(r.published) == set(seed_tables.TABLE3_DATASETS)
             for r in seed_tables.TABLE3 + seed_tables.TABLE4)
  assert all(len(v) == 6 for v in seed_tables.TABLE5.values())
  assert seed_tables.TABLE3[-1].published["mnist"] == (4.33, 4.69)  # FlexAE, MNIST.


@pytest.mark.parametrize("changes, needle", [
    ({"scale": "huge"}, "--scale"), ({"expost": "all"}, "--expost"),
    ({"epochs": 0}, "--epochs"), ({"models": "a b"}, "--models"),
    ({"model_flags": "flexae:--seed=3"}, "--seed"), ({"draws": 0}, "--draws")])
def test_quality_config_refusals(changes, needle):
  with pytest.raises(ConfigError, match=needle):
    quality.QualityConfig(**changes)


def test_reproduce_draws_reach_every_evaluation(tmp_path):
  model_table = reproduction.ReproduceConfig(table="1", draws=3, out_dir=str(tmp_path))
  tc = TrainConfig.make(model="rae_l2", workdir=str(tmp_path / "r"))
  assert reproduction._request_for(model_table, tc, 100).draws == 3  # pylint: disable=protected-access
  assert reproduction._request_for(  # pylint: disable=protected-access
      reproduction.ReproduceConfig(table="1", out_dir=str(tmp_path)), tc, 100).draws == 1
  from rae_tf import latent_dim_experiments as lde  # pylint: disable=g-import-not-at-top
  for draws, expected in ((2, 2), (None, lde.LatentDimConfig().draws)):
    config = reproduction.ReproduceConfig(table="2", draws=draws, out_dir=str(tmp_path))
    latent, why = reproduction._latent_config(  # pylint: disable=protected-access
        config, lde.NacTableConfig, "synthetic")
    assert why is None and latent.draws == expected
  with pytest.raises(ConfigError, match="--draws=0"):
    reproduction.ReproduceConfig(draws=0)


def test_reproduce_config_refusals():
  with pytest.raises(ConfigError, match="--table"):
    reproduction.ReproduceConfig(table="6")
  with pytest.raises(ConfigError, match="--scale"):
    reproduction.ReproduceConfig(scale="medium")
  # The model tables' options are refused, not ignored, by the tables that do not use them.
  for table in ("2", "5", "fig2", "fig6"):
    for flag, value in (("jobs", 2), ("domain_cache", "classifiers"),
                        ("model_flags", "flexae:--critic_width=8")):
      with pytest.raises(ConfigError, match=f"--{flag} applies to Tables 1, 3, 4 only"):
        reproduction.ReproduceConfig(table=table, **{flag: value})
  for table in ("1", "3", "4"):
    reproduction.ReproduceConfig(table=table, jobs=2, domain_cache="classifiers")


def test_domain_cache_reaches_the_model_tables_evaluation(tmp_path):
  tc = TrainConfig.make(model="vae", dataset="synthetic", workdir=str(tmp_path))
  request_for = reproduction._request_for  # pylint: disable=protected-access
  default = request_for(reproduction.ReproduceConfig(work_root=str(tmp_path / "w")), tc, 50)
  assert default.cache_dir == str(tmp_path / "w" / "feature_cache")
  chosen = request_for(reproduction.ReproduceConfig(
      work_root=str(tmp_path / "w"), domain_cache=str(tmp_path / "classifiers")), tc, 50)
  assert chosen.cache_dir == str(tmp_path / "classifiers") and chosen.num_samples == 50


def test_small_scale_columns_say_why_not_run(tmp_path):
  config = reproduction.ReproduceConfig(mnist_npz=str(tmp_path / "absent.npz"))
  assert config.dataset("mnist") == (None, f"{tmp_path / 'absent.npz'} not found")
  assert "no CIFAR-10 data here" in config.dataset("cifar10")[1]
  paper = reproduction.ReproduceConfig(scale="paper", data_dir=str(tmp_path))
  assert "not prepared" in paper.dataset("celeb_a")[1]
  (tmp_path / "celeb_a").mkdir()
  assert paper.dataset("celeb_a") == ("celeb_a", None)


def test_table_without_data_writes_not_registered_and_missing_rows(tmp_path, monkeypatch):
  """Table 4 with no data file: no training, every row says why, and a row whose model is
  not registered (a FIXTURE row added to the table) says "not registered"."""
  title, rows, datasets = reproduction._MODEL_TABLES["4"]  # pylint: disable=protected-access
  fake = seed_tables.SeedRow("Fixture model", ("no_such_model",),
                             published={seed_tables.MNIST: (0.5, 0.5)})
  monkeypatch.setitem(reproduction._MODEL_TABLES, "4",  # pylint: disable=protected-access
                      (title, rows + (fake,), datasets))
  config = reproduction.ReproduceConfig(
      table="4", mnist_npz=str(tmp_path / "absent.npz"), work_root=str(tmp_path / "w"),
      out_dir=str(tmp_path / "out"))
  said = []
  report = reproduction.run_reproduction(config, say=said.append)
  assert report["complete"] and not os.path.exists(tmp_path / "w" / "runs")
  md = (tmp_path / "out" / "table4.md").read_text()
  assert "MNIST: not run:" in md and "absent.npz not found" in md
  assert "| Fixture model | not registered | 0.500 / 0.500 |" in md
  assert "| FlexAE (Proposed) | flexae |" in md
  assert (tmp_path / "out" / "table4.png").read_bytes()[:4] == b"\x89PNG"
  assert any("not run" in s for s in said)


def test_quality_script_skips_absent_files_and_refuses_bad_flags(tmp_path):
  out, work = tmp_path / "R", tmp_path / "w"
  proc = run_python([QUALITY, f"--npz_files={tmp_path / 'a.npz'},{tmp_path / 'b.npz'}",
                     f"--work_root={work}", f"--out={out}"], timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "skipped" in proc.stdout and "a.npz" in proc.stdout and "b.npz" in proc.stdout
  assert not work.exists() and not os.path.exists(f"{out}.md")
  for args, needle in ((["--scale=huge"], "--scale"),
                       (["--model_flags=flexae:--epochs=3"], "--epochs"),
                       (["--nonsense=1"], "nonsense")):
    proc = run_python([QUALITY, f"--work_root={work}", f"--out={out}"] + args, timeout=120)
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not work.exists() and not os.path.exists(f"{out}.md")


def test_reproduce_script_refuses_bad_flags(tmp_path):
  for args, needle in ((["--table=9"], "--table"), (["--scale=big"], "--scale"),
                       (["--model_flags=wae_gan:--width=8"], "--width"),
                       (["--table=2", "--jobs=2"], "--jobs applies to Tables 1, 3, 4")):
    proc = run_python([REPRODUCE, f"--work_root={tmp_path / 'w'}",
                       f"--out_dir={tmp_path / 'o'}"] + args, timeout=120)
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert not (tmp_path / "w").exists() and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_quality_end_to_end_tiny(tmp_path):
  """A tiny real run: one model + its GMM row, 1 epoch of 2 steps, 50 samples."""
  tiny_labelled_npz(tmp_path / "tiny.npz")
  config = quality.QualityConfig(
      models="rae_l2", npz_files=f"{tmp_path / 'tiny.npz'},{tmp_path / 'absent.npz'}",
      epochs=1, steps_per_epoch=2, batch_size=50, num_samples=50, prd_runs=1,
      expost="gmm", gmm_components=2, work_root=str(tmp_path / "w"),
      out=str(tmp_path / "R"))
  report = quality.run_quality(config, command="pytest", verbose=0)
  rows = report["datasets"]["tiny"]["rows"]
  assert set(rows) == {"rae_l2", "rae_l2+gmm"} and report["complete"]
  assert all(np.isfinite(r["fid_generation"]) for r in rows.values())
  assert report["datasets"]["absent"]["status"].endswith("not found")
  md = (tmp_path / "R.md").read_text()
  assert "Order by generation FID" in md and "flexae: no measured row." in md
  again = quality.run_quality(config, command="pytest", verbose=0)  # Cached.
  assert again["datasets"]["tiny"]["rows"]["rae_l2"]["fid_generation"] == \
      rows["rae_l2"]["fid_generation"]


def test_plan_trains_aliases_and_expost_recipes_once(tmp_path):
  """rae_l2_gmm and two_stage_vae train as rae_l2 / vae_learned_var: one run each, with
  the ex-post row added; vae_bce is vae's row. Flags for a folded model are refused."""
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  names = tuple(zoo.MODELS.names())
  recipes = {n: zoo.MODELS.get(n) for n in names}
  twins = {n: zoo.training_twin(n) for n in names}
  assert twins["rae_l2_gmm"] == "rae_l2" and twins["vae_bce"] == "vae"
  assert twins["two_stage_vae"] == "vae_learned_var" and twins["flexae"] == "flexae"
  models = "rae_l2_gmm,rae_l2,vae_bce,two_stage_vae,flexae"
  config = quality.QualityConfig(models=models, npz_files="/nonexistent/f.npz",
                                      work_root=str(tmp_path), out=str(tmp_path / "R"))
  plan = quality.plan_quality(config, names, recipes, ["/nonexistent/f.npz"], twins)
  assert [(r.key, r.priors) for r in plan] == [
      ("rae_l2", ("trained", "gmm")), ("vae", ("trained",)),
      ("vae_learned_var", ("trained", "vae")), ("flexae", ("trained",))]
  assert plan[0].train_config.model == "rae_l2"
  assert quality.same_training(config.model_list(), recipes, twins) == {
      "rae_l2_gmm": "rae_l2+gmm", "vae_bce": "vae", "two_stage_vae": "vae_learned_var+vae"}
  bad = quality.QualityConfig(models=models, npz_files="/nonexistent/f.npz",
                                   model_flags='rae_l2_gmm:"--learning_rate=1e-4"',
                                   work_root=str(tmp_path), out=str(tmp_path / "R"))
  with pytest.raises(ConfigError, match="trains as rae_l2"):
    quality.plan_quality(bad, names, recipes, ["/nonexistent/f.npz"], twins)


def test_one_flags_file_serves_any_models_subset(tmp_path):
  """The committed per-model flags file works with --models=<a subset>: the flags of the
  model a recipe trains as are used (rae_l2's for rae_l2_gmm), the unused entries are said
  to be unused, and an unregistered name is still refused."""
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  names = tuple(zoo.MODELS.names())
  recipes = {n: zoo.MODELS.get(n) for n in names}
  twins = {n: zoo.training_twin(n) for n in names}
  with open(os.path.join(ROOT, "benchmarks", "model_flags_small.txt")) as f:
    flags_file = f.read().strip()
  config = quality.QualityConfig(models="rae_l2_gmm", npz_files="/nonexistent/f.npz",
                                 model_flags=flags_file, work_root=str(tmp_path),
                                 out=str(tmp_path / "R"))
  said = []
  plan = quality.plan_quality(config, names, recipes, ["/nonexistent/f.npz"], twins,
                              said.append)
  assert [(r.key, r.priors) for r in plan] == [("rae_l2", ("trained", "gmm"))]
  # rae_l2's entry of the file.
  assert dict(plan[0].train_config.weights) == {"decoder_l2": 1e-7, "latent_l2": 1e-4}
  assert plan[0].train_config.learning_rate == 5e-4
  assert len(said) == 1 and "flexae" in said[0] and "rae_l2," not in said[0]
  typo = dataclasses.replace(config, model_flags='rae_l3:"--learning_rate=1e-4"')
  with pytest.raises(ConfigError, match="rae_l3, not registered"):
    quality.plan_quality(typo, names, recipes, ["/nonexistent/f.npz"], twins, said.append)


def test_paper_scale_needs_inception_weights(tmp_path):
  config = quality.QualityConfig(scale="paper", out=str(tmp_path / "R"))
  assert config.setting("width") == 128 and config.setting("epochs") == 100
  assert config.request().features == "inception"
  with pytest.raises(ConfigError, match="--inception_weights"):
    benchmark_runs.check_inputs(config.setting("features"), None, [])
  benchmark_runs.check_inputs("domain", None, [(str(tmp_path / "w"), "--work_root")])
  assert not (tmp_path / "w").exists()


SEED_TEXT = os.path.join(ROOT, "..", "shared", "reference", "rae_landscape.txt")


@pytest.mark.skipif(not os.path.isfile(SEED_TEXT), reason="the seed's text is not here")
def test_seed_tables_match_the_seed_text():
  """Every decimal number of Tables 1, 3, 4, 5 in the seed's text is transcribed once."""
  import re  # pylint: disable=g-import-not-at-top
  text = open(SEED_TEXT, encoding="utf-8").read()

  def block(start, end):
    body = text[text.index(start):text.index(end, text.index(start))]
    return sorted(float(v) for v in re.findall(r"\d+\.\d+", body))

  def flat(cells):
    out = []
    for cell in cells:
      out += list(cell) if isinstance(cell, tuple) else [cell]
    return sorted(out)

  assert flat(v for r in seed_tables.TABLE1 for v in r.published.values()) == block(
      "Table 1:", "Experimental Results: Normalized")
  assert flat(v for r in seed_tables.TABLE3 for v in r.published.values()) == block(
      "Table 3:", "Experimental Results: Precision")
  assert flat(v for r in seed_tables.TABLE4 for v in r.published.values()) == block(
      "Table 4:", "Experiment: Bias-Variance")
  assert flat(v for rows in seed_tables.TABLE5.values() for v in rows) == block(
      "Table 5:", "Experimental Results: Reconstructed")


def test_sampler_names():
  assert benchmark_runs.sampler_name("trained", "standard_normal+mask", 10) == \
      "masked N(0, I)"
  assert benchmark_runs.sampler_name("trained", "learned", 10) == "learned G(eps)"
  assert benchmark_runs.sampler_name("gmm", "standard_normal", 5) == "ex-post GMM-5"
  assert benchmark_runs.sampler_name("vae", "standard_normal", 10) == \
      "ex-post second-stage VAE"


def test_training_time_is_summed_over_resumes_not_reloads(tmp_path):
  class Outcome:  # A FIXTURE stand-in for experiments.RunOutcome.
    def __init__(self, epochs, seconds):
      self.epochs, self.train_seconds = epochs, seconds
  seconds = benchmark_runs.summed_train_seconds  # pylint: disable=protected-access
  assert seconds(str(tmp_path), Outcome(2, 10.0)) == 10.0
  assert seconds(str(tmp_path), Outcome(2, 0.5)) == 10.0  # Finished: only reloaded.
  assert seconds(str(tmp_path), Outcome(4, 7.0)) == 17.0  # Resumed to 4 epochs.


def _log_span(workdir):
  """(start, end) of the one child that wrote <workdir>/benchmark.log."""
  import datetime  # pylint: disable=g-import-not-at-top
  stamps = [datetime.datetime.fromisoformat(l.split(" ")[1].rstrip(":"))
            for l in open(os.path.join(workdir, benchmark_runs.RUN_LOG))
            if l.startswith("==== ")]
  assert len(stamps) == 2, stamps
  return stamps


@pytest.mark.slow
def test_parallel_quality_runs_in_two_processes_with_the_serial_numbers(tmp_path):
  """--jobs=2: two children at once (their logs overlap in time), one domain classifier
  between them (the cache lock), and the same numbers as --jobs=1 with one thread."""
  tiny_labelled_npz(tmp_path / "tiny.npz")
  common = [QUALITY, "--models=rae_l2,wae_mmd", f"--npz_files={tmp_path / 'tiny.npz'}",
            "--epochs=1", "--steps_per_epoch=3", "--batch_size=50", "--num_samples=50",
            "--prd_runs=1", "--expost=none"]
  reports = {}
  for jobs in (2, 1):
    proc = run_python(common + [f"--jobs={jobs}", f"--work_root={tmp_path / f'w{jobs}'}",
                                f"--out={tmp_path / f'R{jobs}'}"], timeout=600,
                      env_extra={"TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports[jobs] = json.loads((tmp_path / f"R{jobs}.json").read_text())
  rows = {j: reports[j]["datasets"]["tiny"]["rows"] for j in reports}
  assert set(rows[2]) == set(rows[1]) == {"rae_l2", "wae_mmd"} and reports[2]["complete"]
  spans = [_log_span(r["workdir"]) for r in rows[2].values()]
  assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans  # Overlapping.
  assert not any(os.path.exists(os.path.join(r["workdir"], benchmark_runs.RUN_LOG))
                 for r in rows[1].values())  # --jobs=1 trains in the script's process.
  assert len({r["domain_classifier_id"] for r in rows[2].values()}) == 1
  assert len(list((tmp_path / "w2" / "feature_cache").glob("*.keras"))) == 1
  for name in rows[1]:
    for key in ("fid_generation", "fid_reconstruction", "improved_recall"):
      assert rows[2][name][key] == pytest.approx(rows[1][name][key], rel=1e-4), (name, key)


def test_parallel_runs_start_longest_first_and_keep_a_run_directory_together(tmp_path):
  def run(model, workdir, epochs=5):
    tc = TrainConfig.make(model=model, dataset="synthetic", epochs=epochs, steps_per_epoch=10,
                          workdir=str(tmp_path / workdir))
    return benchmark_runs.PlannedRun(model, "d", tc, ("trained",)), None
  tasks = [run("vae", "v"), run("wae_gan", "w"), run("flexae", "f"), run("vae", "v2"),
           run("two_stage_vae", "t"), run("vae", "v"), run("vae", "long", epochs=20)]
  # two_stage_vae 5.2 x 50, the 20-epoch VAE 200, flexae 2.5 x 50, vae + vae in one
  # directory 100, then the cost-50 groups in plan order.
  assert benchmark_runs.longest_first(tasks) == [[4], [6], [2], [0, 5], [1], [3]]


def test_parallel_failures_are_raised_with_the_run_and_its_log(tmp_path):
  """A child's bad input comes back as ConfigError; a crash as RunFailed naming the log."""
  from rae_tf.errors import RunFailed  # pylint: disable=g-import-not-at-top
  def run(name, dataset):
    tc = TrainConfig.make(model="rae_l2", dataset=dataset, arch="mlp", width=8,
                          latent_dim=2, epochs=1, steps_per_epoch=1, batch_size=10,
                          workdir=str(tmp_path / name), export_dir="", export_name=None)
    return benchmark_runs.PlannedRun(name, "d", tc, ("trained",))
  request = experiments.EvalRequest(num_samples=20, cache_dir=str(tmp_path / "c"))
  done = []
  with pytest.raises(ConfigError, match="absent.npz"):
    benchmark_runs.measure_runs(
        [(run("a", f"npz:{tmp_path / 'absent.npz'}"), request)],
        lambda i, rows: done.append(i), jobs=2)
  with pytest.raises(RunFailed, match=r"b on d failed \(\w+Error: .*b/benchmark.log"):
    benchmark_runs.measure_runs([(run("b", "synthetic"), None)],
                                lambda i, rows: done.append(i), jobs=2)
  assert not done
  with pytest.raises(ConfigError, match="--jobs=0"):
    benchmark_runs.measure_runs([], lambda i, rows: None, jobs=0)
