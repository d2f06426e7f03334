"""`train()` and `resume()`: data -> models -> `GAN.fit` -> a run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import threading
from pathlib import Path

from keras import ops

from kgan import callbacks as kcb
from kgan import data as data_lib
from kgan import distribute, evaluate, models, runs
from kgan.checkpoint import base_rate, build_gan, load_gan, mixed_precision, save, set_base_rate
from kgan.config import TrainConfig
from kgan.errors import Interrupted, KganError, first_line
from kgan.gan import GAN
from kgan.trainers import make_dataset


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    status: str  # "finished" or "interrupted"
    epoch: int  # complete epochs done
    step: int  # generator steps done in all


def train(config: TrainConfig, runs_dir: str | Path = "runs", name: str | None = None,
          callbacks: list | None = None, notify=None, progress=None) -> TrainResult:
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
        progress: called as `progress(done, total)` while a new source is packed (decoded
            once into `KGAN_CACHE/packed/`).
    """
    config = dataclasses.replace(config).validate()
    if config.image_size is not None and config.arch in models.CONVOLUTIONAL:
        models.dcgan_upsamplings(config.image_size, config.arch)
    data = _load(config, progress)
    config.data_key, config.data_count = data.key, _count(config, data)
    if config.translation:
        config.image_shape, config.target_channels = data.image_shape, data.channels[1]
        if config.arch == "cyclegan" and config.identity and len(set(data.channels)) > 1:
            raise KganError(f"--identity needs A and B with the same channels; {config.dataset} "
                            f"has {data.channels[0]} and {data.channels[1]}. Use --identity 0. "
                            f"Received: identity={config.identity}")
    else:
        config.image_shape, config.num_classes = data.image_shape, data.num_classes
        if config.conditional and not config.num_classes:
            raise KganError(f"--conditional needs class labels and {config.dataset} has none (a "
                            "folder needs one sub-folder per class, an .npz a y_train).")
        models.check_image_shape(config)
        config.mixed_precision = mixed_precision(config)  # auto, resolved: config.json says
    # First: a multi-worker strategy must come before any other TensorFlow op.
    gan = build_gan(config, distributed=True, steps_per_epoch=_steps_per_epoch(config, data))
    reference = _reference(config, notify)
    run_dir = runs.create(runs_dir, config, data.name, name, distribute.worker_suffix(config))
    try:
        with runs.owned(run_dir):
            return _fit(gan, config, data, run_dir, callbacks or [], reference, notify)
    except BaseException as e:
        if not (run_dir / runs.CHECKPOINT).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):
            raise _stopped_at_once(run_dir) from None
        raise


def resume(run_dir: str | Path, epochs: int | None = None, callbacks: list | None = None,
           notify=None, progress=None, **changes) -> TrainResult:
    """Continues a run from its latest checkpoint, up to `epochs` (default: the run's own).

    Weights, both optimizers' state, the noise generator's state and the data order continue
    exactly: an interrupted and resumed run ends bit-identical to one that was not.

    `changes` are settings given again (`TrainConfig.resumed`): equal ones are accepted,
    and those that may change are recorded in `config.json` (with `epochs`) once the data has
    loaded.
    """
    run_dir, config = runs.open_run(run_dir)
    config = config.resumed({**changes, **({} if epochs is None else {"epochs": epochs})})
    with runs.owned(run_dir):
        data = _load(config, progress)
        _check_unchanged(config, data)
        if data.image_shape != config.image_shape:
            raise KganError(f"Dataset {config.dataset} now has images of shape "
                            f"{data.image_shape}; the run was trained on {config.image_shape}")
        gan, _ = load_gan(run_dir, distributed=True, config=config,
                          steps_per_epoch=_steps_per_epoch(config, data))
        reference = _reference(config, notify)
        with runs.atomic_path(run_dir / runs.CONFIG) as tmp:
            tmp.write_text(config.to_json())
        try:
            return _fit(gan, config, data, run_dir, callbacks or [], reference, notify)
        except KeyboardInterrupt:
            raise _stopped_at_once(run_dir) from None


def _stopped_at_once(run_dir: Path) -> Interrupted:
    """What a second Ctrl-C (which stops without saving) leaves, in words."""
    if (run_dir / runs.CHECKPOINT).exists():
        return Interrupted(f"Stopped at once by a second Ctrl-C; {run_dir} keeps its last "
                           f"checkpoint. Resume with: kgan train --resume {run_dir}")
    return Interrupted("Stopped at once by a second Ctrl-C, before the first checkpoint: "
                       f"nothing was kept ({run_dir} is removed)")


def _reference(config: TrainConfig, notify):
    """The real-image features that --eval-every compares with (None without evaluation)."""
    if config.eval_every is None:
        return None

    def on_train(path):
        if notify:
            notify(f"Training the evaluation classifier first (once; cached at {path})")

    extractor = evaluate.extractor(config.eval_features, config.dataset, config.image_size,
                                   on_train=on_train, crop=config.crop)
    return evaluate.Reference(extractor, config.dataset, config.image_size, config.eval_n,
                              seed=config.seed, crop=config.crop)


def _load(config: TrainConfig, progress=None) -> data_lib.Dataset | data_lib.Pairs:
    """The run's training data: images (and labels), or A and B for pix2pix and cyclegan."""
    if config.translation:
        return data_lib.load_pairs(config.dataset, config.image_size,
                                   paired=config.arch == "pix2pix", progress=progress)
    return data_lib.load(config.dataset, config.image_size, crop=config.crop,
                         mirror=config.mirror, skip_bad=config.skip_bad, progress=progress)


def _count(config: TrainConfig, data) -> int:
    """Images trained on: after --mirror and --skip-bad; image to image, A's."""
    return len(data.a if config.translation else data.x)


def _check_unchanged(config: TrainConfig, data) -> None:
    """Refuses to resume on data that changed since the run started (runs that recorded it)."""
    if config.data_key in (None, data.key):
        return
    now = _count(config, data)
    what = (f"it had {config.data_count} images, now {now}" if now != config.data_count else
            f"it has {now} images as before, but their files' sizes or times differ")
    raise KganError(f"Dataset {config.dataset} changed since the run started: {what}. Resume "
                    "on the data it trained on, or start a new run")


def _arrays(config: TrainConfig, data) -> tuple:
    """What each training step gets: (images,), (images, labels), or (A, B)."""
    if config.translation:
        return data.a, data.b
    return (data.x,) if not config.conditional else (data.x, data.y.astype("int32"))


def _steps_per_epoch(config: TrainConfig, data) -> int:
    arrays = _arrays(config, data)
    n = min(len(array) for array in arrays)
    if n < config.batch_size:
        what = "images" if len(arrays) == 1 or not config.translation else "images a side"
        raise KganError(f"The dataset has {n} {what}, fewer than one batch. Use a smaller "
                        f"--batch-size. Received: batch_size={config.batch_size}")
    full = n // config.batch_size
    return min(full, config.steps_per_epoch) if config.steps_per_epoch else full


def _fit(gan: GAN, config: TrainConfig, data: data_lib.Dataset, run_dir: Path,
         extra_callbacks: list, reference=None, notify=None) -> TrainResult:
    steps_per_epoch = _steps_per_epoch(config, data)
    gan.epoch_steps = steps_per_epoch  # fused steps stop at epoch ends
    epoch, step = divmod(gan.steps, steps_per_epoch)
    runs.truncate_metrics(run_dir, epoch)
    guard = kcb.StopGuard()
    evaluation = [kcb.Evaluation(run_dir, guard, config.eval_every, config.epochs, reference,
                                 config.eval_n, config.seed)] if reference else []
    if config.translation:
        samples = kcb.TranslationGrid(run_dir, guard, config.sample_every, config.epochs,
                                      *held_out(config, data))
    else:
        samples = kcb.SampleGrid(run_dir, guard, config.sample_every, config.epochs,
                                 config.latent_dim, config.seed, num_classes=gan.num_classes)
    watch = kcb.Watchdog(run_dir, guard, config.epochs, config.loss, samples,
                         evaluation[0] if evaluation else None)
    metrics = kcb.MetricsLog(run_dir, guard, config.epochs, config.batch_size,
                             [*evaluation, watch])
    # The watchdog judges an epoch before it is logged, drawn or saved.
    callbacks = [guard, *evaluation, watch, metrics, samples,
                 kcb.Checkpoint(run_dir, guard, config.checkpoint_every, config.epochs)]
    if config.curves:
        callbacks.append(kcb.Curves(run_dir, guard, config.epochs))
    if config.tensorboard:
        callbacks.append(kcb.TensorBoardLog(run_dir, guard, config.epochs, metrics, samples))
    callbacks += extra_callbacks

    def fit(gan, first_epoch, last_epoch, skip):
        dataset = make_dataset(_arrays(config, data), config.batch_size, config.seed,
                               steps_per_epoch, first_epoch, last_epoch, skip,
                               paired=config.arch != "cyclegan",
                               strategy=getattr(gan, "distribute_strategy", None))
        gan.fit(dataset, epochs=last_epoch, initial_epoch=first_epoch,
                steps_per_epoch=steps_per_epoch - skip, callbacks=callbacks, verbose=0,
                shuffle=False)

    recoveries = len(runs.recoveries(runs.read_metrics(run_dir)[0]))
    runs.write_status(run_dir, "running")
    try:
        with _sigint_stops(guard):
            while True:
                if step:  # finish the epoch an interruption cut short, then the rest
                    fit(gan, epoch, epoch + 1, step)
                    epoch += guard.reason is None
                if not guard.requested and guard.reason is None and epoch < config.epochs:
                    fit(gan, epoch, config.epochs, 0)
                if (guard.requested or guard.reason in (None, "interrupted")
                        or recoveries >= config.recover
                        or not (run_dir / runs.CHECKPOINT).exists()):
                    break
                recoveries += 1
                gan = _recovered(config, run_dir, steps_per_epoch, guard.reason, recoveries)
                if notify:
                    rate = base_rate(gan.g_optimizer)
                    notify(f"Recovery {recoveries} of {config.recover}: {guard.reason}; "
                           f"continuing from step {gan.steps} (the last good checkpoint) at "
                           f"learning rate {rate:.3g}, with fresh noise")
                guard.reason = None
                epoch, step = divmod(gan.steps, steps_per_epoch)
                runs.truncate_metrics(run_dir, epoch)
        result = _outcome(gan, guard, run_dir, steps_per_epoch, config.epochs, recoveries)
    except KeyboardInterrupt:
        runs.write_status(run_dir, "interrupted", "stopped by a second Ctrl-C")
        raise
    except BaseException as e:
        runs.write_status(run_dir, "failed", first_line(e))
        raise
    runs.write_status(run_dir, result.status)
    return result


def held_out(config: TrainConfig, data: data_lib.Pairs, n: int = 8):
    """The first `n` A and B images of the test split (of the training data where there is
    none): the same ones in every epoch's grid."""
    try:
        data = data_lib.load_pairs(config.dataset, config.image_size, split="test",
                                   paired=config.arch == "pix2pix")
    except KganError:
        pass  # no test split: the training images
    return data.a[:n], data.b[:n], data.paired


def _recovered(config: TrainConfig, run_dir: Path, steps_per_epoch: int, reason: str,
               recovery: int) -> GAN:
    """The run's last good checkpoint with both learning rates halved and a fresh noise state
    (a new seed for each recovery); the recovery is logged in `metrics.jsonl`.

    Halved from the rates of the try that failed: the checkpoint's, or where the previous
    recovery restarted from this same checkpoint, that recovery's (so a second try from one
    checkpoint runs at a quarter of its rate)."""
    gan, _ = load_gan(run_dir, distributed=True, config=config, steps_per_epoch=steps_per_epoch)
    previous = runs.recoveries(runs.read_metrics(run_dir)[0])
    again = previous and previous[-1].get("step") == gan.steps
    rates = {}
    for name in ("d_optimizer", "g_optimizer"):
        optimizer, key = getattr(gan, name), name.replace("optimizer", "lr")
        rates[key] = (previous[-1][key] if again else base_rate(optimizer)) / 2
        set_base_rate(optimizer, rates[key])
    gan.epoch_steps = steps_per_epoch
    state = gan.seed_generator.state
    state.assign(ops.cast([(config.seed + 7919 * recovery) % 2**31, 0], state.dtype))
    runs.append_metrics(run_dir, {"epoch": gan.steps // steps_per_epoch, "step": gan.steps,
                                  "source": "recovery", "recovery": recovery, "reason": reason,
                                  **rates})
    return gan


def _outcome(gan: GAN, guard: kcb.StopGuard, run_dir: Path, steps_per_epoch: int,
             epochs: int, recoveries: int = 0) -> TrainResult:
    steps = gan.steps
    if guard.reason not in (None, "interrupted"):
        kept = run_dir / runs.CHECKPOINT
        kept = f"the last good checkpoint is {kept}" if kept.exists() else "no checkpoint was kept"
        tried = (f" after {recoveries} recover{'y' if recoveries == 1 else 'ies'} at half the "
                 "learning rate each" if recoveries else "")
        raise KganError(f"Training stopped at step {steps}: {guard.reason}{tried}; {kept}. "
                        "Try a lower --lr or another --loss.")
    if guard.requested and steps < epochs * steps_per_epoch:  # Ctrl-C before the last step
        save(gan, run_dir)
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
