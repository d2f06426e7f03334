import keras
import numpy as np
import pytest
from keras import layers

from kgan import models
from kgan.config import TrainConfig
from kgan.gan import GAN
from kgan.trainers import make_dataset


def mlp(inputs, hidden, outputs, name):
    x = z = keras.Input((inputs,))
    for units in hidden:
        x = layers.LeakyReLU(0.2)(layers.Dense(units)(x))
    return keras.Model(z, layers.Dense(outputs)(x), name=name)


def adam(lr=2e-4):
    return keras.optimizers.Adam(lr, beta_1=0.5)


def state(gan):
    """Every number a resumed run depends on."""
    variables = gan.weights + gan.d_optimizer.variables + gan.g_optimizer.variables
    return [keras.ops.convert_to_numpy(v) for v in variables] + [
        keras.ops.convert_to_numpy(gan.seed_generator.state)]


def test_learns_a_1d_gaussian():
    keras.utils.set_random_seed(0)
    gan = GAN(mlp(4, (32, 32), 1, "generator"), mlp(1, (32, 32), 1, "discriminator"), 4, seed=0)
    gan.compile(adam(1e-3), adam(1e-3), loss="bce", jit_compile=True)
    target = np.random.default_rng(0).normal(2.0, 0.5, (4096, 1)).astype("float32")
    before = keras.ops.convert_to_numpy(gan.generate(5000, seed=1))
    history = gan.fit(make_dataset(target, 64, 0, 64, 0, 20), epochs=20, steps_per_epoch=64,
                      verbose=0, shuffle=False)
    after = keras.ops.convert_to_numpy(gan.generate(5000, seed=1))
    assert abs(before.mean() - 2.0) > 1.0  # it starts far from the target
    assert abs(after.mean() - 2.0) < 0.2
    assert abs(after.std() - 0.5) < 0.15
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    # D ends up near chance: real and fake logits close to each other.
    assert abs(history.history["d_real"][-1] - history.history["d_fake"][-1]) < 1.0


@pytest.mark.parametrize("loss", ["bce", "minimax", "lsgan", "hinge", "wgan-gp"])
def test_each_loss_trains_finite_with_d_steps(loss):
    config = TrainConfig(arch="dcgan", image_shape=(8, 8, 1), latent_dim=8, base_filters=4)
    gan = GAN(models.generator(config), models.discriminator(config), 8, seed=0)
    gan.compile(adam(), adam(), loss=loss, d_steps=2)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    before = [keras.ops.convert_to_numpy(v) for v in gan.discriminator.trainable_variables]
    history = gan.fit(make_dataset(x, 16, 0, 4, 0, 1), epochs=1, steps_per_epoch=4, verbose=0,
                      shuffle=False)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert int(gan.g_optimizer.iterations) == 4 and int(gan.d_optimizer.iterations) == 8
    after = gan.discriminator.trainable_variables
    assert any(not np.array_equal(b, keras.ops.convert_to_numpy(a)) for a, b in zip(after, before))


def test_save_and_load_model_round_trip_is_bit_identical(tmp_path):
    config = TrainConfig(arch="mlp", image_shape=(8, 8, 1), latent_dim=8)
    gan = GAN(models.generator(config), models.discriminator(config), 8, seed=5)
    gan.compile(adam(), adam(), loss="wgan-gp", d_steps=2, gp_weight=5.0)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    gan.fit(make_dataset(x, 16, 0, 4, 0, 1), epochs=1, steps_per_epoch=4, verbose=0,
            shuffle=False)
    gan.save(tmp_path / "gan.keras")
    loaded = keras.saving.load_model(tmp_path / "gan.keras")  # safe_mode stays on
    assert isinstance(loaded, GAN)
    assert (loaded.gan_loss, loaded.d_steps, loaded.gp_weight) == ("wgan-gp", 2, 5.0)
    assert int(loaded.d_optimizer.iterations) == 8  # Adam's state came back, not restarted
    for a, b in zip(state(gan), state(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    # Both continue identically: same weights, same optimizer state, same noise.
    for model in (gan, loaded):
        model.fit(make_dataset(x, 16, 0, 4, 1, 2), epochs=1, steps_per_epoch=4, verbose=0,
                  shuffle=False)
    for a, b in zip(state(gan), state(loaded), strict=True):
        np.testing.assert_array_equal(a, b)


def test_generate_is_keyed_by_seed():
    config = TrainConfig(arch="mlp", image_shape=(8, 8, 1), latent_dim=8)
    gan = GAN(models.generator(config), models.discriminator(config), 8)
    a, b, c = (keras.ops.convert_to_numpy(gan.generate(4, seed=s)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (4, 8, 8, 1)
