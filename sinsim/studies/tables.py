"""The one reader of output tables: a run's results directory (``rounds.csv``, ``transfers.csv``,
``clients.csv``, ``contacts.csv``, ``nodes.csv``, ``nodes.tle``, ``summary.json``) and a sweep's
(``runs.parquet`` or ``runs.csv``, ``sweep.json``). Plots, analyses and the report, Table I and
fidelity commands read through here, so they agree on what a directory holds and say the same
thing when it holds nothing.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from sinsim.errors import InputError

__all__ = ["TABLES", "RUN_COLUMNS", "MissingTable", "results_path", "load_table", "load_rounds",
           "load_results", "load_tles", "load_summary", "run_start", "is_sweep", "load_sweep",
           "sweep_description", "swept_keys"]

TABLES = ("rounds", "transfers", "clients", "contacts", "nodes")
RUN_COLUMNS = ("run_id", "seed")  # in front of every sweep table; never swept keys


class MissingTable(FileNotFoundError, InputError):
    """A directory without the table asked for: bad input on the command line (exit 2)."""


# ------------------------------------------------------------------------- a run's directory
def results_path(results_dir: str | Path) -> Path:
    """``results_dir`` as a path, or :class:`MissingTable` when it is not a directory."""
    d = Path(results_dir)
    if not d.is_dir():
        raise MissingTable(f"{d}: no such results directory")
    return d


def load_table(results_dir: str | Path, name: str) -> pd.DataFrame:
    """``results_dir/<name>.csv`` as a DataFrame (``name`` is e.g. ``"transfers"``)."""
    path = results_path(results_dir) / f"{name}.csv"
    if not path.is_file():
        raise MissingTable(f"{path}: no {name}.csv (is this a sinsim results directory?)")
    return pd.read_csv(path)


def load_rounds(results_dir: str | Path) -> pd.DataFrame:
    return load_table(results_dir, "rounds")


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The tables a results directory holds, by name (``rounds``, ``transfers``, ``clients``,
    ``contacts``, ``nodes``); missing ones are left out."""
    d = results_path(results_dir)
    return {name: pd.read_csv(d / f"{name}.csv") for name in TABLES
            if (d / f"{name}.csv").is_file()}


def load_tles(results_dir: str | Path) -> list:
    """The satellites of ``results_dir/nodes.tle`` (:class:`sinsim.space.Satellite`, ids from
    the TLE names)."""
    from sinsim.space.orbits import load_tle

    path = results_path(results_dir) / "nodes.tle"
    if not path.is_file():
        raise MissingTable(f"{path}: no nodes.tle")
    return load_tle(path)


def load_summary(results_dir: str | Path) -> dict[str, Any]:
    """``results_dir/summary.json`` (scenario, resolved scenario, versions, per algorithm)."""
    path = results_path(results_dir) / "summary.json"
    if not path.is_file():
        raise MissingTable(f"{path}: no summary.json (is this a sinsim results directory?)")
    summary = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not a run's summary (a JSON object)")
    return summary


def run_start(results_dir: str | Path) -> datetime | None:
    """The scenario's ``start`` (UTC) from summary.json, if the directory has one."""
    try:
        start = load_summary(results_dir)["resolved_scenario"]["start"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(start, datetime) and start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return start if isinstance(start, datetime) else None


# ---------------------------------------------------------------------- a sweep's directory
def is_sweep(directory: str | Path) -> bool:
    """Whether ``directory`` holds a sweep's combined table."""
    d = Path(directory)
    return (d / "runs.csv").is_file() or (d / "runs.parquet").is_file()


def load_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """The combined table of a sweep directory: one row per (run_id, algorithm, round) with
    ``seed`` and one column per swept key path. ``runs.parquet`` when it is there, pyarrow
    imports and it is not older than ``runs.csv``; else ``runs.csv``. Raises
    :class:`MissingTable` naming the directory when it has neither."""
    d = Path(sweep_dir)
    csv, parquet = d / "runs.csv", d / "runs.parquet"
    if parquet.is_file() and importlib.util.find_spec("pyarrow") is not None and (
            not csv.is_file() or parquet.stat().st_mtime_ns >= csv.stat().st_mtime_ns):
        return pd.read_parquet(parquet)
    if not csv.is_file():
        raise MissingTable(f"{d}: no runs.csv (not a sweep's output directory; "
                           "`python -m sinsim sweep SWEEP.yaml --out DIR` writes one)")
    return pd.read_csv(csv)


def sweep_description(sweep_dir: str | Path) -> dict[str, Any]:
    """``sweep_dir/sweep.json`` (the sweep as run: keys, set, grid, zip, seeds), or ``{}``."""
    try:
        meta = json.loads((Path(sweep_dir) / "sweep.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def swept_keys(runs: pd.DataFrame, sweep_dir: str | Path | None = None,
               listed: Iterable[str] = ()) -> list[str]:
    """The swept scenario keys of a sweep table, in column order: the columns named by a key
    path (with a '.', e.g. ``training.lr``), plus those that ``listed`` names or that the
    description of ``sweep_dir`` (sweep.json: its ``keys``, or the keys of its ``grid`` and
    ``zip``) lists, which may have no '.' (``algorithms``). ``seed`` is never a swept key: it
    is what error bars go over."""
    names = set(listed)
    if sweep_dir is not None:
        meta = sweep_description(sweep_dir)
        for field in ("keys", "grid", "zip"):
            if isinstance(meta.get(field), dict | list):
                names |= {str(k) for k in meta[field]}
    return [c for c in runs.columns if c not in RUN_COLUMNS and ("." in c or c in names)]
