"""What goes wrong on a link: losses (one class per kind) and node failures.

A loss model decides whether a transfer on a link was lost from the segments it spent on the air
(``Impairment.lost``). Every random draw is keyed (see ``sinsim._rng``), by the link's *stream
key*, a tuple of integers that names the link among the network's links: for the star's links it
is (client index, direction). So the draws keep these keys:

- the loss of a transfer: ``rng_for(seed, "loss", round, *key)``;
- the Gilbert-Elliott states of a link: ``rng_for(seed, "channel", *key)``;
- the dark periods of a client node: ``rng_for(seed, "failure", client)``;
- the outages of a crosslink: ``rng_for(seed, "failure", a, b, 2)`` (client indices).

and every algorithm of a run meets the same network. Loss models are built from the scenario's
loss section (``scenario.links.loss``: ``kind`` and the fields of that kind) by ``impairment``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from sinsim._rng import rng_for

Segments = Sequence[tuple[float, float]]
StreamKey = tuple[int, ...]


class Impairment(ABC):
    """A loss model of one link."""

    kind: ClassVar[str]

    @abstractmethod
    def loss_probability(self, segments: Segments) -> float:
        """The probability that a transfer on the air during ``segments`` is lost."""

    def lost(self, seed: int, key: StreamKey, round_: int, segments: Segments) -> bool:
        """Was this transfer lost? ``segments`` are its (start_s, end_s) on the air; one keyed
        draw, none when the probability is 0."""
        p = self.loss_probability(segments)
        if p <= 0:
            return False
        return bool(rng_for(seed, "loss", round_, *key).random() < p)

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: Any, seed: int, key: StreamKey, horizon_s: float) -> Impairment:
        """The model of the link with stream ``key`` from a loss section of this kind."""


@dataclass(frozen=True)
class NoLoss(Impairment):
    """Nothing is ever lost."""

    kind: ClassVar[str] = "none"

    def loss_probability(self, segments: Segments) -> float:
        return 0.0

    @classmethod
    def from_spec(cls, spec: Any, seed: int, key: StreamKey, horizon_s: float) -> NoLoss:
        return cls()


@dataclass(frozen=True)
class BernoulliLoss(Impairment):
    """Each transfer is lost with probability ``p``, whenever it is on the air."""

    p: float
    kind: ClassVar[str] = "bernoulli"

    def loss_probability(self, segments: Segments) -> float:
        return self.p

    @classmethod
    def from_spec(cls, spec: Any, seed: int, key: StreamKey, horizon_s: float) -> BernoulliLoss:
        return cls(spec.p)


@dataclass(frozen=True)
class GilbertElliottLoss(Impairment):
    """A two-state channel: a transfer on the air during a bad period (``bad``, a sorted (k, 2)
    array) is lost with probability ``loss_bad``, otherwise with ``loss_good``."""

    loss_good: float
    loss_bad: float
    bad: np.ndarray = field(repr=False)
    kind: ClassVar[str] = "gilbert_elliott"

    def loss_probability(self, segments: Segments) -> float:
        return self.loss_bad if overlaps(segments, self.bad) else self.loss_good

    @classmethod
    def from_spec(cls, spec: Any, seed: int, key: StreamKey,
                  horizon_s: float) -> GilbertElliottLoss:
        bad = gilbert_elliott_bad_periods(rng_for(seed, "channel", *key), horizon_s, spec.step,
                                          spec.p_good_to_bad, spec.p_bad_to_good)
        return cls(spec.loss_good, spec.loss_bad, bad)


LOSS_KINDS: dict[str, type[Impairment]] = {
    c.kind: c for c in (NoLoss, BernoulliLoss, GilbertElliottLoss)}


def impairment(spec: Any, seed: int, key: StreamKey, horizon_s: float) -> Impairment:
    """The loss model of the link with stream ``key``, from a loss section (``spec.kind`` and
    the fields of that kind)."""
    return LOSS_KINDS[spec.kind].from_spec(spec, seed, key, horizon_s)


# ---------------------------------------------------------------------------------------------
# random periods and interval arithmetic


def gilbert_elliott_bad_periods(rng: np.random.Generator, horizon_s: float, step_s: float,
                                p_good_to_bad: float, p_bad_to_good: float) -> np.ndarray:
    """Bad periods of a two-state Markov chain stepped every ``step_s`` over the horizon,
    started from its stationary distribution. Sojourns are geometric in steps."""
    out = []
    bad = rng.random() < p_good_to_bad / (p_good_to_bad + p_bad_to_good)
    t = 0.0
    while t < horizon_s:
        steps = rng.geometric(p_bad_to_good if bad else p_good_to_bad)
        t_next = min(t + steps * step_s, horizon_s)
        if bad:
            out.append((t, t_next))
        t, bad = t_next, not bad
    return np.array(out, dtype=float).reshape(-1, 2)


def failure_periods(rng: np.random.Generator, horizon_s: float, rate_per_day: float,
                    duration_s: float) -> np.ndarray:
    """Dark periods of one node: starts form a Poisson process, each lasts ``duration_s``
    (overlapping periods are merged)."""
    if rate_per_day <= 0:
        return np.empty((0, 2))
    mean_gap_s = 86400.0 / rate_per_day
    out: list[list[float]] = []
    t = rng.exponential(mean_gap_s)
    while t < horizon_s:
        end = min(t + duration_s, horizon_s)
        if out and t <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([t, end])
        t += rng.exponential(mean_gap_s)
    return np.array(out, dtype=float).reshape(-1, 2)


def client_failure_periods(seed: int, client: int, horizon_s: float, failures: Any) -> np.ndarray:
    """The dark periods of client ``client`` from the scenario's failures section."""
    return failure_periods(rng_for(seed, "failure", client), horizon_s, failures.rate_per_day,
                           failures.duration)


def overlaps(segments: Segments, intervals: np.ndarray) -> bool:
    """Does any (start, end) segment overlap any interval of a sorted (k, 2) array?"""
    if len(intervals) == 0:
        return False
    for a, b in segments:
        i = int(np.searchsorted(intervals[:, 1], a, side="right"))
        if i < len(intervals) and intervals[i, 0] < b:
            return True
    return False


def subtract_intervals(windows: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``windows`` minus the union of ``holes`` (both (k, 2), sorted, disjoint).

    >>> subtract_intervals(np.array([[0., 10.]]), np.array([[2., 3.], [5., 6.]])).tolist()
    [[0.0, 2.0], [3.0, 5.0], [6.0, 10.0]]
    """
    out = []
    for start, end in windows:
        cur = start
        for h0, h1 in holes:
            if h1 <= cur or h0 >= end:
                continue
            if h0 > cur:
                out.append((cur, h0))
            cur = max(cur, h1)
            if cur >= end:
                break
        if cur < end:
            out.append((cur, end))
    return np.array(out, dtype=float).reshape(-1, 2)
