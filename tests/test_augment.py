import dataclasses
import json

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


# Adaptive augmentation (ADA): each policy gated per image by its own uniform against p.

POLICIES = ("translation", "cutout", "color")


def test_adaptive_gates_each_policy_per_image_by_p():
    x = images(n=6)
    u = np.random.default_rng(2).uniform(size=(6, augment.num_params(POLICIES, True)))
    u = u.astype(np.float32)
    gates = [2, 5, 9]  # after each policy's own uniforms: translation 2, cutout 2, color 3
    plain = np.delete(u, gates, axis=1)
    assert u.shape[1] == augment.num_params(POLICIES) + 3
    np.testing.assert_array_equal(augment.apply(x, POLICIES, u, p=0.0), x)
    np.testing.assert_allclose(augment.apply(x, POLICIES, u, p=1.0),
                               augment.apply(x, POLICIES, plain), atol=1e-6)
    # p = 0.5 with the gates set: images 0-2 get every policy, images 3-5 none.
    u[:, gates] = np.array([0.1] * 3 + [0.9] * 3, np.float32)[:, None]
    half = np.asarray(augment.apply(x, POLICIES, u, p=0.5))
    np.testing.assert_allclose(half[:3], np.asarray(augment.apply(x[:3], POLICIES, plain[:3])),
                               atol=1e-6)
    np.testing.assert_array_equal(half[3:], x[3:])


def _ada_gan(p):
    from kgan.build import build_gan
    from kgan.config import TrainConfig

    gan = build_gan(TrainConfig(arch="dcgan", image_shape=(8, 8, 1), latent_dim=8,
                                base_filters=4, batch_size=16, augment="ada", ada_kimg=1,
                                jit=False))
    gan.ada_p.assign(p)
    return gan


@pytest.mark.parametrize(("bias", "direction"), [(100.0, 1), (-100.0, -1)])
def test_ada_p_moves_by_the_sign_of_r_t_minus_its_target_each_step(bias, direction):
    # D's last bias decides the sign of every logit: r_t = +1 (overfitting, above the target
    # 0.6) raises p by 16 images / 1000 per step, r_t = -1 lowers it; p stays in [0, 1].
    gan = _ada_gan(0.5)
    logits = gan.discriminator.get_layer("logits")
    logits.bias.assign(np.full(logits.bias.shape, bias, np.float32))
    real = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype(np.float32)
    for step in range(1, 4):
        logs = gan.train_on_batch(real, return_dict=True)
        assert logs["r_t"] == direction
        np.testing.assert_allclose(logs["ada_p"], 0.5 + direction * step * 0.016, rtol=1e-5)
    gan.ada_p.assign(1.0 if direction > 0 else 0.0)
    assert float(gan.train_on_batch(real, return_dict=True)["ada_p"]) == max(direction, 0)


def test_ada_p_rises_when_d_overfits_a_tiny_set_is_logged_and_resumes_exactly(tmp_path):
    from conftest import At, assert_same_state, ctrl_c, toy_config

    from kgan import training
    from kgan.checkpoint import load_gan

    # 64 images, seen 30 times each: D learns them, r_t climbs past 0.6 and p follows.
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=np.random.default_rng(0).integers(0, 256, (64, 8, 8), np.uint8))
    config = toy_config(npz, arch="dcgan", base_filters=8, epochs=30, augment="ada",
                        ada_kimg=1, lr=1e-3, sample_every=30, checkpoint_every=30)
    run = training.train(dataclasses.replace(config, tensorboard=True, curves=True),
                         runs_dir=tmp_path / "a")
    records = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").open()]
    p = [r["ada_p"] for r in records]
    assert p[0] == 0 and p[-1] > 0.2 and max(r["r_t"] for r in records[-10:]) > 0.6
    logged = [float(tf.make_ndarray(value.tensor))
              for path in (run.run_dir / "tensorboard").iterdir()
              for event in tf.compat.v1.train.summary_iterator(str(path))
              for value in event.summary.value if value.tag == "ada_p"]
    np.testing.assert_allclose(logged, p, rtol=1e-6)  # one per epoch in TensorBoard
    assert (run.run_dir / "curves.png").stat().st_size > 0
    # Interrupted once p moves (step 100 of 120), then resumed: p and every other state
    # variable end as in the straight run.
    cut = training.train(config, runs_dir=tmp_path / "b", callbacks=[At(100, ctrl_c)])
    assert cut.status == "interrupted"
    assert 0 < float(load_gan(cut.run_dir)[0].ada_p) < p[-1]
    training.resume(cut.run_dir)
    assert_same_state(run.run_dir, cut.run_dir)
    assert float(load_gan(cut.run_dir)[0].ada_p) == np.float32(p[-1])
