"""Link budget against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinsim.space.links import (
    BOLTZMANN_DBW_PER_K_HZ,
    LEO_DOWNLINK_X_BAND,
    LEO_UPLINK_S_BAND,
    SPEED_OF_LIGHT_M_PER_S,
    BudgetLinkParams,
    dish_gain_dbi,
    free_space_path_loss_db,
    propagation_delay_s,
    rate_bps,
    snr_db,
)


def test_free_space_path_loss_by_hand():
    # 20 log10(4 pi d f / c) at d = 1000 km, f = 8.2 GHz:
    #   20 log10(4 pi)       =  21.984
    #   20 log10(1e6 m)      = 120.000
    #   20 log10(8.2e9 Hz)   = 198.276
    #   -20 log10(c)         = -169.537
    #   total                = 170.723 dB
    assert free_space_path_loss_db(1_000e3, 8.2e9) == pytest.approx(
        21.984 + 120.0 + 198.276 - 169.537, abs=2e-3
    )
    # doubling the range adds 6.02 dB
    assert free_space_path_loss_db(2_000e3, 8.2e9) - free_space_path_loss_db(
        1_000e3, 8.2e9
    ) == pytest.approx(20 * math.log10(2), abs=1e-12)


def test_snr_and_rate_by_hand():
    p = BudgetLinkParams(
        frequency_hz=2.0e9,
        tx_power_dbw=10.0,
        tx_antenna_gain_dbi=20.0,
        rx_antenna_gain_dbi=30.0,
        system_noise_temp_k=290.0,
        bandwidth_hz=1e6,
        efficiency=0.5,
        max_rate_bps=1e9,
        misc_losses_db=2.0,
    )
    # FSPL(1500 km, 2 GHz) = 21.984 + 20 log10(1.5e6)=123.522 + 20 log10(2e9)=186.021 - 169.537 = 161.990 dB
    fspl = 21.984 + 123.522 + 186.021 - 169.537
    # received = 10 + 20 + 30 - 161.990 - 2 = -103.990 dBW
    # noise    = -228.6 + 10 log10(290)=24.624 + 10 log10(1e6)=60 = -143.976 dBW
    # SNR      = 39.986 dB
    snr = (10 + 20 + 30 - fspl - 2) - (-228.6 + 24.624 + 60.0)
    assert snr_db(1_500e3, p) == pytest.approx(snr, abs=2e-3)
    # rate = 0.5 * 1e6 * log2(1 + 10^(3.9986)) = 0.5e6 * 13.288 = 6.644 Mbps
    assert rate_bps(1_500e3, p) == pytest.approx(0.5e6 * math.log2(1 + 10 ** (snr / 10)), rel=1e-5)
    assert rate_bps(1_500e3, p) == pytest.approx(6.644e6, rel=1e-3)
    capped = BudgetLinkParams(**{**p.__dict__, "max_rate_bps": 1e6})
    assert rate_bps(1_500e3, capped) == 1e6


def test_vectorised_and_monotone_defaults():
    r = np.array([500e3, 1000e3, 2000e3, 3000e3])
    for params in (LEO_DOWNLINK_X_BAND, LEO_UPLINK_S_BAND):
        rates = rate_bps(r, params)
        assert rates.shape == (4,)
        assert np.all(np.diff(rates) <= 0) and np.all(rates > 0)
        assert np.all(rates <= params.max_rate_bps)
    # the documented defaults: ~25-45 Mbps X-band down, a few Mbps S-band up, over LEO pass ranges
    assert (
        20e6 < rate_bps(2000e3, LEO_DOWNLINK_X_BAND) < rate_bps(550e3, LEO_DOWNLINK_X_BAND) < 50e6
    )
    assert 3e6 < rate_bps(2000e3, LEO_UPLINK_S_BAND) <= 4e6
    assert dish_gain_dbi(3.7, 8.2e9) == pytest.approx(
        LEO_DOWNLINK_X_BAND.rx_antenna_gain_dbi, abs=0.05
    )
    assert dish_gain_dbi(3.7, 2.05e9) == pytest.approx(
        LEO_UPLINK_S_BAND.tx_antenna_gain_dbi, abs=0.05
    )
    assert LEO_DOWNLINK_X_BAND.g_over_t_db_per_k == pytest.approx(47.8 - 21.761, abs=1e-3)
    assert BOLTZMANN_DBW_PER_K_HZ == -228.6


def test_delay_and_validation():
    assert propagation_delay_s(SPEED_OF_LIGHT_M_PER_S / 1000.0) == pytest.approx(1e-3)
    assert propagation_delay_s(np.array([0.0, 299792458.0])).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        free_space_path_loss_db(-1.0, 8e9)
    with pytest.raises(ValueError):
        free_space_path_loss_db(1e6, 0.0)
    with pytest.raises(ValueError):
        BudgetLinkParams(efficiency=1.5)
    with pytest.raises(ValueError):
        BudgetLinkParams(bandwidth_hz=0.0)
