"""Radio link model: free-space link budget -> SNR -> Shannon-style rate.

``rate = min(max_rate_bps, efficiency * bandwidth_hz * log2(1 + SNR))`` with

``SNR_dB = P_tx + G_tx + G_rx - FSPL(range, f) - L_misc - (k_dB + 10 log10(T_sys) + 10 log10(B))``

(the usual link equation, e.g. Wertz & Larson, *Space Mission Analysis and
Design*, ch. 13; Pratt, Bostian & Allnutt, *Satellite Communications*, ch. 4).
The default parameter sets and where their numbers come from are documented
in ``docs/space.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .constants import BOLTZMANN_DBW_PER_K_HZ, SPEED_OF_LIGHT_M_PER_S

__all__ = [
    "SPEED_OF_LIGHT_M_PER_S",
    "BOLTZMANN_DBW_PER_K_HZ",
    "free_space_path_loss_db",
    "propagation_delay_s",
    "BudgetLinkParams",
    "LEO_DOWNLINK_X_BAND",
    "LEO_UPLINK_S_BAND",
    "DEFAULT_SPACE_TO_GROUND",
    "DEFAULT_GROUND_TO_SPACE",
    "dish_gain_dbi",
    "snr_db",
    "rate_bps",
]


def _positive_range(range_m) -> np.ndarray:
    r = np.asarray(range_m, dtype=float)
    if np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise ValueError("range_m must be finite and > 0")
    return r


def free_space_path_loss_db(range_m, frequency_hz):
    """Free-space path loss ``20 log10(4 pi d f / c)`` in dB (vectorised)."""
    f = np.asarray(frequency_hz, dtype=float)
    if np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise ValueError("frequency_hz must be finite and > 0")
    return 20.0 * np.log10(4.0 * math.pi * _positive_range(range_m) * f / SPEED_OF_LIGHT_M_PER_S)


def propagation_delay_s(range_m):
    """One-way propagation delay ``range / c`` in seconds (vectorised)."""
    r = np.asarray(range_m, dtype=float)
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise ValueError("range_m must be finite and >= 0")
    return r / SPEED_OF_LIGHT_M_PER_S


def dish_gain_dbi(
    diameter_m: float, frequency_hz: float, aperture_efficiency: float = 0.6
) -> float:
    """Parabolic dish gain ``eta (pi D f / c)^2`` in dBi (standard aperture formula)."""
    if diameter_m <= 0 or frequency_hz <= 0 or not 0 < aperture_efficiency <= 1:
        raise ValueError("diameter_m, frequency_hz must be > 0 and 0 < aperture_efficiency <= 1")
    return 10.0 * math.log10(
        aperture_efficiency * (math.pi * diameter_m * frequency_hz / SPEED_OF_LIGHT_M_PER_S) ** 2
    )


@dataclass(frozen=True)
class BudgetLinkParams:
    """Link-budget parameters.  Defaults: the X-band LEO downlink of docs/space.md.

    Satellite (2 W into a 6 dBi patch) -> 3.7 m ground dish at 8.2 GHz,
    T_sys 150 K, 10 MHz, half of Shannon capacity, capped at the radio's
    50 Mbps, 3 dB of pointing/polarisation/atmospheric/implementation loss.
    """

    frequency_hz: float = 8.2e9  # X-band EESS downlink allocation 8025-8400 MHz (ITU RR Art. 5)
    tx_power_dbw: float = 3.0  # 2 W RF output, typical CubeSat X-band transmitter
    tx_antenna_gain_dbi: float = 6.0  # X-band patch antenna on the satellite (typ. 5-8 dBi)
    rx_antenna_gain_dbi: float = (
        47.8  # 3.7 m dish, 60 % aperture efficiency at 8.2 GHz (dish_gain_dbi)
    )
    system_noise_temp_k: float = 150.0  # ground X-band receive chain (G/T ~ 26 dB/K)
    bandwidth_hz: float = 10e6
    efficiency: float = 0.5  # achieved fraction of Shannon capacity (modulation/coding gap)
    max_rate_bps: float = 50e6  # radio's highest data rate
    misc_losses_db: float = 3.0  # pointing 1 + polarisation 0.5 + atmosphere 1 + implementation 0.5

    def __post_init__(self):
        for name in ("frequency_hz", "system_noise_temp_k", "bandwidth_hz", "max_rate_bps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        if not (0 < self.efficiency <= 1):
            raise ValueError(f"efficiency must be in (0, 1], got {self.efficiency!r}")
        for name in (
            "tx_power_dbw",
            "tx_antenna_gain_dbi",
            "rx_antenna_gain_dbi",
            "misc_losses_db",
        ):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")

    @property
    def eirp_dbw(self) -> float:
        return self.tx_power_dbw + self.tx_antenna_gain_dbi

    @property
    def g_over_t_db_per_k(self) -> float:
        return self.rx_antenna_gain_dbi - 10.0 * math.log10(self.system_noise_temp_k)


LEO_DOWNLINK_X_BAND = BudgetLinkParams()
LEO_UPLINK_S_BAND = BudgetLinkParams(
    frequency_hz=2.05e9,  # S-band space-operation uplink allocation 2025-2110 MHz (ITU RR Art. 5)
    tx_power_dbw=10.0,  # 10 W ground power amplifier
    tx_antenna_gain_dbi=35.8,  # the same 3.7 m dish at 2.05 GHz, 60 % efficiency (dish_gain_dbi)
    rx_antenna_gain_dbi=3.0,  # wide-beam S-band patch on the satellite
    system_noise_temp_k=500.0,  # satellite receiver looking at the 290 K Earth, NF ~2 dB
    bandwidth_hz=1e6,
    efficiency=0.5,
    max_rate_bps=4e6,
    misc_losses_db=3.0,
)

DEFAULT_SPACE_TO_GROUND = (
    LEO_DOWNLINK_X_BAND  # alias: default for links from a node in space to the ground
)
DEFAULT_GROUND_TO_SPACE = (
    LEO_UPLINK_S_BAND  # alias: default for links from the ground to a node in space
)


def snr_db(range_m, params: BudgetLinkParams):
    """Signal-to-noise ratio in dB at ``range_m`` (vectorised)."""
    noise_dbw = (
        BOLTZMANN_DBW_PER_K_HZ
        + 10.0 * math.log10(params.system_noise_temp_k)
        + 10.0 * math.log10(params.bandwidth_hz)
    )
    received_dbw = (
        params.tx_power_dbw
        + params.tx_antenna_gain_dbi
        + params.rx_antenna_gain_dbi
        - free_space_path_loss_db(range_m, params.frequency_hz)
        - params.misc_losses_db
    )
    return received_dbw - noise_dbw


def rate_bps(range_m, params: BudgetLinkParams):
    """``min(max_rate_bps, efficiency * bandwidth * log2(1 + SNR_linear))`` (vectorised)."""
    snr_lin = 10.0 ** (np.asarray(snr_db(range_m, params)) / 10.0)
    return np.minimum(
        params.max_rate_bps, params.efficiency * params.bandwidth_hz * np.log2(1.0 + snr_lin)
    )
