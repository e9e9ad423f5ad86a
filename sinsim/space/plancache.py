"""Disk cache of contact windows, keyed by a hash of everything a plan depends on.

Entries are ``.npz`` files (no pickles) written atomically; an entry that is
missing, unreadable or written for another key is simply recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .nodes import Satellite
from .tle import export_tle_lines

__all__ = ["WINDOW_COLUMNS", "empty_windows", "cache_key", "save_windows", "load_windows"]

WINDOW_COLUMNS = ["client", "server", "start_s", "end_s", "duration_s", "max_elevation_deg"]
_TEXT_COLUMNS = ("client", "server")


def empty_windows() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in _TEXT_COLUMNS else float) for c in WINDOW_COLUMNS}
    )


def _node_key(node) -> dict:
    """Everything about a node that changes its windows (full-precision elements and TLE text)."""
    if isinstance(node, Satellite):
        s = node.satrec
        numbers = [
            s.satnum,
            s.jdsatepoch,
            s.jdsatepochF,
            s.no_kozai,
            s.ecco,
            s.inclo,
            s.nodeo,
            s.argpo,
            s.mo,
            s.bstar,
            s.ndot,
            s.nddot,
            s.radiusearthkm,
            s.j2,
            s.operationmode,
        ]
        return {
            "kind": node.kind,
            "id": node.id,
            "tle": list(export_tle_lines(s)),
            "elements": [repr(x) for x in numbers],
        }
    return {"kind": node.kind, **{k: repr(v) for k, v in vars(node).items()}}


def cache_key(clients, servers, start_utc_iso: str, options: dict, version: str) -> str:
    """SHA-256 of nodes, scenario start, numeric options (horizon, step, ...) and code version."""
    payload = {
        "version": version,
        "start_utc": start_utc_iso,
        "options": {k: repr(float(v)) for k, v in options.items()},
        "clients": [_node_key(n) for n in clients],
        "servers": [_node_key(n) for n in servers],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def save_windows(path: Path, key: str, df: pd.DataFrame) -> None:
    """Write ``df`` to ``path`` atomically (temporary file + rename)."""
    arrays = {c: df[c].to_numpy(dtype=str if c in _TEXT_COLUMNS else float) for c in WINDOW_COLUMNS}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_windows(path: Path, key: str) -> pd.DataFrame | None:
    """The cached windows, or None if the entry is missing, corrupt or for another key."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            data = {c: z[c] for c in WINDOW_COLUMNS}
    except Exception:  # any unreadable entry is recomputed
        return None
    if len({len(v) for v in data.values()}) != 1:
        return None
    if not len(data["client"]):
        return empty_windows()
    return pd.DataFrame(
        {c: data[c].astype(object if c in _TEXT_COLUMNS else float) for c in WINDOW_COLUMNS}
    )
