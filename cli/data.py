"""`kgan data info` and `kgan data pack`: what a source holds, and its packed form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import counting_progress, user_errors
from kgan.config import CROPS, image_size, one_of

app = typer.Typer(help="Inspect a dataset, or pack it for many runs or workers.",
                  no_args_is_help=True)

Source = Annotated[str, typer.Argument(
    help="A folder of images, a .zip, TFRecord files (a glob), tfds:NAME, an .npz/.npy or a "
         "built-in (mnist, fashion_mnist, cifar10).")]
ImageSize = Annotated[int | None, typer.Option(
    help="Square size the images are read at.", show_default="the dataset's own (encoded: 64)")]
Crop = Annotated[str, typer.Option(help="center (largest centered square) or none (stretch).")]


@app.command()
def info(source: Source, image_size: ImageSize = None, crop: Crop = "center",
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
         ) -> None:
    """Print the count, shape, classes and bytes of SOURCE, and how training reads it."""
    with user_errors():
        _check(image_size, crop)
        from kgan import data  # NumPy and Pillow, no Keras

        described = data.describe(source, image_size, crop)
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in described.items():
        if key == "classes" and value:
            value = f"{len(value)}: " + ", ".join(f"{k} ({v})" for k, v in value.items())
        elif key.startswith("bytes"):
            value = f"{value / 1e6:,.1f} MB"
        elif isinstance(value, list):
            value = "x".join(str(v) for v in value)
        table.add_row(key.replace("_", " "), "none" if value is None else str(value))
    Console(soft_wrap=True).print(table)


@app.command()
def pack(source: Source,
         out: Annotated[Path, typer.Argument(help="The .npz to write (uint8 x_train, y_train; "
                                                  "uncompressed, so training memory-maps it).")],
         image_size: ImageSize = None, crop: Crop = "center",
         mirror: Annotated[bool, typer.Option("--mirror", help="Add x-flipped copies.")] = False,
         skip_bad: Annotated[bool, typer.Option(
             "--skip-bad", help="Leave out images that cannot be decoded.")] = False) -> None:
    """Write SOURCE decoded and resized as one .npz that `kgan train --dataset OUT` reads
    memory-mapped: for a shared file system, or many workers. Prints OUT."""
    with user_errors():
        _check(image_size, crop)
        if out.suffix != ".npz":
            from kgan.errors import KganError

            raise KganError(f"OUT must end in .npz. Received: out={out}")
        from kgan import data

        with counting_progress() as progress:
            dataset = data.load(source, image_size, crop=crop, mirror=mirror,
                                skip_bad=skip_bad, progress=progress)
            data.write_npz(dataset, out, progress)
    typer.echo(out)


def _check(size: int | None, crop: str) -> None:
    if size is not None:
        image_size("image_size", size)
    one_of(CROPS)("crop", crop)
