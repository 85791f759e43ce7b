"""Stateless random draws that are identical with and without tf.distribute.

Every replica draws the noise of the *global* batch from the same stateless seed and keeps
its own slice. A MirroredStrategy run therefore sees exactly the noise a single-device run
sees, which is what makes the two bit-for-bit comparable (and keeps replicas from sharing
prior samples, a trap of `keras.random` under distribution).
"""
import tensorflow as tf


def step_seed(base_seed, salt, step):
  """A [2] int64 stateless seed from a run seed, a per-draw salt and the step counter."""
  return tf.stack([tf.cast(base_seed, tf.int64) * 1_000_003 + salt, tf.cast(step, tf.int64)])


def _replica_slice(draw, local_batch, shape, seed, dtype):
  ctx = tf.distribute.get_replica_context()
  replicas = ctx.num_replicas_in_sync if ctx is not None else 1
  if replicas == 1:
    return draw([local_batch, *shape], seed=seed, dtype=dtype)
  full = draw([replicas * local_batch, *shape], seed=seed, dtype=dtype)
  full = tf.reshape(full, [replicas, local_batch, *shape])
  return tf.gather(full, ctx.replica_id_in_sync_group)


def normal(local_batch, shape, seed, dtype=tf.float32):
  """Standard normal noise [local_batch, *shape], this replica's slice of the global draw."""
  return _replica_slice(tf.random.stateless_normal, local_batch, tuple(shape), seed, dtype)


def uniform(local_batch, shape, seed, dtype=tf.float32):
  """U(0, 1) noise [local_batch, *shape], this replica's slice of the global draw."""
  return _replica_slice(tf.random.stateless_uniform, local_batch, tuple(shape), seed, dtype)


def _from_seeds(draw, seeds, dim, dtype):
  seeds = tf.cast(seeds, tf.int64)
  return tf.map_fn(lambda s: draw([dim], seed=tf.stack([s, tf.zeros_like(s)]), dtype=dtype),
                   seeds, fn_output_signature=dtype)


def normal_from_seeds(seeds, dim, dtype=tf.float32):
  """One N(0, I_dim) vector per int64 seed: the same seed always gives the same vector."""
  return _from_seeds(tf.random.stateless_normal, seeds, dim, dtype)


def uniform_from_seeds(seeds, dim, dtype=tf.float32):
  """One U(0, 1)^dim vector per int64 seed: the same seed always gives the same vector."""
  return _from_seeds(tf.random.stateless_uniform, seeds, dim, dtype)
