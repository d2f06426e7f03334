"""A noise GAN's export: its signatures, their check, and its reader.

Signatures (all `tensorflow/serving/predict`):
    serving_default: `z` float32 [None, latent_dim] -> `images` uint8 [None, H, W, C].
    generate: `n` int32 scalar, `seed` int64 scalar -> `images` uint8; 1 <= n <= max_batch.
    raw: `z` -> `images` float32 in [-1, 1].
    generate_png: `n`, `seed` -> `png_bytes` string [n], one PNG file each.
Conditional models also take `label` int32 ([None] beside z; a scalar for generate, -1: the
classes in turn), StyleGAN-style ones a scalar `truncation` psi.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kgan import drawing, images, serving
from kgan.errors import KganError, first_line
from kgan.families.noise import nets
from kgan.serving import CHECK_SEED, CHECK_TRUNCATION

SIGNATURES = ("serving_default", "generate", "raw", "generate_png")


def write(gan, config, path: Path, max_batch: int, ema: bool) -> dict:
    """Writes `gan`'s generator's signatures to `path`; returns what the export's metadata
    says of them."""
    _write_savedmodel(gan.generator, config.latent_dim, max_batch, path, gan.num_classes)
    return {"latent_dim": config.latent_dim, "num_classes": gan.num_classes,
            "truncation": gan.truncates, "ema": bool(ema and config.ema),
            "max_batch": max_batch, "signatures": list(SIGNATURES)}


def _write_savedmodel(generator, latent_dim: int, max_batch: int, path: Path,
                      num_classes: int | None = None) -> None:
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")
    generate_spec = [tf.TensorSpec([], tf.int32, name="n"),
                     tf.TensorSpec([], tf.int64, name="seed")]
    # A StyleGAN-style generator: every signature also takes the truncation psi (a scalar),
    # which reaches the endpoints below as their last argument (`*psi`: empty without it).
    truncates = nets.truncates(generator)
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
        return run(serving.noise(n, seed, latent_dim), labels, psi)

    def unconditional(z, psi):
        return run(checked_z(z), None, psi)

    archive = keras.export.ExportArchive()
    archive.track(generator)
    if num_classes is None:
        archive.add_endpoint("serving_default",
                             lambda z, *psi: {"images": serving.to_uint8(unconditional(z, psi))},
                             input_signature=[z_spec, *psi_spec])
        archive.add_endpoint(
            "generate", lambda n, seed, *psi: {"images": serving.to_uint8(generate_images(
                checked_n(n), seed, None, psi))}, input_signature=[*generate_spec, *psi_spec])
        archive.add_endpoint("raw", lambda z, *psi: {"images": unconditional(z, psi)},
                             input_signature=[z_spec, *psi_spec])
        archive.add_endpoint(
            "generate_png", lambda n, seed, *psi: {"png_bytes": serving.encode_png(serving.to_uint8(
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
            return {"images": serving.to_uint8(generate_images(n, seed, checked(labels), psi))}

        if truncates:  # no default for `label`: a required `truncation` follows it
            def generate(n, seed, label, truncation):
                return generate_labelled(n, seed, label, (truncation,))
        else:
            def generate(n, seed, label=tf.constant(-1, tf.int32)):  # noqa: B008
                return generate_labelled(n, seed, label, ())

        def generate_png(*args):
            return {"png_bytes": serving.encode_png(generate(*args)["images"])}

        label_spec = tf.TensorSpec([None], tf.int32, name="label")
        generate_label_spec = [*generate_spec, tf.TensorSpec([], tf.int32, name="label"),
                               *psi_spec]
        archive.add_endpoint("serving_default", lambda z, label, *psi: {
            "images": serving.to_uint8(conditional(z, label, psi))},
            input_signature=[z_spec, label_spec, *psi_spec])
        archive.add_endpoint("generate", generate, input_signature=generate_label_spec)
        archive.add_endpoint("raw", lambda z, label, *psi: {
            "images": conditional(z, label, psi)},
            input_signature=[z_spec, label_spec, *psi_spec])
        archive.add_endpoint("generate_png", generate_png, input_signature=generate_label_spec)
    archive.write_out(str(path), verbose=False)


def checks(gan, n: int):
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
    # generate's noise is keras.random.normal's for an int seed on TF (`kgan.serving.noise`).
    drawn = images.to_uint8(keras.ops.convert_to_numpy(gan.generate(n, seed=CHECK_SEED,
                                                                    truncation=psi)))
    expected = {"serving/images": images.to_uint8(want), "raw/images": want,
                "alone/images": want[:1], "generate/images": drawn, "png/png_bytes": drawn}
    return calls, inputs, expected


class ExportSource(drawing.Source):
    """An exported SavedModel's `raw` signature; latents are its `generate` signature's (on
    TensorFlow equal to a run's `sample_noise`)."""

    def __init__(self, version_dir: Path):
        self.version_dir, self.meta = version_dir, serving.metadata(version_dir)
        self.num_classes = self.meta.get("num_classes")
        self.truncates = bool(self.meta.get("truncation"))
        try:
            self.raw = tf.saved_model.load(str(version_dir)).signatures["raw"]
        except Exception as e:
            raise KganError(f"Cannot load SavedModel {version_dir}: {first_line(e)}") from None

    def latents(self, n, seed):
        return serving.noise(n, seed, self.meta["latent_dim"]).numpy()

    def _generate(self, z, labels):
        inputs = {"z": z} if labels is None else {"z": z, "label": labels}
        if self.truncates:
            inputs["truncation"] = tf.constant(self.truncation, tf.float32)
        return self.raw(**inputs)["images"].numpy()
