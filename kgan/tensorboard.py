"""TensorBoard logging through `tf.summary` (TensorFlow is installed with kgan on every backend).

    tensorboard --logdir runs
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

SCALARS = ("d_loss", "g_loss", "d_real", "d_fake", "r_t", "ada_p", "images_per_sec", "fid",
           "kid")


class Writer:
    """Writes one epoch's scalars and sample grid to an event file in `logdir`."""

    def __init__(self, logdir: Path):
        self.writer = tf.summary.create_file_writer(str(logdir))

    def write(self, epoch: int, record: dict | None, grid: np.ndarray | None) -> None:
        with self.writer.as_default(step=epoch):
            for key in SCALARS:
                if record and isinstance(record.get(key), (int, float)):
                    tf.summary.scalar(key, record[key])
            verdict = (record or {}).get("health")
            if isinstance(verdict, dict):  # the watchdog's (kgan.health)
                tf.summary.scalar("health/alarms", len(verdict["alarms"]))
                if "diversity" in verdict:
                    tf.summary.scalar("health/diversity", verdict["diversity"])
                tf.summary.text("health", "; ".join(verdict["alarms"]) or "ok")
            if grid is not None:
                tf.summary.image("samples", grid[None], max_outputs=1)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
