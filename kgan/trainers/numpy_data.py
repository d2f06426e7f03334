"""Batches from NumPy for the JAX and PyTorch trainers (TensorFlow uses `tf.data`)."""

from __future__ import annotations

import numpy as np


def make_dataset(arrays: tuple, batch_size: int, seed: int,
                 steps_per_epoch: int, first_epoch: int, last_epoch: int, skip_steps: int = 0,
                 paired: bool = True, strategy=None):
    """Batches of `arrays` (one tuple per step) for epochs `first_epoch` .. `last_epoch - 1`,
    `steps_per_epoch` each.

    `arrays` are read by index (`kgan.data.Images`, or NumPy arrays): a step reads only its
    batch's rows. Each epoch's order is a permutation keyed by (seed, epoch), so a resumed run
    sees exactly the batches an uninterrupted one would; `skip_steps` drops the first epoch's
    trained part.
    `paired` arrays (images and labels, A and B of pix2pix) share one order; otherwise (A and
    B of cyclegan) each array after the first has its own, keyed by (seed, epoch, index).
    `strategy` is TensorFlow's (its multi-worker input); JAX's data parallelism shards each
    batch in `fit`.
    """
    for epoch in range(first_epoch, last_epoch):
        orders = [np.random.default_rng([seed, epoch] if k == 0 or paired else [seed, epoch, k])
                  .permutation(len(arrays[0 if paired else k]))
                  for k in range(len(arrays))]
        for step in range(skip_steps if epoch == first_epoch else 0, steps_per_epoch):
            window = slice(step * batch_size, (step + 1) * batch_size)
            yield tuple(array[order[window]] for array, order in zip(arrays, orders))
