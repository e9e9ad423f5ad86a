"""Exceptions that the command line turns into exit codes.

``InputError`` and its subclasses are *bad input* (exit status 2, a one-paragraph message and no
traceback); anything else raised while running is a failure of the run (exit status 1).
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a scenario, a data file or a dataset that is missing or invalid."""


class ConfigError(InputError):
    """A scenario file (or a ``--set`` override) that is missing, malformed or invalid.

    The message names the file and the key path, e.g.
    ``scenarios/x.yaml: links.uplink.rate_bps: must be > 0, got -5``.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        self.detail = message
        parts = [p for p in (file, key) if p]
        super().__init__(": ".join([*parts, message]))


class DatasetUnavailable(InputError):
    """No source of a dataset could be found; the message says how to get it."""


class WriteFailed(OSError):
    """A results file (a table, a checkpoint) could not be written: no space left, a read-only
    directory, a file removed under the run. A failure of the run (exit status 1), told in one
    line that names the file; the rows of the finished rounds stay on disk, and ``--resume``
    continues from the last checkpoint once the disk is back."""
