"""Ground tracks: the WGS84 geodetic point under each satellite over time (pure numpy).

Satellites are propagated as everywhere in ``space`` (:func:`positions_itrs_m`: SGP4, TEME ->
ITRS with Skyfield's GMST-1982 angle); the Earth-fixed positions are then turned into geodetic
latitude and longitude on the WGS84 ellipsoid, as Skyfield's ``wgs84.subpoint_of`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np

from .constants import EARTH_RADIUS_M, WGS84_E2
from .nodes import Satellite
from .orbits import positions_itrs_m
from .timebase import Timebase

__all__ = ["itrs_to_latlon_deg", "subpoints", "orbit_period_s", "epoch_utc", "ground_track"]

_UNIX_EPOCH_JD = 2440587.5  # Julian date of 1970-01-01T00:00:00 UTC
_LATITUDE_ITERATIONS = 4  # from the spherical guess: < 1e-9 deg below 2,000 km altitude


def itrs_to_latlon_deg(xyz_m) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 geodetic latitude and longitude (degrees; longitude in [-180, 180]) of ITRS
    positions in metres, shape ``(..., 3)``; each result has shape ``(...)``."""
    xyz = np.asarray(xyz_m, dtype=float)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    r = np.hypot(x, y)
    lat = np.arctan2(z, r)
    for _ in range(_LATITUDE_ITERATIONS):  # tan(lat) = (z + N e^2 sin(lat)) / r
        sin_lat = np.sin(lat)
        n = EARTH_RADIUS_M / np.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
        lat = np.arctan2(z + n * WGS84_E2 * sin_lat, r)
    return np.degrees(lat), np.degrees(np.arctan2(y, x))


def subpoints(satellites: Sequence[Satellite], timebase: Timebase,
              times_s) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (degrees) under each satellite at each sim time: two arrays of
    shape ``(n_satellites, n_times)``."""
    return itrs_to_latlon_deg(positions_itrs_m(list(satellites), timebase, times_s))


def orbit_period_s(satellite: Satellite) -> float:
    """The anomalistic period of the SGP4 mean motion (seconds)."""
    return 2.0 * math.pi / satellite.satrec.no_kozai * 60.0  # rad/min -> s


def epoch_utc(satellite: Satellite) -> datetime:
    """The satellite's element-set epoch (TLE epochs are UTC)."""
    days = (satellite.satrec.jdsatepoch - _UNIX_EPOCH_JD) + satellite.satrec.jdsatepochF
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=days)


def ground_track(satellite: Satellite, start_utc: datetime | None = None, *,
                 orbits: float = 1.5, step_s: float = 30.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times_s, lat_deg, lon_deg)`` of one satellite every ``step_s`` over ``orbits``
    revolutions from ``start_utc`` (default: its epoch); times are seconds since the start."""
    if not (step_s > 0 and orbits >= 0):
        raise ValueError(f"need step_s > 0 and orbits >= 0, got {step_s!r} and {orbits!r}")
    timebase = Timebase(start_utc if start_utc is not None else epoch_utc(satellite))
    times = np.arange(0.0, orbits * orbit_period_s(satellite) + step_s, step_s)
    lat, lon = subpoints([satellite], timebase, times)
    return times, lat[0], lon[0]

