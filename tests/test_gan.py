import keras
import numpy as np
import pytest
from conftest import toy_config
from keras import layers
from PIL import Image

from kgan import draw, images, training
from kgan.build import build_gan
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig
from kgan.families.noise import GANSource, nets
from kgan.families.noise.gan import GAN
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
    history = gan.fit(make_dataset((target,), 64, 0, 64, 0, 20), epochs=20, steps_per_epoch=64,
                      verbose=0, shuffle=False)
    after = keras.ops.convert_to_numpy(gan.generate(5000, seed=1))
    assert abs(before.mean() - 2.0) > 1.0  # it starts far from the target
    assert abs(after.mean() - 2.0) < 0.2
    assert abs(after.std() - 0.5) < 0.15
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake", "r_t"}
    assert all(-1 <= r_t <= 1 for r_t in history.history["r_t"])
    # D ends up near chance: real and fake logits close to each other.
    assert abs(history.history["d_real"][-1] - history.history["d_fake"][-1]) < 1.0


@pytest.mark.parametrize("loss", ["bce", "minimax", "lsgan", "hinge", "wgan-gp"])
def test_each_loss_trains_finite_with_d_steps(loss):
    config = TrainConfig(arch="dcgan", image_shape=(8, 8, 1), latent_dim=8, base_filters=4)
    gan = GAN(nets.generator(config), nets.discriminator(config), 8, seed=0)
    gan.compile(adam(), adam(), loss=loss, d_steps=2)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    before = [keras.ops.convert_to_numpy(v) for v in gan.discriminator.trainable_variables]
    history = gan.fit(make_dataset((x,), 16, 0, 4, 0, 1), epochs=1, steps_per_epoch=4, verbose=0,
                      shuffle=False)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert int(gan.g_optimizer.iterations) == 4 and int(gan.d_optimizer.iterations) == 8
    after = gan.discriminator.trainable_variables
    assert any(not np.array_equal(b, keras.ops.convert_to_numpy(a)) for a, b in zip(after, before))


def test_save_and_load_model_round_trip_is_bit_identical(tmp_path):
    config = TrainConfig(arch="mlp", image_shape=(8, 8, 1), latent_dim=8)
    gan = GAN(nets.generator(config), nets.discriminator(config), 8, seed=5)
    gan.compile(adam(), adam(), loss="wgan-gp", d_steps=2, gp_weight=5.0)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    gan.fit(make_dataset((x,), 16, 0, 4, 0, 1), epochs=1, steps_per_epoch=4, verbose=0,
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
        model.fit(make_dataset((x,), 16, 0, 4, 1, 2), epochs=1, steps_per_epoch=4, verbose=0,
                  shuffle=False)
    for a, b in zip(state(gan), state(loaded), strict=True):
        np.testing.assert_array_equal(a, b)


def test_generate_is_keyed_by_seed():
    config = TrainConfig(arch="mlp", image_shape=(8, 8, 1), latent_dim=8)
    gan = GAN(nets.generator(config), nets.discriminator(config), 8)
    a, b, c = (keras.ops.convert_to_numpy(gan.generate(4, seed=s)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (4, 8, 8, 1)


# The techniques of issue 7 ---------------------------------------------------------------------


class Record(keras.callbacks.Callback):
    """The generator's raw and averaged weights after every step."""

    def __init__(self):
        super().__init__()
        self.raw, self.ema = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.paths = [w.path for w in self.model.generator.weights]
        self.raw.append([keras.ops.convert_to_numpy(w) for w in self.model.generator.weights])
        self.ema.append([keras.ops.convert_to_numpy(w) for w in self.model.ema_weights])


def test_ema_lags_the_raw_weights_by_the_formula_and_is_what_sampling_uses(toy_npz, tmp_path):
    record = Record()
    run = training.train(toy_config(toy_npz, seed=1, arch="dcgan", ema=0.9, ema_start=3),
                         runs_dir=tmp_path, callbacks=[record]).run_dir
    assert len(record.raw) == 12 and len(record.ema[0]) == len(record.paths)
    assert any("moving_variance" in path for path in record.paths)  # BatchNorm's too
    for step in range(3):  # the first ema_start steps copy the generator
        for raw, ema in zip(record.raw[step], record.ema[step], strict=True):
            np.testing.assert_array_equal(ema, raw)
    for step in range(3, 12):
        for raw, ema, before in zip(record.raw[step], record.ema[step], record.ema[step - 1],
                                    strict=True):
            np.testing.assert_allclose(ema, 0.9 * before + 0.1 * raw, rtol=1e-5, atol=1e-7)
    lag = [np.abs(e - r).max() for e, r in zip(record.ema[-1], record.raw[-1], strict=True)]
    assert max(lag) > 1e-4  # it does lag behind

    raw_gan, _ = load_gan(run)
    ema_gan, _ = load_gan(run, ema=True)
    for weight, ema in zip(ema_gan.generator.weights, record.ema[-1], strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), ema)
    for weight, raw in zip(raw_gan.generator.weights, record.raw[-1], strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), raw)
    averaged = draw.draw(draw.from_run(run), 8, seed=0)
    assert not np.array_equal(averaged, draw.draw(draw.from_run(run, ema=False), 8, seed=0))
    assert np.array_equal(averaged, draw.draw(GANSource(ema_gan), 8, seed=0))
    z = np.random.default_rng(1).standard_normal((64, 8)).astype("float32")  # the grid's noise
    expected = images.grid(images.to_uint8(keras.ops.convert_to_numpy(ema_gan.generator(z))))
    grid = np.asarray(Image.open(run / "samples" / "epoch-0001.png"))
    np.testing.assert_array_equal(grid, expected[..., 0])  # the grid is drawn by the average


def largest_singular_values(gan):
    return [float(np.linalg.svd(np.reshape(keras.ops.convert_to_numpy(layer.kernel),
                                           (-1, layer.kernel.shape[-1])), compute_uv=False)[0])
            for layer in gan.discriminator.layers if hasattr(layer, "kernel")
            and not isinstance(layer, keras.layers.Embedding)]


def test_spectral_norm_keeps_each_layers_largest_singular_value_near_one(toy_npz, tmp_path):
    plain = training.train(toy_config(toy_npz, seed=1, arch="dcgan", epochs=2, lr=1e-3),
                           runs_dir=tmp_path / "plain").run_dir
    normed = training.train(toy_config(toy_npz, seed=1, arch="dcgan", epochs=2, lr=1e-3,
                                       spectral_norm=True), runs_dir=tmp_path / "sn").run_dir
    plain_sv = largest_singular_values(load_gan(plain)[0])
    normed_sv = largest_singular_values(load_gan(normed)[0])
    assert len(normed_sv) == len(plain_sv) == 2  # the conv layers (wrapped: `.kernel` too)
    assert max(plain_sv) > 1.3
    np.testing.assert_allclose(normed_sv, 1.0, atol=0.05)


def test_r1_is_zero_for_a_constant_discriminator_and_positive_otherwise(toy_npz):
    config = toy_config(toy_npz, seed=1, arch="dcgan", image_shape=(8, 8, 1), r1=10.0,
                        conditional=True, num_classes=4)
    gan = build_gan(config)
    real = np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 1)).astype("float32")
    labels = np.arange(6, dtype="int32") % 4
    assert float(gan.r1_penalty([real, labels])) > 0
    for variable in gan.discriminator.trainable_variables:
        if variable.path.endswith("kernel") or "embeddings" in variable.path:
            variable.assign(np.zeros(variable.shape, "float32"))
    assert float(gan.r1_penalty([real, labels])) == 0.0


def test_r1_flattens_d_around_real_images(toy_npz, tmp_path):
    def final_r1(**overrides):
        run = training.train(toy_config(toy_npz, seed=1, epochs=2, lr=1e-3, **overrides),
                             runs_dir=tmp_path / str(len(overrides))).run_dir
        gan, _ = load_gan(run)
        real = np.load(toy_npz)["x_train"][:64].astype("float32") / 127.5 - 1
        return float(gan.r1_penalty(real))

    assert final_r1(r1=10.0, r1_every=2) < 0.5 * final_r1()
