"""Editing (`kgan edit`): moving a latent along a direction and drawing what it becomes.

Directions (`parse`):
    class:K      a conditional run's class K: in z the same latent with label K; in w the
                 latent moved by the difference of the two classes' average styles.
    pca:N        the N-th principal direction (0 first) of the latent space (GANSpace,
                 Härkönen et al. 2020): of sampled styles w for stylegan; for a z generator,
                 of its first layer's activations, linearized in z (so orthonormal in z).
    from:POS,NEG a linear direction learned from the latents of two folders of images (each
                 projected first; InterFaceGAN-style): the normal of a least-squares classifier.
    mix:OTHER    stylegan: the coarse styles of this latent with the fine styles of OTHER's,
                 one image per crossover layer.
Strengths are in units of the latents' spread along the direction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np

from kgan import data
from kgan import images as images_lib
from kgan import project as projection
from kgan.errors import KganError
from kgan.labels import labels_for

KINDS = ("class:K", "pca:N", "from:POS_DIR,NEG_DIR", "mix:OTHER")
PCA_N = 5_000  # sampled latents for the principal directions
MAX_STRENGTH = 100.0


def parse(direction: str) -> tuple[str, str]:
    """`"pca:3"` -> `("pca", "3")`; an unknown kind is one error listing the valid ones."""
    kind, _, value = direction.partition(":")
    if kind not in {k.split(":")[0] for k in KINDS} or not value:
        raise KganError(f"Unknown direction {direction!r}. Valid directions: "
                        f"{', '.join(KINDS)}. Received: direction={direction}")
    return kind, value


def strengths(spec: str, frames: int) -> np.ndarray:
    """`"-3..3"` and a frame count -> evenly spaced strengths."""
    try:
        low, high = (float(x) for x in spec.split(".."))
    except ValueError:
        raise KganError(f"`strength` must be a range LOW..HIGH, e.g. -3..3. Received: "
                        f"strength={spec}") from None
    if not (np.isfinite([low, high]).all() and max(abs(low), abs(high)) <= MAX_STRENGTH):
        raise KganError(f"`strength` must lie within -{MAX_STRENGTH:g}..{MAX_STRENGTH:g}. "
                        f"Received: strength={spec}")
    if frames < 2:
        raise KganError(f"`frames` must be at least 2. Received: frames={frames}")
    return np.linspace(low, high, frames)


def principal_directions(gan, space: str, count: int = 10, seed: int = 0):
    """The first `count` principal directions of `space` (rows, unit length, orthonormal), the
    latents' spread along each (the unit of a strength: 1 in z) and the variance each explains
    (descending)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((PCA_N, gan.latent_dim))
    labels = None if not gan.num_classes else np.arange(PCA_N) % gan.num_classes
    if space == "z":  # activations = z B + c, linearized: their variance along u is |B^T u|^2
        first = next((layer for layer in gan.generator.layers
                      if isinstance(layer, keras.layers.Dense)), None)
        if first is None:
            raise KganError("pca:N reads the generator's first Dense layer: it needs a run "
                            "with one (an export has no layers to read)")
        model = keras.Model(gan.generator.inputs, first.output)
        activations = np.concatenate([keras.ops.convert_to_numpy(model(gan.g_inputs(
            keras.ops.convert_to_tensor(z[i : i + 1000].astype(np.float32)),
            None if labels is None else keras.ops.convert_to_tensor(labels[i : i + 1000])),
            training=False)).reshape(len(z[i : i + 1000]), -1) for i in range(0, PCA_N, 1000)])
        weights, *_ = np.linalg.lstsq(np.c_[z, np.ones(PCA_N)], activations.astype(np.float64),
                                      rcond=None)
        covariance = weights[:-1] @ weights[:-1].T
    else:
        covariance = np.cov(projection.mapped_styles(gan, z, labels), rowvar=False)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:count]
    # z has unit spread along every unit direction; w the square root of each variance.
    stds = np.ones(len(order)) if space == "z" else np.sqrt(np.maximum(values[order], 0))
    return vectors[:, order].T.astype(np.float32), stds, values[order]


def learned_direction(positive: np.ndarray, negative: np.ndarray):
    """The unit normal of a least-squares linear classifier of latents (+1 / -1), and the
    latents' spread along it."""
    x = np.concatenate([positive, negative]).reshape(len(positive) + len(negative), -1)
    y = np.r_[np.ones(len(positive)), -np.ones(len(negative))]
    centred = x - x.mean(0)
    normal = np.linalg.solve(centred.T @ centred + 1e-3 * np.eye(x.shape[1]), centred.T @ y)
    normal /= np.linalg.norm(normal)
    return normal.reshape(positive.shape[1:]).astype(np.float32), float(np.std(x @ normal))


def edit(gan, latents: np.ndarray, space: str, labels, direction: str, amounts: np.ndarray,
         other: np.ndarray | None = None, learned=None) -> np.ndarray:
    """Frames (T, N, H, W, C) in [-1, 1] of `latents` (N rows in `space`) moved along
    `direction` by `amounts` (for `class:K`: the source, then class K; for `mix:OTHER`: one
    frame per crossover with `other`, styles per layer (1 or N, num_ws, w_dim); for `from:`,
    `learned` = (direction, spread))."""
    kind, value = parse(direction)
    n = len(latents)

    def draw(moved, with_labels=labels, in_space=space):
        return keras.ops.convert_to_numpy(projection.synthesize(
            gan, np.asarray(moved, np.float32), in_space, with_labels))

    if kind == "class":
        if not gan.num_classes:
            raise KganError("class:K needs a conditional run (trained with --conditional)")
        target = _index(value, gan.num_classes, "class")
        if space == "z":
            return np.stack([draw(latents), draw(latents, np.full(n, target, np.int32))])
        averages = {k: projection.mapped_styles(gan, np.random.default_rng(0).standard_normal(
            (2000, gan.latent_dim)), np.full(2000, k)).mean(0) for k in {target, *labels}}
        shift = np.stack([averages[target] - averages[k] for k in labels])
        moved = latents + (shift if space == "w" else shift[:, None])
        return np.stack([draw(latents), draw(moved)])
    if kind == "mix":
        mixing, _ = projection.style_layers(gan.generator)
        if mixing is None or space == "z" or other is None:
            raise KganError("mix:OTHER needs a stylegan run's latents in w or w+ (its images "
                            "are made of styles)")
        mine = _per_layer(latents, space, mixing.num_ws)
        theirs = np.broadcast_to(other, mine.shape)
        return np.stack([draw(np.concatenate([mine[:, :k], theirs[:, k:]], axis=1),
                              in_space="w+") for k in range(mixing.num_ws, 0, -1)])
    if kind == "pca":
        directions, stds, _ = principal_directions(gan, "z" if space == "z" else "w")
        k = _index(value, len(directions), "principal direction")
        step, unit = directions[k], stds[k]
    else:
        step, unit = learned
    step = step if space != "w+" or step.ndim == 2 else step[None]
    return np.stack([draw(latents + amount * unit * step) for amount in amounts])


def write(frames: np.ndarray, out: Path, name: str) -> list[Path]:
    """Each latent's frames as a strip (`<name>.png`, one row per latent) and a GIF that goes
    there and back (`<name>.gif`)."""
    uint8 = images_lib.to_uint8(frames)  # (T, N, H, W, C)
    strip = np.concatenate([np.concatenate(list(row), axis=1)
                            for row in uint8.transpose(1, 0, 2, 3, 4)], axis=0)
    movie = np.stack([np.concatenate(list(frame), axis=0) for frame in uint8])
    there_and_back = np.concatenate([movie, movie[-2:0:-1]])
    return [images_lib.save_png(strip, out / f"{name}.png"),
            images_lib.save_gif(there_and_back, out / f"{name}.gif", duration_ms=120)]


def read_latent(path: Path) -> tuple[np.ndarray, dict]:
    """A latent `kgan project` wrote (`.npy`) with what it says of it (the `.json` beside)."""
    try:
        latent = np.load(path, allow_pickle=False)
        about = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as e:
        raise KganError(f"Cannot read the latent {path} and its .json (written by kgan "
                        f"project): {e}") from None
    return latent.astype(np.float32), about


def _per_layer(latents, space, num_ws):
    return np.repeat(latents[:, None], num_ws, axis=1) if space == "w" else latents


def _index(value: str, count: int, what: str) -> int:
    if not value.isdigit() or int(value) >= count:
        raise KganError(f"The {what} must be a number in [0, {count}). Received: {value}")
    return int(value)


def latents_of(spec: str, gan, config, search, steps: int = 500, label=None, seed: int = 0,
               space: str | None = None):
    """What an edit starts from: `(latents, space, labels, name)` of `spec`, a `.npy` that
    `kgan project` wrote, an image file or a folder of them (projected now, in `space`), or
    `seed:N` (the latent `kgan sample --seed N` draws first; mapped to w for stylegan)."""
    mixing, _ = projection.style_layers(gan.generator)
    if spec.startswith("seed:"):
        number = spec.partition(":")[2]
        if not number.isdigit():
            raise KganError(f"`seed:N` takes a number. Received: {spec}")
        z = keras.ops.convert_to_numpy(gan.sample_noise(1, seed=int(number))).astype(np.float32)
        labels = labels_for(1, gan.num_classes, label)  # a conditional run's default: class 0
        if mixing is None or space == "z":
            return z, "z", labels, f"seed-{number}"
        return projection.mapped_styles(gan, z, labels).astype(np.float32), "w", labels, \
            f"seed-{number}"
    path = Path(spec)
    if path.suffix == ".npy":
        latent, about = read_latent(path)
        labels = None if about.get("label") is None else np.array([about["label"]], np.int32)
        return latent[None], about["space"], labels, path.stem
    files = data.image_files(path)
    found = projection.project(gan, projection.read_targets(files, config.image_shape),
                               search(), space, label, steps, seed, frames=0)
    return found.latents, found.space, found.labels, path.stem


def edit_files(run_dir, source: str | None, direction: str | None, strength: str = "-3..3",
               frames: int = 7, out: str | Path = "edits", listing: bool = False,
               space: str | None = None, label=None, steps: int = 500,
               distance_kind: str | None = None) -> list[Path]:
    """`kgan edit`: the strip and GIF of `source` (see `latents_of`) moved along `direction`
    by `strength` in `frames` steps, in `out`; with `listing`, strips of the first 8 principal
    directions from the latent of seed 0 instead (`pca.png`, a row each)."""
    run_dir, gan, config = projection.load(run_dir)
    out, amounts = Path(out), strengths(strength, frames)

    def search():  # built only where an image is projected
        return projection.distance(distance_kind, gan, config)

    if listing:
        if source is not None or direction is not None:
            raise KganError("--list draws RUN's principal directions alone: leave out "
                            "LATENT_OR_IMAGE and --direction")
        latents, space, labels, _ = latents_of("seed:0", gan, config, search, label=label,
                                               space=space)
        rows = [edit(gan, latents, space, labels, f"pca:{k}", amounts)[:, 0] for k in range(8)]
        return write(np.stack(rows, axis=1), out, "pca")
    if source is None or direction is None:
        raise KganError("Give LATENT_OR_IMAGE and --direction (or --list)")
    kind, value = parse(direction)
    latents, space, labels, name = latents_of(source, gan, config, search, steps, label,
                                              space=space)
    other = learned = None
    if kind == "mix":
        mixing, _ = projection.style_layers(gan.generator)
        theirs, their_space, *_ = latents_of(value, gan, config, search, steps, label,
                                             space=space)
        if mixing is not None and their_space != "z":  # else edit() says what mix needs
            other = _per_layer(theirs, their_space, mixing.num_ws)
    elif kind == "from":
        positive, _, negative = value.partition(",")
        if not negative:
            raise KganError(f"from: takes two folders, POS_DIR,NEG_DIR. Received: {direction}")
        learned = learned_direction(*(latents_of(folder, gan, config, search, steps, label,
                                                 space=space)[0]
                                      for folder in (positive, negative)))
    return write(edit(gan, latents, space, labels, direction, amounts, other, learned), out,
                 f"{name}-{safe_name(direction)}")


def safe_name(text: str) -> str:
    """A direction as a file name: `pca:3` -> `pca-3`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
