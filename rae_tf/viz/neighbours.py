"""Exact k-nearest-neighbour search in pixel space, chunked for bounded memory."""
import numpy as np

from rae_tf.errors import ConfigError


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, k: int,
                       query_chunk: int = 256, reference_chunk: int = 4096) -> np.ndarray:
  """Indices of the k references nearest (Euclidean) to each query, nearest first.

  Works through [query_chunk, reference_chunk] blocks with
  |q - r|^2 = |q|^2 - 2 q.r + |r|^2 in float64, keeping a running top-k, so memory stays
  at a few blocks whatever N is (64 x 60,000 x 784 takes about a second). Ties are broken
  by the lower reference index, so results are deterministic.

  Args:
    queries: [Q, D] (or [Q, ...], flattened).
    references: [N, D] (or [N, ...], flattened).
    k: neighbours per query, 1 <= k <= N.
    query_chunk: queries per block.
    reference_chunk: references per block.

  Returns:
    int64 [Q, k] indices into `references`.
  """
  queries = np.asarray(queries).reshape(len(queries), -1)
  references = np.asarray(references).reshape(len(references), -1)
  n = len(references)
  if queries.shape[1] != references.shape[1]:
    raise ConfigError(f"nearest_neighbours: queries have {queries.shape[1]} values and "
                      f"references {references.shape[1]}; compare data of the same shape.")
  if not 1 <= int(k) <= n:
    raise ConfigError(f"nearest_neighbours: k={k} with {n} references; use 1 <= k <= {n}.")
  k = int(k)
  out = np.empty((len(queries), k), np.int64)
  for q0 in range(0, len(queries), query_chunk):
    q = queries[q0:q0 + query_chunk].astype(np.float64)
    q_sq = np.sum(q * q, axis=1, keepdims=True)
    best_d = np.full((len(q), 0), np.inf)
    best_i = np.zeros((len(q), 0), np.int64)
    for r0 in range(0, n, reference_chunk):
      r = references[r0:r0 + reference_chunk].astype(np.float64)
      d = q_sq - 2.0 * (q @ r.T) + np.sum(r * r, axis=1)[None, :]
      np.maximum(d, 0.0, out=d)  # Rounding can make exact copies slightly negative.
      idx = np.broadcast_to(np.arange(r0, r0 + len(r)), d.shape)
      best_d = np.concatenate([best_d, d], axis=1)
      best_i = np.concatenate([best_i, idx], axis=1)
      # Exact top-k with ties going to the lower index (lexsort: last key is primary).
      keep = np.lexsort((best_i, best_d), axis=1)[:, :k]
      best_d = np.take_along_axis(best_d, keep, axis=1)
      best_i = np.take_along_axis(best_i, keep, axis=1)
    out[q0:q0 + len(q)] = best_i
  return out
