"""`TrainConfig`: every setting of a training run, flat and JSON-serializable.

This module imports nothing heavy, so the CLI can build and validate a config
before TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kgan.errors import KganError

ARCHS = ("mlp", "dcgan")
LOSSES = ("bce", "minimax", "lsgan", "hinge", "wgan-gp")
BACKENDS = ("tensorflow", "jax", "torch")  # each has a train step in kgan.trainers
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")  # see kgan.distribute
BUILTIN_DATASETS = ("mnist", "fashion_mnist", "cifar10")
AUGMENTATIONS = ("translation", "cutout", "color")  # DiffAugment policies (kgan.augment)


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run; `config.json` in a run directory holds one of these."""

    dataset: str = "mnist"  # a built-in name, a folder of images or an .npz file
    image_size: int | None = None  # square side length; None keeps the dataset's own size
    arch: str = "mlp"  # model family: "mlp" (classic MLP GAN) or "dcgan" (convolutional)
    loss: str = "bce"  # adversarial loss, one of LOSSES
    latent_dim: int = 100  # length of the noise vector z
    base_filters: int = 64  # dcgan: filters of the widest-resolution conv layer
    batch_size: int = 64  # global batch size
    epochs: int = 200  # total epochs of the run (a resumed run continues up to this)
    steps_per_epoch: int | None = None  # cap on steps per epoch; None = one pass over the data
    lr: float = 2e-4  # Adam learning rate of both networks
    beta1: float = 0.5  # Adam beta_1 (0.5 is the DCGAN setting)
    beta2: float = 0.999  # Adam beta_2
    d_steps: int = 1  # discriminator updates per generator update
    gp_weight: float = 10.0  # wgan-gp: gradient penalty weight
    seed: int = 0  # seeds weights, data order, training noise and the sample grid
    jit: bool | None = None  # XLA compilation; None = on where it is measured faster
    steps_per_execution: int | None = None  # steps fused per call (TF); None = measured best
    sample_every: int = 1  # write samples/epoch-NNNN.png every this many epochs
    checkpoint_every: int = 1  # write checkpoints/latest.keras every this many epochs
    tensorboard: bool = True  # write TensorBoard event files (scalars + sample grid) per epoch
    eval_every: int | None = None  # measure FID/KID every this many epochs (keeps best.keras)
    eval_n: int = 2000  # generated (and real) images per evaluation during training
    eval_features: str = "classifier"  # feature space of those evaluations
    backend: str = "tensorflow"  # Keras backend that trains the run
    strategy: str = "auto"  # devices to train on, one of STRATEGIES (kgan.distribute)
    mixed_precision: bool = False  # float16 (TF on GPU) or bfloat16 compute, float32 weights
    conditional: bool = False  # class-conditional G (label embedding) and projection D
    ema: float | None = None  # decay of the generator's moving average (e.g. 0.999); None = off
    ema_start: int = 1000  # generator steps before averaging starts (the average copies until)
    spectral_norm: bool = False  # spectral normalization of D's layers (Miyato et al. 2018)
    r1: float = 0.0  # R1 penalty weight gamma on real images (0 = off; Mescheder et al. 2018)
    r1_every: int = 16  # lazy R1: computed every this many D steps, weighted by it
    augment: str = ""  # DiffAugment of real and fake before D: comma-separated AUGMENTATIONS

    # Filled in when the data is loaded; needed to rebuild the models without the data.
    image_shape: tuple[int, int, int] | None = None  # (height, width, channels)
    num_classes: int | None = None  # number of distinct labels, None if unlabeled

    def validate(self) -> TrainConfig:
        """Checks every field and returns `self`; raises `KganError` naming the bad field."""
        for name in ("epochs", "batch_size", "latent_dim", "base_filters", "d_steps",
                     "sample_every", "checkpoint_every", "r1_every"):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("eval_n", self.eval_n)
        _check_choice("eval_features", self.eval_features, ("classifier", "inception"))
        for name in ("steps_per_epoch", "image_size", "eval_every", "steps_per_execution"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if self.image_size is not None and self.image_size < 4:
            raise KganError(
                f"`image_size` must be at least 4. Received: image_size={self.image_size}")
        for name in ("lr", "gp_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise KganError(f"`{name}` must be a positive number. Received: {name}={value}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise KganError(f"`{name}` must be in [0, 1). Received: {name}={value}")
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("backend", self.backend, BACKENDS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        needs = {"mirrored": ("tensorflow", "jax"), "multiworker": ("tensorflow",),
                 "tpu": ("tensorflow",)}.get(self.strategy, BACKENDS)
        if self.backend not in needs:
            raise KganError(f"--strategy {self.strategy} needs the {' or '.join(needs)} backend. "
                            f"Received: strategy={self.strategy}, backend={self.backend}")
        if (self.steps_per_execution or 1) > 1 and self.backend != "tensorflow":
            raise KganError("`steps_per_execution` above 1 needs the tensorflow backend. "
                            f"Received: steps_per_execution={self.steps_per_execution}, "
                            f"backend={self.backend}")
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0 < self.ema < 1):
            raise KganError(f"`ema` must be in (0, 1), for example 0.999. Received: ema={self.ema}")
        if isinstance(self.ema_start, bool) or not isinstance(self.ema_start, int) \
                or self.ema_start < 0:
            raise KganError("`ema_start` must be a non-negative integer. "
                            f"Received: ema_start={self.ema_start}")
        if not isinstance(self.r1, (int, float)) or not self.r1 >= 0:
            raise KganError(f"`r1` must be a non-negative number. Received: r1={self.r1}")
        for policy in self.augmentations:
            _check_choice("augment", policy, AUGMENTATIONS)
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise KganError(f"`seed` must be an integer in [0, 2**31). Received: seed={self.seed}")
        return self

    @property
    def augmentations(self) -> tuple[str, ...]:
        """The DiffAugment policies of `augment`, in the order given."""
        return tuple(p.strip() for p in self.augment.split(",") if p.strip())

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise KganError(f"Unknown config keys: {', '.join(unknown)}")
        config = cls(**data)
        if config.image_shape is not None:
            config.image_shape = tuple(config.image_shape)
        return config

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Reads a `config.json`; a missing or malformed file raises `KganError`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise KganError(f"No config.json in {path.parent}: not a kgan run directory") from None
        except (OSError, ValueError) as e:
            raise KganError(f"Cannot read {path}: {e}") from None
        if not isinstance(data, dict):
            raise KganError(f"Cannot read {path}: expected a JSON object")
        try:
            return cls.from_dict(data).validate()
        except TypeError as e:
            raise KganError(f"Cannot read {path}: {e}") from None


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise KganError(f"`{name}` must be a positive integer. Received: {name}={value}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise KganError(
            f"Unknown {name} {value!r}. Valid values: {', '.join(choices)}. "
            f"Received: {name}={value}"
        )
