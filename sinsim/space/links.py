"""The link budget: from a radio profile, a range and an elevation to SNR, MODCOD and rate.

    EIRP      = P_tx + G_tx
    P_rx      = EIRP + G_rx - FSPL(d, f) - L_pointing - L_polarisation - A_gas(el) - A_rain(el)
    T         = T_sys + sky-noise rise(el)                  (ground receivers, when enabled)
    C/N0      = P_rx - k_dB - 10 log10 T                    (dB-Hz)
    acm:      Es/N0 = C/N0 - 10 log10 R_s, R_s = B / (1 + roll-off); the best MODCOD with
              threshold + L_impl + margin <= Es/N0; rate = R_s * bits/symbol
    fixed:    Eb/N0 = C/N0 - 10 log10 R; rate = R if Eb/N0 - L_impl >= required + margin
              (or P_rx - L_impl >= sensitivity + margin), else 0
    shannon:  SNR = C/N0 - 10 log10 B; rate = min(cap, eff * B * log2(1 + SNR - L_impl - margin))

(the link equation of Wertz & Larson, *Space Mission Analysis and Design*, 3rd ed., ch. 13, and
Pratt, Bostian & Allnutt, *Satellite Communications*, 2nd ed., ch. 4). ``elevation_deg`` is the
elevation of the path at its ground end; NaN (or None) for a path with no ground end, which
loses nothing to the atmosphere. ``docs/space.md`` works one budget through line by line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .atmosphere import gas_loss_db, rain_loss_db, sky_noise_temp_k
from .constants import BOLTZMANN_DBW_PER_K_HZ, SPEED_OF_LIGHT_M_PER_S
from .modcod import best_modcod_index, modcods_up_to
from .radios import RadioProfile, dish_gain_dbi

__all__ = [
    "SPEED_OF_LIGHT_M_PER_S",
    "BOLTZMANN_DBW_PER_K_HZ",
    "free_space_path_loss_db",
    "propagation_delay_s",
    "dish_gain_dbi",
    "LinkBudget",
    "link_budget",
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


@dataclass(frozen=True)
class LinkBudget:
    """Every line of a budget, one array entry per (range, elevation)."""

    profile: RadioProfile
    range_m: np.ndarray
    elevation_deg: np.ndarray  # NaN: no ground end
    fspl_db: np.ndarray
    gas_loss_db: np.ndarray
    rain_loss_db: np.ndarray
    rx_power_dbw: np.ndarray
    noise_temp_k: np.ndarray
    cn0_dbhz: np.ndarray
    snr_db: np.ndarray  # acm: Es/N0; fixed: Eb/N0 (NaN with a sensitivity); shannon: C/N in B
    modcod: np.ndarray  # what the radio runs: a MODCOD, the fixed radio's modulation, or ""
    rate_bps: np.ndarray


def link_budget(profile: RadioProfile, range_m, elevation_deg=None) -> LinkBudget:
    """The budget of ``profile`` at ``range_m`` (vectorised; ``elevation_deg`` broadcast
    with it, NaN or None where the path has no ground end)."""
    p = profile
    rng = _positive_range(range_m)
    el = np.nan if elevation_deg is None else np.asarray(elevation_deg, dtype=float)
    rng, el = np.broadcast_arrays(rng, el)
    ground = np.isfinite(el)
    el_ground = np.where(ground, np.clip(el, 0.0, 90.0), 90.0)
    gas = np.where(ground, gas_loss_db(el_ground, p.zenith_gas_loss_db), 0.0)
    rain = np.where(ground, rain_loss_db(el_ground, p.frequency_hz, p.rain_rate_mm_per_h,
                                         p.rain_height_m), 0.0)
    fspl = free_space_path_loss_db(rng, p.frequency_hz)
    rx_power = (p.tx_power_dbw + p.tx_antenna_gain_dbi + p.rx_antenna_gain_dbi - fspl
                - p.pointing_loss_db - p.polarization_loss_db - gas - rain)
    noise_t = np.full(rng.shape, p.system_noise_temp_k)
    if p.sky_noise:
        rise = sky_noise_temp_k(gas + rain) - sky_noise_temp_k(p.zenith_gas_loss_db)
        noise_t = noise_t + np.where(ground, rise, 0.0)
    cn0 = rx_power - BOLTZMANN_DBW_PER_K_HZ - 10.0 * np.log10(noise_t)
    loss = p.implementation_loss_db + p.margin_db
    if p.rate_model == "acm":
        table = modcods_up_to(p.max_modcod)
        rs = p.symbol_rate_hz
        snr = cn0 - 10.0 * math.log10(rs)
        idx = best_modcod_index(snr, loss, table)
        eff = np.array([m.bits_per_symbol for m in table] + [0.0])
        names = np.array([m.name for m in table] + [""], dtype=object)
        rate = rs * eff[idx]  # idx -1 picks the trailing 0 / ""
        modcod = names[idx]
    elif p.rate_model == "fixed":
        ebn0 = cn0 - 10.0 * math.log10(p.data_rate_bps)
        if p.sensitivity_dbw is not None:
            up = rx_power - p.implementation_loss_db >= p.sensitivity_dbw + p.margin_db
            snr = np.full(rng.shape, np.nan)
        else:
            up = ebn0 - p.implementation_loss_db >= p.required_ebn0_db + p.margin_db
            snr = ebn0
        rate = np.where(up, p.data_rate_bps, 0.0)
        modcod = np.where(up, p.modulation, "").astype(object)
    else:
        snr = cn0 - 10.0 * math.log10(p.bandwidth_hz)
        capacity = p.efficiency * p.bandwidth_hz * np.log2(1.0 + 10.0 ** ((snr - loss) / 10.0))
        rate = capacity if p.max_rate_bps is None else np.minimum(p.max_rate_bps, capacity)
        modcod = np.full(rng.shape, "", dtype=object)
    return LinkBudget(p, rng, el, fspl, gas, rain, rx_power, noise_t, cn0, snr, modcod,
                      np.asarray(rate, dtype=float))


def rate_bps(range_m, profile: RadioProfile, elevation_deg=None) -> np.ndarray:
    """The rate of ``profile`` at ``range_m`` (and ``elevation_deg``), bit/s (vectorised)."""
    return link_budget(profile, range_m, elevation_deg).rate_bps
