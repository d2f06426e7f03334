import keras
import numpy as np
import pytest
import tensorflow as tf

from kgan import augment


def images(n=4, size=16, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")


@pytest.mark.parametrize("policy", ["translation", "cutout", "color"])
def test_each_policy_keeps_shapes_changes_images_and_passes_gradients(policy):
    x = tf.constant(images())
    u = tf.constant(np.random.default_rng(1).uniform(size=(4, augment.PARAMS[policy])), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = augment.apply(x, (policy,), u)
        total = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, (1, 2)))
    grads = tape.gradient(total, x).numpy()
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.allclose(y.numpy(), x.numpy())
    assert np.isfinite(grads).all() and np.abs(grads).sum() > 0


def test_translation_shifts_pixels_and_fills_zeros():
    x = images(n=2, size=8, channels=1)
    # u -> shift floor(u * 3) - 1 in {-1, 0, 1} for 8 pixels (limit 1): (+1 rows, -1 columns)
    u = np.array([[0.9, 0.1], [0.5, 0.5]], np.float32)
    y = keras.ops.convert_to_numpy(augment.translation(x, u))
    np.testing.assert_array_equal(y[0, 1:, :-1], x[0, :-1, 1:])
    assert (y[0, 0] == 0).all() and (y[0, :, -1] == 0).all()
    np.testing.assert_array_equal(y[1], x[1])  # shift 0


def test_cutout_zeroes_one_square_of_half_the_side():
    x = np.ones((3, 8, 8, 2), np.float32)
    u = np.array([[0.5, 0.5], [0.0, 0.0], [0.99, 0.2]], np.float32)
    y = keras.ops.convert_to_numpy(augment.cutout(x, u))
    centred = y[0, ..., 0]
    assert (centred[2:6, 2:6] == 0).all() and centred.sum() == 64 - 16
    for image in y[1:]:  # near an edge: part of the square, still one rectangle of zeros
        rows, cols = np.nonzero(image[..., 0] == 0)
        assert 0 < len(rows) <= 16
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def test_color_of_gray_images_keeps_them_gray_and_mean_shifts_by_brightness():
    x = images(n=2, channels=3)
    u = np.array([[1.0, 0.5, 0.5], [0.5, 0.0, 0.5]], np.float32)  # +0.5, 1x sat, 1x contrast
    y = keras.ops.convert_to_numpy(augment.color(x, u))
    np.testing.assert_allclose(y[0], x[0] + 0.5, atol=1e-5)
    np.testing.assert_allclose(y[1], np.repeat(x[1].mean(-1, keepdims=True), 3, -1),
                               atol=1e-5)  # saturation 0: gray


AUGMENT_ON = r"""
import numpy as np, keras
from kgan import augment
x = keras.Variable(np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32"))
u = np.random.default_rng(1).uniform(size=(4, 7)).astype("float32")
policies = ("translation", "cutout", "color")
if keras.backend.backend() == "jax":
    import jax
    y = augment.apply(x.value, policies, u)
    grads = jax.grad(lambda v: (augment.apply(v, policies, u) ** 2).sum())(x.value)
else:
    import torch
    v = x.value.detach().requires_grad_(True)
    y = augment.apply(v, policies, u)
    (y ** 2).sum().backward()
    grads = v.grad
np.save(__import__("sys").argv[1], np.stack([keras.ops.convert_to_numpy(y),
                                            keras.ops.convert_to_numpy(grads)]))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_augmentations_match_tensorflow_on_the_other_backends(backend, tmp_path, on_backend):
    on_backend(backend, AUGMENT_ON, tmp_path / "out.npy")
    y, grads = np.load(tmp_path / "out.npy")
    x = tf.Variable(np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32"))
    u = np.random.default_rng(1).uniform(size=(4, 7)).astype("float32")
    with tf.GradientTape() as tape:
        expected = augment.apply(x, ("translation", "cutout", "color"), u)
        total = tf.reduce_sum(expected**2)
    np.testing.assert_allclose(y, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(grads, tape.gradient(total, x).numpy(), atol=1e-4)
