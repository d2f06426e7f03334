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
from kgan import distribute, families, metrics, runs, trackers
from kgan.adversarial import Adversarial
from kgan.build import build_gan, copy_weights
from kgan.checkpoint import base_rate, load_gan, load_start, save, set_base_rate
from kgan.config import TrainConfig
from kgan.errors import Interrupted, KganError, first_line
from kgan.trainers import make_dataset


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    status: str  # "finished", "interrupted" or "stopped" (early, by a callback)
    epoch: int  # complete epochs done
    step: int  # generator steps done in all


def train(config: TrainConfig, runs_dir: str | Path = "runs", name: str | None = None,
          callbacks: list | None = None, notify=None, progress=None, *, models=None,
          data=None, data_name: str | None = None) -> TrainResult:
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
        models: `(generator, discriminator)`, Keras models of your own (`--arch custom`,
            `kgan.families.noise.custom`): the run starts from their weights, and records
            their configs to rebuild them for resume, sample, eval and export.
        data: images of your own instead of `config.dataset`: a NumPy array (or
            `(images, labels)`), a `tf.data.Dataset`, a Grain source or any iterable of images
            (`kgan.data.given`). Written once to `<runs_dir>/data/`, named `data_name`.
        data_name: the name of `data` (run directories are `<arch>-<data_name>`).

    Example:
        >>> kgan.train(kgan.TrainConfig(epochs=5), models=(G, D), data=x, data_name="digits")
    """
    config, start, averaged = dataclasses.replace(config), None, None
    if models is not None:
        from kgan.families.noise import custom

        config = dataclasses.replace(config, **custom.describe(*models))
        start = dict(zip(custom.ROLES, models))
    config.validate()
    family = families.of(config.arch)
    family.check(config)
    if config.track:
        trackers.check(config.track)
    if data is not None:  # written once the settings are known to be good
        from kgan.data import given

        config.dataset = str(given.save(data, data_name, runs_dir).resolve())
    if config.init_from:
        start, averaged = load_start(config.init_from)
        config.init_from = str(Path(config.init_from).expanduser().resolve())
    data = family.load(config, progress=progress)
    family.fill(config, data)
    config.data_key, config.data_count = data.key, _count(config, data)
    # First: a multi-worker strategy must come before any other TensorFlow op.
    gan = build_gan(config, distributed=True, steps_per_epoch=_steps_per_epoch(config, data),
                    start=start)
    if averaged and getattr(gan, "ema_weights", None):
        _start_average(gan, start["generator"], averaged)
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


def _start_average(gan: Adversarial, generator, averaged: list) -> None:
    """Gives `gan`'s moving average the starting run's (`averaged`, in the weights' order of
    `generator`, that run's G), layer by layer as `copy_weights` gives G its weights."""
    raw = [ops.convert_to_numpy(w) for w in generator.weights]
    generator.set_weights(averaged)
    mine = gan.use_ema()  # G holds its average: take the starting one, keep it, put G back
    try:
        copy_weights(generator, gan.generator, "generator")
        for average, weight in zip(gan.ema_weights, gan.generator.weights, strict=True):
            average.assign(weight)
    finally:
        gan.generator.set_weights(mine)
        generator.set_weights(raw)


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
    family = families.of(config.arch)
    family.check(config)
    if config.track:
        trackers.check(config.track)
    with runs.owned(run_dir):
        data = family.load(config, progress=progress)
        _check_unchanged(config, data)
        if data.image_shape != config.image_shape:
            raise KganError(f"Dataset {config.dataset} now has images of shape "
                            f"{data.image_shape}; the run was trained on {config.image_shape}")
        steps_per_epoch = _steps_per_epoch(config, data)
        gan, _ = load_gan(run_dir, distributed=True, config=config,
                          steps_per_epoch=steps_per_epoch)
        done = gan.steps // steps_per_epoch
        if config.epochs < done:  # nothing is rewritten: config.json keeps the run's own
            raise KganError(f"--epochs {config.epochs} is fewer than the {done} epochs {run_dir} "
                            f"has trained; give at least {done} (more trains on)")
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

    extractor = metrics.extractor(config.eval_features, config.dataset, config.image_size,
                                  on_train=on_train, crop=config.crop)
    return metrics.Reference(extractor, config.dataset, config.image_size, config.eval_n,
                              seed=config.seed, crop=config.crop)


def _count(config: TrainConfig, data) -> int:
    """Images trained on: after --mirror and --skip-bad; image to image, A's."""
    return len(families.of(config.arch).arrays(config, data)[0])


def _check_unchanged(config: TrainConfig, data) -> None:
    """Refuses to resume on data that changed since the run started (runs that recorded it)."""
    if config.data_key in (None, data.key):
        return
    now = _count(config, data)
    what = (f"it had {config.data_count} images, now {now}" if now != config.data_count else
            f"it has {now} images as before, but their files' sizes or times differ")
    raise KganError(f"Dataset {config.dataset} changed since the run started: {what}. Resume "
                    "on the data it trained on, or start a new run")


def _steps_per_epoch(config: TrainConfig, data) -> int:
    family = families.of(config.arch)
    n = min(len(array) for array in family.arrays(config, data))
    if n < config.batch_size:
        raise KganError(f"The dataset has {n} {family.batch_unit}, fewer than one batch. Use a "
                        f"smaller --batch-size. Received: batch_size={config.batch_size}")
    full = n // config.batch_size
    return min(full, config.steps_per_epoch) if config.steps_per_epoch else full


def _fit(gan: Adversarial, config: TrainConfig, data, run_dir: Path,
         extra_callbacks: list, reference=None, notify=None) -> TrainResult:
    steps_per_epoch = _steps_per_epoch(config, data)
    gan.epoch_steps = steps_per_epoch  # fused steps stop at epoch ends
    epoch, step = divmod(gan.steps, steps_per_epoch)
    runs.truncate_metrics(run_dir, epoch)
    family = families.of(config.arch)
    guard, notes, grid = kcb.StopGuard(), kcb.Notes(), family.grid(config, data)
    # The watchdog judges an epoch before it is logged, drawn or saved.
    callbacks = [guard, notes]
    if reference:
        callbacks.append(kcb.Evaluation(run_dir, guard, config.eval_every, config.epochs,
                                        reference, config.eval_n, config.seed, notes,
                                        family.evaluate_against))
    callbacks += [kcb.Watchdog(run_dir, guard, config.epochs, config.loss, grid, notes, notify),
                  kcb.MetricsLog(run_dir, guard, config.epochs, config.batch_size, notes),
                  kcb.SampleGrid(run_dir, guard, config.sample_every, config.epochs, grid, notes),
                  kcb.Checkpoint(run_dir, guard, config.checkpoint_every, config.epochs)]
    if config.curves:
        callbacks.append(kcb.Curves(run_dir, guard, config.epochs))
    if config.tensorboard:
        callbacks.append(kcb.TensorBoardLog(run_dir, guard, config.epochs, notes))
    tracker = trackers.open_tracker(run_dir, config)
    if tracker is not None:
        callbacks.append(kcb.Track(run_dir, guard, config.epochs, notes, tracker))
    callbacks += extra_callbacks

    def fit(gan, first_epoch, last_epoch, skip):
        dataset = make_dataset(family.arrays(config, data), config.batch_size, config.seed,
                               steps_per_epoch, first_epoch, last_epoch, skip,
                               paired=family.paired(config),
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
        result = _outcome(gan, guard, run_dir, steps_per_epoch, config, recoveries)
    except KeyboardInterrupt:
        runs.write_status(run_dir, "interrupted", "stopped by a second Ctrl-C")
        raise
    except BaseException as e:
        runs.write_status(run_dir, "failed", first_line(e))
        if tracker is not None:
            tracker.close("failed")
        raise
    runs.write_status(run_dir, result.status, "stopped early by a callback" if
                      result.status == "stopped" else None)
    if tracker is not None:
        tracker.close(result.status)
    return result


def _recovered(config: TrainConfig, run_dir: Path, steps_per_epoch: int, reason: str,
               recovery: int) -> Adversarial:
    """The run's last good checkpoint with both learning rates halved and a fresh noise state
    (a new seed for each recovery); the recovery is logged in `metrics.jsonl`.

    Halved from the rates of the try that failed: the checkpoint's, or where the previous
    recovery restarted from this same checkpoint, that recovery's (so a second try from one
    checkpoint runs at a quarter of its rate)."""
    try:
        gan, _ = load_gan(run_dir, distributed=True, config=config,
                          steps_per_epoch=steps_per_epoch)
    except KganError as e:  # e.g. a checkpoint with NaN weights: not a good one to go back to
        raise KganError(f"Training stopped: {reason}; it cannot recover: {e}") from None
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


def _outcome(gan: Adversarial, guard: kcb.StopGuard, run_dir: Path, steps_per_epoch: int,
             config: TrainConfig, recoveries: int = 0) -> TrainResult:
    steps, epochs = gan.steps, config.epochs
    if guard.reason not in (None, "interrupted"):
        kept = run_dir / runs.CHECKPOINT
        kept = f"the last good checkpoint is {kept}" if kept.exists() else "no checkpoint was kept"
        tried = (f" after {recoveries} recover{'y' if recoveries == 1 else 'ies'} at half the "
                 "learning rate each" if recoveries else "")
        # A resume cannot change --lr: a new run can, from this one's weights where it may.
        start = (f" (--init-from {run_dir} starts it from this run's weights)"
                 if families.of(config.arch).name == "noise" and "no checkpoint" not in kept
                 else "")
        raise KganError(f"Training stopped at step {steps}: {guard.reason}{tried}; {kept}. "
                        f"Start a new run with a lower --lr or another --loss{start}.")
    if guard.requested and steps < epochs * steps_per_epoch:  # Ctrl-C before the last step
        save(gan, run_dir)
        return TrainResult(run_dir, "interrupted", steps // steps_per_epoch, steps)
    if steps < epochs * steps_per_epoch:  # a callback (EarlyStopping) ended it at an epoch end
        save(gan, run_dir)
        return TrainResult(run_dir, "stopped", steps // steps_per_epoch, steps)
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
