"""Ground tracks (``sinsim.space.tracks``) against Skyfield's own subpoint of the same TLE: the
oracle is ``wgs84.subpoint_of(EarthSatellite(line1, line2).at(t))``, built from the TLE text
without going through sinsim."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from skyfield.api import load, wgs84
from skyfield.iokit import parse_tle_file

from sinsim.space.nodes import geodetic_to_itrs_m
from sinsim.space.orbits import load_tle
from sinsim.space.timebase import Timebase
from sinsim.space.tracks import (
    epoch_utc,
    ground_track,
    itrs_to_latlon_deg,
    orbit_period_s,
    subpoints,
)

TLE = Path(__file__).resolve().parent / "data" / "starlink_sample.tle"
TOL_DEG = 1e-5  # about a metre on the ground


@pytest.fixture(scope="module")
def skyfield_sats():
    ts = load.timescale(builtin=True)
    return ts, list(parse_tle_file(BytesIO(TLE.read_bytes()), ts))[:3]


def _oracle(sat, t):
    sub = wgs84.subpoint_of(sat.at(t))
    return sub.latitude.degrees, sub.longitude.degrees


def test_subpoints_match_skyfield_at_a_few_times(skyfield_sats):
    ts, oracle_sats = skyfield_sats
    sats = load_tle(TLE, limit=3)
    assert [s.id for s in sats] == [s.name.strip() for s in oracle_sats]
    start = datetime(2020, 5, 7, 3, 30, tzinfo=timezone.utc)
    timebase = Timebase(start)
    times = np.array([0.0, 61.5, 1800.0, 5400.0, 86_400.0])
    lat, lon = subpoints(sats, timebase, times)
    assert lat.shape == lon.shape == (3, len(times))
    for i, sat in enumerate(oracle_sats):
        t = ts.from_datetimes([start + timedelta(seconds=float(s)) for s in times])
        want_lat, want_lon = _oracle(sat, t)
        np.testing.assert_allclose(lat[i], want_lat, atol=TOL_DEG, rtol=0)
        dlon = (lon[i] - want_lon + 180.0) % 360.0 - 180.0
        np.testing.assert_allclose(dlon, 0.0, atol=TOL_DEG)


def test_ground_track_starts_at_the_epoch_and_covers_the_orbits(skyfield_sats):
    ts, (oracle, *_) = skyfield_sats
    sat = load_tle(TLE, limit=1)[0]
    assert abs((epoch_utc(sat) - oracle.epoch.utc_datetime()).total_seconds()) < 1e-3
    period = orbit_period_s(sat)
    assert period == pytest.approx(2 * np.pi / oracle.model.no_kozai * 60.0)
    assert 90 * 60 < period < 100 * 60  # a Starlink shell at about 550 km
    times, lat, lon = ground_track(sat, orbits=1.5, step_s=60.0)
    assert times[0] == 0.0 and times[-1] >= 1.5 * period and np.all(np.diff(times) == 60.0)
    want_lat, want_lon = _oracle(oracle, ts.tt_jd(oracle.epoch.tt + times / 86400.0))
    np.testing.assert_allclose(lat, want_lat, atol=TOL_DEG, rtol=0)
    np.testing.assert_allclose((lon - want_lon + 180.0) % 360.0 - 180.0, 0.0, atol=TOL_DEG)
    assert np.all(np.abs(lon) <= 180.0)
    assert np.max(np.abs(lat)) == pytest.approx(53.0, abs=1.0)  # the shell's inclination


def test_itrs_to_latlon_inverts_geodetic_to_itrs():
    rng = np.random.default_rng(0)
    lat = np.concatenate([rng.uniform(-90, 90, 200), [90.0, -90.0, 0.0]])
    lon = np.concatenate([rng.uniform(-180, 180, 200), [0.0, 0.0, 180.0]])
    alt = np.concatenate([rng.uniform(0, 2_000_000, 200), [550e3, 0.0, 1e6]])
    got_lat, got_lon = itrs_to_latlon_deg(geodetic_to_itrs_m(lat, lon, alt))
    np.testing.assert_allclose(got_lat, lat, atol=1e-9)
    away_from_poles = np.abs(lat) < 89.999
    np.testing.assert_allclose(((got_lon - lon + 180) % 360 - 180)[away_from_poles], 0, atol=1e-9)


def test_ground_track_refuses_a_bad_step():
    sat = load_tle(TLE, limit=1)[0]
    with pytest.raises(ValueError, match="step_s"):
        ground_track(sat, step_s=0)
