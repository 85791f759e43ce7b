r"""The PyTorch peer's side of benchmarks/versus_pythae.py: pythae's RAE-L2 on its own
MNIST benchmark nets (the layout rae_tf's `dcgan` net copies at width 128), timed.

Runs in a separate virtual environment that has torch and pythae (not rae_tf's):

  python -m venv /tmp/pythae_venv && /tmp/pythae_venv/bin/pip install pythae torch
  /tmp/pythae_venv/bin/python benchmarks/pythae_peer.py --npz=PATH --steps=20

Only the standard library, NumPy, torch, pythae and child_result.py are imported. Prints one line
`RESULT {json}`: images/s and ms/step of `--steps` training steps after `--warmup`, with
a plain loop (forward, loss, backward, Adam step; the decoder's L2 is Adam weight decay, as
pythae's trainer sets it), batch `--batch_size`, threads = `--threads`; `--precision=bfloat16`
runs the forward pass under torch.autocast (bfloat16 on the CPU).
"""
import argparse
import resource
import time

import numpy as np

import child_result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--npz", required=True, help="x_train [N, 28, 28(, 1)] in [0, 1] or uint8")
  parser.add_argument("--batch_size", type=int, default=100)
  parser.add_argument("--latent_dim", type=int, default=16)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=5)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                      help="bfloat16: the forward pass under torch.autocast (CPU, bfloat16), "
                      "torch's mixed precision; float32 weights and optimizer either way")
  args = parser.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  from pythae.data.datasets import DatasetOutput  # pylint: disable=g-import-not-at-top
  from pythae.models import RAE_L2, RAE_L2_Config  # pylint: disable=g-import-not-at-top
  from pythae.models.nn.benchmarks import mnist  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  with np.load(args.npz) as data:
    x = np.asarray(data["x_train"])
  x = x.reshape(len(x), 1, 28, 28).astype(np.float32)
  if x.max() > 1.0:
    x /= 255.0
  config = RAE_L2_Config(input_dim=(1, 28, 28), latent_dim=args.latent_dim,
                         embedding_weight=1e-4, reg_weight=1e-7)
  model = RAE_L2(config, encoder=mnist.Encoder_Conv_AE_MNIST(config),
                 decoder=mnist.Decoder_Conv_AE_MNIST(config))
  model.train()
  optimizer = torch.optim.Adam([
      {"params": model.encoder.parameters()},
      {"params": model.decoder.parameters(), "weight_decay": config.reg_weight}],
      lr=args.learning_rate)
  rng = np.random.default_rng(0)
  losses, start = [], None
  for step in range(args.warmup + args.steps):
    if step == args.warmup:
      start = time.perf_counter()
    batch = torch.from_numpy(x[rng.integers(0, len(x), args.batch_size)])
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bfloat16"):
      loss = model(DatasetOutput(data=batch)).loss
    loss.backward()
    optimizer.step()
    losses.append(float(loss.detach()))
  seconds = time.perf_counter() - start
  child_result.emit({
      "framework": f"pythae {metadata.version('pythae')} / torch {torch.__version__}",
      "precision": args.precision,
      "img_per_s": args.steps * args.batch_size / seconds,
      "ms_per_step": 1000.0 * seconds / args.steps,
      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
      "first_loss": losses[0], "last_loss": losses[-1]})


if __name__ == "__main__":
  main()
