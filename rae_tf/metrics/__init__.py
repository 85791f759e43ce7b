"""Evaluation metrics on numpy arrays of features, codes and images.

  fid          Fréchet distance, Gaussian statistics, FID from features.
  prd          precision/recall for distributions (Sajjadi et al. 2018) and its plot.
  improved_pr  k-NN improved precision/recall (Kynkäänniemi et al. 2019).
  latent       NAC, active dimensions, latent covariance.
  features     feature networks (InceptionV3, domain classifier); imports TensorFlow,
               so it is not imported here: `from rae_tf.metrics import features`.
"""
from rae_tf.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from rae_tf.metrics.improved_pr import ImprovedPRResult, improved_precision_recall
from rae_tf.metrics.latent import (active_dims_from_mask, active_dims_from_variance,
                                   latent_covariance, nac)
from rae_tf.metrics.prd import PRDResult, compute_prd, plot_prd
