"""`kgan edit`: move a latent along a direction and write what it becomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.common import AsJson, echo_files, select_backend_of, user_errors


def edit(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN_OR_EXPORT", show_default=False,
        help="A noise-to-image run directory, or its export (saved_models/NAME[/VERSION]: "
             "searched in z).")],
    source: Annotated[str | None, typer.Argument(
        metavar="LATENT_OR_IMAGE",
        help="A latent kgan project wrote (.npy), an image (projected first), or seed:N (a "
             "sampled latent).", show_default=False)] = None,
    direction: Annotated[str | None, typer.Option(
        help="class:K, pca:N, from:POS_DIR,NEG_DIR (folders of images) or mix:OTHER "
             "(stylegan; OTHER a latent, image or seed:N).")] = None,
    strength: Annotated[str, typer.Option(
        help="Range of the move, in the latents' spread along the direction.")] = "-3..3",
    frames: Annotated[int, typer.Option(help="Images in the strip and the GIF.")] = 7,
    out: Annotated[Path, typer.Option(help="Folder for the strip (.png) and GIF.")] = Path(
        "edits"),
    listing: Annotated[bool, typer.Option(
        "--list", help="Write strips of the first principal directions (pca:0 .. pca:7) and "
        "exit.")] = False,
    space: Annotated[Literal["z", "w", "w+"] | None, typer.Option(
        help="Space of a projected image or a seed:N latent.",
        show_default="w for stylegan, else z")] = None,
    label: Annotated[int | None, typer.Option(
        help="A conditional run's class for an image or seed:N.")] = None,
    steps: Annotated[int, typer.Option(help="Projection steps for an image.")] = 500,
    as_json: AsJson = False,
) -> None:
    """Edit LATENT_OR_IMAGE with RUN's generator and print the written files."""
    with user_errors():
        select_backend_of(run_dir)
        from kgan.edit import edit_files  # loads Keras: after the backend is chosen

        written = edit_files(run_dir, source, direction, strength, frames, out, listing,
                             space, label, steps)
    echo_files(written, as_json)
