import json

import keras
import numpy as np
import pytest

from kgan.config import TrainConfig
from kgan.errors import KganError
from kgan.families.noise import nets


@pytest.mark.parametrize(("arch", "shape"), [
    ("mlp", (8, 8, 1)), ("mlp", (28, 28, 1)), ("mlp", (32, 32, 3)),
    ("dcgan", (28, 28, 1)), ("dcgan", (32, 32, 3)), ("dcgan", (64, 64, 3)), ("dcgan", (32, 32, 1)),
])
def test_shapes_names_and_ranges(arch, shape):
    config = TrainConfig(arch=arch, image_shape=shape, latent_dim=16, base_filters=8)
    g, d = nets.generator(config), nets.discriminator(config)
    assert (g.name, d.name) == ("generator", "discriminator")
    assert g.input_shape == (None, 16) and g.output_shape == (None, *shape)
    assert d.input_shape == (None, *shape) and d.output_shape == (None, 1)
    images = np.asarray(g(np.random.default_rng(0).standard_normal((3, 16)).astype("float32")))
    assert images.shape == (3, *shape) and images.min() >= -1.0 and images.max() <= 1.0
    assert np.asarray(d(images)).shape == (3, 1)


def test_mlp_matches_the_classic_layout():
    config = TrainConfig(arch="mlp", image_shape=(28, 28, 1))
    g, d = nets.generator(config), nets.discriminator(config)
    dense = [layer.units for layer in g.layers if hasattr(layer, "units")]
    assert dense == [256, 512, 1024, 784]
    assert [layer.units for layer in d.layers if hasattr(layer, "units")] == [512, 256, 1]


@pytest.mark.parametrize(("size", "steps"), [(28, 2), (32, 3), (64, 4), (8, 1)])
def test_dcgan_upsamplings(size, steps):
    assert nets.dcgan_upsamplings(size) == steps


def test_dcgan_rejects_odd_sizes():
    with pytest.raises(KganError) as e:
        nets.check_image_shape(TrainConfig(arch="dcgan", image_shape=(27, 27, 1)))
    assert str(e.value) == ("`image_size` must be even and at least 8 for arch=dcgan (for example "
                            "28, 32 or 64). Received: image_size=27")


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_conditional_models_take_labels_and_d_projects_them(arch):
    config = TrainConfig(arch=arch, image_shape=(8, 8, 1), latent_dim=16, base_filters=8,
                         conditional=True, num_classes=4)
    g, d = nets.generator(config), nets.discriminator(config)
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
    d = nets.discriminator(config)
    wrapped = [layer.layer for layer in d.layers
               if isinstance(layer, keras.layers.SpectralNormalization)]
    assert [type(layer).__name__ for layer in wrapped] == ["Conv2D", "Conv2D", "Dense"]
    assert not any(isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
                   for layer in d.layers)  # none left bare


def _inputs(g, n, seed=0, labels=None, psi=1.0):
    z = np.random.default_rng(seed).standard_normal((n, g.inputs[0].shape[-1]))
    z = z.astype("float32")
    inputs = [keras.ops.convert_to_tensor(z)]
    if labels is not None:
        inputs.append(keras.ops.convert_to_tensor(labels, "int32"))
    if nets.truncates(g):
        inputs.append(keras.ops.full((n,), psi, "float32"))
    return inputs[0] if len(inputs) == 1 else inputs


@pytest.mark.parametrize(("arch", "shape", "options"), [
    ("resnet", (32, 32, 1), {}), ("resnet", (28, 28, 3), {"conditional": True}),
    ("resnet", (64, 64, 3), {"attention": 32}), ("resnet", (16, 16, 1), {"attention": 8}),
    ("stylegan", (32, 32, 1), {}), ("stylegan", (28, 28, 1), {"conditional": True}),
    ("stylegan", (64, 64, 3), {}),
], ids=lambda value: str(value).replace(" ", ""))
def test_residual_and_style_models_at_several_sizes(arch, shape, options):
    config = TrainConfig(arch=arch, image_shape=shape, latent_dim=16, base_filters=4,
                         num_classes=4 if options.get("conditional") else None,
                         **options).validate()
    nets.check_image_shape(config)
    g, d = nets.generator(config), nets.discriminator(config)
    assert (g.name, d.name) == ("generator", "discriminator")
    labels = np.array([0, 1, 3], "int32") if config.conditional else None
    for training in (True, False):
        images = np.asarray(g(_inputs(g, 3, labels=labels), training=training))
        assert images.shape == (3, *shape) and np.abs(images).max() <= 1.0
        logits = d(images if labels is None else [images, labels], training=training)
        assert np.asarray(logits).shape == (3, 1)
    if config.conditional:  # the label steers G: conditional BatchNorm / the mapping's input
        for layer in g.layers:  # per-class offsets start at 0 (BigGAN's init): set some
            if hasattr(layer, "beta") and layer.beta.shape[0] == 4:
                layer.beta.assign(np.random.default_rng(1).normal(0, 1, layer.beta.shape))
        images = np.asarray(g(_inputs(g, 3, labels=labels)))
        other = np.asarray(g(_inputs(g, 3, labels=np.array([2, 2, 2], "int32"))))
        assert not np.allclose(images, other)
    kinds = {type(layer).__name__ for layer in g.layers + d.layers}
    if arch == "resnet":
        assert "SpectralNormalization" in kinds and ("SelfAttention" in kinds) == (
            "attention" in options)
        assert ("ConditionalBatchNormalization" in kinds) == bool(config.conditional)
        assert config.loss == "hinge"
    else:
        assert {"ModulatedConv2D", "StyleMixing", "MinibatchStdDev"} <= kinds
        assert config.loss == "bce" and config.r1 == 1.0 and not config.spectral_norm


def test_attention_must_be_a_resolution_of_the_model():
    config = TrainConfig(arch="resnet", image_shape=(32, 32, 1), attention=12).validate()
    with pytest.raises(KganError) as e:
        nets.check_image_shape(config)
    assert str(e.value) == ("`attention` must be a resolution that G and D of a 32 px resnet both "
                            "have: 8, 16. Received: attention=12")
    with pytest.raises(KganError) as e:
        TrainConfig(arch="dcgan", attention=16).validate()
    assert str(e.value) == "--attention is for --arch resnet. Received: attention=16, arch=dcgan"


def test_stylegan_truncation_zero_draws_the_average_style():
    config = TrainConfig(arch="stylegan", image_shape=(16, 16, 1), latent_dim=16,
                         base_filters=4).validate()
    g = nets.generator(config)
    # Training calls move the average style; then psi = 0 maps every z to it.
    for seed in range(3):
        g(_inputs(g, 8, seed=seed), training=True)
    average = np.asarray(g.get_layer("truncation_average").w_avg)
    assert np.abs(average).max() > 0
    styles = keras.Model(g.inputs, g.get_layer("truncation_average").output)
    np.testing.assert_allclose(np.asarray(styles(_inputs(g, 4, seed=9, psi=0.0))),
                               np.tile(average, (4, 1)), rtol=1e-6)
    mean_image = np.asarray(g(_inputs(g, 4, seed=9, psi=0.0)))
    np.testing.assert_allclose(mean_image, np.repeat(mean_image[:1], 4, 0), atol=1e-6)
    own = np.asarray(g(_inputs(g, 4, seed=9, psi=1.0)))
    half = np.asarray(g(_inputs(g, 4, seed=9, psi=0.5)))
    assert np.abs(own - mean_image).mean() > np.abs(half - mean_image).mean() > 0
    # Not training: the noise inputs are fixed, so the same z gives the same image.
    np.testing.assert_array_equal(own, np.asarray(g(_inputs(g, 4, seed=9, psi=1.0))))


# One SGD step of a strided conv, BatchNorm and a transposed conv, with Keras' layers and with
# kgan's (which take faster paths on JAX and PyTorch), from the same weights: the outputs, the
# loss and every updated weight (BatchNorm's moving statistics too) agree.
CONV_PAIR = r"""
import json, sys
import numpy as np
import keras
from kgan.nn import fast

out = {}
rng = np.random.default_rng(0)
x = rng.normal(size=(4, 12, 12, 3)).astype("float32")
for i, (conv, transpose) in enumerate(json.loads(sys.argv[1])):
    pair = []
    for module in (keras.layers, fast):
        model = keras.Sequential([keras.Input((12, 12, 3)), module.Conv2D(5, **conv),
                                  module.BatchNormalization(momentum=0.5),
                                  module.Conv2DTranspose(3, **transpose)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        pair.append(model)
    pair[1].set_weights(pair[0].get_weights())
    y = rng.normal(size=pair[0].compute_output_shape(x.shape)).astype("float32")
    for name, model in zip(("keras", "kgan"), pair):
        before = keras.ops.convert_to_numpy(model.predict_on_batch(x))
        loss = model.train_on_batch(x, y)
        out[f"{i}/{name}"] = [before.tolist(), float(loss),
                                 [w.tolist() for w in model.get_weights()]]
print(json.dumps(out))
"""
CONV_CASES = [  # the DCGAN's and pix2pix's layers; CycleGAN's (asymmetric `same`); others
    ({"kernel_size": 4, "strides": 2, "padding": "same"},
     {"kernel_size": 4, "strides": 2, "padding": "same", "activation": "tanh"}),
    ({"kernel_size": 3, "strides": 2, "padding": "same"},
     {"kernel_size": 3, "strides": 2, "padding": "same", "use_bias": False}),
    ({"kernel_size": 3, "padding": "same"}, {"kernel_size": 5, "padding": "same"}),
    ({"kernel_size": (4, 3), "strides": (2, 1)}, {"kernel_size": 2, "strides": 2}),
]


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_kgan_convolutions_train_as_keras_ones_do(backend, on_backend):
    out = json.loads(on_backend(backend, CONV_PAIR, json.dumps(CONV_CASES)))
    assert len(out) == 2 * len(CONV_CASES)
    for i in range(len(CONV_CASES)):
        (before, loss, weights), (our_before, our_loss, our_weights) = out[f"{i}/keras"], \
            out[f"{i}/kgan"]
        np.testing.assert_allclose(our_before, before, atol=1e-5)
        np.testing.assert_allclose(our_loss, loss, rtol=1e-5)
        assert len(our_weights) == len(weights) >= 3
        for ours, theirs in zip(our_weights, weights):
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
