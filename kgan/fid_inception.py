"""The Inception network that FIDs in papers are measured with, in Keras (`--features
fid-inception`).

pytorch-fid, TF-GAN and clean-fid all take the 2048 pool features of the InceptionV3 graph of
TensorFlow's 2015-12-05 ImageNet release, which differs from the InceptionV3 of Keras (and
torchvision) in its blocks: the average pools of the A, C and first E blocks leave the padding
out of the average, and the last E block pools by maximum. `network()` builds it as pytorch-fid's
`FIDInceptionA/C/E_1/E_2` do, and `load_weights` reads pytorch-fid's port of those weights,
`pt_inception-2015-12-05-6726825d.pth`, with NumPy alone (`read_torch_file`: no PyTorch, and
nothing in the file is run).

Images go in as pytorch-fid feeds them: RGB in [0, 1], bilinearly resized to 299 x 299 (as
`torch.nn.functional.interpolate(align_corners=False)`), then scaled to [-1, 1].
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np
from keras import layers

from kgan.errors import KganError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)
SIZE = 299


def network() -> keras.Model:
    """Images [N, 299, 299, 3] in [-1, 1] -> the 2048 pool features; each convolution and its
    batch norm are named as pytorch-fid's modules (`Mixed_5b.branch1x1.conv`, `...bn`)."""

    def conv(x, name, filters, kernel, strides=1, padding="same"):
        x = layers.Conv2D(filters, kernel, strides, padding, use_bias=False, name=f"{name}.conv")(x)
        x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}.bn")(x)
        return layers.ReLU()(x)

    def pool(x, kind):  # 3x3, stride 1; TensorFlow's average leaves the padding out
        pooling = layers.AveragePooling2D if kind == "avg" else layers.MaxPooling2D
        return pooling(3, strides=1, padding="same")(x)

    def block_a(x, name, pool_features):
        return layers.Concatenate()([
            conv(x, f"{name}.branch1x1", 64, 1),
            conv(conv(x, f"{name}.branch5x5_1", 48, 1), f"{name}.branch5x5_2", 64, 5),
            conv(conv(conv(x, f"{name}.branch3x3dbl_1", 64, 1), f"{name}.branch3x3dbl_2", 96, 3),
                 f"{name}.branch3x3dbl_3", 96, 3),
            conv(pool(x, "avg"), f"{name}.branch_pool", pool_features, 1)])

    def block_b(x, name):
        double = conv(conv(x, f"{name}.branch3x3dbl_1", 64, 1), f"{name}.branch3x3dbl_2", 96, 3)
        return layers.Concatenate()([
            conv(x, f"{name}.branch3x3", 384, 3, 2, "valid"),
            conv(double, f"{name}.branch3x3dbl_3", 96, 3, 2, "valid"),
            layers.MaxPooling2D(3, 2)(x)])

    def block_c(x, name, c7):
        seven = conv(conv(x, f"{name}.branch7x7_1", c7, 1), f"{name}.branch7x7_2", c7, (1, 7))
        double = conv(x, f"{name}.branch7x7dbl_1", c7, 1)
        for i, (filters, kernel) in enumerate([(c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)),
                                               (192, (1, 7))], start=2):
            double = conv(double, f"{name}.branch7x7dbl_{i}", filters, kernel)
        return layers.Concatenate()([
            conv(x, f"{name}.branch1x1", 192, 1),
            conv(seven, f"{name}.branch7x7_3", 192, (7, 1)), double,
            conv(pool(x, "avg"), f"{name}.branch_pool", 192, 1)])

    def block_d(x, name):
        seven = conv(x, f"{name}.branch7x7x3_1", 192, 1)
        seven = conv(seven, f"{name}.branch7x7x3_2", 192, (1, 7))
        seven = conv(seven, f"{name}.branch7x7x3_3", 192, (7, 1))
        return layers.Concatenate()([
            conv(conv(x, f"{name}.branch3x3_1", 192, 1), f"{name}.branch3x3_2", 320, 3, 2,
                 "valid"),
            conv(seven, f"{name}.branch7x7x3_4", 192, 3, 2, "valid"),
            layers.MaxPooling2D(3, 2)(x)])

    def block_e(x, name, pooling):
        three = conv(x, f"{name}.branch3x3_1", 384, 1)
        double = conv(conv(x, f"{name}.branch3x3dbl_1", 448, 1), f"{name}.branch3x3dbl_2", 384, 3)
        return layers.Concatenate()([
            conv(x, f"{name}.branch1x1", 320, 1),
            conv(three, f"{name}.branch3x3_2a", 384, (1, 3)),
            conv(three, f"{name}.branch3x3_2b", 384, (3, 1)),
            conv(double, f"{name}.branch3x3dbl_3a", 384, (1, 3)),
            conv(double, f"{name}.branch3x3dbl_3b", 384, (3, 1)),
            conv(pool(x, pooling), f"{name}.branch_pool", 192, 1)])

    images = keras.Input((SIZE, SIZE, 3), name="images")
    x = conv(images, "Conv2d_1a_3x3", 32, 3, 2, "valid")
    x = conv(x, "Conv2d_2a_3x3", 32, 3, padding="valid")
    x = conv(x, "Conv2d_2b_3x3", 64, 3)
    x = layers.MaxPooling2D(3, 2)(x)
    x = conv(x, "Conv2d_3b_1x1", 80, 1)
    x = conv(x, "Conv2d_4a_3x3", 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, 2)(x)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
        x = block_a(x, name, pool_features)
    x = block_b(x, "Mixed_6a")
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x = block_c(x, name, c7)
    x = block_d(x, "Mixed_7a")
    x = block_e(x, "Mixed_7b", "avg")
    x = block_e(x, "Mixed_7c", "max")  # FIDInceptionE_2: TensorFlow's graph pools by maximum
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(images, features, name="fid_inception")


def load_weights(model: keras.Model, path: str | Path) -> None:
    """Gives `model` (`network()`) the weights of pytorch-fid's state dict at `path`: every
    convolution and batch norm of it must be there with its shape (its classifier, `fc`, is
    not used)."""
    state = read_torch_file(path)
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            keys = [f"{layer.name}.weight"]
            values = lambda w: [w.transpose(2, 3, 1, 0)]  # noqa: E731  (O, I, H, W) -> (H, W, I, O)
        elif isinstance(layer, layers.BatchNormalization):
            keys = [f"{layer.name}.{key}" for key in ("weight", "bias", "running_mean",
                                                      "running_var")]
            values = lambda *w: list(w)  # noqa: E731
        else:
            continue
        missing = [key for key in keys if key not in state]
        if missing:
            raise KganError(f"{path} is not pytorch-fid's Inception state dict: it has no "
                            f"{missing[0]}")
        weights = values(*[state[key] for key in keys])
        if [w.shape for w in weights] != [tuple(v.shape) for v in layer.weights]:
            raise KganError(f"{path} is not pytorch-fid's Inception state dict: {keys[0]} has "
                            f"shape {state[keys[0]].shape}")
        layer.set_weights(weights)


# Reading a PyTorch file without PyTorch ---------------------------------------------------------

def torch_checkpoints() -> Path:
    """Where PyTorch keeps downloaded weights (`torch.hub`): `$TORCH_HOME/hub/checkpoints`."""
    return Path(os.environ.get("TORCH_HOME", "~/.cache/torch")).expanduser() / "hub" / \
        "checkpoints"


_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "ByteStorage": np.uint8, "CharStorage": np.int8, "BoolStorage": np.bool_}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, dtype, key: str, numel: int):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        item = self.storage.data.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], self.size, [s * item for s in self.stride]).copy()


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(tensor, *_):
    return tensor


class _Unpickler(pickle.Unpickler):
    """Rebuilds tensors from their storages and refuses every other global: a file that would
    run code (any class or function beyond these) is not a state dict."""

    GLOBALS = {("collections", "OrderedDict"): OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}

    def __init__(self, file, path):
        super().__init__(file)
        self.path, self.storages = path, {}

    def find_class(self, module, name):
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if (module, name) in self.GLOBALS:
            return self.GLOBALS[(module, name)]
        raise KganError(f"{self.path} is not a PyTorch state dict of tensors: it refers to "
                        f"{module}.{name}, which kgan does not run")

    def persistent_load(self, pid):
        _, dtype, key, _, numel, *_ = pid  # ("storage", type, key, location, numel[, view])
        if dtype not in _DTYPES.values():
            raise KganError(f"{self.path} holds tensors of a type kgan cannot read ({dtype})")
        return self.storages.setdefault(str(key), _Storage(np.dtype(dtype), str(key), int(numel)))


def read_torch_file(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a `torch.save`d state dict, as NumPy arrays by name: the zip format of
    PyTorch 1.6 on and the older one (pytorch-fid's weights are in that). Only tensors,
    storages and ordered dicts are rebuilt; anything else is refused, not run."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            zipped = zipfile.is_zipfile(f)
            f.seek(0)
            state = _read_zip(zipfile.ZipFile(f), path) if zipped else _read_legacy(f, path)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, KeyError, TypeError) as e:
        raise KganError(f"Cannot read {path} as a PyTorch state dict: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, _Tensor) for v in state.values()):
        raise KganError(f"{path} is not a PyTorch state dict of tensors")
    return {name: tensor.array() for name, tensor in state.items()}


def _read_zip(archive: zipfile.ZipFile, path: Path):
    (pickled,) = [name for name in archive.namelist() if name.endswith("/data.pkl")]
    prefix = pickled[: -len("data.pkl")]
    unpickler = _Unpickler(io.BytesIO(archive.read(pickled)), path)
    state = unpickler.load()
    for storage in unpickler.storages.values():
        storage.data = np.frombuffer(archive.read(f"{prefix}data/{storage.key}"),
                                     storage.dtype.newbyteorder("<"), storage.numel)
    return state


def _read_legacy(f, path: Path):
    header = _Unpickler(f, path)
    if header.load() != _LEGACY_MAGIC:
        raise ValueError("not a file torch.save wrote")
    header.load(), header.load()  # the protocol version and the saving machine's sizes
    unpickler = _Unpickler(f, path)
    state = unpickler.load()
    for key in _Unpickler(f, path).load():  # then each storage: its element count, its bytes
        storage = unpickler.storages[str(key)]
        numel = int(np.frombuffer(f.read(8), "<i8")[0])
        storage.data = np.frombuffer(f.read(numel * storage.dtype.itemsize),
                                     storage.dtype.newbyteorder("<"), numel)
    return state
