"""Node descriptions (satellites, ground stations, UAVs) and their positions.

All positions are Earth-fixed (ITRS) Cartesian metres.  Satellites are
propagated with ``sgp4`` (vectorised ``SatrecArray``: one propagation of each
satellite serves every station and pair) and rotated TEME -> ITRS with
Skyfield's own GMST-1982 angle (see :meth:`Timebase.sgp4_inputs`), exactly the
rotation Skyfield applies in ``EarthSatellite.find_events``.  Polar motion is
not applied (Skyfield's built-in timescale has none either).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sgp4.api import SGP4_ERRORS, WGS72, Satrec, SatrecArray

from .constants import SECONDS_PER_DAY, WGS72_J2, WGS72_RADIUS_M, WGS72_XKE_PER_MIN
from .nodes import (
    UAV,
    ElementAgeWarning,
    GroundStation,
    Node,
    PropagationError,
    Satellite,
    geodetic_to_itrs_m,
    warn_element_age,
)
from .omm import OMMFormatError, load_omm
from .timebase import Timebase
from .tle import (
    TLEFormatError,
    export_tle_lines,
    format_tle_file,
    parse_tle_text,
    read_text,
    select_records,
    unique_ids,
)

__all__ = [
    "Satellite",
    "GroundStation",
    "UAV",
    "Node",
    "TLEFormatError",
    "OMMFormatError",
    "PropagationError",
    "ElementAgeWarning",
    "warn_element_age",
    "walker_constellation",
    "circular_satellite",
    "load_tle",
    "load_omm",
    "export_tle",
    "write_tle_file",
    "positions_itrs_m",
    "states_itrs",
    "states_itrs_at",
    "states_itrs_components",
    "geodetic_to_itrs_m",
    "nodes_table",
]

UAV_FD_STEP_S = 0.5  # central-difference step for UAV velocities (paths are piecewise smooth)


# --------------------------------------------------------------------------- Walker
def _kozai_mean_motion_rad_per_min(altitude_m: float, inclination_rad: float) -> float:
    """Kozai mean motion for ``sgp4init`` so that a circular orbit's mean radius is R + h.

    SGP4 converts its input (Kozai) mean motion to the Brouwer one (``initl``)
    and adds the J2 short-period radial term ``-1.5 k2/a^2 (3cos^2 i - 1) a``
    (per-orbit mean).  Both are inverted here by fixed-point iteration with
    the WGS72 constants sgp4 uses (Vallado et al., AIAA 2006-6753).
    """
    k2 = 0.5 * WGS72_J2
    target = 1.0 + altitude_m / WGS72_RADIUS_M  # mean radius in earth radii
    x = 3.0 * math.cos(inclination_rad) ** 2 - 1.0
    a = target
    for _ in range(50):  # mean radius = a (1 - 1.5 k2 x / a^2) for e = 0
        a = target / (1.0 - 1.5 * k2 * x / a**2)
    n_brouwer = WGS72_XKE_PER_MIN / a**1.5
    d1 = 0.75 * WGS72_J2 * x  # sgp4 initl with e = 0
    n_kozai = n_brouwer
    for _ in range(50):
        ak = (WGS72_XKE_PER_MIN / n_kozai) ** (2.0 / 3.0)
        d = d1 / ak**2
        adel = ak * (1.0 - d * d - d * (1.0 / 3.0 + 134.0 * d * d / 81.0))
        d = d1 / adel**2
        n_kozai = n_brouwer * (1.0 + d)
    return n_kozai


def _epoch_days(epoch_utc: datetime) -> float:
    """Days since 1949-12-31 00:00 UTC, the epoch ``sgp4init`` wants."""
    if (
        not isinstance(epoch_utc, datetime)
        or epoch_utc.tzinfo is None
        or epoch_utc.utcoffset() is None
    ):
        raise ValueError("epoch_utc must be a timezone-aware datetime")
    base = datetime(1949, 12, 31, tzinfo=timezone.utc)
    return (epoch_utc.astimezone(timezone.utc) - base).total_seconds() / SECONDS_PER_DAY


def _check_circular(inclination_deg: float, altitude_m: float) -> None:
    if not (math.isfinite(inclination_deg) and 0.0 <= inclination_deg <= 180.0):
        raise ValueError(f"inclination_deg {inclination_deg!r} must be in [0, 180]")
    if not (math.isfinite(altitude_m) and 100e3 <= altitude_m <= 40000e3):
        raise ValueError(
            f"altitude_m {altitude_m!r} is not a plausible circular-orbit altitude (100 km..40000 km)"
        )


def _circular_satrec(
    satnum: int,
    epoch_days: float,
    inclination_rad: float,
    raan_rad: float,
    arg_lat_rad: float,
    n_kozai: float,
) -> Satrec:
    """Circular, drag-free SGP4 elements (WGS72, 'i' mode); argument of latitude goes in the mean anomaly."""
    satrec = Satrec()
    satrec.sgp4init(
        WGS72,
        "i",
        satnum,
        epoch_days,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        inclination_rad,
        arg_lat_rad,
        n_kozai,
        raan_rad,
    )
    if satrec.error:
        raise ValueError(f"sgp4init failed for satellite number {satnum} (error {satrec.error})")
    return satrec


def circular_satellite(
    id: str,
    *,
    altitude_m: float,
    inclination_deg: float,
    epoch_utc: datetime,
    raan_deg: float = 0.0,
    arg_latitude_deg: float = 0.0,
    satnum: int = 99999,
) -> Satellite:
    """One satellite on a circular orbit (same model as :func:`walker_constellation`)."""
    _check_circular(inclination_deg, altitude_m)
    if not (isinstance(satnum, int) and 0 < satnum <= 99999):
        raise ValueError(f"satnum must be an int in 1..99999, got {satnum!r}")
    inc = math.radians(inclination_deg)
    satrec = _circular_satrec(
        satnum,
        _epoch_days(epoch_utc),
        inc,
        math.radians(raan_deg % 360.0),
        math.radians(arg_latitude_deg % 360.0),
        _kozai_mean_motion_rad_per_min(altitude_m, inc),
    )
    return Satellite(id, satrec, source="orbit")


def walker_constellation(
    *,
    inclination_deg: float,
    total: int,
    planes: int,
    phasing: int,
    altitude_m: float,
    epoch_utc: datetime,
    pattern: str = "delta",
    id_prefix: str = "sat",
    first_catalog_number: int = 1,
) -> list[Satellite]:
    """Walker delta (RAAN spread over 360 deg) or star (180 deg) constellation T/P/F.

    Circular orbits, no drag (bstar = 0), built with ``Satrec.sgp4init`` (WGS72,
    'i' mode).  Plane ``j`` has RAAN ``j*360/P`` (delta) or ``j*180/P`` (star);
    satellite ``k`` of plane ``j`` has argument of latitude
    ``k*360*P/T + j*F*360/T``.  Ids ``f"{id_prefix}{index:04d}"``, plane-major;
    catalog numbers ``index + first_catalog_number``.
    """
    for name, v in (("total", total), ("planes", planes), ("phasing", phasing)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {v!r}")
    if total <= 0 or planes <= 0:
        raise ValueError(f"total ({total}) and planes ({planes}) must be positive")
    if total % planes != 0:
        raise ValueError(f"total ({total}) must be a multiple of planes ({planes})")
    if not 0 <= phasing < planes:
        raise ValueError(f"phasing F={phasing} must satisfy 0 <= F < planes={planes}")
    if pattern not in ("delta", "star"):
        raise ValueError(f"pattern must be 'delta' or 'star', got {pattern!r}")
    _check_circular(inclination_deg, altitude_m)
    if not (isinstance(first_catalog_number, int) and first_catalog_number >= 1):
        raise ValueError(f"first_catalog_number must be an int >= 1, got {first_catalog_number!r}")
    if total + first_catalog_number - 1 > 99999:
        raise ValueError("at most 99999 satellites (TLE catalog numbers)")
    epoch_days = _epoch_days(epoch_utc)
    inc = math.radians(inclination_deg)
    n_kozai = _kozai_mean_motion_rad_per_min(altitude_m, inc)
    per_plane = total // planes
    raan_spread = 360.0 if pattern == "delta" else 180.0
    sats = []
    for j in range(planes):
        raan = math.radians((j * raan_spread / planes) % 360.0)
        for k in range(per_plane):
            index = j * per_plane + k
            u = math.radians((k * 360.0 * planes / total + j * phasing * 360.0 / total) % 360.0)
            satrec = _circular_satrec(index + first_catalog_number, epoch_days, inc, raan, u,
                                      n_kozai)
            sats.append(Satellite(f"{id_prefix}{index:04d}", satrec, source="walker"))
    return sats


# --------------------------------------------------------------------------- TLE I/O
def load_tle(path, *, name_pattern: str | None = None, limit: int | None = None) -> list[Satellite]:
    """Satellites from a two- or three-line TLE file (see :func:`parse_tle_text`).

    Ids are the stripped names (catalog numbers for unnamed sets), made unique
    with ``#2``, ``#3`` suffixes.  Each satellite records its file and 1-based
    element set (``source``, ``record``).  Raises :class:`TLEFormatError` naming
    the file and line for malformed input.
    """
    records = parse_tle_text(read_text(path), str(path))
    number = {line_no: k for k, (_, _, line_no) in enumerate(records, start=1)}
    chosen = select_records(records, name_pattern=name_pattern, limit=limit)
    ids = unique_ids([label for label, _, _ in chosen])
    return [Satellite(node_id, satrec, source=str(path), record=number[line_no])
            for node_id, (_, satrec, line_no) in zip(ids, chosen)]


def export_tle(sat: Satellite) -> tuple[str, str]:
    """``(line1, line2)`` of a satellite via ``sgp4.exporter.export_tle``."""
    return export_tle_lines(sat.satrec)


def write_tle_file(path, sats: Sequence[Satellite]) -> None:
    """Write satellites as a three-line TLE file named by node id."""
    text = format_tle_file((s.id, *export_tle(s)) for s in sats)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


# --------------------------------------------------------------------------- positions
def _rotate_teme_to_itrs(r_km, v_kmps, theta, theta_dot):
    """TEME -> ITRS (no polar motion), metres, as ``skyfield.sgp4lib.TEME_to_ITRF`` does.

    ``r_km``/``v_kmps`` have shape ``(..., 3)``; ``theta``/``theta_dot`` (rad,
    rad/s) broadcast against ``(...)``.  Returns component-major arrays
    ``pos, vel`` of shape ``(3, ...)``.
    """
    c, s = np.cos(theta), np.sin(theta)
    rx, ry, rz = r_km[..., 0], r_km[..., 1], r_km[..., 2]
    pos = np.empty((3,) + rx.shape)
    vel = np.empty_like(pos)
    np.multiply(rx, c, out=pos[0])
    pos[0] += ry * s
    pos[0] *= 1e3
    np.multiply(ry, c, out=pos[1])
    pos[1] -= rx * s
    pos[1] *= 1e3
    np.multiply(rz, 1e3, out=pos[2])
    vx, vy = v_kmps[..., 0], v_kmps[..., 1]
    np.multiply(vx, c, out=vel[0])
    vel[0] += vy * s
    vel[0] *= 1e3
    vel[0] += theta_dot * pos[1]
    np.multiply(vy, c, out=vel[1])
    vel[1] -= vx * s
    vel[1] *= 1e3
    vel[1] -= theta_dot * pos[0]
    np.multiply(v_kmps[..., 2], 1e3, out=vel[2])
    return pos, vel


def _raise_sgp4_errors(sat_ids, err, times_s) -> None:
    bad = np.argwhere(err != 0)
    msgs = []
    for i, k in bad[:5]:
        msgs.append(
            f"{sat_ids[i]} at t={float(times_s[k]):.1f}s: {SGP4_ERRORS.get(int(err[i, k]), err[i, k])}"
        )
    raise PropagationError(
        f"SGP4 failed for {len(bad)} satellite/time pairs, e.g. " + "; ".join(msgs)
    )


def _check_nodes(nodes) -> list:
    nodes = list(nodes)
    for n in nodes:
        if not isinstance(n, (Satellite, GroundStation, UAV)):
            raise TypeError(f"not a node: {n!r}")
    return nodes


def _uav_states(uav: UAV, t: np.ndarray):
    pos = uav.itrs_m(t)
    vel = (uav.itrs_m(t + UAV_FD_STEP_S) - uav.itrs_m(t - UAV_FD_STEP_S)) / (2 * UAV_FD_STEP_S)
    return pos, vel


def states_itrs_components(nodes, timebase: Timebase, times_s) -> tuple[np.ndarray, np.ndarray]:
    """ITRS positions (m) and velocities (m/s), component-major: each ``(3, n_nodes, n_times)``.

    All satellites are propagated in one ``SatrecArray.sgp4`` call.
    """
    nodes = _check_nodes(nodes)
    t = np.atleast_1d(np.asarray(times_s, dtype=float))
    if t.ndim != 1:
        raise ValueError("times_s must be a scalar or a 1-d array")
    pos = np.zeros((3, len(nodes), t.size))
    vel = np.zeros_like(pos)
    sat_idx = [i for i, n in enumerate(nodes) if isinstance(n, Satellite)]
    if sat_idx and t.size:
        jd, fr, theta, theta_dot = timebase.sgp4_inputs(t)
        err, r, v = SatrecArray([nodes[i].satrec for i in sat_idx]).sgp4(jd, fr)
        if np.any(err):
            _raise_sgp4_errors([nodes[i].id for i in sat_idx], err, t)
        p_sat, v_sat = _rotate_teme_to_itrs(r, v, theta, theta_dot)
        if len(sat_idx) == len(nodes):
            pos, vel = p_sat, v_sat
        else:
            pos[:, sat_idx], vel[:, sat_idx] = p_sat, v_sat
    for i, n in enumerate(nodes):
        if isinstance(n, GroundStation):
            pos[:, i] = n.itrs_m()[:, None]
        elif isinstance(n, UAV):
            p_u, v_u = _uav_states(n, t)
            pos[:, i], vel[:, i] = p_u.T, v_u.T
    return pos, vel


def states_itrs(nodes, timebase: Timebase, times_s) -> tuple[np.ndarray, np.ndarray]:
    """ITRS positions (m) and velocities (m/s), each ``(n_nodes, n_times, 3)``."""
    pos, vel = states_itrs_components(nodes, timebase, times_s)
    return np.moveaxis(pos, 0, -1), np.moveaxis(vel, 0, -1)


def states_itrs_at(nodes, timebase: Timebase, node_index, times_s) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise states: node ``nodes[node_index[m]]`` at ``times_s[m]``; each ``(M, 3)``.

    Satellites are propagated with one ``Satrec.sgp4_array`` call per distinct
    satellite, only at the requested times.
    """
    nodes = list(nodes)
    idx = np.asarray(node_index, dtype=np.intp).ravel()
    t = np.asarray(times_s, dtype=float).ravel()
    if idx.shape != t.shape:
        raise ValueError("node_index and times_s must have the same length")
    pos = np.zeros((t.size, 3))
    vel = np.zeros_like(pos)
    if not t.size:
        return pos, vel
    order = np.argsort(idx, kind="stable")
    uniq, starts = np.unique(idx[order], return_index=True)
    bounds = np.append(starts, idx.size)
    is_sat = np.array([isinstance(nodes[u], Satellite) for u in uniq])
    sat_groups = np.flatnonzero(is_sat)
    if sat_groups.size:
        sat_rows = np.concatenate([order[bounds[g] : bounds[g + 1]] for g in sat_groups])
        jd, fr, theta, theta_dot = timebase.sgp4_inputs(t[sat_rows])
        r = np.empty((sat_rows.size, 3))
        v = np.empty_like(r)
        offset = 0
        for g in sat_groups:
            sl = slice(offset, offset + bounds[g + 1] - bounds[g])
            err, r[sl], v[sl] = nodes[uniq[g]].satrec.sgp4_array(jd[sl], fr[sl])
            if np.any(err):
                _raise_sgp4_errors([nodes[uniq[g]].id], err[None, :], t[sat_rows[sl]])
            offset = sl.stop
        p_sat, v_sat = _rotate_teme_to_itrs(r, v, theta, theta_dot)
        pos[sat_rows], vel[sat_rows] = p_sat.T, v_sat.T
    for g in np.flatnonzero(~is_sat):
        rows = order[bounds[g] : bounds[g + 1]]
        node = nodes[uniq[g]]
        if isinstance(node, GroundStation):
            pos[rows] = node.itrs_m()
        else:
            pos[rows], vel[rows] = _uav_states(node, t[rows])
    return pos, vel


def positions_itrs_m(nodes, timebase: Timebase, times_s) -> np.ndarray:
    """Earth-fixed (ITRS) positions in metres, shape ``(n_nodes, n_times, 3)``."""
    return states_itrs(nodes, timebase, times_s)[0]


def nodes_table(nodes) -> pd.DataFrame:
    """One row per node: ``id, kind, lat_deg, lon_deg, altitude_m, min_elevation_deg,
    catalog_number, epoch_utc, source, record``.

    Satellites: ``altitude_m`` is the mean-orbit altitude (SGP4 mean semi-major
    axis above the WGS72 equator), lat/lon empty; ``catalog_number`` the NORAD
    number (Alpha-5 ``A0001`` is 100001), ``epoch_utc`` the element set's epoch,
    ``source`` its file (or ``walker``/``orbit`` when sinsim made it) and
    ``record`` its 1-based element set in that file.  UAVs: lat/lon of the
    loiter centre or first waypoint.  Empty cells are NaN (None for text).
    """
    rows = []
    for n in _check_nodes(nodes):
        nan = float("nan")
        if isinstance(n, Satellite):
            rows.append((n.id, n.kind, nan, nan, n.mean_altitude_m, nan, n.catalog_number,
                         n.epoch_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), n.source, n.record))
        elif isinstance(n, GroundStation):
            rows.append((n.id, n.kind, n.lat_deg, n.lon_deg, n.altitude_m, n.min_elevation_deg,
                         None, None, None, None))
        else:
            lat, lon = n.reference_latlon
            rows.append((n.id, n.kind, lat, lon, n.altitude_m, nan, None, None, None, None))
    cols = ["id", "kind", "lat_deg", "lon_deg", "altitude_m", "min_elevation_deg",
            "catalog_number", "epoch_utc", "source", "record"]
    return pd.DataFrame(rows, columns=cols).astype(
        {
            "id": object,
            "kind": object,
            "lat_deg": float,
            "lon_deg": float,
            "altitude_m": float,
            "min_elevation_deg": float,
            "catalog_number": "Int64",
            "epoch_utc": object,
            "source": object,
            "record": "Int64",
        }
    )
