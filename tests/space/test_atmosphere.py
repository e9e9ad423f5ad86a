"""Earth-space geometry, gases, rain and sky noise (sinsim.space.atmosphere) against hand values
and independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinsim.space.atmosphere import (
    elevation_from_range_deg,
    gas_loss_db,
    rain_coefficients,
    rain_loss_db,
    rain_specific_attenuation_db_per_km,
    sky_noise_temp_k,
    slant_range_m,
)

R_EARTH_M = 6378137.0  # WGS84 a, the sphere sinsim uses
GAS_SHELL_M = 6000.0
RAIN_EARTH_RADIUS_KM = 8500.0  # ITU-R P.618-13 step 2

# ITU-R P.838-1 Table 1 (rows used here): f GHz -> (k_H, k_V, alpha_H, alpha_V)
P838_1 = {
    1.0: (0.0000387, 0.0000352, 0.912, 0.880),
    2.0: (0.000154, 0.000138, 0.963, 0.923),
    4.0: (0.000650, 0.000591, 1.121, 1.075),
    8.0: (0.00454, 0.00395, 1.327, 1.310),
    10.0: (0.0101, 0.00887, 1.276, 1.264),
    12.0: (0.0188, 0.0168, 1.217, 1.200),
    15.0: (0.0367, 0.0335, 1.154, 1.128),
    20.0: (0.0751, 0.0691, 1.099, 1.065),
    50.0: (0.536, 0.479, 0.873, 0.868),
}


def circular(f_ghz: float) -> tuple[float, float]:
    """P.838 for circular polarisation (tau = 45 deg, cos 2 tau = 0) at a tabulated frequency."""
    kh, kv, ah, av = P838_1[f_ghz]
    k = (kh + kv) / 2
    return k, (kh * ah + kv * av) / (2 * k)


def p838_coefficients(f_ghz: float) -> tuple[float, float]:
    """k log-log and alpha lin-log between the two tabulated rows around ``f_ghz``."""
    if f_ghz in P838_1:
        return circular(f_ghz)
    lo = max(f for f in P838_1 if f < f_ghz)
    hi = min(f for f in P838_1 if f > f_ghz)
    t = math.log(f_ghz / lo) / math.log(hi / lo)
    (k0, a0), (k1, a1) = circular(lo), circular(hi)
    return k0 * (k1 / k0) ** t, a0 + (a1 - a0) * t


def p618_rain_db(el_deg: float, f_ghz: float, rate_mm_h: float, rain_height_km: float) -> float:
    """ITU-R P.618-13 steps 2, 3, 4 and 6 for a station at sea level (see the module tests)."""
    k, alpha = p838_coefficients(f_ghz)
    gamma = k * rate_mm_h**alpha  # step 5, dB/km
    s = math.sin(math.radians(el_deg))
    if el_deg >= 5.0:  # step 2
        ls = rain_height_km / s
    else:
        ls = 2 * rain_height_km / (math.sqrt(s * s + 2 * rain_height_km / RAIN_EARTH_RADIUS_KM)
                                   + s)
    lg = ls * math.cos(math.radians(el_deg))  # step 3
    r = 1.0 / (1.0 + 0.78 * math.sqrt(lg * gamma / f_ghz) - 0.38 * (1.0 - math.exp(-2 * lg)))
    return gamma * ls * r


def shell_path_m(el_deg: float, height_m: float) -> float:
    """Straight path from the ground through a spherical shell: the positive root s of
    (R + H)^2 = R^2 + s^2 + 2 R s sin(el)."""
    s = math.sin(math.radians(el_deg))
    b = R_EARTH_M * s
    return -b + math.sqrt(b * b + (R_EARTH_M + height_m) ** 2 - R_EARTH_M**2)


def smad_slant_range_m(el_deg: float, altitude_m: float) -> float:
    """Slant range by the angles of SMAD section 5.2: nadir angle eta from
    sin(eta) = R cos(el) / (R + h), Earth central angle lambda = 90 - el - eta,
    range = R sin(lambda) / sin(eta) (ill-conditioned at the zenith: the altitude there)."""
    if el_deg == 90.0:
        return altitude_m
    el = math.radians(el_deg)
    eta = math.asin(R_EARTH_M * math.cos(el) / (R_EARTH_M + altitude_m))
    lam = math.pi / 2 - el - eta
    return R_EARTH_M * math.sin(lam) / math.sin(eta)


# --- geometry ------------------------------------------------------------------------------


def test_slant_range_anchors_at_550_km():
    # the issue's numbers: at 550 km altitude, 35 deg <-> 892 km, 20 deg <-> 1,294 km,
    # 10 deg <-> 1,816 km (891.6 / 1293.8 / 1815.7 km to 0.1 km)
    for el, km, km_issue in ((35.0, 891.6, 892), (20.0, 1293.8, 1294), (10.0, 1815.7, 1816)):
        d = float(slant_range_m(el, 550e3))
        assert round(d / 1e3, 1) == km
        assert round(d / 1e3) == km_issue
        assert float(elevation_from_range_deg(km * 1e3, 550e3)) == pytest.approx(el, abs=0.01)
    # zenith: the altitude; horizon: sqrt((R + h)^2 - R^2)
    assert float(slant_range_m(90.0, 550e3)) == pytest.approx(550e3, abs=1e-6)
    assert float(slant_range_m(0.0, 550e3)) == pytest.approx(
        math.sqrt((R_EARTH_M + 550e3) ** 2 - R_EARTH_M**2), rel=1e-12)


def test_slant_range_matches_smad_angles():
    rng = np.random.default_rng(11)
    for el, h in zip(rng.uniform(0.0, 89.9, 200), 10 ** rng.uniform(3.0, 7.6, 200)):
        assert float(slant_range_m(el, h)) == pytest.approx(smad_slant_range_m(el, h), rel=1e-9)


@pytest.mark.parametrize("observer_altitude_m", [0.0, 2_000.0])
def test_slant_range_and_elevation_invert_each_other(observer_altitude_m):
    rng = np.random.default_rng(12)
    el = rng.uniform(0.0, 90.0, 500)
    alt = observer_altitude_m + 10 ** rng.uniform(3.0, 7.6, 500)
    d = slant_range_m(el, alt, observer_altitude_m)
    back = elevation_from_range_deg(d, alt, observer_altitude_m)
    np.testing.assert_allclose(back, el, atol=1e-5)  # arcsin loses digits near 90 deg
    np.testing.assert_allclose(slant_range_m(back, alt, observer_altitude_m), d, rtol=1e-9)


def test_elevation_nan_where_no_geometry():
    # closer than the altitude, or beyond the horizon (2,705 km at 550 km)
    got = elevation_from_range_deg(np.array([500e3, 550e3, 2700e3, 2800e3]), 550e3)
    assert np.isnan(got[0]) and got[1] == pytest.approx(90.0)
    assert 0.0 <= got[2] < 0.2 and np.isnan(got[3])


def test_geometry_validation():
    for el in (-0.1, 90.1, np.nan):
        with pytest.raises(ValueError):
            slant_range_m(el, 550e3)
    with pytest.raises(ValueError):
        slant_range_m(30.0, 1_000.0, observer_altitude_m=2_000.0)


# --- gases ---------------------------------------------------------------------------------


def test_gas_loss_zenith_and_horizon():
    assert float(gas_loss_db(90.0, 0.05)) == pytest.approx(0.05, rel=1e-12)
    # at the horizon the path through a 6 km shell is sqrt(2 R H + H^2) = 276.7 km: 46.1 x
    horizon = math.sqrt(2 * R_EARTH_M * GAS_SHELL_M + GAS_SHELL_M**2) / GAS_SHELL_M
    assert round(horizon, 1) == 46.1
    assert float(gas_loss_db(0.0, 0.05)) == pytest.approx(0.05 * horizon, rel=1e-12)
    assert np.isfinite(gas_loss_db(0.0, 0.05))


def test_gas_loss_against_shell_path():
    for el in (0.0, 0.5, 2.0, 5.0, 10.0, 20.0, 35.0, 60.0, 89.0, 90.0):
        want = 0.04 * shell_path_m(el, GAS_SHELL_M) / GAS_SHELL_M
        assert float(gas_loss_db(el, 0.04)) == pytest.approx(want, rel=1e-9)
        # never longer than the flat-Earth 1/sin(el); within 1 % of it above 20 deg
        if el > 0:
            flat = 0.04 / math.sin(math.radians(el))
            assert float(gas_loss_db(el, 0.04)) <= flat * (1 + 1e-12)
            if el >= 20:
                assert float(gas_loss_db(el, 0.04)) == pytest.approx(flat, rel=0.01)


def test_gas_loss_grows_as_elevation_falls():
    el = np.linspace(90.0, 0.0, 9001)
    loss = gas_loss_db(el, 0.035)
    assert np.all(np.diff(loss) > 0)
    assert float(gas_loss_db(30.0, 0.0)) == 0.0


# --- rain ----------------------------------------------------------------------------------


def test_rain_coefficients_at_8_ghz():
    # P.838-1 at 8 GHz: k_H 0.00454, k_V 0.00395, alpha_H 1.327, alpha_V 1.310. Circular:
    # k = (0.00454 + 0.00395) / 2 = 0.004245,
    # alpha = (0.00454 * 1.327 + 0.00395 * 1.310) / (2 * 0.004245) = 0.0111988 / 0.00849
    #       = 1.31909
    k, alpha = rain_coefficients(8e9)
    assert k == pytest.approx(0.004245, rel=1e-12)
    assert alpha == pytest.approx((0.00454 * 1.327 + 0.00395 * 1.310) / 0.00849, rel=1e-12)
    assert alpha == pytest.approx(1.31909, abs=1e-5)


@pytest.mark.parametrize("f_ghz", sorted(P838_1))
def test_rain_coefficients_at_tabulated_frequencies(f_ghz):
    k, alpha = rain_coefficients(f_ghz * 1e9)
    want_k, want_alpha = circular(f_ghz)
    assert k == pytest.approx(want_k, rel=1e-12)
    assert alpha == pytest.approx(want_alpha, rel=1e-12)


@pytest.mark.parametrize("f_ghz", [1.5, 3.0, 8.2, 11.0, 13.5])  # between adjacent P.838 rows
def test_rain_coefficients_interpolate_log_frequency(f_ghz):
    # P.838-1: log scale for frequency and for k, linear scale for alpha
    k, alpha = rain_coefficients(f_ghz * 1e9)
    want_k, want_alpha = p838_coefficients(f_ghz)
    assert k == pytest.approx(want_k, rel=1e-12)
    assert alpha == pytest.approx(want_alpha, rel=1e-12)


def test_rain_coefficients_outside_table():
    for f in (0.99e9, 50.01e9, 193e12):
        with pytest.raises(ValueError):
            rain_coefficients(f)


def test_specific_attenuation():
    # gamma = k R^alpha at 10 GHz, 25 mm/h: 0.009485 * 25^1.270389 = 0.56619 dB/km
    assert rain_specific_attenuation_db_per_km(10e9, 25.0) == pytest.approx(0.56619, abs=1e-5)
    assert rain_specific_attenuation_db_per_km(10e9, 0.0) == 0.0
    with pytest.raises(ValueError):
        rain_specific_attenuation_db_per_km(10e9, -1.0)


def test_rain_loss_zero_without_rain():
    el = np.array([0.0, 5.0, 30.0, 90.0])
    assert np.all(rain_loss_db(el, 8.2e9, 0.0, 5000.0) == 0.0)
    # a station at or above the rain height sees none either
    assert np.all(rain_loss_db(el, 8.2e9, 25.0, 5000.0, station_altitude_m=5000.0) == 0.0)
    assert rain_loss_db(el, 8.2e9, 25.0, 5000.0).shape == (4,)


def test_rain_loss_by_hand_p618_at_30_deg():
    # 10 GHz, 25 mm/h, rain height 5 km, station at sea level, elevation 30 deg:
    #   P.838-1 circular at 10 GHz: k = (0.0101 + 0.00887)/2 = 0.009485,
    #     alpha = (0.0101*1.276 + 0.00887*1.264) / (2*0.009485) = 1.270389
    #   gamma = 0.009485 * 25^1.270389 = 0.566194 dB/km
    #   step 2 (el >= 5): L_s = 5 km / sin 30 = 10 km; step 3: L_G = 10 cos 30 = 8.660 km
    #   step 6: r = 1 / (1 + 0.78 sqrt(8.660 * 0.566194 / 10) - 0.38 (1 - e^(-17.32)))
    #             = 1 / (1 + 0.78 * 0.700241 - 0.38) = 1 / 1.166188 = 0.857494
    #   A = gamma L_s r = 0.566194 * 10 * 0.857494 = 4.8551 dB
    assert float(rain_loss_db(30.0, 10e9, 25.0, 5000.0)) == pytest.approx(4.8551, abs=1e-4)
    assert p618_rain_db(30.0, 10.0, 25.0, 5.0) == pytest.approx(4.8551, abs=1e-4)


def test_rain_loss_by_hand_p618_below_5_deg():
    # same rain, elevation 2 deg (P.618 step 2's curved-Earth form, R_e = 8,500 km):
    #   sin 2 = 0.0348995; L_s = 2*5 / (sqrt(0.0348995^2 + 2*5/8500) + 0.0348995)
    #        = 10 / (0.0489331 + 0.0348995) = 119.285 km; L_G = 119.285 cos 2 = 119.213 km
    #   r = 1 / (1 + 0.78 sqrt(119.213 * 0.566194 / 10) - 0.38) = 1 / (1 + 0.78*2.598028 - 0.38)
    #     = 0.377863
    #   A = 0.566194 * 119.285 * 0.377863 = 25.520 dB
    assert float(rain_loss_db(2.0, 10e9, 25.0, 5000.0)) == pytest.approx(25.520, abs=1e-3)


def test_rain_loss_against_p618_steps():
    for f_ghz in (2.0, 8.2, 11.0, 20.0):
        for rate in (1.0, 10.0, 50.0):
            for el in (0.0, 1.0, 4.9, 5.0, 10.0, 30.0, 60.0, 89.0, 90.0):
                want = p618_rain_db(el, f_ghz, rate, 4.0)
                assert float(rain_loss_db(el, f_ghz * 1e9, rate, 4000.0)) == pytest.approx(
                    want, rel=1e-9)


def test_rain_loss_grows_with_rain_rate():
    rates = np.linspace(0.0, 150.0, 301)
    for el in (2.0, 10.0, 45.0, 90.0):
        loss = [float(rain_loss_db(el, 8.2e9, r, 5000.0)) for r in rates]
        assert loss[0] == 0.0
        assert np.all(np.diff(loss) > 0)


@pytest.mark.parametrize("f_hz", [2.05e9, 4.7e9, 8.2e9])
@pytest.mark.parametrize("rate", [1.0, 5.0, 25.0])
def test_rain_loss_grows_as_elevation_falls(f_hz, rate):
    # monotone on each side of P.618's 5 deg switch of slant-path formula. Two properties of
    # P.618 steps 2-6 themselves limit the ranges checked: just below 5 deg the curved-Earth
    # path is shorter than D/sin(5) (a step down of ~2 dB at 8.2 GHz, 25 mm/h), and within ~1
    # deg of the zenith the horizontal reduction r ~ 1 - 0.78 sqrt(L_G gamma / f) falls faster
    # than 1/sin(el) grows (and with heavy rain, >= ~50 mm/h at 8 GHz, from ~55 deg up)
    for lo, hi in ((5.0, 89.0), (0.0, 4.999)):
        el = np.linspace(hi, lo, 2000)
        loss = rain_loss_db(el, f_hz, rate, 5000.0)
        assert np.all(np.diff(loss) > 0)
    below = float(rain_loss_db(4.999, f_hz, rate, 5000.0))
    at = float(rain_loss_db(5.0, f_hz, rate, 5000.0))
    assert below < at


# --- sky noise -----------------------------------------------------------------------------


def test_sky_noise():
    # T = 275 (1 - 10^(-A/10)) + 2.7 10^(-A/10)
    assert float(sky_noise_temp_k(0.0)) == pytest.approx(2.7, abs=1e-12)
    assert float(sky_noise_temp_k(100.0)) == pytest.approx(275.0, abs=1e-6)
    # 3 dB: a = 0.501187; 275 * 0.498813 + 2.7 * 0.501187 = 137.174 + 1.353 = 138.527 K
    assert float(sky_noise_temp_k(3.0)) == pytest.approx(138.527, abs=1e-3)
    # 0.05 dB (X-band zenith): a = 0.9885531; 275 * 0.0114469 + 2.7 * 0.9885531
    #   = 3.14790 + 2.66909 = 5.81699 K
    assert float(sky_noise_temp_k(0.05)) == pytest.approx(5.81699, abs=1e-5)
    t = sky_noise_temp_k(np.linspace(0.0, 40.0, 401))
    assert t.shape == (401,) and np.all(np.diff(t) > 0) and t[-1] < 275.0
