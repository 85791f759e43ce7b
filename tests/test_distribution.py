"""--strategy=mirrored on two logical CPUs gives the weights of single-device training."""
import json

import pytest

from conftest import run_python

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from rae_tf import training
from rae_tf.config import TrainConfig
training.configure_cpu_devices(2)
weights = {}
for strategy in ("default", "mirrored"):
  config = TrainConfig.make(model=sys.argv[1], dataset="synthetic", true_latent_dim=3,
                       ambient_dim=12, num_examples=96, latent_dim=4, arch="mlp", width=16,
                       depth=2, batch_size=32, epochs=1, strategy=strategy, cpu_devices=2,
                       seed=1, workdir=sys.argv[2] + "/" + strategy, export_dir="",
                       **json.loads(sys.argv[3]))
  tf.keras.utils.set_random_seed(1)
  result = training.train(config, verbose=0)
  weights[strategy] = [w.numpy() for w in result.model.weights]
  iters = {n: int(o.iterations.numpy()) for n, o in result.model.extra_optimizers.items()}
  iters["main"] = int(result.model.optimizer.iterations.numpy())
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights["default"], weights["mirrored"]))
moved = max(float(np.max(np.abs(a))) for a in weights["default"])
print(json.dumps({"diff": diff, "n": len(weights["default"]), "iters": iters}))
"""


@pytest.mark.parametrize("model,iters", [
    # 3 steps, each 1 auto-encoder + 2 critic updates with separate Adam optimizers.
    # (Slow: tests/test_multi_worker.py checks wae_gan across workers in every run.)
    pytest.param("wae_gan", {"main": 3, "adversary_critic": 6}, marks=pytest.mark.slow),
    # FlexAE: four players over three networks (auto-encoder, critic x2, prior, encoder).
    ("flexae", {"main": 3, "adversary_critic": 6, "adversary_prior": 3,
                "adversary_encoder": 3}),
    # MaskAAE (BatchNorm-free MLP nets): auto-encoder with the variance penalty on the
    # all-reduced global batch mean, 2 critic steps, encoder and mask players (RMSProp).
    ("maskaae", {"main": 3, "adversary_critic": 6, "adversary_encoder": 3,
                 "adversary_mask": 3}),
    # RAE-GP: the penalty differentiates the replica's own decoder pass (a tape in the
    # replica function, `Forward.decoder_tape`).
    ("rae_gp", {"main": 3}),
])
def test_mirrored_matches_single_device(tmp_path, model, iters):
  script = tmp_path / "mirror.py"
  script.write_text(SCRIPT)
  extra = {} if model == "rae_gp" else {"critic_width": 16, "critic_depth": 2,
                                        "critic_steps": 2, "prior_width": 16, "prior_depth": 2}
  proc = run_python([str(script), model, str(tmp_path), json.dumps(extra)])
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["iters"] == iters
  assert out["diff"] < 1e-5, out
