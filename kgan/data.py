"""Datasets: a named source -> float32 images in [-1, 1], channels-last, optional labels.

Backend-neutral (NumPy and Pillow only). Each trainer turns the arrays into batches
its own way (`kgan.trainers.<backend>.make_dataset`).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from kgan.config import BUILTIN_DATASETS, MAX_CLASSES
from kgan.errors import KganError, first_line

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class Dataset:
    """Training images and labels held in memory."""

    name: str  # short name for run directories ("fashion_mnist", "faces", ...)
    x: np.ndarray  # float32 (N, H, W, C) in [-1, 1]
    y: np.ndarray | None  # int32 (N,) class labels, or None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def num_classes(self) -> int | None:
        return None if self.y is None else int(self.y.max()) + 1


def load(source: str, image_size: int | None = None, split: str = "train") -> Dataset:
    """Loads the training (or test) split of `source`.

    Args:
        source: `mnist`, `fashion_mnist`, `cifar10`, a folder of png/jpg images (searched
            recursively; the first level of sub-folders names the classes) or an `.npz` file
            with `x_train` and optionally `y_train`.
        image_size: resize images to `image_size` x `image_size`; `None` keeps the source's
            size (folders default to 64).
        split: `"train"`, or `"test"` (built-ins' test sets, `x_test`/`y_test` of an .npz).

    Returns:
        A `Dataset` with float32 images in [-1, 1].

    Example:
        >>> data = load("fashion_mnist")
        >>> data.x.shape
        (60000, 28, 28, 1)
    """
    if source in BUILTIN_DATASETS:
        x, y = _load_builtin(source, split)
        name = source
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            if split != "train":
                raise KganError(f"A folder of images has no {split} split: {source}")
            return _load_folder(path, image_size or 64)
        if path.suffix == ".npz" and path.is_file():
            x, y = load_npz(path, split)
            name = _slug(path.stem)
        elif path.is_file():
            raise KganError(f"Dataset {source} is a file, but not an .npz: give a folder of "
                            "images or an .npz file with x_train")
        elif path.suffix == ".npz" or os.sep in source or path.suffix:
            raise KganError(f"Dataset not found: {source} (no such file or folder)")
        else:
            raise KganError(
                f"Unknown dataset {source!r}. Use one of {', '.join(BUILTIN_DATASETS)}, "
                "a folder of images or an .npz file with x_train."
            )
    x = _to_unit_range(x, source)
    if image_size is not None and x.shape[1:3] != (image_size, image_size):
        x = _resize_batch(x, image_size)
    return Dataset(name=name, x=x, y=y)


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzip-compressed if its name ends in `.gz`."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise KganError(f"Cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise KganError(f"Not an unsigned-byte IDX file: {path}")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(shape)):
        raise KganError(f"Truncated IDX file {path}: header says shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_npz(path: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray | None]:
    """Reads `x_<split>` (N, H, W) or (N, H, W, C) and optional `y_<split>` from an .npz file."""
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise KganError(f"Cannot read {path}: it is a single .npy array, not an .npz "
                            "archive (numpy.savez writes one, with x_train and y_train)")
        with archive as f:
            if x_key not in f.files:
                raise KganError(
                    f"{path} has no `{x_key}` array (found: {', '.join(f.files) or 'nothing'})"
                )
            x = f[x_key]
            y = f[y_key] if y_key in f.files else None
    except KganError:
        raise
    except Exception as e:
        raise KganError(f"Cannot read {path}: {e}") from None
    if x.dtype.kind not in "uifb":
        raise KganError(f"`{x_key}` in {path} must hold numbers. Received: dtype={x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0 or x.shape[-1] not in (1, 3):
        raise KganError(
            f"`{x_key}` in {path} must have shape (N, H, W) or (N, H, W, 1|3) with N > 0. "
            f"Received: shape={x.shape}"
        )
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise KganError(f"`{y_key}` in {path} has {len(y)} labels for {len(x)} images")
        y = _class_numbers(y, f"`{y_key}` in {path}")
    return x, y


def _class_numbers(y: np.ndarray, what: str) -> np.ndarray:
    """`y` as int32 class numbers; anything but integers in [0, MAX_CLASSES) raises."""
    if y.dtype.kind not in "uifb":
        raise KganError(f"{what} must hold class numbers. Received: dtype={y.dtype}")
    bad = ~np.isfinite(y) if y.dtype.kind == "f" else np.zeros(y.shape, bool)
    bad |= np.nan_to_num(y) < 0
    bad |= np.nan_to_num(y) >= MAX_CLASSES
    bad |= np.nan_to_num(y) != np.round(np.nan_to_num(y))
    if bad.any():
        raise KganError(f"{what} must hold class numbers: integers in [0, {MAX_CLASSES}). "
                        f"Received: {y[bad][0]!r}")
    return y.astype(np.int32)


def _load_builtin(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise KganError(f"`split` must be train or test. Received: split={split}")
    prefix = DEBIAN_FASHION_MNIST / ("train" if split == "train" else "t10k")
    if name == "fashion_mnist" and Path(f"{prefix}-images-idx3-ubyte.gz").exists():
        x = read_idx(f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(f"{prefix}-labels-idx1-ubyte.gz")
        return x[..., None], y.astype(np.int32)
    import keras  # the download path; imported late because it loads the backend

    loaders = {
        "mnist": keras.datasets.mnist.load_data,
        "fashion_mnist": keras.datasets.fashion_mnist.load_data,
        "cifar10": keras.datasets.cifar10.load_data,
    }
    try:
        train, test = loaders[name]()
    except Exception as e:
        hint = {
            "mnist": "put mnist.npz in ~/.keras/datasets/",
            "fashion_mnist": "run `apt-get install dataset-fashion-mnist` (Debian) or put the "
            "four *-ubyte.gz files in ~/.keras/datasets/fashion-mnist/",
            "cifar10": "extract cifar-10-python.tar.gz to ~/.keras/datasets/cifar-10-batches-py/",
        }[name]
        raise KganError(
            f"Cannot load {name}: download failed ({first_line(e)}). Offline: {hint}") from None
    x, y = train if split == "train" else test
    if x.ndim == 3:
        x = x[..., None]
    return x, np.asarray(y).reshape(-1).astype(np.int32)


def _load_folder(root: Path, image_size: int) -> Dataset:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise KganError(f"No .png/.jpg images found in {root}")
    # The first level of sub-folders names the classes; images directly in `root` have none.
    class_names = sorted({p.relative_to(root).parts[0] for p in files if p.parent != root})
    labeled = bool(class_names) and all(p.parent != root for p in files)
    images, modes = [], set()
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                img = _eight_bit(img)
                modes.add("L" if img.mode in ("1", "L", "LA") else "RGB")
                images.append(img.copy())
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise KganError(f"Cannot read image {path}: {e}") from None
    mode = "L" if modes == {"L"} else "RGB"
    x = np.stack([_resize_pil(img.convert(mode), image_size) for img in images])
    if x.ndim == 3:
        x = x[..., None]
    y = None
    if labeled:
        index = {name: i for i, name in enumerate(class_names)}
        y = np.array([index[p.relative_to(root).parts[0]] for p in files], dtype=np.int32)
    return Dataset(name=_slug(root.resolve().name), x=_to_unit_range(x, str(root)), y=y)


def _eight_bit(img):
    """16- and 32-bit gray images as 8-bit gray, scaled by their mode's range (Pillow's own
    conversion clips them, so that nearly every pixel reads as white)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max() <= 65535 else 2.0**32 - 1
        return Image.fromarray(np.round(np.clip(values, 0, top) / top * 255).astype(np.uint8),
                               mode="L")
    if img.mode == "F":  # floats: taken as [0, 1]
        values = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
        return Image.fromarray(np.round(values * 255).astype(np.uint8), mode="L")
    return img


def _resize_pil(img, size: int) -> np.ndarray:
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def _resize_batch(x: np.ndarray, size: int) -> np.ndarray:
    """Resizes float images in [-1, 1] with Pillow (per channel, bicubic, clipped)."""
    out = np.empty((x.shape[0], size, size, x.shape[3]), dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[3]):
            channel = Image.fromarray(x[i, :, :, c], mode="F")
            out[i, :, :, c] = np.asarray(channel.resize((size, size), Image.Resampling.BICUBIC))
    return np.clip(out, -1.0, 1.0)


def _to_unit_range(x: np.ndarray, source: str) -> np.ndarray:
    """Maps uint8 [0, 255], float [0, 1] or float [-1, 1] images to float32 [-1, 1]."""
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / 127.5 - 1.0).astype(np.float32)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise KganError(f"Images in {source} contain NaN or inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return x * 2.0 - 1.0
    if lo >= -1.0 and hi <= 1.0:
        return x
    if lo >= 0.0 and hi <= 255.0:
        return x / 127.5 - 1.0
    raise KganError(
        f"Images in {source} must be uint8, or floats in [0, 1], [-1, 1] or [0, 255]. "
        f"Received: values in [{lo:g}, {hi:g}]"
    )


def _slug(name: str) -> str:
    """A name for run directories: ASCII letters, digits, '-' and '_' (others become '_')."""
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_"
                   for c in name).strip("_")
    return slug or "data"
