"""TensorBoard event files, in the format `tf.summary` writes (TensorFlow is installed with kgan
on every backend).

    tensorboard --logdir runs

The events are written as `tf.train.Event` records through `tf.io.TFRecordWriter`, not through
`tf.summary`: a summary writer drops what it cannot write (a full disk left a file cut
mid-record and the run "finished"), where a record writer raises. A failed write is one
`KganError` naming the file; the events written before it are kept.
"""

from __future__ import annotations

import io
import os
import socket
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from kgan.errors import KganError
from kgan.runs import make_folder

SCALARS = ("d_loss", "g_loss", "d_real", "d_fake", "r_t", "ada_p", "images_per_sec", "fid",
           "kid")


def _value(tag: str, plugin: str, tensor) -> tf.compat.v1.Summary.Value:
    """A summary value as `tf.summary` (TF2) writes it: a tensor and its plugin's name."""
    metadata = tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name=plugin))
    return tf.compat.v1.Summary.Value(tag=tag, metadata=metadata,
                                      tensor=tf.make_tensor_proto(tensor))


class Writer:
    """Writes one epoch's scalars, health and sample grid to a new event file in `logdir`."""

    def __init__(self, logdir: Path):
        self.path = make_folder(logdir) / (f"events.out.tfevents.{int(time.time())}."
                                           f"{socket.gethostname()}.{os.getpid()}.v2")
        self.writer = None
        self._write(tf.compat.v1.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, epoch: int, record: dict | None, grid: np.ndarray | None) -> None:
        record = record or {}
        values = [_value(key, "scalars", np.float32(record[key])) for key in SCALARS
                  if isinstance(record.get(key), (int, float))]
        verdict = record.get("health")
        if isinstance(verdict, dict):  # the watchdog's (kgan.health)
            values.append(_value("health/alarms", "scalars", np.float32(len(verdict["alarms"]))))
            if "diversity" in verdict:
                values.append(_value("health/diversity", "scalars",
                                     np.float32(verdict["diversity"])))
            values.append(_value("health", "text", np.array(
                ("; ".join(verdict["alarms"]) or "ok").encode(), dtype=object)))
        if grid is not None:
            png = io.BytesIO()
            Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(png, "PNG")
            height, width = grid.shape[:2]
            values.append(_value("samples", "images", np.array(
                [str(width).encode(), str(height).encode(), png.getvalue()], dtype=object)))
        self._write(tf.compat.v1.Event(wall_time=time.time(), step=epoch,
                                       summary=tf.compat.v1.Summary(value=values)))

    def _write(self, event) -> None:
        try:
            if self.writer is None:
                self.writer = tf.io.TFRecordWriter(str(self.path))
            self.writer.write(event.SerializeToString())
            self.writer.flush()
        except tf.errors.OpError as e:  # "<path>; File too large", "...; No space left ..."
            raise KganError(f"Cannot write {self.path}: {e.message.rpartition('; ')[2]}; the "
                            "events written before are kept") from None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
