"""kgan's own layers, in `keras.ops`: those of the residual (`resnet`), style-based (`stylegan`)
and image-to-image architectures.

Each is a serializable Keras layer, so the generator stays a named Functional model that
`export` takes as it is. Random draws inside a layer (StyleGAN2's per-pixel noise, style
mixing) come from the layer's own `SeedGenerator`, whose state is one of the generator's
variables: it is saved in checkpoints and a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math

import keras
from keras import layers, ops

from kgan.nn.fast import BatchNormalization, Conv2D

register = keras.saving.register_keras_serializable(package="kgan")


def spectral(layer: layers.Layer, spectral_norm: bool) -> layers.Layer:
    """`layer`, wrapped in Keras' `SpectralNormalization` (same dtype policy) if `spectral_norm`."""
    return layers.SpectralNormalization(layer, dtype=layer.dtype_policy) if spectral_norm \
        else layer


@register
class ConditionalBatchNormalization(layers.Layer):
    """BatchNorm whose scale and offset are looked up per class (categorical conditional
    BatchNorm, Miyato & Koyama 2018; BigGAN's G conditions the same way, through a shared
    embedding and chunks of z that kgan leaves out). Inputs: `[x, label]`."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.norm = BatchNormalization(center=False, scale=False,
                                       dtype=self.dtype_policy)

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.norm.build(input_shape[0])
        self.gamma = self.add_weight(shape=(self.num_classes, channels), initializer="ones",
                                     name="gamma")
        self.beta = self.add_weight(shape=(self.num_classes, channels), initializer="zeros",
                                    name="beta")

    def call(self, inputs, training=False):
        x, label = inputs
        x = self.norm(x, training=training)
        gamma = ops.take(ops.cast(self.gamma, x.dtype), label, axis=0)[:, None, None, :]
        beta = ops.take(ops.cast(self.beta, x.dtype), label, axis=0)[:, None, None, :]
        return x * gamma + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@register
class SelfAttention(layers.Layer):
    """SAGAN's self-attention (Zhang et al. 2019), as BigGAN uses it: 1x1 convs to queries
    (C/8), keys (C/8, 2x2 max-pooled) and values (C/2, pooled), softmax attention over the
    positions, a 1x1 conv back to C, added to the input scaled by a learned gamma (from 0)."""

    def __init__(self, spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.keys, self.values = max(channels // 8, 1), max(channels // 2, 1)

        def conv(filters, width, name):
            layer = spectral(Conv2D(filters, 1, use_bias=False, name=name,
                                    dtype=self.dtype_policy), self.spectral_norm)
            layer.build(tuple(input_shape[:-1]) + (width,))
            return layer

        self.query = conv(self.keys, channels, "query")
        self.key = conv(self.keys, channels, "key")
        self.value = conv(self.values, channels, "value")
        self.out = conv(channels, self.values, "out")
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")

    def call(self, x, training=False):
        _, height, width, _ = x.shape
        pooled = (height // 2) * (width // 2)
        q = ops.reshape(self.query(x, training=training), (-1, height * width, self.keys))
        k = ops.reshape(ops.max_pool(self.key(x, training=training), 2, 2),
                        (-1, pooled, self.keys))
        v = ops.reshape(ops.max_pool(self.value(x, training=training), 2, 2),
                        (-1, pooled, self.values))
        attention = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))), axis=-1)
        o = ops.reshape(ops.matmul(attention, v), (-1, height, width, self.values))
        return x + ops.cast(self.gamma, x.dtype) * self.out(o, training=training)

    def get_config(self):
        return {**super().get_config(), "spectral_norm": self.spectral_norm}


@register
class GlobalSumPooling(layers.Layer):
    """The sum over height and width of each channel (SNGAN's and BigGAN's D head)."""

    def call(self, x):
        return ops.sum(x, axis=(1, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


# StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

SEED_STATE_KEY = "seed_state"


class SavesSeedState:
    """Saves a layer's `seed_generator` state with its weights: Keras leaves a layer's
    SeedGenerator out of checkpoints, and a resumed run would draw its first noise again."""

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if getattr(self, "seed_generator", None) is not None:
            store[SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        super().load_own_variables({key: store[key] for key in store.keys() if key.isdigit()})
        if getattr(self, "seed_generator", None) is not None and SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])


@register
class PixelNorm(layers.Layer):
    """z / sqrt(mean(z^2) + 1e-8): the mapping network's input normalization."""

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-8)


@register
class Truncation(layers.Layer):
    """Tracks the average style w_avg while training (a moving average with `decay`, as
    StyleGAN2's `w_avg_beta`) and, when not training, returns w_avg + psi (w - w_avg): the
    truncation trick. Inputs: `[w, psi]`, psi one value per row (1 = no truncation)."""

    def __init__(self, decay: float = 0.995, **kwargs):
        super().__init__(**kwargs)
        self.decay = float(decay)

    def build(self, input_shape):
        self.w_avg = self.add_weight(shape=(input_shape[0][-1],), initializer="zeros",
                                     trainable=False, name="w_avg", aggregation="mean",
                                     autocast=False)  # float32 under mixed precision

    def call(self, inputs, training=False):
        w, psi = inputs
        average = ops.cast(self.w_avg, w.dtype)
        if training:
            batch_mean = ops.stop_gradient(ops.mean(ops.cast(w, "float32"), axis=0))
            self.w_avg.assign(self.decay * self.w_avg + (1.0 - self.decay) * batch_mean)
            return w
        return average + ops.cast(psi, w.dtype)[:, None] * (w - average)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}


# What replaces a layer's own result while kgan inverts a generator (`kgan.project`): the styles
# of `StyleMixing` (w+ under optimization) and the noise images of `ModulatedConv2D`, by layer.
# Kept outside the layers so that they never become weights of the model, nor saved with it.
_REPLACED: dict[int, object] = {}


@contextlib.contextmanager
def replaced(values: dict):
    """Within it, each layer of `values` (a `StyleMixing` or a `ModulatedConv2D`) returns, when
    not training, the given tensor or variable instead: styles (N, num_ws, w_dim) or noise
    images (N, H, W, 1)."""
    _REPLACED.update({id(layer): value for layer, value in values.items()})
    try:
        yield
    finally:
        for layer in values:
            _REPLACED.pop(id(layer), None)


@register
class StyleMixing(SavesSeedState, layers.Layer):
    """Broadcasts w to the `num_ws` layers of the synthesis network, shape (N, num_ws, w_dim).

    While training, with `probability` per image, the layers from a random cut-off on take
    another style (style mixing regularization). StyleGAN2 maps a second z for it; here the
    second style is the w of the next image in the batch, which is as independent of the first
    (the z's are i.i.d.) and costs no second pass through the mapping network.
    """

    def __init__(self, num_ws: int, probability: float = 0.9, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_ws, self.probability, self.seed = int(num_ws), float(probability), seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="mixing")

    def call(self, w, training=False):
        if not training and id(self) in _REPLACED:
            return ops.cast(_REPLACED[id(self)], w.dtype)
        ws = ops.repeat(w[:, None, :], self.num_ws, axis=1)
        if not training or not self.probability:
            return ws
        n = ops.shape(w)[0]
        mixed = ops.roll(ws, 1, axis=0)
        u = keras.random.uniform((n,), seed=self.seed_generator)
        cutoff = keras.random.randint((n,), 1, self.num_ws, seed=self.seed_generator)
        take = (u < self.probability)[:, None] & (
            ops.arange(self.num_ws)[None, :] >= cutoff[:, None])
        return ops.where(take[..., None], mixed, ws)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_ws, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_ws": self.num_ws, "probability": self.probability,
                "seed": self.seed}


@register
class ConstantInput(layers.Layer):
    """The synthesis network's learned 4x4 (or `side` x `side`) start, one copy per row of
    the styles it is given."""

    def __init__(self, side: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.side, self.channels = int(side), int(channels)

    def build(self, input_shape):
        self.constant = self.add_weight(shape=(1, self.side, self.side, self.channels),
                                        initializer="random_normal", name="constant")

    def call(self, ws):
        constant = ops.cast(self.constant, self.compute_dtype)
        return ops.repeat(constant, ops.shape(ws)[0], axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.side, self.side, self.channels)

    def get_config(self):
        return {**super().get_config(), "side": self.side, "channels": self.channels}


@register
class ModulatedConv2D(SavesSeedState, layers.Layer):
    """A StyleGAN2 convolution: the style `ws[:, index]`, through a learned affine map (bias
    1), scales the input channels; with `demodulate`, each output channel is divided by the
    norm its modulated weights would have. Then, with `noise`, per-pixel Gaussian noise times a
    learned strength (from 0), the bias and LeakyReLU(0.2) x sqrt(2) (`activate`).

    Computed as scale-inputs, convolve, scale-outputs: StyleGAN2's `fused_modconv=False` form,
    the same maths as its grouped convolution and plain convolutions on every backend. When
    not training, the noise is a fixed image drawn once (StyleGAN2-ADA's `noise_mode='const'`),
    so a generator draws the same image for the same z. Inputs: `[x, ws]`.
    """

    def __init__(self, filters: int, kernel_size: int, index: int, demodulate: bool = True,
                 noise: bool = True, activate: bool = True, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.index = int(filters), int(kernel_size), int(index)
        self.demodulate, self.noise, self.activate = bool(demodulate), bool(noise), bool(activate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise") if noise else None

    def build(self, input_shape):
        (_, height, width, channels), (_, _, w_dim) = input_shape
        fan_in = channels * self.kernel_size**2
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(fan_in)),
            name="kernel")
        self.affine = self.add_weight(shape=(w_dim, channels), initializer="glorot_uniform",
                                      name="affine")
        self.affine_bias = self.add_weight(shape=(channels,), initializer="ones",
                                           name="affine_bias")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        if self.noise:
            self.noise_strength = self.add_weight(shape=(), initializer="zeros",
                                                  name="noise_strength")
            self.const_noise = self.add_weight(
                shape=(height, width, 1), trainable=False, name="const_noise",
                initializer=keras.initializers.RandomNormal(seed=self.seed))

    def call(self, inputs, training=False):
        x, ws = inputs
        dtype = x.dtype
        style = ops.matmul(ops.cast(ws[:, self.index], dtype), ops.cast(self.affine, dtype)) \
            + ops.cast(self.affine_bias, dtype)
        kernel = ops.cast(self.kernel, dtype)
        x = ops.conv(x * style[:, None, None, :], kernel, padding="same")
        if self.demodulate:  # 1 / ||w_ijk * s_i|| over inputs i and the kernel's taps
            norms = ops.matmul(ops.square(style), ops.sum(ops.square(kernel), axis=(0, 1)))
            x = x * ops.rsqrt(norms + 1e-8)[:, None, None, :]
        if self.noise:
            x = x + ops.cast(self.noise_strength, dtype) * self.draw_noise(x, training)
        x = x + ops.cast(self.bias, dtype)
        if self.activate:
            x = ops.leaky_relu(x, 0.2) * math.sqrt(2.0)
        return x

    def draw_noise(self, x, training):
        """Per-pixel noise, (N, H, W, 1): fresh while training, else the fixed image."""
        if not training:
            if id(self) in _REPLACED:
                return ops.cast(_REPLACED[id(self)], x.dtype)
            return ops.cast(self.const_noise, x.dtype)[None]
        shape = (ops.shape(x)[0], x.shape[1], x.shape[2], 1)
        return ops.cast(keras.random.normal(shape, seed=self.seed_generator), x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "index": self.index, "demodulate": self.demodulate, "noise": self.noise,
                "activate": self.activate, "seed": self.seed}


@register
class MinibatchStdDev(layers.Layer):
    """One more feature map: the standard deviation of each feature over the batch, averaged
    (ProGAN's minibatch standard deviation over the whole batch; StyleGAN2 takes groups of 4,
    which needs batches divisible by 4)."""

    def call(self, x):
        x32 = ops.cast(x, "float32")
        std = ops.sqrt(ops.var(x32, axis=0) + 1e-8)
        feature = ops.ones_like(x32[..., :1]) * ops.mean(std)
        return ops.concatenate([x, ops.cast(feature, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)


@register
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
