"""Model builders: `generator(config)` and `discriminator(config)` return named Functional models.

Every architecture takes the same arguments, the generator maps `z` of shape (latent_dim,) to
images in [-1, 1] of `config.image_shape`, and the discriminator returns one logit per image.
Under a mixed precision policy, the generator's output layer and the logits stay float32.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from kgan.config import TrainConfig
from kgan.errors import KganError


def generator(config: TrainConfig) -> keras.Model:
    """Builds the generator of `config.arch` for `config.image_shape`."""
    return _BUILDERS[config.arch][0](config)


def discriminator(config: TrainConfig) -> keras.Model:
    """Builds the discriminator (logits, no sigmoid) of `config.arch`."""
    return _BUILDERS[config.arch][1](config)


def _mlp_generator(config: TrainConfig) -> keras.Model:
    # The classic MLP GAN (Goodfellow et al. 2014, as in the common PyTorch example).
    z = keras.Input((config.latent_dim,), name="z")
    x = z
    for units in (256, 512, 1024):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(math.prod(config.image_shape), activation="tanh", dtype="float32")(x)
    images = layers.Reshape(config.image_shape, name="images", dtype="float32")(x)
    return keras.Model(z, images, name="generator")


def _mlp_discriminator(config: TrainConfig) -> keras.Model:
    images = keras.Input(config.image_shape, name="images")
    x = layers.Flatten()(images)
    for units in (512, 256):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(0.2)(x)
    logits = layers.Dense(1, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="discriminator")


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
    z = keras.Input((config.latent_dim,), name="z")
    x = layers.Dense(start * start * filters, use_bias=False)(z)
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
    return keras.Model(z, images, name="generator")


def _dcgan_discriminator(config: TrainConfig) -> keras.Model:
    # No normalization in D: BatchNorm would mix real and fake statistics and break the
    # per-sample gradient penalty of wgan-gp; strided convs + LeakyReLU train stably here.
    height, _, _ = config.image_shape
    steps = dcgan_upsamplings(height)
    images = keras.Input(config.image_shape, name="images")
    x = images
    for i in range(steps):
        x = layers.Conv2D(config.base_filters * 2**i, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    logits = layers.Dense(1, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="discriminator")


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
