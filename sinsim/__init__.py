"""sinsim: a discrete-event simulator of federated learning over Space Information Networks.

The public Python API (:mod:`sinsim.api`), for notebooks and scripts:

- :func:`load_scenario` — a validated scenario from a file or a bundled name, with overrides;
- :func:`run` — run it, returning its tables as DataFrames (a :class:`Run`);
- :func:`load_run` — a finished run's tables from its results directory;
- :func:`sweep` — run a study and return its combined table.

``__version__`` is sinsim's version, written in ``sinsim/_version.py`` only (``pyproject.toml``,
``sinsim --version`` and ``summary.json`` read it). The API is imported on first use, so
``import sinsim`` stays light.
"""

from sinsim._version import __version__

__all__ = ["Run", "__version__", "load_run", "load_scenario", "run", "sweep"]


def __getattr__(name: str):
    if name in ("Run", "load_run", "load_scenario", "run", "sweep"):
        from sinsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'sinsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
