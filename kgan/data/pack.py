"""The packed form of an encoded source: its images decoded once into a uint8 array on disk.

A pack is built once per (source content, image size, crop) under `KGAN_CACHE/packed/`, by a
thread per core (`concurrent.futures`; Pillow decodes and resizes without the GIL: 1.7x on 2
cores), and then memory-mapped: the kernel pages in what a batch reads, and the process's own
memory does not grow with the data. Chunks are written in
order and the count written is recorded as it goes, so an interrupted build (Ctrl-C, a crash)
continues where it stopped.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from filelock import FileLock

from kgan.data import sources
from kgan.errors import Interrupted, KganError
from kgan.runs import atomic_path, cache_folder

VERSION = 1  # of the packed layout and decoding; a new one packs again
CHUNK = 64  # images per task
META, IMAGES, LABELS = "meta.json", "images.npy", "labels.npy"


@dataclasses.dataclass
class Packed:
    """A finished pack: `images` memory-mapped, the readable rows and labels."""

    path: Path
    images: np.ndarray  # uint8 (N, size, size, C), memory-mapped
    rows: np.ndarray | None  # the rows to train on where some images were skipped, else None
    labels: np.ndarray | None  # int32 (N,) before `rows` is applied
    classes: list[str] | None
    bad: list[list]  # [row, name, error] of the images that could not be read


def location(name: str, key: str, size: int, crop: str) -> Path:
    digest = hashlib.sha256(json.dumps([key, size, crop, VERSION]).encode()).hexdigest()[:16]
    return cache_folder("packed") / f"{name}-{size}-{digest}"


def pack(source: str, name: str, key: str, size: int, crop: str, skip_bad: bool = False,
         split: str = "train", progress=None) -> Packed:
    """The pack of `source` at `size` x `size`, built first if it is not complete.

    Args:
        source: a folder, zip, TFRecord glob or `tfds:NAME` (`kgan.data.sources`).
        name: a short name for the pack's folder.
        key: the source's fingerprint (`sources.fingerprint`): another one is another pack.
        size: the side of the square images.
        crop: "center" (the largest centered square) or "none" (the whole image, stretched).
        skip_bad: images that cannot be decoded are left out (and counted) instead of raising.
        split: the split of a TFDS data set.
        progress: called as `progress(done, total)` while building (images decoded so far).
    """
    folder = location(name, key, size, crop)
    with FileLock(str(folder) + ".lock"):  # two runs on one source: the second waits, then reads
        meta = read_meta(folder)
        if meta is not None and not _intact(folder, meta):
            meta = None  # a damaged pack (a file cut short, removed): built again
        if meta is None or meta["done"] < meta["count"]:
            meta = _build(folder, meta, sources.index(source, split), size, crop, skip_bad,
                          progress)
    return _open(folder, meta, skip_bad)


def _intact(folder: Path, meta: dict) -> bool:
    """Whether the pack's array file is there whole, with the shape its record says."""
    try:
        images = np.load(folder / IMAGES, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return images.shape == (meta["count"], meta["size"], meta["size"], meta["channels"])


def read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None


def _write_meta(folder: Path, meta: dict) -> None:
    with atomic_path(folder / META) as tmp:
        tmp.write_text(json.dumps(meta))


def _open(folder: Path, meta: dict, skip_bad: bool) -> Packed:
    bad = meta["bad"]
    if bad and not skip_bad:
        raise _bad_image(bad[0], len(bad))
    images = np.load(folder / IMAGES, mmap_mode="r")
    labels = np.load(folder / LABELS) if (folder / LABELS).exists() else None
    rows = None
    if bad:
        rows = np.setdiff1d(np.arange(len(images)), [row for row, _, _ in bad])
        if not len(rows):
            raise KganError(f"None of the {len(images)} images of {meta['source']} can be read")
    return Packed(folder, images, rows, labels, meta["classes"], bad)


def _bad_image(bad: list, count: int) -> KganError:
    _, name, error = bad
    more = f" ({count} images cannot be read)" if count > 1 else ""
    return KganError(f"Cannot read image {name}: {error}{more}. Fix or remove it, or pass "
                     "--skip-bad to train without such images")


def _build(folder: Path, meta: dict | None, index: sources.Index, size: int, crop: str,
           skip_bad: bool, progress) -> dict:
    count = len(index)
    workers = max(1, min(os.cpu_count() or 1, -(-count // CHUNK)))
    reader = _ThreadReaders(index)
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="kgan-pack") as pool:
        try:
            if meta is None or meta["count"] != count:
                meta = _start(folder, index, size, crop, pool, reader)
            _decode_all(folder, meta, size, crop, skip_bad, pool, 2 * workers, reader,
                        progress)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            meta = read_meta(folder) or {"done": 0, "count": count}
            raise Interrupted(f"Stopped while packing {index.root}: {meta['done']} of "
                              f"{meta['count']} images are packed in {folder}, and the next "
                              "run continues from there") from None
    return meta


def _start(folder: Path, index: sources.Index, size: int, crop: str, pool, reader) -> dict:
    """A new pack: every image's mode is read from its header (one gray channel if all are
    gray, else RGB), and the array file is allocated."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    modes = [mode for chunk in pool.map(lambda chunk: _modes(reader, *chunk),
                                        _chunks(len(index))) for mode in chunk]
    channels = 1 if all(sources.is_gray(m) for m in modes if m) else 3
    np.lib.format.open_memmap(folder / IMAGES, "w+", np.uint8,
                              (len(index), size, size, channels)).flush()
    if index.labels is not None:
        np.save(folder / LABELS, _labels(index))
    meta = {"source": index.root, "kind": index.kind, "count": len(index), "done": 0,
            "channels": channels, "size": size, "crop": crop, "classes": index.classes,
            "bad": [], "version": VERSION}
    _write_meta(folder, meta)
    return meta


def _labels(index: sources.Index) -> np.ndarray:
    from kgan.data import class_numbers  # the package's check of labels; it imports this module

    return class_numbers(np.asarray(index.labels), f"The labels of {index.root}")


def _decode_all(folder: Path, meta: dict, size: int, crop: str, skip_bad: bool, pool,
                window: int, reader, progress) -> None:
    """Decodes the chunks not yet done, `window` at a time, writing them in order."""
    images = np.load(folder / IMAGES, mmap_mode="r+")
    mode = "L" if meta["channels"] == 1 else "RGB"
    chunks = _chunks(meta["count"], meta["done"])
    pending = [pool.submit(_decode, reader, *chunk, size, crop, mode)
               for chunk in chunks[:window]]
    next_chunk, saved = len(pending), time.monotonic()
    if progress:
        progress(meta["done"], meta["count"])
    try:
        while pending:
            (start, stop), future = chunks[next_chunk - len(pending)], pending.pop(0)
            decoded, bad = future.result()
            if next_chunk < len(chunks):
                pending.append(pool.submit(_decode, reader, *chunks[next_chunk], size, crop,
                                           mode))
                next_chunk += 1
            images[start:stop] = decoded
            meta["done"], meta["bad"] = stop, meta["bad"] + bad
            if bad or not pending or time.monotonic() - saved > 2:
                _save(folder, images, meta)
                saved = time.monotonic()
            if bad and not skip_bad:
                raise _bad_image(bad[0], len(meta["bad"]))
            if progress:
                progress(stop, meta["count"])
    except KeyboardInterrupt:
        _save(folder, images, meta)  # what is done is kept
        raise


def _save(folder: Path, images: np.ndarray, meta: dict) -> None:
    images.flush()  # the pixels first, then the count that says they are there
    _write_meta(folder, meta)


def _chunks(count: int, start: int = 0) -> list[tuple[int, int]]:
    return [(i, min(i + CHUNK, count)) for i in range(start, count, CHUNK)]


# In the pool's threads ---------------------------------------------------------------------------


class _ThreadReaders(threading.local):
    """A `sources.Reader` per thread: each keeps its own open files."""

    def __init__(self, index: sources.Index):
        self.index, self.reader = index, sources.Reader(index)

    def __call__(self, i: int) -> bytes:
        return self.reader(i)


def _modes(reader, start: int, stop: int) -> list[str | None]:
    modes = []
    for i in range(start, stop):
        try:
            modes.append(sources.open_image(reader(i)).mode)
        except sources.DECODE_ERRORS:
            modes.append(None)  # reported when it is decoded
    return modes


def _decode(reader, start: int, stop: int, size: int, crop: str, mode: str):
    out = np.zeros((stop - start, size, size, 1 if mode == "L" else 3), np.uint8)
    bad = []
    for i in range(start, stop):
        try:
            out[i - start] = sources.decode(reader(i), size, crop, mode)
        except sources.DECODE_ERRORS as e:
            bad.append([i, reader.index.where(i), sources.why_unreadable(e)])
    return out, bad
