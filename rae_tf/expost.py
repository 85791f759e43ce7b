"""Ex-post priors: fit a density to a trained run's training codes, sample from it.

RAE + GMM (Ghosh et al. 2020): a 10-component full-covariance Gaussian mixture fitted to all
training codes replaces N(0, I) for generation. The fit is saved in the run
(`gmm_prior.npz`) and exported as its own SavedModel, whose `serving_default` samples the
mixture.
"""
import os
from typing import Optional, Tuple

import numpy as np

from rae_tf import priors
from rae_tf.errors import ConfigError

GMM_FILE = "gmm_prior.npz"


def save_gmm(prior: priors.GaussianMixturePrior, path: str):
  np.savez(path, logits=prior.logits.numpy(), means=prior.means.numpy(),
           scale_tril=prior.scale_tril.numpy())


def load_gmm(path: str) -> priors.GaussianMixturePrior:
  """The GaussianMixturePrior saved by `fit_gmm_for_run`."""
  if not os.path.exists(path):
    raise ConfigError(f"{path} not found: fit it first with scripts/fit_prior.py --workdir=RUN")
  with np.load(path) as f:
    k, m = f["means"].shape
    prior = priors.GaussianMixturePrior(m, k, name="gmm_prior")
    prior.logits.assign(f["logits"])
    prior.means.assign(f["means"])
    prior.scale_tril.assign(f["scale_tril"])
  return prior


def fit_gmm_for_run(workdir: str, num_components: int = 10, export_dir: Optional[str] = None,
                    seed: int = 0, limit: Optional[int] = None
                    ) -> Tuple[priors.GaussianMixturePrior, Optional[str]]:
  """Fits the GMM to a run's training codes, saves it, optionally exports the model with it.

  Args:
    workdir: the training run.
    num_components: mixture components K.
    export_dir: SavedModel root; the model is exported as <run name>_gmm (None: no export).
    seed: EM initialisation seed.
    limit: use only the first `limit` training examples (None: all).
  Returns:
    (the prior, the SavedModel path or None).
  """
  from rae_tf import evaluation  # pylint: disable=g-import-not-at-top
  from rae_tf import export  # pylint: disable=g-import-not-at-top
  if num_components < 1:
    raise ConfigError(f"--components={num_components} must be >= 1")
  model, config, _, source = evaluation.load_run(workdir)
  x_train, _ = source.arrays("train", limit=limit)
  codes = evaluation.batched(evaluation.KerasGenerator(model).encode, x_train, 500)
  prior = priors.fit_gmm_prior(codes, num_components, seed=seed)
  save_gmm(prior, os.path.join(workdir, GMM_FILE))
  path = None
  if export_dir:
    model.prior = prior
    path = export.export_saved_model(model, export_dir, f"{config.run_name}_gmm",
                                     source.spec.is_image)
  return prior, path
