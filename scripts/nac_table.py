r"""Issue 8, the seed's Table 2: NAC and active dimensions m_A of WAE and MaskAAE per m.

  python scripts/nac_table.py                              # CPU scale: m = 16 ... 256
  python scripts/nac_table.py --dataset=mnist10k --latent_dims=16,32,64 --out=runs/nac_mnist

For every m of --latent_dims trains --wae_model (default wae_mmd) and maskaae and writes
OUT.md (a table m x {NAC, m_A} per model, then one row per run) and OUT.json. NAC is the
mean absolute off-diagonal Pearson correlation of the encoded test codes over the active
dimensions (MaskAAE: mu >= 0.1; the WAE: code variance > 1e-2 x the largest); "–" when
fewer than two dimensions are active.

Runs live in <work_root>/runs/<model>_m<m>_<hash of their settings> (shared with the other
two latent-dimension scripts when the settings agree): the same command resumes after a
kill. Bad input: one `error:` line, exit status 2, nothing written.
"""
from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import latent_dim_experiments as lde

cli.define_flags(lde.NacTableConfig, lde.FLAG_HELP)


def main(argv):
  lde.script_main(lde.NacTableConfig, lde.run_nac_table, argv, flags.FLAGS)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
