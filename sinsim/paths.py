"""Where sinsim keeps its data sets and caches, whatever the working directory.

Data sets (``DATA_DIR``), first that applies:

1. ``training.data_dir`` of the scenario;
2. ``$SINSIM_DATA_DIR``;
3. the clone's ``data/`` when sinsim runs from a source checkout that has one (``make data``
   fills it, so ``make`` users keep their data where it always was);
4. the per-user data directory: ``~/.local/share/sinsim`` on Linux (``$XDG_DATA_HOME``),
   ``~/Library/Application Support/sinsim`` on macOS, ``%LOCALAPPDATA%\\sinsim`` on Windows
   (platformdirs).

Caches (contact plans, numba's compiled kernels): ``$SINSIM_CACHE_DIR``, else the per-user
cache directory (``~/.cache/sinsim`` on Linux). Neither ever needs a writable package directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "sinsim"
PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout() -> Path | None:
    """The root of the clone sinsim is imported from (it has ``pyproject.toml`` and
    ``scenarios/`` beside the package), or None for an installed wheel."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "scenarios").is_dir():
        return root
    return None


def user_data_dir() -> Path:
    """The per-user data directory (platformdirs), whether or not it exists yet."""
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def default_data_dir() -> Path:
    """``DATA_DIR`` when the scenario names none: ``$SINSIM_DATA_DIR``, else the clone's
    ``data/`` (when there is one), else the per-user data directory."""
    env = os.environ.get("SINSIM_DATA_DIR")
    if env:
        return Path(env).expanduser()
    root = source_checkout()
    if root is not None and (root / "data").is_dir():
        return root / "data"
    return user_data_dir()


def data_dir_origin() -> str:
    """Why :func:`default_data_dir` is what it is, in a few words (for ``sinsim data list``)."""
    if os.environ.get("SINSIM_DATA_DIR"):
        return "$SINSIM_DATA_DIR"
    root = source_checkout()
    if root is not None and (root / "data").is_dir():
        return "the clone's data/"
    return "the per-user data directory"


def cache_dir() -> Path:
    """``$SINSIM_CACHE_DIR``, else the per-user cache directory (platformdirs)."""
    env = os.environ.get("SINSIM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def point_numba_cache() -> None:
    """Send numba's on-disk cache to ``cache_dir()/numba`` unless ``$NUMBA_CACHE_DIR`` is set;
    call before ``import numba`` (numba reads it once, at import)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
