"""The fit-step timer shared by benchmarks/throughput.py and benchmarks/mixed_precision.py."""
import time


def time_fit_steps(config, steps: int, warmup: int):
  """(seconds of `steps` fit steps after `warmup` untimed ones, every step's loss).

  Builds the run's compiled model (`runs.build_compiled_model`, the path of
  scripts/train.py) and fits it on the training stream with no other callback.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rae_tf import data as rae_data  # pylint: disable=g-import-not-at-top
  from rae_tf import runs  # pylint: disable=g-import-not-at-top

  source = rae_data.get_data_source(runs.data_config(config))
  model, _ = runs.build_compiled_model(config, source.spec, tf.distribute.get_strategy())
  ds = source.training_stream(config.batch_size, seed=0)

  class Timer(keras.callbacks.Callback):
    def __init__(self):
      super().__init__()
      self.losses, self.start, self.end = [], None, None

    def on_train_batch_end(self, batch, logs=None):
      self.losses.append(float(logs["loss"]))
      if batch + 1 == warmup:
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):
      self.end = time.perf_counter()

  timer = Timer()
  model.fit(ds, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
  return timer.end - timer.start, timer.losses
