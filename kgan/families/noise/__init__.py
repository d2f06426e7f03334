"""Noise-to-image GANs (mlp, dcgan, resnet, stylegan): `GAN` (`gan.py`), their networks
(`nets.py`), their export (`serving.py`) and `FAMILY`, what the shared code asks of them."""

from __future__ import annotations

import keras
import numpy as np

from kgan import data as data_lib
from kgan import drawing, families, health, images, metrics, policy
from kgan.errors import KganError
from kgan.families import family
from kgan.families.noise import custom, nets, serving
from kgan.families.noise.gan import GAN
from kgan.labels import labels_for


class GANSource(drawing.Source):
    """A `GAN`'s generator, as it is (call inside `gan.averaged_generator()` to draw
    from the moving average). Latents come from `gan.sample_noise(n, seed)`."""

    def __init__(self, gan):
        self.gan, self.num_classes, self.truncates = gan, gan.num_classes, gan.truncates

    def latents(self, n, seed):
        return keras.ops.convert_to_numpy(self.gan.sample_noise(n, seed=seed))

    def _generate(self, z, labels):
        return keras.ops.convert_to_numpy(
            self.gan.generator(self.gan.g_inputs(z, labels, self.truncation), training=False))


class NoiseGrid(family.Grid):
    """An 8x8 grid from the same fixed noise every epoch (a conditional GAN: one row per class,
    the same 8 latents in each row), drawn by the moving average of the generator when the run
    keeps one; its spread is that of the raw generator (the one training)."""

    def __init__(self, latent_dim: int, seed: int, num_classes: int | None, n: int = 64):
        # NumPy noise: drawing it must not advance the model's training SeedGenerator.
        rng = np.random.default_rng(seed)
        if num_classes:
            self.nrow = 8
            self.z = np.tile(rng.standard_normal((self.nrow, latent_dim)), (num_classes, 1))
            self.labels = np.repeat(np.arange(num_classes, dtype="int32"), self.nrow)
        else:
            self.nrow, self.labels = None, None
            self.z = rng.standard_normal((n, latent_dim))
        self.z = self.z.astype("float32")

    def draw(self, model):
        with model.averaged_generator():
            fake = GANSource(model).generate(self.z, self.labels)
        return images.grid(images.to_uint8(fake), self.nrow)

    def spread(self, model):
        return health.diversity(GANSource(model).generate(self.z, self.labels))


def generated(source: drawing.Source, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """`n` images from `source` for `seed`, quantized to uint8 as users and exports see them, and
    the labels they were drawn for (a conditional generator: the classes in turn; else None)."""
    labels = labels_for(n, source.num_classes)
    fake = source.generate(source.latents(n, seed), labels)
    return metrics.to_float(images.to_uint8(fake)), labels


class Noise(family.Family):
    name = "noise"
    distributes = True
    samples = True

    def check(self, config):
        if not families.arch(config.arch).builders and not config.models:
            raise KganError(f"--arch {config.arch} trains your own Keras models: give them from "
                            "Python, kgan.train(config, models=(generator, discriminator))")
        if config.image_size is not None and families.arch(config.arch).convolutional:
            nets.dcgan_upsamplings(config.image_size, config.arch)

    def load(self, config, split="train", progress=None):
        return data_lib.load(config.dataset, config.image_size, split=split, crop=config.crop,
                             mirror=config.mirror, skip_bad=config.skip_bad, progress=progress)

    def fill(self, config, data):
        config.image_shape, config.num_classes = data.image_shape, data.num_classes
        if config.conditional and not config.num_classes:
            raise KganError(f"--conditional needs class labels and {config.dataset} has none (a "
                            "folder needs one sub-folder per class, an .npz a y_train).")
        nets.check_image_shape(config)
        config.mixed_precision = policy.mixed_precision(config)  # auto, resolved: config.json

    def arrays(self, config, data):
        return (data.x,) if not config.conditional else (data.x, data.y.astype("int32"))

    def networks(self, config):
        if config.models:
            return custom.networks(config)
        return {"generator": nets.generator(config), "discriminator": nets.discriminator(config)}

    def model(self, config, networks, optimizer, steps_per_epoch=1, **compile):
        gan = GAN(**networks, latent_dim=config.latent_dim,
                  seed=config.seed, num_classes=config.num_classes if config.conditional else None,
                  ema=config.ema, ema_start=config.ema_start,
                  ada_target=config.ada_target if config.adaptive else None,
                  ada_kimg=config.ada_kimg)
        gan.compile(d_optimizer=optimizer(config.lr), g_optimizer=optimizer(config.lr),
                    loss=config.loss, d_steps=config.d_steps, gp_weight=config.gp_weight,
                    r1=config.r1, r1_every=config.r1_every, augment=config.augmentations,
                    **compile)
        return gan

    def grid(self, config, data):
        return NoiseGrid(config.latent_dim, config.seed,
                         config.num_classes if config.conditional else None)

    def sampler(self, model, where):
        return GANSource(model)

    def export_sampler(self, version_dir):
        return serving.ExportSource(version_dir)

    def export_generator(self, version_dir):
        return serving.ExportGenerator(version_dir)

    def no_translation(self, where, arch=None):
        if arch is None:
            return (f"{where} is the export of a noise-to-image GAN: translate needs a pix2pix "
                    "or cyclegan model (use kgan sample --model)")
        return (f"{where} is a {arch} run, which generates from noise: translate needs a "
                "pix2pix or cyclegan run (use kgan sample)")

    def write_export(self, model, config, path, max_batch, ema):
        return serving.write(model, config, path, max_batch, ema)

    def export_checks(self, model, n):
        return serving.checks(model, n)

    def forward_paths(self, model, n):
        return serving.forward_paths(model, n)

    def evaluate_against(self, model, reference, n, seed):
        return reference.compare(*generated(GANSource(model), n, seed))

    def evaluate(self, source, config, n, seed, on_train=None, features="classifier",
                 classifier_path=None, real_split="test"):
        """FID, KID (and with the classifier: score, coverage and, conditional, label
        accuracy) of `n` images against `config`'s dataset's real `real_split` images."""
        fake, labels = generated(source, n, seed)
        ext = metrics.extractor(features, config.dataset, config.image_size, classifier_path,
                                on_train, config.crop)
        reference = metrics.Reference(ext, config.dataset, config.image_size, n, real_split,
                                      seed, config.crop)
        return reference.compare(fake, labels)


FAMILY = Noise()
