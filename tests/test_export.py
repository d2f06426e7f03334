"""The exported SavedModel, checked with TensorFlow alone, saved_model_cli and the README bodies."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import gray_levels, in_format_runtimes, readme_blocks, toy_config
from typer.testing import CliRunner

from cli.main import app
from kgan import draw, export, formats, images, serving
from kgan import training as lib
from kgan.checkpoint import load_gan
from kgan.errors import KganError
from kgan.families.noise.serving import SIGNATURES as export_signatures

ROOT = Path(__file__).resolve().parents[1]
SAVED_MODEL_CLI = Path(sys.executable).with_name("saved_model_cli")
runner = CliRunner()


def from_export(path, n, seed):
    """What `kgan sample --model` draws: uint8 images of the export for `seed`."""
    return images.to_uint8(draw.draw(draw.from_export(path), n, seed))

# Runs in a fresh interpreter where Keras and kgan cannot be imported: TensorFlow alone.
TF_ONLY = r"""
import json, sys
sys.modules["keras"] = sys.modules["kgan"] = None  # any import of either now fails
import numpy as np
import tensorflow as tf
path, z_file, out_file, requests = sys.argv[1:5]
model = tf.saved_model.load(path)
z = tf.constant(np.load(z_file))
out = {}
for name in ("serving_default", "raw"):
    sig = model.signatures[name]
    out[name] = sig(z=z)["images"].numpy()
    out[name + "_spec"] = np.array(json.dumps([str(sig.structured_input_signature),
                                               str(sig.structured_outputs)]))
out["generate_n"] = model.signatures["generate_n"](n=tf.constant(5), seed=tf.constant(3, tf.int64))[
    "images"].numpy()
seeds = tf.constant([3, 9, 3], tf.int64)  # one image per seed, one row each
out["generate"] = model.signatures["generate"](seed=seeds)["images"].numpy()
out["generate_one"] = model.signatures["generate"](seed=seeds[1:2])["images"].numpy()
pngs = model.signatures["generate_png"](seed=seeds)["png_bytes"].numpy()
out["generate_png"] = np.stack([tf.io.decode_png(png).numpy() for png in pngs])
for n in (0, 2000):
    try:
        model.signatures["generate_n"](n=tf.constant(n), seed=tf.constant(1, tf.int64))
        out[f"error_{n}"] = np.array("")
    except tf.errors.InvalidArgumentError as e:
        out[f"error_{n}"] = np.array(e.message)
try:
    model.signatures["generate"](seed=tf.range(2000, dtype=tf.int64))
    out["error_rows"] = np.array("")
except tf.errors.InvalidArgumentError as e:
    out["error_rows"] = np.array(e.message)
# The README's request bodies, fed the way TF Serving's REST API maps them onto a signature:
# "instances" (row format) are stacked into the one input, "inputs" (columnar) map by name.
for request_file in requests.split(","):
    body = json.load(open(request_file))
    sig = model.signatures[body["signature_name"]]
    specs = sig.structured_input_signature[1]
    if "instances" in body:
        (key, spec), = specs.items()
        args = {key: tf.constant(body["instances"], spec.dtype)}
    else:
        args = {k: tf.constant(v, specs[k].dtype) for k, v in body["inputs"].items()}
    out["request_" + body["signature_name"]] = sig(**args)["images"].numpy()
np.savez(out_file, **out)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp / "toy.npz", x_train=x)
    config = toy_config(tmp / "toy.npz", arch="dcgan", base_filters=8,
                        latent_dim=100)  # as in examples/requests/
    run = lib.train(config, runs_dir=tmp / "runs").run_dir
    path = export.export(run, tmp / "saved_models", max_batch=1024)
    return run, path


def test_layout_and_metadata(trained):
    run, path = trained
    assert path == run.parent.parent / "saved_models" / "dcgan-toy" / "1"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    meta = json.loads((path / "assets.extra" / "kgan.json").read_text())
    assert (meta["latent_dim"], meta["image_shape"], meta["max_batch"]) == (100, [8, 8, 3], 1024)
    assert meta["training_config"]["arch"] == "dcgan" and meta["step"] == 4
    # Checked in TensorFlow alone before it was published (export.check).
    assert meta["verified"]["signatures"] == ["generate", "generate_n", "generate_png", "raw",
                                              "serving_default"]
    assert meta["verified"]["max_difference"] <= 1 and meta["verified"]["batch_of_one"] <= 1
    # No temporary folders left, only the lock that hands out versions.
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == [export.LOCK]


def test_tensorflow_alone_reproduces_the_keras_generator(trained, tmp_path):
    run, path = trained
    gan, _ = load_gan(run)
    z = np.random.default_rng(1).standard_normal((6, 100)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    requests = ",".join(str(p) for p in sorted((ROOT / "examples" / "requests").glob("*.json")))
    subprocess.run([sys.executable, "-c", TF_ONLY, str(path), str(tmp_path / "z.npy"),
                    str(tmp_path / "out.npz"), requests], check=True)
    out = np.load(tmp_path / "out.npz")

    expected = keras.ops.convert_to_numpy(gan.generator(z, training=False))
    np.testing.assert_allclose(out["raw"], expected, atol=1e-5)
    assert out["raw"].dtype == np.float32
    reference = np.clip(np.round((expected + 1) * 127.5), 0, 255)
    assert out["serving_default"].dtype == np.uint8 and out["serving_default"].shape == (6, 8, 8, 3)
    assert np.abs(out["serving_default"].astype(int) - reference).max() <= 1

    # generate_n(n, seed) draws the same z as keras.random.normal(seed=seed) and gan.generate().
    keras_generated = keras.ops.convert_to_numpy(gan.generate(5, seed=3))
    assert out["generate_n"].shape == (5, 8, 8, 3) and out["generate_n"].dtype == np.uint8
    assert np.abs(out["generate_n"].astype(int)
                  - np.clip(np.round((keras_generated + 1) * 127.5), 0, 255)).max() <= 1
    # generate(seed rows): row i is the first image of seed i, whatever the batch around it,
    # so a server may batch requests together (issue 33).
    first = np.stack([keras.ops.convert_to_numpy(gan.generate(1, seed=s))[0] for s in (3, 9)])
    assert out["generate"].shape == (3, 8, 8, 3)
    assert np.abs(out["generate"].astype(int)[:2]
                  - np.clip(np.round((first + 1) * 127.5), 0, 255)).max() <= 1
    np.testing.assert_array_equal(out["generate"][0], out["generate"][2])
    np.testing.assert_array_equal(out["generate_one"][0], out["generate"][1])
    # generate_png: the same images as PNG files (for REST clients: {"b64": ...}).
    np.testing.assert_array_equal(out["generate_png"], out["generate"])
    assert "n must be at least 1" in str(out["error_0"])
    assert "n must be at most 1024" in str(out["error_2000"])
    assert "seed must have at most 1024 rows" in str(out["error_rows"])

    for name in ("serving_default", "raw"):
        body = json.loads((ROOT / "examples" / "requests" / f"{name}.json").read_text())
        z_body = np.array(body["instances"], np.float32)
        expected = keras.ops.convert_to_numpy(gan.generator(z_body, training=False))
        got = out[f"request_{name}"]
        if name == "raw":
            np.testing.assert_allclose(got, expected, atol=1e-5)
        else:
            assert np.abs(got.astype(int) - np.round((expected + 1) * 127.5)).max() <= 1
    assert out["request_generate"].shape == (4, 8, 8, 3)  # 4 seeds, a row each
    assert out["request_generate_n"].shape == (4, 8, 8, 3)


def test_saved_model_cli_show_and_run(trained, tmp_path):
    _, path = trained
    show = subprocess.run([str(SAVED_MODEL_CLI), "show", "--dir", str(path), "--all"],
                          capture_output=True, text=True, check=True).stdout
    for name in ("serving_default", "generate", "raw", "generate_png", "generate_n"):
        assert f"signature_def['{name}']:" in show
    assert show.count("Method name is: tensorflow/serving/predict") == 5
    assert "outputs['png_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" \
        in show
    assert "inputs['z'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 100)" in show
    assert "inputs['n'] tensor_info:\n        dtype: DT_INT32\n        shape: ()" in show
    assert "inputs['seed'] tensor_info:\n        dtype: DT_INT64\n        shape: ()" in show
    assert "inputs['seed'] tensor_info:\n        dtype: DT_INT64\n        shape: (-1)" in show
    assert "outputs['images'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, 8, 8, 3)" \
        in show

    run = subprocess.run(
        [str(SAVED_MODEL_CLI), "run", "--dir", str(path), "--tag_set", "serve",
         "--signature_def", "generate_n", "--input_exprs", "n=3;seed=7",
         "--outdir", str(tmp_path), "--overwrite"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    images = np.load(tmp_path / "images.npy")
    assert images.shape == (3, 8, 8, 3) and images.dtype == np.uint8


def test_warmup_file_is_a_valid_prediction_log(trained):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    _, path = trained
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()).predict_log.request
               for r in tf.data.TFRecordDataset(str(path / export.WARMUP))]
    # Every signature, at batch 1 and at 8, serving_default first (issue 33).
    assert [(r.model_spec.name, r.model_spec.signature_name) for r in records] == [
        ("dcgan-toy", name) for name in ("serving_default", "raw", "generate", "generate_png",
                                         "generate_n") for _ in range(2)]
    assert [tf.make_ndarray(r.inputs["z"]).shape for r in records[:4]] == [(1, 100), (8, 100)] * 2
    assert [tf.make_ndarray(r.inputs["seed"]).shape for r in records[4:8]] == [(1,), (8,)] * 2
    assert [int(tf.make_ndarray(r.inputs["n"])) for r in records[8:]] == [1, 8]
    model = tf.saved_model.load(str(path))  # each one is a call the model answers
    for request in records:
        model.signatures[request.model_spec.signature_name](
            **{key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()})


def test_the_export_root_holds_what_tf_serving_is_started_with(trained):
    """models.config and batching_parameters.txt, parsed with TF Serving's messages; kgan.json
    holds no path of the build machine (issue 33)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
    from tensorflow_serving.config import model_server_config_pb2

    run, path = trained
    root = path.parent.parent
    listing = text_format.Parse((root / "models.config").read_text(),
                                model_server_config_pb2.ModelServerConfig())
    (entry,) = listing.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("dcgan-toy", "dcgan-toy",
                                                                   "tensorflow")
    assert entry.model_version_policy.latest.num_versions == 1
    # BatchingParameters as tensorflow_serving/servables/tensorflow/session_bundle_config.proto
    # declares it (tensorflow-serving-api does not ship that message).
    file = descriptor_pb2.FileDescriptorProto(name="kgan_test_batching.proto",
                                              package="tensorflow.serving",
                                              dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    wrapper = descriptor_pb2.FieldDescriptorProto
    for number, name, kind in ((1, "max_batch_size", "Int64Value"),
                               (2, "batch_timeout_micros", "Int64Value"),
                               (3, "max_enqueued_batches", "Int64Value"),
                               (4, "num_batch_threads", "Int64Value"),
                               (5, "thread_pool_name", "StringValue")):
        message.field.add(name=name, number=number, type=wrapper.TYPE_MESSAGE,
                          label=wrapper.LABEL_OPTIONAL, type_name=f".google.protobuf.{kind}")
    message.field.add(name="allowed_batch_sizes", number=6, type=wrapper.TYPE_INT64,
                      label=wrapper.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=wrapper.TYPE_BOOL,
                      label=wrapper.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    from google.protobuf import wrappers_pb2

    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    batching = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))()
    text_format.Parse((root / "batching_parameters.txt").read_text(), batching)
    assert (batching.max_batch_size.value, batching.batch_timeout_micros.value,
            batching.num_batch_threads.value) == (64, 5000, 4)
    meta = json.loads((path / "assets.extra" / "kgan.json").read_text())
    assert meta["run"] == "00000-dcgan-toy" and "run_dir" not in meta
    # Only the dataset, as the user gave it, may name a place (here the test's folder).
    assert str(run.parent.parent) not in json.dumps(
        {k: v for k, v in meta.items() if k not in ("dataset", "training_config")})


def test_sample_from_run_equals_sample_from_export(trained, tmp_path):
    run, path = trained
    from_run = runner.invoke(app, ["sample", str(run), "--n", "5", "--seed", "9", "--out",
                                   str(tmp_path / "a.png"), "--individual", str(tmp_path / "a")])
    assert from_run.exit_code == 0, from_run.output
    assert from_run.stdout.splitlines() == [str(tmp_path / "a.png")] + [
        str(tmp_path / "a" / f"seed9-{i:04d}.png") for i in range(5)]
    from_export = runner.invoke(app, ["sample", "--model", str(path.parent), "--n", "5",
                                      "--seed", "9", "--individual", str(tmp_path / "b"),
                                      "--out", str(tmp_path / "b.png"), "--nrow", "5"])
    assert from_export.exit_code == 0, from_export.output
    from PIL import Image

    for i in range(5):
        a = np.asarray(Image.open(tmp_path / "a" / f"seed9-{i:04d}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "b" / f"seed9-{i:04d}.png"), dtype=int)
        assert a.shape == (8, 8, 3) and np.abs(a - b).max() <= 1
    assert Image.open(tmp_path / "b.png").size == (5 * 10 + 2, 10 + 2)  # --nrow 5: one row
    assert Image.open(tmp_path / "a.png").size == (3 * 10 + 2, 2 * 10 + 2)  # near-square 3x2


def test_example_client_writes_pngs_from_a_rest_response(trained, tmp_path):
    _, path = trained
    images = from_export(path, 3, seed=4)
    (tmp_path / "response.json").write_text(json.dumps({"outputs": images.tolist()}))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "rest_client.py"),
                           "--response", str(tmp_path / "response.json"), "--seed", "4",
                           "--out", str(tmp_path / "png")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "png" / f"seed4-{i:04d}.png") for i in range(3)]
    from PIL import Image

    for i in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png" /
                                                            f"seed4-{i:04d}.png")), images[i])


def test_versions_force_and_bad_input(trained, tmp_path):
    run, _ = trained
    out = tmp_path / "models"
    cli = ["export", str(run), "--out-dir", str(out)]
    assert runner.invoke(app, cli).stdout == f"{out}/dcgan-toy/1\n"
    cli.append("--no-verify")  # versions are the point here: the check is tested on its own
    named = runner.invoke(app, [*cli, "--name", "fashion", "--json"])
    assert json.loads(named.stdout) == {"path": f"{out}/fashion/1", "name": "fashion",
                                        "version": 1, "family": "noise",
                                        "format": "savedmodel",
                                        "signatures": list(export_signatures),
                                        "verified": None}
    assert runner.invoke(app, cli).stdout == f"{out}/dcgan-toy/2\n"
    exists = runner.invoke(app, [*cli, "--version", "1"])
    assert exists.exit_code == 1
    assert exists.stderr == (f"Error: {out}/dcgan-toy/1 already exists. Use --force to replace "
                             "it, or another --version.\n")
    stamp = (out / "dcgan-toy" / "1" / "saved_model.pb").stat().st_mtime_ns
    forced = runner.invoke(app, [*cli, "--version", "1", "--force"])
    assert forced.exit_code == 0
    assert (out / "dcgan-toy" / "1" / "saved_model.pb").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in (out / "dcgan-toy").iterdir()) == [export.LOCK, "1", "2"]
    huge = runner.invoke(app, [*cli, "--version", str(2**63)])
    assert huge.stderr == (f"Error: `version` must be an integer in [1, 2**63). "
                           f"Received: version={2**63}\n")

    (tmp_path / "file").write_text("not a folder")
    unwritable = runner.invoke(app, ["export", str(run), "--out-dir", str(tmp_path / "file")])
    assert unwritable.exit_code == 1
    assert unwritable.stderr.startswith(f"Error: Cannot write to {tmp_path}/file/dcgan-toy: ")
    assert unwritable.stderr.count("\n") == 1


def test_bad_sample_and_export_input(trained, tmp_path):
    run, _ = trained
    for n in ("0", "-3"):
        result = runner.invoke(app, ["sample", str(run), "--n", n])
        assert result.exit_code == 1
        assert result.stderr == f"Error: `n` must be a positive integer. Received: n={n}\n"
    seed = runner.invoke(app, ["sample", str(run), "--seed", str(2**64)])
    assert seed.stderr == ("Error: `seed` must be an integer in [0, 2**31). "
                           f"Received: seed={2**64}\n")
    nrow = runner.invoke(app, ["sample", str(run), "--nrow", "0"])
    assert nrow.exit_code == 1
    assert nrow.stderr == "Error: `nrow` must be a positive integer. Received: nrow=0\n"
    empty = tmp_path / "runs" / "00000-mlp-x"
    empty.mkdir(parents=True)
    (empty / "config.json").write_text((run / "config.json").read_text())
    for command in ("sample", "export"):
        result = runner.invoke(app, [command, "--runs-dir", str(tmp_path / "runs")])
        assert result.exit_code == 1
        assert result.stderr == (f"Error: {empty} has no checkpoint yet "
                                 "(checkpoints/latest.keras)\n")
    best = runner.invoke(app, ["export", str(run), "--best"])
    assert best.stderr == (f"Error: {run} has no checkpoint yet (checkpoints/best.keras; only "
                           "runs trained with --eval-every have one)\n")
    (empty / "checkpoints").mkdir()
    (empty / "checkpoints" / "latest.keras").write_bytes(b"PK\x03\x04 truncated zip")
    for command in ("sample", "export"):
        result = runner.invoke(app, [command, str(empty), "--out-dir" if command == "export"
                                     else "--out", str(tmp_path / "o")])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: Cannot load checkpoint {empty}/checkpoints/")
        assert not (tmp_path / "o").exists()
    no_runs = runner.invoke(app, ["sample", "--runs-dir", str(tmp_path / "none")])
    assert no_runs.stderr == (f"Error: No runs found in {tmp_path}/none/. Train one with "
                              "`kgan train`.\n")
    no_model = runner.invoke(app, ["sample", "--model", str(tmp_path / "none")])
    assert no_model.stderr == (f"Error: No exported model in {tmp_path}/none (expected "
                               f"{tmp_path}/none/<version>/saved_model.pb)\n")
    (tmp_path / "file").write_text("x")
    unwritable = runner.invoke(app, ["sample", str(run), "--out", str(tmp_path / "file" / "g.png")])
    assert unwritable.exit_code == 1  # the path given, not the temporary file beside it
    assert unwritable.stderr.startswith(f"Error: Cannot write {tmp_path / 'file' / 'g.png'}: ")
    assert unwritable.stderr.count("\n") == 1
    _, path = trained  # a noise GAN's export does not translate: one line, not a KeyError
    noise = runner.invoke(app, ["translate", str(path), str(tmp_path / "x.png"), "--out",
                                str(tmp_path / "t")])
    assert (noise.exit_code, noise.stderr) == (1, f"Error: {path} is the export of a noise-to-"
                                               "image GAN: translate needs a pix2pix or cyclegan "
                                               "model (use kgan sample --model)\n")
    jpeg = runner.invoke(app, ["sample", str(run), "--out", str(tmp_path / "grid.jpg")])
    assert (jpeg.exit_code, jpeg.stderr) == (1, "Error: `out` must name a .png file (the grid "
                                             f"is written as PNG). Received: out={tmp_path}/"
                                             "grid.jpg\n")
    assert not (tmp_path / "grid.jpg").exists()
    file = tmp_path / "file"  # a file where a folder goes is named as such, not "File exists"
    individual = runner.invoke(app, ["sample", str(run), "--n", "2", "--out",
                                     str(tmp_path / "g.png"), "--individual", str(file)])
    assert (individual.exit_code, individual.stderr) == (1, f"Error: Cannot write {file}/seed0-"
                                                         f"0000.png: {file} is a file, not a "
                                                         "folder; nothing was written there\n")
    for max_batch in ("0", str(2**31), str(2**40)):  # `generate`'s n is an int32
        big = runner.invoke(app, ["export", str(run), "--max-batch", max_batch, "--out-dir",
                                  str(tmp_path / "o")])
        assert (big.exit_code, big.stderr) == (1, "Error: `max_batch` must be an integer in "
                                               f"[1, 2**31). Received: max_batch={max_batch}\n")
    full = tmp_path / "full" / "m"
    (full / str(2**63 - 1)).mkdir(parents=True)  # the highest version TF Serving reads
    last = runner.invoke(app, ["export", str(run), "--out-dir", str(full.parent), "--name", "m",
                               "--no-verify"])
    assert (last.exit_code, last.stderr) == (1, f"Error: {full} holds version {2**63 - 1}, the "
                                             "highest TF Serving reads: give --version a free "
                                             "one below it\n")


def test_grpc_example_request_matches_the_generate_signature(trained):
    import importlib.util

    import tensorflow as tf

    _, path = trained
    spec = importlib.util.spec_from_file_location("grpc_client", ROOT / "examples/grpc_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    request = client.build_request("dcgan-toy", 3, 11)
    signature = tf.saved_model.load(str(path)).signatures[request.model_spec.signature_name]
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    images = signature(**inputs)["images"].numpy()
    assert images.shape == (3, 8, 8, 3)
    np.testing.assert_array_equal(images, from_export(path, 3, seed=11))


# A conditional run with a moving average: TensorFlow alone, as a client would call it.
TF_CONDITIONAL = r"""
import sys
sys.modules["keras"] = sys.modules["kgan"] = None
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
path, z_file, out_file = sys.argv[1:4]
model = tf.saved_model.load(path)
z = tf.constant(np.load(z_file))
labels = tf.constant([0, 1, 2, 3, 0, 1], tf.int32)
out = {"raw": model.signatures["raw"](z=z, label=labels)["images"].numpy(),
       "serving_default": model.signatures["serving_default"](z=z, label=labels)["images"].numpy()}
generate = model.signatures["generate_n"]
one = lambda v, dtype=tf.int32: tf.constant(v, dtype)
out["generate_rows"] = model.signatures["generate"](
    seed=tf.constant([3, 3], tf.int64), label=tf.constant([1, 2], tf.int32))["images"].numpy()
out["generate_turns"] = generate(n=one(5), seed=one(3, tf.int64), label=one(-1))["images"].numpy()
out["generate_2"] = generate(n=one(5), seed=one(3, tf.int64), label=one(2))["images"].numpy()
bad = {
    "label_4": lambda: generate(n=one(2), seed=one(1, tf.int64), label=one(4)),
    "label_-5": lambda: generate(n=one(2), seed=one(1, tf.int64), label=one(-5)),
    "n_-1": lambda: generate(n=one(-1), seed=one(1, tf.int64), label=one(-1)),
    "nan_z": lambda: model.signatures["serving_default"](
        z=tf.constant(np.full((2, z.shape[1]), np.nan, np.float32)), label=labels[:2]),
    "rows": lambda: model.signatures["raw"](z=z, label=labels[:3]),
}
for name, call in bad.items():
    try:
        call()
        out["error_" + name] = np.array("")
    except tf.errors.InvalidArgumentError as e:
        out["error_" + name] = np.array(e.message)
saved = saved_model_pb2.SavedModel.FromString(open(path + "/saved_model.pb", "rb").read())
defaults = saved.meta_graphs[0].signature_def["generate_n"].defaults
out["default_label"] = tf.make_ndarray(defaults["label"])
np.savez(out_file, **out)
"""


def test_conditional_export_takes_labels_and_serves_the_moving_average(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "toy.npz", x_train=x, y_train=np.arange(64) % 4)
    config = toy_config(tmp_path / "toy.npz", conditional=True, ema=0.5, ema_start=1)
    run = lib.train(config, runs_dir=tmp_path / "runs").run_dir
    path = export.export(run, tmp_path / "saved_models")
    raw_path = export.export(run, tmp_path / "saved_models", name="raw", ema=False)
    z = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    subprocess.run([sys.executable, "-c", TF_CONDITIONAL, str(path), str(tmp_path / "z.npy"),
                    str(tmp_path / "out.npz")], check=True)
    out = np.load(tmp_path / "out.npz")
    gan, _ = load_gan(run, ema=True)
    labels = np.array([0, 1, 2, 3, 0, 1], np.int32)

    def uint8(images):
        return np.clip(np.round((keras.ops.convert_to_numpy(images) + 1) * 127.5), 0, 255)

    expected = keras.ops.convert_to_numpy(gan.generator([z, labels], training=False))
    np.testing.assert_allclose(out["raw"], expected, atol=1e-5)
    assert np.abs(out["serving_default"].astype(int) - uint8(expected)).max() <= 1
    assert np.abs(out["generate_turns"].astype(int) - uint8(gan.generate(5, seed=3))).max() <= 1
    assert np.abs(out["generate_2"].astype(int)
                  - uint8(gan.generate(5, seed=3, labels=2))).max() <= 1
    assert not np.array_equal(out["generate_turns"], out["generate_2"])
    # The batched generate: a seed and a label per row (the same seed, two classes).
    seeded = np.stack([keras.ops.convert_to_numpy(gan.generate(1, seed=3, labels=k))[0]
                       for k in (1, 2)])
    assert np.abs(out["generate_rows"].astype(int) - uint8(seeded)).max() <= 1
    for name, message in [("label_4", "label must be in [0, 4)"),
                          ("label_-5", "label must be in [0, 4), or -1 for the classes in turn"),
                          ("n_-1", "n must be at least 1"),
                          ("nan_z", "z must be finite (no NaN or inf)"),
                          ("rows", "z, label and truncation must have the same number of "
                                   "rows")]:
        assert message in str(out["error_" + name]), (name, out["error_" + name])
    assert int(out["default_label"]) == -1  # a client may leave `label` out
    meta = json.loads((path / "assets.extra" / "kgan.json").read_text())
    assert (meta["num_classes"], meta["ema"]) == (4, True)

    raw_gan, _ = load_gan(run)
    raw_images = from_export(raw_path, 4, seed=0)
    assert np.abs(raw_images.astype(int) - uint8(raw_gan.generate(4, seed=0))).max() <= 1
    assert not np.array_equal(raw_images, from_export(path, 4, seed=0))

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = next(iter(tf.data.TFRecordDataset(str(path / export.WARMUP))))
    request = prediction_log_pb2.PredictionLog.FromString(warmup.numpy()).predict_log.request
    assert tf.make_ndarray(request.inputs["label"]).tolist() == [0]
    assert tf.make_ndarray(request.inputs["z"]).shape == (1, 8)


def test_two_exports_at_once_get_two_versions(tmp_path):
    import threading

    base = tmp_path / "same"
    base.mkdir()
    finished = []
    for i in range(6):  # six finished exports, each in its temporary folder
        finished.append(tmp_path / "same" / f".export-{i}")
        finished[-1].mkdir()
        (finished[-1] / "assets.extra").mkdir()
        (finished[-1] / "saved_model.pb").write_text(str(i))
    start = threading.Barrier(len(finished))
    published = [None] * len(finished)

    def publish(i):
        start.wait()  # all at the same moment
        published[i] = export.publish(finished[i], base, None, False, {"name": "same"})

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(finished))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(int(path.name) for path in published) == [1, 2, 3, 4, 5, 6]
    for i, path in enumerate(published):  # each export kept, in the version it was told
        assert (path / "saved_model.pb").read_text() == str(i)
        assert json.loads((path / serving.METADATA).read_text())["version"] == int(path.name)


def test_exports_and_runs_are_readable_by_others_under_the_umask(toy_npz, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        run = lib.train(toy_config(toy_npz, epochs=2), runs_dir=tmp_path / "runs").run_dir
        path = export.export(run, tmp_path / "models")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755  # TF Serving may run as another user
    for file in (path / "saved_model.pb", run / "checkpoints" / "latest.keras",
                 run / "samples" / "epoch-0002.png", run / "status.json", run / "config.json"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, file


def test_a_broken_export_fails_its_check_and_publishes_nothing(trained, tmp_path, monkeypatch):
    import tensorflow as tf

    run, _ = trained
    # Deliberately broken: the uint8 signatures scale by 120 instead of 127.5.
    monkeypatch.setattr(serving, "to_uint8", lambda images: tf.cast(
        tf.clip_by_value(tf.round((images + 1.0) * 120.0), 0.0, 255.0), tf.uint8))
    out = tmp_path / "models"
    done = runner.invoke(app, ["export", str(run), "--out-dir", str(out)])
    assert done.exit_code == 1
    assert re.fullmatch(r"Error: Export check failed: serving/images differs from the run's "
                        r"generator by \d+\.\d gray levels \(at most 1 allowed\); nothing was "
                        r"published\n", done.stderr), done.stderr
    assert [p.name for p in (out / "dcgan-toy").iterdir() if not p.name.startswith(".")] == []
    unchecked = runner.invoke(app, ["export", str(run), "--out-dir", str(out), "--no-verify"])
    assert unchecked.exit_code == 0 and unchecked.stdout == f"{out / 'dcgan-toy' / '1'}\n"
    assert "verified" not in serving.metadata(out / "dcgan-toy" / "1")


# The residual and style-based archs' exports, called by TensorFlow alone: z (and truncation)
# in, images out, as their Keras generators draw them.
TF_ONLY_TRUNCATION = r"""
import sys
sys.modules["keras"] = sys.modules["kgan"] = None
import numpy as np
import tensorflow as tf
path, z_file, out_file = sys.argv[1:4]
sig = tf.saved_model.load(path).signatures["raw"]
z = tf.constant(np.load(z_file))
psi = lambda value: tf.fill(tf.shape(z)[:1], value)  # a psi per row (batchable)
extra = {"truncation": psi(1.0)} if "truncation" in sig.structured_input_signature[1] else {}
out = {"raw": sig(z=z, **extra)["images"].numpy(), "inputs": np.array(sorted(
    sig.structured_input_signature[1]))}
if extra:
    out["mean"] = sig(z=z, truncation=psi(0.0))["images"].numpy()
np.savez(out_file, **out)
"""


@pytest.mark.parametrize("arch", ["resnet", "stylegan"])
def test_residual_and_style_based_exports_load_in_tensorflow_alone(arch, toy_npz, tmp_path):
    run_dir = lib.train(toy_config(toy_npz, arch=arch, base_filters=4, steps_per_epoch=4),
                        runs_dir=tmp_path / "runs").run_dir
    path = export.export(run_dir, tmp_path / "saved_models")  # checked in TF alone, too
    meta = serving.metadata(path)
    assert meta["verified"]["max_difference"] <= 1 and meta["truncation"] == (arch == "stylegan")
    z = np.random.default_rng(4).standard_normal((5, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    subprocess.run([sys.executable, "-c", TF_ONLY_TRUNCATION, str(path), str(tmp_path / "z.npy"),
                    str(tmp_path / "out.npz")], check=True, capture_output=True)
    out = np.load(tmp_path / "out.npz")
    gan, _ = load_gan(run_dir)
    np.testing.assert_allclose(out["raw"], keras.ops.convert_to_numpy(gan.generator(
        gan.g_inputs(keras.ops.convert_to_tensor(z), None), training=False)), atol=1e-5)
    if arch == "stylegan":
        assert list(out["inputs"]) == ["truncation", "z"]
        want = keras.ops.convert_to_numpy(gan.generate(5, seed=0, truncation=0.0))[:1]
        np.testing.assert_allclose(out["mean"], np.repeat(want, 5, 0), atol=1e-5)
    else:
        assert list(out["inputs"]) == ["z"]
    bad = runner.invoke(app, ["sample", str(run_dir), "--truncation", "0.5"])
    if arch == "resnet":
        assert bad.exit_code == 1 and bad.output == (
            "Error: --truncation needs a stylegan generator (it pulls styles towards their "
            "average). Received: truncation=0.5\n")
    else:
        assert bad.exit_code == 0


FORMATS = {"keras": ("generator.keras", "keras "),
           "litert": ("generator.tflite", "ai_edge_litert "),
           "onnx": ("generator.onnx", "onnxruntime ")}


def test_every_format_answers_like_the_run_in_its_own_runtime(toy_npz, tmp_path):
    """`kgan export --format keras|litert|onnx` of a conditional StyleGAN with a moving average
    (z, label and truncation in); each file run by its own runtime here too, on other inputs
    than the export's check, within 1 gray level of the run. (A DCGAN: the README test.)"""
    arch = "stylegan"
    run = lib.train(toy_config(toy_npz, arch=arch, conditional=True, base_filters=4,
                               steps_per_epoch=2, ema=0.5, ema_start=1),
                    runs_dir=tmp_path / "runs").run_dir
    gan, config = load_gan(run, ema=True)
    feed = {"z": np.random.default_rng(7).standard_normal((5, 8)).astype(np.float32),
            "label": np.array([3, 0, 1, 2, 3], np.int32),
            "truncation": np.full(5, 0.5, np.float32)}
    inputs = list(feed.values())
    want = keras.ops.convert_to_numpy(gan.generator(inputs, training=False))
    paths = {}
    for format, (file, runtime) in FORMATS.items():
        done = runner.invoke(app, ["export", str(run), "--out-dir", str(tmp_path / "out"),
                                   "--format", format, "--json"])
        assert done.exit_code == 0, done.output
        about = json.loads(done.stdout)
        paths[format] = Path(about["path"])
        assert paths[format] == tmp_path / "out" / f"{arch}-toy" / format / "1"
        assert sorted(p.name for p in paths[format].iterdir()) == [file, "kgan.json"]
        assert about["files"][file]["inputs"] == [
            {"name": name, "shape": [None, *value.shape[1:]], "dtype": str(value.dtype)}
            for name, value in feed.items()]
        assert about["verified"]["runtime"].startswith(runtime)
        assert about["verified"]["max_difference"] <= 1
        assert f"Checked in {runtime}" in done.stderr
    assert not (tmp_path / "out" / "models.config").exists()  # TF Serving's, not these
    from kgan import nn  # noqa: F401  (registers kgan's layers, as `import kgan.nn` does)

    model = keras.saving.load_model(paths["keras"] / "generator.keras")
    assert {layer.dtype_policy.compute_dtype for layer in model.layers} == {"float32"}
    answers = [keras.ops.convert_to_numpy(model(inputs, training=False)),
               *in_format_runtimes([(paths["litert"] / "generator.tflite", feed),
                                    (paths["onnx"] / "generator.onnx", feed)], tmp_path)]
    for format, answer in zip(FORMATS, answers):
        assert answer.shape == (5, *config.image_shape)
        assert gray_levels(answer, want) <= 1, format
    raw, _ = load_gan(run, ema=False)  # the moving average was exported, not the raw generator
    assert 10 * gray_levels(answers[2], want) < gray_levels(raw.generator(inputs), want)


def test_the_readme_deploy_section_runs_as_written(trained, monkeypatch):
    """The README's Deploy commands and snippets as written, on this module's DCGAN (z of 100;
    in bfloat16 where the CPU has it, so its files are the float32 rebuild)."""
    run, _ = trained
    monkeypatch.chdir(run.parent.parent)  # where runs/ is
    (commands,) = readme_blocks("## Deploy", "bash")[:1]
    for line in commands.splitlines():
        words, (file, *_) = shlex.split(line.split("#")[0]), line.split("# ")[1].split(", ")
        done = runner.invoke(app, [*words[1:], "--json"])
        assert done.exit_code == 0, done.output
        about = json.loads(done.stdout)
        assert Path(file).resolve().is_relative_to(Path(about["path"]).resolve()), file
        assert Path(file).exists() and about["verified"]["max_difference"] <= 1
        if about["format"] != "savedmodel":
            assert about["files"]["generator" + Path(file).suffix]["inputs"] == [
                {"name": "z", "shape": [None, 100], "dtype": "float32"}]
    (server,) = readme_blocks("### TensorFlow Serving", "bash")
    for name in re.findall(r"--\w+_file=(\S+)", server):  # the files it starts the server with
        assert (Path("saved_models") / name).is_file(), name
    gan, _ = load_gan(run)
    want = gan.generator(np.random.default_rng(0).standard_normal((16, 100)), training=False)
    snippets = readme_blocks("## Deploy", "python")
    assert len(snippets) == 3  # LiteRT, ONNX, Keras
    for code in snippets:
        scope = {}
        exec(compile(code, "README.md", "exec"), scope)
        assert scope["images"].shape == (16, 8, 8, 3), code
        assert gray_levels(scope["images"], want) <= 1, code


def test_format_errors_are_one_line_naming_the_cause(trained, tmp_path, monkeypatch):
    run, _ = trained
    done = runner.invoke(app, ["export", str(run), "--format", "onnx", "--max-batch", "3"])
    assert (done.exit_code, done.output) == (1, "Error: --max-batch applies to --format "
                                             "savedmodel (its onnx files take any batch). "
                                             "Received: max_batch=3\n")
    assert runner.invoke(app, ["export", str(run), "--format", "tflite"]).exit_code == 2
    found = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime" else found(name))
    done = runner.invoke(app, ["export", str(run), "--out-dir", str(tmp_path), "--format", "onnx"])
    assert (done.exit_code, done.output) == (1, "Error: --format onnx needs the onnxruntime "
                                             "package: pip install 'kgan[onnx]'\n")
    monkeypatch.undo()
    # A generator with an op that neither LiteRT's builtins nor ONNX has (a model of your own
    # could): one line naming the op.
    z = keras.Input((4,), name="z")
    x = keras.layers.Activation(lambda t: keras.ops.erfinv(0.5 * keras.ops.tanh(t)))(
        keras.layers.Dense(16)(z))
    model = keras.Model(z, keras.layers.Reshape((4, 4, 1))(x))
    for format, lacks in (("litert", "LiteRT has no builtin Erfinv op (only TensorFlow Select "
                                     "ops, which need TensorFlow on the device)"),
                          ("onnx", "ONNX has no Erfinv op")):
        with pytest.raises(KganError) as error:
            formats.write(format, [("generator", model, [np.zeros((2, 4), np.float32)])],
                          tmp_path)
        assert str(error.value) == (f"--format {format} cannot express the generator path: "
                                    f"{lacks}; use --format savedmodel or keras")
