"""`kgan project`: find the latents whose generated images match given images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.common import AsJson, counting_progress, select_backend_of, user_errors


def project(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN_OR_EXPORT", show_default=False,
        help="A noise-to-image run directory, or its export (saved_models/NAME[/VERSION]: "
             "searched in z).")],
    inputs: Annotated[Path, typer.Argument(
        metavar="IMAGES", help="An image (png/jpg) or a folder of them (searched recursively).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        help="Folder for each image's projection (.png), latent (.npy), search (.gif) and "
             "record (.json), with the inputs' names.")],
    space: Annotated[Literal["z", "w", "w+"] | None, typer.Option(
        help="Latent space: z; w or w+ (one style per layer) for stylegan.",
        show_default="w for stylegan, else z")] = None,
    label: Annotated[int | None, typer.Option(
        help="A conditional run's class to project with.",
        show_default="the nearest class per image")] = None,
    steps: Annotated[int, typer.Option(help="Adam steps per image.")] = 500,
    distance: Annotated[Literal["lpips", "classifier", "discriminator", "pixel"] | None,
                        typer.Option(
        help="Perceptual distance (beside the pixels'): LPIPS (VGG16 weights needed), kgan's "
             "evaluation classifier's features, the run's discriminator's, or the pixels alone.",
        show_default="lpips where its weights are here, else classifier")] = None,
    batch_size: Annotated[int, typer.Option(help="Images projected at once.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the search's starts and noise.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Project IMAGES into RUN's latent space and print each image's PSNR and SSIM.

    The search is StyleGAN2's projector: Adam with a learning-rate ramp, noise on the latent
    early, and (stylegan) searched, regularized noise images."""
    with user_errors():
        select_backend_of(run_dir)
        from kgan.project import project_files  # loads Keras: after the backend is chosen

        with counting_progress("Projecting", "steps") as progress:
            records = project_files(run_dir, inputs, out, space, label, steps, distance,
                                    batch_size, seed, on_step=progress)
    if as_json:
        typer.echo(json.dumps({"projections": records}))
    else:
        for record in records:
            typer.echo(f"{record['image']}\tPSNR {record['psnr']:.2f} dB\tSSIM "
                       f"{record['ssim']:.3f}")
