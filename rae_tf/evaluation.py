"""evaluate(config): a trained run (or SavedModel) -> metrics.json, PNG figures, TensorBoard.

Metrics (`rae_tf.metrics`): generation FID (prior samples vs test images), reconstruction
FID (reconstructions vs test images), PRD F_8 / F_1/8 (Sajjadi et al.), improved precision /
recall (Kynkäänniemi et al., k = 3), NAC and active dimensions of the test codes.
Features: "inception" (InceptionV3 pool, weights from a local file), "domain" (a classifier
trained on the data set's labelled training split: *domain FID*, not comparable with
published Inception FIDs) or "raw" (the data themselves: vectors, or flattened pixels).
"""
import dataclasses
import json
import os
import time
from typing import Any, Dict

import numpy as np
import tensorflow as tf

from rae_tf import data as rae_data
from rae_tf import eval_config
from rae_tf import expost
from rae_tf import metrics
from rae_tf import runs
from rae_tf.errors import ConfigError
# EvalConfig lives in the light rae_tf.eval_config (no TensorFlow) for scripts/evaluate.py.
from rae_tf.eval_config import EvalConfig  # pylint: disable=unused-import
from rae_tf.eval_config import FEATURES  # pylint: disable=unused-import
from rae_tf.metrics import features as feats
# Reading runs and SavedModels lives in rae_tf.runs; re-exported for existing callers.
from rae_tf.runs import batched
from rae_tf.runs import Generator  # pylint: disable=unused-import
from rae_tf.runs import KerasGenerator
from rae_tf.runs import load_run
from rae_tf.runs import SavedModelGenerator


def _say(msg):
  print(f"[rae_tf] {msg}", flush=True)


def _features(config: EvalConfig, source, cache_dir: str):
  """Returns (extract_fn, label, info dict, the feature kind used)."""
  spec = source.spec
  if config.features is None:  # Domain features need labelled images; else the data.
    labelled = source.arrays("test", limit=1)[1] is not None
    config = dataclasses.replace(
        config, features="domain" if spec.is_image and labelled else "raw")
    _say(f"features: {config.features} (pass --features to choose)")
  if config.features == "raw":
    return (lambda x: x.reshape(len(x), -1)), "raw-data FID", {}, "raw"
  if not spec.is_image:
    raise ConfigError(f"--features={config.features} needs images; --dataset="
                      f"{spec.name} holds vectors: use --features=raw")
  if config.features == "inception":
    net = feats.InceptionFeatures(config.inception_weights)
    return (net.features, net.label, {"inception_weights": config.inception_weights},
            "inception")
  x_train, y_train = source.arrays("train")
  x_test, y_test = source.arrays("test")
  _say(f"domain classifier: loading from or training into {cache_dir}")
  net = feats.get_domain_features(cache_dir, x_train, y_train, x_test, y_test,
                                  epochs=config.domain_epochs)
  _say(f"domain classifier test accuracy {net.test_accuracy:.4f}, weights "
       f"{net.fingerprint}")
  return (net.features, net.label, {"domain_classifier_test_accuracy": net.test_accuracy,
                                    "domain_classifier_id": net.fingerprint}, "domain")


def evaluate(config: EvalConfig) -> Dict[str, Any]:
  """Computes the metrics and figures; returns the metrics dict (also in metrics.json).

  Raises:
    ConfigError: for bad input, before anything is written.
  """
  start = time.time()
  eval_config.check_inputs(config)
  if config.workdir:
    model, train_config, epochs, source = load_run(config.workdir)
    if config.prior != "trained":
      model.prior = expost.load_expost(config.workdir, config.prior)
    generator = KerasGenerator(model)
    if config.dataset or config.data_dir:  # Otherwise the run's own data, already loaded.
      source = rae_data.get_data_source(runs.data_config(train_config.replace(
          dataset=config.dataset or train_config.dataset,
          data_dir=config.data_dir or train_config.data_dir)))
    out_dir = config.out_dir or os.path.join(
        config.workdir, "eval" if config.prior == "trained" else f"eval_{config.prior}")
    run_name = train_config.model + ("" if config.prior == "trained" else f"+{config.prior}")
    step = epochs
  else:
    generator = SavedModelGenerator(config.export_dir)
    source = rae_data.get_data_source(
        rae_data.DataConfig(name=config.dataset, data_dir=config.data_dir))
    version = os.path.basename(os.path.normpath(config.export_dir))
    name = os.path.basename(os.path.dirname(os.path.normpath(config.export_dir)))
    out_dir = config.out_dir or os.path.join("eval", f"{name}-{version}")
    run_name, step = name, int(version) if version.isdigit() else 0
  spec = source.spec
  n, why = eval_config.resolve_num_samples(config, spec.num_test, spec.name)
  if why:
    _say(why)
  probe, _ = generator.sample(np.array([config.seed], np.int64))
  if tuple(probe.shape[1:]) != tuple(spec.shape):
    raise ConfigError(f"--dataset={spec.name} has examples of shape {tuple(spec.shape)} but "
                      f"the model generates {tuple(probe.shape[1:])}; evaluate on the data "
                      "it was trained on")
  x_test, y_test = source.arrays("test", limit=n)
  cache_dir = config.cache_dir or os.path.join(os.path.dirname(os.path.abspath(out_dir)),
                                               "feature_cache")
  extract, feature_label, feature_info, features = _features(config, source, cache_dir)

  _say(f"sampling {n} images, reconstructing and encoding {n} test images ...")
  t0 = time.time()
  seeds = np.arange(config.seed, config.seed + n, dtype=np.int64)
  generated, prior_codes = batched(generator.sample, seeds, config.batch_size)
  reconstructed = batched(generator.reconstruct, x_test, config.batch_size)
  codes = batched(generator.encode, x_test, config.batch_size)
  t_sample = time.time() - t0

  _say(f"features ({feature_label}) ...")
  t0 = time.time()
  f_real, f_gen, f_rec = (extract(a) for a in (x_test, generated, reconstructed))
  t_features = time.time() - t0

  fids = [metrics.fid_from_features(f_real, f_gen)]
  for k in range(1, config.draws):  # Further draws: the generation FID's sampling noise.
    _say(f"generation FID, draw {k + 1} of {config.draws} ...")
    t0 = time.time()
    more, _ = batched(generator.sample, seeds + k * n, config.batch_size)
    t_sample += time.time() - t0
    t0 = time.time()
    fids.append(metrics.fid_from_features(f_real, extract(more)))
    t_features += time.time() - t0

  _say("FID, PRD, improved precision/recall, latent statistics ...")
  t0 = time.time()
  prd = metrics.compute_prd(f_real, f_gen, num_runs=config.prd_runs, seed=config.seed)
  ipr = metrics.improved_precision_recall(f_real, f_gen)
  if generator.mask_values is not None:
    active = metrics.active_dims_from_mask(generator.mask_values)
    active_rule = "mask >= 0.1"
  else:
    active = metrics.active_dims_from_variance(codes)
    active_rule = "variance > 1e-2 * max variance"
  results = {
      "run": run_name, "step": step, "dataset": spec.name, "num_samples": n,
      "features": features, "fid_label": feature_label, **feature_info,
      "fid_generation": float(np.mean(fids)),
      "fid_generation_sd": float(np.std(fids, ddof=1)) if len(fids) > 1 else None,
      "fid_generation_draws": [float(f) for f in fids],
      "fid_reconstruction": metrics.fid_from_features(f_real, f_rec),
      "prd_f8_recall": prd.f_8, "prd_f1_8_precision": prd.f_1_8,
      "improved_precision": ipr.precision, "improved_recall": ipr.recall,
      "nac": metrics.nac(codes, active), "active_dims": int(np.sum(active)),
      "active_dims_rule": active_rule, "latent_dim": int(codes.shape[1]),
  }
  t_metrics = time.time() - t0

  os.makedirs(out_dir, exist_ok=True)
  images = {}
  if config.figures:
    images = _figures(out_dir, generator, spec, x_test, y_test, generated, reconstructed,
                      codes, source, prd, config)
  results["seconds"] = {"sampling": t_sample, "features": t_features, "metrics": t_metrics,
                        "total": time.time() - start}
  with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump(_jsonable(results), f, indent=2, sort_keys=True)
  if config.workdir:
    _to_tensorboard(os.path.join(config.workdir, "tensorboard", os.path.basename(out_dir)),
                    results, images, step)
  results["out_dir"] = out_dir
  return results


def _jsonable(d):
  return {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
          for k, v in d.items()}


def _figures(out_dir, generator, spec, x_test, y_test, generated, reconstructed, codes,
             source, prd, config) -> Dict[str, np.ndarray]:
  """Writes the PNG figures; returns {name: image} for TensorBoard."""
  from rae_tf import viz  # pylint: disable=g-import-not-at-top (matplotlib is slow to load)
  fig = lambda name: os.path.join(out_dir, name)
  images = {}
  metrics.plot_prd(prd, fig("prd_curve.png"))
  images["latent_covariance"] = viz.covariance_heatmap(
      metrics.latent_covariance(codes), fig("latent_covariance.png"),
      title="covariance of test codes", return_image=True)
  images["codes_embedding"] = viz.embedding_plot(
      codes, y_test, fig(f"codes_{config.embedding}.png"), method=config.embedding,
      return_image=True)
  if not spec.is_image:
    return images
  images["samples"] = viz.sample_grid(generated[:100], fig("samples.png"), columns=10)
  images["reconstructions"] = viz.reconstruction_pairs(x_test[:20], reconstructed[:20],
                                                       fig("reconstructions.png"), columns=10)
  pairs = np.stack([codes[0:16:2], codes[1:16:2]], axis=1)
  for mode in ("linear", "slerp"):
    images[f"interpolation_{mode}"] = viz.interpolation_grid(
        generator.decode, pairs, 10, mode, fig(f"interpolation_{mode}.png"))
  x_train, _ = source.arrays("train", limit=min(spec.num_train, 20000))
  if config.attribute is not None or source.has_attributes:
    images["attribute_manipulation"] = _attribute_figure(
        out_dir, generator, source, x_train, codes, config)
  images["nearest_train_neighbours"] = viz.neighbour_grid(
      generated[:8], x_train, 4, fig("nearest_neighbours.png"))
  return images


def _attribute_figure(out_dir, generator, source, x_train, test_codes, config):
  """Moves test codes along mean(code | attribute) - mean(code | not), from training codes.

  Rows: three test images without the attribute, then three with it; columns: alpha from
  -1.5 to 1.5 along the direction, the centre column (alpha = 0) the original.
  """
  from rae_tf import viz  # pylint: disable=g-import-not-at-top (matplotlib is slow to load)
  train_mask, name = source.attribute_mask("train", config.attribute, limit=len(x_train))
  train_codes = batched(generator.encode, x_train, config.batch_size)
  direction = viz.attribute_direction(train_codes, train_mask, True)
  test_mask, _ = source.attribute_mask("test", config.attribute, limit=len(test_codes))
  rows = np.concatenate([test_codes[~test_mask][:3], test_codes[test_mask][:3]])
  slug = "".join(c if c.isalnum() else "_" for c in name)
  return viz.attribute_manipulation(generator.decode, rows, direction,
                                    np.linspace(-1.5, 1.5, 7),
                                    os.path.join(out_dir, f"attribute_{slug}.png"))


def _to_tensorboard(logdir, results, images, step):
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default(step=step):
    for key, value in results.items():
      if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
        tf.summary.scalar(f"eval/{key}", float(value))
    for name, image in images.items():
      if image is not None:
        image = np.asarray(image, np.float32)
        if image.ndim == 2:
          image = image[..., None]
        tf.summary.image(f"eval/{name}", image[None, ..., :3] if image.shape[-1] >= 3
                         else image[None])
  writer.flush()


def format_table(results: Dict[str, Any]) -> str:
  """A short human-readable table of the headline numbers."""
  rows = [
      (f"{results['fid_label']} generation", f"{results['fid_generation']:.2f}"
       + (f" +- {results['fid_generation_sd']:.2f} (sd of "
          f"{len(results['fid_generation_draws'])} draws)"
          if results.get("fid_generation_sd") is not None else "")),
      (f"{results['fid_label']} reconstruction", f"{results['fid_reconstruction']:.2f}"),
      ("PRD F_8 (recall) / F_1/8 (precision)",
       f"{results['prd_f8_recall']:.3f} / {results['prd_f1_8_precision']:.3f}"),
      ("improved precision / recall (k=3)",
       f"{results['improved_precision']:.3f} / {results['improved_recall']:.3f}"),
      ("NAC", f"{results['nac']:.3f}"),
      ("active dims m_A / m", f"{results['active_dims']} / {results['latent_dim']}"),
      ("samples", str(results["num_samples"])),
      ("seconds", f"{results['seconds']['total']:.1f}"),
  ]
  width = max(len(r[0]) for r in rows)
  return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
