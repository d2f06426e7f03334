"""`TrainConfig`: every setting of a training run, flat and JSON-serializable.

Each setting is written once, as a field made by `option()`: its default, its help text, its
check and whether a resumed run may change it. `kgan train`'s options are derived from these
fields (`cli/train.py`), and so is what `--resume` accepts.

This module imports nothing heavy, so the CLI can build and validate a config before
TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

from kgan import families
from kgan.errors import KganError

ARCHS = tuple(families.ARCHS)  # one row each in kgan.families
LOSSES = ("bce", "minimax", "lsgan", "hinge", "wgan-gp")
BACKENDS = ("tensorflow", "jax", "torch")  # each has a train step in kgan.trainers
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")  # see kgan.distribute
BUILTIN_DATASETS = ("mnist", "fashion_mnist", "cifar10")
CROPS = ("center", "none")  # how a non-square image becomes square (kgan.data.sources)
AUGMENTATIONS = ("translation", "cutout", "color")  # DiffAugment policies (kgan.augment)
ADAPTIVE = "ada"  # in `augment`: the policies each with an adapted probability (kgan.augment)
TRACKERS = ("mlflow", "wandb")  # experiment trackers of kgan.trackers (optional extras)
EVAL_FEATURES = ("classifier", "inception", "fid-inception")  # feature spaces of kgan.evaluate
MAX_CLASSES = 10_000  # a label embedding of this many rows is still small
# Defaults of options whose default depends on the arch, where its row has none.
ARCH_DEFAULTS = {"batch_size": 64, "loss": "bce", "base_filters": 64, "spectral_norm": False,
                 "r1": 0.0}


# Checks: each takes (name, value) and raises `KganError` naming the field and the value.

def positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise KganError(f"`{name}` must be a positive integer. Received: {name}={value}")


def non_negative_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KganError(f"`{name}` must be a non-negative integer. Received: {name}={value}")


def positive_number(name: str, value) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            or not math.isfinite(value)):
        raise KganError(f"`{name}` must be a positive number. Received: {name}={value}")


def non_negative_number(name: str, value) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
            or not math.isfinite(value)):
        raise KganError(f"`{name}` must be a non-negative number. Received: {name}={value}")


MAX_COMPARED = 100_000  # images per evaluation: papers measure FID on 50,000


def images_to_compare(name: str, value) -> None:
    """A count of images to measure: FID and KID compare spreads, which one image has not,
    and all of them are held in memory (at most `MAX_COMPARED`)."""
    at_most(MAX_COMPARED, "papers measure FID on 50,000; the images are held in memory")(
        name, value)
    if value < 2:
        raise KganError(f"`{name}` must be at least 2 (FID and KID compare the spread of the "
                        f"images). Received: {name}={value}")


def adam_beta(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise KganError(f"`{name}` must be in [0, 1). Received: {name}={value}")


def decay(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise KganError(f"`{name}` must be in (0, 1), for example 0.999. "
                        f"Received: {name}={value}")


def seed_value(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise KganError(f"`{name}` must be an integer in [0, 2**31). Received: {name}={value}")


def flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise KganError(f"`{name}` must be true or false. Received: {name}={value}")


def optional_flag(name: str, value) -> None:
    if value is not None:
        flag(name, value)


def at_most(limit: int, why: str) -> Callable:
    """A positive integer up to `limit` (larger ones would not fit in memory: `why`)."""
    def check(name: str, value) -> None:
        positive_int(name, value)
        if value > limit:
            raise KganError(f"`{name}` must be at most {limit} ({why}). Received: {name}={value}")
    return check


def image_size(name: str, value) -> None:
    at_most(2048, "one image would take 16 MB and more")(name, value)
    if value < 4:
        raise KganError(f"`{name}` must be at least 4. Received: {name}={value}")


def one_of(choices: tuple[str, ...]) -> Callable:
    """A string among `choices` (the CLI lists them: `check.choices`)."""
    def check(name: str, value) -> None:
        if not isinstance(value, str) or value not in choices:
            raise KganError(f"Unknown {name} {value!r}. Valid values: {', '.join(choices)}. "
                            f"Received: {name}={value}")
    check.choices = choices
    return check


def text(name: str, value) -> None:
    if not isinstance(value, str) or not value:
        raise KganError(f"`{name}` must be a non-empty string. Received: {name}={value!r}")


def policies(name: str, value) -> None:
    if not isinstance(value, str):
        raise KganError(f"`{name}` must be a comma-separated string. Received: {name}={value!r}")
    chosen = [policy.strip() for policy in value.split(",") if policy.strip()]
    if value and not chosen:
        raise KganError(f"`{name}` must name some of {', '.join(AUGMENTATIONS)}, comma-separated. "
                        f"Received: {name}={value}")
    for policy in chosen:
        one_of((*AUGMENTATIONS, ADAPTIVE))(name, policy)


def fraction(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise KganError(f"`{name}` must be in (0, 1). Received: {name}={value}")


def probability(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise KganError(f"`{name}` must be in [0, 1]. Received: {name}={value}")


def option(default, help: str, check: Callable | None = None, *, shown: str | None = None,
           resumable: bool = False, flags: tuple[str, ...] = (), envvar: str | None = None,
           family: str | None = None, why: str | None = None, archs: tuple[str, ...] = ()):
    """A `TrainConfig` field that is a `kgan train` option.

    Args:
        default: the default value.
        help: the option's help text (`kgan train --help`).
        check: `check(name, value)` raising `KganError`; `None` values skip it when the
            default is `None` (an optional setting).
        shown: how the default reads in `--help` and the README's table (Markdown), when
            `str(default)` would not say it.
        resumable: `--resume` may change it (how the run is carried out, not what it trains).
        flags: the option's spelling, when it is not `--name-with-dashes`.
        envvar: an environment variable that sets the option when it is not given.
        family: the family (`kgan.families.FAMILIES`) whose archs alone take it; the others
            refuse a value other than their default, saying `why`.
        archs: the archs that alone take it (the others refuse any value but `None`).
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "check": check, "shown": shown, "resumable": resumable, "flags": flags,
        "envvar": envvar, "family": family, "why": why, "archs": archs})


def shown_default(field: dataclasses.Field) -> str:
    """The default of an option as the README's table and `--help` say it (Markdown)."""
    if field.metadata["shown"] is not None:
        return field.metadata["shown"]
    if isinstance(field.default, str):
        return f"`{field.default}`"
    return str(field.default)


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run; `config.json` in a run directory holds one of these."""

    epochs: int = option(200, "Total epochs of the run.", positive_int, resumable=True,
                         shown="200 (with `--resume`: the run's own)")
    dataset: str = option(
        "mnist", "mnist, fashion_mnist, cifar10, a folder of png/jpg/webp images (sub-folders "
        "are classes), a StyleGAN2-ADA .zip, TFRecord files (a glob), tfds:NAME, or an .npz "
        "with x_train (and y_train).", text)
    image_size: int | None = option(None, "Resize images to this square size.", image_size,
                                    shown="the dataset's own (encoded images: 64)")
    crop: str = option("center", "How a non-square image becomes square: center (its largest "
                       "centered square) or none (stretched whole).", one_of(CROPS))
    mirror: bool = option(False, "Add every image flipped left to right (twice the data).",
                          flag, flags=("--mirror",), shown="off",
        family="noise", why="--jitter mirrors the images")
    skip_bad: bool = option(False, "Leave out (and count) images that cannot be decoded, "
                            "instead of stopping at the first.", flag, flags=("--skip-bad",),
                            shown="off",
        family="noise", why="a pair cannot lose one of its images")
    arch: str = option("mlp", "Architecture: " + ", ".join(
        f"{a.name} ({a.about})" for a in families.ARCHS.values()) + ".", one_of(ARCHS))
    loss: str | None = option(None, "Adversarial loss: bce (non-saturating), minimax, lsgan, "
                              "hinge or wgan-gp.", one_of(LOSSES),
                              shown="`bce`; resnet: `hinge`; cyclegan: `lsgan` (their papers')")
    batch_size: int | None = option(None, "Global batch size.", positive_int,
                                    shown="64; pix2pix, cyclegan: 1 (their papers')")
    latent_dim: int = option(100, "Length of the noise vector z.",
                             at_most(65536, "the first layer alone would not fit"),
        family="noise", why="image-to-image runs take images, not noise")
    base_filters: int | None = option(
        None, "Convolutional archs: filters at the image's own resolution (doubling per "
        "halving, at most 8x).", at_most(4096, "the conv layers would not fit"),
        shown="64; stylegan: 32")
    attention: int | None = option(None, "resnet: a self-attention block at this resolution "
                                   "(e.g. 32 or 64; BigGAN's 64).", positive_int, shown="none",
                                   archs=("resnet",))
    mapping_layers: int | None = option(None, "stylegan: layers of the mapping network z -> w "
                                        "(StyleGAN2: 8).", positive_int, shown="stylegan: 2",
                                        archs=("stylegan",))
    style_mixing: float | None = option(None, "stylegan: share of training images whose later "
                                        "layers take a second style (0: off).", probability,
                                        shown="stylegan: 0.9", archs=("stylegan",))
    lr: float = option(2e-4, "Adam learning rate of G and D.", positive_number, shown="2e-4")
    beta1: float = option(0.5, "Adam beta_1 (0.5 is the DCGAN setting).", adam_beta)
    beta2: float = option(0.999, "Adam beta_2.", adam_beta)
    d_steps: int = option(1, "Discriminator updates per generator update.", positive_int,
        family="noise", why="one discriminator update per generator update")
    gp_weight: float = option(10.0, "wgan-gp: gradient penalty weight.", positive_number)
    seed: int = option(0, "Seeds the weights, the data order, the training noise and the "
                       "sample grid.", seed_value)
    steps_per_epoch: int | None = option(None, "Cap on steps per epoch, for quick runs.",
                                         positive_int, shown="one pass over the data")
    jit: bool | None = option(
        None, "XLA compilation (on where it measured faster).", optional_flag, resumable=True,
        flags=("--jit/--no-jit",), shown="TF: on for `mlp` (not with `--conditional` and "
        "`--r1`), off for `dcgan`; JAX: on; torch: off")
    steps_per_execution: int | None = option(
        None, "Training steps fused into one TensorFlow call (progress updates between calls).",
        positive_int, resumable=True, shown="TF: 16 for `mlp`, else 1")
    strategy: str = option(
        "auto", "Devices: auto (TPU, else all GPUs mirrored, else one device), default (one "
        "device), mirrored, multiworker (reads TF_CONFIG) or tpu.", one_of(STRATEGIES),
        resumable=True)
    mixed_precision: bool | None = option(
        None, "Compute in float16 on a GPU with TensorFlow (loss-scaled), else bfloat16; "
        "weights, logits and the gradient penalty stay float32. The run's config.json records "
        "the choice.", optional_flag, flags=("--mixed-precision/--no-mixed-precision",),
        shown="on for `dcgan` on TensorFlow on a CPU with bfloat16 units (AVX512-BF16 or "
        "AMX), where it measured faster at an equal FID; else off",
        family="noise", why="image-to-image runs train in float32")
    conditional: bool = option(
        False, "Class-conditional GAN: G takes a label embedding, D a projection head (needs "
        "labels: sub-folders, y_train or a built-in).", flag, flags=("--conditional",),
        shown="off",
        family="noise", why="image-to-image runs take no class labels")
    init_from: str | None = option(
        None, "Start from the weights of another run (G, D and G's moving average; fresh "
        "optimizers, ADA's p at 0) or of an export (G alone), also on other data; layers "
        "indexed by class start afresh when the class count differs.", text,
        shown="none (fresh weights)",
        family="noise", why="fine-tuning starts noise-to-image GANs")
    ema: float | None = option(
        None, "Keep a moving average of G's weights with this decay (e.g. 0.999); sample, eval "
        "and export use it.", decay, shown="off",
        family="noise", why="image-to-image runs keep no moving average")
    ema_start: int = option(1000, "Generator steps before the average starts (it copies G "
                            "until then).", non_negative_int)
    spectral_norm: bool | None = option(
        None, "Spectrally normalize D's weight layers.", optional_flag,
        flags=("--spectral-norm/--no-spectral-norm",), shown="off; resnet: on",
        family="noise", why="the PatchGAN discriminator is instance-normalized")
    r1: float | None = option(None, "R1 penalty weight gamma on real images (e.g. 10; 0 = off).",
                              non_negative_number, shown="0 (off); stylegan: 1",
        family="noise", why="R1 is for noise-to-image GANs")
    r1_every: int = option(16, "Compute R1 every N discriminator steps (lazy regularization).",
                           positive_int)
    augment: str = option("", "DiffAugment D's inputs, real and fake: comma-separated "
                          "translation, cutout, color; with ada, each applied with a probability "
                          "p adapted to D's overfitting (ada alone: all three).", policies,
                          shown="none",
        family="noise", why="use --jitter (the papers' augmentation)")
    ada_target: float = option(0.6, "ada: the r_t, the mean of sign(D(real)), that p is "
                               "steered to.", fraction)
    ada_kimg: int = option(100, "ada: thousands of images over which p can rise from 0 to 1 "
                           "(StyleGAN2-ADA: 500).", positive_int)
    backend: str = option("tensorflow", "Keras backend: tensorflow, jax or torch.",
                          one_of(BACKENDS), envvar="KERAS_BACKEND")
    sample_every: int = option(1, "Write a sample grid every N epochs.", positive_int,
                               resumable=True)
    checkpoint_every: int = option(1, "Write a checkpoint every N epochs.", positive_int,
                                   resumable=True)
    recover: int = option(2, "Times a run that diverges or goes NaN reloads its last good "
                          "checkpoint, halves both learning rates and continues from fresh noise "
                          "(0: stop at once).", non_negative_int, resumable=True)
    tensorboard: bool = option(True, "Write TensorBoard event files (view: tensorboard "
                               "--logdir runs).", flag, resumable=True,
                               flags=("--tensorboard/--no-tensorboard",), shown="on")
    track: str | None = option(
        None, "Log the run to an experiment tracker, mlflow or wandb (kgan's optional extras "
        "of those names): config, metrics, grids, evaluations, exports.",
        one_of(TRACKERS), resumable=True, shown="none")
    curves: bool = option(True, "Redraw curves.png (losses, D outputs, FID/KID) as epochs end.",
                          flag, resumable=True, flags=("--curves/--no-curves",), shown="on")
    eval_every: int | None = option(None, "Measure FID/KID every N epochs (logged per epoch) "
                                    "and keep checkpoints/best.keras.", positive_int,
                                    resumable=True, shown="never",
        family="noise", why="measure with `kgan eval` after training")
    eval_n: int = option(2000, "Images per evaluation during training.", images_to_compare,
                         resumable=True)
    l1: float | None = option(None, "pix2pix: weight of the L1 distance to the target beside "
                              "the adversarial loss.", non_negative_number, shown="pix2pix: 100",
        family="translation", why="it weighs pix2pix's L1 distance", archs=("pix2pix",))
    cycle: float | None = option(None, "cyclegan: weight of the cycle-consistency loss.",
                                 non_negative_number, shown="cyclegan: 10",
        family="translation", why="it weighs CycleGAN's cycle loss", archs=("cyclegan",))
    identity: float | None = option(
        None, "cyclegan: weight of the identity loss, times --cycle (0: off; needs A and B "
        "with the same channels).", non_negative_number, shown="cyclegan: 0.5",
        family="translation", why="it weighs CycleGAN's identity loss", archs=("cyclegan",))
    pool_size: int | None = option(None, "cyclegan: generated images each discriminator's "
                                   "history pool keeps (0: none).", non_negative_int,
                                   shown="cyclegan: 50",
        family="translation", why="it sizes CycleGAN's history pools", archs=("cyclegan",))
    decay_epochs: int | None = option(
        None, "cyclegan: the learning rate decays linearly to 0 over the last N epochs.",
        non_negative_int, shown="half of `--epochs`",
        family="translation", why="it schedules CycleGAN's learning rate", archs=("cyclegan",))
    jitter: bool = option(False, "pix2pix, cyclegan: random jitter (resize up by 286/256, crop "
                          "back) and mirroring of the training images.", flag,
                          flags=("--jitter",), shown="off",
        family="translation", why="use --augment or --mirror")
    eval_features: str = option("classifier", "Feature space of those evaluations: classifier "
                                "(trained on the dataset, cached), inception or fid-inception "
                                "(pytorch-fid's network, weights from $KGAN_FID_WEIGHTS).",
                                one_of(EVAL_FEATURES), resumable=True)

    # Filled in when the data is loaded; needed to rebuild the models without the data.
    image_shape: tuple[int, int, int] | None = None  # (height, width, channels)
    num_classes: int | None = None  # number of distinct labels, None if unlabeled
    target_channels: int | None = None  # image to image: channels of B (A's are image_shape's)
    data_key: str | None = None  # the data's fingerprint at the start: a resume checks it
    data_count: int | None = None  # images trained on (after --mirror and --skip-bad)
    models: dict | None = None  # --arch custom: the Keras configs of G and D (kgan.train's models)

    def __post_init__(self):
        # Options whose default depends on the arch: its row's (its papers'), else these.
        row = families.ARCHS.get(self.arch)  # an unknown arch: validate() names it
        for name, value in {**ARCH_DEFAULTS, **(row.defaults if row else {})}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> TrainConfig:
        """Checks every field and returns `self`; raises `KganError` naming the bad field."""
        for field in options():
            value = getattr(self, field.name)
            if field.metadata["check"] and not (value is None and field.default is None):
                field.metadata["check"](field.name, value)
        needs = {"mirrored": ("tensorflow", "jax"), "multiworker": ("tensorflow",),
                 "tpu": ("tensorflow",)}.get(self.strategy, BACKENDS)
        if self.backend not in needs:
            raise KganError(f"--strategy {self.strategy} needs the {' or '.join(needs)} backend. "
                            f"Received: strategy={self.strategy}, backend={self.backend}")
        if self.image_shape is not None and not (
                isinstance(self.image_shape, (tuple, list)) and len(self.image_shape) == 3
                and all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 2048
                        for d in self.image_shape) and self.image_shape[2] in (1, 3)):
            raise KganError("`image_shape` must be (height, width, 1 or 3), each at most 2048. "
                            f"Received: image_shape={self.image_shape}")
        if self.num_classes is not None:
            at_most(MAX_CLASSES, "a label embedding that large")("num_classes", self.num_classes)
        self._check_arch_options()
        if (self.steps_per_execution or 1) > 1 and self.backend != "tensorflow":
            raise KganError("`steps_per_execution` above 1 needs the tensorflow backend. "
                            f"Received: steps_per_execution={self.steps_per_execution}, "
                            f"backend={self.backend}")
        return self

    def _check_arch_options(self) -> None:
        """Refuses options of another family, or of other archs, that were set."""
        row, default = families.arch(self.arch), TrainConfig(arch=self.arch)
        for field in options():
            family, archs = field.metadata["family"], field.metadata["archs"]
            value, flag = getattr(self, field.name), f"--{field.name.replace('_', '-')}"
            if family not in (None, row.family) and value != getattr(default, field.name):
                raise KganError(f"{flag} does not apply to --arch {self.arch} "
                                f"({field.metadata['why']}). Received: {field.name}={value}")
            if archs and self.arch not in archs and value is not None:
                raise KganError(f"{flag} is for --arch {' or '.join(archs)}. Received: "
                                f"{field.name}={value}, arch={self.arch}")

    def resumed(self, given: dict) -> TrainConfig:
        """This run's config with the settings `given` for its resumption: a setting equal to
        the run's is accepted, one that changes how the run is carried out (`resumable`) is
        taken, and one that changes what it trains raises `KganError` naming both values."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(given) - set(fields))
        if unknown:
            raise KganError(f"Unknown settings: {', '.join(unknown)}")
        for name, value in given.items():
            if value != getattr(self, name) and not fields[name].metadata.get("resumable"):
                raise KganError(f"--{name.replace('_', '-')} cannot change when resuming: the "
                                f"run was trained with {name}={getattr(self, name)}. "
                                f"Received: {name}={value}")
        return dataclasses.replace(self, **given).validate()

    @property
    def augmentations(self) -> tuple[str, ...]:
        """The DiffAugment policies of `augment`, in the order given (with `ada`: all of them
        if it names none)."""
        chosen = self._augment_names()
        if chosen == (ADAPTIVE,):
            return AUGMENTATIONS
        return tuple(p for p in chosen if p != ADAPTIVE)

    @property
    def adaptive(self) -> bool:
        """`--augment ada`: the policies are applied with an adapted probability p."""
        return ADAPTIVE in self._augment_names()

    def _augment_names(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.augment.split(",") if p.strip())

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise KganError(f"Unknown config keys: {', '.join(unknown)}")
        # Runs from before --crop stretched non-square images: they resume as they trained.
        config = cls(**{"crop": "none", **data})
        # Runs from before other families' and other archs' options were refused recorded
        # them (ignored, as they were): they read as the arch's own defaults.
        row = families.ARCHS.get(config.arch)  # an unknown arch: validate() names it
        default = cls(arch=config.arch) if row else None
        for field in options() if row else ():
            family, archs = field.metadata["family"], field.metadata["archs"]
            if family not in (None, row.family) or (archs and config.arch not in archs):
                setattr(config, field.name, getattr(default, field.name))
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


CONFIG_FORMATS = (".json", ".toml", ".yaml", ".yml")


def read_options(path: str | Path) -> dict:
    """The settings in a JSON, TOML or YAML file (`kgan train --config`): option names as keys
    (`--image-size` or `image_size`). A run's `config.json` is such a file: the fields it filled
    in from its data are left out. Raises `KganError` naming the file for anything else."""
    path = Path(path)
    if path.suffix.lower() not in CONFIG_FORMATS:
        raise KganError(f"--config takes a {', '.join(CONFIG_FORMATS)} file. Received: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise KganError(f"Cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        if path.suffix == ".json":
            settings = json.loads(text)
        elif path.suffix == ".toml":
            settings = _toml().loads(text)
        else:
            import yaml  # only for YAML files

            settings = yaml.safe_load(text)
    except Exception as e:  # each parser has its own error type
        raise KganError(f"{path} is not valid {path.suffix[1:].upper()}: "
                        f"{str(e).strip().splitlines()[0]}") from None
    if not isinstance(settings, dict):
        raise KganError(f"{path} must hold a mapping of options to values. Received: "
                        f"{type(settings).__name__}")
    known = {f.name for f in options()}
    filled = {f.name for f in dataclasses.fields(TrainConfig)} - known  # from the data
    settings = {str(k).lstrip("-").replace("-", "_"): v for k, v in settings.items()}
    unknown = sorted(set(settings) - known - filled)
    if unknown:
        raise KganError(f"Unknown options in {path}: {', '.join(unknown)}")
    return {k: v for k, v in settings.items() if k in known}


def _toml():
    """Python's TOML reader, which Python 3.10 does not have."""
    try:
        import tomllib
    except ImportError:
        raise KganError("--config FILE.toml needs Python 3.11 or newer; use .json or "
                        ".yaml") from None
    return tomllib


def options() -> list[dataclasses.Field]:
    """The fields of `TrainConfig` that are `kgan train` options, in the order of `--help`."""
    return [f for f in dataclasses.fields(TrainConfig) if "help" in f.metadata]
