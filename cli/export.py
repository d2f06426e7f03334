"""`kgan export`: write a run's generator as a TensorFlow Serving SavedModel (or as Keras,
LiteRT or ONNX files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.common import AsJson, RunsDir, UseEma, select_backend, user_errors
from kgan import runs
from kgan.errors import KganError


def export(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run to export.", show_default="the newest run in --runs-dir")] = None,
    name: Annotated[str | None, typer.Option(
        help="Model name (the folder TF Serving serves).",
        show_default="the run's name without its number")] = None,
    version: Annotated[int | None, typer.Option(
        help="Version number.", show_default="one more than the newest")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing version.")] = False,
    best: Annotated[bool, typer.Option(
        "--best", help="Export checkpoints/best.keras (lowest FID, from --eval-every).")] = False,
    format: Annotated[Literal["savedmodel", "keras", "litert", "onnx"], typer.Option(
        "--format", help="savedmodel: TF Serving's signatures. keras, litert, onnx: the "
        "generator's forward paths (z to image, image to image), a float32 file each, in "
        "<out-dir>/<name>/<format>/<version>/.")] = "savedmodel",
    max_batch: Annotated[int | None, typer.Option(
        help="Largest n the `generate` signature accepts (savedmodel).",
        show_default="1024")] = None,
    out_dir: Annotated[Path, typer.Option(help="TF Serving model root.")] = Path("saved_models"),
    ema: UseEma = True,
    verify: Annotated[bool, typer.Option(
        help="Check the export in a TensorFlow-only process first: every signature against "
        "the run's generator, one image alone against a batch, finite outputs.")] = True,
    runs_dir: RunsDir = Path("runs"),
    as_json: AsJson = False,
) -> None:
    """Export the newest run (or RUN_DIR) to saved_models/<name>/<version>/ and print the path.

    The export is checked before it is published (--no-verify skips it): a failed check
    publishes nothing and exits 1."""
    with user_errors():
        if max_batch is not None and format != "savedmodel":
            raise KganError(f"--max-batch applies to --format savedmodel (its {format} "
                            f"files take any batch). Received: max_batch={max_batch}")
        select_backend("tensorflow")  # SavedModels are TensorFlow graphs, whatever trained the run
        from kgan.export import export as export_run  # loads TensorFlow and Keras
        from kgan.serving import metadata

        target = export_run(run_dir or runs.newest(runs_dir), out_dir, name, version, force,
                            1024 if max_batch is None else max_batch, best, ema, verify,
                            format)
        about = metadata(target)
        if verify:
            checked = about["verified"]
            if format == "savedmodel":
                typer.echo(f"Checked in TensorFlow alone: {len(checked['signatures'])} "
                           "signatures answer as the run's generator does (largest "
                           f"difference {checked['max_difference']:.2g} gray levels; one image "
                           f"alone: {checked['batch_of_one']:.2g})", err=True)
            else:
                typer.echo(f"Checked in {checked['runtime']}: {', '.join(about['files'])} "
                           "answer as the run's float32 generator does (largest difference "
                           f"{checked['max_difference']:.2g} gray levels; one image alone: "
                           f"{checked['batch_of_one']:.2g})", err=True)
    if as_json:
        typer.echo(json.dumps({"path": str(target), **{key: about[key] for key in (
            "name", "version", "family", "format", "signatures", "files") if key in about},
            "verified": about.get("verified")}))
    else:
        typer.echo(target)
