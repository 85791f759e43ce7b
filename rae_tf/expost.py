"""Ex-post priors: fit a density to a trained run's training codes, sample from it.

Three kinds (`fit_for_run(workdir, kind)`, `scripts/fit_prior.py --expost=KIND`), each
replacing the model's prior for generation, saved in the run (`EXPOST_FILES`) and exported
as its own SavedModel `<run name>_<kind>`, whose `serving_default` samples it with core TF
ops (no TFP, no rae_tf at serving time):

* gmm: RAE + GMM (Ghosh et al. 2020), a K-component full-covariance Gaussian mixture fitted
  by EM (scikit-learn; the paper's K = 10, max_iter 2000, tol 1e-3).
* flow: a RealNVP flow over N(0, I) (`priors.ExpostFlowPrior`) trained by maximum
  likelihood with Adam on minibatches of the standardised codes.
* vae: Dai & Wipf's second-stage VAE (2-stage VAE, ICLR 2019; `priors.SecondStageVAEPrior`)
  trained with Adam on the codes; samples u ~ N(0, I) -> its decoder's mean.

The fitted priors are in the latent space already (`in_latent_space`): a model with a
latent transform (MaskAAE's mask) does not transform their draws again.
"""
import errno
import json
import os
import time
from typing import Callable, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
import threadpoolctl

from rae_tf import eval_config
from rae_tf import export
from rae_tf import outputs
from rae_tf import priors
from rae_tf import runs
from rae_tf import sampling
from rae_tf.errors import ConfigError, TrainingDiverged
# Re-exported: the kinds and the file each is saved in, inside a run.
from rae_tf.eval_config import EXPOST_FILES  # pylint: disable=unused-import
from rae_tf.eval_config import EXPOST_KINDS  # pylint: disable=unused-import
from rae_tf.eval_config import GMM_FILE  # pylint: disable=unused-import

# Training codes are encoded in batches of this size.
_ENCODE_BATCH = 500


def _say(msg: str):
  print(f"[rae_tf] {msg}", flush=True)


# ----------------------------------------------------------------------------- fitting


def fit_gmm(codes, components: int = 10, seed: int = 0) -> priors.GaussianMixturePrior:
  """RAE + GMM: `priors.fit_gmm_prior` (EM, the paper's settings) on [N, m] codes.

  EM runs with one BLAS / OpenMP thread: its products are tiny (m x m per component), and
  on this 2-core machine under load two spinning BLAS threads made the 60,000 x 16-d,
  K = 10 fit 18x slower (65 s vs 3.7 s; benchmarks/expost_speed.py).
  """
  with threadpoolctl.threadpool_limits(1):
    return priors.fit_gmm_prior(codes, components, seed=seed)


def _standardization(codes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Per-dimension (mean, std) of the codes; std floored so a constant dimension (a
  closed MaskAAE mask entry) does not divide by zero."""
  loc, scale = codes.mean(axis=0), codes.std(axis=0)
  return loc, np.maximum(scale, max(1e-3 * float(scale.max()), 1e-6))


def _train_by_adam(prior, loss_fn: Callable, codes: np.ndarray, steps: int,
                   learning_rate: float, batch_size: int, seed: int, log_every: int,
                   label: str, say: Callable[[str], None]) -> float:
  """Minimises loss_fn(batch of codes, noise seed) over prior's trainable variables.

  Minibatches are drawn with replacement by a stateless RNG from (seed, step), so the fit
  is a function of the seed. Returns the mean loss of the last `log_every` steps (or of
  all, when log_every is 0).

  Raises:
    TrainingDiverged: the loss became non-finite.
  """
  codes_t = tf.constant(codes, tf.float32)
  n = tf.constant(len(codes), tf.int64)
  variables = prior.trainable_variables
  optimizer = keras.optimizers.Adam(learning_rate)
  optimizer.build(variables)  # Slots now, not inside the tf.function.

  @tf.function
  def step(i):
    index = tf.random.stateless_uniform([batch_size], sampling.step_seed(seed, 1, i),
                                        minval=0, maxval=n, dtype=tf.int64)
    with tf.GradientTape() as tape:
      loss = loss_fn(tf.gather(codes_t, index), sampling.step_seed(seed, 2, i))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  start, window = time.time(), []
  for i in range(steps):
    window.append(step(tf.constant(i, tf.int64)))
    if (log_every and (i + 1) % log_every == 0) or i + 1 == steps:
      mean = float(np.mean([w.numpy() for w in window]))
      if not np.isfinite(mean):
        raise TrainingDiverged(f"ex-post {label} fit diverged by step {i + 1} (loss {mean});"
                               " lower --learning_rate")
      if log_every:
        say(f"{label} fit: step {i + 1}/{steps}, loss {mean:.4f} "
            f"({time.time() - start:.0f} s)")
        window = []
  return mean


def fit_flow(codes, steps: int = 3000, learning_rate: float = 1e-3, batch_size: int = 256,
             couplings: int = 4, width: int = 128, depth: int = 2, log_every: int = 500,
             seed: int = 0, say: Callable[[str], None] = _say) -> priors.ExpostFlowPrior:
  """A RealNVP flow fitted by maximum likelihood (Adam) to [N, m] codes.

  Args:
    codes: [N, m] training codes (m >= 2).
    steps, learning_rate, batch_size: the Adam fit.
    couplings, width, depth: the flow (affine couplings; their networks' size).
    log_every: a progress line every this many steps (0: none).
    seed: initial weights and minibatches.
    say: where progress lines go.
  Returns:
    The fitted ExpostFlowPrior (the loss is the mean negative log-likelihood per code).
  """
  codes = np.asarray(codes, np.float32)
  if codes.ndim != 2 or codes.shape[1] < 2:
    raise ConfigError(f"--expost=flow needs codes [N, m] with m >= 2 (got {codes.shape}); "
                      "use --expost=gmm for a 1-d latent space")
  keras.utils.set_random_seed(seed)  # The couplings' initial weights.
  prior = priors.ExpostFlowPrior(codes.shape[1], couplings, width, depth, name="flow_prior")
  prior.build()
  prior.set_standardization(*_standardization(codes))
  _train_by_adam(prior, lambda z, _: -tf.reduce_mean(prior.log_prob(z)), codes, steps,
                 learning_rate, batch_size, seed, log_every, "flow", say)
  return prior


def fit_vae(codes, steps: int = 3000, learning_rate: float = 1e-3, batch_size: int = 256,
            width: int = 1024, depth: int = 3, log_every: int = 500, seed: int = 0,
            say: Callable[[str], None] = _say) -> priors.SecondStageVAEPrior:
  """Dai & Wipf's second-stage VAE trained (Adam) on [N, m] codes.

  Args:
    codes: [N, m] training codes.
    steps, learning_rate, batch_size: the Adam fit.
    width, depth: encoder and decoder size (paper: 3 x 1024).
    log_every: a progress line every this many steps (0: none).
    seed: initial weights, minibatches and reparameterisation noise.
    say: where progress lines go.
  Returns:
    The fitted SecondStageVAEPrior (the loss is its negative ELBO per code, up to a
    constant).
  """
  codes = np.asarray(codes, np.float32)
  keras.utils.set_random_seed(seed)
  prior = priors.SecondStageVAEPrior(codes.shape[1], width, depth, name="vae_prior")
  prior.build()
  prior.set_standardization(*_standardization(codes))
  _train_by_adam(prior, prior.loss, codes, steps, learning_rate, batch_size, seed,
                 log_every, "vae", say)
  say(f"vae fit: gamma_z {float(np.exp(prior.log_gamma.numpy())):.3g} (standardised codes)")
  return prior


_FITTERS = {"gmm": fit_gmm, "flow": fit_flow, "vae": fit_vae}


def fit(kind: str, codes, seed: int = 0, **options):
  """The ex-post prior `kind` fitted to [N, m] codes; options as in eval_config.

  Raises:
    ConfigError: an unknown kind or bad options (naming the flag).
  """
  options = eval_config.expost_options(kind, **options)  # Checks the kind first.
  return _FITTERS[kind](codes, seed=seed, **options)


# ----------------------------------------------------------------------------- files


def save_gmm(prior: priors.GaussianMixturePrior, path: str):
  np.savez(path, logits=prior.logits.numpy(), means=prior.means.numpy(),
           scale_tril=prior.scale_tril.numpy())


def load_gmm(path: str) -> priors.GaussianMixturePrior:
  """The GaussianMixturePrior saved by `fit_for_run(..., "gmm")`."""
  if not os.path.exists(path):
    raise ConfigError(f"{path} not found: fit it first with scripts/fit_prior.py --workdir=RUN")
  with np.load(path) as f:
    k, m = f["means"].shape
    prior = priors.GaussianMixturePrior(m, k, name="gmm_prior")
    prior.logits.assign(f["logits"])
    prior.means.assign(f["means"])
    prior.scale_tril.assign(f["scale_tril"])
  return prior


def save_layer(prior, path: str):
  """A fitted prior layer as .npz: its Keras serialisation (JSON) and its weights."""
  config = json.dumps(keras.saving.serialize_keras_object(prior))
  weights = {f"w{i:03d}": w for i, w in enumerate(prior.get_weights())}
  np.savez(path, keras_config=np.array(config), **weights)


def load_layer(path: str):
  """The prior layer saved by `save_layer`: rebuilt from its config, weights restored."""
  with np.load(path) as f:
    prior = keras.saving.deserialize_keras_object(json.loads(str(f["keras_config"])))
    prior.build()
    prior.set_weights([f[k] for k in sorted(k for k in f.files if k.startswith("w"))])
  return prior


def save_expost(prior, kind: str, path: str):
  """Writes a fitted ex-post prior atomically (a temporary file, then a rename)."""
  tmp = f"{path}.tmp-{os.getpid()}.npz"  # np.savez appends .npz to other names.
  try:
    (save_gmm if kind == "gmm" else save_layer)(prior, tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def load_expost(workdir: str, kind: str):
  """The ex-post prior `kind` fitted to the run in `workdir` (by fit_for_run).

  Raises:
    ConfigError: an unknown kind, or no such fit yet (the message says how to make it).
  """
  eval_config.check_expost_file(workdir, kind)
  path = eval_config.expost_file(workdir, kind)
  return load_gmm(path) if kind == "gmm" else load_layer(path)


# ----------------------------------------------------------------------------- runs


def training_codes(model, source, limit: Optional[int] = None) -> np.ndarray:
  """[N, m] codes of the training split (the first `limit` examples; None: all)."""
  x_train, _ = source.arrays("train", limit=limit)
  return runs.batched(runs.KerasGenerator(model).encode, x_train, _ENCODE_BATCH)


def fit_for_run(workdir: str, kind: str = "gmm", export_dir: Optional[str] = None,
                seed: int = 0, limit: Optional[int] = None, **options
                ) -> Tuple[keras.layers.Layer, Optional[str]]:
  """Fits the ex-post prior `kind` to a run's training codes, saves it, optionally exports.

  Args:
    workdir: the training run.
    kind: "gmm", "flow" or "vae".
    export_dir: SavedModel root; the model is exported with the fitted prior as
      <run name>_<kind> (None: no export).
    seed: the fit's seed (EM initialisation; initial weights, minibatches, noise).
    limit: fit on the codes of the first `limit` training examples (None: all).
    **options: the kind's fit options (eval_config.EXPOST_OPTIONS; None = the default):
      gmm: components; flow: steps, learning_rate, batch_size, couplings, width, depth,
      log_every; vae: steps, learning_rate, batch_size, width, depth, log_every.
  Returns:
    (the fitted prior layer, the SavedModel path or None).
  Raises:
    ConfigError: bad input, detected before anything is written.
  """
  options = eval_config.expost_options(kind, **options)
  if limit is not None and limit < 1:
    raise ConfigError(f"--limit={limit} must be >= 1 (or leave it unset for all training "
                      "examples)")
  if export_dir:
    export.check_export_root(export_dir)  # Before the slow part.
  model, config, _, source = runs.load_run(workdir)
  codes = training_codes(model, source, limit)
  start = time.time()
  prior = _FITTERS[kind](codes, seed=seed, **options)
  _say(f"{kind} fitted to {len(codes)} codes of dimension {codes.shape[1]} in "
       f"{time.time() - start:.1f} s")
  save_expost(prior, kind, eval_config.expost_file(workdir, kind))
  path = None
  if export_dir:
    model.prior = prior
    path = export.export_saved_model(model, export_dir, f"{config.run_name}_{kind}",
                                     source.spec.is_image)
  return prior, path


FIT_STAMP = "expost_fit_{kind}.json"  # In the run directory: what the fitted file was made from.


def fit_for_run_once(workdir: str, kind: str, export_dir: Optional[str] = None,
                     seed: int = 0, **options) -> Tuple[bool, Optional[str]]:
  """fit_for_run, unless the run's `kind` file is already the fit of its latest checkpoint
  with these options (defaults resolved) and seed, and unchanged since.

  Training's one-command recipes (RAE + GMM, the 2-stage VAE) and the benchmarks'
  evaluations share the fit this way (a 2-stage VAE's second stage takes minutes); a fit
  by scripts/fit_prior.py with other options since then is not trusted: fitted again.

  Returns:
    (whether it fitted now, the SavedModel path of a new fit's export or None).
  """
  made_from = {"checkpoint": runs.checkpoint_identity(workdir),
               "options": eval_config.expost_options(kind, **options), "seed": seed}
  fitted = eval_config.expost_file(workdir, kind)
  stamp_path = os.path.join(workdir, FIT_STAMP.format(kind=kind))
  stamp = None
  if os.path.exists(stamp_path):
    with open(stamp_path) as f:
      stamp = json.load(f)
  if stamp and stamp.get("made_from") == made_from and (
      stamp.get("file") == outputs.file_digest(fitted)):
    _say(f"{workdir}: ex-post {kind} prior of {made_from['checkpoint'].split(':')[0]} "
         f"reused from {fitted}")
    return False, None
  _say(f"{workdir}: fitting the ex-post {kind} prior {options or ''}...")
  _, path = fit_for_run(workdir, kind, export_dir=export_dir, seed=seed, **options)
  outputs.atomic_write(stamp_path, json.dumps(
      {"made_from": made_from, "file": outputs.file_digest(fitted)}, indent=2,
      sort_keys=True))
  return True, path


def fit_gmm_for_run(workdir: str, num_components: int = 10, export_dir: Optional[str] = None,
                    seed: int = 0, limit: Optional[int] = None
                    ) -> Tuple[priors.GaussianMixturePrior, Optional[str]]:
  """fit_for_run(workdir, "gmm", ..., components=num_components) (RAE + GMM)."""
  if num_components < 1:
    raise ConfigError(f"--components={num_components} must be >= 1")
  return fit_for_run(workdir, "gmm", export_dir, seed, limit, components=num_components)


def export_run(workdir: str, export_root: str = "saved_models", name: Optional[str] = None,
               prior: str = "trained") -> str:
  """Re-exports a training run (config.json + latest checkpoint) without training.

  Args:
    workdir: the training run directory.
    export_root: the SavedModel root.
    name: the model name (default: the run's export name, plus "_<prior>" for an ex-post
      prior, as fit_for_run exports it).
    prior: "trained" (the model's own prior) or an ex-post kind ("gmm", "flow", "vae")
      fitted before by scripts/fit_prior.py.
  Returns:
    The new version directory.
  Raises:
    ConfigError: bad input, detected before anything is written.
  """
  export.check_export_run(workdir, export_root, name, prior)
  try:
    model, config, _, source = runs.load_run(workdir)
  except OSError as e:
    if e.errno in (errno.EACCES, errno.EPERM, errno.ENOENT):
      raise ConfigError(f"--workdir={workdir}: {e.strerror}: {e.filename}") from None
    raise
  suffix = ""
  if prior != "trained":
    model.prior = load_expost(workdir, prior)
    suffix = f"_{prior}"
  if name is None:
    name = export.check_model_name(config.run_name + suffix)
  return export.export_saved_model(model, export_root, name, source.spec.is_image)
