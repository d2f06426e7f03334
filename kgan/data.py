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


# Image-to-image data: paired (pix2pix) and unpaired (cyclegan) sides A and B ------------------

DEMOS = {  # fashion_mnist:<demo> -> what it asks the model to do
    "inpaint": "a 12x12 gray square masked out -> the whole image",
    "superres": "7x7 (shown at 28x28) -> 28x28",
    "edges": "edge map (scikit-image's Sobel, thresholded) -> the image",
    "sandals2sneakers": "unpaired: sandals (class 5) <-> sneakers (class 7)",
}
UNPAIRED_DEMOS = {"sandals2sneakers": (5, 7)}  # Fashion-MNIST classes of A and B
INPAINT_SIZE = 12  # side of the masked square


@dataclasses.dataclass
class Pairs:
    """Images of two domains A and B, float32 in [-1, 1], channels-last.

    Paired: `a[i]` translates to `b[i]`. Unpaired: any counts. `domains` are the eval
    classifier's classes of A and B, where the domains are classes (the unpaired demo).
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    paired: bool
    domains: tuple[int, int] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape of A's images (B's may differ in channels)."""
        return tuple(int(d) for d in self.a.shape[1:])

    @property
    def channels(self) -> tuple[int, int]:
        return int(self.a.shape[-1]), int(self.b.shape[-1])


def is_demo(source: str) -> bool:
    return source.startswith("fashion_mnist:")


def load_pairs(source: str, image_size: int | None = None, split: str = "train",
               paired: bool = True) -> Pairs:
    """Loads the A and B images of `source` for pix2pix (`paired`) or cyclegan.

    Args:
        source: `fashion_mnist:<demo>` (see `DEMOS`), a folder with `A/` and `B/` (test split:
            `test/A/` and `test/B/`), or an `.npz` with `x_a`, `x_b` (test: `x_a_test`,
            `x_b_test`). Paired folders pair files of the same relative path.
        image_size: resize both sides to this square size (a multiple of 4); `None` keeps
            the images' own (square) size.
        split: `"train"` or `"test"`.
        paired: whether `a[i]` must translate to `b[i]`.

    Example:
        >>> pairs = load_pairs("fashion_mnist:inpaint")
        >>> pairs.a.shape, pairs.b.shape
        ((60000, 28, 28, 1), (60000, 28, 28, 1))
    """
    if is_demo(source):
        pairs = _demo(source, split)
        if pairs.paired != paired:
            kind = "paired (--arch pix2pix)" if pairs.paired else "unpaired (--arch cyclegan)"
            raise KganError(f"Dataset {source} is {kind}")
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            a, b = _pair_folders(path, split, paired)
        elif path.suffix == ".npz" and path.is_file():
            a, b = _pair_npz(path, split, paired)
        elif path.exists():
            raise KganError(f"Dataset {source} is a file, but not an .npz: give a folder with "
                            "A/ and B/, or an .npz file with x_a and x_b")
        else:
            raise KganError(f"Dataset not found: {source} (image-to-image runs take a folder "
                            f"with A/ and B/, an .npz with x_a and x_b, or one of "
                            f"{', '.join('fashion_mnist:' + d for d in DEMOS)})")
        pairs = Pairs(_slug(path.stem if path.is_file() else path.resolve().name), a, b, paired)
    if image_size is not None:
        pairs.a, pairs.b = (side if side.shape[1:3] == (image_size, image_size)
                            else _resize_batch(side, image_size) for side in (pairs.a, pairs.b))
    height, width = pairs.a.shape[1:3]
    if height != width or height % 4:
        raise KganError(f"Images of {source} are {height}x{width}: image-to-image runs need "
                        "square sides divisible by 4 (resize with --image-size, e.g. 32)")
    return pairs


def _demo(source: str, split: str) -> Pairs:
    demo = source.split(":", 1)[1]
    if demo not in DEMOS:
        raise KganError(f"Unknown demo {source!r}. Valid demos: "
                        f"{', '.join('fashion_mnist:' + d for d in DEMOS)}")
    x, y = _load_builtin("fashion_mnist", split)
    x = _to_unit_range(x, source)
    name = f"fashion_mnist-{demo}"
    if demo in UNPAIRED_DEMOS:
        a, b = UNPAIRED_DEMOS[demo]
        return Pairs(name, x[y == a], x[y == b], paired=False, domains=(a, b))
    if demo == "inpaint":
        # One square per image at a position keyed by the split, so each split is fixed.
        rng = np.random.default_rng(0 if split == "train" else 1)
        corners = rng.integers(0, x.shape[1] - INPAINT_SIZE + 1, (len(x), 2))
        offsets = np.arange(x.shape[1])[None, :]
        inside = [(offsets >= corners[:, i : i + 1]) & (offsets < corners[:, i : i + 1]
                                                       + INPAINT_SIZE) for i in (0, 1)]
        mask = inside[0][:, :, None] & inside[1][:, None, :]
        inputs = np.where(mask[..., None], 0.0, x).astype(np.float32)
    elif demo == "superres":
        n, h, w, c = x.shape
        small = x.reshape(n, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))  # 4x4 block means
        inputs = np.repeat(np.repeat(small, 4, axis=1), 4, axis=2).astype(np.float32)
    else:  # edges
        from skimage.filters import sobel  # scikit-image loads slowly: only for this demo

        magnitude = sobel((x[..., 0] + 1.0) / 2.0, axis=(1, 2))
        inputs = np.where(magnitude > 0.1, 1.0, -1.0).astype(np.float32)[..., None]
    return Pairs(name, inputs, x, paired=True)


def _pair_folders(root: Path, split: str, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    base = root if split == "train" else root / split
    sides = [base / "A", base / "B"]
    for side in sides:
        if not side.is_dir():
            where = "" if split == "train" else f" (the {split} split)"
            raise KganError(f"{root} has no {side.relative_to(root)}/ folder{where}: image-to-"
                            "image data is a folder with A/ (inputs) and B/ (targets)")
    files = [{p.relative_to(side): p for p in side.rglob("*")
              if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
              and not (split == "train" and p.is_relative_to(root / "test"))}
             for side in sides]
    for side, found in zip(sides, files):
        if not found:
            raise KganError(f"No .png/.jpg images found in {side}")
    if paired:
        for one, other, other_side in ((files[0], files[1], sides[1]),
                                       (files[1], files[0], sides[0])):
            missing = sorted(set(one) - set(other))
            if missing:
                raise KganError(f"{one[missing[0]]} has no partner {other_side / missing[0]} "
                                "(paired data needs files of the same names in A/ and B/)")
        names = sorted(files[0])
        ordered = [[found[name] for name in names] for found in files]
    else:
        ordered = [sorted(found.values()) for found in files]
    a, b = (_read_side(paths) for paths in ordered)
    if paired:
        for pa, pb, ia, ib in zip(ordered[0], ordered[1], a, b):
            if ia.shape[:2] != ib.shape[:2]:
                raise KganError(f"{pa} is {ia.shape[1]}x{ia.shape[0]} but {pb} is "
                                f"{ib.shape[1]}x{ib.shape[0]}: a pair must be the same size")
    return tuple(_stack_side(images, paths) for images, paths in zip((a, b), ordered))


def image_files(path: Path) -> list[Path]:
    """`path` itself if it is an image file, else the png/jpg files under it, sorted."""
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise KganError(f"{path} is not a .png or .jpg image")
        return [path]
    if not path.is_dir():
        raise KganError(f"No such image or folder: {path}")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file())
    if not files:
        raise KganError(f"No .png/.jpg images found in {path}")
    return files


def read_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image file as uint8 (size, size, channels): any depth converted, resized (bicubic)
    if it has another size."""
    try:
        with Image.open(path) as img:
            img.load()
            img = _eight_bit(img).convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise KganError(f"Cannot read image {path}: {e}") from None
    array = _resize_pil(img, size)
    return array[..., None] if array.ndim == 2 else array


def _read_side(paths: list[Path]) -> list[np.ndarray]:
    """uint8 arrays of the images (gray as (H, W, 1) when every image of the side is gray)."""
    images, modes = [], set()
    for path in paths:
        try:
            with Image.open(path) as img:
                img.load()
                img = _eight_bit(img)
                modes.add("L" if img.mode in ("1", "L", "LA") else "RGB")
                images.append(img.copy())
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise KganError(f"Cannot read image {path}: {e}") from None
    mode = "L" if modes == {"L"} else "RGB"
    arrays = [np.asarray(img.convert(mode), dtype=np.uint8) for img in images]
    return [a[..., None] if a.ndim == 2 else a for a in arrays]


def _stack_side(images: list[np.ndarray], paths: list[Path]) -> np.ndarray:
    for image, path in zip(images, paths):
        if image.shape != images[0].shape:
            raise KganError(f"{path} is {image.shape[1]}x{image.shape[0]} but {paths[0]} is "
                            f"{images[0].shape[1]}x{images[0].shape[0]}: give --image-size to "
                            "resize them all")
    return _to_unit_range(np.stack(images), str(paths[0].parent))


def _pair_npz(path: Path, split: str, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    suffix = "" if split == "train" else f"_{split}"
    keys = (f"x_a{suffix}", f"x_b{suffix}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [key for key in keys if key not in f.files]
            if missing:
                raise KganError(f"{path} has no `{missing[0]}` array (found: "
                                f"{', '.join(f.files) or 'nothing'})")
            sides = [f[key] for key in keys]
    except KganError:
        raise
    except Exception as e:
        raise KganError(f"Cannot read {path}: {first_line(e)}") from None
    for key, x in zip(keys, sides):
        if x.dtype.kind not in "uifb" or x.ndim not in (3, 4) or len(x) == 0 or (
                x.ndim == 4 and x.shape[-1] not in (1, 3)):
            raise KganError(f"`{key}` in {path} must hold numbers of shape (N, H, W) or "
                            f"(N, H, W, 1|3) with N > 0. Received: shape={x.shape}, "
                            f"dtype={x.dtype}")
    a, b = (x[..., None] if x.ndim == 3 else x for x in sides)
    if paired and (len(a) != len(b) or a.shape[1:3] != b.shape[1:3]):
        raise KganError(f"`{keys[0]}` and `{keys[1]}` in {path} must pair up: the same number "
                        f"of images of the same size. Received: shapes {a.shape} and {b.shape}")
    if a.shape[1:3] != b.shape[1:3]:
        raise KganError(f"`{keys[0]}` and `{keys[1]}` in {path} must hold images of the same "
                        f"size. Received: shapes {a.shape} and {b.shape}")
    return _to_unit_range(a, f"{path} {keys[0]}"), _to_unit_range(b, f"{path} {keys[1]}")
