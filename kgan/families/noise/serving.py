"""A noise GAN's export: its signatures, their check, and its reader.

Signatures (all `tensorflow/serving/predict`). Every input of the first four has a leading
batch dimension, one row per image, so that a server can batch requests together:
    serving_default: `z` float32 [None, latent_dim] -> `images` uint8 [None, H, W, C].
    raw: `z` -> `images` float32 in [-1, 1].
    generate: `seed` int64 [None] -> `images` uint8: row i from the latent of `seed[i]` (the
        first latent `kgan sample --seed` draws for it); at most max_batch rows.
    generate_png: `seed` -> `png_bytes` string [None], one PNG file each.
    generate_n: `n` int32 scalar, `seed` int64 scalar -> `images` uint8 [n]: the `n` images of
        `kgan sample --n N --seed S` (a convenience, not batched by a server); 1 <= n <= max_batch.
Conditional models also take `label` int32 ([None]; a scalar in generate_n, whose -1 draws the
classes in turn), StyleGAN-style ones a `truncation` psi float32 ([None]; a scalar in
generate_n).
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

SIGNATURES = ("serving_default", "generate", "raw", "generate_png", "generate_n")


def write(gan, config, path: Path, max_batch: int, ema: bool) -> dict:
    """Writes `gan`'s generator's signatures to `path`; returns what the export's metadata
    says of them."""
    _write_savedmodel(gan.generator, config.latent_dim, max_batch, path, gan.num_classes)
    return {"latent_dim": config.latent_dim, "num_classes": gan.num_classes,
            "truncation": gan.truncates, "ema": bool(ema and config.ema),
            "max_batch": max_batch, "signatures": list(SIGNATURES)}


def row_noise(seeds, latent_dim):
    """One latent per seed: row i is the first of `serving.noise(n, seeds[i])`."""
    return tf.map_fn(lambda seed: serving.noise(1, seed, latent_dim)[0], tf.cast(seeds, tf.int64),
                     fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))


def _write_savedmodel(generator, latent_dim: int, max_batch: int, path: Path,
                      num_classes: int | None = None) -> None:
    truncates = nets.truncates(generator)
    # Beside z (or seed): a conditional model's labels, a StyleGAN-style one's psi, a row each.
    extra_specs = ([tf.TensorSpec([None], tf.int32, name="label")] if num_classes else []) + (
        [tf.TensorSpec([None], tf.float32, name="truncation")] if truncates else [])
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")

    # Inputs are checked in the graph, so that a client gets a message rather than black
    # images (NaN in z) or TensorFlow's words for a shape error.
    def finite(x, name):
        with tf.control_dependencies([tf.debugging.assert_all_finite(
                x, message=f"{name} must be finite (no NaN or inf)")]):
            return tf.identity(x)

    def at_most(count, what):
        with tf.control_dependencies([
                tf.debugging.assert_greater_equal(count, 1, message=f"{what} must be at least 1"),
                tf.debugging.assert_less_equal(count, max_batch,
                                               message=f"{what} must be at most {max_batch}")]):
            return tf.identity(count)

    def checked_labels(labels):
        message = f"label must be in [0, {num_classes})"
        with tf.control_dependencies([
                tf.debugging.assert_non_negative(labels, message=message),
                tf.debugging.assert_less(labels, num_classes, message=message)]):
            return tf.identity(labels)

    def images_of(z, *extra):
        """G's images of the rows `z` and their `extra` inputs (labels, then psi)."""
        z, extra = finite(z, "z"), list(extra)
        inputs = [z]
        if num_classes:
            inputs.append(checked_labels(extra.pop(0)))
        if truncates:
            inputs.append(finite(extra.pop(0), "truncation"))
        rows = [tf.debugging.assert_equal(
            tf.shape(x)[0], tf.shape(z)[0], message="z, label and truncation must have the "
            "same number of rows") for x in inputs[1:]]
        with tf.control_dependencies(rows):
            return generator(inputs[0] if len(inputs) == 1 else inputs, training=False)

    def seeded(seed, *extra):
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                tf.shape(seed)[0], max_batch, message=f"seed must have at most {max_batch} "
                "rows")]):
            return images_of(row_noise(tf.identity(seed), latent_dim), *extra)

    def generate_n(n, seed, *extra):  # scalars: labels -1 (the classes in turn) and psi spread
        n, extra = at_most(n, "n"), list(extra)
        rows = []
        if num_classes:
            label = extra.pop(0)
            with tf.control_dependencies([tf.debugging.assert_greater_equal(
                    label, -1, message=f"label must be in [0, {num_classes}), or -1 for the "
                    "classes in turn")]):
                rows.append(tf.where(label < 0, tf.range(n) % num_classes, tf.fill([n], label)))
        if truncates:
            rows.append(tf.fill([n], extra.pop(0)))
        return {"images": serving.to_uint8(images_of(serving.noise(n, seed, latent_dim), *rows))}

    n_specs = [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int64, name="seed")]
    if num_classes:
        n_specs.append(tf.TensorSpec([], tf.int32, name="label"))
    if truncates:
        n_specs.append(tf.TensorSpec([], tf.float32, name="truncation"))
    if num_classes and not truncates:
        # -1 (the default a SignatureDef records for a client that leaves `label` out): the
        # classes in turn. A tensor default is what TensorFlow writes into the SignatureDef.
        def generate_n_endpoint(n, seed, label=tf.constant(-1, tf.int32)):  # noqa: B008
            return generate_n(n, seed, label)
    else:  # no default where a required `truncation` follows
        def generate_n_endpoint(*args):
            return generate_n(*args)

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", lambda z, *extra: {
        "images": serving.to_uint8(images_of(z, *extra))}, input_signature=[z_spec, *extra_specs])
    archive.add_endpoint("raw", lambda z, *extra: {"images": images_of(z, *extra)},
                         input_signature=[z_spec, *extra_specs])
    archive.add_endpoint("generate", lambda seed, *extra: {"images": serving.to_uint8(seeded(
        seed, *extra))}, input_signature=[seed_spec, *extra_specs])
    archive.add_endpoint("generate_png", lambda seed, *extra: {
        "png_bytes": serving.encode_png(serving.to_uint8(seeded(seed, *extra)))},
        input_signature=[seed_spec, *extra_specs])
    archive.add_endpoint("generate_n", generate_n_endpoint, input_signature=n_specs)
    archive.write_out(str(path), verbose=False)


def _check_rows(gan, n: int):
    """The checks' `n` latents, labels (the classes in turn, or None) and truncation psi."""
    z = np.random.default_rng(CHECK_SEED).standard_normal((n, gan.latent_dim)).astype(np.float32)
    labels = None if not gan.num_classes else np.arange(n, dtype=np.int32) % gan.num_classes
    return z, labels, CHECK_TRUNCATION if gan.truncates else 1.0


def forward_paths(gan, n: int):
    """The generator, `generator`: z (+ labels, + psi) -> images in [-1, 1]."""
    inputs = gan.g_inputs(*_check_rows(gan, n))
    return [("generator", gan.generator, [keras.ops.convert_to_numpy(x) for x in (
        inputs if isinstance(inputs, list) else [inputs])])]


def checks(gan, n: int):
    """Calls, inputs and expected answers for a noise-to-image GAN's signatures."""
    z, labels, psi = _check_rows(gan, n)
    seeds = CHECK_SEED + np.arange(n, dtype=np.int64)
    extra = {}  # each row's label and psi, as the batched signatures take them
    if labels is not None:
        extra["label"] = labels
    if gan.truncates:
        extra["truncation"] = np.full(n, psi, np.float32)

    def drawn(latents):  # the run's generator on these latents, labels and psi
        return keras.ops.convert_to_numpy(gan.generator(gan.g_inputs(
            keras.ops.convert_to_tensor(latents), gan.labels_for(n, labels), psi),
            training=False))

    want, seeded = drawn(z), drawn(row_noise(seeds, gan.latent_dim).numpy())
    inputs = {"serving/z": z, "raw/z": z, "alone/z": z[:1], "generate/seed": seeds,
              "png/seed": seeds, "generate_n/n": np.array(n, np.int32),
              "generate_n/seed": np.array(CHECK_SEED, np.int64)}
    for key, rows in extra.items():
        inputs.update({f"{call}/{key}": rows for call in ("serving", "raw", "generate", "png")})
        inputs[f"alone/{key}"] = rows[:1]
    if labels is not None:  # generate_n's -1: the classes in turn, as gan.generate draws them
        inputs["generate_n/label"] = np.array(-1, np.int32)
    if gan.truncates:
        inputs["generate_n/truncation"] = np.array(psi, np.float32)
    calls = [["serving", "serving_default", ["z", *extra]], ["raw", "raw", ["z", *extra]],
             ["alone", "raw", ["z", *extra]], ["generate", "generate", ["seed", *extra]],
             ["png", "generate_png", ["seed", *extra]],
             ["generate_n", "generate_n", ["n", "seed", *extra]]]
    # generate_n's noise is keras.random.normal's for an int seed on TF (`kgan.serving.noise`).
    sampled = images.to_uint8(keras.ops.convert_to_numpy(gan.generate(n, seed=CHECK_SEED,
                                                                     truncation=psi)))
    expected = {"serving/images": images.to_uint8(want), "raw/images": want,
                "alone/images": want[:1], "generate/images": images.to_uint8(seeded),
                "png/png_bytes": images.to_uint8(seeded), "generate_n/images": sampled}
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
        if self.truncates:  # a psi per row (exports before issue 33: one for the call)
            per_row = self.raw.structured_input_signature[1]["truncation"].shape.rank == 1
            inputs["truncation"] = tf.constant(np.full(len(z), self.truncation) if per_row
                                               else self.truncation, tf.float32)
        return self.raw(**inputs)["images"].numpy()


class ExportGenerator:
    """An export's `raw` signature as `kgan.project` and `kgan.edit` move through it (z, with
    labels and psi where it takes them -> float images): the parts of a run's GAN they use,
    differentiable on TensorFlow."""

    discriminator = None
    layers = ()  # no styles to search: exports are projected in z

    def __init__(self, version_dir: Path):
        self.meta = serving.metadata(version_dir)
        try:  # kept: its signatures refer to its variables
            self.saved = tf.saved_model.load(str(version_dir))
        except Exception as e:
            raise KganError(f"Cannot load SavedModel {version_dir}: {first_line(e)}") from None
        if "raw" not in self.saved.signatures:
            raise KganError(f"{version_dir} has no `raw` signature (z to float images), which "
                            "projection moves through: export its run again")
        self.raw, self.generator = self.saved.signatures["raw"], self
        self.latent_dim, self.num_classes = self.meta["latent_dim"], self.meta.get("num_classes")
        self.truncates = bool(self.meta.get("truncation"))

    def __call__(self, inputs, training=False):
        inputs = inputs if isinstance(inputs, list) else [inputs]
        names = ["z"] + ["label"] * bool(self.num_classes) + ["truncation"] * self.truncates
        return self.raw(**dict(zip(names, inputs)))["images"]

    def g_inputs(self, z, labels, truncation=1.0):
        inputs = [tf.convert_to_tensor(z, tf.float32)] + (
            [] if labels is None else [tf.cast(labels, tf.int32)])
        if self.truncates:
            inputs.append(tf.fill([tf.shape(inputs[0])[0]], float(truncation)))
        return inputs[0] if len(inputs) == 1 else inputs

    def sample_noise(self, n, seed):
        return serving.noise(n, seed, self.latent_dim)

    def minimize(self, optimizer, variables, loss_fn):
        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, aux
