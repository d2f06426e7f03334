"""pix2pix and CycleGAN: training on every backend, exact resume, the history pool, export,
`kgan translate`, and the settings they refuse."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import kgan

from kgan import draw, export, images
from kgan import training as lib
from kgan.checkpoint import build_gan, load_gan
from kgan.config import TrainConfig
from kgan.errors import KganError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """24 gray 8x8 inputs and 24 RGB targets (and 4 of each to hold out), random."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_a=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8),
             x_b=rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8),
             x_a_test=rng.integers(0, 256, (4, 8, 8), dtype=np.uint8),
             x_b_test=rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8))
    return path


# Trains a toy run of sys.argv[3] for 2 epochs of 2 steps (jitter on, a history pool of 3
# that fills in the first step), copies it as it stood after epoch 1, resumes the copy and
# prints both end states as lists, the translations' shapes and ranges, and the logs.
RESUME = r"""
import json, shutil, sys
from pathlib import Path
import keras
import numpy as np
from kgan import runs, training
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig

npz, tmp, arch = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
config = TrainConfig(arch=arch, dataset=npz, batch_size=4, base_filters=4, seed=3, epochs=2,
                     steps_per_epoch=2, tensorboard=False, curves=False, pool_size=3,
                     identity=0.0, jitter=True, backend=keras.backend.backend())


class KeepEpoch1(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:  # after the checkpoint: a run stopped here
            shutil.copytree(runs.newest(tmp / "runs"), tmp / "stopped")


whole = training.train(config, runs_dir=tmp / "runs", callbacks=[KeepEpoch1()]).run_dir
resumed = training.resume(tmp / "stopped").run_dir


def state(run_dir):
    model, _ = load_gan(run_dir)
    variables = model.weights + model.d_optimizer.variables + model.g_optimizer.variables
    seeds = [model.seed_generator.state, *model.dropout_seeds]
    return model, [keras.ops.convert_to_numpy(v) for v in variables + seeds]


model, a = state(whole)
_, b = state(resumed)
out = {"variables": len(a), "differ": [i for i, (x, y) in enumerate(zip(a, b))
                                       if x.shape != y.shape or not np.array_equal(x, y)],
       "logs": [json.loads(line) for line in open(whole / runs.METRICS)],
       "pools": [int(count.numpy() if hasattr(count, "numpy") else count)
                 for _, count in getattr(model, "pools", [])]}
held_out = np.load(npz)
inputs = {"a2b": held_out["x_a_test"][..., None] / 127.5 - 1.0, "b2a": held_out["x_b_test"] / 127.5 - 1.0}
for direction, generator in zip(("a2b", "b2a"), model.generators):
    y = keras.ops.convert_to_numpy(model.translate(inputs[direction].astype("float32"), direction))
    out[direction] = [list(y.shape), float(y.min()), float(y.max())]
print(json.dumps(out))
"""


def run_resume(backend, on_backend, toy, tmp_path, arch):
    args = (toy, tmp_path, arch)
    if backend != "tensorflow":
        return json.loads(on_backend(backend, RESUME, *args))
    out = io.StringIO()  # this process is TensorFlow's
    with contextlib.redirect_stdout(out):
        sys.argv = ["-c", *map(str, args)]
        exec(compile(RESUME, "<resume>", "exec"), {"__name__": "__main__"})
    return json.loads(out.getvalue())


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("arch", ["pix2pix", "cyclegan"])
def test_every_backend_trains_and_resumes_bit_identically(backend, arch, on_backend, toy,
                                                          tmp_path):
    out = run_resume(backend, on_backend, toy, tmp_path, arch)
    assert out["variables"] > 40 and out["differ"] == []  # weights, Adam, seeds, pools
    keys = {"pix2pix": {"gan_loss", "l1_loss"}, "cyclegan": {"gan_loss", "cycle_loss",
                                                             "identity_loss"}}[arch]
    assert [r["step"] for r in out["logs"]] == [2, 4]
    for record in out["logs"]:
        assert keys | {"d_loss", "g_loss"} <= set(record)
        assert all(np.isfinite(record[k]) for k in keys)
    assert out["a2b"][0] == [4, 8, 8, 3] and -1 <= out["a2b"][1] < out["a2b"][2] <= 1
    if arch == "cyclegan":
        assert out["b2a"][0] == [4, 8, 8, 1] and -1 <= out["b2a"][1] < out["b2a"][2] <= 1
        assert out["pools"] == [3, 3]  # both pools full (and their contents compared above)
