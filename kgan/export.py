"""`export()`: a run's generator -> a TensorFlow SavedModel that TensorFlow Serving loads.

This module is TensorFlow by nature (SavedModel, `tf.function` signatures), so the CLI runs it
on the TensorFlow backend whatever backend trained the run: checkpoints hold plain weights.

Layout written (TF Serving's model base path is `saved_models/<name>`):

    saved_models/<name>/<version>/saved_model.pb, variables/
    saved_models/<name>/<version>/assets.extra/tf_serving_warmup_requests
    saved_models/<name>/<version>/assets.extra/kgan.json
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from filelock import FileLock

from kgan import images, models, runs
from kgan.checkpoint import load_gan
from kgan.errors import KganError

METADATA = "assets.extra/kgan.json"
WARMUP = "assets.extra/tf_serving_warmup_requests"
SIGNATURES = ("serving_default", "generate", "raw", "generate_png")
# Image to image: `serving_default` is the A -> B translation under another name.
TRANSLATION_SIGNATURES = {
    "pix2pix": ("serving_default", "translate", "raw", "translate_png"),
    "cyclegan": ("serving_default", "a2b", "b2a", "raw", "b2a_raw", "a2b_png", "b2a_png"),
}
LOCK = ".kgan-export.lock"  # in saved_models/<name>/: held while a version is claimed


def to_uint8(images):
    """[-1, 1] floats -> uint8 in the graph, rounding exactly like `kgan.images.to_uint8`."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def noise(n, seed, latent_dim):
    """The latent batch of (`n`, `seed`): equal to `keras.random.normal` with an int seed on TF."""
    seed = tf.cast(seed, tf.int64)
    return tf.random.stateless_normal(tf.stack([n, latent_dim]), seed=tf.stack([seed, 0]))


def export(run_dir: str | Path, out_dir: str | Path = "saved_models", name: str | None = None,
           version: int | None = None, force: bool = False, max_batch: int = 1024,
           best: bool = False, ema: bool = True, verify: bool = True) -> Path:
    """Writes the run's generator as `out_dir/<name>/<version>/` and returns that path.

    The SavedModel is written to a temporary folder beside its target and renamed into place,
    so TF Serving (which watches `out_dir/<name>`) never sees a half-written version. With
    `verify` (default) it is first checked in a TensorFlow-only process (`check`): a failed
    check raises `KganError` and publishes nothing; the result is in `kgan.json`'s `verified`.

    Signatures (all `tensorflow/serving/predict`):
        serving_default: `z` float32 [None, latent_dim] -> `images` uint8 [None, H, W, C].
        generate: `n` int32 scalar, `seed` int64 scalar -> `images` uint8; 1 <= n <= max_batch.
        raw: `z` float32 [None, latent_dim] -> `images` float32 in [-1, 1].
        generate_png: `n`, `seed` as for generate -> `png_bytes` string [n], PNG files.

    pix2pix and cyclegan runs get image-to-image signatures instead (see
    `_write_translation_savedmodel`).

    A conditional run's signatures also take a `label`: int32 [None] beside `z`, and an int32
    scalar in `generate` whose default, -1, gives the classes in turn (0, 1, ...).
    A stylegan run's signatures also take `truncation`: a float32 scalar psi, 1 for none, 0
    for the average image (every signature needs it).
    With `ema` (default), a run trained with `--ema` exports the moving average of its
    generator's weights.
    """
    if max_batch <= 0:
        raise KganError(f"`max_batch` must be a positive integer. Received: max_batch={max_batch}")
    if version is not None and not 0 < version < 2**63:  # TF Serving's versions are int64
        raise KganError(f"`version` must be an integer in [1, 2**63). Received: version={version}")
    run_dir, config = runs.open_run(run_dir)
    name = name or re.sub(r"^\d{5}-", "", run_dir.name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise KganError(f"`name` may only use letters, digits, '.', '_' and '-'. Received: "
                        f"name={name}")
    base = Path(out_dir) / name
    if version is not None:  # before the slow part; checked again when it is published
        _check_free(base / str(version), force)
    gan, config = load_gan(run_dir, best, ema=ema)
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=".export-"))
    except OSError as e:
        raise KganError(f"Cannot write to {base}: {e.strerror or e}") from None
    try:
        if config.translation:
            shapes = _write_translation_savedmodel(gan, tmp)
            warmup = {"images": np.zeros((1, *shapes["a2b"][0]), np.uint8)}
            about = {"arch": config.arch, "shapes": shapes,
                     "signatures": list(TRANSLATION_SIGNATURES[config.arch])}
        else:
            _write_savedmodel(gan.generator, config.latent_dim, max_batch, tmp, gan.num_classes)
            warmup = {"z": np.zeros((1, config.latent_dim), np.float32)}
            if gan.num_classes:
                warmup["label"] = np.zeros((1,), np.int32)
            if gan.truncates:
                warmup["truncation"] = np.ones((), np.float32)
            about = {"latent_dim": config.latent_dim, "num_classes": gan.num_classes,
                     "truncation": gan.truncates, "ema": bool(ema and config.ema),
                     "max_batch": max_batch, "signatures": list(SIGNATURES)}
        _write_warmup(tmp / WARMUP, name, warmup)
        metadata = {
            "name": name, **about, "image_shape": list(config.image_shape),
            "dataset": config.dataset, "step": gan.steps, "run_dir": str(run_dir.resolve()),
            "checkpoint": runs.BEST if best else runs.CHECKPOINT,
            "training_config": json.loads(config.to_json()),
        }
        if verify:
            metadata["verified"] = check(tmp, gan, config, max_batch)
        return publish(tmp, base, version, force, metadata)
    except OSError as e:
        raise KganError(f"Cannot write to {base}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Runs in a fresh interpreter where Keras and kgan cannot be imported: TensorFlow alone, as TF
# Serving would. Calls signatures with the inputs in argv[2] and saves what they answer in
# argv[3]; PNG answers are decoded as a client would.
_CALL_SIGNATURES = r"""
import json, sys
sys.modules["keras"] = sys.modules["kgan"] = None
import numpy as np
import tensorflow as tf
path, requests_file, out_file = sys.argv[1:4]
model = tf.saved_model.load(path)
requests = np.load(requests_file)
out = {}
for call, signature, names in json.loads(str(requests["calls"])):
    answer = model.signatures[signature](**{k: tf.constant(requests[f"{call}/{k}"])
                                            for k in names})
    for key, value in answer.items():
        value = value.numpy()
        if value.dtype == object:
            value = np.stack([tf.io.decode_png(png).numpy() for png in value])
        out[f"{call}/{key}"] = value
np.savez(out_file, **out)
"""
CHECK_N = 8  # images per checked call
CHECK_SEED = 1234
CHECK_TRUNCATION = 0.7  # stylegan exports are checked at a psi that changes the images


def check(path: Path, gan, config, max_batch: int = 1024) -> dict:
    """Checks the SavedModel at `path` against `gan`, the model it was exported from (with its
    moving average, if exported so), in a separate TensorFlow-only process.

    Every signature gets fixed inputs (seeded noise and labels, or seeded images; PNG files
    for the `*_png` ones); each answer must be finite and within 1 gray level of the run's own
    generator, and one image alone must match it within a batch (BatchNorm in inference
    mode). Raises `KganError` naming the first failing call; returns what was checked and the
    largest difference in gray levels.
    """
    calls, inputs, expected = (_translation_checks(gan) if config.translation
                               else _noise_checks(gan, min(CHECK_N, max_batch)))
    with tempfile.TemporaryDirectory(prefix="kgan-check-") as work:
        requests, answers = Path(work) / "requests.npz", Path(work) / "answers.npz"
        np.savez(requests, calls=np.array(json.dumps(calls)), **inputs)
        done = subprocess.run([sys.executable, "-c", _CALL_SIGNATURES, str(path), str(requests),
                               str(answers)], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise KganError(f"Export check failed: TensorFlow alone could not call the "
                            f"export's signatures ({last}); nothing was published")
        with np.load(answers) as answered:
            got = {key: answered[key] for key in answered.files}
    differences = {}
    for key, want in expected.items():
        if not np.isfinite(got[key].astype(np.float64)).all():
            raise KganError(f"Export check failed: {key} answered NaN or inf; nothing was "
                            "published")
        scale = 127.5 if want.dtype.kind == "f" else 1.0  # floats in [-1, 1]: 127.5 per level
        differences[key] = float(np.max(np.abs(got[key].astype(np.float64) - want)) * scale)
        if differences[key] > 1.0:
            raise KganError(f"Export check failed: {key} differs from the run's generator by "
                            f"{differences[key]:.1f} gray levels (at most 1 allowed); nothing "
                            "was published")
    return {"signatures": sorted({signature for _, signature, _ in calls}),
            "max_difference": round(max(differences.values()), 4),
            "batch_of_one": round(max(v for k, v in differences.items()
                                      if k.split("/")[0].endswith("alone")), 4)}


def _noise_checks(gan, n: int):
    """Calls, inputs and expected answers for a noise-to-image GAN's signatures."""
    rng = np.random.default_rng(CHECK_SEED)
    z = rng.standard_normal((n, gan.latent_dim)).astype(np.float32)
    labels = None if not gan.num_classes else np.arange(n, dtype=np.int32) % gan.num_classes
    rest = ["label"] if labels is not None else []
    psi = CHECK_TRUNCATION if gan.truncates else 1.0
    want = keras.ops.convert_to_numpy(gan.generator(gan.g_inputs(
        keras.ops.convert_to_tensor(z), gan.labels_for(n, labels), psi), training=False))
    inputs = {"serving/z": z, "raw/z": z, "alone/z": z[:1],
              "generate/n": np.array(n, np.int32), "generate/seed": np.array(CHECK_SEED, np.int64),
              "png/n": np.array(n, np.int32), "png/seed": np.array(CHECK_SEED, np.int64)}
    if labels is not None:  # generate's -1: the classes in turn, as gan.generate draws them
        inputs.update({"serving/label": labels, "raw/label": labels, "alone/label": labels[:1],
                       "generate/label": np.array(-1, np.int32),
                       "png/label": np.array(-1, np.int32)})
    if gan.truncates:
        rest.append("truncation")
        inputs.update({f"{call}/truncation": np.array(psi, np.float32)
                       for call in ("serving", "raw", "alone", "generate", "png")})
    calls = [["serving", "serving_default", ["z", *rest]], ["raw", "raw", ["z", *rest]],
             ["alone", "raw", ["z", *rest]], ["generate", "generate", ["n", "seed", *rest]],
             ["png", "generate_png", ["n", "seed", *rest]]]
    # generate's noise is keras.random.normal's for an int seed on TensorFlow (export.noise).
    drawn = images.to_uint8(keras.ops.convert_to_numpy(gan.generate(n, seed=CHECK_SEED,
                                                                    truncation=psi)))
    expected = {"serving/images": images.to_uint8(want), "raw/images": want,
                "alone/images": want[:1], "generate/images": drawn, "png/png_bytes": drawn}
    return calls, inputs, expected


def _translation_checks(gan):
    """Calls, inputs and expected answers for a pix2pix or cyclegan model's signatures."""
    rng = np.random.default_rng(CHECK_SEED)
    calls, inputs, expected = [], {}, {}
    endpoints = translation_endpoints(gan)
    for name, generator in endpoints:
        direction = "b2a" if name == "b2a" else "a2b"
        x = rng.integers(0, 256, (CHECK_N, *generator.input.shape[1:]), dtype=np.uint8)
        scaled = x.astype(np.float32) / 127.5 - 1.0
        want = keras.ops.convert_to_numpy(gan.translate(scaled, direction))
        raw = raw_endpoint(name)
        pngs = np.array([tf.io.encode_png(image).numpy() for image in x])
        inputs.update({f"{name}/images": x, f"{name}_raw/images": scaled,
                       f"{name}_alone/images": scaled[:1], f"{name}_png/png_bytes": pngs})
        calls += [[name, name, ["images"]], [f"{name}_raw", raw, ["images"]],
                  [f"{name}_alone", raw, ["images"]], [f"{name}_png", f"{name}_png",
                                                       ["png_bytes"]]]
        expected.update({f"{name}/images": images.to_uint8(want), f"{name}_raw/images": want,
                         f"{name}_alone/images": want[:1],
                         f"{name}_png/png_bytes": images.to_uint8(want)})
    calls.append(["serving", "serving_default", ["images"]])  # the first direction's
    first = endpoints[0][0]
    inputs["serving/images"] = inputs[f"{first}/images"]
    expected["serving/images"] = expected[f"{first}/images"]
    return calls, inputs, expected


def publish(tmp: Path, base: Path, version: int | None, force: bool, metadata: dict) -> Path:
    """Renames the finished export `tmp` to `base/<version>` (with `version` None, the next
    free one) and returns that path.

    Under a lock on `base`: two exports at once get two versions, where both would otherwise
    take the same one and the second would silently replace the first.
    """
    with FileLock(base / LOCK):
        version = version or _next_version(base)
        target = base / str(version)
        _check_free(target, force)
        metadata = {"name": metadata["name"], "version": version, **metadata}
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
        os.chmod(tmp, runs.mode(directory=True))  # mkdtemp's 0700 would lock TF Serving out
        if target.exists():  # --force: swap the new version in, then drop the old one
            old = Path(tempfile.mkdtemp(dir=base, prefix=".export-old-"))
            os.replace(target, old / "v")
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    return target


def _check_free(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise KganError(f"{target} already exists. Use --force to replace it, or another "
                        "--version.")


def _next_version(base: Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def _write_savedmodel(generator, latent_dim: int, max_batch: int, path: Path,
                      num_classes: int | None = None) -> None:
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")
    generate_spec = [tf.TensorSpec([], tf.int32, name="n"),
                     tf.TensorSpec([], tf.int64, name="seed")]
    # A StyleGAN-style generator: every signature also takes the truncation psi (a scalar),
    # which reaches the endpoints below as their last argument (`*psi`: empty without it).
    truncates = models.truncates(generator)
    psi_spec = [tf.TensorSpec([], tf.float32, name="truncation")] if truncates else []

    def run(z, labels=None, psi=()):
        inputs = [z] if labels is None else [z, labels]
        if truncates:
            inputs.append(tf.fill(tf.shape(z)[:1], checked_psi(*psi)))
        return generator(inputs[0] if len(inputs) == 1 else inputs, training=False)

    def checked_psi(psi):
        with tf.control_dependencies([tf.debugging.assert_all_finite(
                psi, message="truncation must be finite (no NaN or inf)")]):
            return tf.identity(psi)

    # Inputs are checked in the graph, so that a client gets a message rather than black
    # images (NaN in z) or TensorFlow's words for a shape error.
    def checked_n(n):
        with tf.control_dependencies([
                tf.debugging.assert_greater_equal(n, 1, message="n must be at least 1"),
                tf.debugging.assert_less_equal(n, max_batch,
                                               message=f"n must be at most {max_batch}")]):
            return tf.identity(n)

    def checked_z(z):
        with tf.control_dependencies([tf.debugging.assert_all_finite(
                z, message="z must be finite (no NaN or inf)")]):
            return tf.identity(z)

    def generate_images(n, seed, labels=None, psi=()):
        return run(noise(n, seed, latent_dim), labels, psi)

    def unconditional(z, psi):
        return run(checked_z(z), None, psi)

    archive = keras.export.ExportArchive()
    archive.track(generator)
    if num_classes is None:
        archive.add_endpoint("serving_default",
                             lambda z, *psi: {"images": to_uint8(unconditional(z, psi))},
                             input_signature=[z_spec, *psi_spec])
        archive.add_endpoint(
            "generate", lambda n, seed, *psi: {"images": to_uint8(generate_images(
                checked_n(n), seed, None, psi))}, input_signature=[*generate_spec, *psi_spec])
        archive.add_endpoint("raw", lambda z, *psi: {"images": unconditional(z, psi)},
                             input_signature=[z_spec, *psi_spec])
        archive.add_endpoint(
            "generate_png", lambda n, seed, *psi: {"png_bytes": encode_png(to_uint8(
                generate_images(checked_n(n), seed, None, psi)))},
            input_signature=[*generate_spec, *psi_spec])
    else:
        def checked(labels):
            message = f"label must be in [0, {num_classes})"
            with tf.control_dependencies([
                    tf.debugging.assert_non_negative(labels, message=message),
                    tf.debugging.assert_less(labels, num_classes, message=message)]):
                return tf.identity(labels)

        def conditional(z, label, psi):
            z = checked_z(z)
            with tf.control_dependencies([tf.debugging.assert_equal(
                    tf.shape(z)[0], tf.shape(label)[0],
                    message="z and label must have the same number of rows")]):
                return run(z, checked(label), psi)

        # -1 (the default a SignatureDef records for a client that leaves `label` out): the
        # classes in turn. A tensor default is what TensorFlow writes into the SignatureDef.
        def generate_labelled(n, seed, label, psi):
            n = checked_n(n)
            with tf.control_dependencies([tf.debugging.assert_greater_equal(
                    label, -1, message=f"label must be in [0, {num_classes}), or -1 for the "
                    "classes in turn")]):
                labels = tf.where(label < 0, tf.range(n) % num_classes, tf.fill([n], label))
            return {"images": to_uint8(generate_images(n, seed, checked(labels), psi))}

        if truncates:  # no default for `label`: a required `truncation` follows it
            def generate(n, seed, label, truncation):
                return generate_labelled(n, seed, label, (truncation,))
        else:
            def generate(n, seed, label=tf.constant(-1, tf.int32)):  # noqa: B008
                return generate_labelled(n, seed, label, ())

        def generate_png(*args):
            return {"png_bytes": encode_png(generate(*args)["images"])}

        label_spec = tf.TensorSpec([None], tf.int32, name="label")
        generate_label_spec = [*generate_spec, tf.TensorSpec([], tf.int32, name="label"),
                               *psi_spec]
        archive.add_endpoint("serving_default", lambda z, label, *psi: {
            "images": to_uint8(conditional(z, label, psi))},
            input_signature=[z_spec, label_spec, *psi_spec])
        archive.add_endpoint("generate", generate, input_signature=generate_label_spec)
        archive.add_endpoint("raw", lambda z, label, *psi: {
            "images": conditional(z, label, psi)},
            input_signature=[z_spec, label_spec, *psi_spec])
        archive.add_endpoint("generate_png", generate_png, input_signature=generate_label_spec)
    archive.write_out(str(path), verbose=False)


def _translation_signatures(generator, size: int, channels: int) -> dict:
    """The uint8, float and PNG functions of one translation direction. Tensors of another
    shape are refused with a message naming the model's; PNGs of another size are resized."""
    def checked(images):
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(images)[1:], [size, size, channels],
                message=f"images: the model takes [N, {size}, {size}, {channels}] (height, width, "
                "channels); received [height, width, channels] =")]):
            return tf.identity(images)

    def translated(images):
        return to_uint8(generator(tf.cast(images, tf.float32) / 127.5 - 1.0, training=False))

    def decode(data):
        image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8,
                                   expand_animations=False)
        image = tf.cond(tf.reduce_all(tf.shape(image)[:2] == size), lambda: image,
                        lambda: to_uint8(tf.image.resize(tf.cast(image, tf.float32) / 127.5 - 1,
                                                         [size, size], method="bicubic")))
        return tf.ensure_shape(image, [size, size, channels])

    def from_png(png_bytes):
        images = tf.map_fn(decode, png_bytes, fn_output_signature=tf.TensorSpec(
            [size, size, channels], tf.uint8))
        return {"png_bytes": encode_png(translated(images))}

    return {"uint8": lambda images: {"images": translated(checked(images))},
            "float": lambda images: {"images": generator(checked(images), training=False)},
            "png": from_png}


def encode_png(images):
    """uint8 [N, H, W, C] -> string [N]: one PNG file each."""
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)


def translation_endpoints(model) -> list[tuple[str, keras.Model]]:
    """Each direction's signature name and generator: pix2pix `translate`, cyclegan `a2b` and
    `b2a` (its generators in that order)."""
    names = ["translate"] if len(model.generators) == 1 else ["a2b", "b2a"]
    return list(zip(names, model.generators))


def raw_endpoint(name: str) -> str:
    """The float signature of direction `name`: `raw` for the first, `b2a_raw` for cyclegan's
    second."""
    return "b2a_raw" if name == "b2a" else "raw"


def _write_translation_savedmodel(model, path: Path) -> dict:
    """Writes a pix2pix or cyclegan model's signatures and returns their shapes,
    `{direction: [input (H, W, C), output (H, W, C)]}`.

    Per direction (pix2pix: `translate`; cyclegan: `a2b`, `b2a`; `serving_default` is the
    first one), all `tensorflow/serving/predict`:
        <direction>: `images` uint8 [None, H, W, C_in] -> `images` uint8 [None, H, W, C_out].
        raw (b2a_raw): `images` float32 in [-1, 1] -> `images` float32 in [-1, 1].
        <direction>_png: `png_bytes` string [None] (PNG or JPEG files; gray or color,
            converted to C_in; another size is resized, bicubic) -> `png_bytes` string [None],
            PNG files.
    Tensors of another size or channels are refused with a message naming the model's shape.
    """
    archive = keras.export.ExportArchive()
    shapes = {}
    for name, generator in translation_endpoints(model):
        archive.track(generator)
        size, _, channels = generator.input.shape[1:]
        shapes["a2b" if name == "translate" else name] = [[size, size, channels],
                                                           list(generator.output.shape[1:])]
        signatures = _translation_signatures(generator, size, channels)
        uint8_spec = tf.TensorSpec([None, size, size, channels], tf.uint8, name="images")
        for endpoint in [name] + (["serving_default"] if name != "b2a" else []):
            archive.add_endpoint(endpoint, signatures["uint8"], input_signature=[uint8_spec])
        archive.add_endpoint(raw_endpoint(name), signatures["float"],
                             input_signature=[tf.TensorSpec([None, size, size, channels],
                                                            tf.float32, name="images")])
        archive.add_endpoint(f"{name}_png", signatures["png"], input_signature=[
            tf.TensorSpec([None], tf.string, name="png_bytes")])
    archive.write_out(str(path), verbose=False)
    return shapes


def warmup_request(model_name: str, inputs: dict[str, np.ndarray]) -> bytes:
    """One serialized `tensorflow.serving.PredictionLog`: a `serving_default` call with
    `inputs` (one z, and label 0 for a conditional model; one black image to translate).

    Encoded by hand (protobuf wire format) so exporting needs no tensorflow-serving-api:
    PredictionLog.predict_log(6) -> PredictLog.request(1) -> PredictRequest{model_spec(1):
    ModelSpec{name(1), signature_name(3)}, inputs(2): map<string, TensorProto>}.
    """
    spec = _field(1, model_name.encode()) + _field(3, b"serving_default")
    request = _field(1, spec) + b"".join(
        _field(2, _field(1, key.encode()) + _field(2, tf.make_tensor_proto(value)
                                                     .SerializeToString()))
        for key, value in inputs.items())
    return _field(6, _field(1, request))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: tag, varint length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _write_warmup(path: Path, model_name: str, inputs: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(warmup_request(model_name, inputs))


def resolve(model: str | Path) -> Path:
    """`saved_models/NAME` (newest version) or `saved_models/NAME/VERSION` -> the version folder."""
    model = Path(model)
    if (model / "saved_model.pb").is_file():
        return model
    versions = []
    if model.is_dir():
        versions = [int(p.name) for p in model.iterdir()
                    if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    if not versions:
        raise KganError(f"No exported model in {model} (expected {model}/<version>/saved_model.pb)")
    return model / str(max(versions))


def metadata(version_dir: Path) -> dict:
    try:
        return json.loads((version_dir / METADATA).read_text())
    except (OSError, ValueError) as e:
        raise KganError(f"Cannot read {version_dir / METADATA}: {e}") from None
