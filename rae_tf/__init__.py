"""rae_tf: regularized auto-encoder generative models in TensorFlow / Keras 3.

Submodules (import what you need; importing this package does not import TensorFlow):
  config       TrainConfig, the frozen configuration the library takes; catalog: the names
               flags choose from (no TensorFlow); eval_config: EvalConfig.
  data         data sources by name (synthetic, mnist10k, tfds sets, npz:PATH).
  networks     encoder / decoder / critic architectures (mlp, dcgan, infogan).
  likelihoods  reconstruction costs; divergences: KL, MMD; regularizers: loss terms.
  priors       latent priors (standard normal, learned G(eps), RealNVP flow); expost: GMM
               fitted to training codes (RAE + GMM); prior_refinement: a learned prior
               fitted to the final codes.
  players      the update phases of a training step (auto-encoder, critics, priors).
  models       RegularizedAutoEncoder and the model registry.
  training     train(config); export: the TF-Serving SavedModel; callbacks: checkpoints,
               divergence guard, TensorBoard; outputs: write checks, the workdir lock,
               atomic writes; serving: a TF Serving client (no TensorFlow needed).
  metrics      FID, precision/recall, NAC, active dimensions; viz: figures.
  evaluation   evaluate(config): metrics.json, figures, TensorBoard.
  cli          dataclass <-> absl flags for the scripts in scripts/.

Importing rae_tf before TensorFlow turns TensorFlow's oneDNN kernels on
(TF_ENABLE_ONEDNN_OPTS=1) unless the environment already says otherwise: TensorFlow enables
them by itself only on CPUs with AVX-512 VNNI/BF16 or AMX, and without them its own kernels
train this package's conv nets 1.5-1.8x slower (AVX2 EPYC, benchmarks/README.md).
Set TF_ENABLE_ONEDNN_OPTS=0 to opt out.
"""
import os as _os
import sys as _sys

# Read by TensorFlow when it loads, so it only matters if TensorFlow is not loaded yet.
if "tensorflow" not in _sys.modules:
  _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
