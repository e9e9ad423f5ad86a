"""Readable units for times and byte counts on figures (the static figures and the run's web
page share them; no plotting library imported here)."""

from __future__ import annotations

__all__ = ["time_unit", "bytes_unit"]


def time_unit(max_s: float) -> tuple[float, str]:
    """A divisor and a label that keep simulated times readable."""
    for div, label in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
        if max_s >= 2 * div:
            return div, label
    return 1.0, "s"


def bytes_unit(max_bytes: float) -> tuple[float, str]:
    for div, label in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if max_bytes >= div:
            return div, label
    return 1.0, "B"
