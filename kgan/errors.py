"""The one error type kgan raises for problems a user can fix."""


class KganError(Exception):
    """A user-facing error: bad input, a missing file, a run that cannot continue.

    The CLI prints it as one line, `Error: <message>`, and exits with code 1.
    """


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), for one-line
    errors that wrap a library's multi-line message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
