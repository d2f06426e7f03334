"""Image to image (pix2pix, cyclegan): the models (`models.py`), their networks (`nets.py`),
their data (`sides.py`), their export (`serving.py`) and `FAMILY`, what the shared code asks
of them."""

from __future__ import annotations

import keras
import numpy as np

from kgan import drawing, families, images, losses, metrics
from kgan.config import LOSSES, positive_int, seed_value
from kgan.drawing import CHUNK
from kgan.errors import KganError, NoSplit
from kgan.families import family
from kgan.families.translation import nets, serving, sides
from kgan.families.translation.models import CycleGAN, LinearDecay, Pix2Pix

PAIRED = {"pix2pix": True, "cyclegan": False}  # whether a[i] must translate to b[i]


class RunTranslator(drawing.Translation):
    """A run's pix2pix or cyclegan model (`kgan.drawing.Translation`)."""

    def __init__(self, model):
        self.model = model
        generators = dict(zip(("a2b", "b2a"), model.generators))
        self.shapes = {d: (tuple(g.input.shape[1:]), tuple(g.output.shape[1:]))
                       for d, g in generators.items()}

    def translate(self, batch: np.ndarray, direction: str = "a2b") -> np.ndarray:
        return np.concatenate([keras.ops.convert_to_numpy(
            self.model.translate(batch[i : i + CHUNK], direction))
            for i in range(0, len(batch), CHUNK)])


class TranslationGrid(family.Grid):
    """One row per held-out image: input | output | target (paired), or
    a | a->b | a->b->a | b | b->a | b->a->b (unpaired)."""

    def __init__(self, a, b, paired):
        self.a, self.b, self.paired = a, b, paired

    def draw(self, model):
        return translation_grid(RunTranslator(model), self.a, self.b, self.paired)


def translation_grid(source: drawing.Translation, a: np.ndarray, b: np.ndarray,
                     paired: bool) -> np.ndarray:
    """uint8 grid, a row per image: input | output | target (`paired`), or
    a | a->b | a->b->a | b | b->a | b->a->b."""
    if paired:
        columns = [a, source.translate(a), b]
    else:
        ab, ba = source.translate(a, "a2b"), source.translate(b, "b2a")
        columns = [a, ab, source.translate(ab, "b2a"), b, ba, source.translate(ba, "a2b")]
    channels = max(c.shape[-1] for c in columns)
    columns = [np.repeat(c, channels // c.shape[-1], axis=-1) for c in columns]
    rows = np.stack([images.to_uint8(c) for c in columns], axis=1)  # (n, columns, H, W, C)
    return images.grid(rows.reshape(-1, *rows.shape[2:]), nrow=len(columns))


def paired_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict:
    """Mean L1, PSNR (dB) and SSIM of uint8 `outputs` against uint8 `targets`
    (`kgan.metrics.image_scores`, averaged over the images)."""
    return {key: float(np.mean(values))
            for key, values in metrics.image_scores(outputs, targets).items()}


def _translation_features(dataset: str, image_size: int | None, on_train, features: str,
                          classifier_path) -> metrics.Extractor:
    """The feature space of translation FIDs: with `features` "classifier", the given
    classifier, else the Fashion-MNIST one for its demos (other image-to-image data has no
    class labels to train one on); with "inception" or "fid-inception", that network (its
    weights must be on the machine when offline)."""
    if features in ("inception", "fid-inception"):
        return metrics.extractor(features, dataset, image_size)
    if classifier_path is not None:
        return metrics.classifier(None, image_size, classifier_path)
    if sides.is_demo(dataset):
        return metrics.classifier("fashion_mnist", image_size, on_train=on_train)
    raise KganError(f"{dataset} has no class labels to train a classifier on: give "
                    "--classifier PATH, or --features inception")


class Translation(family.Family):
    name = "translation"
    batch_unit = "images a side"
    translates = True

    def check(self, config):
        gradient = [name for name in LOSSES if losses.get(name).interpolates]
        if config.loss in gradient:
            plain = [name for name in LOSSES if name not in gradient]
            raise KganError(f"--loss {config.loss} does not apply to --arch {config.arch}: its "
                            "gradient penalty is for noise-to-image GANs; use "
                            f"{', '.join(plain[:-1])} or {plain[-1]}. Received: "
                            f"loss={config.loss}")
        if config.strategy not in ("auto", "default"):
            raise KganError(f"--arch {config.arch} trains on one device. Received: "
                            f"strategy={config.strategy}")
        if config.image_size is not None and config.image_size % 4:
            raise KganError(f"`image_size` must be divisible by 4 for --arch {config.arch} (for "
                            f"example 28, 32 or 256). Received: image_size={config.image_size}")
        if config.decay_epochs is not None and config.decay_epochs > config.epochs:
            raise KganError(f"`decay_epochs` must be at most --epochs ({config.epochs}). "
                            f"Received: decay_epochs={config.decay_epochs}")

    def paired(self, config):
        return PAIRED[config.arch]

    def load(self, config, split="train", progress=None):
        return sides.load_pairs(config.dataset, config.image_size, split=split,
                                   paired=self.paired(config), progress=progress)

    def fill(self, config, data):
        config.image_shape, config.target_channels = data.image_shape, data.channels[1]
        if not self.paired(config) and config.identity and len(set(data.channels)) > 1:
            raise KganError(f"--identity needs A and B with the same channels; {config.dataset} "
                            f"has {data.channels[0]} and {data.channels[1]}. Use --identity 0. "
                            f"Received: identity={config.identity}")

    def arrays(self, config, data):
        return data.a, data.b

    def networks(self, config):
        a, b = config.image_shape[2], config.target_channels
        generator, discriminator = (getattr(nets, name)
                                    for name in families.arch(config.arch).builders)
        if self.paired(config):
            return {"generator": generator(config, a, b),
                    "discriminator": discriminator(config, a + b, "discriminator")}
        return {"g_ab": generator(config, a, b, "g_ab"), "g_ba": generator(config, b, a, "g_ba"),
                "d_a": discriminator(config, a, "d_a"), "d_b": discriminator(config, b, "d_b")}

    def model(self, config, networks, optimizer, steps_per_epoch=1, **compile):
        if self.paired(config):
            model = Pix2Pix(**networks, l1=config.l1, seed=config.seed, jitter=config.jitter)
            rates = [config.lr, config.lr]
        else:
            model = CycleGAN(**networks, cycle=config.cycle, identity=config.identity,
                             pool_size=config.pool_size, seed=config.seed, jitter=config.jitter)
            decay = config.epochs // 2 if config.decay_epochs is None else config.decay_epochs
            rates = [LinearDecay(config.lr, (config.epochs - decay) * steps_per_epoch,
                                 decay * steps_per_epoch) for _ in range(2)]
        model.compile(d_optimizer=optimizer(rates[0]), g_optimizer=optimizer(rates[1]),
                      loss=config.loss, **compile)
        return model

    def grid(self, config, data, n=8):
        """The first `n` A and B images of the test split (of the training data where there
        is none): the same ones in every epoch's grid."""
        try:
            data = self.load(config, split="test")
        except NoSplit:  # the training images (a damaged test split raises)
            pass
        return TranslationGrid(data.a[:n], data.b[:n], data.paired)

    def translator(self, model, where):
        return RunTranslator(model)

    def export_translator(self, version_dir):
        return serving.ExportTranslator(version_dir)

    def no_sampling(self, where, arch=None):
        run = f" is a {arch} run, which" if arch else ""
        return f"{where}{run} translates images: use kgan translate {where} INPUT --out DIR"

    def write_export(self, model, config, path, max_batch, ema):
        return serving.write(model, config, path, max_batch, ema)

    def export_checks(self, model, n):
        return serving.checks(model, n)

    def forward_paths(self, model, n):
        return serving.forward_paths(model, n)

    def evaluate(self, source, config, n, seed, on_train=None, features="classifier",
                 classifier_path=None, real_split="test"):
        """Measures `source` on held-out images of its dataset (`real_split`: the test split,
        the training images where there is none, which the card then says), uint8 as users
        see them.

        Paired: L1, PSNR and SSIM of outputs against targets, the same for the input itself (a
        translation should beat doing nothing) where channels match, and FID of outputs
        against targets. Unpaired: FID of a->b outputs against B, the cycle error
        |a->b->a - a| (L1), and for the Fashion-MNIST demo, the eval classifier's share of
        a->b outputs it puts in B's class, next to that share for the inputs. The measures
        that need no features are reported even where FID's feature network is missing (the
        card says why there is no FID).
        """
        positive_int("n", n)
        seed_value("seed", seed)
        paired, split, notes = self.paired(config), real_split, []
        try:
            pairs = self.load(config, split)
        except NoSplit:  # (the training split is always there)
            split = "train"
            pairs = self.load(config, split)
            notes.append("no test split: measured on training images")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(pairs.a))[:n]
        a = pairs.a[order]
        b = pairs.b[order] if paired else pairs.b[rng.permutation(len(pairs.b))[:n]]
        ab = images.to_uint8(source.translate(a, "a2b"))
        targets = images.to_uint8(b)
        result = {}
        if paired:
            result.update(paired_metrics(ab, targets))
            if a.shape[-1] == b.shape[-1]:
                result.update({f"input_{k}": v for k, v in
                               paired_metrics(images.to_uint8(a), targets).items()})
        else:
            aba = images.to_uint8(source.translate(metrics.to_float(ab), "b2a"))
            result["cycle_l1"] = float(np.mean(np.abs(aba.astype(np.float64)
                                                      - images.to_uint8(a)) / 255.0))
        protocol = {"n": len(a), "n_targets": len(b), "split": split, "features": None,
                    "scale": "L1 on [0, 1]; PSNR in dB", "seed": seed, "warnings": notes}
        try:
            ext = _translation_features(config.dataset, config.image_size, on_train, features,
                                        classifier_path)
        except KganError as e:  # no feature network: no FID, the rest stands
            notes.append(f"no FID: {e}")
            return {**result, "protocol": protocol}
        takes = tuple(ext.model.input_shape[1:])
        if ext.name == "classifier" and takes != targets.shape[1:]:
            raise KganError(f"The classifier {ext.info.get('path')} takes images of shape "
                            f"{takes}, the outputs have {targets.shape[1:]}")
        found = {"outputs": ext(metrics.to_float(ab)), "targets": ext(metrics.to_float(targets))}
        result["fid"] = metrics.fid(found["outputs"][0], found["targets"][0])
        if not paired and pairs.domains is not None:
            target = pairs.domains[1]
            result["target_share"] = float(np.mean(found["outputs"][1].argmax(1) == target))
            result["input_target_share"] = float(np.mean(
                ext(metrics.to_float(images.to_uint8(a)))[1].argmax(1) == target))
        card = metrics.card(ext, len(a), len(b), found["targets"][0].shape[1])
        protocol.update({"features": ext.name, "extractor": ext.info.get("path"),
                         "real_stats_sha256": metrics.array_sha256(
                             found["targets"][0].astype(np.float32)),
                         **card, "warnings": notes + card["warnings"]})
        return {**result, "protocol": protocol}


FAMILY = Translation()
