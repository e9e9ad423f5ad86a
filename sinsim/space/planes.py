"""Orbital planes: which satellites share one (for data partitions by plane).

Two satellites are in the same plane when their inclinations differ by at most
``inclination_tolerance_deg`` and their right ascensions of the ascending node (RAAN, the mean
elements ``satrec.inclo`` and ``satrec.nodeo``) by at most ``raan_tolerance_deg`` (on the
circle). For a near-equatorial orbit (inclination within ``EQUATORIAL_DEG`` of 0 or 180 deg) the
RAAN is undefined: such satellites form one plane per inclination.

Exact for a Walker shell (every satellite of a plane has the plane's RAAN). For element sets read
from TLE/OMM files each RAAN is at its own epoch, and J2 turns the planes by several degrees a
day in LEO, so sets with epochs days apart, or a shell whose planes lie closer than the
tolerance, need a tolerance chosen for them: below half the RAAN spacing of the planes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .nodes import Satellite

EQUATORIAL_DEG = 0.5


def orbital_planes(satellites: Sequence[Satellite], raan_tolerance_deg: float = 2.0,
                   inclination_tolerance_deg: float = 1.0) -> list[int]:
    """The plane of each satellite: 0, 1, ... in the order each plane is first met (so for a
    Walker shell, plane-major, satellite ``i`` is in plane ``i // sats_per_plane``). Each
    satellite joins the first plane whose first satellite is within the tolerances.
    Raises TypeError naming a node that is not a satellite."""
    refs: list[tuple[float, float]] = []  # (inclination, RAAN) of each plane's first satellite
    out = []
    for sat in satellites:
        if not isinstance(sat, Satellite):
            raise TypeError(f"{getattr(sat, 'id', sat)!r} is not a satellite: it has no "
                            f"orbital plane")
        inc = math.degrees(sat.satrec.inclo)
        raan = math.degrees(sat.satrec.nodeo) % 360.0
        for p, (inc_p, raan_p) in enumerate(refs):
            if abs(inc - inc_p) > inclination_tolerance_deg:
                continue
            if _equatorial(inc) or _equatorial(inc_p) or _circle_diff(raan, raan_p) <= raan_tolerance_deg:
                out.append(p)
                break
        else:
            refs.append((inc, raan))
            out.append(len(refs) - 1)
    return out


def _equatorial(inc_deg: float) -> bool:
    return min(inc_deg, 180.0 - inc_deg) < EQUATORIAL_DEG


def _circle_diff(a_deg: float, b_deg: float) -> float:
    d = abs(a_deg - b_deg) % 360.0
    return min(d, 360.0 - d)
