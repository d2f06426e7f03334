"""Several devices: tf.distribute (mirrored on 2 logical CPUs, 2 workers on 127.0.0.1) and
JAX DataParallel (2 forced host devices). Each device setup needs a process of its own, which
then trains every case of it."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TECHNIQUES, write_toy_npz

from kgan import training as lib
from kgan.build import build_gan
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig
from kgan.errors import KganError

ROOT = Path(__file__).resolve().parents[1]

# With the CPU split into 2 logical devices first: for each case of argv[3] (loss, options),
# two epochs of the toy data on one device and on both (mirrored); the first case trains one
# epoch and resumes for the second. Prints the run directories and the number of replicas.
TRAIN_ON_TWO_CPUS = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kgan import distribute, training
from kgan.config import TrainConfig
from kgan.errors import KganError

results = []
for case, (loss, options) in enumerate(json.loads(sys.argv[3])):
    for strategy in ("default", "mirrored"):
        config = TrainConfig(dataset=sys.argv[1], batch_size=16, latent_dim=8, seed=3,
                             epochs=1 if case == 0 else 2, jit=False, tensorboard=False,
                             curves=False, strategy=strategy, loss=loss, **options)
        uneven = None
        if strategy != "default":
            try:
                training.train(TrainConfig(**{**config.__dict__, "batch_size": 15}),
                               runs_dir=sys.argv[2])
            except KganError as e:
                uneven = str(e)
        result = training.train(config, runs_dir=sys.argv[2])
        if case == 0:  # a distributed run resumes distributed
            result = training.resume(result.run_dir, epochs=2)
        results.append({"run_dir": str(result.run_dir), "replicas": distribute.replicas(config),
                        "uneven": uneven, "steps": result.step})
print(json.dumps(results))
"""


def run_python(script, *args, env=None):
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def weights(run_dir):
    gan, _ = load_gan(run_dir)
    return [keras.ops.convert_to_numpy(v) for v in gan.weights]


# The plain GAN, and the gradient penalty with every technique (each draws noise per replica).
CASES = {"bce": ("bce", {}), "wgan-gp-techniques": ("wgan-gp", TECHNIQUES)}


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """Every case, on one device and mirrored on two, in one process: {case: (one, two)}."""
    tmp = tmp_path_factory.mktemp("mirrored")
    results = run_python(TRAIN_ON_TWO_CPUS, write_toy_npz(tmp), tmp / "runs",
                         json.dumps(list(CASES.values())))
    return {case: tuple(results[2 * i : 2 * i + 2]) for i, case in enumerate(CASES)}


@pytest.mark.parametrize("case", list(CASES))
def test_mirrored_on_two_devices_trains_what_one_device_trains(mirrored, case):
    loss, options = CASES[case]
    one, two = mirrored[case]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["steps"] == two["steps"] == 24
    assert two["uneven"] == ("--batch-size is the global batch and must split evenly over the 2 "
                             "replicas of --strategy mirrored. Received: batch_size=15")
    # Same global batches, and the replicas' noise rows together are one device's noise: after
    # 24 steps the two runs differ by float rounding, which Adam amplifies where a gradient is
    # near 0, a small fraction of what training moved. (A replica drawing the other's noise,
    # or unscaled losses doubling the gradients, differs by as much as training moved.)
    config = TrainConfig(batch_size=16, latent_dim=8, seed=3, loss=loss, image_shape=(8, 8, 1),
                         num_classes=4, **options)
    a, b = weights(one["run_dir"]), weights(two["run_dir"])
    # With the techniques: 2 label embeddings, 3 power-iteration vectors, 9 averaged G weights.
    assert len(a) == len(b) == (28 if options else 14)
    assert_trained_alike(a, b, config)


def assert_trained_alike(a, b, config):
    """Weights `a` and `b` of two runs of `config` moved alike from its initial weights."""
    start = [keras.ops.convert_to_numpy(v) for v in build_gan(config).weights]
    for x, y, s in zip(a, b, start, strict=True):
        if x.size > 1:  # the last bias is 0 throughout (its gradient cancels)
            moved = np.abs(x - s)
            assert moved.mean() > 5e-4  # it trained
            assert np.abs(x - y).mean() < 0.03 * moved.mean()
            assert np.abs(x - y).max() < 0.2 * moved.max()


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_identical_weights(toy_npz, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "kgan", "train", "--strategy", "multiworker", "--dataset",
         str(toy_npz), "--epochs", "2", "--batch-size", "16", "--latent-dim", "8", "--quiet",
         "--runs-dir", str(tmp_path / "runs")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr[-3000:]
    chief, other = (Path(out.strip()) for out, _ in outputs)
    assert chief.name.endswith("-mlp-toy") and other.name.endswith("-mlp-toy-worker1")
    assert json.loads((chief / "status.json").read_text())["status"] == "finished"
    for x, y in zip(weights(chief), weights(other), strict=True):
        np.testing.assert_array_equal(x, y)
    assert load_gan(chief)[0].steps == 24
    # Each worker read only its half of every global batch (make_dataset's worker_batches);
    # together the halves are the batches one device trains on (without XLA and fused steps,
    # as the workers train: here to the last bit).
    config = TrainConfig(dataset=str(toy_npz), epochs=2, batch_size=16, latent_dim=8,
                         jit=False, steps_per_execution=1, tensorboard=False, curves=False)
    one = lib.train(config, runs_dir=tmp_path / "one").run_dir
    assert_trained_alike(weights(chief), weights(one), TrainConfig.load(one / "config.json"))


def test_multiworker_without_tf_config_is_one_clear_error(toy_npz, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KganError, match="^--strategy multiworker reads the cluster from the "
                       "TF_CONFIG environment variable, which is not set"):
        lib.train(TrainConfig(dataset=str(toy_npz), strategy="multiworker"),
                  runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_strategies_other_backends_cannot_use_are_refused():
    with pytest.raises(KganError, match=r"^--strategy tpu needs the tensorflow backend\. "):
        TrainConfig(strategy="tpu", backend="jax").validate()
    with pytest.raises(KganError, match=r"^--strategy mirrored needs the tensorflow or jax "):
        TrainConfig(strategy="mirrored", backend="torch").validate()


# One epoch on JAX on one device, then on both (the distribution is process-wide, so in this
# order); prints the runs and how their weights are laid out.
TRAIN_ON_JAX = r"""
import json, sys
from kgan import training
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig

results = []
for strategy in ("default", "mirrored"):
    config = TrainConfig(dataset=sys.argv[1], batch_size=16, latent_dim=8, seed=3, epochs=1,
                         backend="jax", strategy=strategy, tensorboard=False, curves=False)
    result = training.train(config, runs_dir=sys.argv[2])
    gan, _ = load_gan(result.run_dir, distributed=True)
    devices = sorted({str(d) for d in gan.generator.weights[0].value.sharding.device_set})
    results.append({"run_dir": str(result.run_dir), "devices": devices})
print(json.dumps(results))
"""


def test_jax_data_parallel_on_two_devices_trains_what_one_device_trains(toy_npz, tmp_path):
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    one, two = run_python(TRAIN_ON_JAX, toy_npz, tmp_path / "runs", env=env)
    assert len(one["devices"]) == 1 and len(two["devices"]) == 2  # replicated on both
    for x, y in zip(weights(one["run_dir"]), weights(two["run_dir"]), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)  # one SPMD program: rounding
