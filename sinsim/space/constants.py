"""Physical constants used by the ``space`` room, each with its source.

Only plain floats live here; nothing is computed at import time except
trivially derived values (noted as such).
"""

from __future__ import annotations

import math

# --- Time -------------------------------------------------------------------
SECONDS_PER_DAY = 86400.0  # SI day used by Julian dates (IAU)
MINUTES_PER_DAY = 1440.0  # derived: SECONDS_PER_DAY / 60
SGP4_EPOCH_JD = (
    2433281.5  # JD of 1949-12-31 00:00 UTC, epoch of sgp4init() (Vallado et al., AIAA 2006-6753)
)

# --- WGS84 ellipsoid (NIMA TR8350.2, 3rd ed., Table 3.1) --------------------
EARTH_RADIUS_M = 6378137.0  # WGS84 semi-major axis
WGS84_INVERSE_FLATTENING = 298.257223563  # WGS84
WGS84_FLATTENING = 1.0 / WGS84_INVERSE_FLATTENING  # derived
WGS84_E2 = WGS84_FLATTENING * (2.0 - WGS84_FLATTENING)  # derived: first eccentricity squared
EARTH_ROTATION_RAD_PER_S = 7.292115e-5  # WGS84 nominal mean angular velocity
# the sphere that casts the shadow in Skyfield's ``is_sunlit`` (skyfield.constants.ERAD,
# the IERS 2010 conventional equatorial radius)
EARTH_SHADOW_RADIUS_M = 6378136.6

# --- WGS72 gravity model used by SGP4 (sgp4.earth_gravity.wgs72; Vallado et al. 2006) ---
WGS72_MU_M3_PER_S2 = 398600.8e9  # WGS72 mu = 398600.8 km^3/s^2
WGS72_RADIUS_M = 6378135.0  # WGS72 equatorial radius = 6378.135 km
WGS72_J2 = 0.001082616  # WGS72 J2
WGS72_XKE_PER_MIN = 60.0 / math.sqrt(
    (WGS72_RADIUS_M / 1e3) ** 3 / (WGS72_MU_M3_PER_S2 / 1e9)
)  # derived exactly as sgp4 does: sqrt(mu/R^3) in (earth radii)^1.5 per minute

# --- Electromagnetics ---------------------------------------------------------
SPEED_OF_LIGHT_M_PER_S = (
    299792458.0  # exact, SI definition of the metre (BIPM SI Brochure, 9th ed.)
)
BOLTZMANN_J_PER_K = 1.380649e-23  # exact, SI 2019 redefinition (BIPM)
BOLTZMANN_DBW_PER_K_HZ = (
    -228.6
)  # 10*log10(k) = -228.599..., the value quoted in link-budget texts (e.g. SMAD)
