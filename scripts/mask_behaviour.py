r"""Issue 8, the seed's Figs. 6 and 7: MaskAAE's mask over training for several m, and the
latent covariance of WAE and MaskAAE codes.

  python scripts/mask_behaviour.py                         # CPU scale: m = 16, 32, 64
  python scripts/mask_behaviour.py --latent_dims=8,32 --epochs=30 \
      --maskaae_flags="--mask_learning_rate=5e-3"

For every m of --latent_dims trains --wae_model (default wae_mmd) and maskaae (the
MaskAAE run records its mask mu at every epoch end in <run>/mask_history.json), then
writes OUT_mask_m<m>.png (mu over training: epochs on x, latent dimensions on y),
OUT_cov_<model>_m<m>.png (covariance heat map of --covariance_samples encoded test
examples; MaskAAE's codes are the masked mu * z_e), OUT.json (also the mask histories and
covariance matrices) and OUT.md.

Runs live in <work_root>/runs/<model>_m<m>_<hash of their settings> (shared with
scripts/latent_dim_sweep.py and scripts/nac_table.py when the settings agree): the same
command resumes after a kill. Bad input: one `error:` line, exit status 2, nothing written.
"""
from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import latent_dim_experiments as lde

cli.define_flags(lde.MaskBehaviourConfig, lde.FLAG_HELP)


def main(argv):
  lde.script_main(lde.MaskBehaviourConfig, lde.run_mask_behaviour, argv, flags.FLAGS)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
