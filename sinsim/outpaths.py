"""Output paths of the command line, checked before any work starts: a ``--out`` that cannot be
written is bad input (exit 2) naming that path, not a failure after the run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sinsim.errors import InputError


class OutputPathError(InputError):
    """A ``--out`` that cannot be written: the message names that path (not the scenario)."""


def _output_dir(path: str | Path, *, create: bool = True) -> Path:
    """``path`` as a directory this process can write into, created (with its parents) if
    need be: checked before any work starts, so that a bad ``--out`` is bad input (exit 2)
    and leaves nothing behind, not a failure after the run. ``create=False`` only checks that
    it exists and is writable, or could be created (for commands that read their input after
    this check and create the directory themselves)."""
    out = Path(path)
    try:
        if out.exists() and not out.is_dir():
            raise OutputPathError(f"--out {out}: is a file, not a directory")
        missing = [d for d in (out, *out.parents) if not d.exists()][::-1]
        if not create:
            base = out.parents[len(missing) - 1] if missing else out
            if not base.is_dir():
                raise OutputPathError(f"--out {out}: cannot create the directory: {base} is a "
                                      "file")
            if not os.access(base, os.W_OK | os.X_OK):
                raise OutputPathError(f"--out {out}: cannot write into {base}: permission "
                                      "denied")
            return out
    except OSError as e:  # a parent that cannot be searched
        raise OutputPathError(f"--out {out}: {_why(e, out)}") from None
    for i, d in enumerate(missing):
        try:
            d.mkdir()
        except OSError as e:
            for made in reversed(missing[:i]):
                made.rmdir()
            raise OutputPathError(f"--out {out}: cannot create the directory: "
                                  f"{_why(e, d)}") from None
    try:
        with tempfile.TemporaryFile(dir=out, prefix=".sinsim-probe-"):
            pass
    except OSError as e:
        for made in reversed(missing):
            made.rmdir()
        raise OutputPathError(f"--out {out}: cannot write into the directory: "
                              f"{_why(e, out)}") from None
    return out


def _output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file that can be written (its folder exists and is writable; it is not
    a directory), checked before the tables are read; errors name the option ``flag``."""
    out = Path(path)
    folder = out.parent
    if out.is_dir():
        raise OutputPathError(f"{flag} {out}: is a directory, not a file")
    if not folder.is_dir():
        raise OutputPathError(f"{flag} {out}: no such directory {str(folder)!r}")
    if (out.exists() and not os.access(out, os.W_OK)) or not os.access(folder, os.W_OK):
        raise OutputPathError(f"{flag} {out}: cannot write the file: permission denied")
    return out


def _why(error: OSError, path: Path) -> str:
    """Why ``path`` could not be made: the ancestor that is a file, else the system's word."""
    for d in path.parents:
        try:
            if d.exists() and not d.is_dir():
                return f"{d} is a file"
        except OSError:  # cannot even look
            break
    return (error.strerror or str(error)).lower()
