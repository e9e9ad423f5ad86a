"""Independent reference computations for the space tests (Skyfield find_events, brute force)."""

from __future__ import annotations

import numpy as np
from skyfield.api import wgs84

from sinsim.space.orbits import positions_itrs_m


def windows_from_find_events(times_s, events, horizon_s: float) -> list[tuple[float, float]]:
    """[(start_s, end_s)] from the output of Skyfield's ``find_events`` (0 rise, 1 culminate,
    2 set), clipped to [0, horizon_s]: the reference that tests and bench/contact_plan.py
    compare against."""
    wins: list[tuple[float, float]] = []
    start, seen_set = None, False
    events = np.atleast_1d(events)
    for x, e in zip(np.atleast_1d(times_s), events):
        if e == 0:
            start = float(x)
        elif e == 2:
            wins.append((0.0 if start is None else start, float(x)))
            start, seen_set = None, True
    if start is not None:
        wins.append((start, float(horizon_s)))
    elif not wins and len(events) and not seen_set and all(e == 1 for e in events):
        wins.append((0.0, float(horizon_s)))  # above the mask for the whole horizon
    return wins


def find_events_windows(sat, station, timebase, horizon_s):
    """[(start_s, end_s)] of ``sat`` above ``station``'s mask from one Skyfield find_events call."""
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, station.altitude_m)
    t, events = sat.earth_satellite(timebase.ts).find_events(
        topos,
        timebase.to_time(0.0),
        timebase.to_time(horizon_s),
        altitude_degrees=station.min_elevation_deg,
    )
    secs = timebase.to_seconds(t)
    wins = windows_from_find_events(secs, events, horizon_s)
    return wins, secs[np.atleast_1d(events) == 1], t


def windows_from_mask(t, visible):
    """[(start, end)] of the runs of True in a sampled boolean series (edges at the first sample in)."""
    v = np.asarray(visible, dtype=int)
    d = np.diff(v)
    starts = list(t[1:][d == 1])
    ends = list(t[1:][d == -1])
    if v[0]:
        starts = [t[0]] + starts
    if v[-1]:
        ends = ends + [t[-1]]
    return list(zip(starts, ends))


def brute_force_station(node, station, timebase, horizon_s, dt=0.25):
    """Windows of ``node`` above ``station`` from elevations sampled every ``dt`` seconds (by hand)."""
    t = np.arange(0.0, horizon_s + 1e-9, dt)
    pos = positions_itrs_m([node, station], timebase, t)
    d = pos[0] - pos[1]
    lat, lon = np.radians(station.lat_deg), np.radians(station.lon_deg)
    up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    el = np.degrees(np.arcsin(d @ up / np.linalg.norm(d, axis=1)))
    return windows_from_mask(t, el >= station.min_elevation_deg)


def brute_force_los(a, b, timebase, horizon_s, *, sphere_radius_m, max_range_m=np.inf, dt=0.25):
    """Windows where segment a-b clears a sphere and the range is within max_range_m (by hand)."""
    t = np.arange(0.0, horizon_s + 1e-9, dt)
    pos = positions_itrs_m([a, b], timebase, t)
    pa, pb = pos[0], pos[1]
    ab = pb - pa
    s = np.clip(-np.einsum("ij,ij->i", pa, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
    closest = pa + s[:, None] * ab
    clear = np.linalg.norm(closest, axis=1) >= sphere_radius_m
    in_range = np.linalg.norm(ab, axis=1) <= max_range_m
    return windows_from_mask(t, clear & in_range)


def assert_same_windows(mine, ref, tol_s):
    """Same number of windows and every edge within ``tol_s``."""
    mine = [tuple(map(float, w)) for w in mine]
    assert len(mine) == len(ref), f"window count differs: sinsim {mine} vs reference {ref}"
    for (a, b), (c, d) in zip(mine, ref):
        assert abs(a - c) <= tol_s and abs(b - d) <= tol_s, f"edges differ: {(a, b)} vs {(c, d)}"
