"""The `kgan` command. Each sub-command lives in its own module and loads Keras only when run."""

import faulthandler
from typing import Annotated

import typer

from cli import data, edit, evaluate, export, project, runs, sample, show, train, translate
from kgan import __version__

app = typer.Typer(
    name="kgan",
    help="Train GANs with Keras 3 and ship their generators to TensorFlow Serving.",
    no_args_is_help=True,
    add_completion=True,  # kgan --install-completion
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(train.train)
app.command("sample")(sample.sample)
app.command("translate")(translate.translate)
app.command("export")(export.export)
app.command("runs")(runs.runs)
app.command("show")(show.show)
app.command("eval")(evaluate.evaluate)
app.command("project")(project.project)
app.command("edit")(edit.edit)
app.add_typer(data.app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print kgan's version and exit.")
        ] = False) -> None:
    """Train GANs with Keras 3 and ship their generators to TensorFlow Serving."""


def main() -> None:
    # A crash inside native code (TensorFlow, oneDNN, PyTorch) then prints where each Python
    # thread was, instead of only "Aborted".
    faulthandler.enable()
    app()
