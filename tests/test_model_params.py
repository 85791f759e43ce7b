"""The model weights as one declared sub-config (rae_tf.model_params, TrainConfig.weights)."""
import dataclasses
import json
import subprocess
import sys

from absl import flags
import pytest

from rae_tf import cli
from rae_tf import model_params
from rae_tf.config import TrainConfig
from rae_tf.errors import ConfigError


def test_weights_are_a_validated_sorted_sub_config():
  config = TrainConfig.make(model="vae", beta=0.5, critic_steps=3.0)
  assert config.weights == (("beta", 0.5), ("critic_steps", 3))
  assert config.weight("beta") == 0.5 and config.weight("reg_weight") is None
  assert config.replace(beta=None).weights == (("critic_steps", 3),)
  assert config.replace(epochs=2, reg_weight=1.0).weight("reg_weight") == 1.0
  for bad, message in ((dict(beta=-1.0), "--beta=-1.0 must be >= 0"),
                       (dict(mmd_kernel="x"), "unknown --mmd_kernel='x'"),
                       (dict(critic_steps=1.5), "--critic_steps=1.5 must be a int"),
                       (dict(adversary_beta_1=1.0), "--adversary_beta_1=1.0 must be < 1"),
                       (dict(no_such_weight=1), "unknown config keys")):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
      TrainConfig.make(**bad)


def test_flat_dict_round_trip_and_legacy_config_json():
  config = TrainConfig.make(model="maskaae", mask_poly_delay=10, reg_weight=2.0)
  flat = config.to_dict()
  assert "weights" not in flat and flat["mask_poly_delay"] == 10 and "beta" not in flat
  assert TrainConfig.from_dict(json.loads(json.dumps(flat))) == config
  # A config.json written when the weights were top-level fields (unset = None, and the
  # mask knobs' old "automatic" values) reads back as the same configuration.
  legacy = {**flat, "beta": None, "mask_poly_period": 0, "mask_psi_max": 0.0,
            "mask_init_max": 5.0}
  assert TrainConfig.from_dict(legacy) == config


def test_changed_weights_refuse_resume_and_legacy_unset_does_not():
  from rae_tf import training  # pylint: disable=g-import-not-at-top
  config = TrainConfig.make(model="vae", beta=0.5)
  legacy = {**config.to_dict(), "reg_weight": None, "mask_init_max": 5.0}
  assert training._changed_fields(legacy, config.to_dict()) == ""
  assert "beta: 0.5 -> None" in training._changed_fields(
      config.to_dict(), config.replace(beta=None).to_dict())
  assert "beta: None -> 0.2" in training._changed_fields(
      config.replace(beta=None).to_dict(), config.replace(beta=0.2).to_dict())


def test_one_flag_per_param_with_its_help_and_unset_default():
  values = flags.FlagValues()
  help_text = {f.name: f.name for f in dataclasses.fields(TrainConfig)}
  cli.define_flags(TrainConfig, help_text, values)
  for name, param in model_params.PARAMS.items():
    assert values[name].help == param.help and values[name].default is None
  values(["prog", "--beta=0.25", "--model=vae", "--mask_poly_period=7"])
  config = cli.config_from_flags(TrainConfig, values)
  assert config.weights == (("beta", 0.25), ("mask_poly_period", 7))


def test_recipe_refuses_a_weight_it_does_not_read():
  from rae_tf.models import zoo  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="--beta is not a weight of --model=wae_mmd"):
    zoo.resolve_hparams(TrainConfig.make(model="wae_mmd", beta=1.0), is_image=False)
  hp = zoo.resolve_hparams(TrainConfig.make(model="wae_mmd", reg_weight=3.0), False)
  assert hp["reg_weight"] == 3.0 and hp["mmd_kernel"] == "imq"  # Flag, then recipe.
  assert hp["decoder_variance"] == 10.0 and hp["optimizer"] == "adam"  # Recipe, generic.


def test_train_script_refuses_foreign_weight_with_one_line(tmp_path):
  workdir = tmp_path / "run"
  proc = subprocess.run(
      [sys.executable, "scripts/train.py", "--model=wae_mmd", "--beta=1",
       "--dataset=synthetic", f"--workdir={workdir}", "--export_dir="],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --beta is not a weight of --model=wae_mmd")
  assert "Traceback" not in proc.stderr and not workdir.exists()
