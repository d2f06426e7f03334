"""A run's GAN: built from its config (`config.json`), saved to and loaded from `.keras` files.

`kgan sample`, `export`, `eval` and `--resume` all rebuild the models with kgan's own code and
read a checkpoint only as data (weights and optimizer state): nothing in it runs as code.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras

from kgan import distribute, models, runs
from kgan.config import TrainConfig
from kgan.errors import KganError, first_line
from kgan.gan import GAN
from kgan.translation import CycleGAN, LinearDecay, Pix2Pix, Translator

WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a `.keras` file

# XLA where it is faster: the MLP GAN's dense step ran 50 vs 34 steps/s with XLA on the 2-core
# CI machine; the DCGAN's convolutions ran slower under XLA (2.9 vs 5.3 steps/s, issue #8).
# JAX always compiles with XLA; torch.compile cannot do wgan-gp's double backward, so off.
# The residual and style-based models are convolutional as well: off, as for the DCGAN.
JIT_DEFAULT = {"mlp": True, "dcgan": False, "resnet": False, "stylegan": False,
               "pix2pix": False, "cyclegan": False}

# Steps fused into one TensorFlow call: the MLP GAN's ~17 ms step paid ~3 ms of per-call
# dispatch in `fit`, and 16 fused steps ran 65 vs 55 steps/s (issue #8). The JAX trainer loops
# in Python either way and Keras' torch trainer allows only 1.
FUSED_STEPS_DEFAULT = {"mlp": 16, "dcgan": 1, "resnet": 1, "stylegan": 1, "pix2pix": 1,
                       "cyclegan": 1}


class NoRoom(KganError):
    """A checkpoint that is fine, but whose unpacked copy cannot be written (a full disk)."""


def jit_compile(config: TrainConfig, replicas: int = 1) -> bool:
    if config.jit is not None:
        return config.jit
    if config.backend == "tensorflow" and replicas > 1:
        return False  # Keras' XLA step failed under MirroredStrategy (TF 2.21)
    if config.backend == "tensorflow" and config.conditional and config.r1:
        return False  # XLA ran this step (R1 through the label projection) at 5 s, not 10 ms
    return {"jax": True, "torch": False}.get(config.backend, JIT_DEFAULT[config.arch])


def steps_per_execution(config: TrainConfig, replicas: int = 1) -> int:
    if config.steps_per_execution is not None:
        return config.steps_per_execution
    if replicas > 1:
        return 1  # Keras' multi-step loop failed to run under MirroredStrategy (TF 2.21)
    return FUSED_STEPS_DEFAULT[config.arch] if config.backend == "tensorflow" else 1


# Architectures whose TensorFlow step runs in bfloat16 by default on a CPU with bfloat16 units:
# the DCGAN's step ran 1.34x float32's on the 2-core CI machine (AVX512-BF16), at an equal
# FID after 1,404 steps (README: Several devices, Performance). The others are not measured yet.
BFLOAT16_DEFAULT = ("dcgan",)


def mixed_precision(config: TrainConfig) -> bool:
    """`config.mixed_precision`, or where it is None (auto): whether this run gains from it
    (`BFLOAT16_DEFAULT` on TensorFlow on a CPU with bfloat16 units; not on GPUs, unmeasured)."""
    if config.mixed_precision is not None:
        return config.mixed_precision
    return (config.backend == "tensorflow" and config.arch in BFLOAT16_DEFAULT
            and cpu_has_bfloat16() and not _tensorflow_gpu(config))


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _tensorflow_gpu(config: TrainConfig) -> bool:
    """Whether the run is on TensorFlow and TensorFlow sees a GPU."""
    if config.backend != "tensorflow":
        return False
    import tensorflow as tf  # only on the TensorFlow backend: the others may lack its GPU

    return bool(tf.config.list_physical_devices("GPU"))


def precision_policy(config: TrainConfig) -> str:
    """`float32`, or with `mixed_precision`: `mixed_float16` where TensorFlow has a GPU (with
    loss scaling), else `mixed_bfloat16` (TPUs and CPUs; JAX and PyTorch everywhere)."""
    if not mixed_precision(config):
        return "float32"
    return "mixed_float16" if _tensorflow_gpu(config) else "mixed_bfloat16"


def build_gan(config: TrainConfig, distributed: bool = False,
              steps_per_epoch: int = 1) -> GAN | Translator:
    """Builds and compiles the model that `config` describes (seeded, so weights are
    reproducible): a `GAN`, or for pix2pix and cyclegan a `kgan.translation` model.

    With `distributed`, on the devices of `config.strategy`: models and both optimizers are
    made inside its scope. Otherwise on one device (sampling, evaluation and export).
    `steps_per_epoch` places cyclegan's learning-rate decay (training only).
    """
    if config.translation:
        return _build_translator(config, steps_per_epoch)
    replicas = distribute.replicas(config) if distributed else 1  # before any TF op
    keras.utils.set_random_seed(config.seed)
    policy = precision_policy(config)
    with distribute.scope(config) if distributed else contextlib.nullcontext():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)  # layers take the policy when they are made
        try:
            generator, discriminator = models.generator(config), models.discriminator(config)
        finally:
            keras.config.set_dtype_policy(previous)
        gan = GAN(generator, discriminator, config.latent_dim, seed=config.seed,
                  num_classes=config.num_classes if config.conditional else None,
                  ema=config.ema, ema_start=config.ema_start,
                  ada_target=config.ada_target if config.adaptive else None,
                  ada_kimg=config.ada_kimg)

        def adam():
            optimizer = keras.optimizers.Adam(config.lr, config.beta1, config.beta2)
            # float16 gradients underflow: scale the losses up and the gradients back down.
            if policy == "mixed_float16":
                return keras.optimizers.LossScaleOptimizer(optimizer)
            return optimizer

        gan.compile(
            d_optimizer=adam(), g_optimizer=adam(),
            loss=config.loss, d_steps=config.d_steps, gp_weight=config.gp_weight,
            r1=config.r1, r1_every=config.r1_every, augment=config.augmentations,
            jit_compile=jit_compile(config, replicas),
            steps_per_execution=steps_per_execution(config, replicas),
        )
    return gan


def _build_translator(config: TrainConfig, steps_per_epoch: int) -> Translator:
    keras.utils.set_random_seed(config.seed)
    a, b = config.image_shape[2], config.target_channels
    if config.arch == "pix2pix":
        model = Pix2Pix(models.unet(config, a, b),
                        models.patch_discriminator(config, a + b, "discriminator"),
                        l1=config.l1, seed=config.seed, jitter=config.jitter)
        rates = [config.lr, config.lr]
    else:
        model = CycleGAN(models.resnet_generator(config, a, b, "g_ab"),
                         models.resnet_generator(config, b, a, "g_ba"),
                         models.patch_discriminator(config, a, "d_a"),
                         models.patch_discriminator(config, b, "d_b"),
                         cycle=config.cycle, identity=config.identity,
                         pool_size=config.pool_size, seed=config.seed, jitter=config.jitter)
        decay = config.epochs // 2 if config.decay_epochs is None else config.decay_epochs
        rates = [LinearDecay(config.lr, (config.epochs - decay) * steps_per_epoch,
                             decay * steps_per_epoch) for _ in range(2)]
    model.compile(d_optimizer=keras.optimizers.Adam(rates[0], config.beta1, config.beta2),
                  g_optimizer=keras.optimizers.Adam(rates[1], config.beta1, config.beta2),
                  loss=config.loss, jit_compile=jit_compile(config),
                  steps_per_execution=steps_per_execution(config))
    return model


def load_gan(run_dir: str | Path, best: bool = False, distributed: bool = False,
             ema: bool = False, config: TrainConfig | None = None,
             steps_per_epoch: int = 1) -> tuple[GAN | Translator, TrainConfig]:
    """Rebuilds a run's GAN from its `config.json` and loads its latest checkpoint into it
    (with `best`, the lowest-FID one that `--eval-every` keeps). With `ema`, the generator
    gets the moving average of its weights, where the run keeps one (`--ema`).

    `config` replaces the run's own (a resumed run's, with the settings it may change), and
    `steps_per_epoch` is its data's (for cyclegan's learning-rate schedule).
    """
    run_dir, saved = runs.open_run(run_dir)
    config = config or saved
    path = runs.checkpoint(run_dir, best)
    gan = build_gan(config, distributed, steps_per_epoch)
    try:
        _load_weights(gan, path)
    except NoRoom:
        raise
    except Exception as e:
        raise KganError(f"Cannot load checkpoint {path}: {first_line(e)}") from None
    if ema and not config.translation:
        gan.use_ema()
    # A schedule (cyclegan's) has no variable in the checkpoint: the base rates that a
    # `--recover` before this checkpoint set are in metrics.jsonl (a float rate is restored).
    # Read only for a schedule: every other load (sample, export, eval) skips the file.
    if isinstance(gan.g_optimizer.get_config()["learning_rate"], dict):
        recovered = [r for r in runs.recoveries(runs.read_metrics(run_dir)[0])
                     if r.get("step", math.inf) < gan.steps]
        for name in ("d_optimizer", "g_optimizer") if recovered else ():
            set_base_rate(getattr(gan, name), recovered[-1][name.replace("optimizer", "lr")])
    return gan, config


def base_rate(optimizer) -> float:
    """The optimizer's learning rate, or its schedule's base rate (cyclegan's `LinearDecay`)."""
    current = optimizer.get_config()["learning_rate"]
    if isinstance(current, dict):  # a serialized schedule
        return float(keras.optimizers.schedules.deserialize(current).rate)
    return float(current)


def set_base_rate(optimizer, rate: float) -> None:
    """Sets the learning rate to `rate`; a schedule keeps its shape with `rate` as its base."""
    current = optimizer.get_config()["learning_rate"]
    if isinstance(current, dict):
        schedule = keras.optimizers.schedules.deserialize(current)
        optimizer.learning_rate = LinearDecay(rate, schedule.constant_steps,
                                              schedule.decay_steps)
    else:
        optimizer.learning_rate = rate


def _load_weights(gan: GAN, path: Path) -> None:
    """Loads the weights of a `.keras` checkpoint into `gan`, from an extracted copy.

    Keras reads the HDF5 weights inside the zip in place, and every backward seek there
    re-reads the member from its start: that took 0.9 s of the 1.6 s of `kgan sample`. One
    sequential copy to a temporary file, then HDF5's random access on disk, takes a few ms.
    """
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
        member = archive.getinfo(WEIGHTS_MEMBER)
        variables = gan.variables + gan.d_optimizer.variables + gan.g_optimizer.variables
        # At most 8 bytes per value, plus 1 MiB for HDF5's own bookkeeping: anything larger is
        # not this model's checkpoint, and is not unpacked onto the disk.
        expected = sum(math.prod(v.shape) * 8 for v in variables) + 2**20
        if member.file_size > expected:
            raise KganError(f"its {WEIGHTS_MEMBER} has {member.file_size} bytes, more than this "
                            f"model's weights could take ({expected})")
        weights = Path(tmp) / WEIGHTS_MEMBER
        with archive.open(member) as source:
            try:
                with weights.open("wb") as target:
                    shutil.copyfileobj(source, target, 2**20)
            except OSError as e:  # the checkpoint is fine: the room for a copy is not
                raise NoRoom(f"Cannot unpack {path} to load it: {e.strerror or e} (in "
                                f"{tempfile.gettempdir()}; TMPDIR may name a disk with room)"
                                ) from None
        gan.load_weights(weights)


def save(gan: GAN, run_dir: Path, name: str = runs.CHECKPOINT) -> Path:
    """Writes the whole GAN (weights, both optimizers, noise state) to `run_dir/name`,
    atomically: a crash mid-write keeps the previous checkpoint."""
    path = run_dir / name
    try:
        with runs.atomic_path(path) as tmp:
            gan.save(tmp)
    except OSError as e:
        kept = "the previous one is kept" if path.exists() else "there is no earlier one"
        raise KganError(f"Cannot write checkpoint {path}: {e.strerror or e}; {kept}") from None
    return path
