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
from keras import layers

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
