"""Sources read by index: what a folder, zip or TFRecord set holds, listed without decoding.

An `Index` names each record (a file, a zip member, a TFRecord record) with its label, and
`Reader` gives record i's encoded bytes. `kgan.data.pack` decodes them once, in parallel, into a
uint8 array on disk that training reads by index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from kgan.config import CROPS  # noqa: F401 (re-exported: the crops `decode` knows)
from kgan.errors import KganError, first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
TFDS_PREFIX = "tfds:"
TFRECORD_IMAGE, TFRECORD_LABEL = "image/encoded", "image/class/label"  # TF-slim's keys
TFDS_IMAGE, TFDS_LABEL = "image", "label"  # what `tfds build` writes for image datasets
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                 Image.DecompressionBombError)  # what Pillow raises for an unreadable image
PIXEL_LIMIT = "KGAN_MAX_IMAGE_PIXELS"  # Pillow's decompression-bomb limit, for trusted images
if (_limit := os.environ.get(PIXEL_LIMIT, "").strip().lower()) in ("none", "0"):
    Image.MAX_IMAGE_PIXELS = None
elif _limit.isdigit():
    Image.MAX_IMAGE_PIXELS = int(_limit)


def why_unreadable(error: BaseException) -> str:
    """Why Pillow could not read an image, in one line; over the decompression-bomb limit,
    also what the limit is and how to raise it."""
    if isinstance(error, Image.DecompressionBombError):
        return (f"{first_line(error)} Pillow refuses images over twice its limit of "
                f"{Image.MAX_IMAGE_PIXELS} pixels; for an image you trust, raise it with "
                f"{PIXEL_LIMIT}=<pixels> (or none)")
    return first_line(error)


@dataclasses.dataclass
class Index:
    """The records of an encoded source, in a fixed order, with their labels."""

    kind: str  # "folder", "zip", "tfrecord" or "tfds"
    root: str  # the folder, zip file or TFRecord files' common folder
    names: list[str]  # a record's name in messages: relative path, member, file:record
    labels: np.ndarray | None  # int32 (N,), or None
    classes: list[str] | None  # class names, where the source has them
    locations: np.ndarray | None = None  # tfrecord: (N, 3) int64 of file number, offset, size
    files: list[str] | None = None  # tfrecord: the files `locations` number

    def __len__(self) -> int:
        return len(self.names)

    def where(self, i: int) -> str:
        """Record `i` as a message names it: a file's path, `archive.zip:member`, `file:n`."""
        if self.kind == "folder":
            return str(Path(self.root) / self.names[i])
        return f"{self.root}:{self.names[i]}" if self.kind == "zip" else self.names[i]


def kind(source: str) -> str | None:
    """Which encoded source `source` is (None: not one of them)."""
    if source.startswith(TFDS_PREFIX):
        return "tfds"
    path = Path(source).expanduser()
    if path.is_dir():
        return "folder"
    if path.suffix.lower() == ".zip" and path.is_file():
        return "zip"
    if ".tfrecord" in path.name or any(c in source for c in "*?["):
        return "tfrecord"
    return None


def fingerprint(source: str, split: str = "train") -> str:
    """What identifies `source`'s current content, cheaply: its files' names, sizes and times
    (nothing is read)."""
    kind_ = kind(source)
    if kind_ == "folder":
        root = Path(source).expanduser()
        return _digest([str(root.resolve()), folder_files(root, stat=True)])
    files = _tfrecord_files(source, split) if kind_ in ("tfrecord", "tfds") else [
        Path(source).expanduser()]
    return _digest([(str(p.resolve()), *_stat(p)) for p in files])


def index(source: str, split: str = "train") -> Index:
    """Lists `source`'s records and labels (reads TFRecords' headers and labels, no pixels)."""
    kind_ = kind(source)
    if kind_ == "folder":
        return _index_folder(Path(source).expanduser())
    if kind_ == "zip":
        return _index_zip(Path(source).expanduser())
    return _index_tfrecords(source, split, kind_)


def size_on_disk(index: Index) -> int:
    """The bytes of the files that hold `index`'s records."""
    if index.kind == "folder":
        return sum(size for _, size, _ in folder_files(Path(index.root), stat=True))
    return sum(Path(p).stat().st_size for p in (index.files or [index.root]))


def _stat(path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:20]


# Folders ----------------------------------------------------------------------------------------


def folder_files(root: Path, stat: bool = False) -> list:
    """The images under `root` as relative paths, in the order of their parts (as sorted
    `Path`s); with `stat`, (path, size, mtime_ns) each. `os.scandir` walks 100,000 files in
    about a second where `Path.rglob` and `stat` took three."""
    found, pending = [], [""]
    while pending:
        folder = pending.pop()
        with os.scandir(root / folder) as entries:
            for entry in entries:
                relative = os.path.join(folder, entry.name)
                if entry.is_dir():
                    pending.append(relative)
                elif (os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
                      and entry.is_file()):
                    found.append((relative, *_stat(entry)) if stat else relative)
    if not found:
        raise KganError(f"No .png/.jpg/.webp images found in {root}")
    return sorted(found, key=lambda f: (f[0] if stat else f).split(os.sep))


def _index_folder(root: Path) -> Index:
    relative = folder_files(root)
    parts = [r.split(os.sep) for r in relative]
    # The first level of sub-folders names the classes; images directly in `root` have none.
    labels = classes = None
    if all(len(p) > 1 for p in parts):
        classes = sorted({p[0] for p in parts})
        number = {name: i for i, name in enumerate(classes)}
        labels = np.array([number[p[0]] for p in parts], np.int32)
    return Index("folder", str(root), relative, labels, classes)


# Zip archives (StyleGAN2-ADA's dataset_tool.py layout) ------------------------------------------


def _index_zip(path: Path) -> Index:
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist()
                           if Path(n).suffix.lower() in IMAGE_SUFFIXES)
            meta = (json.loads(archive.read("dataset.json"))
                    if "dataset.json" in archive.namelist() else None)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise KganError(f"Cannot read zip archive {path}: {e}") from None
    if not names:
        raise KganError(f"Zip archive {path} holds no .png/.jpg/.webp images")
    labels = None
    listed = (meta or {}).get("labels") if isinstance(meta, dict) else None
    if listed is not None:
        try:
            given = {str(name).replace("\\", "/"): label for name, label in listed}
        except (TypeError, ValueError):
            raise KganError(f"dataset.json in {path}: `labels` must be a list of [file name, "
                            "label] pairs (StyleGAN2-ADA's dataset_tool.py layout)") from None
        missing = sorted(set(given) - set(names))
        if missing:
            raise KganError(f"dataset.json in {path} names {len(missing)} file(s) the archive "
                            f"does not hold, the first: {missing[0]}")
        unlabeled = [n for n in names if n not in given]
        if unlabeled:
            raise KganError(f"{unlabeled[0]} in {path} has no label in dataset.json "
                            f"({len(unlabeled)} image(s) have none)")
        labels = np.array([given[n] for n in names])
    return Index("zip", str(path), names, labels, None)


# TFRecord shards of tf.train.Example, and prepared TFDS data sets --------------------------------


def tfds_dir(source: str) -> Path:
    """The prepared TFDS data set `tfds:NAME[/CONFIG][:VERSION]` under `$TFDS_DATA_DIR`
    (default `~/tensorflow_datasets`): its newest version's folder."""
    spec = source[len(TFDS_PREFIX):]
    name, _, version = spec.partition(":")
    data_dir = Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()
    base = data_dir / name
    versions = sorted((p for p in base.glob("*") if p.is_dir() and _version(p.name)),
                      key=lambda p: _version(p.name)) if base.is_dir() else []
    if version:
        versions = [p for p in versions if p.name == version]
    if not name or not versions:
        raise KganError(f"{source} is not prepared in {data_dir} (kgan reads a prepared copy, "
                        f"offline): where you are online, run `tfds build {name or 'NAME'} "
                        f"--data_dir {data_dir}` and copy the folder, or set TFDS_DATA_DIR")
    return versions[-1]


def _version(name: str) -> tuple[int, ...] | None:
    parts = name.split(".")
    return tuple(int(p) for p in parts) if len(parts) == 3 and all(
        p.isdigit() for p in parts) else None


def _tfrecord_files(source: str, split: str) -> list[Path]:
    if source.startswith(TFDS_PREFIX):
        folder = tfds_dir(source)
        files = sorted(folder.glob(f"*-{split}.tfrecord*"))
        if not files:
            raise KganError(f"{source} has no {split} split in {folder}")
        return files
    path = Path(source).expanduser()
    files = sorted(path.parent.glob(path.name)) if any(c in source for c in "*?[") else (
        [path] if path.is_file() else [])
    if not files:
        raise KganError(f"No TFRecord files match {source}")
    return files


def _index_tfrecords(source: str, split: str, kind_: str) -> Index:
    files = _tfrecord_files(source, split)
    image_key, label_key = (TFDS_IMAGE, TFDS_LABEL) if kind_ == "tfds" else (
        TFRECORD_IMAGE, TFRECORD_LABEL)
    locations, names, labels = [], [], []
    for number, path in enumerate(files):
        for record_number, (offset, size, record) in enumerate(_tfrecord_records(path)):
            features = parse_example(record)
            if image_key not in features:
                raise KganError(f"Record {record_number} of {path} has no `{image_key}` feature "
                                f"(found: {', '.join(sorted(features)) or 'none'}): kgan reads "
                                f"tf.train.Example records with `{image_key}` (and "
                                f"`{label_key}`)")
            locations.append((number, offset, size))
            names.append(f"{path}:{record_number}")
            label = features.get(label_key)
            labels.append(label[0] if label else None)
    if not names:
        raise KganError(f"{source} holds no records")
    have = [label is not None for label in labels]
    if any(have) and not all(have):
        raise KganError(f"Record {have.index(False)} of {source} has no `{label_key}`, "
                        "though others have one")
    classes = _tfds_classes(source) if kind_ == "tfds" else None
    return Index(kind_, str(files[0].parent), names, np.array(labels) if all(have) else None,
                 classes, np.array(locations, np.int64), [str(p) for p in files])


def _tfds_classes(source: str) -> list[str] | None:
    names = tfds_dir(source) / f"{TFDS_LABEL}.labels.txt"
    return names.read_text().split() if names.is_file() else None


def _tfrecord_records(path: Path):
    """(offset, size, bytes) of each record of a TFRecord file (uncompressed)."""
    with open(path, "rb") as f:
        head = f.read(2)
        if head == b"\x1f\x8b":
            raise KganError(f"{path} is gzip-compressed: kgan reads uncompressed TFRecords "
                            "(rewrite them without compression_type)")
        f.seek(0)
        while header := f.read(12):
            if len(header) < 12:
                raise KganError(f"Truncated TFRecord file {path}")
            (size,) = struct.unpack("<Q", header[:8])
            record = f.read(size)
            if len(record) < size or len(f.read(4)) < 4:
                raise KganError(f"Truncated TFRecord file {path}")
            yield f.tell() - 4 - size, size, record


def parse_example(record: bytes) -> dict[str, list]:
    """A serialized `tf.train.Example` as {name: values}: bytes, floats or ints per feature.

    The protobuf wire format, read directly: this runs in the packing processes, which should
    not load TensorFlow."""
    features = {}
    for number, _, message in _fields(record):
        if number != 1:  # Example.features
            continue
        for entry_number, _, entry in _fields(message):
            if entry_number != 1:  # Features.feature, a map entry
                continue
            key, value = "", b""
            for field, _, content in _fields(entry):
                if field == 1:
                    key = bytes(content).decode()
                elif field == 2:
                    value = content
            features[key] = _feature_values(value)
    return features


def _feature_values(message) -> list:
    for kind_, _, values in _fields(message):
        if kind_ == 1:  # BytesList
            return [bytes(v) for number, _, v in _fields(values) if number == 1]
        if kind_ == 2:  # FloatList (packed or not)
            raw = b"".join(bytes(v) for _, _, v in _fields(values))
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
        if kind_ == 3:  # Int64List (packed or not)
            ints = []
            for _, wire, v in _fields(values):
                if wire == 0:
                    ints.append(v)
                else:
                    pos = 0
                    while pos < len(v):
                        value, pos = _varint(v, pos)
                        ints.append(value)
            return [i - (1 << 64) if i >= 1 << 63 else i for i in ints]
    return []


def _varint(buffer, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buffer):
    """(field number, wire type, value) of each field of a protobuf message."""
    buffer, pos = memoryview(buffer), 0
    try:
        while pos < len(buffer):
            key, pos = _varint(buffer, pos)
            wire = key & 7
            if wire == 0:
                value, pos = _varint(buffer, pos)
            elif wire == 2:
                size, pos = _varint(buffer, pos)
                value, pos = buffer[pos:pos + size], pos + size
            elif wire in (1, 5):
                width = 8 if wire == 1 else 4
                value, pos = buffer[pos:pos + width], pos + width
            else:
                raise ValueError(f"wire type {wire}")
            yield key >> 3, wire, value
    except (IndexError, ValueError) as e:
        raise KganError(f"Not a tf.train.Example record ({e})") from None


# Reading and decoding records (in the packing processes) ----------------------------------------


class Reader:
    """Encoded bytes of an index's records, by number; opens its files once per process."""

    def __init__(self, index: Index):
        self.index = index
        self._archive = None
        self._handles = {}

    def __call__(self, i: int) -> bytes:
        index = self.index
        if index.kind == "folder":
            return (Path(index.root) / index.names[i]).read_bytes()
        if index.kind == "zip":
            if self._archive is None:
                self._archive = zipfile.ZipFile(index.root)
            return self._archive.read(index.names[i])
        number, offset, size = (int(v) for v in index.locations[i])
        if number not in self._handles:
            self._handles[number] = open(index.files[number], "rb")  # noqa: SIM115
        handle = self._handles[number]
        handle.seek(offset)
        key = TFDS_IMAGE if index.kind == "tfds" else TFRECORD_IMAGE
        return parse_example(handle.read(size))[key][0]


def is_gray(mode: str) -> bool:
    """Whether an image of this Pillow mode is read as one gray channel."""
    return mode in ("1", "L", "LA", "I", "F") or mode.startswith("I;16")


def open_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return eight_bit(img)


def decode(data: bytes, size: int, crop: str, mode: str) -> np.ndarray:
    """Encoded image bytes as uint8 (size, size, channels) in `mode` ("L" or "RGB"), cropped
    (`crop`) and resized (bicubic)."""
    img = open_image(data).convert(mode)
    if crop == "center" and img.width != img.height:
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    array = resize_pil(img, size)
    return array[..., None] if array.ndim == 2 else array


def eight_bit(img):
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


def resize_pil(img, size: int) -> np.ndarray:
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)
