r"""Issue 8, the seed's Figs. 2 and 5: WAE and MaskAAE over latent sizes m; generation FID
and active dimensions m_A against m.

  python scripts/latent_dim_sweep.py                       # CPU scale: synthetic n = 8
  python scripts/latent_dim_sweep.py --latent_dims=4,8,16,32 --true_latent_dim=8 \
      --out=runs/latent_dim/sweep_small
  python scripts/latent_dim_sweep.py --dataset=mnist10k --wae_model=wae_gan \
      --maskaae_flags="--mask_learning_rate=5e-3"
  python scripts/latent_dim_sweep.py --dataset=mnist --data_dir=DIR --arch=mlp \
      --width=1024 --depth=4 --batch_size=64 --epochs=500 --learning_rate=1e-4 \
      --features=inception --inception_weights=PATH   # paper scale (authors' MNIST nets)

For every m of --latent_dims trains --wae_model (default wae_mmd) and maskaae, each with
its registered defaults plus the shared net / data / epochs / seed flags (and
--wae_flags / --maskaae_flags for one model only), evaluates each against the test split
(raw-data FID for vectors, domain FID for labelled images) and writes OUT.json, OUT.md
(one row per (model, m): generation / reconstruction FID, m_A, NAC), OUT_fid.png
(generation FID against m) and OUT_active_dims.png (m_A against m with the identity line
and, for synthetic data, the true n), rewritten after every run.

Runs live in <work_root>/runs/<model>_m<m>_<hash of their settings>: the same command
resumes after a kill, and scripts/mask_behaviour.py and scripts/nac_table.py reuse runs
with equal settings. Bad input: one `error:` line, exit status 2, nothing written.
"""
from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import latent_dim_experiments as lde

cli.define_flags(lde.LatentDimSweepConfig, lde.FLAG_HELP)


def main(argv):
  lde.script_main(lde.LatentDimSweepConfig, lde.run_latent_dim_sweep, argv, flags.FLAGS)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
