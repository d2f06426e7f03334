"""The `kgan` command. Each sub-command lives in its own module and loads Keras only when run."""

import faulthandler

import typer

from cli import data, evaluate, export, runs, sample, show, train, translate

app = typer.Typer(
    name="kgan",
    help="Train GANs with Keras 3 and ship their generators to TensorFlow Serving.",
    no_args_is_help=True,
    add_completion=False,
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
app.add_typer(data.app, name="data")


@app.callback()
def _root() -> None:
    """Train GANs with Keras 3 and ship their generators to TensorFlow Serving."""


def main() -> None:
    # A crash inside native code (TensorFlow, oneDNN, PyTorch) then prints where each Python
    # thread was, instead of only "Aborted".
    faulthandler.enable()
    app()
