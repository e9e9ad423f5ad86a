"""Coastlines for maps, offline: Natural Earth's 1:110m land as TopoJSON, shipped with sinsim
(``sinsim/studies/data/land-110m.json``, from npm's ``world-atlas`` 2.0.2; source and licence in
``sinsim/studies/data/README.md``). Nothing is fetched: the static ground-track figure and the
run's web page (:mod:`sinsim.studies.view`) both draw these lines.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["LAND_110M", "coastlines", "coastline_xy"]

LAND_110M = Path(__file__).resolve().parent / "data" / "land-110m.json"


def _decode_arc(arc: list, scale: tuple[float, float], translate: tuple[float, float]
                ) -> np.ndarray:
    """One TopoJSON arc (delta-encoded quantized positions) as ``(n, 2)`` lon/lat degrees."""
    q = np.cumsum(np.asarray(arc, dtype=float), axis=0)
    return q * np.asarray(scale) + np.asarray(translate)


@lru_cache(maxsize=1)
def coastlines() -> tuple[np.ndarray, ...]:
    """Every coastline of the shipped land data as ``(n, 2)`` arrays of (lon_deg, lat_deg),
    split where a line would jump across the antimeridian. In land-110m every arc is a
    coastline (the land polygons share no borders)."""
    topo = json.loads(LAND_110M.read_text(encoding="utf-8"))
    t = topo["transform"]
    lines = []
    for arc in topo["arcs"]:
        xy = _decode_arc(arc, tuple(t["scale"]), tuple(t["translate"]))
        cuts = np.flatnonzero(np.abs(np.diff(xy[:, 0])) > 180) + 1
        lines += [p for p in np.split(xy, cuts) if len(p) > 1]
    return tuple(lines)


def coastline_xy(decimals: int = 2) -> tuple[list, list]:
    """All coastlines as two flat lists (lon, lat) with ``None`` between lines: one line trace
    for a plotting library; rounded to ``decimals`` to keep pages small."""
    xs: list = []
    ys: list = []
    for line in coastlines():
        xs += np.round(line[:, 0], decimals).tolist() + [None]
        ys += np.round(line[:, 1], decimals).tolist() + [None]
    return xs, ys
