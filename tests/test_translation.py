"""pix2pix and CycleGAN: training on every backend, exact resume, the history pool, export,
`kgan translate`, and the settings they refuse."""

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import At, assert_same_state, ctrl_c, gray_levels, in_format_runtimes, kgan

from kgan import export, images, serving, training
from kgan.build import build_gan
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig
from kgan.errors import KganError
from kgan.families.translation import serving as translation_serving

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
cyclegan = {"pool_size": 3, "identity": 0.0} if arch == "cyclegan" else {}
config = TrainConfig(arch=arch, dataset=npz, batch_size=4, base_filters=4, seed=3, epochs=2,
                     steps_per_epoch=2, tensorboard=False, curves=False, jitter=True,
                     backend=keras.backend.backend(), **cyclegan)


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
       "pools": [int(keras.ops.convert_to_numpy(count)) for _, count in getattr(model, "pools",
                                                                                  [])],
       "run": str(whole)}
held_out = np.load(npz)
inputs = {"a2b": held_out["x_a_test"][..., None] / 127.5 - 1.0,
          "b2a": held_out["x_b_test"] / 127.5 - 1.0}
for direction, _ in zip(("a2b", "b2a"), model.generators):
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


ARCHS = ("pix2pix", "cyclegan")


@pytest.fixture(scope="module")
def tf_runs(toy, tmp_path_factory):
    """The TensorFlow runs of `RESUME` (also exported and translated by the tests below)."""
    return {arch: run_resume("tensorflow", None, toy, tmp_path_factory.mktemp(arch), arch)
            for arch in ARCHS}


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_backend_trains_and_resumes_bit_identically(backend, arch, on_backend, toy,
                                                          tmp_path, request):
    out = (request.getfixturevalue("tf_runs")[arch] if backend == "tensorflow"
           else run_resume(backend, on_backend, toy, tmp_path, arch))
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


def test_the_history_pool_answers_like_the_paper():
    """Filling: each fake is stored and returned. Full: every answer is the fake or an image
    the pool held, and what it returned from the pool is replaced by that step's fake."""
    config = TrainConfig(arch="cyclegan", image_shape=(4, 4, 1), target_channels=1,
                         base_filters=2, pool_size=4, seed=1)
    model = build_gan(config)
    pool, count = model.pools[0]
    fakes = [np.full((3, 4, 4, 1), float(i + 1), np.float32) for i in range(8)]
    np.testing.assert_array_equal(model.from_pool(pool, count, fakes[0]), fakes[0])
    assert int(count.numpy()) == 3
    held = set(pool.numpy()[:, 0, 0, 0]) - {0.0}
    assert held == {1.0}
    swapped = 0
    for fake in fakes[1:]:
        before = set(pool.numpy()[:, 0, 0, 0])
        answer = model.from_pool(pool, count, fake).numpy()[:, 0, 0, 0]
        assert all(v == fake[0, 0, 0, 0] or v in before for v in answer)
        swapped += int(np.sum(answer != fake[0, 0, 0, 0]))
    assert int(count.numpy()) == 4 and 3 < swapped < 18  # about half of 21 answers once full


# The exports of both toy runs, called in a fresh interpreter where Keras and kgan cannot be
# imported: TensorFlow alone, as TF Serving. PNG requests go through the README's example
# client, decoded the way TF Serving's REST API maps `{"b64": ...}` onto a string tensor.
TF_ONLY = r"""
import json, sys
sys.modules["keras"] = sys.modules["kgan"] = None
sys.path.insert(0, "examples")
import numpy as np
import tensorflow as tf
import png_client

out = {}
for arch, path in json.loads(sys.argv[1]).items():
    model = tf.saved_model.load(path)
    meta = json.load(open(path + "/assets.extra/kgan.json"))
    for direction, (shape, _) in meta["shapes"].items():
        name = "translate" if arch == "pix2pix" else direction
        images = np.random.default_rng(5).integers(0, 256, (5, *shape), dtype=np.uint8)
        out[f"{arch}/{direction}/in"] = images
        out[f"{arch}/{direction}/uint8"] = model.signatures[name](images=images)["images"].numpy()
        raw = "raw" if direction == "a2b" else "b2a_raw"
        out[f"{arch}/{direction}/raw"] = model.signatures[raw](
            images=tf.constant(images / 127.5 - 1, tf.float32))["images"].numpy()
        body = png_client.rest_body(f"{name}_png", [tf.io.encode_png(i).numpy() for i in images])
        sig = model.signatures[body["signature_name"]]
        answer = sig(png_bytes=tf.constant([png_client.base64.b64decode(i["b64"])
                                            for i in body["instances"]]))["png_bytes"].numpy()
        response = {"predictions": [{"b64": png_client.base64.b64encode(a).decode()}
                                    for a in answer]}
        out[f"{arch}/{direction}/png"] = np.stack([tf.io.decode_png(p).numpy()
                                                   for p in png_client.rest_pngs(response)])
        bigger = tf.io.encode_png(np.zeros((shape[0] * 2, shape[0] * 2, 3), np.uint8))
        out[f"{arch}/{direction}/png_resized"] = tf.io.decode_png(
            sig(png_bytes=tf.constant([bigger.numpy()]))["png_bytes"][0]).numpy()
    out["signatures/" + arch] = np.array(sorted(model.signatures))
    if arch == "pix2pix":
        try:
            model.signatures["translate"](images=tf.zeros((1, 12, 12, 1), tf.uint8))
            out["error"] = np.array("")
        except tf.errors.InvalidArgumentError as e:
            out["error"] = np.array(e.message)
    for raw, bad in (("raw", np.nan), ("b2a_raw", np.inf)):  # NaN or inf: refused
        if raw not in model.signatures:
            continue
        taken = model.signatures[raw].structured_input_signature[1]["images"].shape[1:]
        try:
            model.signatures[raw](images=tf.fill([1, *taken], np.float32(bad)))
            out[f"{arch}/{raw}/nan"] = np.array("")
        except tf.errors.InvalidArgumentError as e:
            out[f"{arch}/{raw}/nan"] = np.array(e.message)
np.savez(sys.argv[2], **out)
"""


@pytest.fixture(scope="module")
def exports(tf_runs, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved")
    return {arch: export.export(tf_runs[arch]["run"], base) for arch in ARCHS}


def test_exports_answer_like_the_run_in_tensorflow_alone(tf_runs, exports, tmp_path):
    paths = json.dumps({arch: str(path) for arch, path in exports.items()})
    subprocess.run([sys.executable, "-c", TF_ONLY, paths, str(tmp_path / "out.npz")],
                   check=True, cwd=ROOT)
    out = np.load(tmp_path / "out.npz")
    assert list(out["signatures/pix2pix"]) == ["raw", "serving_default", "translate",
                                               "translate_png"]
    assert list(out["signatures/cyclegan"]) == ["a2b", "a2b_png", "b2a", "b2a_png", "b2a_raw",
                                                "raw", "serving_default"]
    assert "images: the model takes [N, 8, 8, 1] (height, width, channels)" in str(out["error"])
    for name in ("pix2pix/raw", "cyclegan/raw", "cyclegan/b2a_raw"):  # issue 35, item 28
        assert "images must be finite (no NaN or inf)" in str(out[f"{name}/nan"]), name
    for arch in ARCHS:
        model, _ = load_gan(tf_runs[arch]["run"])
        for direction in (("a2b",) if arch == "pix2pix" else ("a2b", "b2a")):
            inputs = out[f"{arch}/{direction}/in"]
            expected = keras.ops.convert_to_numpy(model.translate(
                inputs.astype(np.float32) / 127.5 - 1, direction))
            np.testing.assert_allclose(out[f"{arch}/{direction}/raw"], expected, atol=1e-5)
            uint8 = out[f"{arch}/{direction}/uint8"]
            assert uint8.dtype == np.uint8 and uint8.shape == expected.shape
            assert np.abs(uint8.astype(int) - images.to_uint8(expected)).max() <= 1
            np.testing.assert_array_equal(out[f"{arch}/{direction}/png"], uint8)
            assert out[f"{arch}/{direction}/png_resized"].shape == expected.shape[1:]
    for arch in ARCHS:  # every signature was checked in TensorFlow alone before publishing
        assert serving.metadata(exports[arch])["verified"]["signatures"] == sorted(
            translation_serving.SIGNATURES[arch])
    meta = serving.metadata(exports["cyclegan"])
    assert meta["shapes"] == {"a2b": [[8, 8, 1], [8, 8, 3]], "b2a": [[8, 8, 3], [8, 8, 1]]}
    assert meta["arch"] == "cyclegan" and meta["step"] == 4


@pytest.mark.parametrize("arch", ARCHS)
def test_every_format_translates_like_the_run_in_its_own_runtime(arch, tf_runs, tmp_path):
    """`kgan export --format keras|litert|onnx` of pix2pix (`translate`) and CycleGAN (`a2b`,
    `b2a`): a file per direction, each run by its own runtime within 1 gray level of the run."""
    run = tf_runs[arch]["run"]
    model, _ = load_gan(run)
    names = ["translate"] if arch == "pix2pix" else ["a2b", "b2a"]
    rng = np.random.default_rng(5)
    feeds = {name: rng.integers(0, 256, (3, *generator.input.shape[1:])).astype(np.float32)
             / 127.5 - 1 for name, generator in zip(names, model.generators)}
    want = {name: keras.ops.convert_to_numpy(model.translate(feed, "b2a" if name == "b2a"
                                                             else "a2b"))
            for name, feed in feeds.items()}
    jobs = []
    from kgan import nn  # noqa: F401  (registers kgan's layers, as `import kgan.nn` does)

    for format, suffix in (("keras", ".keras"), ("litert", ".tflite"), ("onnx", ".onnx")):
        out = kgan("export", run, "--out-dir", tmp_path, "--format", format, "--json")
        assert out.exit_code == 0, out.output
        about = json.loads(out.stdout)
        path = Path(about["path"])
        assert sorted(p.name for p in path.iterdir()) == sorted(
            [*(name + suffix for name in names), "kgan.json"])
        assert about["verified"]["max_difference"] <= 1 and about["format"] == format
        for name in names:
            if format == "keras":
                loaded = keras.saving.load_model(path / f"{name}.keras")
                answer = keras.ops.convert_to_numpy(loaded(feeds[name], training=False))
                assert answer.shape == want[name].shape
                assert gray_levels(answer, want[name]) <= 1, name
            else:
                jobs.append((path / f"{name}{suffix}", {"images": feeds[name]}, want[name]))
    answers = in_format_runtimes([job[:2] for job in jobs], tmp_path)
    for (file, _, expected), answer in zip(jobs, answers):
        assert answer.shape == expected.shape and gray_levels(answer, expected) <= 1, file


def test_grpc_png_request_and_warmup(exports):
    import importlib.util

    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    spec = importlib.util.spec_from_file_location("png_client", ROOT / "examples/png_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    path = exports["pix2pix"]
    png = tf.io.encode_png(np.full((8, 8, 1), 200, np.uint8)).numpy()
    request = client.grpc_request("pix2pix-pairs", "translate_png", [png, png])
    model = tf.saved_model.load(str(path))
    answer = model.signatures[request.model_spec.signature_name](
        png_bytes=tf.constant(tf.make_ndarray(request.inputs["png_bytes"])))["png_bytes"]
    response = predict_pb2.PredictResponse()
    response.outputs["png_bytes"].CopyFrom(tf.make_tensor_proto(answer))
    pngs = client.grpc_pngs(response)
    assert len(pngs) == 2 and tf.io.decode_png(pngs[0]).shape == (8, 8, 3)

    records = list(tf.data.TFRecordDataset(str(path / export.WARMUP)))
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    assert log.predict_log.request.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(log.predict_log.request.inputs["images"]).shape == (1, 8, 8, 1)


def save_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_translate_writes_pngs_with_the_inputs_names(tf_runs, exports, tmp_path):
    rng = np.random.default_rng(2)
    inputs = tmp_path / "in"
    save_png(inputs / "x.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    save_png(inputs / "deep" / "y.png", rng.integers(0, 256, (16, 16, 4), dtype=np.uint8))
    save_png(inputs / "z.jpg", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (inputs / "notes.txt").write_text("not an image")
    run = tf_runs["cyclegan"]["run"]
    done = kgan("translate", run, inputs, "--out", tmp_path / "a")
    assert done.exit_code == 0, done.output
    names = ["deep/y.png", "x.png", "z.png"]
    assert done.stdout.splitlines() == [str(tmp_path / "a" / n) for n in names]
    from PIL import Image

    for name in names:  # gray in, RGB out; the 16x16 RGBA input resized and made gray
        assert np.asarray(Image.open(tmp_path / "a" / name)).shape == (8, 8, 3)
    back = kgan("translate", exports["cyclegan"].parent, tmp_path / "a" / "x.png",
                "--out", tmp_path / "b", "--direction", "b2a", "--json")
    assert back.exit_code == 0 and json.loads(back.stdout) == {
        "files": [str(tmp_path / "b" / "x.png")]}
    assert np.asarray(Image.open(tmp_path / "b" / "x.png")).shape == (8, 8)

    # The run and its export translate the same file the same way (within 1).
    for source, out in ((run, "r"), (exports["cyclegan"], "e")):
        assert kgan("translate", source, inputs / "x.png", "--out", tmp_path / out).exit_code == 0
    r, e = (np.asarray(Image.open(tmp_path / d / "x.png"), dtype=int) for d in ("r", "e"))
    assert np.abs(r - e).max() <= 1


def test_translate_and_sample_refuse_what_they_cannot_do(tf_runs, exports, tmp_path):
    run = tf_runs["pix2pix"]["run"]
    save_png(tmp_path / "x.png", np.zeros((8, 8), np.uint8))
    cases = [
        (["translate", run, tmp_path / "x.png", "--out", tmp_path / "o", "--direction", "b2a"],
         "Error: Unknown direction 'b2a' for this model. Valid directions: a2b. Received: "
         "direction=b2a\n"),
        (["translate", run, tmp_path / "x.png", "--out", tmp_path / "o", "--direction", "up"],
         "Error: Unknown direction 'up'. Valid values: a2b, b2a. Received: direction=up\n"),
        (["translate", run, tmp_path / "missing", "--out", tmp_path / "o"],
         f"Error: No such image or folder: {tmp_path}/missing\n"),
        (["translate", run, tmp_path / "empty", "--out", tmp_path / "o"],
         f"Error: No .png/.jpg images found in {tmp_path}/empty\n"),
        (["translate", tmp_path, tmp_path / "x.png", "--out", tmp_path / "o"],
         f"Error: No exported model in {tmp_path} (expected {tmp_path}/<version>/"
         "saved_model.pb)\n"),
        (["sample", run], f"Error: {run} is a pix2pix run, which translates images: use kgan "
         f"translate {run} INPUT --out DIR\n"),
        (["sample", "--model", exports["pix2pix"]], f"Error: {exports['pix2pix']} translates "
         f"images: use kgan translate {exports['pix2pix']} INPUT --out DIR\n"),
    ]
    (tmp_path / "empty").mkdir()
    for args, message in cases:
        done = kgan(*args)
        assert (done.exit_code, done.stderr) == (1, message)
    (tmp_path / "x.txt").write_text("text")
    done = kgan("translate", run, tmp_path / "x.txt", "--out", tmp_path / "o")
    assert done.stderr == f"Error: {tmp_path}/x.txt is not a .png or .jpg image\n"
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    done = kgan("translate", run, tmp_path / "bad.png", "--out", tmp_path / "o")
    assert done.exit_code == 1 and done.stderr.startswith(
        f"Error: Cannot read 1 of the 1 images, so nothing was written: {tmp_path}/bad.png (")
    assert not (tmp_path / "o").exists()

    gan_run = tmp_path / "runs" / "00000-mlp-x"
    gan_run.mkdir(parents=True)
    (gan_run / "config.json").write_text(TrainConfig(image_shape=(8, 8, 1)).to_json())
    done = kgan("translate", gan_run, tmp_path / "x.png", "--out", tmp_path / "o")
    assert done.stderr == (f"Error: {gan_run} is a mlp run, which generates from noise: "
                           "translate needs a pix2pix or cyclegan run (use kgan sample)\n")


def test_translate_keeps_its_inputs_and_writes_all_or_nothing(tf_runs, tmp_path, monkeypatch):
    """Issue 35, items 1, 5, 6, 24 and 25."""
    from PIL import Image

    run, inputs = Path(tf_runs["pix2pix"]["run"]), tmp_path / "in"
    for i in range(3):
        save_png(inputs / f"{i}.png", np.full((8, 8), 40 * i, np.uint8))
    before = {p: p.read_bytes() for p in inputs.iterdir()}
    done = kgan("translate", run, inputs, "--out", inputs)  # would overwrite every input
    assert (done.exit_code, done.stderr) == (1, f"Error: --out {inputs} would overwrite the "
                                                f"input {inputs}/0.png with its translation: "
                                                "give another folder\n")
    monkeypatch.chdir(inputs)
    done = kgan("translate", run, "1.png", "--out", "")  # the current folder: the same
    assert (done.exit_code, done.stderr) == (1, "Error: --out . would overwrite the input "
                                                "1.png with its translation: give another "
                                                "folder\n")
    assert {p: p.read_bytes() for p in inputs.iterdir()} == before
    # An output folder inside the input folder is not translated again.
    for _ in range(2):
        done = kgan("translate", run, inputs, "--out", inputs / "out")
        assert done.stdout.splitlines() == [str(inputs / "out" / f"{i}.png") for i in range(3)]
    assert not (inputs / "out" / "out").exists()
    shutil.rmtree(inputs / "out")

    # One broken image among good ones: nothing is written.
    (inputs / "9.png").write_bytes(b"\x89PNG broken")
    done = kgan("translate", run, inputs, "--out", tmp_path / "o")
    assert done.exit_code == 1 and done.stderr.startswith(
        f"Error: Cannot read 1 of the 4 images, so nothing was written: {inputs}/9.png (")
    assert not (tmp_path / "o").exists()
    # Over Pillow's decompression-bomb limit: the file, the limit and how to raise it.
    (inputs / "9.png").unlink()
    save_png(inputs / "big.png", np.zeros((60, 60), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3,600 pixels: over twice that
    done = kgan("translate", run, inputs, "--out", tmp_path / "o")
    assert done.exit_code == 1 and done.stderr.startswith(
        f"Error: Cannot read 1 of the 4 images, so nothing was written: {inputs}/big.png (Image "
        "size (3600 pixels) exceeds limit of 2000 pixels")
    assert done.stderr.endswith("Pillow refuses images over twice its limit of 1000 pixels; for "
                                "an image you trust, raise it with KGAN_MAX_IMAGE_PIXELS="
                                "<pixels> (or none))\n")
    monkeypatch.undo()

    last = sorted(run.parent.glob("*/config.json"))[-1].parent
    done = kgan("translate", run.parent, inputs, "--out", tmp_path / "o")  # the runs folder
    assert done.stderr == (f"Error: {run.parent} is a folder of runs, not a run: give one of "
                           f"them (for example {last}) or its export\n")
    odd = tmp_path / "odd"
    save_png(odd / "a\nb.png", np.zeros((8, 8), np.uint8))  # a newline in the name
    done = kgan("translate", run, odd, "--out", tmp_path / "o")
    assert done.stdout == json.dumps(str(tmp_path / "o" / "a\nb.png")) + "\n"


def test_translation_eval_reports_what_needs_no_features_and_honours_its_options(tf_runs,
                                                                              tmp_path):
    """Issue 35, items 15 and 26: the toy pairs have no class labels and this machine no
    InceptionV3 weights; L1, PSNR and SSIM stand, and the card says why there is no FID."""
    run = tf_runs["pix2pix"]["run"]
    done = kgan("eval", run, "-n", 4, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert {"l1", "psnr", "ssim"} <= set(result) and "fid" not in result
    assert result["protocol"]["split"] == "test" and result["protocol"]["features"] is None
    toy = json.loads((Path(run) / "config.json").read_text())["dataset"]
    assert result["protocol"]["warnings"] == [
        f"no FID: {toy} has no class labels to train a classifier on: give --classifier PATH, "
        "or --features inception"]
    done = kgan("eval", run, "-n", 4, "--json", "--features", "inception", "--real-split",
                "train")
    result = json.loads(done.stdout)
    assert result["protocol"]["split"] == "train" and "l1" in result
    (warning,) = result["protocol"]["warnings"]
    assert warning.startswith("no FID: ") and "inception" in warning.lower()


def test_a_damaged_test_split_is_not_replaced_by_training_images(tmp_path):
    """Issue 35, item 26: a broken test/A image stopped nothing; the held-out grid and eval
    used training images without a word."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for split, count in (("", 8), ("test", 2)):
        for side in "AB":
            for i in range(count):
                save_png(root / split / side / f"{i}.png",
                         rng.integers(0, 256, (8, 8), dtype=np.uint8))
    (root / "test" / "A" / "1.png").write_bytes(b"\x89PNG broken")
    done = kgan("train", "--arch", "pix2pix", "--dataset", root, "--epochs", 1, "--batch-size",
                4, "--runs-dir", tmp_path / "runs", "--quiet", "--no-tensorboard")
    assert done.exit_code == 1 and done.stderr.startswith(
        f"Error: Cannot read image {root}/test/A/1.png: "), done.stderr


@pytest.mark.parametrize("option, message", [
    (["--loss", "wgan-gp"], "--loss wgan-gp does not apply to --arch {arch}: its gradient "
     "penalty is for noise-to-image GANs; use bce, minimax, lsgan or hinge. Received: "
     "loss=wgan-gp"),
    (["--conditional"], "--conditional does not apply to --arch {arch} (image-to-image runs "
     "take no class labels). Received: conditional=True"),
    (["--ema", "0.99"], "--ema does not apply to --arch {arch} (image-to-image runs keep no "
     "moving average). Received: ema=0.99"),
    (["--image-size", "30"], "`image_size` must be divisible by 4 for --arch {arch} (for "
     "example 28, 32 or 256). Received: image_size=30"),
    (["--strategy", "mirrored"], "--arch {arch} trains on one device. Received: "
     "strategy=mirrored"),
    (["--latent-dim", "8"], "--latent-dim does not apply to --arch {arch} (image-to-image runs "
     "take images, not noise). Received: latent_dim=8"),
])
@pytest.mark.parametrize("arch", ARCHS)
def test_train_refuses_settings_translation_has_not(arch, option, message, toy, tmp_path):
    done = kgan("train", "--arch", arch, "--dataset", toy, "--runs-dir", tmp_path, *option)
    assert (done.exit_code, done.stderr) == (1, f"Error: {message.format(arch=arch)}\n")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("arch, option, message", [
    ("cyclegan", ["--decay-epochs", "5", "--epochs", "2"], "`decay_epochs` must be at most "
     "--epochs (2). Received: decay_epochs=5"),
    ("pix2pix", ["--cycle", "5"], "--cycle is for --arch cyclegan. Received: cycle=5.0, "
     "arch=pix2pix"),
    ("pix2pix", ["--pool-size", "5"], "--pool-size is for --arch cyclegan. Received: "
     "pool_size=5, arch=pix2pix"),
    ("cyclegan", ["--l1", "5"], "--l1 is for --arch pix2pix. Received: l1=5.0, arch=cyclegan"),
    ("dcgan", ["--mapping-layers", "8"], "--mapping-layers is for --arch stylegan. Received: "
     "mapping_layers=8, arch=dcgan"),
    ("mlp", ["--style-mixing", "0.5"], "--style-mixing is for --arch stylegan. Received: "
     "style_mixing=0.5, arch=mlp"),
])
def test_options_of_other_archs_are_refused(arch, option, message, toy, tmp_path):
    """Issue 35, item 32: they were recorded in config.json and ignored."""
    done = kgan("train", "--arch", arch, "--dataset", toy, "--runs-dir", tmp_path, *option)
    assert (done.exit_code, done.stderr) == (1, f"Error: {message}\n")
    assert not any(tmp_path.iterdir())


def test_runs_that_recorded_other_archs_options_read_as_their_own_defaults():
    """Runs from before item 32 recorded every option; what was ignored then reads as the
    arch's default (here as in tests/data/main-566653c's pix2pix run, latent_dim=4)."""
    old = TrainConfig(arch="dcgan").to_json()  # every field, as runs recorded them
    recorded = {**json.loads(old), "arch": "pix2pix", "latent_dim": 4, "cycle": 3.0,
                "mapping_layers": 8, "r1": 0.0}
    config = TrainConfig.from_dict(recorded).validate()
    assert (config.latent_dim, config.cycle, config.mapping_layers, config.l1) == (
        100, None, None, 100.0)


def test_train_refuses_data_the_family_cannot_use(toy, tmp_path):
    done = kgan("train", "--arch", "cyclegan", "--dataset", toy, "--runs-dir", tmp_path)
    assert done.stderr == (f"Error: --identity needs A and B with the same channels; {toy} has "
                           "1 and 3. Use --identity 0. Received: identity=0.5\n")
    done = kgan("train", "--arch", "pix2pix", "--dataset", "fashion_mnist:sandals2sneakers",
                "--runs-dir", tmp_path)
    assert done.stderr == ("Error: Dataset fashion_mnist:sandals2sneakers is unpaired (--arch "
                           "cyclegan)\n")
    done = kgan("train", "--arch", "pix2pix", "--dataset", toy, "--batch-size", "30",
                "--runs-dir", tmp_path)
    assert done.stderr == ("Error: The dataset has 24 images a side, fewer than one batch. Use "
                           "a smaller --batch-size. Received: batch_size=30\n")
    assert not any(tmp_path.iterdir())


def test_family_defaults_are_the_papers():
    assert (TrainConfig(arch="pix2pix").batch_size, TrainConfig(arch="pix2pix").loss) == (1, "bce")
    assert (TrainConfig(arch="cyclegan").batch_size, TrainConfig(arch="cyclegan").loss) == (
        1, "lsgan")
    assert (TrainConfig().batch_size, TrainConfig().loss) == (64, "bce")
    with pytest.raises(KganError, match="--r1 does not apply to --arch pix2pix"):
        TrainConfig(arch="pix2pix", r1=1.0).validate()


def test_ctrl_c_mid_epoch_keeps_a_checkpoint_and_resumes_bit_identically(toy, tmp_path):
    config = TrainConfig(arch="pix2pix", dataset=str(toy), batch_size=4, base_filters=4, seed=3,
                         epochs=2, steps_per_epoch=3, tensorboard=False, curves=False,
                         jitter=True)
    stopped = training.train(config, runs_dir=tmp_path / "a", callbacks=[At(4, ctrl_c)])
    # The signal lands after step 4's callbacks: the guard stops after step 5, mid-epoch 2.
    assert (stopped.status, stopped.step) == ("interrupted", 5)
    resumed = training.resume(stopped.run_dir)
    straight = training.train(config, runs_dir=tmp_path / "b")
    assert resumed.step == straight.step == 6
    assert_same_state(resumed.run_dir, straight.run_dir)  # weights, both optimizers, noise
    (a, _), (b, _) = load_gan(resumed.run_dir), load_gan(straight.run_dir)
    for x, y in zip(a.dropout_seeds, b.dropout_seeds, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(x),
                                      keras.ops.convert_to_numpy(y))
