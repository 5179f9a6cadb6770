"""The one exception type for problems in what a user asked for (bad expression, shape
mismatch, unknown preset key, unreadable data...). Doors catch it: the CLI prints it and
exits 2, the panel reports it."""


class MMError(Exception):
    """A user-facing error. The message names the problem and where it is."""
