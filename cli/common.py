"""What every command shares: backend selection before Keras loads, and one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from kgan import runs
from kgan.errors import KganError

# `--runs-dir` of the commands that default to the newest run.
RunsDir = Annotated[Path, typer.Option(help="Where to look for the newest run.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
UseEma = Annotated[bool, typer.Option(
    "--ema/--no-ema", help="Use the moving average of G's weights where the run kept one "
    "(trained with --ema); --no-ema: the raw generator.")]

# What TensorFlow's C++ side prints at start-up on a machine without a GPU, before its log
# level applies: noise to a CPU user, so the CLI drops these lines (KGAN_DEBUG=1 keeps them).
_NO_GPU_NOISE = re.compile(r"absl::InitializeLog|cudart_stub|cuda_platform|cuInit|"
                           r"cpu_feature_guard|rebuild TensorFlow with the appropriate|"
                           r"oneDNN custom operations are on")


def select_backend(backend: str | None = None) -> None:
    """Sets the Keras backend (and quiets TensorFlow's C++ logs) before Keras is imported."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not os.environ.get("KGAN_DEBUG"):
        _import_tensorflow_quietly()
    if "keras" in sys.modules:
        import keras  # already loaded: no cost, and which backend it took is the question

        if keras.backend.backend() != os.environ["KERAS_BACKEND"]:
            fail(f"Keras is already loaded with the {keras.backend.backend()!r} backend")


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow (and probes its devices) with the C++ stderr captured; lines other
    than the no-GPU start-up noise are passed on, and everything is shown if the import fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf  # the point of this function: loaded once, quietly

            tf.config.list_physical_devices()  # CUDA's probe prints here, not at the first op
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        for line in captured.read().decode(errors="replace").splitlines():
            if not _NO_GPU_NOISE.search(line):
                sys.stderr.write(line + "\n")


def select_backend_of(run_or_export: Path) -> None:
    """The backend a run was trained on, or TensorFlow for an export (a SavedModel)."""
    if (run_or_export / runs.CONFIG).is_file():
        select_backend(runs.open_run(run_or_export)[1].backend)
    else:
        select_backend("tensorflow")


@contextlib.contextmanager
def counting_progress(title: str = "Packing images", unit: str = "images"):
    """Yields `progress(done, total)` (packing a dataset, projecting images): a Rich bar on
    stderr with `unit`/s and ETA, shown in a terminal once there is something to do."""
    console = Console(stderr=True)
    bar = Progress(TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                   console=console, transient=True, disable=not console.is_terminal)
    task, start = None, (0.0, 0)

    def progress(done: int, total: int) -> None:
        nonlocal task, start
        if task is None:
            bar.start()
            task, start = bar.add_task("pack", total=total, completed=done, rate=""), (
                time.monotonic(), done)
        seconds = time.monotonic() - start[0]
        rate = f"{(done - start[1]) / seconds:,.1f} {unit}/s" if seconds > 0.5 else ""
        bar.update(task, completed=done, total=total, rate=rate)

    try:
        yield progress
    finally:
        bar.stop()


def echo_files(written: list[Path], as_json: bool) -> None:
    """The written files on stdout: one path a line (a name with a newline or another control
    character as a JSON string, so that it stays on its line), or `{"files": [...]}` with
    `as_json`."""
    if as_json:
        typer.echo(json.dumps({"files": [str(path) for path in written]}))
    else:
        for path in written:
            typer.echo(path if str(path).isprintable() else json.dumps(str(path)))


def fail(message: str, code: int = 1) -> None:
    """Prints `Error: message` on stderr and exits with `code`."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors():
    """Turns `KganError` into one `Error: ...` line and its exit code, 1 unless it says
    otherwise (KGAN_DEBUG=1 re-raises)."""
    try:
        yield
    except KganError as e:
        if os.environ.get("KGAN_DEBUG"):
            raise
        fail(str(e), e.exit_code)
