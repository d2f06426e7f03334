"""The one error type kgan raises for problems a user can fix."""


class KganError(Exception):
    """A user-facing error: bad input, a missing file, a run that cannot continue.

    The CLI prints it as one line, `Error: <message>`, and exits with `exit_code`.
    """

    exit_code = 1


class Interrupted(KganError):
    """Training stopped at once by a second Ctrl-C; the message says what was kept."""

    exit_code = 130  # 128 + SIGINT, as a shell reports it


class NoSplit(KganError):
    """Data without the split asked for (no test/ folder, no x_a_test): the caller may fall
    back to the training split, saying so. Damaged data is a plain `KganError`."""


class NotRecorded(KganError):
    """A result that was computed but could not be recorded (a read-only or full disk): it is
    in `result`, for the caller to show before the error."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), for one-line
    errors that wrap a library's multi-line message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
