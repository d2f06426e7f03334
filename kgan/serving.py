"""What an exported model is to its readers: the TF Serving layout (`resolve`), kgan's
metadata beside it (`metadata`), and the TensorFlow pieces that both families' signatures are
made of (`to_uint8`, `noise`, `encode_png`).

`kgan.export` writes exports; the families write their signatures
(`kgan.families.*.serving`); `kgan.draw` and `kgan.evaluate` read them.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from kgan.errors import KganError

METADATA = "assets.extra/kgan.json"
# The export check's fixed inputs (`kgan.export.check`, the families' `checks`).
CHECK_N = 8  # images per checked call
CHECK_SEED = 1234
CHECK_TRUNCATION = 0.7  # stylegan exports are checked at a psi that changes the images


def to_uint8(images):
    """[-1, 1] floats -> uint8 in the graph, rounding exactly like `kgan.images.to_uint8`."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def noise(n, seed, latent_dim):
    """The latent batch of (`n`, `seed`): equal to `keras.random.normal` with an int seed on TF."""
    seed = tf.cast(seed, tf.int64)
    return tf.random.stateless_normal(tf.stack([n, latent_dim]), seed=tf.stack([seed, 0]))


def encode_png(images):
    """uint8 [N, H, W, C] -> string [N]: one PNG file each."""
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)


def resolve(model: str | Path) -> Path:
    """`saved_models/NAME` (newest version) or `saved_models/NAME/VERSION` -> the version folder."""
    model = Path(model)
    if (model / "saved_model.pb").is_file():
        return model
    versions = []
    if model.is_dir():
        versions = [int(p.name) for p in model.iterdir()
                    if p.name.isascii() and p.name.isdigit()
                    and (p / "saved_model.pb").is_file()]
    if not versions:
        raise KganError(f"No exported model in {model} (expected {model}/<version>/saved_model.pb)")
    return model / str(max(versions))


def metadata(version_dir: Path) -> dict:
    """An export's `kgan.json`: in `assets.extra/` of a SavedModel, beside the files of the
    other formats (`kgan.formats`)."""
    path = version_dir / METADATA
    if not path.exists() and (version_dir / path.name).exists():
        path = version_dir / path.name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise KganError(f"Cannot read {path}: {e}") from None
