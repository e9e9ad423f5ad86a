"""Node descriptions: satellites, ground stations and UAVs (frozen dataclasses with a string ``id``).

Re-exported by :mod:`sinsim.space.orbits`, which also computes their positions.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import ClassVar

import numpy as np
from sgp4.api import Satrec
from sgp4.conveniences import sat_epoch_datetime
from skyfield.api import EarthSatellite

from .constants import EARTH_RADIUS_M, WGS72_RADIUS_M, WGS84_E2

__all__ = ["Satellite", "GroundStation", "UAV", "Node", "geodetic_to_itrs_m", "PropagationError",
           "ElementAgeWarning", "warn_element_age", "ELEMENT_AGE_WARN_DAYS"]


class PropagationError(ValueError):
    """SGP4 failed for a satellite (e.g. decayed orbit) at some sim time."""


# --------------------------------------------------------------------------- nodes
def _check_id(node_id) -> None:
    if not isinstance(node_id, str) or not node_id:
        raise ValueError(f"node id must be a non-empty string, got {node_id!r}")


def _check_latlon(owner: str, lat_deg: float, lon_deg: float) -> None:
    if not (math.isfinite(lat_deg) and -90.0 <= lat_deg <= 90.0):
        raise ValueError(f"{owner}: latitude {lat_deg!r} deg is outside [-90, 90]")
    if not (math.isfinite(lon_deg) and -180.0 <= lon_deg <= 360.0):
        raise ValueError(f"{owner}: longitude {lon_deg!r} deg is outside [-180, 360]")


@dataclass(frozen=True, eq=False)
class Satellite:
    """A satellite propagated by SGP4 from ``satrec`` (equality is identity)."""

    id: str
    satrec: Satrec = field(repr=False)
    # where the elements came from: a file and its 1-based element set (``record``), or how
    # they were made (``walker``, ``orbit``); ``nodes.csv`` records both
    source: str | None = None
    record: int | None = None
    kind: ClassVar[str] = "satellite"

    def __post_init__(self):
        _check_id(self.id)
        if not isinstance(self.satrec, Satrec):
            raise TypeError(f"satellite {self.id!r}: satrec must be an sgp4.api.Satrec")

    @property
    def catalog_number(self) -> int:
        """The NORAD catalog number (an Alpha-5 ``A0001`` in a TLE is 100001)."""
        return int(self.satrec.satnum)

    @property
    def epoch_utc(self) -> datetime:
        """The element set's epoch (UTC, to the microsecond)."""
        return sat_epoch_datetime(self.satrec).astimezone(timezone.utc)

    def earth_satellite(self, ts) -> EarthSatellite:
        """Skyfield ``EarthSatellite`` for this node (named by its id)."""
        sat = EarthSatellite.from_satrec(self.satrec, ts)
        sat.name = self.id
        return sat

    @property
    def mean_altitude_m(self) -> float:
        """Altitude of the SGP4 mean semi-major axis above the WGS72 equator."""
        return float((self.satrec.a - 1.0) * WGS72_RADIUS_M)


@dataclass(frozen=True)
class GroundStation:
    """A fixed station on the WGS84 ellipsoid with an elevation mask."""

    id: str
    lat_deg: float
    lon_deg: float
    altitude_m: float = 0.0
    min_elevation_deg: float = 10.0
    kind: ClassVar[str] = "ground_station"

    def __post_init__(self):
        _check_id(self.id)
        _check_latlon(f"ground station {self.id!r}", self.lat_deg, self.lon_deg)
        if not math.isfinite(self.altitude_m):
            raise ValueError(f"ground station {self.id!r}: altitude_m must be finite")
        if not (math.isfinite(self.min_elevation_deg) and -90.0 < self.min_elevation_deg < 90.0):
            raise ValueError(f"ground station {self.id!r}: min_elevation_deg must be in (-90, 90)")

    def itrs_m(self) -> np.ndarray:
        return _station_itrs_m(self.lat_deg, self.lon_deg, self.altitude_m).copy()

    def up_unit(self) -> np.ndarray:
        """Unit normal to the ellipsoid (geodetic zenith) in ITRS."""
        lat, lon = math.radians(self.lat_deg), math.radians(self.lon_deg)
        return np.array(
            [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)]
        )


@dataclass(frozen=True)
class UAV:
    """A UAV at constant altitude and speed: a circular loiter or a closed waypoint loop.

    Loiter: starts due east of ``loiter_center`` and circles counter-clockwise
    (seen from above).  Waypoints: flown in order at constant ground speed and
    back to the first one.  Paths use a local tangent-plane (equirectangular)
    approximation about the loiter centre / first waypoint, good for radii and
    legs up to a few hundred km away from the poles.
    """

    id: str
    altitude_m: float
    speed_mps: float
    loiter_center: tuple[float, float] | None = None
    loiter_radius_m: float | None = None
    waypoints: tuple[tuple[float, float], ...] | None = None
    kind: ClassVar[str] = "uav"

    def __post_init__(self):
        _check_id(self.id)
        owner = f"UAV {self.id!r}"
        if not (math.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise ValueError(f"{owner}: speed_mps must be > 0")
        if not math.isfinite(self.altitude_m):
            raise ValueError(f"{owner}: altitude_m must be finite")
        if (self.loiter_center is None) == (self.waypoints is None):
            raise ValueError(f"{owner}: give exactly one of loiter_center or waypoints")
        if self.loiter_center is not None:
            lat, lon = (float(v) for v in self.loiter_center)
            _check_latlon(owner, lat, lon)
            object.__setattr__(self, "loiter_center", (lat, lon))
            r = self.loiter_radius_m
            if r is None or not (math.isfinite(r) and r > 0):
                raise ValueError(f"{owner}: loiter_radius_m must be > 0 for a loiter")
        else:
            if self.loiter_radius_m is not None:
                raise ValueError(f"{owner}: loiter_radius_m only applies to a loiter")
            pts = tuple((float(a), float(b)) for a, b in self.waypoints)
            if len(pts) < 2:
                raise ValueError(f"{owner}: need at least 2 waypoints")
            for lat, lon in pts:
                _check_latlon(owner, lat, lon)
            object.__setattr__(self, "waypoints", pts)
        ref_lat = self.reference_latlon[0]
        if abs(ref_lat) > 85.0:
            raise ValueError(
                f"{owner}: the tangent-plane path model is not valid within 5 deg of a pole"
            )
        if self.waypoints is not None and self._path_length_m() <= 0.0:
            raise ValueError(f"{owner}: waypoints enclose a path of zero length")

    @property
    def reference_latlon(self) -> tuple[float, float]:
        return self.loiter_center if self.loiter_center is not None else self.waypoints[0]

    def _radii(self, lat_rad):
        """Meridional and prime-vertical radii of curvature (m) plus the altitude, at ``lat_rad``."""
        w = np.sqrt(1.0 - WGS84_E2 * np.sin(lat_rad) ** 2)
        return EARTH_RADIUS_M * (
            1.0 - WGS84_E2
        ) / w**3 + self.altitude_m, EARTH_RADIUS_M / w + self.altitude_m

    def _to_latlon(self, east_m, north_m):
        """Local (east, north) metres about the reference point -> geodetic degrees.

        North maps through the meridional radius at the reference latitude;
        east through the parallel's radius at the point's own latitude
        (a sinusoidal-style projection: distances along both axes are kept,
        errors are second order in offset / Earth radius).
        """
        lat0, lon0 = (math.radians(v) for v in self.reference_latlon)
        m_lat, _ = self._radii(lat0)
        lat = lat0 + north_m / m_lat
        _, n_lon = self._radii(lat)
        return np.degrees(lat), np.degrees(lon0 + east_m / (n_lon * np.cos(lat)))

    def _waypoints_en_m(self) -> np.ndarray:
        """Closed waypoint loop in local (east, north) metres, the inverse of :meth:`_to_latlon`."""
        lat0, lon0 = (math.radians(v) for v in self.reference_latlon)
        m_lat, _ = self._radii(lat0)
        pts = np.radians(np.array(self.waypoints + (self.waypoints[0],)))
        _, n_lon = self._radii(pts[:, 0])
        dlon = (pts[:, 1] - lon0 + np.pi) % (2 * np.pi) - np.pi
        return np.column_stack([dlon * n_lon * np.cos(pts[:, 0]), (pts[:, 0] - lat0) * m_lat])

    def _path_length_m(self) -> float:
        return float(np.sum(np.hypot(*np.diff(self._waypoints_en_m(), axis=0).T)))

    def latlon_deg(self, times_s) -> tuple[np.ndarray, np.ndarray]:
        """Geodetic latitude and longitude (deg) along the path at sim seconds."""
        t = np.asarray(times_s, dtype=float)
        if self.loiter_center is not None:
            theta = self.speed_mps * t / self.loiter_radius_m
            east, north = self.loiter_radius_m * np.cos(theta), self.loiter_radius_m * np.sin(theta)
        else:
            en = self._waypoints_en_m()
            seg = np.hypot(*np.diff(en, axis=0).T)
            cum = np.concatenate([[0.0], np.cumsum(seg)])
            s = np.mod(self.speed_mps * t, cum[-1])
            k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
            frac = np.where(seg[k] > 0, (s - cum[k]) / np.where(seg[k] > 0, seg[k], 1.0), 0.0)
            east = en[k, 0] + frac * (en[k + 1, 0] - en[k, 0])
            north = en[k, 1] + frac * (en[k + 1, 1] - en[k, 1])
        return self._to_latlon(east, north)

    def itrs_m(self, times_s) -> np.ndarray:
        lat, lon = self.latlon_deg(times_s)
        return geodetic_to_itrs_m(lat, lon, self.altitude_m)


Node = Satellite | GroundStation | UAV


@functools.lru_cache(maxsize=4096)
def _station_itrs_m(lat_deg: float, lon_deg: float, altitude_m: float) -> np.ndarray:
    """A station's fixed position, computed once (the link delays ask for it every transfer)."""
    return geodetic_to_itrs_m(lat_deg, lon_deg, altitude_m)


def geodetic_to_itrs_m(lat_deg, lon_deg, altitude_m) -> np.ndarray:
    """WGS84 geodetic coordinates to ITRS metres, shape ``(..., 3)`` (same as Skyfield's wgs84)."""
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon = np.radians(np.asarray(lon_deg, dtype=float))
    h = np.asarray(altitude_m, dtype=float)
    sin_lat = np.sin(lat)
    n = EARTH_RADIUS_M / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
    xy = (n + h) * np.cos(lat)
    return np.stack(
        np.broadcast_arrays(
            xy * np.cos(lon), xy * np.sin(lon), (n * (1.0 - WGS84_E2) + h) * sin_lat
        ),
        axis=-1,
    )


# --------------------------------------------------------------------------- element-set age
# Public (GP) element sets with SGP4 are good to about 1 km within a few days of epoch in LEO
# (Kelso 2007, AAS 07-127); beyond that the error grows, mostly along track. The growth rate
# used below is the commonly quoted LEO rule of thumb of roughly 1-3 km per day (cited with
# Vallado et al. 2006, "Revisiting Spacetrack Report #3", AIAA 2006-6753); low, high-drag
# objects drift faster (Riesing 2015, SSC15-VIII-5: 10-30 km 1-sigma in-track after one day for
# ISS-deployed CubeSats). See docs/space.md.
ELEMENT_AGE_WARN_DAYS = 3.0
SGP4_DRIFT_KM_PER_DAY = (1.0, 3.0)


class ElementAgeWarning(UserWarning):
    """The scenario starts far from the epochs of the element sets it reads."""


def element_age_message(sats: Sequence[Satellite], start_utc: datetime,
                        threshold_days: float = ELEMENT_AGE_WARN_DAYS) -> str | None:
    """What :func:`warn_element_age` says, or None when every satellite read from a file
    (``record`` set) has its epoch within ``threshold_days`` of ``start_utc``."""
    read = [s for s in sats if isinstance(s, Satellite) and s.record is not None]
    ages = [((start_utc - s.epoch_utc).total_seconds() / 86400.0, s) for s in read]
    old = [(a, s) for a, s in ages if abs(a) > threshold_days]
    if not old:
        return None
    age, sat = max(old, key=lambda x: abs(x[0]))
    lo, hi = (abs(age) * r for r in SGP4_DRIFT_KM_PER_DAY)
    when = "after" if age > 0 else "before"
    return (
        f"the scenario starts {abs(age):.1f} days {when} the epoch of {sat.id!r} "
        f"({sat.epoch_utc:%Y-%m-%dT%H:%M:%SZ}, {sat.source} record {sat.record}); "
        f"{len(old)} of {len(read)} element sets are more than {threshold_days:g} days from "
        f"the start. SGP4 positions from public element sets are good to about 1 km within a "
        f"few days of epoch in LEO (Kelso 2007) and then drift, mostly along track, by roughly "
        f"{SGP4_DRIFT_KM_PER_DAY[0]:g}-{SGP4_DRIFT_KM_PER_DAY[1]:g} km per day (Vallado et al. "
        f"2006; more for low, high-drag orbits): expect errors of order {lo:,.0f}-{hi:,.0f} km "
        f"here. Use element sets with epochs near `start` (see docs/space.md)."
    )


def warn_element_age(sats: Sequence[Satellite], start_utc: datetime,
                     threshold_days: float = ELEMENT_AGE_WARN_DAYS) -> str | None:
    """Warn (:class:`ElementAgeWarning`) when satellites read from files have epochs far from
    the start; returns the message (None when there is nothing to say)."""
    message = element_age_message(sats, start_utc, threshold_days)
    if message:
        warnings.warn(message, ElementAgeWarning, stacklevel=2)
    return message
