"""Tests for rae_tf.networks: shapes, the dcgan layout, spectral norm, serialization, errors."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from rae_tf import networks
from rae_tf.errors import ConfigError
from rae_tf.networks import common
from rae_tf.networks import conv_ops

IMAGE_SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]
KERNEL_LAYERS = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)
W = 4  # small width keeps the file fast


def _kernel_layers(model):
  return [l for l in model.layers if isinstance(l, KERNEL_LAYERS)]


def _randomize(model, seed=0):
  """Sets every variable (BN statistics included) to non-trivial random values."""
  rng = np.random.default_rng(seed)
  weights = []
  for w in model.get_weights():
    if w.ndim == 1:  # biases, BN gamma/beta/moving stats: keep variances positive
      weights.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
    else:
      weights.append((rng.standard_normal(w.shape) * 0.2).astype(np.float32))
  model.set_weights(weights)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "infogan"])
@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_image_shapes(arch, shape):
  enc = networks.build_encoder(arch, shape, 10, width=W, depth=2)
  dec = networks.build_decoder(arch, 6, shape, width=W, depth=2)
  assert enc.output.shape == (None, 10) and enc.input.shape == (None,) + shape
  assert dec.output.shape == (None,) + shape and dec.input.shape == (None, 6)
  x = np.random.default_rng(0).uniform(size=(3,) + shape).astype(np.float32)
  assert enc(x, training=True).shape == (3, 10)
  y = dec(np.ones((3, 6), np.float32), training=False)
  assert y.shape == (3,) + shape and y.dtype == tf.float32
  assert np.all(np.isfinite(y))


def test_mlp_vectors_and_depth():
  enc = networks.build_encoder("mlp", (7,), 4, width=5, depth=3)
  dec = networks.build_decoder("mlp", 4, (7,), width=5, depth=3)
  assert enc(np.zeros((2, 7), np.float32)).shape == (2, 4)
  assert dec(np.zeros((2, 4), np.float32)).shape == (2, 7)
  dense = _kernel_layers(enc)
  assert [l.units for l in dense] == [5, 5, 5, 4]
  assert [l.activation.__name__ for l in dense] == ["relu"] * 3 + ["linear"]
  assert all(isinstance(l.kernel_initializer, keras.initializers.GlorotNormal)
             for l in dense + _kernel_layers(dec))


def test_dcgan_28_spatial_ladder():
  enc = networks.build_encoder("dcgan", (28, 28, 1), 8, width=W)
  convs = [l for l in enc.layers if isinstance(l, keras.layers.Conv2D)]
  assert [l.output.shape[1:] for l in convs] == [(14, 14, W), (7, 7, 2 * W), (3, 3, 4 * W),
                                                 (1, 1, 8 * W)]
  assert sum(isinstance(l, keras.layers.BatchNormalization) for l in enc.layers) == 4
  dec = networks.build_decoder("dcgan", 8, (28, 28, 1), width=W)
  sizes = [l.output.shape[1:] for l in dec.layers
           if isinstance(l, (keras.layers.Reshape, keras.layers.Conv2DTranspose,
                             keras.layers.Cropping2D))]
  assert sizes == [(4, 4, 8 * W), (7, 7, 4 * W), (15, 15, 2 * W), (14, 14, 2 * W),
                   (29, 29, 1), (28, 28, 1)]
  # Logits: the model ends in the crop of a linear transposed conv, no BN, no activation.
  last_conv = [l for l in dec.layers if isinstance(l, keras.layers.Conv2DTranspose)][-1]
  assert last_conv.activation.__name__ == "linear"
  assert isinstance(dec.layers[-1], keras.layers.Cropping2D)


@pytest.mark.parametrize("size,enc_sizes,dec_sizes", [
    (32, [16, 8, 4, 2], [4, 8, 16, 32]), (64, [32, 16, 8, 4], [4, 8, 16, 32, 64])])
def test_dcgan_larger_ladders(size, enc_sizes, dec_sizes):
  enc = networks.build_encoder("dcgan", (size, size, 3), 8, width=W)
  assert [l.output.shape[1] for l in enc.layers
          if isinstance(l, keras.layers.Conv2D)] == enc_sizes
  dec = networks.build_decoder("dcgan", 8, (size, size, 3), width=W)
  convs = [l for l in dec.layers if isinstance(l, keras.layers.Conv2DTranspose)]
  assert [4] + [l.output.shape[1] for l in convs] == dec_sizes
  channels = [l.filters for l in convs]
  assert channels == [4 * W, 2 * W, W, 3][-len(convs):] if size == 64 else [4 * W, 2 * W, 3]


def _reference_dcgan(size, channels, latent_dim, out_dim, width,
                     bn_class=keras.layers.BatchNormalization):
  """A literal Keras transcription of the PyTorch layout, plain Keras layers only."""
  # BatchNorm2d(momentum=0.1) is Keras' momentum=0.9.
  bn_relu = lambda h: keras.layers.ReLU()(bn_class(momentum=0.9)(h))
  x = keras.Input((size, size, channels))
  h = x
  for mult in (1, 2, 4, 8):  # Conv2d(k4, s2, padding=1)
    h = keras.layers.ZeroPadding2D(1)(h)
    h = bn_relu(keras.layers.Conv2D(width * mult, 4, strides=2, padding="valid")(h))
  enc = keras.Model(x, keras.layers.Dense(out_dim)(keras.layers.Flatten()(h)))
  z = keras.Input((latent_dim,))
  h = keras.layers.Dense(4 * 4 * 8 * width)(z)
  h = bn_relu(keras.layers.Reshape((4, 4, 8 * width))(h))
  if size == 28:  # ConvTranspose2d(k3, s2, padding=1[, output_padding=1])
    plan = [(4 * width, ((1, 1), (1, 1))), (2 * width, ((1, 0), (1, 0))),
            (channels, ((1, 0), (1, 0)))]
    kernel = 3
  else:  # ConvTranspose2d(k4, s2, padding=1)
    plan = [(m * width, 1) for m in ((4, 2) if size == 32 else (4, 2, 1))]
    plan.append((channels, 1))
    kernel = 4
  for i, (filters, crop) in enumerate(plan):
    h = keras.layers.Conv2DTranspose(filters, kernel, strides=2, padding="valid")(h)
    h = keras.layers.Cropping2D(crop)(h)
    if i < len(plan) - 1:
      h = bn_relu(h)
  return enc, keras.Model(z, h)


@pytest.mark.parametrize("conv_form", ["native", "filter_matmul", "whole_matmul"])
@pytest.mark.parametrize("size", [28, 32])
def test_dcgan_matches_literal_pytorch_layout(size, conv_form, monkeypatch):
  """The fast forms (fused BN, 'same', matmul conv, fewer crops, slice crops, and on every
  conv either TF's kernels, the matmul filter gradient, or the whole convolution as
  matmuls) compute the same maths, first and second order."""
  monkeypatch.setattr(conv_ops, "faster", lambda *args: conv_form == "filter_matmul")
  monkeypatch.setattr(conv_ops, "whole_matmul", lambda *args: conv_form == "whole_matmul")
  rng = np.random.default_rng(3)
  x = tf.constant(rng.uniform(size=(4, size, size, 2)).astype(np.float32))
  z = tf.constant(rng.standard_normal((4, 3)).astype(np.float32))

  def build_pair(bn_class):
    enc = networks.build_encoder("dcgan", (size, size, 2), 5, width=W)
    dec = networks.build_decoder("dcgan", 3, (size, size, 2), width=W)
    ref_enc, ref_dec = _reference_dcgan(size, 2, 3, 5, W, bn_class)
    for ours, ref, seed in ((enc, ref_enc, 1), (dec, ref_dec, 2)):
      _randomize(ref, seed)
      ours.set_weights(ref.get_weights())
    return (enc, dec), (ref_enc, ref_dec)

  def first_order(e, d):
    with tf.GradientTape() as tape:
      code, y = e(x, training=True), d(z, training=True)
      loss = tf.reduce_sum(tf.sin(code)) + tf.reduce_sum(tf.sin(y))
    grads = tape.gradient(loss, e.trainable_variables + d.trainable_variables)
    return [code, y] + grads + e.non_trainable_variables + d.non_trainable_variables + [
        e(x, training=False), d(z, training=False)]

  def second_order(e, d):  # RAE-GP differentiates the decoder's input gradient
    del e
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        inner.watch(z)
        sq = tf.reduce_sum(tf.square(tf.sigmoid(d(z, training=True))))
      gp = tf.reduce_sum(tf.square(inner.gradient(sq, z)))
    return [gp] + outer.gradient(gp, d.trainable_variables)

  # Keras' own BN is the reference for values and first-order gradients; its second-order
  # gradient is slightly off (tf.nn.moments stops the gradient through the mean inside the
  # variance), so the GP check keeps our exact BN (test_batch_norm_second_order) and tests
  # the rest of the layout.
  for bn_class, fn in ((keras.layers.BatchNormalization, first_order),
                       (common.BatchNormalization, second_order)):
    ours, ref = build_pair(bn_class)
    for a, b in zip(fn(*ours), fn(*ref)):
      a, b = np.asarray(a), np.asarray(b)
      np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * max(1.0, np.abs(b).max()))


def test_decoders_output_unbounded_logits():
  z = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32) * 5
  for arch in ("mlp", "dcgan", "infogan"):
    dec = networks.build_decoder(arch, 4, (28, 28, 1), width=W)
    _randomize(dec)
    y = np.asarray(dec(z, training=False))
    assert y.min() < 0.0 or y.max() > 1.0, arch  # no sigmoid squashing
    assert not isinstance(dec.layers[-1], (keras.layers.ReLU, keras.layers.Activation))


def test_infogan_layout():
  enc = networks.build_encoder("infogan", (28, 28, 1), 10, width=W)
  assert [(type(l).__name__, l.output.shape[1:]) for l in _kernel_layers(enc)] == [
      ("Conv2D", (14, 14, W)), ("Conv2D", (7, 7, 2 * W)), ("Dense", (16 * W,)),
      ("Dense", (10,))]
  dec = networks.build_decoder("infogan", 6, (32, 32, 3), width=W)
  assert [l.output.shape[1:] for l in _kernel_layers(dec)] == [
      (16 * W,), (2 * W * 8 * 8,), (16, 16, 2 * W), (32, 32, W), (32, 32, 3)]


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "infogan"])
def test_spectral_norm_wraps_every_kernel_layer(arch):
  shape = (28, 28, 1)
  for model in (networks.build_encoder(arch, shape, 4, width=W, depth=2, spectral_norm=True),
                networks.build_decoder(arch, 4, shape, width=W, depth=2, spectral_norm=True)):
    wrapped = [l for l in model.layers if isinstance(l, keras.layers.SpectralNormalization)]
    assert wrapped and not _kernel_layers(model)
    assert all(isinstance(l.layer, KERNEL_LAYERS) for l in wrapped)
  x = np.random.default_rng(0).uniform(size=(3,) + shape).astype(np.float32)
  enc = networks.build_encoder(arch, shape, 4, width=W, depth=2, spectral_norm=True)
  dec = networks.build_decoder(arch, 4, shape, width=W, depth=2, spectral_norm=True)
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(dec(enc(x, training=True), training=True) - x))
  grads = tape.gradient(loss, enc.trainable_variables + dec.trainable_variables)
  assert all(g is not None and np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "infogan"])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_config_round_trip(arch, spectral_norm):
  shape = (28, 28, 1)
  x = np.random.default_rng(0).uniform(size=(2,) + shape).astype(np.float32)
  for model in (networks.build_encoder(arch, shape, 4, width=W, depth=2,
                                       spectral_norm=spectral_norm),
                networks.build_decoder(arch, 4, shape, width=W, depth=2,
                                       spectral_norm=spectral_norm)):
    inp = x if model.name == "encoder" else x[:, :4, 0, 0]
    _randomize(model)
    for copy in (keras.Model.from_config(model.get_config()), keras.models.clone_model(model)):
      assert copy.output.shape == model.output.shape
      assert [type(l) for l in copy.layers] == [type(l) for l in model.layers]
      copy.set_weights(model.get_weights())
      np.testing.assert_allclose(copy(inp, training=False), model(inp, training=False),
                                 rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["dcgan", "infogan"])
def test_decoder_batch_norm_switch_round_trips(arch):
  """batch_norm=False (MaskAAE's decoder) drops every BatchNormalization layer and keeps
  the layout; config -> model gives the same outputs."""
  shape = (28, 28, 1)
  with_bn = networks.build_decoder(arch, 4, shape, width=W)
  without = networks.build_decoder(arch, 4, shape, width=W, batch_norm=False)
  is_bn = lambda l: isinstance(l, keras.layers.BatchNormalization)
  assert any(map(is_bn, with_bn.layers)) and not any(map(is_bn, without.layers))
  assert ([l.kernel.shape for l in _kernel_layers(without)]
          == [l.kernel.shape for l in _kernel_layers(with_bn)])
  _randomize(without)
  copy = keras.Model.from_config(without.get_config())
  copy.set_weights(without.get_weights())
  z = tf.random.stateless_normal([3, 4], seed=[0, 1])
  np.testing.assert_allclose(copy(z, training=True), without(z, training=True),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["dcgan", "infogan"])
def test_batch_norm_statistics_follow_a_drifting_scale_within_tens_of_steps(arch):
  """PyTorch's momentum (0.9 here): after 60 training-mode batches at a new input scale the
  served encoder computes what the trained one does (Keras' 0.99 still lags ~100s of steps)."""
  enc = networks.build_encoder(arch, (28, 28, 1), 4, width=W)
  bns = [l for l in enc.layers if isinstance(l, common.BatchNormalization)]
  assert bns and all(l.momentum == common.BN_MOMENTUM == 0.9 for l in bns)
  x = tf.random.stateless_uniform([50, 28, 28, 1], seed=[1, 2]) * 5.0
  for _ in range(60):
    trained = enc(x, training=True)
  served = enc(x, training=False)
  assert float(tf.reduce_max(tf.abs(served - trained))) < 0.1 * float(
      tf.reduce_max(tf.abs(trained)))


def test_keras_file_round_trip(tmp_path):
  dec = networks.build_decoder("dcgan", 4, (28, 28, 1), width=W, spectral_norm=True)
  enc = networks.build_encoder("dcgan", (28, 28, 1), 4, width=W)
  z = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
  x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
  for model, inp in ((dec, z), (enc, x)):
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(inp), model(inp), rtol=1e-5, atol=1e-5)


def test_critic():
  critic = networks.build_critic(6, width=8, depth=3)
  assert critic(np.zeros((5, 6), np.float32)).shape == (5, 1)
  dense = _kernel_layers(critic)
  assert [l.units for l in dense] == [8, 8, 8, 1]
  assert dense[-1].activation.__name__ == "linear"
  assert all(isinstance(l.kernel_initializer, keras.initializers.GlorotNormal) for l in dense)
  assert networks.build_critic(3).layers[1].units == 512


def test_batch_norm_matches_keras():
  """The fused BN layer: same outputs, gradients and moving statistics as Keras'."""
  rng = np.random.default_rng(0)
  for shape in ((6, 5, 5, 3), (7, 4), (1, 3)):
    x = tf.constant(rng.standard_normal(shape).astype(np.float32) * 2 + 1)
    ours, ref = common.BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(
        momentum=0.9)
    ours.build(shape)
    ref.build(shape)
    ref.set_weights([rng.uniform(0.5, 1.5, shape[-1:]).astype(np.float32) for _ in range(4)])
    ours.set_weights(ref.get_weights())
    results = []
    for layer in (ours, ref):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.sin(y))
      results.append([y] + tape.gradient(loss, [x] + layer.trainable_variables)
                     + layer.non_trainable_variables + [layer(x, training=False)])
    for a, b in zip(*results):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_batch_norm_fuses_16_bit_inputs_like_keras():
  """bfloat16 / float16 inputs take the fused kernel (float32 statistics) and match Keras'
  layer, which normalises them in float32 too."""
  rng = np.random.default_rng(2)
  x32 = rng.standard_normal((8, 3, 3, 4)).astype(np.float32) * 3 + 2
  for dtype, tol in (("bfloat16", 2e-2), ("float16", 2e-3)):
    x = tf.constant(x32, dtype)
    ours, ref = (cls(momentum=0.9, dtype="mixed_" + dtype) for cls in (
        common.BatchNormalization, keras.layers.BatchNormalization))
    for layer in (ours, ref):
      layer.build(x.shape)
    assert ours._can_fuse(x, None)  # pylint: disable=protected-access
    outs = [layer(x, training=True) for layer in (ours, ref)]
    assert outs[0].dtype == outs[1].dtype == dtype
    np.testing.assert_allclose(np.float32(outs[0]), np.float32(outs[1]), atol=tol * 4)
    for a, b in zip(ours.non_trainable_variables, ref.non_trainable_variables):
      assert a.dtype == "float32"
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(np.float32(ours(x, training=False)),
                               np.float32(ref(x, training=False)), atol=tol * 4)


def test_whole_matmul_rule():
  """The measured rule: few small-side positions and a large kernel (width 128's encoder
  8 -> 3 and decoder 4 -> 7), not width 32's kernels nor many positions."""
  assert conv_ops.whole_matmul([None, 3, 3, 512], [4, 4, 256, 512])
  assert conv_ops.whole_matmul([None, 4, 4, 1024], [3, 3, 512, 1024])
  assert not conv_ops.whole_matmul([None, 4, 4, 256], [3, 3, 128, 256])
  assert not conv_ops.whole_matmul([None, 7, 7, 512], [3, 3, 256, 512])
  assert conv_ops.whole_matmul([None, 2, 2, 1024], [4, 4, 512, 1024])  # 32x32 net's 4 -> 2


def test_patches_match_extract_patches():
  """conv_ops.patches (slices) holds what tf.image.extract_patches does, after TF's padding."""
  x = tf.constant(np.random.default_rng(5).standard_normal((2, 7, 7, 3)), tf.float32)
  ours = conv_ops.patches(x, (4, 4), (2, 2), "SAME")  # 7 -> 4 pads 1 before, 2 after
  ref = tf.image.extract_patches(tf.pad(x, [[0, 0], [1, 2], [1, 2], [0, 0]]), [1, 4, 4, 1],
                                 [1, 2, 2, 1], [1, 1, 1, 1], "VALID")
  np.testing.assert_array_equal(ours, tf.reshape(ref, [-1, 4 * 4 * 3]))


def test_cropping_matches_keras():
  """common.Cropping2D (one slice; a pad as gradient) equals Keras' and round-trips."""
  x = tf.constant(np.random.default_rng(6).standard_normal((2, 5, 6, 3)), tf.float32)
  ours, ref = common.Cropping2D(((1, 0), (2, 1))), keras.layers.Cropping2D(((1, 0), (2, 1)))
  for layer in (ours, ref):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x)
      loss = tf.reduce_sum(tf.sin(y))
    layer.result = (y, tape.gradient(loss, x))
  for a, b in zip(ours.result, ref.result):
    np.testing.assert_array_equal(a, b)
  assert ours.result[0].shape == (2, 4, 3, 3)
  again = common.Cropping2D.from_config(ours.get_config())
  assert again.get_config() == ours.get_config()
  np.testing.assert_array_equal(again(x), ours.result[0])


def test_matmul_filter_gradient_rule():
  """The measured rule: float32 with a large kernel on <= 7x7 positions; 16 bits with few
  positions, or a medium kernel on <= 8x8 positions."""
  assert conv_ops.faster([None, 4, 4, 1024], [3, 3, 512, 1024], "float32")
  assert conv_ops.faster([None, 7, 7, 512], [3, 3, 256, 512], "float32")
  assert conv_ops.faster([None, 3, 3, 128], [4, 4, 64, 128], "bfloat16")
  assert conv_ops.faster([None, 7, 7, 256], [4, 4, 128, 256], "bfloat16")
  assert conv_ops.faster([None, 8, 8, 512], [4, 4, 256, 512], "bfloat16")
  assert not conv_ops.faster([None, 4, 4, 256], [3, 3, 128, 256], "float32")
  assert not conv_ops.faster([None, 7, 7, 256], [4, 4, 128, 256], "float32")
  assert not conv_ops.faster([None, 8, 8, 512], [4, 4, 256, 512], "float32")
  assert not conv_ops.faster([None, 7, 7, 128], [3, 3, 64, 128], "bfloat16")
  assert not conv_ops.faster([None, 16, 16, 256], [4, 4, 128, 256], "bfloat16")


@pytest.mark.parametrize("whole", [False, True])
@pytest.mark.parametrize("transpose,padding,big,small,k,stride", [
    (False, "SAME", 8, 4, 4, 2), (False, "VALID", 8, 3, 4, 2), (False, "SAME", 7, 4, 4, 2),
    (False, "SAME", 9, 3, 3, 3), (True, "SAME", 7, 4, 3, 2), (True, "VALID", 15, 7, 3, 2),
    (True, "SAME", 8, 4, 3, 2), (True, "SAME", 8, 4, 4, 2), (True, "VALID", 9, 3, 3, 3),
    (True, "VALID", 5, 3, 1, 2)])  # stride > kernel: output phases no tap reaches
def test_conv_ops_match_tensorflow(transpose, padding, big, small, k, stride, whole,
                                   monkeypatch):
  """conv_ops' forms (the matmul filter gradient; the whole convolution as matmuls) equal
  TF's conv and its autodiff: values, input and filter gradients, and second order through
  both gradients, on every padding case dcgan / infogan use and a stride-3 one."""
  monkeypatch.setattr(conv_ops, "faster", lambda *args: True)
  monkeypatch.setattr(conv_ops, "whole_matmul", lambda *args: whole)
  patch_calls = []
  real_patches = conv_ops.patches
  monkeypatch.setattr(conv_ops, "patches",
                      lambda *args: patch_calls.append(1) or real_patches(*args))
  rng = np.random.default_rng(4)
  strides = (stride, stride)
  if transpose:
    x = tf.constant(rng.standard_normal((2, small, small, 5)), tf.float32)
    kernel = tf.Variable(rng.standard_normal((k, k, 3, 5)).astype(np.float32))
    shape = [2, big, big, 3]
    ours = lambda x, w: conv_ops.conv2d_transpose(x, w, shape, strides, padding)
    ref = lambda x, w: tf.nn.conv2d_transpose(x, w, shape, strides, padding)
  else:
    x = tf.constant(rng.standard_normal((2, big, big, 3)), tf.float32)
    kernel = tf.Variable(rng.standard_normal((k, k, 3, 5)).astype(np.float32))
    ours = lambda x, w: conv_ops.conv2d(x, w, strides, padding)
    ref = lambda x, w: tf.nn.conv2d(x, w, strides, padding)
  weights = tf.constant(rng.standard_normal(ref(x, kernel).shape), tf.float32)

  def grads(fn):
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        inner.watch(x)
        y = fn(x, kernel)
        loss = tf.reduce_sum(tf.sin(y) * weights)
      dx, dk = inner.gradient(loss, [x, kernel])
      penalty = tf.reduce_sum(tf.square(dx)) + tf.reduce_sum(tf.square(dk))
    return [y, dx, dk, outer.gradient(penalty, kernel)]

  for a, b in zip(grads(ours), grads(ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
  assert patch_calls  # a matmul form ran, not TF's convolution


def test_batch_norm_second_order():
  """Double backprop through the fused BN equals an exact float64 batch norm's."""
  rng = np.random.default_rng(1)
  z0 = rng.standard_normal((4, 3))
  a0 = rng.standard_normal((3, 2 * 2 * 5)) * 0.5
  w0 = rng.standard_normal((4, 2, 2, 5))
  gamma, beta = rng.uniform(0.5, 1.5, 5), rng.uniform(-0.5, 0.5, 5)

  def exact_bn(h):
    mean = tf.reduce_mean(h, [0, 1, 2])
    var = tf.reduce_mean(tf.square(h - mean), [0, 1, 2])
    return (h - mean) / tf.sqrt(var + 1e-3) * gamma + beta

  def penalty_grads(bn, dtype):
    z, a = tf.constant(z0, dtype), tf.Variable(a0.astype(dtype))
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        inner.watch(z)
        y = bn(tf.reshape(tf.matmul(z, a), [4, 2, 2, 5]))
        s = tf.reduce_sum(tf.sin(y) * w0.astype(dtype))
      gp = tf.reduce_sum(tf.square(inner.gradient(s, z)))
    return outer.gradient(gp, a)

  layer = common.BatchNormalization()
  layer.build((4, 2, 2, 5))
  layer.set_weights([gamma.astype(np.float32), beta.astype(np.float32),
                     np.zeros(5, np.float32), np.ones(5, np.float32)])
  ours = penalty_grads(lambda h: layer(h, training=True), "float32")
  exact = penalty_grads(exact_bn, "float64")
  np.testing.assert_allclose(ours, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())


def test_xla_compiles():
  enc = networks.build_encoder("dcgan", (28, 28, 1), 4, width=2)
  dec = networks.build_decoder("dcgan", 4, (28, 28, 1), width=2)
  x = tf.constant(np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32))

  @tf.function(jit_compile=True)
  def step(x):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(dec(enc(x, training=True), training=True) - x))
    return tape.gradient(loss, enc.trainable_variables + dec.trainable_variables)

  assert all(np.all(np.isfinite(g)) for g in step(x))


@pytest.mark.parametrize("call,needles", [
    (lambda: networks.build_encoder("dcgan", (30, 30, 1), 4, width=W),
     ["--arch=dcgan", "30x30", "28x28, 32x32, 64x64", "--arch=mlp"]),
    (lambda: networks.build_decoder("dcgan", 4, (28, 32, 1), width=W),
     ["--arch=dcgan", "28x32", "--arch=mlp"]),
    (lambda: networks.build_encoder("dcgan", (784,), 4, width=W),
     ["--arch=dcgan", "images", "--arch=mlp"]),
    (lambda: networks.build_decoder("infogan", 4, (10,), width=W),
     ["--arch=infogan", "--arch=mlp"]),
    (lambda: networks.build_encoder("infogan", (30, 30, 3), 4, width=W),
     ["--arch=infogan", "divisible by 4", "--arch=mlp"]),
    (lambda: networks.build_encoder("mlp", (5,), 4, width=0), ["--width=0", ">= 1"]),
    (lambda: networks.build_decoder("dcgan", 4, (28, 28, 1), width=-3), ["--width=-3"]),
    (lambda: networks.build_encoder("mlp", (5,), 4, width=4, depth=0), ["--depth=0"]),
    (lambda: networks.build_critic(4, width=0), ["--critic_width=0"]),
    (lambda: networks.build_critic(4, depth=0), ["--critic_depth=0"]),
    (lambda: networks.build_decoder("mlp", 0, (5,), width=4), ["--latent_dim"]),
    (lambda: networks.build_encoder("resnet", (5,), 4, width=4),
     ["--arch", "'resnet'", "dcgan, infogan, mlp"]),
])
def test_config_errors(call, needles):
  with pytest.raises(ConfigError) as info:
    call()
  message = str(info.value)
  assert "\n" not in message
  for needle in needles:
    assert needle in message


def test_registry():
  assert list(networks.ARCHITECTURES.names()) == ["dcgan", "infogan", "mlp"]
  assert networks.ARCHITECTURES.kind == "architecture" and networks.ARCHITECTURES.flag == "--arch"


@pytest.mark.parametrize("static_rows", [True, False])
@pytest.mark.parametrize("rows", [3, 7])
def test_matmul_few_rows_matches_matmul(rows, static_rows, monkeypatch):
  """conv_ops.matmul_few_rows equals tf.matmul and its autodiff (values, both gradients,
  second order), in the few-rows order (rows <= FEW_ROWS, a Transpose in the gradient) and
  the usual one, with the row count static or known only when the step runs."""
  monkeypatch.setattr(conv_ops, "FEW_ROWS", 4)
  monkeypatch.setattr(conv_ops, "FEW_ROWS_MIN_WEIGHTS", 10)
  rng = np.random.default_rng(8)
  x = tf.constant(rng.standard_normal((rows, 6)), tf.float32)
  kernel = tf.Variable(rng.standard_normal((6, 5)).astype(np.float32))
  weights = tf.constant(rng.standard_normal((rows, 5)), tf.float32)

  def grads(matmul):
    signature = [tf.TensorSpec([rows if static_rows else None, 6], tf.float32)]

    @tf.function(input_signature=signature)
    def run(x):
      with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
          inner.watch(x)
          loss = tf.reduce_sum(tf.sin(matmul(x, kernel)) * weights)
        dx, dk = inner.gradient(loss, [x, kernel])
        penalty = tf.reduce_sum(tf.square(dx)) + tf.reduce_sum(tf.square(dk))
      return [loss, dx, dk, outer.gradient(penalty, kernel)]
    ops = {op.type for op in run.get_concrete_function().graph.get_operations()}
    return run(x), ops

  ours, ops = grads(conv_ops.matmul_few_rows)
  ref, ref_ops = grads(tf.matmul)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
  assert "Transpose" not in ref_ops
  if static_rows:
    assert ("Transpose" in ops) == (rows <= 4)
  else:
    assert {"If", "StatelessIf"} & ops  # the order is chosen when the step runs


def test_whole_input_conv_uses_matmul_few_rows(monkeypatch):
  """The last 28x28 dcgan encoder conv (kernel = its padded 4x4 input) goes through
  matmul_few_rows and equals TF's convolution, gradients included."""
  calls = []
  real = conv_ops.matmul_few_rows
  monkeypatch.setattr(conv_ops, "matmul_few_rows", lambda *a: calls.append(1) or real(*a))
  layer = common.Conv2D(6, 4, strides=2, padding="valid")
  x = tf.constant(np.random.default_rng(9).standard_normal((3, 4, 4, 5)), tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x)
    loss = tf.reduce_sum(tf.sin(y))
  dx, dk = tape.gradient(loss, [x, layer.kernel])
  with tf.GradientTape() as tape:
    tape.watch(x)
    ref = tf.nn.conv2d(x, layer.kernel, 2, "VALID") + layer.bias
    ref_loss = tf.reduce_sum(tf.sin(ref))
  ref_dx, ref_dk = tape.gradient(ref_loss, [x, layer.kernel])
  assert calls and y.shape == (3, 1, 1, 6)
  for a, b in ((y, ref), (dx, ref_dx), (dk, ref_dk)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
