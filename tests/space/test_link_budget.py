"""The link budget (sinsim.space.links with sinsim.space.radios) against independent
recomputations in linear units, closed-form thresholds and the numbers the issue anchors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_atmosphere import p618_rain_db, shell_path_m, smad_slant_range_m
from test_modcod import EFFICIENCY, TABLE_13

from sinsim.space.links import (
    BOLTZMANN_DBW_PER_K_HZ,
    SPEED_OF_LIGHT_M_PER_S,
    dish_gain_dbi,
    free_space_path_loss_db,
    link_budget,
    propagation_delay_s,
    rate_bps,
)
from sinsim.space.radios import (
    DEFAULT_PROFILES,
    PROFILES,
    RadioProfile,
    default_profile_name,
    node_kind,
    photon_sensitivity_dbw,
    radio_profile,
)

K_J_PER_K = 1.380649e-23  # Boltzmann, exact (SI 2019)
C_M_PER_S = 299792458.0
H_J_S = 6.62607015e-34  # Planck, exact (SI 2019)
R_EARTH_M = 6378137.0
GAS_SHELL_M = 6000.0
T_ATMOSPHERE_K, T_COSMIC_K = 275.0, 2.7
SAT_ALTITUDE_M, UAV_ALTITUDE_M = 550e3, 12e3
# sinsim uses the rounded k = -228.6 dBW/K/Hz of link-budget texts; 10 log10(1.380649e-23) =
# -228.5992, so C/N0 and SNR here differ from sinsim's by 0.0008 dB: compared within 0.002 dB
K_DB_TOL = 2e-3


def db(x: float) -> float:
    return 10.0 * math.log10(x)


def lin(x_db: float) -> float:
    return 10.0 ** (x_db / 10.0)


def elevation_deg(range_m: float, altitude_m: float) -> float:
    """Elevation of a node at ``altitude_m`` seen ``range_m`` away from sea level, by the law of
    cosines: (R + h)^2 = R^2 + d^2 + 2 R d sin(el)."""
    r, d = R_EARTH_M, range_m
    return math.degrees(math.asin(((r + altitude_m) ** 2 - r * r - d * d) / (2 * r * d)))


def sky_k(loss_db: float) -> float:
    a = 10.0 ** (-loss_db / 10.0)
    return T_ATMOSPHERE_K * (1.0 - a) + T_COSMIC_K * a


def expected(p: RadioProfile, range_m: float, el: float | None) -> dict:
    """The budget of ``p``, recomputed in watts and kelvin."""
    wavelength = C_M_PER_S / p.frequency_hz
    if el is None:
        gas = rain = 0.0
    else:
        gas = p.zenith_gas_loss_db * shell_path_m(el, GAS_SHELL_M) / GAS_SHELL_M
        rain = (p618_rain_db(el, p.frequency_hz / 1e9, p.rain_rate_mm_per_h,
                             p.rain_height_m / 1e3) if p.rain_rate_mm_per_h > 0 else 0.0)
    rx_w = (lin(p.tx_power_dbw) * lin(p.tx_antenna_gain_dbi) * lin(p.rx_antenna_gain_dbi)
            * (wavelength / (4 * math.pi * range_m)) ** 2
            / lin(p.pointing_loss_db) / lin(p.polarization_loss_db) / lin(gas) / lin(rain))
    t = p.system_noise_temp_k
    if p.sky_noise and el is not None:
        t += sky_k(gas + rain) - sky_k(p.zenith_gas_loss_db)
    cn0 = rx_w / (K_J_PER_K * t)  # C/N0, Hz
    extra = p.implementation_loss_db + p.margin_db
    out = {"fspl": db((4 * math.pi * range_m / wavelength) ** 2), "gas": gas, "rain": rain,
           "rx": db(rx_w), "t": t, "cn0": db(cn0), "edge": math.inf}
    if p.rate_model == "acm":
        rs = p.bandwidth_hz / (1 + p.roll_off)
        esn0 = db(cn0 / rs)
        top = EFFICIENCY[p.max_modcod] if p.max_modcod else math.inf
        ok = [(eff, name) for name, eff, thr in TABLE_13 if eff <= top and thr + extra <= esn0]
        eff, name = max(ok) if ok else (0.0, "")
        out.update(snr=esn0, modcod=name, rate=rs * eff,
                   edge=min(abs(esn0 - thr - extra) for _, _, thr in TABLE_13))
    elif p.rate_model == "fixed":
        ebn0 = db(cn0 / p.data_rate_bps)
        if p.sensitivity_dbw is not None:
            over = db(rx_w) - p.implementation_loss_db - p.sensitivity_dbw - p.margin_db
            out.update(snr=math.nan)
        else:
            over = ebn0 - p.implementation_loss_db - p.required_ebn0_db - p.margin_db
            out.update(snr=ebn0)
        up = over >= 0
        out.update(modcod=p.modulation if up else "", rate=p.data_rate_bps if up else 0.0,
                   edge=abs(over))
    else:
        snr = cn0 / p.bandwidth_hz
        rate = p.efficiency * p.bandwidth_hz * math.log2(1 + snr / lin(extra))
        out.update(snr=db(snr), modcod="", rate=min(rate, p.max_rate_bps or math.inf))
    return out


# The hand-checked budgets: every default profile plus isl_optical (and X-band in rain), at
# ranges given as elevations for ground links (node at 550 km for a satellite, 12 km for a UAV;
# ranges from SMAD's angle formulas) and as ranges for links with no ground end.
# The issue's anchors at 550 km: 35 deg <-> 891.6 km, 20 deg <-> 1293.8 km, 10 deg <-> 1815.7 km
# (892 / 1,294 / 1,816 km), tested in test_anchor_ranges_and_rates.
SAT_ELEVATIONS = (35.0, 20.0, 10.0, 1.0)
UAV_ELEVATIONS = (30.0, 5.0, 0.5)
HAND_CASES = {
    # name: (overrides, altitude of the far end for a ground link or None, ranges or elevations)
    "leo_xband_dvbs2": ({}, SAT_ALTITUDE_M, SAT_ELEVATIONS),
    "leo_sband_command": ({}, SAT_ALTITUDE_M, SAT_ELEVATIONS),
    "isl_ka_rf": ({}, None, (1000e3, 3000e3, 5000e3)),
    "isl_optical": ({}, None, (1000e3, 3000e3, 5000e3)),
    "uav_cband_dvbs2": ({}, UAV_ALTITUDE_M, UAV_ELEVATIONS),
    "ground_cband_uav": ({}, UAV_ALTITUDE_M, UAV_ELEVATIONS),
    "uav_air_to_air": ({}, None, (20e3, 100e3, 300e3)),
}
RAINY_XBAND = {"rain_rate_mm_per_h": 10.0}


def _hand_params():
    out = []
    for name, (overrides, altitude, points) in HAND_CASES.items():
        for x in points:
            out.append(pytest.param(name, overrides, altitude, x, id=f"{name}-{x:g}"))
    for el in SAT_ELEVATIONS:
        out.append(pytest.param("leo_xband_dvbs2", RAINY_XBAND, SAT_ALTITUDE_M, el,
                                id=f"leo_xband_dvbs2_rain10-{el:g}"))
    return out


def test_hand_cases_cover_the_defaults():
    assert set(HAND_CASES) == set(DEFAULT_PROFILES.values()) | {"isl_optical"}
    for (tx, rx), name in DEFAULT_PROFILES.items():
        altitude = HAND_CASES[name][1]
        if "ground" not in (tx, rx):
            assert altitude is None, name
        else:
            far = rx if tx == "ground" else tx
            assert altitude == {"satellite": SAT_ALTITUDE_M, "uav": UAV_ALTITUDE_M}[far], name


@pytest.mark.parametrize(("name", "overrides", "altitude", "point"), _hand_params())
def test_budget_by_hand(name, overrides, altitude, point):
    p = radio_profile(name, **overrides)
    if altitude is None:
        range_m, el = point, None
    else:
        range_m = smad_slant_range_m(point, altitude)
        el = elevation_deg(range_m, altitude)
        assert el == pytest.approx(point, abs=1e-6)
    want = expected(p, range_m, el)
    # an independent check can only tell a MODCOD (or up/down) where the link is clear of a
    # threshold by more than the k difference
    assert want["edge"] > 5 * K_DB_TOL, "pick a range away from a threshold"
    b = link_budget(p, range_m, el)
    assert float(b.fspl_db) == pytest.approx(want["fspl"], abs=1e-9)
    assert float(b.gas_loss_db) == pytest.approx(want["gas"], abs=1e-9)
    assert float(b.rain_loss_db) == pytest.approx(want["rain"], abs=1e-9)
    assert float(b.rx_power_dbw) == pytest.approx(want["rx"], abs=1e-9)
    assert float(b.noise_temp_k) == pytest.approx(want["t"], rel=1e-9)
    assert float(b.cn0_dbhz) == pytest.approx(want["cn0"], abs=K_DB_TOL)
    if math.isnan(want["snr"]):
        assert np.isnan(b.snr_db)
    else:
        assert float(b.snr_db) == pytest.approx(want["snr"], abs=K_DB_TOL)
    assert b.modcod == want["modcod"]
    rel = 1e-4 if p.rate_model == "shannon" else 1e-12
    assert float(b.rate_bps) == pytest.approx(want["rate"], rel=rel, abs=1e-9)
    assert float(rate_bps(range_m, p, el)) == float(b.rate_bps)
    if el is None:
        assert np.isnan(b.elevation_deg)
    else:
        assert float(b.elevation_deg) == pytest.approx(el, abs=1e-12)


def test_hand_cases_span_the_rate_models():
    # the hand-checked points reach several MODCODs, and links that drop out
    got = {}
    for name, (overrides, altitude, points) in HAND_CASES.items():
        p = radio_profile(name, **overrides)
        for x in points:
            d = x if altitude is None else smad_slant_range_m(x, altitude)
            el = None if altitude is None else elevation_deg(d, altitude)
            got.setdefault(name, []).append(link_budget(p, d, el).modcod)
    assert got["isl_ka_rf"] == ["16APSK 9/10", "8PSK 2/3", "QPSK 2/3"]
    assert got["isl_optical"] == ["OOK 1 Gbit/s", "OOK 1 Gbit/s", ""]
    assert got["uav_air_to_air"] == ["16APSK 5/6", "QPSK 1/4", ""]
    assert got["uav_cband_dvbs2"][-1] == "16APSK 9/10"
    assert got["ground_cband_uav"][-1] == "16APSK 8/9"
    assert got["leo_sband_command"] == ["BPSK 250 kbit/s"] * 4
    assert "16APSK 9/10" in got["leo_xband_dvbs2"] and len(set(got["leo_xband_dvbs2"])) > 1


def test_anchor_ranges_and_rates():
    # at 550 km: 35 deg <-> 891.6 km, 20 deg <-> 1293.8 km, 10 deg <-> 1815.7 km (issue: 892 /
    # 1,294 / 1,816 km)
    for el, km in ((35.0, 891.6), (20.0, 1293.8), (10.0, 1815.7)):
        assert round(smad_slant_range_m(el, SAT_ALTITUDE_M) / 1e3, 1) == km
        assert elevation_deg(km * 1e3, SAT_ALTITUDE_M) == pytest.approx(el, abs=0.01)
    # 10 MHz at DVB-S2's best MODCOD: 10e6 / 1.2 * 4.453027 = 37.1 Mbit/s (the C-band UAV link
    # with its cap lifted: a short, high link reaches 32APSK 9/10)
    b = link_budget(radio_profile("uav_cband_dvbs2", max_modcod=None), 15e3, 60.0)
    assert b.modcod == "32APSK 9/10"
    assert float(b.rate_bps) == pytest.approx(10e6 / 1.2 * 4.453027, rel=1e-12)
    assert round(float(b.rate_bps) / 1e6, 1) == 37.1
    # the X-band modem tops out at 16APSK 9/10: 10e6 / 1.2 * 3.567342 = 29.73 Mbit/s, all pass
    # long above 10 deg
    for el in (90.0, 35.0, 20.0, 10.0):
        d = smad_slant_range_m(el, SAT_ALTITUDE_M)
        b = link_budget(PROFILES["leo_xband_dvbs2"], d, el)
        assert b.modcod == "16APSK 9/10"
        assert round(float(b.rate_bps) / 1e6, 2) == 29.73


def test_legacy_profiles_reproduce_the_old_defaults():
    # sinsim's defaults before MODCODs (Shannon x 0.5, capped): 41.7 / 23.4 Mbit/s X-band down and
    # 4.0 / 3.8 Mbit/s S-band up at 550 / 2000 km
    for name, rates in (("legacy_xband_shannon", (41.7e6, 23.4e6)),
                        ("legacy_sband_shannon", (4.0e6, 3.8e6))):
        p = PROFILES[name]
        for d, want in zip((550e3, 2000e3), rates):
            got = float(rate_bps(d, p))
            assert round(got / 1e6, 1) == want / 1e6
            assert got == pytest.approx(expected(p, d, None)["rate"], rel=1e-4)
    assert float(rate_bps(550e3, PROFILES["legacy_sband_shannon"])) == 4e6  # the cap


def _random_points(rng, n):
    ranges = 10 ** rng.uniform(3.0, 8.0, n)
    ranges[:3] = (1e3, 10e3, 100e3)
    elevations = rng.uniform(0.0, 90.0, n)
    return ranges, elevations


@pytest.mark.parametrize("name", list(PROFILES))
def test_rate_never_above_the_radio_s_best(name):
    p = PROFILES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    ranges, elevations = _random_points(rng, 3000)
    for el in (elevations, None):
        b = link_budget(p, ranges, el)
        rate = b.rate_bps
        assert rate.shape == ranges.shape and np.all(rate >= 0)
        if p.rate_model == "acm":
            rs = p.bandwidth_hz / (1 + p.roll_off)
            top = EFFICIENCY[p.max_modcod] if p.max_modcod else math.inf
            best = max(eff for eff in EFFICIENCY.values() if eff <= top)
            assert np.all(rate <= rs * best * (1 + 1e-12))
            assert rate[0] == pytest.approx(rs * best, rel=1e-12)  # reached at 1 km
            # every rate is a MODCOD's, and the one named
            named = np.array([rs * EFFICIENCY.get(m, 0.0) for m in b.modcod])
            np.testing.assert_allclose(rate, named, rtol=1e-12)
        elif p.rate_model == "fixed":
            assert set(np.unique(rate)) <= {0.0, p.data_rate_bps}
            assert np.all((rate > 0) == (b.modcod == p.modulation))
        else:
            assert np.all(rate <= p.max_rate_bps)


@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("elevation", [None, 0.0, 10.0, 45.0, 90.0])
def test_rate_non_increasing_with_range(name, elevation):
    ranges = np.geomspace(1e3, 5e7, 4000)
    for p in (PROFILES[name], PROFILES[name].replace(rain_rate_mm_per_h=20.0)
              if 1e9 <= PROFILES[name].frequency_hz <= 50e9 else PROFILES[name]):
        rate = rate_bps(ranges, p, elevation)
        assert np.all(np.diff(rate) <= 0)
        if p.rate_model != "shannon":
            assert rate[-1] == 0.0  # 50,000 km is out of reach of every radio


def test_fixed_radio_drops_out_at_its_eb_n0_threshold():
    # solve Eb/N0 - L_impl = required + margin for the range, with the documented budget
    # (k = -228.6 dBW/K/Hz as sinsim uses; gas at a fixed 10 deg elevation):
    #   20 log10(4 pi d / lambda) = EIRP + G_rx - L_point - L_pol - A_gas - k_dB - 10 log10 T
    #                               - 10 log10 R - L_impl - required - margin
    p = PROFILES["leo_sband_command"]
    assert BOLTZMANN_DBW_PER_K_HZ == -228.6
    assert abs(BOLTZMANN_DBW_PER_K_HZ - db(K_J_PER_K)) < 1e-3  # 0.0008 dB
    el = 10.0
    gas = p.zenith_gas_loss_db * shell_path_m(el, GAS_SHELL_M) / GAS_SHELL_M
    fspl = (p.tx_power_dbw + p.tx_antenna_gain_dbi + p.rx_antenna_gain_dbi - p.pointing_loss_db
            - p.polarization_loss_db - gas + 228.6 - db(p.system_noise_temp_k)
            - db(p.data_rate_bps) - p.implementation_loss_db - p.required_ebn0_db - p.margin_db)
    edge_m = C_M_PER_S / (4 * math.pi * p.frequency_hz) * 10 ** (fspl / 20)
    # 10 + 35.8 + 3 - 0.5 - 0.5 - 0.1995 + 228.6 - 26.99 - 53.98 - 1 - 9.6 - 3 = 181.63 dB
    assert round(fspl, 2) == 181.63
    assert 12_000e3 < edge_m < 15_000e3
    b = link_budget(p, np.array([edge_m * (1 - 1e-9), edge_m * (1 + 1e-9)]), el)
    assert b.rate_bps.tolist() == [250e3, 0.0]
    assert b.modcod.tolist() == ["BPSK 250 kbit/s", ""]
    assert b.snr_db[0] == pytest.approx(p.required_ebn0_db + p.margin_db
                                        + p.implementation_loss_db, abs=1e-7)


def test_optical_radio_drops_out_at_its_sensitivity():
    # P_rx - L_impl = sensitivity + margin:
    #   20 log10(4 pi d / lambda) = P_tx + G_tx + G_rx - L_point - L_pol - L_impl - S - margin
    p = PROFILES["isl_optical"]
    fspl = (p.tx_power_dbw + p.tx_antenna_gain_dbi + p.rx_antenna_gain_dbi - p.pointing_loss_db
            - p.polarization_loss_db - p.implementation_loss_db - p.sensitivity_dbw
            - p.margin_db)
    # 0 + 103.2 + 103.2 - 3 - 0 - 3 + 74.15 - 3 = 271.55 dB
    assert fspl == pytest.approx(271.55, abs=1e-9)
    edge_m = C_M_PER_S / (4 * math.pi * p.frequency_hz) * 10 ** (fspl / 20)
    assert 4_000e3 < edge_m < 5_000e3
    b = link_budget(p, np.array([edge_m * (1 - 1e-9), edge_m * (1 + 1e-9)]))
    assert b.rate_bps.tolist() == [1e9, 0.0]
    assert np.all(np.isnan(b.snr_db))


def test_bpsk_required_eb_n0():
    # uncoded BPSK: BER = Q(sqrt(2 Eb/N0)) = erfc(sqrt(Eb/N0)) / 2; solve BER = 1e-5 by bisection
    def ber(ebn0_db):
        return 0.5 * math.erfc(math.sqrt(lin(ebn0_db)))

    lo, hi = 0.0, 20.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ber(mid) > 1e-5 else (lo, mid)
    assert lo == pytest.approx(9.5879, abs=1e-4)
    # the profile's 9.6 dB is that rounded to 0.1 dB (0.012 dB above it: at 9.6 dB the bit error
    # rate is 9.7e-6, just inside the requirement)
    required = PROFILES["leo_sband_command"].required_ebn0_db
    assert round(lo, 1) == required
    assert abs(required - lo) < 0.015
    assert ber(required) <= 1e-5


def test_free_space_path_loss_by_hand():
    # 20 log10(4 pi d f / c) at d = 1000 km, f = 8.2 GHz:
    #   20 log10(4 pi)       =  21.984
    #   20 log10(1e6 m)      = 120.000
    #   20 log10(8.2e9 Hz)   = 198.276
    #   -20 log10(c)         = -169.537
    #   total                = 170.723 dB
    assert free_space_path_loss_db(1_000e3, 8.2e9) == pytest.approx(
        21.984 + 120.0 + 198.276 - 169.537, abs=2e-3)
    # doubling the range adds 6.02 dB
    assert free_space_path_loss_db(2_000e3, 8.2e9) - free_space_path_loss_db(
        1_000e3, 8.2e9) == pytest.approx(20 * math.log10(2), abs=1e-12)
    assert float(link_budget(PROFILES["legacy_xband_shannon"], 1_000e3).fspl_db) == (
        pytest.approx(170.723, abs=2e-3))


def test_antennas_and_optical_sensitivity_by_hand():
    # 3.7 m dish, eta 0.6: 0.6 (pi 3.7 8.2e9 / c)^2 = 0.6 * 317.94^2 = 60,652 -> 47.83 dBi
    assert dish_gain_dbi(3.7, 8.2e9) == pytest.approx(47.83, abs=0.005)
    assert PROFILES["leo_xband_dvbs2"].rx_antenna_gain_dbi == 47.8
    # at 2.05 GHz: 0.6 * 79.49^2 = 3,791 -> 35.79 dBi
    assert PROFILES["leo_sband_command"].tx_antenna_gain_dbi == 35.8
    assert dish_gain_dbi(3.7, 2.05e9) == pytest.approx(35.79, abs=0.005)
    # G/T of the X-band station: 47.8 - 10 log10(150) = 47.8 - 21.761 = 26.04 dB/K
    assert PROFILES["leo_xband_dvbs2"].g_over_t_db_per_k == pytest.approx(26.039, abs=1e-3)
    # 8 cm telescope, eta 0.8 at 1550 nm: 0.8 (pi 0.08 / 1.55e-6)^2 = 2.103e10 -> 103.2 dBi
    assert PROFILES["isl_optical"].tx_antenna_gain_dbi == 103.2
    # 300 photons/bit at 1 Gbit/s, 1550 nm: 300 * 1e9 * h c / lambda = 300e9 * 1.2816e-19 J
    #   = 3.845e-8 W -> -74.15 dBW
    photon_j = H_J_S * C_M_PER_S / 1550e-9
    assert db(300 * 1e9 * photon_j) == pytest.approx(-74.15, abs=0.005)
    assert photon_sensitivity_dbw(300, 1550e-9, 1e9) == pytest.approx(
        db(300e9 * photon_j), abs=1e-12)
    assert PROFILES["isl_optical"].sensitivity_dbw == -74.15
    for bad in ((0.0, 8e9), (1.0, 0.0), (1.0, 8e9, 0.0), (1.0, 8e9, 1.1)):
        with pytest.raises(ValueError):
            dish_gain_dbi(*bad)


def test_vectorised_budget_and_no_ground_end():
    p = PROFILES["leo_xband_dvbs2"]
    ranges = np.array([900e3, 1300e3, 1800e3])
    b = link_budget(p, ranges, 20.0)  # one elevation for all
    for line in (b.fspl_db, b.gas_loss_db, b.rx_power_dbw, b.noise_temp_k, b.snr_db,
                 b.modcod, b.rate_bps):
        assert line.shape == (3,)
    # NaN elevation (or None) = no ground end: no gas, no rain, no sky noise
    rainy = p.replace(rain_rate_mm_per_h=25.0)
    mixed = link_budget(rainy, ranges, np.array([np.nan, 20.0, np.nan]))
    none = link_budget(rainy, ranges)
    assert mixed.gas_loss_db[0] == 0.0 and mixed.rain_loss_db[0] == 0.0
    assert mixed.gas_loss_db[1] > 0.0 and mixed.rain_loss_db[1] > 0.0
    assert mixed.noise_temp_k[0] == p.system_noise_temp_k < mixed.noise_temp_k[1]
    assert np.all(none.gas_loss_db == 0.0) and np.all(none.noise_temp_k == 150.0)
    np.testing.assert_array_equal(none.rate_bps[[0, 2]], mixed.rate_bps[[0, 2]])
    # at the zenith the sky adds nothing over the clear-sky system temperature
    assert float(link_budget(p, 550e3, 90.0).noise_temp_k) == pytest.approx(150.0, abs=1e-9)


def test_delay_and_validation():
    assert propagation_delay_s(SPEED_OF_LIGHT_M_PER_S / 1000.0) == pytest.approx(1e-3)
    assert propagation_delay_s(np.array([0.0, 299792458.0])).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        propagation_delay_s(-1.0)
    with pytest.raises(ValueError):
        free_space_path_loss_db(-1.0, 8e9)
    with pytest.raises(ValueError):
        free_space_path_loss_db(1e6, 0.0)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            link_budget(PROFILES["isl_ka_rf"], bad)


# --- profiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "overrides"), [
    ("isl_ka_rf", {"rate_model": "bogus"}),
    ("leo_sband_command", {"data_rate_bps": None}),
    ("leo_sband_command", {"data_rate_bps": 0.0}),
    ("leo_sband_command", {"sensitivity_dbw": -120.0}),  # both thresholds
    ("leo_sband_command", {"required_ebn0_db": None}),  # neither
    ("isl_optical", {"sensitivity_dbw": None}),  # neither
    ("isl_ka_rf", {"max_modcod": "64APSK 9/10"}),
    ("isl_ka_rf", {"roll_off": 0.0}),
    ("isl_ka_rf", {"roll_off": 1.5}),
    ("legacy_xband_shannon", {"efficiency": 1.5}),
    ("legacy_xband_shannon", {"efficiency": 0.0}),
    ("legacy_xband_shannon", {"max_rate_bps": 0.0}),
    ("leo_xband_dvbs2", {"pointing_loss_db": -0.1}),
    ("leo_xband_dvbs2", {"polarization_loss_db": -0.1}),
    ("leo_xband_dvbs2", {"implementation_loss_db": -0.1}),
    ("leo_xband_dvbs2", {"margin_db": -0.1}),
    ("leo_xband_dvbs2", {"zenith_gas_loss_db": -0.1}),
    ("leo_xband_dvbs2", {"rain_rate_mm_per_h": -1.0}),
    ("leo_xband_dvbs2", {"rain_height_m": -1.0}),
    ("isl_optical", {"rain_rate_mm_per_h": 5.0}),  # 193 THz
    ("isl_ka_rf", {"frequency_hz": 60e9, "rain_rate_mm_per_h": 5.0}),
    ("leo_xband_dvbs2", {"frequency_hz": 0.9e9, "rain_rate_mm_per_h": 5.0}),
    ("leo_xband_dvbs2", {"frequency_hz": 0.0}),
    ("leo_xband_dvbs2", {"bandwidth_hz": 0.0}),
    ("leo_xband_dvbs2", {"system_noise_temp_k": -1.0}),
    ("leo_xband_dvbs2", {"tx_power_dbw": math.nan}),
    ("leo_xband_dvbs2", {"tx_power_dbw": True}),
])
def test_profile_validation(name, overrides):
    with pytest.raises(ValueError):
        PROFILES[name].replace(**overrides)


def test_radio_profile_threshold_overrides():
    # radio_profile lets a threshold given one way replace the profile's given the other way;
    # both given at once is still an error
    p = radio_profile("leo_sband_command", sensitivity_dbw=-120.0)
    assert (p.required_ebn0_db, p.sensitivity_dbw) == (None, -120.0)
    q = radio_profile("isl_optical", required_ebn0_db=12.0)
    assert (q.required_ebn0_db, q.sensitivity_dbw) == (12.0, None)
    with pytest.raises(ValueError):
        radio_profile("leo_sband_command", sensitivity_dbw=-120.0, required_ebn0_db=9.6)
    with pytest.raises(ValueError):
        radio_profile("leo_sband_command", required_ebn0_db=None)
    with pytest.raises(ValueError):
        radio_profile("leo_xband_dvbs2", margin_db=-1.0)


def test_profile_overrides_and_names():
    p = radio_profile("leo_xband_dvbs2", margin_db=4.0, rain_rate_mm_per_h=10.0)
    assert (p.margin_db, p.rain_rate_mm_per_h, p.name) == (4.0, 10.0, "leo_xband_dvbs2")
    assert radio_profile("leo_xband_dvbs2") is PROFILES["leo_xband_dvbs2"]
    # rain at the ends of P.838's table is allowed; a Ka-band ISL at 60 GHz without rain is too
    radio_profile("isl_ka_rf", frequency_hz=50e9, rain_rate_mm_per_h=5.0)
    radio_profile("isl_ka_rf", frequency_hz=60e9)
    with pytest.raises(KeyError) as err:
        radio_profile("leo_kaband")
    assert all(name in str(err.value) for name in PROFILES)
    for key, name in DEFAULT_PROFILES.items():
        assert default_profile_name(*key) == name
    for key in (("satellite", "uav"), ("uav", "satellite"), ("ground", "ground")):
        with pytest.raises(KeyError):
            default_profile_name(*key)


def test_node_kind():
    from sinsim.space.nodes import GroundStation

    assert node_kind(GroundStation("gs", 45.0, 7.0)) == "ground"
    with pytest.raises(TypeError):
        node_kind("gs")
