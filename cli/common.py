"""What every command shares: backend selection before Keras loads, and one-line errors."""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from kgan.errors import KganError


def select_backend(backend: str | None = None) -> None:
    """Sets the Keras backend (and quiets TensorFlow's C++ logs) before Keras is imported."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != os.environ["KERAS_BACKEND"]:
            fail(f"Keras is already loaded with the {keras.backend.backend()!r} backend")


def fail(message: str) -> None:
    """Prints `Error: message` on stderr and exits with code 1."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def user_errors():
    """Turns `KganError` into one `Error: ...` line and exit code 1 (KGAN_DEBUG=1 re-raises)."""
    try:
        yield
    except KganError as e:
        if os.environ.get("KGAN_DEBUG"):
            raise
        fail(str(e))
