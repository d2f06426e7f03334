"""`kgan show`: one run's config, last metrics and files (and an HTML report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.common import RunsDir, user_errors
from kgan import report, runs


def show(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run to show.", show_default="the newest run in --runs-dir")] = None,
    open_report: Annotated[bool, typer.Option(
        "--open", help="Write report.html (samples timeline, curves, config) and print its "
                       "file:// address to open in a browser.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Show a run: status, config, last metrics and its files."""
    with user_errors():
        run_dir, _ = runs.open_run(run_dir or runs.newest(runs_dir))
    metrics = runs.read_metrics(run_dir)
    info, records = runs.summary(run_dir, metrics), metrics[0]
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"[bold]{run_dir}[/]  status: {info['status']}"
              + (f" ({info['status_message']})" if info["status_message"] else ""))
    out.print(f"epoch {info['epochs_done']}/{info['epochs']}, step {info['step']}")
    out.print("\n[bold]config[/]")
    for key, value in json.loads((run_dir / runs.CONFIG).read_text()).items():
        out.print(f"  {key}: {json.dumps(value)}")
    trained = [r for r in records if "source" not in r]  # not evaluations or recoveries
    evals = [r for r in records if r.get("source") == "eval"]
    for title, shown in (("last metrics", trained), ("last evaluation (kgan eval)", evals)):
        if shown:
            out.print(f"\n[bold]{title}[/]")
            record = shown[-1]
            for key, value in record.items():
                if key != "protocol":
                    out.print(f"  {key}: {value:.6g}" if isinstance(value, float)
                              else f"  {key}: {json.dumps(value)}")
            if isinstance(record.get("protocol"), dict):  # how the numbers were made
                out.print("  [bold]metric card[/]")
                for key, value in record["protocol"].items():
                    if key == "warnings":
                        for warning in value:
                            out.print(f"    [yellow]warning:[/] {warning}")
                    else:
                        out.print(f"    {key}: {json.dumps(value)}")
    out.print("\n[bold]files[/]")
    samples = sorted((run_dir / runs.SAMPLES).glob("*.png"))
    for path in (runs.CONFIG, runs.CHECKPOINT, runs.METRICS, runs.CURVES, runs.TENSORBOARD):
        if (run_dir / path).exists():
            out.print(f"  {run_dir / path}")
    if samples:
        out.print(f"  {samples[-1]} (newest of {len(samples)} sample grids)")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for problem in info["problems"]:
        err.print(f"[yellow]warning:[/] {problem}")
    if open_report:
        with user_errors():
            out.print(f"\nreport: {report.write(run_dir).resolve().as_uri()}")
