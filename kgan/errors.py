"""The one error type kgan raises for problems a user can fix."""


class KganError(Exception):
    """A user-facing error: bad input, a missing file, a run that cannot continue.

    The CLI prints it as one line, `Error: <message>`, and exits with code 1.
    """
