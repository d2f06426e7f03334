"""`kgan runs`: a table of the runs in a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail
from kgan import runs as runs_lib

STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow",
                "stopped": "yellow", "failed": "red"}


def runs(
    runs_dir: Annotated[Path, typer.Argument(help="Folder of run directories.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead.")] = False,
) -> None:
    """List runs: dataset, arch, loss, backend, progress, last losses, best FID, health,
    status, size."""
    if not runs_dir.is_dir():
        fail(f"No such folder: {runs_dir}")
    summaries = [runs_lib.summary(run) for run in runs_lib.list_runs(runs_dir)]
    if as_json:
        typer.echo(json.dumps(summaries, indent=2))
        return
    err = Console(stderr=True, soft_wrap=True)
    if not summaries:
        err.print(f"No runs in {runs_dir}/")
        return
    table = Table(title=f"Runs in {runs_dir}/")
    for column in ("name", "dataset", "arch", "loss", "backend", "epochs", "d_loss", "g_loss",
                   "best FID", "last eval", "health", "status", "size"):
        table.add_column(column, justify="right" if column in ("epochs", "size") else "left")
    for s in summaries:
        style = STATUS_STYLE.get(s["status"], "")
        table.add_row(
            s["name"], _str(s["dataset"]), _str(s["arch"]), _str(s["loss"]), _str(s["backend"]),
            f"{s['epochs_done']}/{_str(s['epochs'])}", _num(s["d_loss"]), _num(s["g_loss"]),
            _num(s["best_fid"]), _eval(s["last_eval"]), _health(s),
            f"[{style}]{s['status']}[/]" if style else s["status"],
            human_size(s["size_bytes"]))
    out = Console()
    if not out.is_terminal:  # a pipe or a file: no terminal width to fit, so do not truncate
        out = Console(width=200)
    out.print(table)
    for s in summaries:
        for problem in s["problems"]:
            err.print(f"[yellow]warning:[/] {s['name']}: {problem}", highlight=False)


def human_size(n: float) -> str:
    """1536 -> "1.5 KB" (binary units, B to TB)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _eval(metrics: dict | None) -> str:
    """A translation run's last `kgan eval`, short: "L1 0.054 PSNR 19.2 SSIM 0.741"."""
    if not metrics:
        return "-"
    names = {"l1": ("L1", ".3f"), "psnr": ("PSNR", ".1f"), "ssim": ("SSIM", ".3f"),
             "cycle_l1": ("cycle", ".3f"), "target_share": ("to B", ".0%")}
    return " ".join(f"{name} {metrics[key]:{spec}}" for key, (name, spec) in names.items()
                    if key in metrics) or "-"


HEALTH_STYLE = {"warning": "yellow", "diverged": "red", "non_finite": "red"}


def _health(summary: dict) -> str:
    """The last epoch's verdict of the watchdog, and the recoveries: "ok, 1 recovery"."""
    verdict = summary.get("health") or "-"
    if verdict in HEALTH_STYLE:
        verdict = f"[{HEALTH_STYLE[verdict]}]{verdict}[/]"
    count = summary.get("recoveries") or 0
    return verdict + (f", {count} recover{'y' if count == 1 else 'ies'}" if count else "")


def _str(value) -> str:
    return "-" if value is None else str(value)


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"
