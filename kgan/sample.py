"""`draw()` images from a run or an exported model, and write them as a grid and single PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgan import images
from kgan.errors import KganError


def draw_from_run(run_dir: str | Path, n: int, seed: int, best: bool = False) -> np.ndarray:
    """`n` uint8 images from the run's latest (or best) checkpoint; same `seed`, same images."""
    from kgan.training import load_gan

    check_n(n)
    gan, _ = load_gan(run_dir, best)
    return images.to_uint8(draw(gan, n, seed))


def draw(gan, n: int, seed: int, chunk: int = 256) -> np.ndarray:
    """`n` float images in [-1, 1] from `gan`'s generator for `seed`, `chunk` at a time."""
    import keras

    z = gan.sample_noise(n, seed=seed)
    return np.concatenate([keras.ops.convert_to_numpy(gan.generator(z[i : i + chunk],
                                                                    training=False))
                           for i in range(0, n, chunk)])


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
