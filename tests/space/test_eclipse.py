"""Eclipses: sunlit windows against Skyfield's ``is_sunlit``, and the circular-orbit formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skyfield.api import EarthSatellite

from sinsim.space.constants import EARTH_SHADOW_RADIUS_M
from sinsim.space.eclipse import (
    beta_angle_deg,
    eclipse_fraction_circular,
    ephemeris,
    shadow_windows,
    sunlit_flags,
    sunlit_windows,
)
from sinsim.space.orbits import GroundStation, circular_satellite, load_tle

ALT_M = 550e3


def _edges(windows, horizon_s):
    e = np.sort(np.asarray(windows).ravel())
    return e[(e > 0) & (e < horizon_s)]


def test_skyfield_radius_is_the_shadow_radius():
    from skyfield.constants import ERAD

    assert ERAD == EARTH_SHADOW_RADIUS_M


def test_edges_match_skyfield_is_sunlit(timebase, start_utc, starlink_tle_path):
    """Every refined edge is within 1 s of where Skyfield's sunlit flag flips (sampled every
    second over two orbits), the flag agrees at every interval's midpoint, and bisecting
    Skyfield's flag puts its edges within 0.01 s of ours."""
    sats = [
        circular_satellite("sso", altitude_m=ALT_M, inclination_deg=97.6, raan_deg=40.0,
                           epoch_utc=start_utc),
        load_tle(starlink_tle_path, limit=1)[0],
    ]
    horizon = 12000.0
    windows = sunlit_windows(sats, timebase, horizon)
    eph = ephemeris()
    t = np.arange(0.0, horizon + 0.5, 1.0)
    worst = 0.0
    for sat, win in zip(sats, windows):
        es = EarthSatellite.from_satrec(sat.satrec, timebase.ts)

        def flag(times, es=es):
            return np.asarray(es.at(timebase.to_time(times)).is_sunlit(eph), dtype=bool)

        f = flag(t)
        flips = np.flatnonzero(f[1:] != f[:-1])
        edges = _edges(win, horizon)
        assert len(edges) == len(flips) >= 3, sat.id  # two orbits: at least 3 edges
        assert np.all(edges >= t[flips] - 1e-6) and np.all(edges <= t[flips + 1] + 1e-6)
        # midpoints of sunlit and shadow intervals
        mids_lit = win.mean(axis=1)
        mids_dark = shadow_windows(win, horizon).mean(axis=1)
        assert flag(mids_lit).all() and not flag(mids_dark).any()
        assert sunlit_flags([sat], timebase, mids_lit).all()
        # Skyfield's own edges by bisection of its flag
        lo, hi, side = t[flips], t[flips + 1], f[flips]
        for _ in range(17):
            mid = 0.5 * (lo + hi)
            same = flag(mid) == side
            lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
        worst = max(worst, float(np.abs(edges - 0.5 * (lo + hi)).max()))
    assert worst < 0.01, worst


def test_windows_shape_and_complement(timebase, walker24):
    horizon = 6000.0
    wins = sunlit_windows(walker24[:5], timebase, horizon)
    assert len(wins) == 5
    for w in wins:
        assert w.ndim == 2 and w.shape[1] == 2
        assert np.all(w[:, 1] > w[:, 0]) and np.all(w[1:, 0] > w[:-1, 1])
        assert w.min() >= 0 and w.max() <= horizon
        sh = shadow_windows(w, horizon)
        total = (w[:, 1] - w[:, 0]).sum() + (sh[:, 1] - sh[:, 0]).sum()
        assert total == pytest.approx(horizon)
    assert sunlit_windows([], timebase, horizon) == []
    with pytest.raises(TypeError, match="satellites only"):
        sunlit_windows([GroundStation("gs", 40.0, -3.0)], timebase, horizon)


def test_short_shadow_between_grid_samples_is_found(timebase, start_utc):
    """A coarse grid that straddles a whole shadow still finds it (around the metric's minimum)."""
    sat = circular_satellite("s", altitude_m=ALT_M, inclination_deg=53.0, epoch_utc=start_utc)
    fine = sunlit_windows([sat], timebase, 12000.0)[0]
    coarse = sunlit_windows([sat], timebase, 12000.0, step_s=3000.0)[0]
    assert coarse.shape == fine.shape
    np.testing.assert_allclose(coarse, fine, atol=0.02)


def test_eclipse_fraction_formula_closed_forms():
    r, h = EARTH_SHADOW_RADIUS_M, ALT_M
    assert eclipse_fraction_circular(h, 0.0) == pytest.approx(math.asin(r / (r + h)) / math.pi)
    beta_star = math.degrees(math.asin(r / (r + h)))
    assert eclipse_fraction_circular(h, beta_star + 0.01) == 0.0
    assert eclipse_fraction_circular(h, -beta_star - 0.01) == 0.0
    assert eclipse_fraction_circular(h, 30.0) == eclipse_fraction_circular(h, -30.0)
    assert 0 < eclipse_fraction_circular(h, beta_star - 0.1) < 0.05


@pytest.mark.parametrize(("inclination_deg", "raan_deg"), [(53.0, 0.0), (97.6, 120.0)])
def test_eclipse_fraction_matches_circular_formula(timebase, start_utc, inclination_deg, raan_deg):
    """Per orbit (shadow entry to the next entry, over 8 h) the measured shadow fraction of a
    550 km circular orbit matches the cylindrical-shadow formula at the orbit's mean beta.

    Tolerance 0.002 of an orbit (~11 s): the formula's altitude sensitivity is ~1.1e-4 per km
    at beta = 0 and grows towards beta*, and SGP4's circular orbit breathes by a few km (J2
    short-period terms); the point-Sun parallax and beta's drift within one orbit (< 0.2 deg)
    add less.  Measured: |error| <= 0.0002 at beta ~ -22 deg, 0.0015 at beta ~ 61.5 deg.
    """
    sat = circular_satellite("s", altitude_m=ALT_M, inclination_deg=inclination_deg,
                             raan_deg=raan_deg, epoch_utc=start_utc)
    horizon = 8 * 3600.0
    shadows = shadow_windows(sunlit_windows([sat], timebase, horizon)[0], horizon)
    shadows = shadows[(shadows[:, 0] > 0) & (shadows[:, 1] < horizon)]
    assert len(shadows) >= 4
    for (t0, t1), t_next in zip(shadows[:-1], shadows[1:, 0]):
        measured = (t1 - t0) / (t_next - t0)
        beta = float(beta_angle_deg([sat], timebase, np.linspace(t0, t_next, 61))[0].mean())
        assert measured == pytest.approx(eclipse_fraction_circular(ALT_M, beta), abs=0.002)
