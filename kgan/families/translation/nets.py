"""The image-to-image networks: pix2pix's U-Net, CycleGAN's ResNet generator and the PatchGAN
discriminator, as named Functional models."""

from __future__ import annotations

import keras
from keras import layers

from kgan.config import TrainConfig
from kgan.nn import fast
from kgan.nn.layers import InstanceNormalization


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
        x = fast.Conv2D(filters, 4, strides=2, padding="same", use_bias=False)(x)
        if 0 < i < steps - 1:  # none on the first layer and the 1x1 bottleneck
            x = _instance_norm()(x)
        x = layers.LeakyReLU(0.2)(x)
        skips.append(x)
    for i, filters in enumerate(reversed(widths[:-1])):
        x = fast.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = _instance_norm()(x)
        if i < 3:  # seeded: without a seed, torch's dropout draws from its global generator
            x = layers.Dropout(0.5, seed=config.seed + i)(x)
        x = layers.ReLU()(layers.Concatenate()([x, skips[-2 - i]]))
    out = fast.Conv2DTranspose(out_channels, 4, strides=2, padding="same", activation="tanh",
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
    x = fast.Conv2D(f, 7, padding="same", use_bias=False)(images)
    x = layers.ReLU()(_instance_norm()(x))
    for filters in (2 * f, 4 * f):
        x = fast.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_instance_norm()(x))
    for _ in range(9 if size >= 256 else 6):
        y = fast.Conv2D(4 * f, 3, padding="same", use_bias=False)(x)
        y = layers.ReLU()(_instance_norm()(y))
        y = _instance_norm()(fast.Conv2D(4 * f, 3, padding="same", use_bias=False)(y))
        x = layers.Add()([x, y])
    for filters in (2 * f, f):
        x = fast.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_instance_norm()(x))
    out = fast.Conv2D(out_channels, 7, padding="same", activation="tanh", name="translated",
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
        x = fast.Conv2D(config.base_filters * 2**i, 4, strides=2, padding="same")(x)
        if i:
            x = _instance_norm()(x)
        x = layers.LeakyReLU(0.2)(x)
        side //= 2
    x = fast.Conv2D(config.base_filters * 8, 4, padding="same")(x)
    x = layers.LeakyReLU(0.2)(_instance_norm()(x))
    logits = fast.Conv2D(1, 4, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


