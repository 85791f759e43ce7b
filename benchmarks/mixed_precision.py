r"""--mixed_precision on this machine: training speed, and whether bfloat16 keeps quality.

  python benchmarks/mixed_precision.py                       # speed, then quality
  python benchmarks/mixed_precision.py --parts=speed --steps=20
  python benchmarks/mixed_precision.py --parts=quality --quality_epochs=4

speed    images/s of rae_l2 training steps at dcgan width 32 and 128 (--widths), batch
         100, 28x28 mnist10k, for every --modes value (none = float32, bfloat16, float16),
         through the same `model.fit` path as scripts/train.py and benchmarks/throughput.py:
         each (mode, width) in its own process, --warmup untimed steps (tracing) then
         --steps timed ones. A mode that fails is reported as failed, not dropped.
quality  rae_l2 (dcgan width 32, m = 16, batch 100) on mnist10k for --quality_epochs epochs
         with each of --quality_seeds, in float32 and in each of --quality_modes; every run
         is evaluated on the 997 test images: the test reconstruction MSE (per pixel, the
         model's own loss, computed in float32) and domain FIDs (generation with N(0, I),
         reconstruction; a small MNIST classifier's features, as benchmarks/README.md),
         through rae_tf.experiments.train_and_evaluate. The verdict compares the
         low-precision runs with float32's seed-to-seed spread.

Writes --out.json (both parts; a part that is not run keeps its earlier rows) and --out.md
with the command and the date. Runs live under --work_root and are reused when run again.
Time the speed part on a quiet machine: it measures whatever else the CPU is doing.
"""
import dataclasses
import json
import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import child_result  # pylint: disable=g-import-not-at-top
from rae_tf import cli  # pylint: disable=g-import-not-at-top
from rae_tf.config import MIXED_PRECISION

HERE = os.path.dirname(os.path.abspath(__file__))

flags.DEFINE_list("parts", ["speed", "quality"],
                  "What to run: speed, quality (report: only rewrite OUT.md from OUT.json).")
flags.DEFINE_list("modes", list(MIXED_PRECISION), "Precisions to time.")
flags.DEFINE_list("widths", ["32", "128"], "dcgan widths to time.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("steps", 20, "Timed training steps per (mode, width).")
flags.DEFINE_integer("warmup", 5, "Untimed steps first (tracing, allocation).")
flags.DEFINE_integer("quality_epochs", 4, "Epochs of each quality run.")
flags.DEFINE_list("quality_seeds", ["0", "1"], "Seeds of the quality runs.")
flags.DEFINE_list("quality_modes", ["bfloat16"], "Precisions compared with float32.")
flags.DEFINE_string("work_root", "runs/mixed_precision", "Workdirs of the quality runs.")
flags.DEFINE_string("out", os.path.join(HERE, "mixed_precision"),
                    "Report path without extension (OUT.md, OUT.json).")
flags.DEFINE_string("_child", "", "Internal: time one (mode:width).")
FLAGS = flags.FLAGS

MODEL = "rae_l2"
LATENT_DIM = 16


def measure(mode: str, width: int) -> dict:
  """Times FLAGS.steps fit steps after FLAGS.warmup (benchmarks/throughput.py's method)."""
  import fit_timing  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top

  config = TrainConfig.make(model=MODEL, dataset="mnist10k", arch="dcgan", width=width,
                            latent_dim=LATENT_DIM, batch_size=FLAGS.batch_size,
                            mixed_precision=mode, workdir="unused", export_dir="")
  seconds, losses = fit_timing.time_fit_steps(config, FLAGS.steps, FLAGS.warmup)
  return {"mode": mode, "width": width, "batch": FLAGS.batch_size, "steps": FLAGS.steps,
          "warmup": FLAGS.warmup, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "img_per_s": FLAGS.steps * FLAGS.batch_size / seconds,
          "ms_per_step": 1000.0 * seconds / FLAGS.steps,
          "first_loss": losses[0], "last_loss": losses[-1]}


def run_speed() -> list:
  rows = []
  for width in FLAGS.widths:
    for mode in FLAGS.modes:
      args = [sys.executable, os.path.abspath(__file__), f"--_child={mode}:{width}",
              f"--batch_size={FLAGS.batch_size}", f"--steps={FLAGS.steps}",
              f"--warmup={FLAGS.warmup}"]
      row, error = child_result.run(args)
      if row is None:
        rows.append({"mode": mode, "width": int(width), "failed": error})
        print(f"[mixed_precision] {mode:8s} width {width:>3s}: failed: {error}", flush=True)
        continue
      rows.append(row)
      print(f"[mixed_precision] {mode:8s} width {width:>3s}: {row['img_per_s']:7.1f} img/s "
            f"({row['ms_per_step']:.0f} ms/step)", flush=True)
  return rows


def _speedups(rows: list):
  base = {r["width"]: r["img_per_s"] for r in rows if r["mode"] == "none" and "img_per_s" in r}
  for r in rows:
    if "img_per_s" in r and r["width"] in base:
      r["speedup_vs_float32"] = r["img_per_s"] / base[r["width"]]


def _test_mse(workdir: str) -> float:
  """Mean per-pixel squared error of the run's reconstructions of the test split (float32)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rae_tf import runs  # pylint: disable=g-import-not-at-top
  model, _, _, source = runs.load_run(workdir)
  x = np.asarray(source.arrays("test")[0], np.float32)
  rec = runs.batched(runs.KerasGenerator(model).reconstruct, x, 500)
  return float(np.mean(np.square(rec.astype(np.float64) - x)))


def _last_epoch_reconstruction(workdir: str) -> float:
  """The run's last `epoch/reconstruction` (the training loss, mean over its last epoch)."""
  import glob  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  last = (-1, float("nan"))
  for path in glob.glob(os.path.join(workdir, "tensorboard", "**", "events.out.tfevents.*"),
                        recursive=True):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "epoch/reconstruction" and event.step >= last[0]:
          last = (event.step, float(tf.make_ndarray(value.tensor)))
  return last[1]


def run_quality() -> list:
  from rae_tf import experiments  # pylint: disable=g-import-not-at-top
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  root = os.path.abspath(FLAGS.work_root)
  request = experiments.EvalRequest(features="domain",
                                    cache_dir=os.path.join(root, "feature_cache"))
  rows = []
  for mode in ["none"] + [m for m in FLAGS.quality_modes if m != "none"]:
    for seed in (int(s) for s in FLAGS.quality_seeds):
      config = TrainConfig.make(
          model=MODEL, dataset="mnist10k", arch="dcgan", width=32, latent_dim=LATENT_DIM,
          batch_size=100, epochs=FLAGS.quality_epochs, seed=seed, mixed_precision=mode,
          workdir=os.path.join(root, f"{MODEL}_{mode}_seed{seed}"), export_dir="")
      print(f"[mixed_precision] quality: {mode} seed {seed} ({FLAGS.quality_epochs} epochs)",
            flush=True)
      outcome = experiments.train_and_evaluate(config, request, verbose=0)
      m = outcome.metrics["trained"]
      row = {"mode": mode, "seed": seed, "epochs": outcome.epochs,
             "train_reconstruction": _last_epoch_reconstruction(config.workdir),
             "test_mse": _test_mse(config.workdir),
             "fid_generation": m["fid_generation"],
             "fid_reconstruction": m["fid_reconstruction"],
             "num_samples": m["num_samples"], "fid_label": m["fid_label"],
             "classifier_accuracy": m.get("domain_classifier_test_accuracy")}
      rows.append(row)
      print(f"[mixed_precision]   test MSE {row['test_mse']:.5f}, FID generation "
            f"{row['fid_generation']:.2f}, reconstruction {row['fid_reconstruction']:.2f}",
            flush=True)
  return rows


def quality_verdict(rows: list) -> str:
  """Whether each low-precision run lies within float32's seed-to-seed range (+- its
  spread), metric by metric."""
  ref = [r for r in rows if r["mode"] == "none"]
  if len(ref) < 2:
    return "needs two float32 seeds"
  lines = []
  for key in ("train_reconstruction", "test_mse", "fid_generation", "fid_reconstruction"):
    lo, hi = min(r[key] for r in ref), max(r[key] for r in ref)
    spread = hi - lo
    for mode in sorted({r["mode"] for r in rows} - {"none"}):
      vals = [r[key] for r in rows if r["mode"] == mode]
      inside = all(lo - spread <= v <= hi + spread for v in vals)
      lines.append(f"{key}: {mode} {', '.join(f'{v:.4g}' for v in vals)} vs float32 "
                   f"{lo:.4g}-{hi:.4g} (spread {spread:.3g}): "
                   f"{'within' if inside else 'OUTSIDE'} float32's seed noise")
  return "\n".join(f"- {l}" for l in lines)

# CPU flags (/proc/cpuinfo) that give TensorFlow's oneDNN kernels native 16-bit arithmetic.
SIXTEEN_BIT_FEATURES = ("avx512_bf16", "amx_bf16", "avx512_fp16")


def _speed_reading(features) -> str:
  """What the speed rows mean on the machine that measured them (its 16-bit units)."""
  common = ("Absolute numbers depend on the machine and on what else it was doing: compare "
            "rows measured together.")
  if features is None:  # a report written before the features were recorded
    return common
  if not features:
    return ("This CPU has no native bfloat16 or float16 arithmetic (none of "
            + ", ".join(SIXTEEN_BIT_FEATURES) + "), so TensorFlow's CPU kernels convert or "
            "emulate: 16-bit networks are *slower* than float32 here. Mixed precision's "
            "speed-up needs GPUs/TPUs or CPUs with 16-bit units. " + common)
  return ("This CPU has " + ", ".join(features) + ": oneDNN runs bfloat16 convolutions "
          "and matrix products on those units, so the gain grows with the width (the share "
          "of time in large products); float16 has no such kernels in TensorFlow's CPU "
          "build and is emulated. " + common)


def _quality_reading(rows: list) -> str:
  """Each low-precision mode's mean, metric by metric, relative to float32's mean."""
  def mean(mode, key):
    vals = [r[key] for r in rows if r["mode"] == mode]
    return sum(vals) / len(vals)
  parts = []
  for mode in sorted({r["mode"] for r in rows} - {"none"}):
    diffs = [f"{key.replace('_', ' ')} {100 * (mean(mode, key) / mean('none', key) - 1):+.1f}%"
             for key in ("train_reconstruction", "test_mse", "fid_generation",
                         "fid_reconstruction")]
    parts.append(f"{mode}'s mean against float32's (lower is better for all four): "
                 + ", ".join(diffs) + ".")
  return " ".join(parts)


def _markdown(report: dict) -> str:
  from rae_tf import experiments  # pylint: disable=g-import-not-at-top
  out = ["# Mixed precision (`--mixed_precision`)", "",
         f"Date: {report['date']}  ", f"Machine: {report['machine']}  ",
         "Commands: " + "; ".join(dict.fromkeys(  # One command may run both parts.
             f"`{c}`" for part in ("speed", "quality")
             for c in report.get("commands", {}).get(part, []))), ""]
  speed = report.get("speed")
  if speed:
    out += ["## Training speed", "",
            f"rae_l2, dcgan, 28x28 mnist10k, batch {speed['rows'][0].get('batch', 100)}, "
            "`model.fit` as scripts/train.py; the row's timed steps after its warm-up "
            "steps, one process per row.", ""]
    rows = []
    for r in speed["rows"]:
      if "failed" in r:
        rows.append([r["mode"], r["width"], "failed", "", "", "", r["failed"][:80]])
      else:
        rows.append([r["mode"], r["width"], experiments.fmt(r["img_per_s"], 1),
                     experiments.fmt(r["ms_per_step"], 0),
                     experiments.fmt(r.get("speedup_vs_float32"), 2),
                     f"{r['steps']} after {r['warmup']}",
                     f"{r['first_loss']:.4f} -> {r['last_loss']:.4f}"])
    out += [experiments.markdown_table(
        ["precision", "width", "img/s", "ms/step", "vs float32", "timed steps",
         "loss (first -> last step)"],
        rows, right=[False, True, True, True, True, True, False]), ""]
    out += [_speed_reading(report.get("cpu_features")), ""]
  quality = report.get("quality")
  if quality:
    out += ["## Quality after a short run", "",
            f"rae_l2, dcgan width 32, m = 16, batch 100, {quality['epochs']} epochs of "
            f"mnist10k, Adam 1e-3; train reconstruction = the last epoch's mean training "
            f"loss (per-pixel MSE, training mode); test MSE per pixel (inference mode) and "
            f"{quality['rows'][0]['fid_label']}s on the {quality['rows'][0]['num_samples']} "
            f"test images (measured {quality['date']}).", ""]
    rows = [[r["mode"], r["seed"], f"{r['train_reconstruction']:.5f}", f"{r['test_mse']:.5f}",
             experiments.fmt(r["fid_generation"]), experiments.fmt(r["fid_reconstruction"])]
            for r in quality["rows"]]
    out += [experiments.markdown_table(
        ["precision", "seed", "train reconstruction", "test MSE", "generation FID",
         "reconstruction FID"], rows, right=[False, True, True, True, True, True]), "",
            "Verdict (a run counts as within the noise when it lies inside float32's "
            "seed range widened by that range on each side):", "", quality["verdict"], ""]
    out += [_quality_reading(quality["rows"]), ""]
  return "\n".join(out)


def main(argv):
  if FLAGS._child:  # pylint: disable=protected-access
    mode, width = FLAGS._child.split(":")  # pylint: disable=protected-access
    child_result.emit(measure(mode, int(width)))
    return

  def bench():
    from rae_tf import experiments  # pylint: disable=g-import-not-at-top
    from rae_tf import outputs  # pylint: disable=g-import-not-at-top
    from rae_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
    for mode in FLAGS.modes + FLAGS.quality_modes:
      if mode not in MIXED_PRECISION:
        raise ConfigError(f"unknown precision {mode!r} in --modes/--quality_modes; choose "
                          "from " + ", ".join(MIXED_PRECISION))
    unknown = set(FLAGS.parts) - {"speed", "quality", "report"}
    if unknown:
      raise ConfigError(f"--parts: unknown {sorted(unknown)}; choose speed, quality "
                        "(or report: rewrite OUT.md from OUT.json)")
    command = " ".join(shlex.quote(a) for a in ["python"] + sys.argv)
    if FLAGS.parts == ["report"]:
      with open(FLAGS.out + ".json") as f:
        outputs.atomic_write(FLAGS.out + ".md", _markdown(json.load(f)))
      print(f"[mixed_precision] rewrote {FLAGS.out}.md")
      return
    speed = run_speed() if "speed" in FLAGS.parts else None
    quality = run_quality() if "quality" in FLAGS.parts else None
    # Read the earlier report only now (another invocation may have written it meanwhile):
    # the parts not run now keep their rows.
    try:
      with open(FLAGS.out + ".json") as f:
        report = json.load(f)
    except (OSError, ValueError):
      report = {}
    machine = f"{os.cpu_count()} CPUs, {_cpu_name()}"
    if report.get("machine", machine) != machine:
      # Rows timed on another machine are not comparable with these: start a new report.
      print(f"[mixed_precision] {FLAGS.out}.json was measured on {report['machine']}; "
            "replacing it", flush=True)
      report = {}
    report.update(benchmark="mixed_precision", date=experiments.now(), machine=machine,
                  cpu_features=_cpu_features())
    report.setdefault("commands", {})
    if speed is not None:
      # Rows of (mode, width) pairs not timed now are kept (time widths separately).
      for r in speed:
        r["command"] = command
      done = {(r["mode"], r["width"]) for r in speed}
      old = [r for r in report.get("speed", {}).get("rows", [])
             if (r["mode"], r["width"]) not in done]
      rows = sorted(old + speed, key=lambda r: (r["width"], MIXED_PRECISION.index(r["mode"])))
      _speedups(rows)
      report["speed"] = {"date": experiments.now(), "rows": rows}
      # The commands behind the rows kept (a row re-timed drops its old command).
      older = (report["commands"].get("speed", [])
               if any("command" not in r for r in rows) else [])
      report["commands"]["speed"] = list(dict.fromkeys(
          older + [r["command"] for r in rows if "command" in r]))
    if quality is not None:
      report["quality"] = {"date": experiments.now(), "epochs": FLAGS.quality_epochs,
                           "rows": quality, "verdict": quality_verdict(quality)}
      report["commands"]["quality"] = [command]
    report.pop("command", None)
    outputs.atomic_write(FLAGS.out + ".json", json.dumps(
        experiments.json_safe(report), indent=2, sort_keys=True))
    outputs.atomic_write(FLAGS.out + ".md", _markdown(report))
    print(f"[mixed_precision] wrote {FLAGS.out}.md and {FLAGS.out}.json")

  cli.run_or_exit(bench, argv)


def _cpuinfo(field: str) -> str:
  """The value of the first /proc/cpuinfo line starting with `field` ("" if none)."""
  try:
    with open("/proc/cpuinfo") as f:
      line = next((l for l in f if l.startswith(field)), "")
  except OSError:
    return ""
  return line.split(":", 1)[1].strip() if ":" in line else ""


def _cpu_features() -> list:
  """Which of SIXTEEN_BIT_FEATURES this CPU reports."""
  have = set(_cpuinfo("flags").split())
  return [f for f in SIXTEEN_BIT_FEATURES if f in have]


def _cpu_name() -> str:
  # The family / model tell apart CPUs that share a model name ("AMD EPYC": an AVX2-only
  # EPYC and a Zen 5 one measure very differently in 16 bits).
  name = _cpuinfo("model name") or "unknown CPU"
  family, model = _cpuinfo("cpu family"), _cpuinfo("model\t")
  return f"{name} (family {family}, model {model})" if family else name


if __name__ == "__main__":
  app.run(main)
