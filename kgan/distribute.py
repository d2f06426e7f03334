"""Where a run trains: one device, or a replica per device with the same global batch.

TensorFlow uses its own distribution engine (`tf.distribute`), JAX Keras' distribution API
(`keras.distribution.DataParallel`); the PyTorch backend trains on one device. `--batch-size` is
always the global batch: each of N replicas trains on batch_size / N examples per step, and the
gradients are summed over replicas, so that N replicas compute what one device would.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import keras

from kgan.config import TrainConfig
from kgan.errors import KganError

TPU_DEVICE = Path("/dev/accel0")  # present on Cloud TPU VMs


def replicas(config: TrainConfig) -> int:
    """How many replicas `config.strategy` trains on here (1 on a single device)."""
    if keras.backend.backend() == "tensorflow":
        return _tf_strategy(config.strategy).num_replicas_in_sync
    if keras.backend.backend() == "jax":
        return len(_jax_devices(config.strategy))
    return 1


@contextlib.contextmanager
def scope(config: TrainConfig):
    """Builds models and optimizers inside it so that their variables live on every replica."""
    n = replicas(config)
    if config.batch_size % n:
        raise KganError(f"--batch-size is the global batch and must split evenly over the {n} "
                        f"replicas of --strategy {config.strategy}. "
                        f"Received: batch_size={config.batch_size}")
    if keras.backend.backend() == "tensorflow":
        with _tf_strategy(config.strategy).scope():
            yield
    elif keras.backend.backend() == "jax" and n > 1:
        # Process-wide: fit() shards each batch over the devices by the same distribution.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=_jax_devices(config.strategy)))
        yield
    else:
        yield


@functools.cache
def _tf_strategy(name: str):
    """The `tf.distribute` strategy called `name`; made once per process (a multi-worker one
    must exist before TensorFlow runs anything else)."""
    import tensorflow as tf  # tf.distribute: only on the TensorFlow backend

    if name == "auto":
        name = ("tpu" if TPU_DEVICE.exists() or os.environ.get("TPU_NAME") else
                "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All GPUs; without any, all logical CPU devices (one, unless the CPU was split).
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise KganError("--strategy multiworker reads the cluster from the TF_CONFIG "
                            "environment variable, which is not set (see the README)")
        gpus = tf.config.list_physical_devices("GPU")  # logical ones would start the runtime
        implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL if gpus
                          else tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation))
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=os.environ.get("TPU_NAME", "local"))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _jax_devices(name: str) -> list:
    devices = keras.distribution.list_devices()
    return devices if name in ("auto", "mirrored") else devices[:1]


def worker_suffix(config: TrainConfig) -> str:
    """"" on the chief (or a single machine), "-worker<i>" on the other workers of a cluster:
    every worker trains and saves the same weights, into a run directory of its own."""
    if keras.backend.backend() != "tensorflow" or config.strategy != "multiworker":
        return ""
    strategy = _tf_strategy(config.strategy)
    if strategy.extended.should_checkpoint:
        return ""
    return f"-worker{strategy.cluster_resolver.task_id}"
