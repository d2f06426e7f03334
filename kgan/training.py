"""`train()` and `resume()`: data -> models -> `GAN.fit` -> a run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import signal
import tempfile
import threading
import zipfile
from pathlib import Path

import keras

from kgan import callbacks as kcb
from kgan import data as data_lib
from kgan import distribute, models, runs
from kgan.config import TrainConfig
from kgan.errors import KganError, first_line
from kgan.gan import GAN
from kgan.trainers import make_dataset

# XLA where it is faster: the MLP GAN's dense step ran 50 vs 34 steps/s with XLA on the 2-core
# CI machine; the DCGAN's convolutions ran slower under XLA (2.9 vs 5.3 steps/s, issue #8).
# JAX always compiles with XLA; torch.compile cannot do wgan-gp's double backward, so off.
JIT_DEFAULT = {"mlp": True, "dcgan": False}
WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a `.keras` file


def jit_compile(config: TrainConfig, replicas: int = 1) -> bool:
    if config.jit is not None:
        return config.jit
    if config.backend == "tensorflow" and replicas > 1:
        return False  # Keras' XLA step failed under MirroredStrategy (TF 2.21)
    if config.backend == "tensorflow" and config.conditional and config.r1:
        return False  # XLA ran this step (R1 through the label projection) at 5 s, not 10 ms
    return {"jax": True, "torch": False}.get(config.backend, JIT_DEFAULT[config.arch])


# Steps fused into one TensorFlow call: the MLP GAN's ~17 ms step paid ~3 ms of per-call
# dispatch in `fit`, and 16 fused steps ran 65 vs 55 steps/s (issue #8). The JAX trainer loops
# in Python either way and Keras' torch trainer allows only 1.
FUSED_STEPS_DEFAULT = {"mlp": 16, "dcgan": 1}


def steps_per_execution(config: TrainConfig, replicas: int = 1) -> int:
    if config.steps_per_execution is not None:
        return config.steps_per_execution
    if replicas > 1:
        return 1  # Keras' multi-step loop failed to run under MirroredStrategy (TF 2.21)
    return FUSED_STEPS_DEFAULT[config.arch] if config.backend == "tensorflow" else 1


def precision_policy(config: TrainConfig) -> str:
    """`float32`, or with `mixed_precision`: `mixed_float16` where TensorFlow has a GPU (with
    loss scaling), else `mixed_bfloat16` (TPUs and CPUs; JAX and PyTorch everywhere)."""
    if not config.mixed_precision:
        return "float32"
    if config.backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return "mixed_float16"
    return "mixed_bfloat16"


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    status: str  # "finished" or "interrupted"
    epoch: int  # complete epochs done
    step: int  # generator steps done in all


def build_gan(config: TrainConfig, distributed: bool = False) -> GAN:
    """Builds and compiles the GAN that `config` describes (seeded, so weights are reproducible).

    With `distributed`, on the devices of `config.strategy`: models and both optimizers are
    made inside its scope. Otherwise on one device (sampling, evaluation and export).
    """
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
                  ema=config.ema, ema_start=config.ema_start)

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


def load_gan(run_dir: str | Path, best: bool = False, distributed: bool = False,
             ema: bool = False) -> tuple[GAN, TrainConfig]:
    """Rebuilds a run's GAN from its `config.json` and loads its latest checkpoint into it
    (with `best`, the lowest-FID one that `--eval-every` keeps). With `ema`, the generator
    gets the moving average of its weights, where the run keeps one (`--ema`).

    The checkpoint is read as data (weights and optimizer state) into models built by kgan's
    own code: nothing in it is deserialized as code.
    """
    run_dir, config = runs.open_run(run_dir)
    path = runs.checkpoint(run_dir, best)
    gan = build_gan(config, distributed)
    try:
        _load_weights(gan, path)
    except Exception as e:
        raise KganError(f"Cannot load checkpoint {path}: {first_line(e)}") from None
    if ema:
        gan.use_ema()
    return gan, config


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
        with archive.open(member) as source, weights.open("wb") as target:
            shutil.copyfileobj(source, target, 2**20)
        gan.load_weights(weights)


def train(config: TrainConfig, runs_dir: str | Path = "runs", name: str | None = None,
          callbacks: list | None = None, notify=None) -> TrainResult:
    """Trains a new run described by `config` and returns where it went.

    Nothing is written until the data has loaded and the models are built; if training fails
    before the first checkpoint, the new run directory is removed again.

    Args:
        config: the run's settings (`image_shape` and `num_classes` are filled in from the data).
        runs_dir: parent of the numbered run directories.
        name: run directory suffix instead of `<arch>-<dataset>`.
        callbacks: extra Keras callbacks (for example `kgan.callbacks.RichProgress`).
        notify: called with a line of news for the user (for example, that the evaluation
            classifier is being trained first).
    """
    config = dataclasses.replace(config).validate()
    if config.image_size is not None and config.arch == "dcgan":
        models.dcgan_upsamplings(config.image_size)
    data = data_lib.load(config.dataset, config.image_size)
    config.image_shape, config.num_classes = data.image_shape, data.num_classes
    if config.conditional and not config.num_classes:
        raise KganError(f"--conditional needs class labels and {config.dataset} has none (a "
                        "folder needs one sub-folder per class, an .npz a y_train).")
    models.check_image_shape(config)
    _steps_per_epoch(config, len(data.x))
    gan = build_gan(config, distributed=True)  # first: a multi-worker strategy must come first
    reference = _reference(config, notify)
    run_dir = runs.create(runs_dir, config, data.name, name, distribute.worker_suffix(config))
    try:
        return _fit(gan, config, data, run_dir, callbacks or [], reference)
    except BaseException:
        if not (run_dir / runs.CHECKPOINT).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def resume(run_dir: str | Path, epochs: int | None = None,
           callbacks: list | None = None, notify=None) -> TrainResult:
    """Continues a run from its latest checkpoint, up to `epochs` (default: the run's own).

    Weights, both optimizers' state, the noise generator's state and the data order continue
    exactly: an interrupted and resumed run ends bit-identical to one that was not.
    """
    gan, config = load_gan(run_dir, distributed=True)
    run_dir = Path(run_dir)
    if epochs is not None:
        config.epochs = epochs
        config.validate()
        (run_dir / runs.CONFIG).write_text(config.to_json())
    data = data_lib.load(config.dataset, config.image_size)
    if data.image_shape != config.image_shape:
        raise KganError(f"Dataset {config.dataset} now has images of shape {data.image_shape}; "
                        f"the run was trained on {config.image_shape}")
    return _fit(gan, config, data, run_dir, callbacks or [], _reference(config, notify))


def _reference(config: TrainConfig, notify):
    """The real-image features that --eval-every compares with (None without evaluation)."""
    if config.eval_every is None:
        return None
    from kgan import evaluate

    def on_train(path):
        if notify:
            notify(f"Training the evaluation classifier first (once; cached at {path})")

    extractor = evaluate.extractor(config.eval_features, config.dataset, config.image_size,
                                   on_train=on_train)
    return evaluate.Reference(extractor, config.dataset, config.image_size, config.eval_n,
                              seed=config.seed)


def _steps_per_epoch(config: TrainConfig, n: int) -> int:
    if n < config.batch_size:
        raise KganError(f"The dataset has {n} images, fewer than one batch. Use a smaller "
                        f"--batch-size. Received: batch_size={config.batch_size}")
    full = n // config.batch_size
    return min(full, config.steps_per_epoch) if config.steps_per_epoch else full


def _fit(gan: GAN, config: TrainConfig, data: data_lib.Dataset, run_dir: Path,
         extra_callbacks: list, reference=None) -> TrainResult:
    steps_per_epoch = _steps_per_epoch(config, len(data.x))
    gan.epoch_steps = steps_per_epoch  # fused steps stop at epoch ends
    epoch, step = divmod(gan.steps, steps_per_epoch)
    runs.truncate_metrics(run_dir, epoch)
    guard = kcb.StopGuard()
    evaluation = [kcb.Evaluation(run_dir, guard, config.eval_every, config.epochs, reference,
                                 config.eval_n, config.seed)] if reference else []
    metrics = kcb.MetricsLog(run_dir, guard, config.epochs, config.batch_size, evaluation)
    samples = kcb.SampleGrid(run_dir, guard, config.sample_every, config.epochs,
                             config.latent_dim, config.seed, num_classes=gan.num_classes)
    callbacks = [guard, *evaluation, metrics, samples,
                 kcb.Checkpoint(run_dir, guard, config.checkpoint_every, config.epochs),
                 kcb.Curves(run_dir, guard, config.epochs)]
    if config.tensorboard:
        callbacks.append(kcb.TensorBoardLog(run_dir, guard, config.epochs, metrics, samples))
    callbacks += extra_callbacks

    def fit(first_epoch, last_epoch, skip):
        dataset = make_dataset(data.x, config.batch_size, config.seed, steps_per_epoch,
                               first_epoch, last_epoch, skip,
                               y=data.y if config.conditional else None)
        gan.fit(dataset, epochs=last_epoch, initial_epoch=first_epoch,
                steps_per_epoch=steps_per_epoch - skip, callbacks=callbacks, verbose=0,
                shuffle=False)

    runs.write_status(run_dir, "running")
    try:
        with _sigint_stops(guard):
            if step:  # finish the epoch an interruption cut short, then the rest
                fit(epoch, epoch + 1, step)
                epoch += guard.reason is None
            if not guard.requested and guard.reason is None and epoch < config.epochs:
                fit(epoch, config.epochs, 0)
        result = _outcome(gan, guard, run_dir, steps_per_epoch, config.epochs)
    except KeyboardInterrupt:
        runs.write_status(run_dir, "interrupted", "stopped by a second Ctrl-C")
        raise
    except BaseException as e:
        runs.write_status(run_dir, "failed", first_line(e))
        raise
    runs.write_status(run_dir, result.status)
    return result


def _outcome(gan: GAN, guard: kcb.StopGuard, run_dir: Path, steps_per_epoch: int,
             epochs: int) -> TrainResult:
    steps = gan.steps
    if guard.reason not in (None, "interrupted"):
        kept = run_dir / runs.CHECKPOINT
        kept = f"the last good checkpoint is {kept}" if kept.exists() else "no checkpoint was kept"
        raise KganError(f"Training stopped at step {steps}: {guard.reason}; {kept}. "
                        "Try a lower --lr or another --loss.")
    if guard.requested and steps < epochs * steps_per_epoch:  # Ctrl-C before the last step
        kcb.save_checkpoint(gan, run_dir)
        return TrainResult(run_dir, "interrupted", steps // steps_per_epoch, steps)
    return TrainResult(run_dir, "finished", epochs, steps)


@contextlib.contextmanager
def _sigint_stops(guard: kcb.StopGuard):
    """While training, Ctrl-C asks `guard` to stop after the current step (a second one kills)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGINT, previous)
        guard.request_stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
