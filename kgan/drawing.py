"""What images are drawn from: a `Source` (noise to images) or a `Translation` (images to
images), each either a run's model or its export. The families implement them
(`kgan.families.*`); `kgan.draw` writes grids, walks and files on top of them, the same way for
a run and its export.
"""

from __future__ import annotations

import numpy as np

from kgan.errors import KganError

CHUNK = 256  # images per generator call: bounds memory for large n


class Source:
    """Where images come from. `latents(n, seed)`: float32 (n, latent_dim), the same for the
    same seed; `generate(z, labels)`: float images in [-1, 1]; `num_classes`: None unless
    conditional; `truncates`: a StyleGAN-style generator, drawn at psi `truncation`."""

    num_classes: int | None = None
    truncates: bool = False
    truncation: float = 1.0

    def truncate(self, psi: float) -> Source:
        """Draws at truncation `psi` from now on (1: none); raises `KganError` for a generator
        without truncation, or a psi that is not a finite number."""
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not np.isfinite(psi):
            raise KganError(f"`truncation` must be a finite number. Received: truncation={psi}")
        if psi != 1 and not self.truncates:
            raise KganError("--truncation needs a stylegan generator (it pulls styles towards "
                            f"their average). Received: truncation={psi}")
        self.truncation = float(psi)
        return self

    def latents(self, n: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return np.concatenate([
            self._generate(z[i : i + CHUNK], None if labels is None else labels[i : i + CHUNK])
            for i in range(0, len(z), CHUNK)])

    def _generate(self, z, labels) -> np.ndarray:
        raise NotImplementedError


class Translation:
    """A pix2pix or cyclegan model. `translate(images, direction)`: float images in [-1, 1] ->
    float images in [-1, 1]; `shapes[direction]`: (input shape, output shape)."""

    shapes: dict

    def translate(self, batch: np.ndarray, direction: str = "a2b") -> np.ndarray:
        raise NotImplementedError
