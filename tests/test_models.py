import keras
import numpy as np
import pytest

from kgan import models
from kgan.config import TrainConfig
from kgan.errors import KganError


@pytest.mark.parametrize(("arch", "shape"), [
    ("mlp", (8, 8, 1)), ("mlp", (28, 28, 1)), ("mlp", (32, 32, 3)),
    ("dcgan", (28, 28, 1)), ("dcgan", (32, 32, 3)), ("dcgan", (64, 64, 3)), ("dcgan", (32, 32, 1)),
])
def test_shapes_names_and_ranges(arch, shape):
    config = TrainConfig(arch=arch, image_shape=shape, latent_dim=16, base_filters=8)
    g, d = models.generator(config), models.discriminator(config)
    assert (g.name, d.name) == ("generator", "discriminator")
    assert g.input_shape == (None, 16) and g.output_shape == (None, *shape)
    assert d.input_shape == (None, *shape) and d.output_shape == (None, 1)
    images = np.asarray(g(np.random.default_rng(0).standard_normal((3, 16)).astype("float32")))
    assert images.shape == (3, *shape) and images.min() >= -1.0 and images.max() <= 1.0
    assert np.asarray(d(images)).shape == (3, 1)


def test_mlp_matches_the_classic_layout():
    config = TrainConfig(arch="mlp", image_shape=(28, 28, 1))
    g, d = models.generator(config), models.discriminator(config)
    dense = [layer.units for layer in g.layers if hasattr(layer, "units")]
    assert dense == [256, 512, 1024, 784]
    assert [layer.units for layer in d.layers if hasattr(layer, "units")] == [512, 256, 1]


@pytest.mark.parametrize(("size", "steps"), [(28, 2), (32, 3), (64, 4), (8, 1)])
def test_dcgan_upsamplings(size, steps):
    assert models.dcgan_upsamplings(size) == steps


def test_dcgan_rejects_odd_sizes():
    with pytest.raises(KganError) as e:
        models.check_image_shape(TrainConfig(arch="dcgan", image_shape=(27, 27, 1)))
    assert str(e.value) == ("`image_size` must be even and at least 8 for arch=dcgan (for example "
                            "28, 32 or 64). Received: image_size=27")


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_conditional_models_take_labels_and_d_projects_them(arch):
    config = TrainConfig(arch=arch, image_shape=(8, 8, 1), latent_dim=16, base_filters=8,
                         conditional=True, num_classes=4)
    g, d = models.generator(config), models.discriminator(config)
    z = np.random.default_rng(0).standard_normal((3, 16)).astype("float32")
    label_a, label_b = np.array([0, 1, 2], "int32"), np.array([3, 3, 3], "int32")
    images = np.asarray(g([z, label_a]))
    assert images.shape == (3, 8, 8, 1) and np.abs(images).max() <= 1.0
    assert not np.allclose(images, np.asarray(g([z, label_b])))  # the label steers G
    # Projection head: logit(x, y) = linear(phi(x)) + embed(y) . phi(x)
    features = keras.Model(d.inputs[0], d.get_layer("linear").input)(images)
    embed = d.get_layer("label_projection").embeddings
    expected = np.sum((np.asarray(embed)[label_a] - np.asarray(embed)[label_b]) *
                      np.asarray(features), 1)
    got = np.asarray(d([images, label_a]) - d([images, label_b]))[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_spectral_norm_wraps_every_weight_layer_of_d():
    config = TrainConfig(arch="dcgan", image_shape=(16, 16, 1), spectral_norm=True,
                         base_filters=8, conditional=True, num_classes=3)
    d = models.discriminator(config)
    wrapped = [layer.layer for layer in d.layers
               if isinstance(layer, keras.layers.SpectralNormalization)]
    assert [type(layer).__name__ for layer in wrapped] == ["Conv2D", "Conv2D", "Dense"]
    assert not any(isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
                   for layer in d.layers)  # none left bare
