"""Earth-space path geometry and atmospheric effects on a ground link, by elevation.

Pure, vectorised functions (numpy). Elevations in degrees, lengths in metres unless named.

- **Geometry** over a spherical Earth of radius ``EARTH_RADIUS_M`` (WGS84 a): the slant range
  to a node at ``altitude_m`` seen at ``elevation_deg`` and back.
- **Gases** (oxygen and water vapour): the zenith attenuation (ITU-R P.676 gives ~0.035 dB at
  2 GHz, ~0.04 dB at 4-8 GHz for the standard atmosphere) scaled by the path length through a
  spherical shell of equivalent height ``GAS_EQUIVALENT_HEIGHT_M`` (P.676's equivalent-height
  method with one shell for both gases): ``1/sin(el)`` at high elevation, finite at the horizon.
- **Rain**, ITU-R style: specific attenuation ``gamma = k R^alpha`` (dB/km) with the
  coefficients of ITU-R P.838-1 (table below, circular polarisation, interpolated
  log-log in frequency for ``k`` and log-linear for ``alpha`` as the Recommendation says),
  over the slant path below the rain height (ITU-R P.618-13 steps 2-3, effective Earth radius
  8,500 km below 5 degrees), shortened by P.618's horizontal reduction factor (step 6). The
  user gives the rain rate of interest (e.g. the rate exceeded 0.01 % of an average year,
  ITU-R P.837); P.618's vertical adjustment and conversion between percentages are not applied.
- **Sky noise**: an attenuating atmosphere at mean temperature ``T_m`` = 275 K radiates
  ``T_m (1 - 10^(-A/10))`` into a ground antenna (ITU-R P.618-13 section 3); the rise over the
  clear-sky zenith value is what low elevation and rain add to a ground receiver's noise.
"""

from __future__ import annotations

import numpy as np

from .constants import EARTH_RADIUS_M

__all__ = [
    "slant_range_m",
    "elevation_from_range_deg",
    "GAS_EQUIVALENT_HEIGHT_M",
    "gas_loss_db",
    "RAIN_EFFECTIVE_EARTH_RADIUS_M",
    "rain_coefficients",
    "rain_specific_attenuation_db_per_km",
    "rain_loss_db",
    "ATMOSPHERE_MEAN_TEMP_K",
    "COSMIC_BACKGROUND_K",
    "sky_noise_temp_k",
]

GAS_EQUIVALENT_HEIGHT_M = 6_000.0  # ITU-R P.676 Annex 2: oxygen's equivalent height ~6 km
RAIN_EFFECTIVE_EARTH_RADIUS_M = 8_500e3  # ITU-R P.618-13 step 2
ATMOSPHERE_MEAN_TEMP_K = 275.0  # ITU-R P.618-13 section 3 (T_m for clear air and rain)
COSMIC_BACKGROUND_K = 2.7


def _elevation_rad(elevation_deg) -> np.ndarray:
    el = np.asarray(elevation_deg, dtype=float)
    if np.any(~np.isfinite(el)) or np.any((el < 0) | (el > 90)):
        raise ValueError("elevation_deg must be in [0, 90]")
    return np.radians(el)


def slant_range_m(elevation_deg, altitude_m, observer_altitude_m=0.0):
    """Range from an observer at ``observer_altitude_m`` to a node at ``altitude_m`` seen at
    ``elevation_deg`` above the observer's horizon (spherical Earth; vectorised)."""
    el = _elevation_rad(elevation_deg)
    r_obs = EARTH_RADIUS_M + np.asarray(observer_altitude_m, dtype=float)
    r_node = EARTH_RADIUS_M + np.asarray(altitude_m, dtype=float)
    if np.any(r_node <= r_obs):
        raise ValueError("altitude_m must be above observer_altitude_m")
    return np.sqrt(r_node**2 - (r_obs * np.cos(el)) ** 2) - r_obs * np.sin(el)


def elevation_from_range_deg(range_m, altitude_m, observer_altitude_m=0.0):
    """Inverse of :func:`slant_range_m`: the elevation at which a node at ``altitude_m`` is
    ``range_m`` away; NaN where no elevation in [0, 90] gives that range (shorter than the
    altitude difference, or beyond the horizon)."""
    d = np.asarray(range_m, dtype=float)
    r_obs = EARTH_RADIUS_M + np.asarray(observer_altitude_m, dtype=float)
    r_node = EARTH_RADIUS_M + np.asarray(altitude_m, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        sin_el = (r_node**2 - r_obs**2 - d**2) / (2.0 * r_obs * d)
    ok = (sin_el >= -1e-12) & (sin_el <= 1 + 1e-12)  # rounding at 0 and 90 degrees
    return np.where(ok, np.degrees(np.arcsin(np.clip(sin_el, 0.0, 1.0))), np.nan)


def _shell_path_m(el_rad, height_m, radius_m=EARTH_RADIUS_M):
    """Length of the straight path from the ground at elevation ``el`` through a spherical
    shell ``height_m`` thick."""
    r = radius_m
    return np.sqrt((r + height_m) ** 2 - (r * np.cos(el_rad)) ** 2) - r * np.sin(el_rad)


def gas_loss_db(elevation_deg, zenith_loss_db: float,
                equivalent_height_m: float = GAS_EQUIVALENT_HEIGHT_M):
    """Gaseous absorption along the path at ``elevation_deg``: the zenith value times the path
    length through the equivalent shell over its thickness (1 at the zenith)."""
    el = _elevation_rad(elevation_deg)
    return zenith_loss_db * _shell_path_m(el, equivalent_height_m) / equivalent_height_m


# ITU-R P.838-1: frequency (GHz), k_H, k_V, alpha_H, alpha_V
_P838_1 = np.array([
    (1.0, 0.0000387, 0.0000352, 0.912, 0.880),
    (2.0, 0.000154, 0.000138, 0.963, 0.923),
    (4.0, 0.000650, 0.000591, 1.121, 1.075),
    (6.0, 0.00175, 0.00155, 1.308, 1.265),
    (7.0, 0.00301, 0.00265, 1.332, 1.312),
    (8.0, 0.00454, 0.00395, 1.327, 1.310),
    (10.0, 0.0101, 0.00887, 1.276, 1.264),
    (12.0, 0.0188, 0.0168, 1.217, 1.200),
    (15.0, 0.0367, 0.0335, 1.154, 1.128),
    (20.0, 0.0751, 0.0691, 1.099, 1.065),
    (25.0, 0.124, 0.113, 1.061, 1.030),
    (30.0, 0.187, 0.167, 1.021, 1.000),
    (35.0, 0.263, 0.233, 0.979, 0.963),
    (40.0, 0.350, 0.310, 0.939, 0.929),
    (45.0, 0.442, 0.393, 0.903, 0.897),
    (50.0, 0.536, 0.479, 0.873, 0.868),
])


def rain_coefficients(frequency_hz: float) -> tuple[float, float]:
    """``(k, alpha)`` for circular polarisation at ``frequency_hz`` (1-50 GHz): P.838-1's
    ``k = (k_H + k_V)/2``, ``alpha = (k_H a_H + k_V a_V) / 2k``, interpolated between the
    tabulated frequencies."""
    f_ghz = frequency_hz / 1e9
    f, kh, kv, ah, av = _P838_1.T
    if not f[0] <= f_ghz <= f[-1]:
        raise ValueError(f"rain coefficients are tabulated for 1-50 GHz, not {f_ghz:g} GHz")
    k_tab = (kh + kv) / 2
    a_tab = (kh * ah + kv * av) / (2 * k_tab)
    log_f = np.log10(f_ghz)
    k = 10 ** np.interp(log_f, np.log10(f), np.log10(k_tab))
    alpha = np.interp(log_f, np.log10(f), a_tab)
    return float(k), float(alpha)


def rain_specific_attenuation_db_per_km(frequency_hz: float, rain_rate_mm_per_h: float) -> float:
    """``gamma_R = k R^alpha`` in dB/km (ITU-R P.838)."""
    if rain_rate_mm_per_h < 0:
        raise ValueError("rain_rate_mm_per_h must be >= 0")
    k, alpha = rain_coefficients(frequency_hz)
    return k * rain_rate_mm_per_h**alpha


def rain_loss_db(elevation_deg, frequency_hz: float, rain_rate_mm_per_h: float,
                 rain_height_m: float, station_altitude_m: float = 0.0):
    """Rain attenuation along the slant path below the rain height (vectorised over
    elevation); 0 when there is no rain or the station is above the rain."""
    el = _elevation_rad(elevation_deg)
    depth_m = rain_height_m - station_altitude_m
    if rain_rate_mm_per_h <= 0 or depth_m <= 0:
        return np.zeros(el.shape)
    gamma = rain_specific_attenuation_db_per_km(frequency_hz, rain_rate_mm_per_h)
    sin_el = np.sin(el)
    with np.errstate(divide="ignore"):
        high = depth_m / np.where(sin_el > 0, sin_el, np.inf)
    low = 2 * depth_m / (np.sqrt(sin_el**2 + 2 * depth_m / RAIN_EFFECTIVE_EARTH_RADIUS_M)
                         + sin_el)
    slant_km = np.where(el >= np.radians(5.0), high, low) / 1e3  # P.618 step 2
    ground_km = slant_km * np.cos(el)  # step 3
    f_ghz = frequency_hz / 1e9
    reduction = 1.0 / (1.0 + 0.78 * np.sqrt(ground_km * gamma / f_ghz)
                       - 0.38 * (1.0 - np.exp(-2.0 * ground_km)))  # step 6
    return gamma * slant_km * reduction


def sky_noise_temp_k(atmospheric_loss_db):
    """Noise temperature the atmosphere adds to a ground antenna looking through
    ``atmospheric_loss_db`` of absorption (plus the attenuated cosmic background)."""
    a = 10.0 ** (-np.asarray(atmospheric_loss_db, dtype=float) / 10.0)
    return ATMOSPHERE_MEAN_TEMP_K * (1.0 - a) + COSMIC_BACKGROUND_K * a
