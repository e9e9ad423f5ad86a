"""Simulated time <-> Skyfield / SGP4 time.

Simulated time is a float number of SI seconds since the scenario start, a
timezone-aware UTC ``datetime``.  This module is the *only* place in the
package that converts between sim seconds and Skyfield ``Time`` objects (or
the Julian dates that ``sgp4`` wants).

Internally every instant is kept as TAI Julian date split in a whole part
(the start's) and a fraction, so sub-microsecond precision is kept over
years of simulated time and leap seconds are handled by Skyfield.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from skyfield.api import load
from skyfield.sgp4lib import theta_GMST1982

from .constants import SECONDS_PER_DAY

__all__ = ["Timebase"]


class Timebase:
    """Converts float sim seconds since ``start_utc`` into Skyfield ``Time``.

    Parameters
    ----------
    start_utc:
        Scenario start; must be timezone-aware (any zone, converted to UTC).
    """

    def __init__(self, start_utc: datetime):
        if not isinstance(start_utc, datetime):
            raise TypeError(f"start_utc must be a datetime, got {type(start_utc).__name__}")
        if start_utc.tzinfo is None or start_utc.utcoffset() is None:
            raise ValueError("start_utc must be timezone-aware (e.g. tzinfo=timezone.utc)")
        self.start_utc = start_utc.astimezone(timezone.utc)
        self.ts = load.timescale(builtin=True)  # offline: built-in leap-second and delta-T tables
        t0 = self.ts.from_datetime(self.start_utc)
        self._whole = float(t0.whole)
        self._tai_fraction = float(t0.tai_fraction)

    def __repr__(self) -> str:
        return f"Timebase(start_utc={self.start_utc.isoformat()})"

    # -- conversions -----------------------------------------------------
    @staticmethod
    def _as_seconds(seconds) -> np.ndarray:
        s = np.asarray(seconds, dtype=float)
        if not np.all(np.isfinite(s)):
            raise ValueError("sim times must be finite numbers of seconds")
        return s

    def to_time(self, seconds):
        """Skyfield ``Time`` (scalar or array, like ``seconds``) for sim seconds."""
        s = self._as_seconds(seconds)
        return self.ts.tai_jd(self._whole, self._tai_fraction + s / SECONDS_PER_DAY)

    def to_seconds(self, t) -> np.ndarray:
        """Sim seconds (float ndarray, 0-d for a scalar ``Time``) for a Skyfield ``Time``."""
        days = (np.asarray(t.whole) - self._whole) + (
            np.asarray(t.tai_fraction) - self._tai_fraction
        )
        return np.asarray(days * SECONDS_PER_DAY, dtype=float)

    def utc_iso(self, seconds) -> list[str]:
        """ISO-8601 UTC strings (``YYYY-MM-DDTHH:MM:SSZ``) for sim seconds."""
        s = np.atleast_1d(self._as_seconds(seconds))
        if s.size == 0:
            return []
        out = self.to_time(s).utc_iso()
        return [str(x) for x in out]

    def jd_fr(self, seconds) -> tuple[np.ndarray, np.ndarray]:
        """UTC Julian date split ``(jd, fr)`` as ``sgp4`` expects it.

        Same convention as Skyfield's ``EarthSatellite`` (TLE epochs are UTC):
        ``jd`` is the whole part, ``fr = tai_fraction - leap_seconds / 86400``.
        """
        jd, fr, _, _ = self.sgp4_inputs(seconds)
        return jd, fr

    def sgp4_inputs(self, seconds):
        """``(jd, fr, theta_rad, theta_dot_rad_per_s)`` for sim seconds.

        ``jd, fr`` feed ``sgp4``; ``theta`` is the Greenwich mean sidereal
        angle of the 1982 model that rotates TEME into the pseudo-Earth-fixed
        frame (Skyfield's own ``theta_GMST1982``, evaluated at UT1 exactly as
        Skyfield's ``TEME`` frame and ``find_events`` do), and ``theta_dot``
        its rate.  Arrays have the shape of ``seconds`` (at least 1-d).
        """
        s = np.atleast_1d(self._as_seconds(seconds))
        t = self.to_time(s)
        whole = np.broadcast_to(np.asarray(t.whole, dtype=float), s.shape)
        fr = np.asarray(t.tai_fraction - t._leap_seconds() / SECONDS_PER_DAY, dtype=float)
        theta, theta_dot = theta_GMST1982(whole, np.asarray(t.ut1_fraction, dtype=float))
        return (
            np.array(whole, dtype=float),
            np.broadcast_to(fr, s.shape).astype(float),
            np.asarray(theta, dtype=float),
            np.asarray(theta_dot, dtype=float) / SECONDS_PER_DAY,
        )
