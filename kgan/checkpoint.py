"""A run's model saved to and loaded from `.keras` files (built from its `config.json` by
`kgan.build`).

`kgan sample`, `export`, `eval` and `--resume` all rebuild the models with kgan's own code and
read a checkpoint only as data (weights and optimizer state): nothing in it runs as code.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import keras

from kgan import health, runs
from kgan.adversarial import Adversarial
from kgan.build import build_gan
from kgan.config import TrainConfig
from kgan.errors import KganError, first_line

WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a `.keras` file


class NoRoom(KganError):
    """A checkpoint that is fine, but whose unpacked copy cannot be written (a full disk)."""


def load_gan(run_dir: str | Path, best: bool = False, distributed: bool = False,
             ema: bool = False, config: TrainConfig | None = None,
             steps_per_epoch: int = 1) -> tuple[Adversarial, TrainConfig]:
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
    # A checkpoint is good only if it is finite: one with NaN weights draws black images and
    # trains nothing (the watchdog keeps such weights from being saved; this is for the rest).
    if not health.weights_finite(keras.ops.convert_to_numpy(w) for w in gan.weights):
        raise KganError(f"Checkpoint {path} holds NaN or inf weights: it cannot be drawn from "
                        "or trained on")
    if ema:
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
    """Sets the learning rate to `rate`; a schedule keeps its shape with `rate` as its base
    (its config's `rate`)."""
    current = optimizer.get_config()["learning_rate"]
    if isinstance(current, dict):
        schedule = keras.optimizers.schedules.deserialize(current)
        optimizer.learning_rate = type(schedule).from_config({**schedule.get_config(),
                                                              "rate": rate})
    else:
        optimizer.learning_rate = rate


def _load_weights(gan: Adversarial, path: Path) -> None:
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
        # Another model's weights do not load: Keras says so in a warning per part it skips,
        # then (some of them) in a long error. Both become one line.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                gan.load_weights(weights)
                error = None
            except ValueError as e:
                error = first_line(e)
        skipped = [str(w.message).strip() for w in caught if "Skipping" in str(w.message)]
        if error or skipped:
            raise KganError(f"it holds another model's weights ({(skipped or [error])[0]}); "
                            "was it copied from another run?")


def save(gan: Adversarial, run_dir: Path, name: str = runs.CHECKPOINT) -> Path:
    """Writes the whole GAN (weights, both optimizers, noise state) to `run_dir/name`,
    atomically: a crash mid-write keeps the previous checkpoint."""
    path = run_dir / name
    with runs.atomic_path(path) as tmp:
        gan.save(tmp)
    return path


def load_start(source: str | Path) -> tuple[dict, list | None]:
    """`--init-from`: the networks a new run starts from, by role, and the moving average of
    the generator's weights (NumPy, in its weights' order; None where there is none).

    `source` is a run (its latest checkpoint: G and D, and the average where it keeps one) or
    an export (`saved_models/NAME[/VERSION]`: the generator alone, with the weights it serves,
    the average where the run kept one; D starts fresh).
    """
    path = Path(source).expanduser()
    if not path.is_dir():
        raise KganError(f"--init-from {source}: no such run or export (give a run directory or "
                        "saved_models/NAME[/VERSION])")
    if (path / runs.CONFIG).is_file():
        gan, _ = load_gan(path)
        averaged = [keras.ops.convert_to_numpy(w) for w in getattr(gan, "ema_weights", [])]
        return {role: getattr(gan, role) for role in gan.MODELS}, averaged or None
    from kgan import serving

    version = serving.resolve(path)
    meta = serving.metadata(version)
    if "training_config" not in meta:
        raise KganError(f"{version} records no training config (kgan.json): it cannot be "
                        "rebuilt to start from")
    config = TrainConfig.from_dict(meta["training_config"])
    generator = build_gan(config).generator
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(version / "variables" / "variables"))
        values = [reader.get_tensor(f"variables/{i}/.ATTRIBUTES/VARIABLE_VALUE")
                  for i in range(len(generator.weights))]
    except Exception as e:
        raise KganError(f"Cannot read the weights in {version}: {first_line(e)}") from None
    if [v.shape for v in values] != [tuple(w.shape) for w in generator.weights]:
        raise KganError(f"The weights in {version} do not fit the generator its kgan.json "
                        "describes")
    generator.set_weights(values)
    return {"generator": generator}, None
