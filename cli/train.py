"""`kgan train`: train a GAN, or resume one.

The options are derived from `kgan.config.TrainConfig`: each field made by `option()` is one
`--flag` with its default and help text, so a new setting is one edit there.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Annotated

import typer

from cli.common import counting_progress, select_backend, user_errors
from kgan import config as config_lib
from kgan import runs
from kgan.config import TrainConfig
from kgan.errors import KganError

# `kgan train --help` in panels: each option of `TrainConfig` is in one (tests/test_cli.py).
PANELS = {
    "Options": ("config",),
    "Data": ("dataset", "image_size", "crop", "mirror", "skip_bad"),
    "Model": ("arch", "latent_dim", "base_filters", "attention", "mapping_layers",
              "style_mixing", "conditional", "init_from", "ema", "ema_start", "spectral_norm"),
    "Loss and regularisation": ("loss", "d_steps", "gp_weight", "r1", "r1_every", "augment",
                                "ada_target", "ada_kimg"),
    "Optimiser and schedule": ("epochs", "batch_size", "lr", "beta1", "beta2", "seed",
                               "steps_per_epoch"),
    "Image to image (pix2pix, cyclegan)": ("l1", "cycle", "identity", "pool_size",
                                           "decay_epochs", "jitter"),
    "Devices and speed": ("backend", "strategy", "jit", "steps_per_execution",
                          "mixed_precision"),
    "Output and logging": ("sample_every", "checkpoint_every", "recover", "tensorboard",
                           "track", "curves", "eval_every", "eval_n", "eval_features", "runs_dir",
                           "name", "resume", "quiet"),
}
_PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}


def _option(field: dataclasses.Field, annotation) -> inspect.Parameter:
    meta = field.metadata
    flags = meta["flags"] or ("--" + field.name.replace("_", "-"),)
    # Typer shows a plain default itself; a described one ("one pass over the data") as text.
    shown = True if meta["shown"] is None else meta["shown"].replace("`", "")
    # A choice is listed in --help, and a value outside it is a usage error (exit 2).
    choices = getattr(meta["check"], "choices", None)
    if choices:
        annotation = typing.Literal[choices] | None if field.default is None \
            else typing.Literal[choices]
    info = typer.Option(*flags, help=meta["help"], show_default=shown, envvar=meta["envvar"],
                        rich_help_panel=_PANEL_OF[field.name])
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                             annotation=Annotated[annotation, info])


# Options of the command itself, not settings of the run.
_COMMAND_OPTIONS = {
    "config": (Annotated[Path | None, typer.Option(
        help="Settings from a JSON, TOML or YAML file whose keys are these options (a run's "
             "config.json is one); options given here override it.", show_default="none",
        rich_help_panel=_PANEL_OF["config"])], None),
    "runs_dir": (Annotated[Path, typer.Option(help="Where run directories go.",
                                              rich_help_panel=_PANEL_OF["runs_dir"])],
                 Path("runs")),
    "name": (Annotated[str | None, typer.Option(
        help="Run directory suffix.", show_default="<arch>-<dataset>",
        rich_help_panel=_PANEL_OF["name"])], None),
    "resume": (Annotated[Path | None, typer.Option(
        help="Continue this run directory from its last checkpoint; options equal to the "
             "run's are accepted, and only those that do not change what it trains "
             "(epochs, strategy, jit, ..., eval settings) may differ.",
        rich_help_panel=_PANEL_OF["resume"])], None),
    "quiet": (Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.",
                                           rich_help_panel=_PANEL_OF["quiet"])], False),
}


def train(ctx: typer.Context, **options) -> None:
    """Train a GAN; print the run directory on stdout when done.

    Ctrl-C stops after the current step, saves a checkpoint and prints the command to resume.
    """
    config_file, runs_dir, name, resume, quiet = (options.pop(key) for key in _COMMAND_OPTIONS)
    with user_errors():
        given = {key: value for key, value in options.items()
                 if getattr(ctx.get_parameter_source(key), "name", "") == "COMMANDLINE"}
        if config_file is not None:
            if resume is not None:
                raise KganError("--config starts a new run; a resumed run keeps its own "
                                f"config.json ({resume})")
            options.update({**config_lib.read_options(config_file), **given})
        if resume is not None:
            if name is not None:
                raise KganError(f"--name names a new run; a resumed run keeps its directory "
                                f"{resume}")
            _, config = runs.open_run(resume)  # resume() checks what `given` may change
        else:
            config = TrainConfig(**options).validate()
        select_backend(config.backend)
        from kgan import training  # loads Keras: after the backend is chosen
        from kgan.callbacks import RichProgress

        progress = [] if quiet else [RichProgress(config.batch_size)]
        notify = None if quiet else lambda line: typer.echo(line, err=True)
        with counting_progress() as packing:
            packing = None if quiet else packing
            if resume is not None:
                result = training.resume(resume, callbacks=progress, notify=notify,
                                         progress=packing, **given)
            else:
                result = training.train(config, runs_dir=runs_dir, name=name,
                                        callbacks=progress, notify=notify, progress=packing)
    typer.echo(result.run_dir)
    if result.status == "stopped":
        typer.echo(f"Stopped early by a callback after epoch {result.epoch} ({result.step} "
                   f"steps). Continue with:\n  kgan train --resume {result.run_dir}", err=True)
    if result.status == "interrupted":
        typer.echo(
            f"Interrupted after {result.step} steps (epoch {result.epoch + 1} in progress). "
            f"Checkpoint saved. Resume with:\n  kgan train --resume {result.run_dir}", err=True)
        raise typer.Exit(130)


_hints = typing.get_type_hints(TrainConfig)
_parameters = {field.name: _option(field, _hints[field.name]) for field in config_lib.options()}
_parameters.update({key: inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=annotation)
                    for key, (annotation, default) in _COMMAND_OPTIONS.items()})
if set(_parameters) != set(_PANEL_OF):  # a new option must find its panel
    raise RuntimeError(f"kgan train: options without a panel: {set(_parameters) - set(_PANEL_OF)}")
train.__signature__ = inspect.Signature(  # in the panels' order, as --help shows them
    [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    + [_parameters[name] for name in _PANEL_OF])
train.__annotations__ = {p.name: p.annotation for p in train.__signature__.parameters.values()}
