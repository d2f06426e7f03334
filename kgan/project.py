"""GAN inversion (`kgan project`): for each given image, the latent whose generated image matches
it, found by Adam on a perceptual plus a pixel distance with StyleGAN2's projector schedule.

The schedule (Karras et al. 2020, `projector.py`): the learning rate ramps up over the first 5%
of the steps and down along a cosine over the last 25%; Gaussian noise of 5% of the latents'
spread is added to the latent, fading to none at 75% of the steps. A stylegan generator is
searched in w (one style for every layer) or w+ (one per layer), from the average w, with its
per-pixel noise images searched too: regularized towards uncorrelated noise at every scale and
used normalized. Other generators are searched in z, from the nearest of 64 random latents.

Runs on every backend: the gradient steps are the model's own (`kgan.trainers`' `minimize`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import ops
from PIL import Image

from kgan import checkpoint, data, families, lpips, metrics, runs, serving
from kgan import images as images_lib
from kgan.config import TrainConfig
from kgan.data import sources as data_sources
from kgan.errors import KganError
from kgan.labels import labels_for
from kgan.nn import layers as klayers

SPACES = ("z", "w", "w+")
DISTANCES = ("lpips", "classifier", "discriminator", "pixel")
LEARNING_RATE = 0.1
NOISE = 0.05  # of the latents' spread, at the start
RAMP_UP, RAMP_DOWN, NOISE_RAMP = 0.05, 0.25, 0.75  # fractions of the steps
NOISE_REGULARIZATION = 1e5  # StyleGAN2's weight
PIXEL_WEIGHT = 10.0  # beside a perceptual distance in [0, 4]
CANDIDATES = 64  # random latents a z search starts from the nearest of
STATISTICS_N = 10_000  # sampled latents for w's average and spread


@dataclass
class Projection:
    """What `project` found: `latents` (N, latent_dim) in z or w, (N, num_ws, w_dim) in w+;
    `images` in [-1, 1]; `labels` (None unless conditional); `frames` (T, N, H, W, C) of the
    search; `distance` per image at the end."""

    space: str
    latents: np.ndarray
    labels: np.ndarray | None
    images: np.ndarray
    distance: np.ndarray
    frames: np.ndarray = field(repr=False)


class Distance:
    """`per_image(images, target_features, targets)`: perceptual (the squared difference of
    the network's features: unit-normalized first with `normalize`, so in [0, 4]; LPIPS' as
    they are) plus `PIXEL_WEIGHT` times the pixels' mean squared error."""

    def __init__(self, network: keras.Model | None, normalize: bool = True):
        self.network, self.normalize = network, normalize  # network None: the pixels alone

    def features(self, images):
        if self.network is None:
            return None
        features = self.network(images, training=False)
        features = ops.reshape(ops.cast(features, "float32"), (ops.shape(images)[0], -1))
        if not self.normalize:
            return features
        return features * ops.rsqrt(ops.sum(ops.square(features), axis=1, keepdims=True) + 1e-8)

    def per_image(self, images, target_features, targets):
        axes = tuple(range(1, len(images.shape)))
        pixels = ops.mean(ops.square(ops.cast(images, "float32") - targets), axis=axes)
        if self.network is None:
            return pixels
        return ops.sum(ops.square(self.features(images) - target_features), axis=1) \
            + PIXEL_WEIGHT * pixels


def style_layers(generator: keras.Model) -> tuple:
    """A stylegan generator's `StyleMixing` layer and its noise-drawing `ModulatedConv2D`s
    ((None, []) for another generator)."""
    mixing = next((layer for layer in generator.layers
                   if isinstance(layer, klayers.StyleMixing)), None)
    noisy = [layer for layer in generator.layers
             if isinstance(layer, klayers.ModulatedConv2D) and layer.noise]
    return mixing, noisy


def project(gan, targets: np.ndarray, distance: Distance, space: str | None = None,
            labels: np.ndarray | None = None, steps: int = 300, seed: int = 0,
            frames: int = 20, on_step=None) -> Projection:
    """Projects `targets` (float images in [-1, 1], the generator's shape) into `gan`'s latent
    space (`space`: z; w or w+ for stylegan, default w), all at once.

    A conditional GAN projects with `labels` (one per image), or where they are None with the
    class whose best starting latent is nearest. `on_step(step, distances)` is called after
    every step; `frames` images of the search are kept, evenly spaced.
    """
    generator = gan.generator
    mixing, noisy = style_layers(generator)
    space = space or ("w" if mixing is not None else "z")
    if space not in SPACES:
        raise KganError(f"`space` must be one of {', '.join(SPACES)}. Received: space={space}")
    if space != "z" and mixing is None:
        raise KganError(f"--space {space} needs a stylegan generator (it has styles w); this "
                        "one is searched in z")
    targets = ops.convert_to_tensor(np.asarray(targets, np.float32))
    n = int(targets.shape[0])
    rng = np.random.default_rng(seed)
    target_features = distance.features(targets)

    def measure(images):
        return keras.ops.convert_to_numpy(distance.per_image(images, target_features, targets))

    # Where the search starts, and the latents' spread that its noise is scaled by.
    labels = _checked_labels(gan, n, labels)
    if space == "z":
        labels, start = _nearest_z(gan, measure, n, labels, rng)
        spread = 1.0
    else:
        if gan.num_classes and labels is None:
            labels = _nearest_z(gan, measure, n, None, rng)[0]
        w = mapped_styles(gan, rng.standard_normal((STATISTICS_N, gan.latent_dim)), labels)
        average = w.mean(0)
        spread = float(np.sqrt(np.sum((w - average) ** 2) / len(w)))
        start = np.tile(average, (n, 1) if space == "w" else (n, mixing.num_ws, 1))
    latent = keras.Variable(start.astype(np.float32), name="latent")
    noise = [keras.Variable(rng.standard_normal((n, *layer.const_noise.shape)).astype(
        np.float32), name=f"noise_{i}") for i, layer in enumerate(noisy)] if space != "z" else []
    optimizer = keras.optimizers.Adam(LEARNING_RATE, beta_1=0.9, beta_2=0.999)

    def generate(moved):
        return synthesize(gan, moved, space, labels, [_normalized(v) for v in noise])

    kept, every = [], max(1, steps // max(1, frames))
    for step in range(steps):
        t = step / steps
        optimizer.learning_rate = LEARNING_RATE * _ramp(t)
        jitter = ops.convert_to_tensor((rng.standard_normal(start.shape) * spread * NOISE * max(
            0.0, 1.0 - t / NOISE_RAMP) ** 2).astype(np.float32))

        def loss_fn(jitter=jitter):
            per_image = distance.per_image(generate(latent + jitter), target_features, targets)
            loss = ops.sum(per_image) + NOISE_REGULARIZATION * sum(
                (_noise_correlation(v) for v in noise), ops.zeros(()))
            return loss, per_image

        _, per_image = gan.minimize(optimizer, [latent, *noise], loss_fn)
        if on_step is not None:
            on_step(step, keras.ops.convert_to_numpy(per_image))
        if frames and (step % every == 0 or step == steps - 1):
            kept.append(keras.ops.convert_to_numpy(generate(latent)))
    final = generate(latent)
    return Projection(space, keras.ops.convert_to_numpy(latent), labels,
                      keras.ops.convert_to_numpy(final), measure(final),
                      np.stack(kept) if kept else np.zeros((0,)))


def synthesize(gan, latents, space: str, labels=None, noise=None):
    """The generator's images of `latents` in `space` (z; w or w+: the styles, replacing its
    mapping) with `labels` (a conditional GAN's, one per row); `noise`: a stylegan's noise
    images per layer (default its fixed ones)."""
    labels = None if labels is None else ops.convert_to_tensor(labels)
    if space == "z":
        return gan.generator(gan.g_inputs(ops.convert_to_tensor(latents), labels),
                             training=False)
    mixing, noisy = style_layers(gan.generator)
    styles = ops.repeat(latents[:, None], mixing.num_ws, axis=1) if space == "w" else latents
    z = ops.zeros((ops.shape(latents)[0], gan.latent_dim))  # mapped, then replaced
    with klayers.replaced({mixing: styles, **dict(zip(noisy, noise or []))}):
        return gan.generator(gan.g_inputs(z, labels), training=False)


def _ramp(t: float) -> float:
    """StyleGAN2's learning-rate factor at fraction `t` of the steps."""
    down = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / RAMP_DOWN) * math.pi)
    return down * min(1.0, t / RAMP_UP)


def _normalized(noise):
    """Noise images at zero mean and unit variance each (StyleGAN2 renormalizes after every
    step; using them normalized is the same search without the extra writes)."""
    centred = noise - ops.mean(noise, axis=(1, 2, 3), keepdims=True)
    return centred * ops.rsqrt(ops.mean(ops.square(centred), axis=(1, 2, 3), keepdims=True))


def _noise_correlation(noise):
    """StyleGAN2's noise regularization: the squared correlation of each noise image with
    itself shifted by one pixel across and down, at every scale down to 8 pixels."""
    total, x = 0.0, _normalized(noise)
    while True:
        total = total + ops.mean(x * ops.roll(x, 1, axis=2)) ** 2 \
            + ops.mean(x * ops.roll(x, 1, axis=1)) ** 2
        if x.shape[1] <= 8:
            return total
        x = ops.average_pool(x, 2, 2)


def _checked_labels(gan, n, labels):
    """`labels` (one, or one per image) as int32 per image, checked; None where not given."""
    return None if labels is None else labels_for(n, gan.num_classes, labels)


def _nearest_z(gan, measure, n, labels, rng):
    """Per image, the nearest of `CANDIDATES` random latents, with `labels` (for a conditional
    GAN without them: over every class too): `(labels, z)`."""
    classes = ([labels] if labels is not None or not gan.num_classes
               else [np.full(n, k, np.int32) for k in range(gan.num_classes)])
    best, chosen_z = np.full(n, np.inf), np.zeros((n, gan.latent_dim), np.float32)
    chosen_labels = None if classes[0] is None else classes[0].copy()
    for _ in range(CANDIDATES):
        z = rng.standard_normal((n, gan.latent_dim)).astype(np.float32)
        for label in classes:
            d = measure(gan.generator(gan.g_inputs(ops.convert_to_tensor(z), None if label is
                                                   None else ops.convert_to_tensor(label)),
                                      training=False))
            better = d < best
            best[better], chosen_z[better] = d[better], z[better]
            if label is not None:
                chosen_labels[better] = label[better]
    return chosen_labels, chosen_z


def mapped_styles(gan, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """The styles w of latents `z` (with one class per image's label, cycled), untruncated."""
    mixing, _ = style_layers(gan.generator)
    mapper = keras.Model(gan.generator.inputs, mixing.input)
    out = []
    for i in range(0, len(z), 1000):
        chunk = z[i : i + 1000].astype(np.float32)
        chunk_labels = None if labels is None else ops.convert_to_tensor(
            np.resize(labels, len(chunk)).astype(np.int32))
        out.append(keras.ops.convert_to_numpy(mapper(gan.g_inputs(
            ops.convert_to_tensor(chunk), chunk_labels), training=False)))
    return np.concatenate(out).astype(np.float64)


def quality(projected: np.ndarray, targets: np.ndarray) -> dict:
    """L1, PSNR (dB) and SSIM per image of projections against their targets (both in [-1, 1],
    measured at uint8, as the images are written: `kgan.metrics.image_scores`)."""
    return metrics.image_scores(images_lib.to_uint8(projected), images_lib.to_uint8(targets))


# Files: what `kgan project` reads and writes ------------------------------------------------------


def load(run_or_export: str | Path):
    """A run's GAN (its moving average where it keeps one), or an export's generator
    (`saved_models/NAME[/VERSION]`, z only), for projection and editing: `(path, gan, config)`."""
    path = Path(run_or_export)
    if not (path / runs.CONFIG).is_file() and path.is_dir():
        version_dir = serving.resolve(path)
        meta = serving.metadata(version_dir)
        return (version_dir, families.family_of_export(meta).export_generator(version_dir),
                TrainConfig.from_dict(meta["training_config"]))
    run_dir, config = runs.open_run(path)
    family = families.of(config.arch)
    if not family.samples:
        raise KganError(family.no_sampling(run_dir, config.arch))
    gan, config = checkpoint.load_gan(run_dir, ema=True)
    return run_dir, gan, config


def distance(kind: str | None, gan, config) -> Distance:
    """The search's distance: `lpips` (where its weights are on the machine: `kgan.lpips`),
    `classifier` (the features of kgan's evaluation classifier of the run's dataset, trained
    once and cached), `discriminator` (the run's D before its last layer) or `pixel` (the
    pixels alone); None: lpips where it can be, else classifier."""
    kind = kind or default_distance()
    if kind == "lpips":
        return Distance(lpips.network(config.image_shape), normalize=False)
    if kind == "classifier":
        model = metrics.classifier(config.dataset, config.image_size).model
        return Distance(keras.Model(model.inputs[0], model.outputs[0]))
    if kind == "discriminator":
        head = [layer for layer in getattr(gan.discriminator, "layers", ())
                if getattr(layer, "layer", layer).name in ("logits", "linear")]
        if not head:
            raise KganError("--distance discriminator needs a run with one of kgan's "
                            "discriminators (an export has none); use --distance classifier")
        return Distance(keras.Model(gan.discriminator.inputs[0], head[0].input))
    if kind == "pixel":
        return Distance(None)
    raise KganError(f"`distance` must be one of {', '.join(DISTANCES)}. Received: "
                    f"distance={kind}")


def default_distance() -> str:
    return "lpips" if lpips.weights_files() else "classifier"


def read_targets(files: list[Path], image_shape) -> np.ndarray:
    """The images of `files` as floats in [-1, 1] of the generator's shape: resized (bicubic)
    where their size differs; another channel count (color for a gray generator, or gray for a
    color one) is refused, naming the file."""
    size, _, channels = image_shape
    out = []
    for path in files:
        try:
            with Image.open(path) as img:
                bands = len(img.getbands()) - ("A" in img.getbands())
        except data_sources.DECODE_ERRORS as e:
            raise KganError(f"Cannot read image {path}: {data_sources.why_unreadable(e)}") \
                from None
        if (bands == 1) != (channels == 1):
            raise KganError(f"{path} has {bands} channel{'s' * (bands > 1)}; the generator draws "
                            f"{'gray' if channels == 1 else 'color'} images ({channels} "
                            f"channel{'s' * (channels > 1)}): convert it first")
        out.append(data.read_image(path, channels, size))
    return np.stack(out).astype(np.float32) / 127.5 - 1.0


def project_files(run_dir: str | Path, inputs: str | Path, out: str | Path,
                  space: str | None = None, label=None, steps: int = 500,
                  distance_kind: str | None = None, batch_size: int = 64, seed: int = 0,
                  frames: int = 20, on_step=None) -> list[dict]:
    """Projects an image file, or every png/jpg under a folder, and writes per image (same
    names and sub-folders, in `out`): the projected image (`.png`), its latent (`.npy`), the
    search beside its target (`.gif`) and what was found (`.json`: space, label, PSNR, SSIM,
    distance). `on_step(done, total)` counts the steps of all batches. Returns the records."""
    run_dir, gan, config = load(run_dir)
    inputs, out = Path(inputs), Path(out)
    files = [p for p in data.image_files(inputs)
             if not p.resolve().is_relative_to(out.resolve())]
    if not files:
        raise KganError(f"No images to project in {inputs} besides the outputs in {out}")
    if steps < 1 or batch_size < 1:
        raise KganError(f"`steps` and `batch_size` must be at least 1. Received: steps={steps}, "
                        f"batch_size={batch_size}")
    targets = read_targets(files, config.image_shape)  # all read before anything is written
    distance_kind = distance_kind or default_distance()
    search = distance(distance_kind, gan, config)
    records, total = [], steps * math.ceil(len(files) / batch_size)
    for start in range(0, len(files), batch_size):
        chunk = targets[start : start + batch_size]
        found = project(gan, chunk, search, space, label, steps, seed + start, frames,
                        on_step=None if on_step is None else (
                            lambda step, _, done=start // batch_size * steps:
                            on_step(done + step + 1, total)))
        scores = quality(found.images, chunk)
        for i, path in enumerate(files[start : start + batch_size]):
            stem = out / (path.relative_to(inputs) if inputs.is_dir() else Path(path.name))
            stem = stem.with_suffix("")
            record = {"image": str(path), "space": found.space, "source": str(run_dir),
                      "label": None if found.labels is None else int(found.labels[i]),
                      "psnr": float(scores["psnr"][i]), "ssim": float(scores["ssim"][i]),
                      "distance": float(found.distance[i]), "distance_kind": distance_kind,
                      "steps": steps}
            images_lib.save_png(images_lib.to_uint8(found.images[i]), stem.with_suffix(".png"))
            with runs.atomic_path(stem.with_suffix(".npy")) as tmp, open(tmp, "wb") as f:
                np.save(f, found.latents[i])
            target = images_lib.to_uint8(chunk[i])
            images_lib.save_gif(np.stack([np.concatenate([target, images_lib.to_uint8(frame)],
                                                         axis=1) for frame in found.frames[:, i]]),
                                stem.with_suffix(".gif"))
            with runs.atomic_path(stem.with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps(record, indent=2) + "\n")
            records.append(record)
    return records
