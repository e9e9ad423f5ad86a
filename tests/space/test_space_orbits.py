"""Walker geometry, node positions against Skyfield, UAV paths, node table."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from skyfield.api import wgs84
from skyfield.framelib import itrs
from skyfield.sgp4lib import TEME

from sinsim.space.constants import WGS72_RADIUS_M
from sinsim.space.orbits import (
    UAV,
    GroundStation,
    circular_satellite,
    load_tle,
    nodes_table,
    positions_itrs_m,
    states_itrs,
    walker_constellation,
)
from sinsim.space.timebase import Timebase


def _elements(sat, timebase, t_s):
    """(inclination, RAAN, argument of latitude) in degrees at times ``t_s``, from Skyfield TEME states."""
    r, v = sat.earth_satellite(timebase.ts).at(timebase.to_time(t_s)).frame_xyz_and_velocity(TEME)
    r, v = r.km.T, v.km_per_s.T
    h = np.cross(r, v)
    h_hat = h / np.linalg.norm(h, axis=1, keepdims=True)
    inc = np.degrees(np.arccos(h_hat[:, 2]))
    raan = np.arctan2(h_hat[:, 0], -h_hat[:, 1])
    n_hat = np.stack([np.cos(raan), np.sin(raan), np.zeros_like(raan)], axis=1)
    u = np.arctan2(
        np.einsum("ij,ij->i", np.cross(h_hat, n_hat), r), np.einsum("ij,ij->i", n_hat, r)
    )
    return inc, np.degrees(raan) % 360.0, np.degrees(u) % 360.0


def _angle_diff(a, b):
    return (a - b + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("pattern,spread", [("delta", 360.0), ("star", 180.0)])
def test_walker_geometry_recovered_from_propagated_states(start_utc, pattern, spread):
    total, planes, phasing, inc_deg, alt_m = 36, 6, 2, 53.0 if pattern == "delta" else 87.0, 780e3
    sats = walker_constellation(
        inclination_deg=inc_deg,
        total=total,
        planes=planes,
        phasing=phasing,
        altitude_m=alt_m,
        epoch_utc=start_utc,
        pattern=pattern,
        id_prefix="w",
    )
    tb = Timebase(start_utc)
    per_plane = total // planes
    assert [s.id for s in sats[:2]] == ["w0000", "w0001"] and sats[-1].id == "w0035"
    # Osculating SGP4 elements carry J2 short-period terms (~0.1 deg in u); average them out
    # over one orbit, comparing satellites at the same instants.
    period_s = 2 * math.pi / sats[0].satrec.no_kozai * 60.0
    t = np.linspace(0.0, period_s, 120, endpoint=False)
    el = [_elements(s, tb, t) for s in sats]
    inc = np.array([e[0].mean() for e in el])
    assert np.allclose(inc, inc_deg, atol=0.02)

    def mean_diff(i, j, what):  # mean over the orbit of the wrapped difference of element `what`
        return float(np.mean(_angle_diff(el[i][what], el[j][what])))

    for j in range(planes - 1):  # RAAN spacing and phase offset between adjacent planes
        first, nxt = j * per_plane, (j + 1) * per_plane
        assert mean_diff(nxt, first, 1) == pytest.approx(spread / planes, abs=0.02)
        assert mean_diff(nxt, first, 2) == pytest.approx(phasing * 360.0 / total, abs=0.02)
    for k in range(per_plane - 1):  # in-plane spacing 360*P/T
        assert mean_diff(k + 1, k, 2) == pytest.approx(360.0 * planes / total, abs=0.02)
    # altitude: the mean geocentric radius over one orbit is R + h
    for s in sats[::7]:
        r_km = np.linalg.norm(s.earth_satellite(tb.ts).at(tb.to_time(t)).position.km, axis=0)
        assert r_km.mean() * 1e3 - WGS72_RADIUS_M == pytest.approx(alt_m, abs=2e3)
        assert np.ptp(r_km) < 30.0  # circular up to J2 short-period terms


def test_walker_rejects_bad_parameters(start_utc):
    kw = dict(inclination_deg=53.0, altitude_m=550e3, epoch_utc=start_utc)
    with pytest.raises(ValueError, match="multiple"):
        walker_constellation(total=10, planes=3, phasing=0, **kw)
    with pytest.raises(ValueError, match="phasing"):
        walker_constellation(total=12, planes=3, phasing=3, **kw)
    with pytest.raises(ValueError, match="phasing"):
        walker_constellation(total=12, planes=3, phasing=-1, **kw)
    with pytest.raises(ValueError, match="pattern"):
        walker_constellation(total=12, planes=3, phasing=1, pattern="rosette", **kw)
    with pytest.raises(ValueError, match="timezone"):
        walker_constellation(
            total=12,
            planes=3,
            phasing=1,
            inclination_deg=53.0,
            altitude_m=550e3,
            epoch_utc=datetime(2020, 5, 7),
        )


def test_satellite_positions_equal_skyfield_itrs(walker24, starlink_tle_path, timebase):
    sats = walker24[:3] + load_tle(starlink_tle_path)[:3]
    t = np.linspace(0.0, 2 * 86400.0, 97)
    pos = positions_itrs_m(sats, timebase, t)
    assert pos.shape == (6, 97, 3)
    for i, s in enumerate(sats):
        ref = s.earth_satellite(timebase.ts).at(timebase.to_time(t)).frame_xyz(itrs).m.T
        assert np.abs(pos[i] - ref).max() < 1e-3  # metres


def test_station_and_satellite_velocity(walker24, timebase):
    st = GroundStation("gs", -33.9, 151.2, 40.0, 15.0)
    assert np.allclose(
        positions_itrs_m([st], timebase, [0.0, 10.0])[0],
        wgs84.latlon(-33.9, 151.2, 40.0).itrs_xyz.m,
        atol=1e-6,
    )
    t = np.array([100.0, 5000.0])
    _, vel = states_itrs(walker24[:1], timebase, t)
    ref = (
        walker24[0]
        .earth_satellite(timebase.ts)
        .at(timebase.to_time(t))
        .frame_xyz_and_velocity(itrs)[1]
    )
    assert np.abs(vel[0] - ref.m_per_s.T).max() < 1e-3


def test_uav_loiter_speed_and_radius_recovered(timebase):
    uav = UAV(
        "u", altitude_m=3000.0, speed_mps=50.0, loiter_center=(45.0, 7.0), loiter_radius_m=20e3
    )
    t = np.arange(0.0, 3600.0, 1.0)
    pos = positions_itrs_m([uav], timebase, t)[0]
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert speed == pytest.approx(50.0, rel=2e-3)
    centre = wgs84.latlon(45.0, 7.0, 3000.0).itrs_xyz.m
    assert np.linalg.norm(pos - centre, axis=1) == pytest.approx(20e3, rel=2e-3)
    period = 2 * math.pi * 20e3 / 50.0
    again = positions_itrs_m([uav], timebase, [0.0, period])[0]
    assert np.linalg.norm(again[0] - again[1]) < 1e-3


def test_uav_waypoints_closed_loop_at_constant_speed(timebase):
    pts = [(10.0, 20.0), (10.5, 20.0), (10.5, 20.8)]
    uav = UAV("w", altitude_m=1000.0, speed_mps=100.0, waypoints=pts)
    t = np.arange(0.0, 4000.0, 1.0)
    pos = positions_itrs_m([uav], timebase, t)[0]
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert np.median(speed) == pytest.approx(100.0, rel=5e-3)
    assert speed.max() < 100.5  # corners only cut, never sped up
    wp = np.array([wgs84.latlon(a, b, 1000.0).itrs_xyz.m for a, b in pts])
    assert np.linalg.norm(pos[0] - wp[0]) < 1e-6
    # first leg is due north: ~55.6 km at 100 m/s
    leg = np.linalg.norm(wp[1] - wp[0])
    at_wp1 = positions_itrs_m([uav], timebase, [leg / 100.0])[0, 0]
    assert np.linalg.norm(at_wp1 - wp[1]) < 200.0  # tangent-plane approximation
    lat, lon = uav.latlon_deg(np.linspace(0, 5000, 400))
    assert lat.min() >= 10.0 - 1e-9 and lat.max() <= 10.5 + 1e-9 and lon.max() <= 20.8 + 1e-9


def test_node_validation():
    with pytest.raises(ValueError):
        GroundStation("x", 95.0, 0.0)
    with pytest.raises(ValueError):
        GroundStation("", 10.0, 0.0)
    with pytest.raises(ValueError, match="exactly one"):
        UAV("u", 1000.0, 30.0)
    with pytest.raises(ValueError, match="loiter_radius_m"):
        UAV("u", 1000.0, 30.0, loiter_center=(0.0, 0.0))
    with pytest.raises(ValueError, match="speed"):
        UAV("u", 1000.0, 0.0, loiter_center=(0.0, 0.0), loiter_radius_m=1e3)
    with pytest.raises(ValueError, match="waypoints"):
        UAV("u", 1000.0, 30.0, waypoints=[(0.0, 0.0)])


def test_nodes_table_and_circular_satellite(walker24, start_utc):
    server = circular_satellite(
        "hub", altitude_m=1200e3, inclination_deg=97.0, epoch_utc=start_utc, raan_deg=30.0
    )
    nodes = [
        walker24[0],
        server,
        GroundStation("gs", 1.0, 2.0, 3.0, 12.0),
        UAV("u", 500.0, 20.0, loiter_center=(4.0, 5.0), loiter_radius_m=1e3),
    ]
    df = nodes_table(nodes)
    assert list(df.columns) == [
        "id",
        "kind",
        "lat_deg",
        "lon_deg",
        "altitude_m",
        "min_elevation_deg",
        "catalog_number",
        "epoch_utc",
        "source",
        "record",
    ]
    assert df.source.tolist()[:2] == ["walker", "orbit"] and df.catalog_number[1] == 99999
    assert list(df.kind) == ["satellite", "satellite", "ground_station", "uav"]
    assert df.altitude_m[0] == pytest.approx(550e3, abs=5e3)
    assert df.altitude_m[1] == pytest.approx(1200e3, abs=5e3)
    assert np.isnan(df.lat_deg[0]) and np.isnan(df.min_elevation_deg[3])
    assert df.min_elevation_deg[2] == 12.0 and df.lat_deg[3] == 4.0


def test_timebase_conversions(start_utc):
    tb = Timebase(start_utc + timedelta(hours=1))
    s = np.array([0.0, 1.25, 86400.0 * 3 + 0.001])
    assert np.allclose(tb.to_seconds(tb.to_time(s)), s, atol=1e-6)
    assert tb.utc_iso([0.0, 61.0]) == ["2020-05-07T01:00:00Z", "2020-05-07T01:01:01Z"]
    jd, fr = tb.jd_fr(np.array([0.0, 43200.0]))
    assert np.allclose(jd + fr, [2458976.5 + 1 / 24, 2458976.5 + 1 / 24 + 0.5], atol=1e-9)
    other_zone = datetime(2020, 5, 7, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    assert Timebase(other_zone).utc_iso(0.0) == ["2020-05-07T01:00:00Z"]
    with pytest.raises(ValueError, match="timezone"):
        Timebase(datetime(2020, 5, 7))


def test_decayed_orbit_raises_clear_error(timebase):
    from sgp4.api import WGS72, Satrec

    from sinsim.space.orbits import PropagationError, Satellite

    satrec = Satrec()
    satrec.sgp4init(WGS72, "i", 5, 25694.0, 0.05, 0.0, 0.0, 0.001, 0.0, 0.9, 0.0, 0.0714, 0.0)
    with pytest.raises(PropagationError, match="decay"):
        positions_itrs_m([Satellite("decay", satrec)], timebase, [0.0, 86400.0])
