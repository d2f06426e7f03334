"""Image helpers: [-1, 1] floats -> uint8, grids and PNG files (NumPy and Pillow only)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from kgan.runs import atomic_path


def to_uint8(images) -> np.ndarray:
    """Maps images in [-1, 1] to uint8 [0, 255] (rounded, clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tiles uint8 images (N, H, W, C) into one (rows*H, nrow*W, C) image, `nrow` per row.

    `nrow` defaults to the smallest width that makes the grid near-square (ceil(sqrt(N))).
    """
    n, h, w, c = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.zeros((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), np.uint8)
    for i, image in enumerate(images):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        out[top : top + h, left : left + w] = image
    return out


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Writes a uint8 (H, W, 1|3) image as PNG, atomically (temp file + rename)."""
    path = Path(path)
    mode = "L" if image.shape[-1] == 1 else "RGB"
    with atomic_path(path) as tmp:
        Image.fromarray(image[..., 0] if mode == "L" else image, mode=mode).save(tmp, format="PNG")
    return path


def save_gif(frames: np.ndarray, path: str | Path, duration_ms: int = 80) -> Path:
    """Writes uint8 frames (T, H, W, 1|3) as an endlessly looping animated GIF, atomically."""
    path = Path(path)
    pictures = [Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
                for frame in frames]
    with atomic_path(path) as tmp:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=duration_ms, loop=0)
    return path
