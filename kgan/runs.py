"""Run directories: `runs/NNNNN-<arch>-<dataset>/` with config, checkpoints, samples, metrics."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from kgan.config import TrainConfig
from kgan.errors import KganError

CONFIG = "config.json"
CHECKPOINT = "checkpoints/latest.keras"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
_RUN_NAME = re.compile(r"^(\d{5})-")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside `path` and renames it into place if the block succeeds.

    Readers never see a half-written file, and a crash leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def create(runs_dir: str | Path, config: TrainConfig, dataset_name: str,
           name: str | None = None) -> Path:
    """Makes the next numbered run directory and writes its `config.json`."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _RUN_NAME.match(p.name))]
        label = name or f"{config.arch}-{dataset_name}"
        if not re.fullmatch(r"[A-Za-z0-9._-]+", label):
            raise KganError(f"`name` may only use letters, digits, '.', '_' and '-'. Received: "
                            f"name={label}")
        run_dir = runs_dir / f"{max(numbers, default=-1) + 1:05d}-{label}"
        run_dir.mkdir()
        (run_dir / CONFIG).write_text(config.to_json())
    except OSError as e:
        raise KganError(f"Cannot create a run directory in {runs_dir}: {e}") from None
    return run_dir


def newest(runs_dir: str | Path = "runs") -> Path:
    """The highest-numbered run in `runs_dir`; raises `KganError` if there is none."""
    runs_dir = Path(runs_dir)
    runs = sorted(
        (p for p in runs_dir.glob("*") if _RUN_NAME.match(p.name) and (p / CONFIG).is_file()),
        key=lambda p: p.name,
    ) if runs_dir.is_dir() else []
    if not runs:
        raise KganError(f"No runs found in {runs_dir}/. Train one with `kgan train`.")
    return runs[-1]


def open_run(run_dir: str | Path) -> tuple[Path, TrainConfig]:
    """Checks that `run_dir` is a kgan run and returns it with its config."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KganError(f"Run directory not found: {run_dir}")
    if not (run_dir / CONFIG).is_file():
        raise KganError(f"{run_dir} is not a kgan run (no {CONFIG})")
    return run_dir, TrainConfig.load(run_dir / CONFIG)


def checkpoint(run_dir: Path) -> Path:
    """The run's latest checkpoint; raises `KganError` if it has none yet."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise KganError(f"{run_dir} has no checkpoint yet ({CHECKPOINT})")
    return path


def append_metrics(run_dir: Path, record: dict) -> None:
    with open(run_dir / METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_metrics(run_dir: Path, last_epoch: int) -> None:
    """Drops metric lines of epochs after `last_epoch`: a resumed run logs them again."""
    path = run_dir / METRICS
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("epoch", 0) <= last_epoch:
                kept.append(line)
        except ValueError:
            continue  # a line cut short by a crash
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))
