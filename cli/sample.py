"""`kgan sample`: draw images from a run or an exported model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import AsJson, RunsDir, UseEma, echo_files, select_backend, user_errors
from kgan import runs
from kgan.config import at_most, positive_int, seed_value
from kgan.errors import KganError
from kgan.labels import parse_labels

MAX_SAMPLES = 10_000  # images in one grid
MAX_FRAMES = 1_000  # frames of one walk


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
             "strip, one row per walk (per class for conditional runs), and an animated GIF.",
        show_default="off; writes RUN_DIR/samples/interpolate-seed<SEED>.png")] = None,
    truncation: Annotated[float, typer.Option(
        help="stylegan: pull each style this far from the average towards its own (1: none, "
             "0: the average image; 0.5-0.7 trades variety for quality).")] = 1.0,
    ema: UseEma = True,
    runs_dir: RunsDir = Path("runs"),
    as_json: AsJson = False,
) -> None:
    """Draw images from the newest run (or RUN_DIR, or --model) and print the written paths."""
    with user_errors():
        if label is not None and labels is not None:
            raise KganError("Use --label or --labels, not both")
        rows = parse_labels(labels) if labels is not None else None
        n = n if n is not None else 64 if rows is None else 8
        at_most(MAX_SAMPLES, "one grid of them is 100 images a side; draw more with other "
                "--seed values")("n", n * len(rows or [1]))
        if interpolate is not None:
            at_most(MAX_FRAMES, "a GIF of more frames is minutes to write and too large to "
                    "show")("interpolate", interpolate)
        seed_value("seed", seed)  # a seed keys the same noise on every backend and export
        if nrow is not None:
            positive_int("nrow", nrow)
        if model is None:
            run_dir, config = runs.open_run(run_dir or runs.newest(runs_dir))
            select_backend(config.backend)  # seeds give the same images on the same backend
        else:
            select_backend("tensorflow")  # a SavedModel runs on TensorFlow
        from kgan import draw, images  # loads Keras: after the backend is chosen

        if model is None:
            source = draw.from_run(run_dir, best, ema=ema)
            kind = "sample" if interpolate is None else "interpolate"
            out = out or run_dir / runs.SAMPLES / f"{kind}-seed{seed}.png"
        else:
            source = draw.from_export(model)
            version = source.version_dir
            walk = "" if interpolate is None else "-interpolate"
            out = out or Path(f"{version.parent.name}-v{version.name}{walk}-seed{seed}.png")
        draw.png_path("out", out)  # before drawing: a grid is written as PNG
        source.truncate(truncation)
        if interpolate is not None:
            walks = draw.interpolate(source, interpolate, seed,
                                     rows if rows is not None else
                                     None if label is None else [label])
            written = draw.write_interpolation(walks, out)
        else:
            batch = (draw.draw(source, n, seed, labels=label) if rows is None
                     else draw.class_rows(source, rows, n, seed))
            written = draw.write(images.to_uint8(batch), out, individual, seed,
                                 nrow or (n if rows else None))
    echo_files(written, as_json)
