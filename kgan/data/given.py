"""Data given from Python: a NumPy array (or `(images, labels)`), a `tf.data.Dataset`, a Grain
source or dataset, or any sequence or iterable of images (or `(image, label)` pairs, or dicts
with `image` and `label`).

It is written once, streamed a chunk at a time, as an uncompressed `.npz` of uint8 images in
`<runs_dir>/data/<name>-<digest>/<name>.npz` (nothing else could rebuild it, so it lives beside
the runs, not in the cache). From there a run reads it as any `.npz`: memory-mapped, by path,
so `--resume`, `kgan eval` and the data check of a resume work as for a file the user made.
The same content given again is found by its digest and not written twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from kgan import runs
from kgan.errors import KganError

CHUNK = 1024  # images per write
FOLDER = "data"  # under the runs folder


def save(data, name: str, runs_dir: str | Path = "runs") -> Path:
    """Writes `data` (see the module) as `<runs_dir>/data/<name>-<digest>/<name>.npz` and
    returns its path."""
    from kgan.data import slug

    if not isinstance(name, str) or not name.strip():
        raise KganError(f"Data given from Python needs a name (data_name=...). Received: "
                        f"data_name={name!r}")
    name, root = slug(name), Path(runs_dir) / FOLDER
    try:
        return _save(data, name, runs.make_folder(root))
    except OSError as e:  # a full disk, a file where the folder goes (atomic_path says its own)
        raise KganError(f"Cannot write the data given for {name} to {root}: "
                        f"{e.strerror or e}") from None


def _save(data, name: str, root: Path) -> Path:
    digest, shape, labelled = hashlib.sha256(), None, None
    with tempfile.TemporaryDirectory(dir=root, prefix=".given-") as tmp:
        x_path, y_path, count = Path(tmp) / "x", Path(tmp) / "y", 0
        with x_path.open("wb") as xf, y_path.open("wb") as yf:
            for images, labels in _chunks(data):
                if shape is None:
                    shape, labelled = images.shape[1:], labels is not None
                if images.shape[1:] != shape:
                    raise KganError(f"Every image must have the shape of the first, {shape}. "
                                    f"Received: {images.shape[1:]} at image {count}")
                if (labels is not None) != labelled:
                    raise KganError(f"Either every image has a label or none has: image {count} "
                                    f"{'has' if labels is not None else 'has none'}")
                for part, f in ((images, xf), (labels, yf)):
                    if part is not None:
                        digest.update(part.tobytes())
                        f.write(part.tobytes())
                count += len(images)
        if not count:
            raise KganError(f"The data given for {name} holds no images")
        digest.update(repr((count, shape)).encode())
        path = root / f"{name}-{digest.hexdigest()[:16]}" / f"{name}.npz"
        if not path.is_file():
            with runs.atomic_path(path) as out, zipfile.ZipFile(
                    out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                write_member(archive, "x_train", (count, *shape), np.uint8, x_path)
                if labelled:
                    write_member(archive, "y_train", (count,), np.int32, y_path)
    return path


def write_member(archive: zipfile.ZipFile, key: str, shape: tuple, dtype, source) -> None:
    """Writes the array `key` of `shape` into an .npz `archive`, uncompressed (so it can be
    memory-mapped); its bytes are `source`: a raw file's path, or an iterable of arrays."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(d) for d in shape)}
    with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_2_0(f, header)
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as raw:
                shutil.copyfileobj(raw, f, 2**22)
        else:
            for part in source:
                f.write(np.ascontiguousarray(part, dtype).tobytes())


def _chunks(data):
    """`data` as chunks of (uint8 images (n, H, W, C), int32 labels (n,) or None)."""
    if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape"):
        images, labels = data
        if len(labels) != len(images):
            raise KganError(f"{len(labels)} labels were given for {len(images)} images")
        for start in range(0, len(images), CHUNK):
            yield (_images(np.asarray(images[start:start + CHUNK]), start),
                   _labels(np.asarray(labels[start:start + CHUNK])))
        return
    if isinstance(data, np.ndarray):
        if data.ndim not in (3, 4):
            raise KganError("Images given as an array need the shape (N, H, W) or (N, H, W, C). "
                            f"Received: shape={data.shape}")
        for start in range(0, len(data), CHUNK):
            yield _images(data[start:start + CHUNK], start), None
        return
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__") and not hasattr(
            data, "__getitem__"):
        raise KganError("`data` must be a NumPy array, (images, labels), a tf.data.Dataset, a "
                        f"Grain source or an iterable of images. Received: {type(data).__name__}")
    if hasattr(data, "as_numpy_iterator"):  # tf.data
        elements = data.as_numpy_iterator()
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):  # Grain sources, lists
        elements = (data[i] for i in range(len(data)))
    else:  # Grain's IterDataset, generators
        elements = iter(data)
    images, labels, done = [], [], 0
    for element in elements:
        image, label = _element(element)
        batched = image.ndim == 4 or (image.ndim == 3 and image.shape[-1] not in (1, 3))
        images.extend(image if batched else [image])
        if label is not None:
            labels.extend(np.reshape(label, -1))
            if len(labels) != len(images):
                raise KganError(f"Images {done}.. came with {len(labels)} labels for "
                                f"{len(images)} images")
        if len(images) >= CHUNK:
            yield _images(np.stack(images), done), _labels(labels) if labels else None
            done += len(images)
            images, labels = [], []
    if images:
        yield _images(np.stack(images), done), _labels(labels) if labels else None


def _element(element) -> tuple[np.ndarray, object]:
    """One element of a stream: an image (or a batch), with its label(s) or None."""
    if isinstance(element, dict):
        if "image" not in element:
            raise KganError("A dict given as data needs an `image` key (and may have `label`). "
                            f"Received keys: {', '.join(map(str, element))}")
        return np.asarray(element["image"]), element.get("label")
    if isinstance(element, (tuple, list)):
        if len(element) != 2:
            raise KganError("A data element must be an image, (image, label) or a dict with "
                            f"`image`. Received: a {type(element).__name__} of {len(element)}")
        return np.asarray(element[0]), element[1]
    return np.asarray(element), None


def _images(x: np.ndarray, start: int) -> np.ndarray:
    """A chunk as uint8 (n, H, W, C): uint8 as given, floats in [-1, 1] (kgan's range)
    quantized, integers in [0, 255] cast."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or min(x.shape[1:3]) < 1:
        raise KganError("Images must have the shape (H, W), (H, W, 1) or (H, W, 3). Received: "
                        f"{x.shape[1:]} at image {start}")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "uif":
        raise KganError(f"Images must hold numbers. Received: dtype={x.dtype} at image {start}")
    lo, hi = (x.min(), x.max()) if x.dtype.kind != "f" or np.isfinite(x).all() else (np.nan,) * 2
    if x.dtype.kind == "f":
        if not -1.0 <= lo <= hi <= 1.0:
            raise KganError("Float images must lie in [-1, 1] (uint8 ones in [0, 255]). "
                            f"Received: values in [{lo:g}, {hi:g}] at images {start}..")
        return np.round((x.astype(np.float32) + 1.0) * 127.5).astype(np.uint8)
    if not 0 <= lo <= hi <= 255:
        raise KganError(f"Integer images must lie in [0, 255]. Received: values in [{lo}, {hi}] "
                        f"at images {start}..")
    return x.astype(np.uint8)


def _labels(labels) -> np.ndarray:
    from kgan.data import class_numbers

    return class_numbers(np.asarray(labels).reshape(-1), "The labels given")
