"""A pix2pix or cyclegan export: its signatures, their check, and its reader.

Per direction (pix2pix: `translate`; cyclegan: `a2b`, `b2a`; `serving_default` is the first
one), all `tensorflow/serving/predict`:
    <direction>: `images` uint8 [None, H, W, C_in] -> `images` uint8 [None, H, W, C_out].
    raw (b2a_raw): `images` float32 in [-1, 1] -> `images` float32 in [-1, 1].
    <direction>_png: `png_bytes` string [None] (PNG or JPEG files; gray or color, converted
        to C_in; another size is resized, bicubic) -> `png_bytes` string [None], PNG files.
Tensors of another size or channels are refused with a message naming the model's shape.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kgan import drawing, images, serving
from kgan.drawing import CHUNK
from kgan.errors import KganError, first_line
from kgan.serving import CHECK_N, CHECK_SEED

# `serving_default` is the A -> B translation under another name.
SIGNATURES = {
    "pix2pix": ("serving_default", "translate", "raw", "translate_png"),
    "cyclegan": ("serving_default", "a2b", "b2a", "raw", "b2a_raw", "a2b_png", "b2a_png"),
}


def write(model, config, path: Path, max_batch: int, ema: bool) -> dict:
    """Writes `model`'s signatures to `path`; returns what the export's metadata says of
    them."""
    return {"arch": config.arch, "shapes": _write_savedmodel(model, path),
            "signatures": list(SIGNATURES[config.arch])}


def _translation_signatures(generator, size: int, channels: int) -> dict:
    """The uint8, float and PNG functions of one translation direction. Tensors of another
    shape are refused with a message naming the model's; PNGs of another size are resized."""
    def checked(images):
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(images)[1:], [size, size, channels],
                message=f"images: the model takes [N, {size}, {size}, {channels}] (height, width, "
                "channels); received [height, width, channels] =")]):
            return tf.identity(images)

    def finite(images):  # a NaN input would answer NaN images: refused, as noise's z is
        with tf.control_dependencies([tf.debugging.assert_all_finite(
                images, message="images must be finite (no NaN or inf)")]):
            return tf.identity(images)

    def translated(images):
        floats = tf.cast(images, tf.float32) / 127.5 - 1.0
        return serving.to_uint8(generator(floats, training=False))

    def decode(data):
        image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8,
                                   expand_animations=False)
        image = tf.cond(tf.reduce_all(tf.shape(image)[:2] == size), lambda: image,
                        lambda: serving.to_uint8(tf.image.resize(
                            tf.cast(image, tf.float32) / 127.5 - 1, [size, size],
                            method="bicubic")))
        return tf.ensure_shape(image, [size, size, channels])

    def from_png(png_bytes):
        images = tf.map_fn(decode, png_bytes, fn_output_signature=tf.TensorSpec(
            [size, size, channels], tf.uint8))
        return {"png_bytes": serving.encode_png(translated(images))}

    return {"uint8": lambda images: {"images": translated(checked(images))},
            "float": lambda images: {"images": generator(finite(checked(images)),
                                                         training=False)},
            "png": from_png}


def translation_endpoints(model) -> list[tuple[str, keras.Model]]:
    """Each direction's signature name and generator: pix2pix `translate`, cyclegan `a2b` and
    `b2a` (its generators in that order)."""
    names = ["translate"] if len(model.generators) == 1 else ["a2b", "b2a"]
    return list(zip(names, model.generators))


def raw_endpoint(name: str) -> str:
    """The float signature of direction `name`: `raw` for the first, `b2a_raw` for cyclegan's
    second."""
    return "b2a_raw" if name == "b2a" else "raw"


def _write_savedmodel(model, path: Path) -> dict:
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


def forward_paths(gan, n: int = CHECK_N):
    """Each direction's generator (`translate`; `a2b`, `b2a`): images in [-1, 1] -> images in
    [-1, 1], with `n` seeded images of its input shape (at whole gray levels)."""
    rng = np.random.default_rng(CHECK_SEED)
    return [(name, generator, [rng.integers(0, 256, (n, *generator.input.shape[1:])).astype(
        np.float32) / 127.5 - 1.0]) for name, generator in translation_endpoints(gan)]


def checks(gan, n: int = CHECK_N):
    """Calls, inputs and expected answers for a pix2pix or cyclegan model's signatures."""
    calls, inputs, expected = [], {}, {}
    paths = forward_paths(gan, n)
    for name, _, (scaled,) in paths:
        direction = "b2a" if name == "b2a" else "a2b"
        x = images.to_uint8(scaled)
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
    first = paths[0][0]
    inputs["serving/images"] = inputs[f"{first}/images"]
    expected["serving/images"] = expected[f"{first}/images"]
    return calls, inputs, expected


class ExportTranslator(drawing.Translation):
    """An exported translation model's float signatures (`raw`, and `b2a_raw` for cyclegan)."""

    def __init__(self, version_dir: Path):
        self.version_dir, self.meta = version_dir, serving.metadata(version_dir)
        self.shapes = {d: (tuple(s[0]), tuple(s[1])) for d, s in self.meta["shapes"].items()}
        try:
            signatures = tf.saved_model.load(str(version_dir)).signatures
            self.raw = {d: signatures["raw" if d == "a2b" else "b2a_raw"] for d in self.shapes}
        except Exception as e:
            raise KganError(f"Cannot load SavedModel {version_dir}: {first_line(e)}") from None

    def translate(self, batch, direction="a2b"):
        return np.concatenate([self.raw[direction](images=batch[i : i + CHUNK])["images"].numpy()
                               for i in range(0, len(batch), CHUNK)])
