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
"""
__version__ = "0.1.0"
