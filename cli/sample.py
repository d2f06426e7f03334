"""`kgan sample`: draw images from a run or an exported model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import RunsDir, select_backend, user_errors


def sample(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run to sample from.", show_default="the newest run in --runs-dir")] = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Number of images.")] = 64,
    seed: Annotated[int, typer.Option(help="Noise seed: same seed, same images.")] = 0,
    out: Annotated[Path | None, typer.Option(
        help="Grid PNG path.",
        show_default="RUN_DIR/samples/sample-seed<SEED>.png, or ./<name>-v<version>-seed<SEED>.png"
        " with --model")] = None,
    individual: Annotated[Path | None, typer.Option(
        help="Also write one PNG per image (seed<SEED>-<index>.png) into this folder.")] = None,
    nrow: Annotated[int | None, typer.Option(
        help="Images per grid row.", show_default="near-square")] = None,
    model: Annotated[Path | None, typer.Option(
        help="Sample an exported model instead: saved_models/NAME (newest version) or "
             "saved_models/NAME/VERSION.")] = None,
    best: Annotated[bool, typer.Option(
        "--best", help="Sample checkpoints/best.keras (lowest FID, from --eval-every).")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Draw images from the newest run (or RUN_DIR, or --model) and print the written paths."""
    with user_errors():
        from kgan import runs
        from kgan.sample import check_n, write

        check_n(n)
        if nrow is not None:
            check_n(nrow, "nrow")
        if model is not None:
            select_backend("tensorflow")  # a SavedModel runs on TensorFlow
            from kgan import export

            version_dir = export.resolve(model)
            batch = export.draw(version_dir, n, seed)
            out = out or Path(f"{version_dir.parent.name}-v{version_dir.name}-seed{seed}.png")
        else:
            run_dir, config = runs.open_run(run_dir or runs.newest(runs_dir))
            select_backend(config.backend)  # seeds give the same images on the same backend
            from kgan.sample import draw_from_run

            batch = draw_from_run(run_dir, n, seed, best)
            out = out or run_dir / runs.SAMPLES / f"sample-seed{seed}.png"
        for path in write(batch, out, individual, seed, nrow):
            typer.echo(path)
