"""Keras layers that run faster on JAX and PyTorch: the backends' fast paths, in one place.

Each is the Keras layer of the same name (same weights, outputs and config) with a `call`
that takes a faster route on one backend, measured in issue 18; other backends, and settings
these paths do not cover, run Keras' own. jax and torch are imported only on their backend.
"""

from __future__ import annotations

import keras
from keras import layers, ops

register = keras.saving.register_keras_serializable(package="kgan")


@register
class Conv2DTranspose(layers.Conv2DTranspose):
    """Keras' `Conv2DTranspose` (same weights, outputs and config), run faster on JAX and
    PyTorch (issue 18; other backends, and settings these paths do not cover, run Keras' own).

    - JAX differentiates a transposed convolution with respect to its kernel as a convolution
      with a dilated input, which XLA's CPU backend ran at 3.6 GFLOP/s for the DCGAN's
      128 -> 64 layer. The same gradient is the kernel gradient of the layer's adjoint (a
      strided convolution of the output gradient, ~75 GFLOP/s): that one is taken instead.
    - Keras' torch backend computes the full `(in - 1) * s + k` output and crops it to `same`
      size; where the crop is symmetric, torch's `padding` computes only the kept part (2.2x
      faster for that layer, forward and backward).
    """

    def call(self, inputs):
        backend = keras.backend.backend()
        if backend == "jax":
            outputs = _jax_conv_transpose(self)(inputs, ops.convert_to_tensor(self.kernel))
            return _bias_and_activation(self, outputs)
        padding = self._torch_padding() if backend == "torch" else None
        if padding is None:
            return super().call(inputs)
        import torch

        return _torch_nhwc(torch.nn.functional.conv_transpose2d, self, inputs, padding)

    def _torch_padding(self) -> tuple[int, int] | None:
        """torch's symmetric `padding` that gives Keras' `same` output, if one does."""
        if (self.padding != "same" or self.output_padding is not None
                or tuple(self.dilation_rate) != (1, 1) or self.data_format != "channels_last"):
            return None
        crops = [k - s for k, s in zip(self.kernel_size, self.strides)]
        return None if any(c < 0 or c % 2 for c in crops) else tuple(c // 2 for c in crops)


@register
class Conv2D(layers.Conv2D):
    """Keras' `Conv2D` (same weights, outputs and config), run faster on PyTorch.

    Keras' torch backend copies NHWC inputs into contiguous NCHW before each convolution;
    here torch gets the NHWC tensor as an NCHW view (its channels-last memory format, which
    oneDNN runs faster: 54 vs 68 ms forward and backward for the DCGAN's 64 -> 128 layer),
    where `same` padding is symmetric. Other backends and settings run Keras' own.
    """

    def call(self, inputs):
        padding = self._torch_padding(inputs.shape) if keras.backend.backend() == "torch" \
            else None
        if padding is None:
            return super().call(inputs)
        import torch

        return _torch_nhwc(torch.nn.functional.conv2d, self, inputs, padding)

    def _torch_padding(self, shape) -> tuple[int, int] | None:
        """torch's symmetric `padding` for Keras' `padding` on inputs of `shape`, if one is."""
        if (self.groups != 1 or tuple(self.dilation_rate) != (1, 1)
                or self.data_format != "channels_last"):
            return None
        if self.padding == "valid":
            return (0, 0)
        totals = [max((-(-n // s) - 1) * s + k - n, 0)
                  for n, k, s in zip(shape[1:3], self.kernel_size, self.strides)]
        return None if any(t % 2 for t in totals) else tuple(t // 2 for t in totals)


@register
class BatchNormalization(layers.BatchNormalization):
    """Keras' `BatchNormalization` (same weights, outputs, statistics and config), whose
    training pass on PyTorch is torch's fused `batch_norm` instead of Keras' chain of `ops`
    (moments, then normalize, each element-wise op a pass over the batch, and as many again
    backward); the moving statistics move as Keras moves them. Other backends and settings
    (masks, renorm, synchronized, an axis other than the last) run Keras' own."""

    def call(self, inputs, training=None, mask=None):
        if (keras.backend.backend() != "torch" or not (training and self.trainable)
                or mask is not None or self.renorm or self.synchronized
                or self.axis not in (-1, len(inputs.shape) - 1)):
            return super().call(inputs, training=training, mask=mask)
        import torch

        x = ops.convert_to_tensor(inputs).float()  # float32, as Keras computes BatchNorm
        with torch.no_grad():
            variance, mean = torch.var_mean(x, dim=tuple(range(x.ndim - 1)), correction=0)
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving.value * self.momentum + batch * (1.0 - self.momentum))
        gamma = ops.convert_to_tensor(self.gamma).float() if self.scale else None
        beta = ops.convert_to_tensor(self.beta).float() if self.center else None
        outputs = torch.nn.functional.batch_norm(  # channels first, as a view
            x.movedim(-1, 1), None, None, gamma, beta, training=True, eps=self.epsilon)
        return ops.cast(outputs.movedim(1, -1), self.compute_dtype)


def _torch_nhwc(function, layer, inputs, padding):
    """torch's `function` (`conv2d` or `conv_transpose2d`) of `layer` on NHWC `inputs`, passed
    as NCHW views (channels-last memory), with torch's symmetric `padding`; then bias and
    activation. Keras' kernels, (kh, kw, in, out) and (kh, kw, out, in), are torch's
    (out, in, kh, kw) and (in, out, kh, kw) as the same view."""
    outputs = function(ops.convert_to_tensor(inputs).permute(0, 3, 1, 2),
                       ops.convert_to_tensor(layer.kernel).permute(3, 2, 0, 1),
                       stride=layer.strides, padding=padding)
    return _bias_and_activation(layer, outputs.permute(0, 2, 3, 1))


def _bias_and_activation(layer, outputs):
    """The rest of a Keras convolution's `call`: bias (if any), then the activation."""
    if layer.use_bias:
        outputs = outputs + ops.cast(layer.bias, outputs.dtype)
    return outputs if layer.activation is None else layer.activation(outputs)


def _jax_conv_transpose(layer: layers.Conv2DTranspose):
    """`ops.conv_transpose` with the layer's settings, as a JAX function of (inputs, kernel)
    whose kernel gradient goes through the adjoint (see `Conv2DTranspose`)."""
    import jax

    def forward(x, kernel):
        return ops.conv_transpose(x, kernel, strides=list(layer.strides), padding=layer.padding,
                                  output_padding=layer.output_padding,
                                  dilation_rate=layer.dilation_rate, data_format=layer.data_format)

    @jax.custom_vjp
    def conv_transpose(x, kernel):
        return forward(x, kernel)

    def backward(saved, dy):
        x, kernel = saved

        def adjoint(kernel):  # A^T dy for y = A x: a plain strided convolution of dy
            return jax.vjp(lambda x: forward(x, kernel), x)[1](dy)[0]

        # <A x, dy> = <x, A^T dy>: its kernel gradient is the adjoint's, pulled back at x.
        dx, pullback = jax.vjp(adjoint, kernel)
        return dx, pullback(x)[0]

    conv_transpose.defvjp(lambda x, kernel: (forward(x, kernel), (x, kernel)), backward)
    return conv_transpose
