"""`kgan translate`: translate an image or a folder of images with a pix2pix or cyclegan model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import AsJson, echo_files, select_backend_of, user_errors
from kgan.config import one_of


def translate(
    model: Annotated[Path, typer.Argument(
        help="A pix2pix or cyclegan run directory, or its export (saved_models/NAME or "
             "saved_models/NAME/VERSION).",
        show_default=False)],
    inputs: Annotated[Path, typer.Argument(
        metavar="INPUT", help="An image (png/jpg) or a folder of them (searched recursively).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        help="Folder for the outputs: PNGs with the inputs' names (sub-folders kept).")],
    direction: Annotated[str, typer.Option(
        help="a2b, or b2a (cyclegan: B -> A).")] = "a2b",
    as_json: AsJson = False,
) -> None:
    """Translate INPUT with MODEL and print the written files.

    Inputs are converted to the model's channels, and resized (bicubic) to its size where
    they differ.
    """
    with user_errors():
        one_of(("a2b", "b2a"))("direction", direction)
        select_backend_of(model)
        from kgan import draw  # loads Keras: after the backend is chosen

        written = draw.translate_files(draw.translator(model), inputs, out, direction)
    echo_files(written, as_json)
