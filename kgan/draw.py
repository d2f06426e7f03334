"""Drawing images from a generator: a run's GAN or an exported SavedModel, the same way.

A `Source` (`kgan.drawing`) turns seeds into latents and latents (and labels) into images; each
family makes one for a run and one for its export (`kgan.families`). Everything here (grids,
class rows with shared latents, interpolation, PNG and GIF files) is written once on top of
them, so a run and its export draw the same pictures for the same seed.

Example:
    >>> source = from_run("runs/00003-mlp-fashion_mnist")
    >>> batch = images.to_uint8(draw(source, 16, seed=7))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from kgan import checkpoint, data, families, images, runs, serving
from kgan.config import positive_int
from kgan.data import sources as data_sources
from kgan.drawing import CHUNK, Source, Translation
from kgan.errors import KganError
from kgan.labels import labels_for


def from_run(run_dir: str | Path, best: bool = False, ema: bool = True) -> Source:
    """The generator of a run's latest (or `best`) checkpoint; with `ema`, its moving average
    where the run keeps one."""
    run_dir, config = runs.open_run(run_dir)
    family = families.of(config.arch)
    if not family.samples:  # said before the model is loaded
        raise KganError(family.no_sampling(run_dir, config.arch))
    return family.sampler(checkpoint.load_gan(run_dir, best, ema=ema)[0], run_dir)


def from_export(model: str | Path) -> Source:
    """An exported model: `saved_models/NAME` (its newest version) or `.../NAME/VERSION`."""
    version_dir = serving.resolve(model)
    return families.family_of_export(serving.metadata(version_dir)).export_sampler(version_dir)


def draw(source: Source, n: int, seed: int, labels=None) -> np.ndarray:
    """`n` float images in [-1, 1] for `seed` (same seed, same images); a conditional source
    draws `labels` (one, or one per image; by default the classes in turn)."""
    positive_int("n", n)
    return source.generate(source.latents(n, seed), labels_for(n, source.num_classes, labels))


def class_rows(source: Source, labels: list[int], per_class: int, seed: int) -> np.ndarray:
    """One row of `per_class` images per label in `labels`, the same latents in every row."""
    positive_int("n", per_class)
    z = np.tile(source.latents(per_class, seed), (len(labels), 1))
    return source.generate(z, labels_for(len(z), source.num_classes,
                                         np.repeat(labels, per_class)))


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from rows `a` to rows `b` at fractions `t` -> (len(t), *a.shape).

    Gaussian latents live near a sphere; a straight line between two passes near its centre,
    where the generator has seen few samples. Nearly parallel rows fall back to a line.
    """
    t = np.asarray(t, np.float64)[:, None, None]
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.sum(a64 * b64, -1) / (np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))[None, :, None]
    sin = np.sin(omega)
    safe = np.where(sin < 1e-6, 1.0, sin)
    spherical = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / safe
    linear = (1 - t) * a64 + t * b64
    return np.where(sin < 1e-6, linear, spherical).astype(np.float32)


def interpolate(source: Source, frames: int, seed: int, labels=None,
                walks: int = 8) -> np.ndarray:
    """Images along spherical walks between random latents: (rows, frames, H, W, C) in [-1, 1].

    Unconditional: `walks` rows, each from one random latent to another. Conditional: one row
    per label in `labels` (default: every class), all walking between the same two latents;
    a single label gets `walks` rows of that class.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise KganError(f"`interpolate` must be an integer of at least 2 (frames per walk). "
                        f"Received: interpolate={frames}")
    if source.num_classes:
        labels = list(range(source.num_classes)) if labels is None else list(labels)
        rows = walks if len(labels) == 1 else len(labels)
        labels = labels * rows if len(labels) == 1 else labels
    else:
        labels_for(1, None, labels)  # refuses labels
        rows = walks
    ends = source.latents(2 * rows, seed)
    if source.num_classes and len(set(labels)) > 1:  # every class walks the same way
        ends = np.concatenate([np.repeat(ends[:1], rows, 0), np.repeat(ends[1:2], rows, 0)])
    path = slerp(ends[:rows], ends[rows:], np.linspace(0.0, 1.0, frames))  # (frames, rows, d)
    z = path.transpose(1, 0, 2).reshape(rows * frames, -1)
    batch = source.generate(z, labels_for(len(z), source.num_classes, None if labels is None
                                          else np.repeat(labels, frames)))
    return batch.reshape(rows, frames, *batch.shape[1:])


def write_interpolation(walks: np.ndarray, out: Path) -> list[Path]:
    """Writes `out` (PNG: one row per walk) and `out` with `.gif` (each frame shows every walk
    at one step, forward then back, so it loops smoothly)."""
    png_path("out", out)
    rows, frames = walks.shape[:2]
    strip = images.grid(images.to_uint8(walks.reshape(rows * frames, *walks.shape[2:])), frames)
    steps = list(range(frames)) + list(range(frames - 2, 0, -1))
    movie = np.stack([images.grid(images.to_uint8(walks[:, t])) for t in steps])
    gif = Path(out).with_suffix(".gif")
    return [images.save_png(strip, out), images.save_gif(movie, gif)]


def write(batch: np.ndarray, out: Path | None, individual: Path | None, seed: int,
          nrow: int | None = None) -> list[Path]:
    """Writes uint8 images as a grid to `out` and, with `individual`, one
    `seed<seed>-<index>.png` per image."""
    written = [] if out is None else [images.save_png(images.grid(batch, nrow),
                                                      png_path("out", out))]
    if individual is not None:
        written += [images.save_png(image, Path(individual) / f"seed{seed}-{i:04d}.png")
                    for i, image in enumerate(batch)]
    return written


def png_path(name: str, path: Path) -> Path:
    """`path` if it names a .png file (what is written there is PNG), else `KganError`."""
    if Path(path).suffix.lower() != ".png":
        raise KganError(f"`{name}` must name a .png file (the grid is written as PNG). "
                        f"Received: {name}={path}")
    return path


# Image to image ---------------------------------------------------------------------------------


def translator(run_or_export: str | Path) -> Translation:
    """The model of a pix2pix or cyclegan run directory, or of its export (a SavedModel folder
    `saved_models/NAME[/VERSION]`)."""
    path = Path(run_or_export)
    if (path / "config.json").is_file():
        _, config = runs.open_run(path)
        family = families.of(config.arch)
        if not family.translates:  # said before the model is loaded
            raise KganError(family.no_translation(path, config.arch))
        return family.translator(checkpoint.load_gan(path)[0], path)
    inside = sorted(p for p in path.glob(f"*/{runs.CONFIG}")) if path.is_dir() else []
    if inside:
        raise KganError(f"{path} is a folder of runs, not a run: give one of them (for "
                        f"example {inside[-1].parent}) or its export")
    version_dir = serving.resolve(path)
    return families.family_of_export(serving.metadata(version_dir)).export_translator(
        version_dir)


def translate_files(source: Translation, inputs: str | Path, out: str | Path,
                    direction: str = "a2b") -> list[Path]:
    """Translates an image file, or every png/jpg under a folder, into PNGs in `out` with the
    same names (and sub-folders). Inputs are converted to the model's channels and resized to
    its size (bicubic) where they differ; returns the written paths."""
    if direction not in source.shapes:
        raise KganError(f"Unknown direction {direction!r} for this model. Valid directions: "
                        f"{', '.join(source.shapes)}. Received: direction={direction}")
    inputs, out = Path(inputs), Path(out)
    # An output folder inside the input folder is not input (a second run would translate
    # the first one's outputs). The input folder itself as --out is refused below.
    inside = out.resolve() != inputs.resolve() and out.resolve().is_relative_to(inputs.resolve())
    files = [p for p in data.image_files(inputs)
             if not (inside and p.resolve().is_relative_to(out.resolve()))]
    if not files:
        raise KganError(f"No images to translate in {inputs} besides the outputs in {out}")
    (size, _, channels), _ = source.shapes[direction]
    targets = [out / (p.relative_to(inputs) if inputs.is_dir() else Path(p.name)).with_suffix(
        ".png") for p in files]
    seen, originals = {}, {p.resolve(): p for p in files}
    for path, target in zip(files, targets):
        if target in seen:
            raise KganError(f"{seen[target]} and {path} would both be written to {target}")
        if target.resolve() in originals:
            raise KganError(f"--out {out} would overwrite the input {originals[target.resolve()]} "
                            "with its translation: give another folder")
        seen[target] = path
    # Every input is read before anything is written: a bad one leaves no half-done folder.
    bad = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
        except data_sources.DECODE_ERRORS as e:
            bad.append(f"{path} ({data_sources.why_unreadable(e)})")
    if bad:
        raise KganError(f"Cannot read {len(bad)} of the {len(files)} images, so nothing was "
                        f"written: {'; '.join(bad[:3])}{'; ...' if len(bad) > 3 else ''}")
    written = []
    for start in range(0, len(files), CHUNK):
        batch = np.stack([data.read_image(p, channels, size)
                          for p in files[start : start + CHUNK]])
        translated = images.to_uint8(source.translate(
            batch.astype(np.float32) / 127.5 - 1.0, direction))
        written += [images.save_png(image, target)
                    for image, target in zip(translated, targets[start : start + CHUNK])]
    return written
