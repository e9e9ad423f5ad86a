"""One directed link over the horizon: when it is up and how fast.

A ``Channel`` is plain data plus pure functions (no SimPy): the contact windows in which bits can
move, a rate profile, and the propagation delay. The transfer process in ``transfer.py`` walks it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ALWAYS = np.array([[0.0, math.inf]])


class ConstantRate:
    """The same rate at every instant: closed forms, exact."""

    def __init__(self, rate_bps: float):
        if not rate_bps > 0:
            raise ValueError(f"rate_bps must be > 0, got {rate_bps}")
        self.rate_bps = float(rate_bps)

    def bits(self, t0_s: float, t1_s: float) -> float:
        return self.rate_bps * max(0.0, t1_s - t0_s)

    def time_for(self, t0_s: float, bits: float) -> float:
        """The instant at which ``bits`` sent from ``t0_s`` are all out."""
        return t0_s + bits / self.rate_bps

    def rate_at(self, t_s: float) -> float:
        return self.rate_bps


class SampledRate:
    """A piecewise-constant rate: ``rates_bps[i]`` holds on ``[times_s[i], times_s[i+1])``
    (the first value also holds before ``times_s[0]``, the last until infinity). Integrated
    exactly."""

    def __init__(self, times_s: np.ndarray, rates_bps: np.ndarray):
        t = np.asarray(times_s, dtype=float)
        r = np.asarray(rates_bps, dtype=float)
        if t.ndim != 1 or t.shape != r.shape or len(t) == 0:
            raise ValueError("times_s and rates_bps must be 1-D arrays of the same length")
        if np.any(np.diff(t) <= 0):
            raise ValueError("times_s must be strictly increasing")
        if np.any(r < 0):
            raise ValueError("rates must be >= 0")
        self.times_s, self.rates_bps = t, r
        self._cum = np.concatenate([[0.0], np.cumsum(r[:-1] * np.diff(t))])

    def _cumulative(self, t_s: float) -> float:
        i = max(0, int(np.searchsorted(self.times_s, t_s, side="right")) - 1)
        return float(self._cum[i] + self.rates_bps[i] * (t_s - self.times_s[i]))

    def bits(self, t0_s: float, t1_s: float) -> float:
        return max(0.0, self._cumulative(t1_s) - self._cumulative(t0_s))

    def time_for(self, t0_s: float, bits: float) -> float:
        """The first instant at which ``bits`` sent from ``t0_s`` are all out (inf if never)."""
        if bits <= 0:
            return t0_s
        target = self._cumulative(t0_s) + bits
        # first knot whose cumulative reaches the target: the crossing is in the segment before
        j = int(np.searchsorted(self._cum, target, side="left"))
        i = max(j - 1, 0)  # before the first knot the first rate holds
        rate = self.rates_bps[i]
        if rate <= 0:  # only possible in the last segment, which never ends
            return math.inf
        return float(self.times_s[i] + (target - self._cum[i]) / rate)

    def rate_at(self, t_s: float) -> float:
        i = max(0, int(np.searchsorted(self.times_s, t_s, side="right")) - 1)
        return float(self.rates_bps[i])


@dataclass(frozen=True)
class Channel:
    """``windows`` is a sorted (k, 2) array of disjoint [start_s, end_s) contact windows."""

    windows: np.ndarray
    rate: ConstantRate | SampledRate
    delay_s: Callable[[float], float]
    _starts: list[float] = field(init=False, repr=False, compare=False)
    _ends: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        # plain lists: bisect on them is several times faster than numpy on one scalar
        object.__setattr__(self, "_starts", [float(x) for x in self.windows[:, 0]])
        object.__setattr__(self, "_ends", [float(x) for x in self.windows[:, 1]])

    def next_window(self, t_s: float) -> tuple[float, float] | None:
        """The window that contains ``t_s`` (and has time left), else the next one, else None."""
        i = bisect.bisect_right(self._ends, t_s)
        if i >= len(self._ends):
            return None
        return max(self._starts[i], t_s), self._ends[i]


class DelayProfile:
    """A propagation delay sampled at ``times_s`` (increasing) and interpolated linearly
    (held constant outside): cheap to evaluate, for routing that evaluates it often."""

    def __init__(self, times_s: np.ndarray, delays_s: np.ndarray):
        self.times_s = [float(t) for t in times_s]
        self.delays_s = [float(d) for d in delays_s]
        if not self.times_s or len(self.times_s) != len(self.delays_s):
            raise ValueError("times_s and delays_s must be non-empty and of the same length")

    def __call__(self, t_s: float) -> float:
        ts, ds = self.times_s, self.delays_s
        i = bisect.bisect_right(ts, t_s)
        if i == 0:
            return ds[0]
        if i == len(ts):
            return ds[-1]
        t0, t1 = ts[i - 1], ts[i]
        return ds[i - 1] + (ds[i] - ds[i - 1]) * (t_s - t0) / (t1 - t0)


def fixed_channel(rate_bps: float, delay_s: float = 0.0, windows: np.ndarray = ALWAYS) -> Channel:
    return Channel(np.asarray(windows, dtype=float), ConstantRate(rate_bps), lambda t: delay_s)
