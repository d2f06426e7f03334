"""`kgan sample`: draw images from a run or an exported model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import RunsDir, UseEma, select_backend, user_errors


def sample(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run to sample from.", show_default="the newest run in --runs-dir")] = None,
    n: Annotated[int | None, typer.Option(
        "--n", "-n", help="Number of images (with --labels: per class).",
        show_default="64; with --labels 8")] = None,
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
    label: Annotated[int | None, typer.Option(
        help="Conditional runs: draw this class only.", show_default="the classes in turn")
    ] = None,
    labels: Annotated[str | None, typer.Option(
        help="Conditional runs: one row per class, e.g. 0-9 or 0,3,5 (the same latents in "
             "each row).")] = None,
    interpolate: Annotated[int | None, typer.Option(
        help="Write a walk of this many frames between random latents (spherical): a PNG "
             "strip, one row per walk (per class for conditional runs), and an animated GIF.")
    ] = None,
    ema: UseEma = True,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Draw images from the newest run (or RUN_DIR, or --model) and print the written paths."""
    with user_errors():
        from kgan import runs
        from kgan.errors import KganError
        from kgan.sample import check_n, parse_labels, write

        if label is not None and labels is not None:
            raise KganError("Use --label or --labels, not both")
        rows = parse_labels(labels) if labels is not None else None
        n = n if n is not None else 64 if rows is None else 8
        check_n(n)
        if nrow is not None:
            check_n(nrow, "nrow")
        if model is not None:
            if interpolate is not None:
                raise KganError("--interpolate samples a run directory, not --model")
            select_backend("tensorflow")  # a SavedModel runs on TensorFlow
            from kgan import export

            version_dir = export.resolve(model)
            picked = label if rows is None else [r for r in rows for _ in range(n)]
            batch = export.draw(version_dir, n * len(rows or [0]), seed, labels=picked)
            out = out or Path(f"{version_dir.parent.name}-v{version_dir.name}-seed{seed}.png")
        else:
            run_dir, config = runs.open_run(run_dir or runs.newest(runs_dir))
            select_backend(config.backend)  # seeds give the same images on the same backend
            from kgan import images, sample
            from kgan.training import load_gan

            gan, _ = load_gan(run_dir, best, ema=ema)
            if interpolate is not None:
                walks = sample.interpolate(gan, interpolate, seed,
                                           rows if rows is not None else
                                           None if label is None else [label])
                out = out or run_dir / runs.SAMPLES / f"interpolate-seed{seed}.png"
                for path in sample.write_interpolation(walks, out):
                    typer.echo(path)
                return
            if rows is not None:
                batch = sample.class_rows(gan, rows, n, seed)
            else:
                batch = sample.draw(gan, n, seed, labels=label)
            batch = images.to_uint8(batch)
            out = out or run_dir / runs.SAMPLES / f"sample-seed{seed}.png"
        for path in write(batch, out, individual, seed, nrow or (n if rows else None)):
            typer.echo(path)
