"""The noise GANs' networks: `generator(config)` and `discriminator(config)` build its arch's
(`kgan.families.ARCHS` names the builders) as named Functional models.

Every architecture takes the same arguments, the generator maps `z` of shape (latent_dim,) to
images in [-1, 1] of `config.image_shape`, and the discriminator returns one logit per image.
Under a mixed precision policy, the generator's output layer and the logits stay float32.

With `config.conditional`, both models also take an int32 `label`: the generator joins a label
embedding to `z`, the discriminator adds a projection term `embed(label) . features(image)` to
its logit (Miyato & Koyama 2018). With `config.spectral_norm`, every weight layer of the
discriminator is wrapped in Keras' `SpectralNormalization`.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from kgan import families
from kgan.config import TrainConfig
from kgan.errors import KganError
from kgan.nn import fast
from kgan.nn import layers as klayers


def generator(config: TrainConfig) -> keras.Model:
    """Builds the generator of `config.arch` for `config.image_shape`."""
    return globals()[families.arch(config.arch).builders[0]](config)


def discriminator(config: TrainConfig) -> keras.Model:
    """Builds the discriminator (logits, no sigmoid) of `config.arch`."""
    return globals()[families.arch(config.arch).builders[1]](config)


LABEL_EMBEDDING = 50  # size of the generator's label embedding (conditional runs)
TRUNCATION = "truncation"  # the stylegan generator's input of psi, one per image


def truncates(generator: keras.Model) -> bool:
    """Whether `generator` takes a truncation psi beside z (StyleGAN-style ones do)."""
    return any(t.name == TRUNCATION for t in generator.inputs)


def _generator_inputs(config: TrainConfig):
    """The generator's inputs and the tensor its layers start from: `z`, or `z` joined to the
    label's embedding."""
    z = keras.Input((config.latent_dim,), name="z")
    if not config.conditional:
        return z, z
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(config.num_classes, LABEL_EMBEDDING, name="label_embedding")(label)
    return [z, label], layers.Concatenate()([z, embedded])


def _discriminator_head(config: TrainConfig, images, features) -> keras.Model:
    """One logit from `features`; conditional: plus the projection of the label's embedding."""
    if not config.conditional:
        logits = _weights(config, layers.Dense(1, name="logits", dtype="float32"))(features)
        return keras.Model(images, logits, name="discriminator")
    linear = _weights(config, layers.Dense(1, name="linear", dtype="float32"))(features)
    # Not spectrally normalized: Keras' wrapper casts outputs to its input's dtype (int here).
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(config.num_classes, features.shape[-1],
                                name="label_projection")(label)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, features])
    logits = layers.Add(name="logits", dtype="float32")([linear, projection])
    return keras.Model([images, label], logits, name="discriminator")


def _weights(config: TrainConfig, layer: layers.Layer) -> layers.Layer:
    """`layer`, spectrally normalized with `config.spectral_norm` (same dtype policy)."""
    return klayers.spectral(layer, config.spectral_norm)


def mlp_generator(config: TrainConfig) -> keras.Model:
    # The classic MLP GAN (Goodfellow et al. 2014, as in the common PyTorch example).
    inputs, x = _generator_inputs(config)
    for units in (256, 512, 1024):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(math.prod(config.image_shape), activation="tanh", dtype="float32")(x)
    images = layers.Reshape(config.image_shape, name="images", dtype="float32")(x)
    return keras.Model(inputs, images, name="generator")


def mlp_discriminator(config: TrainConfig) -> keras.Model:
    images = keras.Input(config.image_shape, name="images")
    x = layers.Flatten()(images)
    for units in (512, 256):
        x = _weights(config, layers.Dense(units))(x)
        x = layers.LeakyReLU(0.2)(x)
    return _discriminator_head(config, images, x)


def dcgan_upsamplings(size: int, arch: str = "dcgan") -> int:
    """How many times a convolutional `arch` doubles its side to reach `size`: halve while the
    side stays >= 4.

    28 -> 7 (2 layers), 32 -> 4 (3), 64 -> 4 (4). Raises `KganError` if `size` is odd.
    """
    steps = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        steps += 1
    if steps == 0:
        raise KganError(
            f"`image_size` must be even and at least 8 for arch={arch} (for example 28, 32 or 64). "
            f"Received: image_size={size}"
        )
    return steps


def dcgan_generator(config: TrainConfig) -> keras.Model:
    height, width, channels = config.image_shape
    steps = dcgan_upsamplings(height)
    start = height // 2**steps
    filters = config.base_filters * 2 ** (steps - 1)
    inputs, x = _generator_inputs(config)
    x = layers.Dense(start * start * filters, use_bias=False)(x)
    x = fast.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((start, start, filters))(x)
    for i in range(steps - 1):
        x = fast.Conv2DTranspose(filters // 2 ** (i + 1), 4, strides=2, padding="same",
                                    use_bias=False)(x)
        x = fast.BatchNormalization()(x)
        x = layers.ReLU()(x)
    images = fast.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                     name="images", dtype="float32")(x)
    return keras.Model(inputs, images, name="generator")


def dcgan_discriminator(config: TrainConfig) -> keras.Model:
    # No normalization in D: BatchNorm would mix real and fake statistics and break the
    # per-sample gradient penalty of wgan-gp; strided convs + LeakyReLU train stably here.
    height, _, _ = config.image_shape
    steps = dcgan_upsamplings(height)
    images = keras.Input(config.image_shape, name="images")
    x = images
    for i in range(steps):
        x = _weights(config, fast.Conv2D(config.base_filters * 2**i, 4, strides=2,
                                            padding="same"))(x)
        x = layers.LeakyReLU(0.2)(x)
    return _discriminator_head(config, images, layers.Flatten()(x))


# Image to image (pix2pix, cyclegan). Instance normalization throughout: the papers' BatchNorm
# at batch size 1 is instance normalization, and it keeps no running statistics (nothing that
# training=False would switch to), so a model translates the same at any batch size.


def check_image_shape(config: TrainConfig) -> None:
    """Raises `KganError` if `config.arch` cannot produce `config.image_shape`."""
    height, width, channels = config.image_shape
    if families.arch(config.arch).convolutional:
        if height != width:
            raise KganError(f"arch={config.arch} needs square images. Received: "
                            f"image_shape={config.image_shape}")
        dcgan_upsamplings(height, config.arch)
    if config.attention is not None:
        sides = _sides(height)[1:-1]  # where G and D both have a block
        if config.attention not in sides:
            raise KganError(f"`attention` must be a resolution that G and D of a {height} px "
                            f"resnet both have: {', '.join(map(str, sides)) or 'none'}. "
                            f"Received: attention={config.attention}")


# Residual GANs (SNGAN, Miyato et al. 2018; BigGAN, Brock et al. 2019): pre-activation blocks
# that up- or down-sample by 2, widths halving as the side doubles.


def _sides(size: int) -> list[int]:
    """The sides of a convolutional model, from its start (4..7) up to `size`."""
    start = size // 2 ** dcgan_upsamplings(size)
    return [start * 2**i for i in range(dcgan_upsamplings(size) + 1)]


def _width(config: TrainConfig, side: int) -> int:
    """Channels at resolution `side`: `base_filters` at the image's, doubling per halving, at
    most 8x (a 64 px model: 512, 512, 256, 128, 64 from 4 px up)."""
    return config.base_filters * min(8, config.image_shape[0] // side)


def _norm(config: TrainConfig, x, label):
    if label is None:
        return fast.BatchNormalization()(x)
    return klayers.ConditionalBatchNormalization(config.num_classes)([x, label])


def resnet_generator(config: TrainConfig) -> keras.Model:
    sides = _sides(config.image_shape[0])
    z = keras.Input((config.latent_dim,), name="z")
    label = keras.Input((), dtype="int32", name="label") if config.conditional else None
    x = layers.Dense(sides[0] ** 2 * _width(config, sides[0]))(z)
    x = layers.Reshape((sides[0], sides[0], _width(config, sides[0])))(x)
    for side in sides[1:]:  # BN-ReLU-up-conv3-BN-ReLU-conv3, plus up-conv1 on the shortcut
        filters = _width(config, side)
        h = layers.ReLU()(_norm(config, x, label))
        h = fast.Conv2D(filters, 3, padding="same")(layers.UpSampling2D()(h))
        h = layers.ReLU()(_norm(config, h, label))
        h = fast.Conv2D(filters, 3, padding="same")(h)
        x = layers.Add()([h, fast.Conv2D(filters, 1)(layers.UpSampling2D()(x))])
        if side == config.attention:
            x = klayers.SelfAttention()(x)
    x = layers.ReLU()(fast.BatchNormalization()(x))
    images = fast.Conv2D(config.image_shape[2], 3, padding="same", activation="tanh",
                            name="images", dtype="float32")(x)
    return keras.Model([z, label] if label is not None else z, images, name="generator")


def resnet_discriminator(config: TrainConfig) -> keras.Model:
    sides = _sides(config.image_shape[0])
    images = keras.Input(config.image_shape, name="images")
    x = images
    for i, side in enumerate(reversed(sides[:-1])):  # ReLU-conv3-ReLU-conv3-pool, conv1-pool
        filters = _width(config, side)
        h = x if i == 0 else layers.ReLU()(x)  # the first block sees the image itself
        h = _weights(config, fast.Conv2D(filters, 3, padding="same"))(h)
        h = _weights(config, fast.Conv2D(filters, 3, padding="same"))(layers.ReLU()(h))
        h = layers.AveragePooling2D(2)(h)
        shortcut = _weights(config, fast.Conv2D(filters, 1))(layers.AveragePooling2D(2)(x))
        x = layers.Add()([h, shortcut])
        if side == config.attention:
            x = klayers.SelfAttention(config.spectral_norm)(x)
    features = klayers.GlobalSumPooling()(layers.ReLU()(x))
    return _discriminator_head(config, images, features)


# StyleGAN2 (Karras et al. 2020), small by default: `base_filters` 32 (64 px: 256 channels at
# 4-8 px, where the paper has 512) and a 2-layer mapping network (StyleGAN2-ADA's CIFAR-10
# setting; the paper's 8). Left out: equalized learning rates and the mapping network's 0.01
# learning-rate multiplier (Keras' initializers and one Adam instead), the FIR filter of up-
# and down-sampling (bilinear up, average-pool down), the D's groups of 4 in minibatch stddev
# (the whole batch). tanh on the summed skip outputs keeps the images in [-1, 1].


def stylegan_generator(config: TrainConfig) -> keras.Model:
    sides = _sides(config.image_shape[0])
    inputs, w = _generator_inputs(config)
    psi = keras.Input((), name=TRUNCATION)
    w = klayers.PixelNorm()(w)
    for _ in range(config.mapping_layers):
        w = layers.LeakyReLU(0.2)(layers.Dense(config.latent_dim)(w))
    w = klayers.Truncation(name="truncation_average")([w, psi])
    num_ws = 2 + 3 * (len(sides) - 1)  # conv + toRGB at the start, then 2 convs + toRGB
    ws = klayers.StyleMixing(num_ws, config.style_mixing, seed=config.seed)(w)
    index = iter(range(num_ws))

    def conv(x, filters):
        i = next(index)  # each layer its own noise seed
        return klayers.ModulatedConv2D(filters, 3, i, seed=config.seed + 1 + i)([x, ws])

    def to_rgb(x):
        return klayers.ModulatedConv2D(config.image_shape[2], 1, next(index), demodulate=False,
                                       noise=False, activate=False)([x, ws])

    x = klayers.ConstantInput(sides[0], _width(config, sides[0]))(ws)
    x = conv(x, _width(config, sides[0]))
    rgb = to_rgb(x)
    for side in sides[1:]:
        x = conv(layers.UpSampling2D(interpolation="bilinear")(x), _width(config, side))
        x = conv(x, _width(config, side))
        rgb = layers.Add()([layers.UpSampling2D(interpolation="bilinear")(rgb), to_rgb(x)])
    images = layers.Activation("tanh", name="images", dtype="float32")(rgb)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    return keras.Model([*inputs, psi], images, name="generator")


def stylegan_discriminator(config: TrainConfig) -> keras.Model:
    sides = _sides(config.image_shape[0])
    images = keras.Input(config.image_shape, name="images")
    x = _weights(config, fast.Conv2D(_width(config, sides[-1]), 1))(images)
    x = layers.LeakyReLU(0.2)(x)
    for side in reversed(sides[:-1]):  # conv3-conv3-pool, plus pool-conv1 on the skip
        filters = _width(config, side)
        h = layers.LeakyReLU(0.2)(_weights(config, fast.Conv2D(x.shape[-1], 3,
                                                                  padding="same"))(x))
        h = layers.LeakyReLU(0.2)(_weights(config, fast.Conv2D(filters, 3, padding="same"))(h))
        h = layers.AveragePooling2D(2)(h)
        skip = _weights(config, fast.Conv2D(filters, 1, use_bias=False))(
            layers.AveragePooling2D(2)(x))
        x = layers.Rescaling(1 / math.sqrt(2))(layers.Add()([h, skip]))
    x = klayers.MinibatchStdDev()(x)
    x = layers.LeakyReLU(0.2)(_weights(config, fast.Conv2D(x.shape[-1] - 1, 3,
                                                              padding="same"))(x))
    x = layers.LeakyReLU(0.2)(_weights(config, layers.Dense(_width(config, sides[0])))(
        layers.Flatten()(x)))
    return _discriminator_head(config, images, x)
