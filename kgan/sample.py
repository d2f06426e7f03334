"""`draw()` images from a run or an exported model, and write them as a grid and single PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgan import images
from kgan.errors import KganError


def draw_from_run(run_dir: str | Path, n: int, seed: int, best: bool = False, ema: bool = True,
                  labels=None) -> np.ndarray:
    """`n` uint8 images from the run's latest (or best) checkpoint; same `seed`, same images.

    With `ema`, a run trained with `--ema` draws from the moving average of its generator.
    A conditional run draws `labels` (one, or one per image; default: the classes in turn).
    """
    from kgan.training import load_gan

    check_n(n)
    gan, _ = load_gan(run_dir, best, ema=ema)
    return images.to_uint8(draw(gan, n, seed, labels=labels))


def draw(gan, n: int, seed: int, chunk: int = 256, labels=None, z=None) -> np.ndarray:
    """`n` float images in [-1, 1] from `gan`'s generator for `seed` (or for the latents `z`),
    `chunk` at a time; a conditional GAN draws `labels` (see `labels_for`)."""
    import keras

    z = gan.sample_noise(n, seed=seed) if z is None else keras.ops.convert_to_tensor(z)
    labels = gan.labels_for(n, labels)
    return np.concatenate([
        keras.ops.convert_to_numpy(gan.generator(
            gan.g_inputs(z[i : i + chunk], None if labels is None else labels[i : i + chunk]),
            training=False))
        for i in range(0, n, chunk)])


def labels_for(n: int, num_classes: int | None, labels=None) -> np.ndarray | None:
    """`n` int32 labels: `labels` (one, or one per image), by default 0, 1, ... in turn.

    None for an unconditional model (`num_classes` None); `labels` then raises `KganError`.
    """
    if not num_classes:
        if labels is not None:
            raise KganError("--label needs a conditional run (trained with --conditional)")
        return None
    if labels is None:
        return np.arange(n, dtype="int32") % num_classes
    labels = np.asarray(labels).reshape(-1)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise KganError(f"`label` must be in [0, {num_classes}) for this run. "
                        f"Received: label={bad[0]}")
    return np.broadcast_to(labels.astype("int32"), (n,)).copy()


def parse_labels(spec: str) -> list[int]:
    """`"3"`, `"0-9"` or `"0,2,5"` (or a mix, `"0-2,7"`) -> the listed labels in order."""
    labels = []
    try:
        for part in spec.split(","):
            first, _, last = part.strip().partition("-")
            labels += range(int(first), int(last or first) + 1)
    except ValueError:
        labels = []
    if not labels:
        raise KganError(f"`labels` must look like 3, 0-9 or 0,2,5. Received: labels={spec}")
    return labels


def class_rows(gan, labels: list[int], per_class: int, seed: int) -> np.ndarray:
    """One row of `per_class` images per label in `labels`, the same latents in every row."""
    from keras import ops

    z = np.tile(ops.convert_to_numpy(gan.sample_noise(per_class, seed=seed)), (len(labels), 1))
    return draw(gan, len(z), seed, labels=np.repeat(labels, per_class), z=z)


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


def interpolate(gan, frames: int, seed: int, labels=None, walks: int = 8) -> np.ndarray:
    """Images along spherical walks between random latents: (rows, frames, H, W, C) in [-1, 1].

    Unconditional: `walks` rows, each from one random latent to another. Conditional: one row
    per label in `labels` (default: every class), all walking between the same two latents;
    a single label gets `walks` rows of that class.
    """
    from keras import ops

    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise KganError(f"`interpolate` must be an integer of at least 2 (frames per walk). "
                        f"Received: interpolate={frames}")
    if gan.num_classes:
        labels = list(range(gan.num_classes)) if labels is None else list(labels)
        rows = walks if len(labels) == 1 else len(labels)
        labels = labels * rows if len(labels) == 1 else labels
    else:
        labels_for(1, None, labels)  # refuses labels
        rows = walks
    ends = ops.convert_to_numpy(gan.sample_noise(2 * rows, seed=seed))
    if gan.num_classes and len(set(labels)) > 1:  # every class walks the same way
        ends = np.concatenate([np.repeat(ends[:1], rows, 0), np.repeat(ends[1:2], rows, 0)])
    path = slerp(ends[:rows], ends[rows:], np.linspace(0.0, 1.0, frames))  # (frames, rows, d)
    z = path.transpose(1, 0, 2).reshape(rows * frames, -1)
    batch = draw(gan, len(z), seed, labels=None if labels is None
                 else np.repeat(labels, frames), z=z)
    return batch.reshape(rows, frames, *batch.shape[1:])


def write_interpolation(walks: np.ndarray, out: Path) -> list[Path]:
    """Writes `out` (PNG: one row per walk) and `out` with `.gif` (each frame shows every walk
    at one step, forward then back, so it loops smoothly)."""
    rows, frames = walks.shape[:2]
    strip = images.grid(images.to_uint8(walks.reshape(rows * frames, *walks.shape[2:])), frames)
    steps = list(range(frames)) + list(range(frames - 2, 0, -1))
    movie = np.stack([images.grid(images.to_uint8(walks[:, t])) for t in steps])
    try:
        return [images.save_png(strip, out), images.save_gif(movie, Path(out).with_suffix(".gif"))]
    except OSError as e:
        raise KganError(f"Cannot write {e.filename or out}: {e.strerror or e}") from None


def check_n(n: int, name: str = "n") -> None:
    """Raises `KganError` unless `n` is a positive integer (checked before any work starts)."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise KganError(f"`{name}` must be a positive integer. Received: {name}={n}")


def write(batch: np.ndarray, out: Path | None, individual: Path | None, seed: int,
          nrow: int | None = None) -> list[Path]:
    """Writes a grid to `out` and, with `individual`, one `seed<seed>-<index>.png` per image."""
    written = []
    try:
        if out is not None:
            written.append(images.save_png(images.grid(batch, nrow), out))
        if individual is not None:
            for i, image in enumerate(batch):
                written.append(images.save_png(image, Path(individual) / f"seed{seed}-{i:04d}.png"))
    except OSError as e:
        raise KganError(f"Cannot write {e.filename or out}: {e.strerror or e}") from None
    return written
