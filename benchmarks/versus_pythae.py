r"""rae_tf against the PyTorch peer (pythae) on the same net, the same CPU, the same batch.

  python -m venv /tmp/pythae_venv && /tmp/pythae_venv/bin/pip install pythae torch
  python benchmarks/versus_pythae.py --peer_python=/tmp/pythae_venv/bin/python \
      --json_out=benchmarks/versus_pythae.json --md_out=benchmarks/versus_pythae.md

Optional: it needs a virtual environment with torch and pythae (`--peer_python`); without
one it says so and exits 2. Each side trains RAE-L2 (m = 16, batch 100) on the bundled MNIST
subset with pythae's MNIST benchmark nets, the layout of rae_tf's `dcgan` at width 128:
rae_tf through `model.fit` (benchmarks/throughput.py's child, the scripts/train.py model),
pythae through a plain torch loop (benchmarks/pythae_peer.py). The two alternate
`--repeats` times, one child process each; the report gives every measurement, the medians
and the ratio rae_tf / pythae in images/s. Compare numbers measured together only.
`--precision=bfloat16` compares both libraries' mixed precision (rae_tf's bfloat16 networks
against torch.autocast's bfloat16 forward pass) on CPUs with bfloat16 units.
"""
import datetime
import json
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import child_result  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("peer_python", "", "Python of a virtual environment with torch and pythae.")
flags.DEFINE_integer("steps", 20, "Timed training steps per measurement.")
flags.DEFINE_integer("warmup", 5, "Untimed steps first (tracing, allocation).")
flags.DEFINE_integer("repeats", 2, "Alternating rae_tf / pythae measurements.")
flags.DEFINE_integer("threads", 2, "torch threads (rae_tf uses TensorFlow's defaults).")
flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                  "Both sides' precision: float32, or bfloat16 mixed precision (rae_tf "
                  "--mixed_precision=bfloat16, pythae's forward under torch.autocast).")
flags.DEFINE_string("json_out", "", "Write the measurements as JSON here.")
flags.DEFINE_string("md_out", "", "Write a Markdown report here.")
FLAGS = flags.FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTH = 128  # pythae's benchmark nets: 128, 256, 512, 1024 channels = dcgan width 128.


def _bundled_npz() -> str:
  import rae_tf  # pylint: disable=g-import-not-at-top
  return os.path.join(os.path.dirname(rae_tf.__file__), "data_files", "mnist10k.npz")


def measure_rae_tf():
  return child_result.run([sys.executable, os.path.join(HERE, "throughput.py"),
               f"--_child=rae_l2:{WIDTH}", "--batch_size=100", "--latent_dim=16",
               f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}",
               "--mixed_precision=" + ("none" if FLAGS.precision == "float32" else "bfloat16")])


def measure_pythae():
  return child_result.run([FLAGS.peer_python, os.path.join(HERE, "pythae_peer.py"),
               f"--npz={_bundled_npz()}", "--batch_size=100", "--latent_dim=16",
               f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}",
               f"--threads={FLAGS.threads}", f"--precision={FLAGS.precision}"])


def report(rows) -> str:
  ours = [r["img_per_s"] for r in rows if r["side"] == "rae_tf"]
  peer = [r["img_per_s"] for r in rows if r["side"] == "pythae"]
  lines = [
      "# rae_tf vs pythae: training speed on one CPU (issue 10)", "",
      f"Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}  ",
      "Command: `python benchmarks/versus_pythae.py " + " ".join(sys.argv[1:]) + "`  ",
      f"RAE-L2, pythae's MNIST benchmark nets (rae_tf `dcgan` width {WIDTH}), m = 16, batch "
      f"100, MNIST subset 28x28, {FLAGS.precision} on both sides; {FLAGS.steps} timed "
      f"steps after {FLAGS.warmup}; alternating child processes.", "",
      "| repeat | side | framework | img/s | ms/step | peak RSS MiB |",
      "| ---: | --- | --- | ---: | ---: | ---: |"]
  for r in rows:
    lines.append(f"| {r['repeat']} | {r['side']} | {r.get('framework', 'rae_tf')} | "
                 f"{r['img_per_s']:.1f} | {r['ms_per_step']:.0f} | {r['peak_rss_mib']:.0f} |")
  if ours and peer:
    ratio = statistics.median(ours) / statistics.median(peer)
    lines += ["", f"Median images/s: rae_tf {statistics.median(ours):.1f}, pythae "
              f"{statistics.median(peer):.1f}: **rae_tf / pythae = {ratio:.2f}x** "
              f"(goal >= 1.5x: {'met' if ratio >= 1.5 else 'not met'})."]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  if not FLAGS.peer_python or not os.path.exists(FLAGS.peer_python):
    print("error: --peer_python must name the python of a virtual environment with torch "
          "and pythae (python -m venv V && V/bin/pip install pythae torch)", file=sys.stderr)
    sys.exit(2)
  rows = []
  for repeat in range(1, FLAGS.repeats + 1):
    for side, fn in (("rae_tf", measure_rae_tf), ("pythae", measure_pythae)):
      print(f"[versus_pythae] repeat {repeat}: {side} ...", flush=True)
      row, error = fn()
      if row is None:
        print(f"error: {side} failed: {error}", file=sys.stderr)
        sys.exit(1)
      row.update(side=side, repeat=repeat)
      print(f"[versus_pythae]   {row['img_per_s']:.1f} img/s", flush=True)
      rows.append(row)
  text = report(rows)
  print(text)
  if FLAGS.json_out:
    with open(FLAGS.json_out, "w") as f:
      json.dump(rows, f, indent=2)
  if FLAGS.md_out:
    with open(FLAGS.md_out, "w") as f:
      f.write(text)


if __name__ == "__main__":
  app.run(main)
