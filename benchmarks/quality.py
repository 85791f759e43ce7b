r"""Issue 10's quality table: every registered model on the real data here, ranked.

  python benchmarks/quality.py                                    # 10 epochs, both files
  python benchmarks/quality.py --jobs=2                           # two runs at once
  python benchmarks/quality.py --models=flexae,rae_l2_gmm,wae_gan --expost=gmm
  python benchmarks/quality.py --model_flags='flexae:"--critic_width=256 --prior_width=256"'
  python benchmarks/quality.py --epochs=1 --steps_per_epoch=20 --num_samples=200 \
      --npz_files=../shared/data/mnist10k.npz --work_root=/tmp/q --out=/tmp/q/RESULTS  # smoke
  python benchmarks/quality.py --merge=A.json,B.json --out=benchmarks/RESULTS  # join
  python benchmarks/quality.py --merge=A.json,B.json --drop_rows=fashion_mnist:vae --out=R
  python benchmarks/quality.py --scale=paper --inception_weights=PATH  # GPU: width 128,
                                                                       # 100 epochs, Inception

Trains every model of `rae_tf.models.zoo.MODELS` registered at run time (or --models) on
each file of --npz_files (default ../shared/data/fashion_mnist.npz and mnist10k.npz; an
absent file is skipped with a message) with one shared setting: dcgan width 32, m = 16,
batch 100, 10 epochs, seed 0 (--width, --latent_dim, --batch_size, --epochs, --seed), each
model with its own recipe (objective weights, rates, priors) plus --model_flags for that
model only ('MODEL:FLAGS;MODEL:FLAGS', scripts/train.py flags, not the shared ones).

Rows: each model with its own prior, and its ex-post samplers as rows of their own
("<model>+gmm"). --expost=recipe (default): the ex-post prior a recipe sets
(ModelRecipe.expost: ae_gmm, rae_l2_gmm, injflow_gmm, ...), since the registry already
pairs the deterministic auto-encoders the papers report with a GMM as models of their own,
a blanket GMM row would repeat them; --expost=gmm: also a GMM-10 row for every other model
(for Gaussian encoders the GMM is fitted to the codes the encoder returns); --expost=none:
own priors only.

Evaluation (domain features: a classifier of each data set, so the FIDs are *domain
FIDs*; min(10000, test split) samples, or --num_samples): generation and reconstruction
FID, improved precision / recall (k = 3), PRD F_8 / F_1/8, active dimensions m_A and NAC,
and the training time (summed over resumes). Writes --out.md and --out.json (default
benchmarks/RESULTS.{md,json}) with the command and the date, rewritten after every run:
per data set a table ranked by generation FID and sentences saying which rows beat which
and where FlexAE and MaskAAE lose, computed from the numbers.

Every run has its own workdir, <work_root>/runs/<data>/<model>_<hash of its settings>
(--epochs is not in the hash: raising it resumes), and its evaluations are cached there:
a killed benchmark resumes where it stopped, and a model added to the registry trains only
that model. --jobs=N trains N runs at once, each in its own process (cores / N threads,
output in <run dir>/benchmark.log). Disjoint --models lists can run on separate machines with
their own --out; --merge joins their .json reports into one ranked table (the settings
must agree; each row names its source report). --scale=paper switches the defaults to
width 128, 100 epochs and Inception FID (needs --inception_weights): for GPU machines, not
run here. At the small scale the whole table takes hours on the 2-core CPU (FlexAE's
authors' critic ~1.4 s/step, MaskAAE 0.3-0.6 s/step). Bad input: one `error:` line, exit status 2, nothing written; a diverged
model is a row saying so (the others still run).
"""
import os
import shlex
import sys

from absl import app
from absl import flags

from rae_tf import cli
from rae_tf import quality

HELP = {
    "models": "Comma-separated registered models (default: every registered model).",
    "npz_files": "Comma-separated .npz files (x_train, x_test, y_train, y_test); an absent "
                 "file is skipped with a message.",
    "scale": "small (dcgan width 32, 10 epochs, domain FID) or paper (width 128, 100 "
             "epochs, Inception FID: GPU machines).",
    "width": "dcgan width of every run (default: the scale's, 32 or 128).",
    "epochs": "Epochs of every run (default: the scale's, 10 or 100).",
    "steps_per_epoch": "Steps per epoch (default: one pass over the training split).",
    "latent_dim": "Latent size m of every run.",
    "batch_size": "Batch size of every run.",
    "seed": "Seed of every run.",
    "model_flags": "Extra scripts/train.py flags per model, 'MODEL:FLAGS;MODEL:FLAGS', e.g. "
                   "flexae:\"--critic_width=256\" (not the shared data/net/epochs/seed). "
                   "Entries for registered models not trained here are unused (said so), "
                   "so benchmarks/model_flags_small.txt serves any --models.",
    "expost": "Ex-post sampler rows: recipe (the recipes' own, e.g. rae_l2_gmm), gmm (also "
              "a GMM row for every other model) or none.",
    "gmm_components": "Components of the ex-post GMMs.",
    "num_samples": "Samples per metric (default: min(10000, the test split)).",
    "features": "FID features: domain or inception (default: the scale's).",
    "inception_weights": "Keras InceptionV3 notop weights file (paper scale).",
    "prd_runs": "PRD k-means runs averaged.",
    "draws": "Independent sample draws averaged in each generation FID (the table gives "
             "mean +- sd; each draw costs one more sampling and feature pass). One draw "
             "of 10,000 Fashion-MNIST samples moves the domain FID by about 0.1.",
    "work_root": "Runs (<work_root>/runs/<data>/<model>_<hash>, resumable) and, unless "
                 "--domain_cache, the domain classifier cache.",
    "domain_cache": "Folder of the domain classifiers (default <work_root>/feature_cache); "
                    "benchmarks/domain_classifiers holds the ones behind "
                    "benchmarks/RESULTS_2026-11-29.md, so new rows compare with it.",
    "out": "Report path without extension: writes OUT.md and OUT.json.",
    "jobs": "Runs trained at once, each in its own process with cores/jobs threads and its "
            "output in <run dir>/benchmark.log. 1: one after another in this process. On a "
            "2-core CPU 2 gained only 1.05x (benchmarks/README.md); more cores, more gain.",
    "merge": "Comma-separated report .json files (earlier --out's) to join into one report "
             "at --out instead of training: same settings required; later files win on "
             "a row two share; each row names its source.",
    "drop_rows": "With --merge: comma-separated DATA:ROW rows left out of the merged table "
                 "(e.g. fashion_mnist:vae_vamp, measured by code since fixed); the report "
                 "lists them.",
}
cli.define_flags(quality.QualityConfig, HELP)


def main(argv):
  def bench():
    config = cli.config_from_flags(quality.QualityConfig, flags.FLAGS)  # No TF yet.
    command = " ".join(shlex.quote(a) for a in ["python"] + sys.argv)
    if config.merge:
      quality.run_merge(config, command=command)  # Reads reports; trains nothing.
      return
    if not any(os.path.isfile(p) for p in config.npz_paths()):
      quality.split_npz_files(config, print)  # Says what is skipped.
      return  # Nothing measured, nothing written.
    cli.import_quietly("rae_tf.training")
    quality.run_quality(config, command=command)

  cli.run_or_exit(bench, argv, interrupted="interrupted; run the same command again to "
                  "resume (finished runs and evaluations are reused)")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.make_flags_parser())
