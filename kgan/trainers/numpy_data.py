"""Batches from NumPy for the JAX and PyTorch trainers (TensorFlow uses `tf.data`)."""

from __future__ import annotations

import numpy as np


def make_dataset(x: np.ndarray, batch_size: int, seed: int, steps_per_epoch: int,
                 first_epoch: int, last_epoch: int, skip_steps: int = 0,
                 y: np.ndarray | None = None):
    """Batches of `x` (with `y`: `(x, y)` pairs) for epochs `first_epoch` .. `last_epoch - 1`,
    `steps_per_epoch` each.

    Each epoch's order is a permutation keyed by (seed, epoch), so a resumed run sees exactly
    the batches an uninterrupted one would; `skip_steps` drops the first epoch's trained part.
    """
    for epoch in range(first_epoch, last_epoch):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        for step in range(skip_steps if epoch == first_epoch else 0, steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            yield (x[batch],) if y is None else (x[batch], y[batch].astype(np.int32))
