"""LPIPS (Zhang et al. 2018, `lpips` v0.1 with VGG16) in Keras: the perceptual distance of
`kgan project` where its weights are on the machine.

Two files, both read as data with NumPy (`kgan.fid_inception.read_torch_file`): torchvision's
ImageNet VGG16 (`vgg16-397923af.pth`, where PyTorch caches it, or `$KGAN_LPIPS_VGG`) and the
`lpips` package's linear layers (`weights/v0.1/vgg.pth`, found in an installed `lpips`, or
`$KGAN_LPIPS_LIN`).

The distance of two images is the sum over VGG16's relu1_2 .. relu5_3 features of the
spatial mean of w_c (f_a - f_b)^2, f unit-normalized over channels; `network()` gives each
image features scaled so that their squared difference sums to exactly that.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from kgan.errors import KganError
from kgan.fid_inception import read_torch_file, torch_checkpoints

VGG_FILE = "vgg16-397923af.pth"
VGG_URL = "https://download.pytorch.org/models/" + VGG_FILE
SHIFT, SCALE = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])
# VGG16's feature convolutions, by torchvision's index in `features`, in blocks; LPIPS takes
# each block's last ReLU.
BLOCKS = (((0, 64), (2, 64)), ((5, 128), (7, 128)), ((10, 256), (12, 256), (14, 256)),
          ((17, 512), (19, 512), (21, 512)), ((24, 512), (26, 512), (28, 512)))


def weights_files() -> tuple[Path, Path] | None:
    """The VGG16 and linear-layer files, if both are on this machine."""
    vgg = Path(os.environ.get("KGAN_LPIPS_VGG") or torch_checkpoints() / VGG_FILE)
    lin = os.environ.get("KGAN_LPIPS_LIN")
    if lin is None and importlib.util.find_spec("lpips") is not None:
        lin = Path(importlib.util.find_spec("lpips").origin).parent / "weights/v0.1/vgg.pth"
    lin = Path(lin) if lin else None
    return (vgg, lin) if vgg.is_file() and lin is not None and lin.is_file() else None


def network(image_shape, files: tuple[Path, Path] | None = None) -> keras.Model:
    """Images in [-1, 1] (gray tiled to RGB) -> LPIPS features (see the module); `files` the
    weights (default `weights_files()`, whose absence is one error saying where to get them)."""
    files = files or weights_files()
    if files is None:
        raise KganError(f"--distance lpips needs torchvision's VGG16 weights ({VGG_URL}, in "
                        "~/.cache/torch/hub/checkpoints/ or $KGAN_LPIPS_VGG) and the lpips "
                        "package's linear layers (pip install lpips, or $KGAN_LPIPS_LIN)")
    vgg, lin = (read_torch_file(path) for path in files)
    images = keras.Input(image_shape)
    x = images if image_shape[-1] == 3 else layers.Concatenate()([images] * 3)
    x = layers.Rescaling(1 / SCALE, -SHIFT / SCALE)(x)
    features = []
    for i, block in enumerate(BLOCKS):
        if i:
            x = layers.MaxPooling2D(2)(x)
        for index, filters in block:
            conv = layers.Conv2D(filters, 3, padding="same", activation="relu",
                                 name=f"features.{index}")
            x = conv(x)
            try:
                conv.set_weights([vgg[f"features.{index}.weight"].transpose(2, 3, 1, 0),
                                  vgg[f"features.{index}.bias"]])
            except (KeyError, ValueError) as e:
                raise KganError(f"{files[0]} is not torchvision's VGG16 state dict "
                                f"({type(e).__name__}: {e})") from None
        weight = lin.get(f"lin{i}.model.1.weight")
        if weight is None:
            raise KganError(f"{files[1]} is not lpips' VGG linear layers: it has no "
                            f"lin{i}.model.1.weight")
        scale = np.sqrt(np.maximum(weight.reshape(-1), 0) / (x.shape[1] * x.shape[2]))
        features.append(layers.Flatten()(_UnitChannels(scale)(x)))
    return keras.Model(images, layers.Concatenate()(features), name="lpips")


class _UnitChannels(layers.Layer):
    """Features unit-normalized over channels (LPIPS' `normalize_tensor`), then scaled per
    channel."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = np.asarray(scale, np.float32)

    def call(self, x):
        norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
        return x / (norm + 1e-10) * ops.convert_to_tensor(self.scale)
