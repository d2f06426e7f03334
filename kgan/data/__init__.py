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
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from kgan import runs
from kgan.config import BUILTIN_DATASETS, CROPS, MAX_CLASSES, one_of
from kgan.data import pack as pack_lib
from kgan.data import sources
from kgan.data.given import write_member
from kgan.data.sources import IMAGE_SUFFIXES, eight_bit, resize_pil
from kgan.errors import KganError, NoSplit, first_line

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FOLDER_SIZE = 64  # the square side of encoded images when --image-size is not given

__all__ = ["CROPS", "IMAGE_SUFFIXES", "Dataset", "Images", "load"]


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
        x, y = load_builtin(source, split)
        name, digest, reading = source, source, "in memory (uint8)"
    elif (kind := sources.kind(source)) is not None:
        if split != "train" and kind != "tfds":
            what = {"folder": "A folder of images", "zip": "A zip archive"}.get(kind,
                                                                                "TFRecord files")
            raise NoSplit(f"{what} has no {split} split: {source}")
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
            name, digest = slug(path.stem), key(source)
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
        x = to_unit_range(np.asarray(x), source)
        if image_size is not None and x.shape[1:3] != (image_size, image_size):
            x = resize_batch(_center_square(x) if crop == "center" else x, image_size)
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
    out, count = Path(out), len(data.x)

    def chunks():
        for start in range(0, count, 1024):
            yield data.x.uint8(slice(start, start + 1024))
            if progress:
                progress(min(start + 1024, count), count)

    with runs.atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            write_member(archive, "x_train", (count, *data.image_shape), np.uint8, chunks())
            if data.y is not None:
                write_member(archive, "y_train", (count,), np.int32, [data.y])
    return out


def key(source: str) -> str:
    """What identifies `source`'s content now (names, sizes, times; nothing is decoded)."""
    if source.partition(":")[0] in BUILTIN_DATASETS:  # a built-in, or a demo made of one
        return source
    if sources.kind(source) is not None:
        return sources.fingerprint(source)
    path = Path(source).expanduser()
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
                          ).hexdigest()[:20]


def _source_name(source: str, kind: str) -> str:
    if kind == "tfds":
        return slug(source[len(sources.TFDS_PREFIX):].split(":")[0].replace("/", "-"))
    path = Path(source).expanduser()
    if kind == "folder":
        return slug(path.resolve().name)
    if kind == "zip":
        return slug(path.stem)
    return slug(path.parent.resolve().name if any(c in path.name for c in "*?[")
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
                raise NoSplit(f"An .npy file has no {split} split: {path}")
            x, y = np.load(path, mmap_mode="r", allow_pickle=False), None
        else:
            if not zipfile.is_zipfile(path):
                what = "it is a single .npy array, not" if is_npy else "it is not"
                raise KganError(f"Cannot read {path}: {what} an .npz archive (numpy.savez "
                                "writes one, with x_train and y_train)")
            archive = np.load(path, allow_pickle=False)
            with archive as f:
                if x_key not in f.files:
                    missing = NoSplit if split != "train" else KganError
                    raise missing(f"{path} has no `{x_key}` array (found: "
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


def load_builtin(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
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


def resize_batch(x: np.ndarray, size: int) -> np.ndarray:
    """Resizes float images in [-1, 1] with Pillow (per channel, bicubic, clipped)."""
    out = np.empty((x.shape[0], size, size, x.shape[3]), dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[3]):
            channel = Image.fromarray(x[i, :, :, c], mode="F")
            out[i, :, :, c] = np.asarray(channel.resize((size, size), Image.Resampling.BICUBIC))
    return np.clip(out, -1.0, 1.0)


def to_unit_range(x: np.ndarray, source: str) -> np.ndarray:
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


def slug(name: str) -> str:
    """A name for run directories: ASCII letters, digits, '-' and '_' (others become '_')."""
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_"
                   for c in name).strip("_")
    return slug or "data"


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
    except sources.DECODE_ERRORS as e:
        raise KganError(f"Cannot read image {path}: {sources.why_unreadable(e)}") from None
    array = resize_pil(img, size)
    return array[..., None] if array.ndim == 2 else array
