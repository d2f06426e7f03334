"""Model builders: `generator(config)` and `discriminator(config)` return named Functional models.

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
from keras import layers, ops

from kgan.config import TrainConfig
from kgan.errors import KganError


def generator(config: TrainConfig) -> keras.Model:
    """Builds the generator of `config.arch` for `config.image_shape`."""
    return _BUILDERS[config.arch][0](config)


def discriminator(config: TrainConfig) -> keras.Model:
    """Builds the discriminator (logits, no sigmoid) of `config.arch`."""
    return _BUILDERS[config.arch][1](config)


LABEL_EMBEDDING = 50  # size of the generator's label embedding (conditional runs)


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
    if not config.spectral_norm:
        return layer
    return layers.SpectralNormalization(layer, dtype=layer.dtype_policy)


def _mlp_generator(config: TrainConfig) -> keras.Model:
    # The classic MLP GAN (Goodfellow et al. 2014, as in the common PyTorch example).
    inputs, x = _generator_inputs(config)
    for units in (256, 512, 1024):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(math.prod(config.image_shape), activation="tanh", dtype="float32")(x)
    images = layers.Reshape(config.image_shape, name="images", dtype="float32")(x)
    return keras.Model(inputs, images, name="generator")


def _mlp_discriminator(config: TrainConfig) -> keras.Model:
    images = keras.Input(config.image_shape, name="images")
    x = layers.Flatten()(images)
    for units in (512, 256):
        x = _weights(config, layers.Dense(units))(x)
        x = layers.LeakyReLU(0.2)(x)
    return _discriminator_head(config, images, x)


def dcgan_upsamplings(size: int) -> int:
    """How many stride-2 layers the DCGAN uses for `size`: halve while the side stays >= 4.

    28 -> 7 (2 layers), 32 -> 4 (3), 64 -> 4 (4). Raises `KganError` if `size` is odd.
    """
    steps = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        steps += 1
    if steps == 0:
        raise KganError(
            "`image_size` must be even and at least 8 for arch=dcgan (for example 28, 32 or 64). "
            f"Received: image_size={size}"
        )
    return steps


def _dcgan_generator(config: TrainConfig) -> keras.Model:
    height, width, channels = config.image_shape
    steps = dcgan_upsamplings(height)
    start = height // 2**steps
    filters = config.base_filters * 2 ** (steps - 1)
    inputs, x = _generator_inputs(config)
    x = layers.Dense(start * start * filters, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((start, start, filters))(x)
    for i in range(steps - 1):
        x = layers.Conv2DTranspose(filters // 2 ** (i + 1), 4, strides=2, padding="same",
                                   use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                    name="images", dtype="float32")(x)
    return keras.Model(inputs, images, name="generator")


def _dcgan_discriminator(config: TrainConfig) -> keras.Model:
    # No normalization in D: BatchNorm would mix real and fake statistics and break the
    # per-sample gradient penalty of wgan-gp; strided convs + LeakyReLU train stably here.
    height, _, _ = config.image_shape
    steps = dcgan_upsamplings(height)
    images = keras.Input(config.image_shape, name="images")
    x = images
    for i in range(steps):
        x = _weights(config, layers.Conv2D(config.base_filters * 2**i, 4, strides=2,
                                           padding="same"))(x)
        x = layers.LeakyReLU(0.2)(x)
    return _discriminator_head(config, images, layers.Flatten()(x))


# Image to image (pix2pix, cyclegan). Instance normalization throughout: the papers' BatchNorm
# at batch size 1 is instance normalization, and it keeps no running statistics (nothing that
# training=False would switch to), so a model translates the same at any batch size.


@keras.saving.register_keras_serializable(package="kgan")
class InstanceNormalization(layers.Layer):
    """(x - mean) / sqrt(var + 1e-5) over each image's height and width, per channel, with no
    scale or offset: PyTorch's `InstanceNorm2d()` that the papers' code uses. Keras'
    `GroupNormalization(groups=-1)` computes the same with a scale and offset, and 3x the
    ops: TensorFlow took seconds longer to trace CycleGAN's step with it."""

    def call(self, x):
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        centered = x - mean
        return centered * ops.rsqrt(ops.mean(ops.square(centered), axis=(1, 2), keepdims=True)
                                    + 1e-5)


def _instance_norm():
    return InstanceNormalization()


def unet_downsamplings(size: int) -> int:
    """Stride-2 steps of the U-Net: halve while the side stays even, at most 8 (256 -> 1)."""
    steps = 0
    while size % 2 == 0 and steps < 8:
        size //= 2
        steps += 1
    return steps


def unet(config: TrainConfig, in_channels: int, out_channels: int) -> keras.Model:
    """pix2pix's U-Net (Isola et al. 2017): 4x4 stride-2 convs down (C64-C128-C256-C512-...),
    transposed convs up with skip connections, dropout 0.5 on the three innermost up steps
    (the paper's noise; only when training here, so a translation is deterministic)."""
    size = config.image_shape[0]
    steps = unet_downsamplings(size)
    widths = [min(config.base_filters * 2**i, config.base_filters * 8) for i in range(steps)]
    images = keras.Input((size, size, in_channels), name="images")
    x, skips = images, []
    for i, filters in enumerate(widths):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=False)(x)
        if 0 < i < steps - 1:  # none on the first layer and the 1x1 bottleneck
            x = _instance_norm()(x)
        x = layers.LeakyReLU(0.2)(x)
        skips.append(x)
    for i, filters in enumerate(reversed(widths[:-1])):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = _instance_norm()(x)
        if i < 3:  # seeded: without a seed, torch's dropout draws from its global generator
            x = layers.Dropout(0.5, seed=config.seed + i)(x)
        x = layers.ReLU()(layers.Concatenate()([x, skips[-2 - i]]))
    out = layers.Conv2DTranspose(out_channels, 4, strides=2, padding="same", activation="tanh",
                                 name="translated", dtype="float32")(x)
    return keras.Model(images, out, name="generator")


def resnet_generator(config: TrainConfig, in_channels: int, out_channels: int,
                     name: str) -> keras.Model:
    """CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al.): c7s1-64, d128,
    d256, 6 residual blocks below 256 px (9 from 256), u128, u64, c7s1-C. Zero padding where
    the paper reflects."""
    size = config.image_shape[0]
    f = config.base_filters
    images = keras.Input((size, size, in_channels), name="images")
    x = layers.Conv2D(f, 7, padding="same", use_bias=False)(images)
    x = layers.ReLU()(_instance_norm()(x))
    for filters in (2 * f, 4 * f):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_instance_norm()(x))
    for _ in range(9 if size >= 256 else 6):
        y = layers.Conv2D(4 * f, 3, padding="same", use_bias=False)(x)
        y = layers.ReLU()(_instance_norm()(y))
        y = _instance_norm()(layers.Conv2D(4 * f, 3, padding="same", use_bias=False)(y))
        x = layers.Add()([x, y])
    for filters in (2 * f, f):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_instance_norm()(x))
    out = layers.Conv2D(out_channels, 7, padding="same", activation="tanh", name="translated",
                        dtype="float32")(x)
    return keras.Model(images, out, name=name)


def patch_discriminator(config: TrainConfig, channels: int, name: str) -> keras.Model:
    """The PatchGAN (70x70 at 256 px): C64-C128-C256 at stride 2 (fewer while the side stays
    even and at least 4), C512 at stride 1, then one logit per patch."""
    size = config.image_shape[0]
    images = keras.Input((size, size, channels), name="images")
    x, side = images, size
    for i in range(3):
        if side % 2 or side // 2 < 4:
            break
        x = layers.Conv2D(config.base_filters * 2**i, 4, strides=2, padding="same")(x)
        if i:
            x = _instance_norm()(x)
        x = layers.LeakyReLU(0.2)(x)
        side //= 2
    x = layers.Conv2D(config.base_filters * 8, 4, padding="same")(x)
    x = layers.LeakyReLU(0.2)(_instance_norm()(x))
    logits = layers.Conv2D(1, 4, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


def check_image_shape(config: TrainConfig) -> None:
    """Raises `KganError` if `config.arch` cannot produce `config.image_shape`."""
    height, width, channels = config.image_shape
    if config.arch == "dcgan":
        if height != width:
            raise KganError(
                f"arch=dcgan needs square images. Received: image_shape={config.image_shape}"
            )
        dcgan_upsamplings(height)


_BUILDERS = {
    "mlp": (_mlp_generator, _mlp_discriminator),
    "dcgan": (_dcgan_generator, _dcgan_discriminator),
}
