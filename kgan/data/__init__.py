"""Datasets: a named source -> images read by index, float32 in [-1, 1] a batch at a time.

Backend-neutral (NumPy and Pillow only). A source is indexed, never decoded whole into memory:
built-ins and `.npz`/`.npy` arrays are read as they are (memory-mapped where the file allows),
and encoded images (folders, zips, TFRecords, TFDS) are decoded once into a uint8 pack on disk
(`kgan.data.pack`) that is memory-mapped. Each trainer batches `Images` its own way
(`kgan.trainers.<backend>.make_dataset`).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from kgan import runs
from kgan.config import BUILTIN_DATASETS, CROPS, MAX_CLASSES, one_of
from kgan.data import pack as pack_lib
from kgan.data import sources
from kgan.data.sources import IMAGE_SUFFIXES, eight_bit, resize_pil
from kgan.errors import KganError, first_line

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FOLDER_SIZE = 64  # the square side of encoded images when --image-size is not given

__all__ = ["CROPS", "IMAGE_SUFFIXES", "Dataset", "Images", "load", "load_pairs"]


class Images:
    """Images read by index: `images[indices]` is a float32 batch in [-1, 1].

    The records stay as stored (uint8, memory-mapped where the source allows; float32 in
    [-1, 1] for float sources) and only the rows asked for are read and converted. With
    `mirror`, rows N..2N-1 are rows 0..N-1 flipped left to right (StyleGAN2-ADA's --mirror).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, records: np.ndarray, rows: np.ndarray | None = None,
                 mirror: bool = False):
        self.records, self.rows, self.mirror = records, rows, mirror
        self.count = len(records) if rows is None else len(rows)  # before mirroring

    def __len__(self) -> int:
        return self.count * (2 if self.mirror else 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.records.shape[1:])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.records.shape[1:])

    def stored(self, index) -> np.ndarray:
        """The rows at `index` (an int array, a boolean mask or a slice) as stored: uint8 or
        float32."""
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} images")
        index = index % len(self)
        base = index % self.count if self.mirror else index
        batch = np.asarray(self.records[base if self.rows is None else self.rows[base]])
        if self.mirror:
            flip = index >= self.count
            batch[flip] = batch[flip][:, :, ::-1]
        return batch

    def __getitem__(self, index):
        rest = ()
        if isinstance(index, tuple):
            index, rest = index[0], index[1:]
        if index is Ellipsis:
            index, rest = slice(None), (Ellipsis, *rest)
        if isinstance(index, (int, np.integer)):
            return to_float(self.stored(np.array([index])))[0][rest]
        batch = to_float(self.stored(index))
        return batch[(slice(None), *rest)] if rest else batch

    def __array__(self, dtype=None, copy=None):
        batch = self[:]
        return batch if dtype is None else batch.astype(dtype)

    def uint8(self, index) -> np.ndarray:
        """The rows at `index` as uint8 in [0, 255] (what `kgan data pack` writes)."""
        batch = self.stored(index)
        if batch.dtype == np.uint8:
            return batch
        return np.round((np.clip(batch, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def to_float(batch: np.ndarray) -> np.ndarray:
    """uint8 rows as float32 in [-1, 1] (float rows are stored that way already)."""
    if batch.dtype == np.uint8:
        return (batch.astype(np.float32) / 127.5 - 1.0).astype(np.float32)
    return batch


@dataclasses.dataclass
class Dataset:
    """Training images read by index, their labels, and how they are read."""

    name: str  # short name for run directories ("fashion_mnist", "faces", ...)
    x: Images  # x[indices] -> float32 (n, H, W, C) in [-1, 1]
    y: np.ndarray | None  # int32 (N,) class labels, or None
    key: str = ""  # what identifies the source's content (`key`): a resume checks it
    reading: str = ""  # how it is read, in words (`kgan data info`)
    classes: list[str] | None = None  # class names, where the source has them

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.x.image_shape

    @property
    def num_classes(self) -> int | None:
        return None if self.y is None else int(self.y.max()) + 1


def load(source: str, image_size: int | None = None, split: str = "train",
         crop: str = "center", mirror: bool = False, skip_bad: bool = False,
         progress=None) -> Dataset:
    """Loads the training (or test) split of `source`, indexed: nothing is decoded whole.

    Args:
        source: `mnist`, `fashion_mnist`, `cifar10`; a folder of png/jpg/webp images (searched
            recursively; the first level of sub-folders names the classes); a zip archive
            in StyleGAN2-ADA's layout (labels in its `dataset.json`); TFRecord shards of
            `tf.train.Example` as a file or glob; `tfds:NAME` (a prepared TFDS data set); an
            `.npz` with `x_train` (and `y_train`), or an `.npy` of images.
        image_size: resize images to `image_size` x `image_size`; `None` keeps an array's
            size (encoded images default to 64).
        split: `"train"`, or `"test"` (built-ins' test sets, `x_test`/`y_test` of an .npz,
            a TFDS data set's test split).
        crop: how a non-square image becomes square: `"center"` crops its largest centered
            square, `"none"` stretches the whole image.
        mirror: add each image flipped left to right (twice the data).
        skip_bad: leave out images that cannot be decoded instead of stopping at the first.
        progress: `progress(done, total)` while encoded images are packed (the first time).

    Returns:
        A `Dataset`; `x[indices]` reads float32 images in [-1, 1].

    Example:
        >>> data = load("fashion_mnist")
        >>> data.x.shape
        (60000, 28, 28, 1)
    """
    one_of(CROPS)("crop", crop)
    rows = classes = None
    if source in BUILTIN_DATASETS:
        x, y = _load_builtin(source, split)
        name, digest, reading = source, source, "in memory (uint8)"
    elif (kind := sources.kind(source)) is not None:
        if split != "train" and kind != "tfds":
            what = {"folder": "A folder of images", "zip": "A zip archive"}.get(kind,
                                                                                "TFRecord files")
            raise KganError(f"{what} has no {split} split: {source}")
        digest = sources.fingerprint(source, split)
        name = _source_name(source, kind)
        packed = pack_lib.pack(source, name, digest, image_size or FOLDER_SIZE, crop, skip_bad,
                               split, progress)
        x, y, rows, classes = packed.images, packed.labels, packed.rows, packed.classes
        image_size, reading = None, f"decoded once into {packed.path}, memory-mapped"
        if packed.bad:
            reading += f"; {len(packed.bad)} unreadable image(s) skipped"
    else:
        path = Path(source).expanduser()
        if path.suffix in (".npz", ".npy") and path.is_file():
            x, y = load_npz(path, split)
            name, digest = _slug(path.stem), key(source)
            reading = ("memory-mapped" if isinstance(x.base, np.memmap)
                       or isinstance(x, np.memmap) else "in memory")
        elif path.is_file():
            raise KganError(f"Dataset {source} is a file, but not an .npz: give a folder of "
                            "images or an .npz file with x_train")
        elif path.suffix == ".npz" or "/" in source or path.suffix:
            raise KganError(f"Dataset not found: {source} (no such file or folder)")
        else:
            raise KganError(
                f"Unknown dataset {source!r}. Use one of {', '.join(BUILTIN_DATASETS)}, "
                "a folder of images or an .npz file with x_train."
            )
    if x.dtype != np.uint8 or (image_size is not None and x.shape[1:3] != (image_size,) * 2):
        # Float sources and arrays of another size, as kgan always read them: in memory.
        x = _to_unit_range(np.asarray(x), source)
        if image_size is not None and x.shape[1:3] != (image_size, image_size):
            x = _resize_batch(_center_square(x) if crop == "center" else x, image_size)
        reading = "in memory (float32)"
    if rows is not None and y is not None:
        y = y[rows]
    if mirror and y is not None:
        y = np.concatenate([y, y])
    return Dataset(name, Images(x, rows, mirror), y, digest, reading, classes)


def describe(source: str, image_size: int | None = None, crop: str = "center") -> dict:
    """What `source` holds and how training reads it, without decoding it (`kgan data info`):
    count, shape, classes, bytes. Encoded images' channels are the first image's."""
    kind = None if source in BUILTIN_DATASETS else sources.kind(source)
    if kind is None:
        data = load(source, image_size, crop=crop)
        info = {"source": source, "kind": "builtin" if source in BUILTIN_DATASETS else "array",
                "images": len(data.x), "shape": list(data.image_shape),
                "classes": _class_counts(data.y, data.classes),
                "bytes": int(data.x.records.nbytes), "reading": data.reading}
        return info
    index = sources.index(source)
    key_ = sources.fingerprint(source)
    first = sources.open_image(sources.Reader(index)(0))
    size = image_size or FOLDER_SIZE
    shape = [size, size, 1 if sources.is_gray(first.mode) else 3]
    folder = pack_lib.location(_source_name(source, kind), key_, size, crop)
    meta = pack_lib.read_meta(folder) or {"done": 0}
    state = ("built" if meta["done"] == len(index) else
             f"{meta['done']} of {len(index)} packed" if meta["done"] else "not built yet")
    labels = None if index.labels is None else class_numbers(np.asarray(index.labels), source)
    return {"source": source, "kind": kind, "images": len(index), "shape": shape,
            "first_image": f"{first.width}x{first.height} {first.mode}",
            "classes": _class_counts(labels, index.classes),
            "bytes": sources.size_on_disk(index), "bytes_packed": len(index) * int(np.prod(shape)),
            "reading": f"decoded once into {folder} ({state}), then memory-mapped"}


def _class_counts(labels: np.ndarray | None, names: list[str] | None) -> dict | None:
    if labels is None:
        return None
    counts = np.bincount(labels)
    return {(names[i] if names and i < len(names) else str(i)): int(c)
            for i, c in enumerate(counts) if c}


def write_npz(data: Dataset, out: str | Path, progress=None) -> Path:
    """Writes `data` as an uncompressed .npz of uint8 `x_train` (and `y_train`), streamed a
    chunk at a time; `kgan train` memory-maps it (`kgan data pack`)."""
    out = Path(out)
    shape = (len(data.x), *data.image_shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
              "fortran_order": False, "shape": shape}
    with runs.atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open("x_train.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                for start in range(0, shape[0], 1024):
                    f.write(data.x.uint8(slice(start, start + 1024)).tobytes())
                    if progress:
                        progress(min(start + 1024, shape[0]), shape[0])
            if data.y is not None:
                with archive.open("y_train.npy", "w") as f:
                    np.lib.format.write_array(f, data.y.astype(np.int32))
    return out


def key(source: str) -> str:
    """What identifies `source`'s content now (names, sizes, times; nothing is decoded)."""
    if source in BUILTIN_DATASETS or is_demo(source):
        return source
    if sources.kind(source) is not None:
        return sources.fingerprint(source)
    path = Path(source).expanduser()
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
                          ).hexdigest()[:20]


def _source_name(source: str, kind: str) -> str:
    if kind == "tfds":
        return _slug(source[len(sources.TFDS_PREFIX):].split(":")[0].replace("/", "-"))
    path = Path(source).expanduser()
    if kind == "folder":
        return _slug(path.resolve().name)
    if kind == "zip":
        return _slug(path.stem)
    return _slug(path.parent.resolve().name if any(c in path.name for c in "*?[")
                 else path.name.split(".tfrecord")[0])


def _center_square(x: np.ndarray) -> np.ndarray:
    height, width = x.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return x[:, top:top + side, left:left + side]


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
    """`x_<split>` (N, H, W) or (N, H, W, C) and optional `y_<split>` of an .npz file (or the
    images of an .npy); memory-mapped where the array is stored uncompressed."""
    path = Path(path)
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        with open(path, "rb") as f:  # NumPy takes any bytes it does not know for a pickle
            is_npy = f.read(6) == b"\x93NUMPY"
        if path.suffix == ".npy":
            if not is_npy:
                raise KganError(f"Cannot read {path}: it is not an .npy array (numpy.save "
                                "writes one)")
            if split != "train":
                raise KganError(f"An .npy file has no {split} split: {path}")
            x, y = np.load(path, mmap_mode="r", allow_pickle=False), None
        else:
            if not zipfile.is_zipfile(path):
                what = "it is a single .npy array, not" if is_npy else "it is not"
                raise KganError(f"Cannot read {path}: {what} an .npz archive (numpy.savez "
                                "writes one, with x_train and y_train)")
            archive = np.load(path, allow_pickle=False)
            with archive as f:
                if x_key not in f.files:
                    raise KganError(f"{path} has no `{x_key}` array (found: "
                                    f"{', '.join(f.files) or 'nothing'})")
                x = _mapped_member(path, x_key)
                x = f[x_key] if x is None else x
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
        y = class_numbers(y, f"`{y_key}` in {path}")
    return x, y


def _mapped_member(path: Path, key: str) -> np.ndarray | None:
    """The array `key` of an .npz memory-mapped, where it is stored uncompressed (as
    `numpy.savez` and `kgan data pack` write it); None where it is compressed."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject or 0 in shape:
        return None
    return np.memmap(path, dtype, "r", offset, shape, "F" if fortran else "C")


def class_numbers(y: np.ndarray, what: str) -> np.ndarray:
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
    """Images of two domains A and B, float32 in [-1, 1], channels-last (arrays, or `Images`
    read by index for folders).

    Paired: `a[i]` translates to `b[i]`. Unpaired: any counts. `domains` are the eval
    classifier's classes of A and B, where the domains are classes (the unpaired demo).
    """

    name: str
    a: np.ndarray | Images
    b: np.ndarray | Images
    paired: bool
    domains: tuple[int, int] | None = None
    key: str = ""  # what identifies the source's content (`key`): a resume checks it

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
               paired: bool = True, progress=None) -> Pairs:
    """Loads the A and B images of `source` for pix2pix (`paired`) or cyclegan.

    Args:
        source: `fashion_mnist:<demo>` (see `DEMOS`), a folder with `A/` and `B/` (test split:
            `test/A/` and `test/B/`), or an `.npz` with `x_a`, `x_b` (test: `x_a_test`,
            `x_b_test`). Paired folders pair files of the same relative path.
        image_size: resize both sides to this square size (a multiple of 4); `None` keeps
            the images' own (square) size.
        split: `"train"` or `"test"`.
        paired: whether `a[i]` must translate to `b[i]`.
        progress: `progress(done, total)` while a folder's side is packed (the first time).

    Example:
        >>> pairs = load_pairs("fashion_mnist:inpaint")
        >>> pairs.a.shape, pairs.b.shape
        ((60000, 28, 28, 1), (60000, 28, 28, 1))
    """
    if is_demo(source):
        pairs = _demo(source, split)
        pairs.key = source
        if pairs.paired != paired:
            kind = "paired (--arch pix2pix)" if pairs.paired else "unpaired (--arch cyclegan)"
            raise KganError(f"Dataset {source} is {kind}")
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            side_a, side_b = _pair_folders(path, split, paired, image_size, progress)
            a, b, digest = side_a.x, side_b.x, f"{side_a.key}+{side_b.key}"
        elif path.suffix == ".npz" and path.is_file():
            (a, b), digest = _pair_npz(path, split, paired), key(source)
        elif path.exists():
            raise KganError(f"Dataset {source} is a file, but not an .npz: give a folder with "
                            "A/ and B/, or an .npz file with x_a and x_b")
        else:
            raise KganError(f"Dataset not found: {source} (image-to-image runs take a folder "
                            f"with A/ and B/, an .npz with x_a and x_b, or one of "
                            f"{', '.join('fashion_mnist:' + d for d in DEMOS)})")
        pairs = Pairs(_slug(path.stem if path.is_file() else path.resolve().name), a, b, paired,
                      key=digest)
    if image_size is not None:  # arrays (folders are read at that size)
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


def _pair_folders(root: Path, split: str, paired: bool, image_size: int | None,
                  progress) -> tuple[Dataset, Dataset]:
    """A/ and B/ of `root` (or of `root/test`), each packed and read by index like any folder
    (`load`). Paired sides hold files of the same relative paths, which sort alike."""
    base = root if split == "train" else root / split
    sides = [base / "A", base / "B"]
    for side in sides:
        if not side.is_dir():
            where = "" if split == "train" else f" (the {split} split)"
            raise KganError(f"{root} has no {side.relative_to(root)}/ folder{where}: image-to-"
                            "image data is a folder with A/ (inputs) and B/ (targets)")
    names = [sources.folder_files(side) for side in sides]  # relative paths, sorted
    if paired:
        for one, other, side, other_side in ((*names, *sides), (*names[::-1], *sides[::-1])):
            missing = sorted(set(one) - set(other), key=lambda name: name.split(os.sep))
            if missing:
                raise KganError(f"{side / missing[0]} has no partner {other_side / missing[0]} "
                                "(paired data needs files of the same names in A/ and B/)")
    if image_size is None:  # the images' own size, read from their headers: one for all
        ordered = [[side / name for name in side_names] for side, side_names in zip(sides, names)]
        sizes = [[_header_size(path) for path in paths] for paths in ordered]
        if paired:
            for pa, pb, sa, sb in zip(*ordered, *sizes):
                if sa != sb:
                    raise KganError(f"{pa} is {sa[0]}x{sa[1]} but {pb} is {sb[0]}x{sb[1]}: a "
                                    "pair must be the same size")
        for paths, side_sizes in zip(ordered, sizes):
            for path, size in zip(paths, side_sizes):
                if size != sizes[0][0]:
                    raise KganError(
                        f"{path} is {size[0]}x{size[1]} but {ordered[0][0]} is "
                        f"{sizes[0][0][0]}x{sizes[0][0][1]}: give --image-size to resize them "
                        "all")
        width, height = sizes[0][0]
        if width != height or width % 4:
            raise KganError(f"Images of {root} are {height}x{width}: image-to-image runs need "
                            "square sides divisible by 4 (resize with --image-size, e.g. 32)")
        image_size = width
    return tuple(load(str(side), image_size, crop="none", progress=progress) for side in sides)


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image file's header (nothing is decoded)."""
    try:
        with Image.open(path) as img:
            return img.size
    except sources.DECODE_ERRORS as e:
        raise KganError(f"Cannot read image {path}: {first_line(e)}") from None


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
            img = eight_bit(img).convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise KganError(f"Cannot read image {path}: {e}") from None
    array = resize_pil(img, size)
    return array[..., None] if array.ndim == 2 else array


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
