"""Keras callbacks of a training run: stop guard, metrics log, sample grids, checkpoints, progress.

They talk through Keras' `logs` (numbers only, so any stock Keras callback can read them too):
the evaluation puts its FID and KID there, the watchdog its verdict's severity, the metrics log
the epoch's seconds and images per second. What is not a number (the metric card, the health
verdict, the grid image) goes into the run's `Notes` of the epoch, which the metrics log and
TensorBoard writer read. Library code never prints: progress reaches the user through
`RichProgress`, which the CLI adds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from kgan import checkpoint, health, images, losses, plots, runs, tensorboard

WATCHED = ("d_loss", "g_loss")


class StopGuard(keras.callbacks.Callback):
    """Stops training after the current step on request (Ctrl-C) or on a NaN/inf loss.

    `reason` says why an epoch was cut short (`None` if none was); callbacks after this one
    skip that epoch, so no partial epoch is logged and no NaN is saved. A request that lands
    on an epoch's last step (likely with fused steps) stops after that epoch, logged as usual.
    """

    def __init__(self):
        super().__init__()
        self.reason = None
        self.requested = False

    def request_stop(self, *_):
        """Asks training to stop after the step in flight (a SIGINT handler)."""
        self.requested = True

    def on_train_batch_end(self, batch, logs=None):
        for key in WATCHED:
            value = float((logs or {}).get(key, 0.0))
            if not math.isfinite(value):
                self.reason = f"{key} became {value}"
                self.model.stop_training = True
                return
        if self.requested:
            if batch + 1 < self.params["steps"]:  # fused steps report their call's last step
                self.reason = "interrupted"
            self.model.stop_training = True


class Notes(keras.callbacks.Callback):
    """What callbacks note of the epoch that is not a number: `record`, what joins its
    `metrics.jsonl` line (the metric card, the health verdict), and `grid`, its sample grid
    (for TensorBoard); emptied as each epoch begins."""

    def __init__(self):
        super().__init__()
        self.record, self.grid = {}, None

    def on_epoch_begin(self, epoch, logs=None):
        self.record, self.grid = {}, None


class _RunCallback(keras.callbacks.Callback):
    def __init__(self, run_dir: Path, guard: StopGuard, every: int, epochs: int):
        super().__init__()
        self.run_dir, self.guard, self.every, self.epochs = run_dir, guard, every, epochs

    def due(self, epoch: int) -> bool:
        """True at the end of a complete epoch that is a multiple of `every`, or the last one."""
        done = epoch + 1
        return self.guard.reason is None and (done % self.every == 0 or done == self.epochs)


class MetricsLog(_RunCallback):
    """Appends one JSON line per epoch to `metrics.jsonl`: the numbers in `logs` (losses, FID,
    ...), seconds and images per second (added to `logs` as well), and the epoch's `notes`."""

    def __init__(self, run_dir, guard, epochs, batch_size, notes: Notes):
        super().__init__(run_dir, guard, 1, epochs)
        self.batch_size, self.notes = batch_size, notes

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        # With fused steps Keras reports the last step the call could have run, not one it ran.
        self.steps = min(batch + 1, self.params["steps"])

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        seconds = time.perf_counter() - self.start
        logs = {} if logs is None else logs
        logs["seconds"] = round(seconds, 3)
        logs["images_per_sec"] = round(self.steps * self.batch_size / max(seconds, 1e-9), 1)
        record = {"epoch": epoch + 1, "step": self.model.steps}
        record.update({key: float(value) for key, value in logs.items()})
        record.update(self.notes.record)
        runs.append_metrics(self.run_dir, record)


class SampleGrid(_RunCallback):
    """Writes `samples/epoch-NNNN.png`: the family's `grid` (`kgan.families.family.Grid`),
    the same inputs every epoch so progress is comparable."""

    def __init__(self, run_dir, guard, every, epochs, grid, notes: Notes):
        super().__init__(run_dir, guard, every, epochs)
        self.grid, self.notes = grid, notes

    def on_epoch_end(self, epoch, logs=None):
        if self.due(epoch):
            picture = self.grid.draw(self.model)
            self.notes.grid = picture
            images.save_png(picture, self.run_dir / runs.SAMPLES / f"epoch-{epoch + 1:04d}.png")


class Checkpoint(_RunCallback):
    """Saves the whole GAN (weights, both optimizers, noise state) to `checkpoints/latest.keras`."""

    def on_epoch_end(self, epoch, logs=None):
        if self.due(epoch):
            checkpoint.save(self.model, self.run_dir)


class Evaluation(_RunCallback):
    """Measures FID and KID (and the classifier metrics) every `every` epochs.

    Whenever FID improves, the model is also saved as `checkpoints/best.keras`.
    """

    def __init__(self, run_dir, guard, every, epochs, reference, n, seed, notes: Notes,
                 evaluate):
        super().__init__(run_dir, guard, every, epochs)
        self.reference, self.n, self.seed, self.notes = reference, n, seed, notes
        self.evaluate = evaluate  # the family's: (model, reference, n, seed) -> result
        records, _ = runs.read_metrics(run_dir)  # a resumed run remembers its best
        self.best = min((r["fid"] for r in records if "fid" in r and "source" not in r),
                        default=math.inf)

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        with self.model.averaged_generator():
            result = self.evaluate(self.model, self.reference, self.n, self.seed)
        found = {key: result[key] for key in ("fid", "kid", "kid_std", "classifier_score",
                                              "label_accuracy") if key in result}
        if "coverage" in result:
            found["coverage_entropy"] = result["coverage"]["entropy_normalized"]
            found["missing_classes"] = len(result["coverage"]["missing_classes"])
        if logs is not None:
            logs.update(found)
        self.notes.record["protocol"] = result["protocol"]  # the metric card
        if result["fid"] < self.best:
            self.best = result["fid"]
            checkpoint.save(self.model, self.run_dir, runs.BEST)


class Watchdog(_RunCallback):
    """Judges each epoch's health (`kgan.health`) before it is logged or saved.

    It checks every weight for NaN or inf and reads the epoch's losses; for a noise GAN also
    r_t, the spread of the family grid's images drawn by the raw generator (the one training)
    and (with `--eval-every`) class coverage from `logs`. The verdict joins the epoch's
    `metrics.jsonl` record (`health`, through `notes`) and `status.json`; `logs["health"]` is
    its severity (`kgan.health.SEVERITY`: 0 ok, 1 warning, ...). A diverged or non-finite
    epoch is cut off like a NaN step: `guard.reason` says why, nothing of it is logged or
    saved, and training stops for `--recover` to act. Its alarms reach the user through
    `notify` (a line each epoch that has some).
    """

    def __init__(self, run_dir, guard, epochs, loss, grid, notes: Notes, notify=None):
        super().__init__(run_dir, guard, 1, epochs)
        self.loss, self.grid, self.notes, self.notify = loss, grid, notes, notify

    def on_train_begin(self, logs=None):
        # From the log on disk: a resumed or recovered run judges against the epochs it kept.
        self.dog = health.Watchdog(losses.get(self.loss).bounded,
                                  runs.read_metrics(self.run_dir)[0])

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        logs = {} if logs is None else logs
        finite = health.weights_finite(keras.ops.convert_to_numpy(w) for w in self.model.weights)
        verdict = self.dog.check(logs, finite, self.grid.spread(self.model),
                                 logs.get("coverage_entropy"), logs.get("missing_classes"))
        self.notes.record["health"] = verdict
        logs["health"] = health.SEVERITY.index(verdict["status"])
        if verdict["alarms"] and self.notify:
            self.notify(f"epoch {epoch + 1} {verdict['status'].replace('_', '-')}: "
                        + "; ".join(verdict["alarms"]))
        if verdict["status"] in health.RECOVERABLE:
            self.guard.reason = f"{verdict['status'].replace('_', '-')}: " + "; ".join(
                verdict["alarms"])
            self.model.stop_training = True
        else:
            runs.write_status(self.run_dir, "running", health=verdict)


class TensorBoardLog(_RunCallback):
    """TensorBoard event files in `tensorboard/`: each epoch's metrics and its sample grid."""

    def __init__(self, run_dir, guard, epochs, notes: Notes):
        super().__init__(run_dir, guard, 1, epochs)
        self.notes = notes
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        if self.writer is None:
            self.writer = tensorboard.Writer(self.run_dir / runs.TENSORBOARD)
        numbers = {key: float(value) for key, value in (logs or {}).items()}
        self.writer.write(epoch + 1, {**numbers, **self.notes.record}, self.notes.grid)

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Track(_RunCallback):
    """Each epoch's numbers and grid, and each evaluation with its metric card, to the run's
    tracker (`kgan.trackers`), after the metrics log has written them."""

    def __init__(self, run_dir, guard, epochs, notes: Notes, tracker):
        super().__init__(run_dir, guard, 1, epochs)
        self.notes, self.tracker = notes, tracker

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        grid = self.run_dir / runs.SAMPLES / f"epoch-{epoch + 1:04d}.png"
        numbers = {key: float(value) for key, value in (logs or {}).items()}
        self.tracker.log(self.model.steps, numbers,
                         grid if self.notes.grid is not None else None)
        if "protocol" in self.notes.record:
            self.tracker.card(f"epoch-{epoch + 1:04d}",
                              {**numbers, "protocol": self.notes.record["protocol"]})


class Curves(_RunCallback):
    """Redraws `curves.png` (losses, D outputs, FID/KID when present) as epochs end.

    A matplotlib redraw costs about half a second, a tenth of a short epoch: after the first
    epoch it is redrawn at most every `interval` seconds, and once more when training ends.
    """

    def __init__(self, run_dir, guard, epochs, interval=30.0):
        super().__init__(run_dir, guard, 1, epochs)
        self.interval = interval
        self.drawn_at = None  # perf_counter() of the last redraw
        self.stale = False  # an epoch ended since then

    def on_epoch_end(self, epoch, logs=None):
        if self.due(epoch):
            self.stale = True
            if self.drawn_at is None or time.perf_counter() - self.drawn_at >= self.interval:
                self.draw()

    def on_train_end(self, logs=None):
        if self.stale:
            self.draw()

    def draw(self):
        plots.curves(runs.read_metrics(self.run_dir)[0], self.run_dir / runs.CURVES,
                     title=self.run_dir.name)
        self.drawn_at, self.stale = time.perf_counter(), False


class RichProgress(keras.callbacks.Callback):
    """Epoch and step bars on stderr: d_loss, g_loss, images/s, ETA (with `fit(verbose=0)`)."""

    def __init__(self, batch_size: int, console=None):
        super().__init__()
        self.batch_size = batch_size
        console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        )
        self.epoch_task = self.step_task = None

    def on_train_begin(self, logs=None):
        self.progress.start()
        if self.epoch_task is None:
            self.epoch_task = self.progress.add_task("epochs", total=None, stats="")
            self.step_task = self.progress.add_task("steps", total=None, stats="")
        self.progress.update(self.epoch_task, total=self.params["epochs"])

    def on_epoch_begin(self, epoch, logs=None):
        self.progress.update(self.epoch_task, completed=epoch)
        self.progress.reset(self.step_task, total=self.params["steps"],
                            description=f"epoch {epoch + 1}", stats="")
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        done = min(batch + 1, self.params["steps"])  # fused steps: see MetricsLog
        rate = done * self.batch_size / max(time.perf_counter() - self.start, 1e-9)
        d_loss, g_loss = float(logs.get("d_loss", 0)), float(logs.get("g_loss", 0))
        stats = f"d_loss {d_loss:.4f}  g_loss {g_loss:.4f}"
        if "ada_p" in logs:  # adaptive augmentation's probability
            stats = f"{stats}  p {float(logs['ada_p']):.3f}"
        self.progress.update(self.step_task, completed=done,
                             stats=f"{stats}  {rate:,.0f} img/s")

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:  # an epoch cut short is not done
            return
        stats = self.progress.tasks[self.step_task].fields["stats"]
        severity = int((logs or {}).get("health", 0))  # the watchdog's verdict
        if severity:
            stats = f"{stats}  [bold red]health: {health.SEVERITY[severity]}[/]"
        self.progress.update(self.epoch_task, completed=epoch + 1, stats=stats)
        if not self.progress.console.is_terminal:  # logs and CI: one line per epoch, no bars
            self.progress.console.print(f"epoch {epoch + 1}/{self.params['epochs']}  {stats}")

    def on_train_end(self, logs=None):
        self.progress.stop()
