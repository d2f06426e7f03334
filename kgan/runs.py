"""Run directories: `runs/NNNNN-<arch>-<dataset>/` with config, checkpoints, samples, metrics."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path

from filelock import FileLock, Timeout

from kgan.config import TrainConfig
from kgan.errors import KganError

CONFIG = "config.json"
CHECKPOINT = "checkpoints/latest.keras"
BEST = "checkpoints/best.keras"  # lowest FID, with --eval-every
METRICS = "metrics.jsonl"
SAMPLES = "samples"
STATUS = "status.json"
CURVES = "curves.png"
TENSORBOARD = "tensorboard"
REPORT = "report.html"
LOCK = ".lock"  # held by the process that trains the run
OWNER = ".owner"  # which process holds the lock: its pid and host
_RUN_NAME = re.compile(r"^(\d{5})-")
# Numbers in a metrics record, where present (a record with text there is damaged).
NUMERIC_METRICS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "r_t", "seconds",
                   "images_per_sec", "fid", "kid", "kid_std", "l1", "psnr", "ssim", "cycle_l1",
                   "target_share")
TRANSLATION_METRICS = ("l1", "psnr", "ssim", "fid", "cycle_l1", "target_share")  # of kgan eval


def cache_dir() -> Path:
    """Where kgan keeps what it can rebuild (evaluation classifiers, JAX's compiled steps):
    `$KGAN_CACHE`, default `~/.cache/kgan`."""
    return Path(os.environ.get("KGAN_CACHE", "~/.cache/kgan")).expanduser()


def cache_folder(*parts: str) -> Path:
    """The folder `parts` of the cache, made if missing; a cache that cannot be made (a file
    in the way, a read-only disk) is one `KganError` naming KGAN_CACHE."""
    path = cache_dir().joinpath(*parts)
    try:
        return make_folder(path)
    except OSError as e:
        raise KganError(f"Cannot use the cache folder {path}: {e.strerror or e} (set KGAN_CACHE "
                        "to a folder kgan may write)") from None


def mode(directory: bool = False) -> int:
    """The permissions a new file (or folder) gets under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def make_folder(path: str | Path) -> Path:
    """Makes the folder `path` and its parents; a file in the way is named as such (an
    `OSError` whose `strerror` says which), not "File exists"."""
    path = Path(path)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{place} is a file, not a folder")
            break
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside `path` and renames it into place if the block succeeds.

    Readers never see a half-written file, and a crash leaves the previous file intact. The
    file gets the umask's permissions, not mkstemp's 0600 (others, TF Serving or a web server,
    may need to read it). Every file kgan writes whole goes through here, so a failed write (a
    full disk, a read-only folder, a folder in the way) is one `KganError` naming the file and
    saying what is kept.
    """
    path, tmp = Path(path), None
    try:
        make_folder(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, mode())
        os.replace(tmp, path)
    except OSError as e:
        kept = "the previous one is kept" if path.is_file() else "nothing was written there"
        raise KganError(f"Cannot write {path}: {e.strerror or e}; {kept}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def create(runs_dir: str | Path, config: TrainConfig, dataset_name: str,
           name: str | None = None, suffix: str = "") -> Path:
    """Makes the next numbered run directory and writes its `config.json`.

    It is called `<number>-<name><suffix>`, `name` defaulting to `<arch>-<dataset>`.
    """
    runs_dir = Path(runs_dir)
    try:
        make_folder(runs_dir)
        numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _RUN_NAME.match(p.name))]
        label = (name or f"{config.arch}-{dataset_name}") + suffix
        if not re.fullmatch(r"[A-Za-z0-9._-]+", label):
            raise KganError(f"`name` may only use letters, digits, '.', '_' and '-'. Received: "
                            f"name={label}")
        run_dir = runs_dir / f"{max(numbers, default=-1) + 1:05d}-{label}"
        run_dir.mkdir()
        (run_dir / CONFIG).write_text(config.to_json())
    except OSError as e:
        raise KganError(f"Cannot create a run directory in {runs_dir}: {e.strerror or e}"
                        ) from None
    return run_dir


@contextlib.contextmanager
def owned(run_dir: Path):
    """Holds the run's lock while a process trains it: another process that would train the
    same run (a second `--resume`) is refused instead of interleaving its writes."""
    lock = FileLock(run_dir / LOCK)
    try:
        lock.acquire(timeout=0)
        # Only the owner writes these: what `atomic_path` left half-written when a process
        # was killed mid-write is garbage now (report.html is `kgan show`'s, not ours).
        for pattern in ("checkpoints/.*", "samples/.*", ".config-*", ".metrics-*", ".status-*",
                        ".curves-*", ".owner-*"):
            for stale in run_dir.glob(pattern):
                stale.unlink()
        with atomic_path(run_dir / OWNER) as tmp:
            tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
    except Timeout:
        try:  # the lock holder's own record (status.json may be a dead earlier owner's)
            owner = json.loads((run_dir / OWNER).read_text())
        except (OSError, ValueError):
            owner = {}
        owner = owner if isinstance(owner, dict) else {}
        raise KganError(f"{run_dir} is being trained by another process (pid "
                        f"{owner.get('pid', '?')} on {owner.get('host', '?')}): let it finish "
                        "or stop it, then resume") from None
    except OSError as e:
        raise KganError(f"Cannot write to {run_dir}: {e.strerror or e}") from None
    try:
        yield
    finally:
        lock.release()


def newest(runs_dir: str | Path = "runs") -> Path:
    """The highest-numbered run in `runs_dir`; raises `KganError` if there is none."""
    runs_dir = Path(runs_dir)
    runs = list_runs(runs_dir)
    if not runs:
        raise KganError(f"No runs found in {runs_dir}/. Train one with `kgan train`.")
    return runs[-1]


def open_run(run_dir: str | Path) -> tuple[Path, TrainConfig]:
    """Checks that `run_dir` is a kgan run and returns it with its config."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise KganError(f"{run_dir} is a file, not a run directory")
    if not run_dir.is_dir():
        raise KganError(f"Run directory not found: {run_dir}")
    if not (run_dir / CONFIG).is_file():
        raise KganError(f"{run_dir} is not a kgan run (no {CONFIG})")
    return run_dir, TrainConfig.load(run_dir / CONFIG)


def checkpoint(run_dir: Path, best: bool = False) -> Path:
    """The run's latest (or lowest-FID) checkpoint; raises `KganError` if it has none yet."""
    path = run_dir / (BEST if best else CHECKPOINT)
    if not path.is_file():
        hint = "; only runs trained with --eval-every have one" if best else ""
        raise KganError(f"{run_dir} has no checkpoint yet ({path.relative_to(run_dir)}{hint})")
    return path


def append_metrics(run_dir: Path, record: dict) -> None:
    """Appends `record` as one line of `metrics.jsonl`, on a line of its own: after a torn last
    line (a process killed mid-append) it starts a new one, so no whole record is lost."""
    path = run_dir / METRICS
    try:
        with open(path, "ab+") as f:
            line = (json.dumps(record) + "\n").encode()
            if end := f.seek(0, os.SEEK_END):
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a torn last line: this record starts a new one
                    line = b"\n" + line
            f.write(line)
    except OSError as e:
        raise KganError(f"Cannot write {path}: {e.strerror or e}; the records before are "
                        "kept") from None


def read_metrics(run_dir: Path) -> tuple[list[dict], list[str]]:
    """The run's metric records, and a message for each damaged line (skipped, not fatal).

    Safe while another process appends: a half-written last line is reported, not raised.
    """
    try:
        text = (run_dir / METRICS).read_text(errors="replace")  # a binary line is one damaged
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"cannot read {run_dir / METRICS}: {e.strerror or e}"]
    records, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                raise ValueError("no epoch number")
            for key in NUMERIC_METRICS:
                if key in record and not isinstance(record[key], (int, float)):
                    raise ValueError(f"{key} is not a number")
            health = record.get("health")
            if health is not None and not (isinstance(health, dict)
                                           and isinstance(health.get("status"), str)):
                del record["health"]  # the rest of the epoch's record stands
                problems.append(f"{run_dir / METRICS} line {number}: `health` is not a "
                                "watchdog verdict; ignored")
            records.append(record)
        except ValueError as e:
            problems.append(f"{run_dir / METRICS} line {number} is damaged ({e}); skipped")
    return records, problems


def recoveries(records: list[dict]) -> list[dict]:
    """The `--recover` records among a run's metric records, oldest first."""
    return [r for r in records if r.get("source") == "recovery"]


def truncate_metrics(run_dir: Path, last_epoch: int) -> None:
    """Drops metric lines of epochs after `last_epoch` (and damaged ones): a resume redoes them."""
    if not (run_dir / METRICS).exists():
        return
    records, _ = read_metrics(run_dir)
    with atomic_path(run_dir / METRICS) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records if r["epoch"] <= last_epoch))


def write_status(run_dir: Path, status: str, message: str | None = None,
                 health: dict | None = None) -> None:
    """Records what the run is doing: running, finished, interrupted, stopped (early, by a
    callback) or failed (and the
    watchdog's last verdict, `health`, kept from the previous status when not given)."""
    record = {"status": status, "pid": os.getpid(), "host": socket.gethostname(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if message:
        record["message"] = message
    if health is None:
        health = read_status(run_dir).get("health")
    if isinstance(health, dict):
        record["health"] = health
    with atomic_path(run_dir / STATUS) as tmp:
        tmp.write_text(json.dumps(record) + "\n")


def read_status(run_dir: Path) -> dict:
    """The run's status; "running" whose process is gone (on this host) reads as "failed"."""
    try:
        record = json.loads((run_dir / STATUS).read_text())
    except FileNotFoundError:
        return {"status": "unknown"}  # not started yet
    except (OSError, ValueError) as e:
        return {"status": "unknown", "problem": f"{run_dir / STATUS} is damaged ({e})"}
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        return {"status": "unknown", "problem": f"{run_dir / STATUS} is damaged (no status)"}
    if record.get("status") == "running" and record.get("host") == socket.gethostname():
        try:
            os.kill(int(record["pid"]), 0)
        except (ProcessLookupError, KeyError, ValueError, TypeError):
            record.update(status="failed", message="the training process ended without a word")
        except PermissionError:
            pass  # alive, owned by someone else
    return record


def disk_size(path: Path) -> int:
    """Bytes under `path`; files that vanish while counting (a run being written) are skipped."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def summary(run_dir: Path, metrics: tuple[list[dict], list[str]] | None = None) -> dict:
    """One run at a glance, for `kgan runs` and `kgan show` (never raises for a damaged run).

    `metrics` is `read_metrics(run_dir)` when the caller has already read them.
    """
    try:
        config = TrainConfig.load(run_dir / CONFIG)
        settings = {k: getattr(config, k) for k in ("dataset", "arch", "loss", "backend", "epochs")}
        problems = []
    except KganError as e:
        settings = dict.fromkeys(("dataset", "arch", "loss", "backend", "epochs"))
        problems = [str(e)]
    records, damaged = metrics or read_metrics(run_dir)
    status = read_status(run_dir)
    if status.get("status") != "running" and not (run_dir / CHECKPOINT).is_file():
        why = status.get("message") if status.get("status") == "failed" else None
        status = {"status": "failed",  # nothing to resume from
                  "message": "; ".join(filter(None, (why, "no checkpoint")))}
    trained = [r for r in records if "source" not in r]  # not evaluations or recoveries
    last = trained[-1] if trained else {}
    fids = [r["fid"] for r in records if isinstance(r.get("fid"), (int, float))]
    evals = [r for r in records if r.get("source") == "eval"]
    return {
        "name": run_dir.name, "path": str(run_dir), **settings,
        "epochs_done": last.get("epoch", 0), "step": last.get("step", 0),
        "d_loss": last.get("d_loss"), "g_loss": last.get("g_loss"),
        "health": (last.get("health") or {}).get("status"),
        "recoveries": len(recoveries(records)),
        "best_fid": min(fids) if fids else None,
        "last_eval": {k: evals[-1][k] for k in TRANSLATION_METRICS if k in evals[-1]}
        if evals else None, "status": status.get("status", "unknown"),
        "status_message": status.get("message"), "size_bytes": disk_size(run_dir),
        "problems": problems + damaged + ([status["problem"]] if "problem" in status else []),
    }


def list_runs(runs_dir: Path) -> list[Path]:
    """Run directories in `runs_dir`, oldest first."""
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir()
                  if _RUN_NAME.match(p.name) and (p / CONFIG).is_file())
