r"""Training and serving speed on the CPU: the user's path beside the bare `fit`.

  python benchmarks/speed.py                                  # rae_l2, flexae, maskaae; w 32, 128
  python benchmarks/speed.py --models=rae_l2 --widths=32 --epochs=3
  python benchmarks/speed.py --modes=serve --widths=32        # SavedModel sampling only
  python benchmarks/speed.py --json_out=benchmarks/speed.json --md_out=benchmarks/speed.md

Per (model, width) and mode, one child process (so peak RSS is that measurement's alone):

  bare   `model.fit` of the compiled model (`runs.build_compiled_model`) on the training
         stream: the throughput floor (what benchmarks used to time).
  user   `training.train(config)`: what `scripts/train.py` runs, with the divergence guard,
         TensorBoard summaries (per-step scalars, per-epoch images and histograms),
         checkpoints, in a fresh workdir (no export).
  serve  the exported SavedModel's `serving_default` (seeds -> images), loaded with
         tf.saved_model.load, against the same model sampling in process
         (`sample_from_seeds` under tf.function): images/s at --serve_batch and the median
         latency of single-seed requests.

bare and user time the same epochs of the same net on the bundled MNIST subset (28x28x1,
batch --batch_size, --steps_per_epoch steps an epoch): the first epoch (tracing, warm-up)
is left out and every later epoch counts whole, from its start to the next one's, so the
user path's per-epoch work (summaries, images, checkpoint) is in its number. The two paths
alternate --repeats times (bare first, then user first, ...); the report gives the medians
and the user path's overhead.
That overhead compares step times across processes, which on a shared 2-core machine
spread by several per cent on their own; so each child also splits its epochs into the
in-epoch step (the median time between two steps) and the per-epoch work (an epoch's wall
time beyond its steps at that pace), and "user's per-epoch work" is the user path's extra
per-epoch work as a share of its epoch's steps: the same overhead read inside one process.
On a shared machine, compare columns measured together, not across days.
"""
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import child_result  # pylint: disable=g-import-not-at-top

MODES = ("bare", "user", "serve")
flags.DEFINE_list("models", ["rae_l2", "flexae", "maskaae"], "Registered models to time.")
flags.DEFINE_list("widths", ["32", "128"], "dcgan widths.")
flags.DEFINE_list("modes", list(MODES), "What to time: bare, user, serve.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("latent_dim", 16, "Latent dimension m.")
flags.DEFINE_integer("epochs", 3, "Epochs per training measurement (the first is warm-up).")
flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch (0: one pass over the 9,000 "
                     "training images, 90 steps at batch 100, as the quickstart).")
flags.DEFINE_integer("repeats", 2, "Alternating bare/user measurements per row.")
flags.DEFINE_integer("serve_batch", 1000, "Seeds per request for sampling throughput.")
flags.DEFINE_integer("serve_requests", 50, "Single-seed requests for the latency.")
flags.DEFINE_string("json_out", "", "Also write the rows as JSON here.")
flags.DEFINE_string("md_out", "", "Also write a Markdown table here.")
flags.DEFINE_string("_child", "", "Internal: one measurement, mode:model:width.")
FLAGS = flags.FLAGS


def _config(model_name: str, width: int, workdir: str):
  from rae_tf.config import TrainConfig  # pylint: disable=g-import-not-at-top
  return TrainConfig.make(model=model_name, dataset="mnist10k", arch="dcgan", width=width,
                          latent_dim=FLAGS.latent_dim, batch_size=FLAGS.batch_size,
                          epochs=FLAGS.epochs, steps_per_epoch=FLAGS.steps_per_epoch or None,
                          workdir=workdir, export_dir="")


def _epoch_timer():
  import keras  # pylint: disable=g-import-not-at-top

  class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch, from its start to the next one's (or the end)."""

    def __init__(self):
      super().__init__()
      self.starts, self.end, self.steps = [], None, 0
      self.batch_ends = []  # Per epoch: the times its steps ended.

    def on_epoch_begin(self, epoch, logs=None):
      self.starts.append(time.perf_counter())
      self.batch_ends.append([])

    def on_train_batch_end(self, batch, logs=None):
      self.steps = max(self.steps, batch + 1)
      self.batch_ends[-1].append(time.perf_counter())

    def on_train_end(self, logs=None):
      self.end = time.perf_counter()

    def ms_per_step(self) -> float:
      """Mean over the epochs after the first, per-epoch work included."""
      bounds = self.starts[1:] + [self.end]
      return 1000.0 * (bounds[-1] - bounds[0]) / ((len(bounds) - 1) * self.steps)

    def in_epoch_step_ms(self) -> float:
      """Median time between two steps of one epoch (epochs after the first)."""
      gaps = [b - a for ends in self.batch_ends[1:] for a, b in zip(ends, ends[1:])]
      return 1000.0 * statistics.median(gaps)

    def epoch_work_ms(self) -> float:
      """Mean wall time an epoch spends beyond its steps at the in-epoch median pace:
      the per-epoch work (summaries, images, checkpoint), read inside one process, so
      the process-to-process spread of the step time does not enter it."""
      bounds = self.starts[1:] + [self.end]
      epochs = [1000.0 * (b - a) for a, b in zip(bounds, bounds[1:])]
      return statistics.mean(epochs) - self.steps * self.in_epoch_step_ms()

  timer = EpochTimer()
  # Ask Keras for the same asynchronous dispatch as a callback-free fit: the timer only
  # reads the batch index, so it does not change how the path under test runs.
  timer.async_safe = True
  return timer


def measure_training(mode: str, model_name: str, width: int) -> dict:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rae_tf import data as rae_data  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  timer = _epoch_timer()
  with tempfile.TemporaryDirectory() as tmp:
    config = _config(model_name, width, os.path.join(tmp, "run"))
    if mode == "user":
      training.train(config, verbose=0, callbacks=[timer])
    else:
      source = rae_data.get_data_source(training.data_config(config))
      model, _ = training.build_compiled_model(config, source.spec,
                                               tf.distribute.get_strategy())
      steps = config.steps_per_epoch or source.spec.num_train // config.batch_size
      model.fit(source.training_stream(config.batch_size, seed=config.seed),
                epochs=config.epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
  ms = timer.ms_per_step()
  return {"mode": mode, "ms_per_step": ms, "img_per_s": 1000.0 * FLAGS.batch_size / ms,
          "steps_timed": (FLAGS.epochs - 1) * timer.steps,
          "in_epoch_step_ms": timer.in_epoch_step_ms(), "epoch_work_ms": timer.epoch_work_ms(),
          "steps_per_epoch": timer.steps}


def measure_serving(model_name: str, width: int) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rae_tf import data as rae_data  # pylint: disable=g-import-not-at-top
  from rae_tf import export as rae_export  # pylint: disable=g-import-not-at-top
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    config = _config(model_name, width, os.path.join(tmp, "run"))
    source = rae_data.get_data_source(training.data_config(config))
    model, _ = training.build_compiled_model(config, source.spec, tf.distribute.get_strategy())
    path = rae_export.export_saved_model(model, tmp, "m", source.spec.is_image)
    served = tf.saved_model.load(path).signatures["serving_default"]
    in_process = tf.function(lambda s: model.sample_from_seeds(s)[0],
                             input_signature=[tf.TensorSpec([None], tf.int64)])

    def run_served(seeds):
      return served(seed=seeds)["image"].numpy()

    def run_in_process(seeds):
      return in_process(seeds).numpy()

    batch = tf.range(FLAGS.serve_batch, dtype=tf.int64)
    row = {"mode": "serve"}
    for name, fn in (("saved_model", run_served), ("in_process", run_in_process)):
      np.testing.assert_equal(fn(batch[:4]).shape, (4, 28, 28, 1))  # Warm-up, tracing.
      times = []
      for _ in range(3):
        start = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - start)
      row[f"{name}_img_per_s"] = FLAGS.serve_batch / min(times)
      single = []
      for i in range(FLAGS.serve_requests):
        start = time.perf_counter()
        fn(tf.constant([i], tf.int64))
        single.append(time.perf_counter() - start)
      row[f"{name}_latency_ms"] = 1000.0 * statistics.median(single)
    row["throughput_ratio"] = row["saved_model_img_per_s"] / row["in_process_img_per_s"]
    row["latency_ratio"] = row["saved_model_latency_ms"] / row["in_process_latency_ms"]
  return row


def _child(spec: str):
  import resource  # pylint: disable=g-import-not-at-top
  mode, name, width = spec.split(":")
  row = (measure_serving(name, int(width)) if mode == "serve"
         else measure_training(mode, name, int(width)))
  row.update(model=name, width=int(width),
             peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
  child_result.emit(row)


def _run_child(mode: str, name: str, width: str) -> dict:
  args = [sys.executable, os.path.abspath(__file__), f"--_child={mode}:{name}:{width}",
          f"--batch_size={FLAGS.batch_size}", f"--latent_dim={FLAGS.latent_dim}",
          f"--epochs={FLAGS.epochs}", f"--steps_per_epoch={FLAGS.steps_per_epoch}",
          f"--serve_batch={FLAGS.serve_batch}", f"--serve_requests={FLAGS.serve_requests}"]
  row, error = child_result.run(args)
  if row is None:
    return {"mode": mode, "model": name, "width": int(width), "error": error}
  return row


def _summarise(rows):
  """One line per (model, width): medians of the alternating bare/user measurements."""
  table = []
  keys = []
  for r in rows:
    if (r["model"], r["width"]) not in keys:
      keys.append((r["model"], r["width"]))
  for model, width in keys:
    mine = [r for r in rows if r["model"] == model and r["width"] == width]
    line = {"model": model, "width": width}
    for mode in ("bare", "user"):
      ok = [r for r in mine if r["mode"] == mode and "error" not in r]
      if ok:
        line[f"{mode}_ms"] = statistics.median(r["ms_per_step"] for r in ok)
        line[f"{mode}_img_per_s"] = 1000.0 * FLAGS.batch_size / line[f"{mode}_ms"]
        line[f"{mode}_peak_rss_mib"] = max(r["peak_rss_mib"] for r in ok)
        line[f"{mode}_in_epoch_step_ms"] = statistics.median(r["in_epoch_step_ms"] for r in ok)
        line[f"{mode}_epoch_work_ms"] = statistics.median(r["epoch_work_ms"] for r in ok)
        line["steps_per_epoch"] = ok[0]["steps_per_epoch"]
    if "bare_ms" in line and "user_ms" in line:
      line["user_overhead"] = line["user_ms"] / line["bare_ms"] - 1.0
      # The same overhead read inside each process: the per-epoch work each path adds to
      # its own steps, which the process-to-process spread of the step time does not enter.
      line["user_epoch_work"] = ((line["user_epoch_work_ms"] - line["bare_epoch_work_ms"])
                                 / (line["steps_per_epoch"] * line["user_in_epoch_step_ms"]))
    serve = [r for r in mine if r["mode"] == "serve" and "error" not in r]
    if serve:
      line.update({k: v for k, v in serve[0].items()
                   if k not in ("mode", "model", "width", "peak_rss_mib")})
    line["errors"] = [f"{r['mode']}: {r['error']}" for r in mine if "error" in r]
    table.append(line)
  return table


def _fmt(value, digits=1):
  return "-" if value is None else f"{value:.{digits}f}"


def markdown(table, command: str) -> str:
  lines = [f"Command: `{command}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
           f"; batch {FLAGS.batch_size}, m = {FLAGS.latent_dim}, {FLAGS.epochs} epochs "
           f"(first left out), {FLAGS.repeats} alternating repeat(s), medians.", "",
           "| model | width | bare ms/step | user ms/step | user overhead | in-epoch step ms "
           "(bare / user) | per-epoch work ms (bare / user) | user's per-epoch work | "
           "bare img/s | user img/s | peak RSS MiB (bare / user) | "
           "SavedModel / in-process img/s | single-seed latency ms (SavedModel / in-process) |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
           "---: |"]
  for t in table:
    overhead, work = t.get("user_overhead"), t.get("user_epoch_work")
    lines.append(
        f"| {t['model']} | {t['width']} | {_fmt(t.get('bare_ms'))} | {_fmt(t.get('user_ms'))} "
        f"| {'-' if overhead is None else f'{100 * overhead:+.1f} %'} "
        f"| {_fmt(t.get('bare_in_epoch_step_ms'))} / {_fmt(t.get('user_in_epoch_step_ms'))} "
        f"| {_fmt(t.get('bare_epoch_work_ms'), 0)} / {_fmt(t.get('user_epoch_work_ms'), 0)} "
        f"| {'-' if work is None else f'{100 * work:+.1f} %'} "
        f"| {_fmt(t.get('bare_img_per_s'), 0)} | {_fmt(t.get('user_img_per_s'), 0)} "
        f"| {_fmt(t.get('bare_peak_rss_mib'), 0)} / {_fmt(t.get('user_peak_rss_mib'), 0)} "
        f"| {_fmt(t.get('saved_model_img_per_s'), 0)} / {_fmt(t.get('in_process_img_per_s'), 0)}"
        f" ({_fmt(t.get('throughput_ratio'), 2)}x) "
        f"| {_fmt(t.get('saved_model_latency_ms'), 2)} / {_fmt(t.get('in_process_latency_ms'), 2)} |")
  errors = [f"{t['model']} w{t['width']} {e}" for t in table for e in t["errors"]]
  if errors:
    lines += ["", "Failed: " + "; ".join(errors)]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  if FLAGS._child:  # pylint: disable=protected-access
    _child(FLAGS._child)  # pylint: disable=protected-access
    return
  bad = [m for m in FLAGS.modes if m not in MODES]
  if bad:
    sys.exit(f"error: --modes={','.join(FLAGS.modes)}: choose from {', '.join(MODES)}")
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  unknown = [m for m in FLAGS.models if m not in zoo.MODELS.names()]
  if unknown:
    sys.exit(f"error: --models: {', '.join(unknown)} not registered")
  rows = []
  for width in FLAGS.widths:
    for name in FLAGS.models:
      for i in range(FLAGS.repeats):
        # Odd repeats time bare first, even ones user first: a host whose speed drifts
        # over the minutes of a pair does not favour one side.
        order = ("bare", "user") if i % 2 == 0 else ("user", "bare")
        for mode in [m for m in order if m in FLAGS.modes]:
          row = _run_child(mode, name, width)
          rows.append(row)
          print(f"{name} w{width} {mode} #{i + 1}: " + (
              f"{row['ms_per_step']:.1f} ms/step, {row['img_per_s']:.0f} img/s, "
              f"peak RSS {row['peak_rss_mib']:.0f} MiB" if "error" not in row
              else f"failed: {row['error']}"), flush=True)
      if "serve" in FLAGS.modes:
        row = _run_child("serve", name, width)
        rows.append(row)
        print(f"{name} w{width} serve: " + (
            f"SavedModel {row['saved_model_img_per_s']:.0f} img/s vs in-process "
            f"{row['in_process_img_per_s']:.0f} ({row['throughput_ratio']:.2f}x); latency "
            f"{row['saved_model_latency_ms']:.2f} vs {row['in_process_latency_ms']:.2f} ms"
            if "error" not in row else f"failed: {row['error']}"), flush=True)
  table = _summarise(rows)
  command = "python benchmarks/speed.py " + " ".join(sys.argv[1:])
  text = markdown(table, command)
  print(text)
  if FLAGS.json_out:
    with open(FLAGS.json_out, "w") as f:
      json.dump({"command": command, "rows": rows, "table": table}, f, indent=2)
  if FLAGS.md_out:
    with open(FLAGS.md_out, "w") as f:
      f.write(text)


if __name__ == "__main__":
  app.run(main)
