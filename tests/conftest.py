"""What the tests share: a toy dataset and config, step callbacks, saved-state comparison, the
CLI, and one long-lived child process per other backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker: workers of two threads each on two cores wait on each other
    # (two workers ran the suite in 6:03 so, in 5:41 with one thread each).
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cli.main import app  # noqa: E402
from kgan.checkpoint import load_gan  # noqa: E402
from kgan.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Every technique that adds state: labels, the moving average, spectral norm's vectors, lazy R1
# (by step count) and augmentation (noise draws).
TECHNIQUES = {"conditional": True, "ema": 0.9, "ema_start": 5, "spectral_norm": True, "r1": 1.0,
              "r1_every": 4, "augment": "translation,cutout,color"}
# The style-based GAN draws noise inside G (per-pixel noise, style mixing), and ADA keeps p in
# the model; a low target moves p from the first steps on.
STYLE_ADA = {"arch": "stylegan", "base_filters": 4, "conditional": True, "augment": "ada",
             "ada_kimg": 1, "ada_target": 0.01}


def write_toy_npz(folder: Path) -> Path:
    """`folder/toy.npz`: 200 random 8x8 gray uint8 images with labels 0..3, as the loader reads
    them (the same every time)."""
    rng = np.random.default_rng(0)
    path = folder / "toy.npz"
    np.savez(path, x_train=rng.integers(0, 256, (200, 8, 8), dtype=np.uint8),
             y_train=rng.integers(0, 4, 200))
    return path


@pytest.fixture
def toy_npz(tmp_path):
    """`write_toy_npz` in the test's folder."""
    return write_toy_npz(tmp_path)


def toy_config(npz, **overrides) -> TrainConfig:
    """A run of `npz` that is quick to train: tiny models, one step per call (so callbacks can
    act after any step), and no XLA, TensorBoard or curves.png unless a test asks for them
    (compiling and drawing would take longer than the training)."""
    return TrainConfig(**{"dataset": str(npz), "batch_size": 16, "latent_dim": 8, "seed": 3,
                          "epochs": 1, "steps_per_execution": 1, "jit": False,
                          "tensorboard": False, "curves": False, **overrides})


def kgan(*args):
    """`kgan ARGS` in this process (Typer's runner): exit code, stdout and stderr apart."""
    return CliRunner().invoke(app, [str(a) for a in args])


class At(keras.callbacks.Callback):
    """Runs `action(model)` once, after generator step `step`."""

    def __init__(self, step, action):
        super().__init__()
        self.step, self.action = step, action

    def on_train_batch_end(self, batch, logs=None):
        if self.model.steps == self.step:
            self.action(self.model)


def ctrl_c(model):
    os.kill(os.getpid(), signal.SIGINT)  # the real signal, handled by kgan's SIGINT handler


def poison(model):
    model.generator.trainable_variables[0].assign(
        np.full(model.generator.trainable_variables[0].shape, np.nan, np.float32))


def full_state(run_dir):
    """Every number a resumed run depends on: weights, both optimizers, the noise state."""
    gan, _ = load_gan(run_dir)
    variables = gan.weights + gan.d_optimizer.variables + gan.g_optimizer.variables
    return [keras.ops.convert_to_numpy(v) for v in variables] + [
        keras.ops.convert_to_numpy(gan.seed_generator.state)]


def assert_same_state(a, b):
    sa, sb = full_state(a), full_state(b)
    assert len(sa) == len(sb) > 20
    for x, y in zip(sa, sb, strict=True):
        np.testing.assert_array_equal(x, y)


# One child process per backend, reused by every test that needs it: Keras picks its backend
# once per process, and each fresh process would spend seconds importing TensorFlow and the
# backend again. Each request runs a script with `sys.argv` set, as `python -c` would.
_WORKER = r"""
import contextlib, io, json, sys, traceback
reply_to = sys.stdout
for line in sys.stdin:
    request, out = json.loads(line), io.StringIO()
    sys.argv = ["-c", *request["args"]]
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(request["script"], "<script>", "exec"), {"__name__": "__main__"})
        reply = {"stdout": out.getvalue()}
    except BaseException:
        reply = {"stdout": out.getvalue(), "error": traceback.format_exc()}
    reply_to.write(json.dumps(reply) + "\n")
    reply_to.flush()
"""


class BackendWorker:
    def __init__(self, backend):
        env = {**os.environ, "KERAS_BACKEND": backend, "OMP_WAIT_POLICY": "PASSIVE"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env, cwd=ROOT)

    def __call__(self, script, *args) -> str:
        """Runs `script` there and returns what it printed; its exception fails the test."""
        self.process.stdin.write(json.dumps({"script": script, "args": list(map(str, args))})
                                 + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        assert "error" not in reply, reply["error"]
        return reply["stdout"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def on_backend():
    """`on_backend("jax", script, *args)`: the script's stdout, from that backend's worker."""
    workers = {}

    def run(backend, script, *args):
        if backend not in workers:
            workers[backend] = BackendWorker(backend)
        return workers[backend](script, *args)

    yield run
    for worker in workers.values():
        worker.close()


# `kgan ARGS` as a script for `on_backend`: its stdout, or the failure with its output.
KGAN_CLI = r"""
import sys
from typer.testing import CliRunner
from cli.main import app
done = CliRunner().invoke(app, sys.argv[1:])
assert done.exit_code == 0, done.output
print(done.stdout, end="")
"""


# Runs exported .tflite and .onnx files in LiteRT and onnxruntime alone (TensorFlow, Keras and
# kgan cannot be imported): argv[1] is [[file, inputs .npz], ...]; saves each file's output.
_FORMAT_RUNTIMES = r"""
import json, sys
sys.modules["tensorflow"] = sys.modules["keras"] = sys.modules["kgan"] = None
import numpy as np, onnxruntime
from ai_edge_litert.interpreter import Interpreter
out = {}
for i, (file, feed) in enumerate(json.loads(sys.argv[1])):
    feed = dict(np.load(feed))
    out[str(i)] = (onnxruntime.InferenceSession(file).run(None, feed)[0] if file.endswith(".onnx")
                   else next(iter(Interpreter(model_path=file).get_signature_runner()(
                       **feed).values())))
np.savez(sys.argv[2], **out)
"""


def in_format_runtimes(jobs: list, work: Path) -> list:
    """The outputs of `jobs` (`(.tflite or .onnx file, {input name: array})`), run in LiteRT
    and onnxruntime alone in a fresh process, as a phone or an ONNX server would run them."""
    files = []
    for i, (file, feed) in enumerate(jobs):
        np.savez(work / f"feed-{i}.npz", **feed)
        files.append([str(file), str(work / f"feed-{i}.npz")])
    subprocess.run([sys.executable, "-c", _FORMAT_RUNTIMES, json.dumps(files),
                    str(work / "outputs.npz")], check=True, capture_output=True)
    with np.load(work / "outputs.npz") as out:
        return [out[str(i)] for i in range(len(jobs))]


def readme_blocks(heading: str, language: str) -> list[str]:
    """The `language` code blocks of the README under `heading` ("## Deploy", "### Fine-tuning"),
    up to the next heading of its level or above."""
    level, blocks, fence, block, inside = len(heading.split()[0]), [], None, [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            if fence is None:  # a block opens: its language
                fence, block = line[3:], []
            else:
                if inside and fence == language:
                    blocks.append("\n".join(block) + "\n")
                fence = None
        elif fence is not None:
            block.append(line)
        elif line.startswith("#"):
            depth = len(line) - len(line.lstrip("#"))
            inside = line == heading or (inside and depth > level)
    return blocks


def gray_levels(a, b) -> float:
    """The largest difference of two image batches in [-1, 1], in gray levels."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b)))) * 127.5


@pytest.fixture(scope="session", autouse=True)
def kgan_cache(tmp_path_factory):
    """One cache per test session (classifiers, packed datasets), shared by the xdist workers
    (file locks let one build while the other waits); no test writes to the user's cache.

    KGAN_TEST_CACHE=DIR keeps it across local sessions (CI always starts empty).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this session's
    path = Path(os.environ.get("KGAN_TEST_CACHE") or shared / "kgan-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("KGAN_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def fashion(kgan_cache):
    """The Fashion-MNIST evaluation classifier (trained once per session, in about a minute)."""
    from kgan import metrics

    return metrics.classifier("fashion_mnist", None)
