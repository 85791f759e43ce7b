"""The names the flags choose from, without importing TensorFlow.

The registries (`rae_tf.models.zoo.MODELS`, `rae_tf.networks.ARCHITECTURES`,
`rae_tf.data.DATASETS`, `rae_tf.likelihoods.LIKELIHOODS`, `rae_tf.divergences.MMD_KERNELS`)
live in modules that import TensorFlow, which takes seconds. The scripts check flag values
against the lists below first, so a typo is answered at once; tests/test_cli.py checks that
the lists equal the registries. When a registry's module is already imported, its own
names are used instead, so entries registered at run time (library users) are accepted.
"""
import os
import sys
from typing import Iterable, Optional

from rae_tf.errors import ConfigError

MODELS = ("aae", "ae", "ae_gmm", "beta_vae", "factor_vae", "flexae", "flexae_flow",
          "info_vae", "injflow", "injflow_gmm", "maskaae", "rae_gp", "rae_gp_gmm",
          "rae_l2", "rae_l2_gmm", "rae_sn", "rae_sn_gmm", "two_stage_vae", "vae",
          "vae_bce", "vae_fixed_var", "vae_iaf", "vae_iop", "vae_learned_var", "vae_vamp",
          "wae_gan", "wae_mmd")
ARCHITECTURES = ("dcgan", "infogan", "mlp")
DATASETS = ("celeb_a", "cifar10", "fashion_mnist", "mnist", "mnist10k", "synthetic",
            "synthetic_image")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian_learned", "mse")
MMD_KERNELS = ("imq", "rbf")
PRIORS = ("density_ratio", "flow", "learned", "standard_normal", "vamp")

NPZ_PREFIX = "npz:"  # --dataset=npz:PATH (rae_tf.data.NPZ_PREFIX).

# (light list, module of the real registry, its attribute, registry kind, flag).
_KINDS = {
    "model": (MODELS, "rae_tf.models.zoo", "MODELS", "--model"),
    "architecture": (ARCHITECTURES, "rae_tf.networks", "ARCHITECTURES", "--arch"),
    "dataset": (DATASETS, "rae_tf.data", "DATASETS", "--dataset"),
    "likelihood": (LIKELIHOODS, "rae_tf.likelihoods", "LIKELIHOODS", "--likelihood"),
    "MMD kernel": (MMD_KERNELS, "rae_tf.divergences", "MMD_KERNELS", "--mmd_kernel"),
    "prior": (PRIORS, "rae_tf.priors", "PRIORS", "--prior"),
}


def names(kind: str) -> Iterable[str]:
  """The valid names of `kind` ("model", "architecture", "dataset", ...), sorted."""
  light, module, attr, _ = _KINDS[kind]
  registry = getattr(sys.modules.get(module), attr, None)  # Only if already imported.
  return tuple(registry.names()) if registry is not None else light


def check_name(kind: str, name: Optional[str]):
  """Raises the registry's own ConfigError when `name` is not a registered `kind`."""
  if name is None:
    return
  valid = names(kind)
  flag = _KINDS[kind][3]
  if kind == "dataset":
    if name.startswith(NPZ_PREFIX):
      return
    if name not in valid:
      raise ConfigError(f"unknown dataset {name!r} for --dataset; choose one of: "
                        f"{', '.join(valid)}, or npz:PATH for your own arrays")
  elif name not in valid:
    raise ConfigError(f"unknown {kind} {name!r} for {flag}; choose one of: "
                      f"{', '.join(valid)}")


def check_dataset_file(dataset: Optional[str]):
  """For --dataset=npz:PATH: the file must exist (its contents are checked when loaded).

  The message matches rae_tf.data's, which checks the same before reading the file.
  """
  if not dataset or not dataset.startswith(NPZ_PREFIX):
    return
  path = dataset[len(NPZ_PREFIX):]
  fix = "pass the path of an .npz with arrays x_train and x_test"
  if not path:
    raise ConfigError(f"--dataset={dataset}: no file given; {fix}, e.g. "
                      "--dataset=npz:/data/x.npz")
  path = os.path.expanduser(path)
  if not os.path.exists(path):
    raise ConfigError(f"--dataset={dataset}: file not found; {fix}")
  if not os.path.isfile(path):
    raise ConfigError(f"--dataset={dataset}: not a file; {fix}")
