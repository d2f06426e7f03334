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
