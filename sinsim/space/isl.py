"""Inter-satellite links: which pairs of satellites have a crosslink, and when it is up.

Two topologies (compare Hypatia's ``+Grid``, Kassing et al. 2020):

* :func:`plus_grid_pairs` for a Walker shell: every satellite is linked to its two in-plane
  neighbours (slot ``s`` to ``s + 1``, around the ring) and, in each adjacent plane, to one
  satellite: slot ``s`` to slot ``s + o`` of the next plane, with the offset ``o`` that makes
  these links shortest on average over an orbit (it depends on the phasing ``F``, so it is
  found from positions, not assumed); every satellite has four links. A *delta* shell's planes
  span 360 degrees of node and its last plane is linked to its first. A *star* shell's planes span 180 degrees:
  across the seam between its last and first plane the satellites fly in opposite directions
  (relative speeds of ~15 km/s), which +Grid does not link.
* :func:`all_pairs` for any set of satellites (TLE/OMM sets): every pair; the window
  computation keeps the ones in range.

Either way :func:`isl_windows` computes when each link is up: while the range is within
``max_range_m`` and the line of sight clears a sphere ``grazing_altitude_m`` above the Earth,
with the contact plan's vectorised grid-and-refine algorithm (:func:`pair_windows`).
:func:`pair_ranges_m` samples the ranges for propagation delays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .contacts import DEFAULT_MEMORY_MB, pair_windows
from .orbits import Satellite, states_itrs_components
from .timebase import Timebase

__all__ = ["plus_grid_pairs", "all_pairs", "isl_windows", "pair_ranges_m", "sample_times_s",
           "ISL_COLUMNS"]

ISL_COLUMNS = ["a", "b", "start_s", "end_s", "duration_s"]


def plus_grid_pairs(satellites: Sequence[Satellite], planes: int, timebase: Timebase, *,
                    pattern: str = "delta") -> list[tuple[int, int]]:
    """The +Grid links of a Walker shell of ``planes`` planes, satellites plane-major (as
    :func:`~sinsim.space.orbits.walker_constellation` makes them): pairs ``(i, j)`` with
    ``i < j``, each once, sorted."""
    n = len(satellites)
    if planes <= 0 or n % planes:
        raise ValueError(f"{n} satellites do not make {planes} equal planes")
    per_plane = n // planes
    pairs: set[tuple[int, int]] = set()
    if per_plane > 1:
        for p in range(planes):
            for s in range(per_plane if per_plane > 2 else 1):
                a, b = p * per_plane + s, p * per_plane + (s + 1) % per_plane
                pairs.add((min(a, b), max(a, b)))
    cross = planes - 1 if pattern == "star" or planes < 3 else planes
    if planes > 1 and cross:
        # one slot offset per pair of planes (every satellite keeps four links): the one whose
        # links are shortest on average over an orbit
        period_s = 2 * math.pi / satellites[0].satrec.no_kozai * 60.0
        (x, y, z), _ = states_itrs_components(list(satellites), timebase,
                                              np.linspace(0.0, period_s, 16, endpoint=False))
        pos = np.stack([x, y, z], axis=-1)  # (n, t, 3)
        for p in range(cross):
            q = (p + 1) % planes
            here = pos[p * per_plane:(p + 1) * per_plane]
            there = pos[q * per_plane:(q + 1) * per_plane]
            mean_km = [np.linalg.norm(here - np.roll(there, -o, axis=0), axis=2).mean()
                       for o in range(per_plane)]
            offset = int(np.argmin(mean_km))
            for s in range(per_plane):
                a, b = p * per_plane + s, q * per_plane + (s + offset) % per_plane
                pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


def all_pairs(n: int) -> list[tuple[int, int]]:
    """Every pair ``(i, j)``, ``i < j``, of ``n`` satellites."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def isl_windows(satellites: Sequence[Satellite], pairs: Sequence[tuple[int, int]],
                timebase: Timebase, horizon_s: float, *, step_s: float = 30.0,
                max_range_m: float = 5000e3, grazing_altitude_m: float = 80e3,
                memory_mb: float = DEFAULT_MEMORY_MB) -> pd.DataFrame:
    """When each link of ``pairs`` is up over ``[0, horizon_s]``: a DataFrame of
    :data:`ISL_COLUMNS` (``a``, ``b`` node ids), sorted by a, b, start_s (computed in chunks of
    pairs whose states fit in ``memory_mb``; the result does not depend on it)."""
    df = pair_windows(satellites, pairs, timebase, horizon_s, step_s=step_s,
                      max_range_m=max_range_m, grazing_altitude_m=grazing_altitude_m,
                      memory_mb=memory_mb)
    df = df.rename(columns={"client": "a", "server": "b"})[ISL_COLUMNS]
    return df.sort_values(["a", "b", "start_s"], kind="stable").reset_index(drop=True)


def pair_ranges_m(satellites: Sequence[Satellite], pairs: Sequence[tuple[int, int]],
                  timebase: Timebase, times_s: np.ndarray) -> np.ndarray:
    """The range of every pair at ``times_s``: an array (len(pairs), len(times_s)) in metres."""
    times_s = np.asarray(times_s, dtype=float)
    (x, y, z), _ = states_itrs_components(list(satellites), timebase, times_s)
    i = np.array([p[0] for p in pairs], dtype=np.intp)
    j = np.array([p[1] for p in pairs], dtype=np.intp)
    return np.sqrt((x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 + (z[i] - z[j]) ** 2)


def sample_times_s(horizon_s: float, step_s: float) -> np.ndarray:
    """A grid over ``[0, horizon_s]`` with both ends (for :func:`pair_ranges_m`)."""
    n = max(1, math.ceil(horizon_s / step_s))
    return np.linspace(0.0, horizon_s, n + 1)
