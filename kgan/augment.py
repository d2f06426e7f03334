"""DiffAugment (Zhao et al. 2020): differentiable augmentations of D's inputs, in `keras.ops`.

The same policies are applied to real and to fake images before the discriminator, in its
update and in the generator's; gradients flow through them to the generator. Random
parameters come in as uniforms `u` of shape `(n, num_params(policies))`, drawn by the caller
from the model's SeedGenerator, so augmented runs resume exactly and run on every backend.

Adaptive (ADA, Karras et al. 2020): each policy is applied to each image with probability p,
one more uniform per policy deciding. p = 0 leaves the images as they are.
"""

from __future__ import annotations

from keras import ops

TRANSLATION_RATIO = 0.125  # largest shift, as a fraction of the image side
CUTOUT_RATIO = 0.5  # side of the erased square, as a fraction of the image side
PARAMS = {"translation": 2, "cutout": 2, "color": 3}  # uniforms each policy takes per image


def num_params(policies, adaptive: bool = False) -> int:
    """Uniforms per image: each policy's, and with `adaptive` one more per policy."""
    return sum(PARAMS[policy] + adaptive for policy in policies)


def apply(x, policies, u, p=None):
    """Augments images `x` (N, H, W, C) with `policies` in order, using uniforms `u` (N, k);
    with a probability `p` (a scalar), each policy only where its extra uniform is below p."""
    i = 0
    for policy in policies:
        augmented = _FUNCTIONS[policy](x, u[:, i : i + PARAMS[policy]])
        i += PARAMS[policy]
        if p is None:
            x = augmented
        else:
            chosen = ops.cast(u[:, i] < ops.cast(p, u.dtype), x.dtype)[:, None, None, None]
            x = x + chosen * (augmented - x)
            i += 1
    return x


def color(x, u):
    """Brightness +-0.5, saturation x[0, 2] and contrast x[0.5, 1.5], one draw each per image."""
    u = ops.cast(u, x.dtype)[:, None, None, :]
    x = x + (u[..., 0:1] - 0.5)
    mean = ops.mean(x, axis=-1, keepdims=True)
    x = (x - mean) * (u[..., 1:2] * 2.0) + mean
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (u[..., 2:3] + 0.5) + mean


def translation(x, u):
    """Shifts each image by up to 1/8 of its size in each direction, filling with zeros.

    Written as two batched 0/1 matrix products (rows, then columns), which are differentiable
    and need no gather: output row h takes input row h - shift.
    """
    _, height, width, _ = x.shape
    shift_h = _shift(u[:, 0], height)
    shift_w = _shift(u[:, 1], width)
    x = ops.einsum("nhk,nkwc->nhwc", _shift_matrix(shift_h, height, x.dtype), x)
    return ops.einsum("nwk,nhkc->nhwc", _shift_matrix(shift_w, width, x.dtype), x)


def cutout(x, u):
    """Sets a square of half the image's side to zero, centred anywhere in each image."""
    _, height, width, _ = x.shape
    mask_h = _band(u[:, 0], height)
    mask_w = _band(u[:, 1], width)
    keep = 1.0 - ops.cast(mask_h[:, :, None] & mask_w[:, None, :], x.dtype)
    return x * keep[..., None]


def _shift(u, size):
    limit = int(size * TRANSLATION_RATIO + 0.5)
    return ops.cast(ops.floor(u * (2 * limit + 1)), "int32") - limit


def _shift_matrix(shift, size, dtype):
    rows = ops.arange(size, dtype="int32")
    return ops.cast(ops.equal(rows[None, None, :], (rows[None, :] - shift[:, None])[..., None]),
                    dtype)


def _band(u, size):
    """Per image, which of `size` rows fall inside a cutout band of side size * CUTOUT_RATIO."""
    side = int(size * CUTOUT_RATIO + 0.5)
    start = ops.cast(ops.floor(u * (size + 1 - side % 2)), "int32") - side // 2
    rows = ops.arange(size, dtype="int32")[None, :]
    return (rows >= start[:, None]) & (rows < start[:, None] + side)


_FUNCTIONS = {"translation": translation, "cutout": cutout, "color": color}
