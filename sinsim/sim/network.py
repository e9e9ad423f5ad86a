"""The SIN as the engine sees it: an up- and a down-channel per client, losses and failures.

Built either for abstract clients (fixed-rate links, always in view) or from a contact plan
(``sinsim.sim.topology``). Every random draw is keyed (see ``sinsim._rng``): losses by (round,
client, direction), Gilbert-Elliott states by (client, direction), failures by client. So every
algorithm of a run meets the same network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sinsim._rng import rng_for
from sinsim.scenario import Loss, Scenario
from sinsim.sim.channel import Channel, fixed_channel

UP, DOWN = 0, 1


@dataclass(frozen=True)
class Network:
    client_ids: tuple[str, ...]
    up: tuple[Channel, ...]
    down: tuple[Channel, ...]
    loss: Loss
    seed: int
    # Gilbert-Elliott bad periods per client and direction: bad[client][direction] -> (k, 2)
    bad: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None

    def lost(self, round_: int, client: int, direction: int,
             segments: Sequence[tuple[float, float]]) -> bool:
        """Was this transfer lost? ``segments`` are its (start_s, end_s) on the air."""
        kind = self.loss.kind
        if kind == "none":
            return False
        if kind == "bernoulli":
            p = self.loss.p
        else:
            bad = self.bad[client][direction]
            p = self.loss.loss_bad if overlaps(segments, bad) else self.loss.loss_good
        if p <= 0:
            return False
        return bool(rng_for(self.seed, "loss", round_, client, direction).random() < p)

    def in_view(self, t0_s: float, t1_s: float) -> list[int]:
        """Clients that can receive the model at some time in [t0_s, t1_s]."""
        out = []
        for i, ch in enumerate(self.down):
            w = ch.next_window(t0_s)
            if w is not None and w[0] <= t1_s:
                out.append(i)
        return out

    def next_contact_s(self, t_s: float) -> float:
        """The earliest time >= t_s at which any client can receive the model (inf if never)."""
        starts = [w[0] for ch in self.down if (w := ch.next_window(t_s)) is not None]
        return min(starts, default=math.inf)


def overlaps(segments: Sequence[tuple[float, float]], intervals: np.ndarray) -> bool:
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


def client_impairments(scenario: Scenario, n_clients: int):
    """(dark periods per client, Gilbert-Elliott bad periods per client and direction)."""
    links, horizon = scenario.links, scenario.horizon
    dark = [failure_periods(rng_for(scenario.seed, "failure", c), horizon,
                            links.failures.rate_per_day, links.failures.duration)
            for c in range(n_clients)]
    bad = None
    if links.loss.kind == "gilbert_elliott":
        bad = tuple(
            tuple(gilbert_elliott_bad_periods(rng_for(scenario.seed, "channel", c, d), horizon,
                                              links.loss.step, links.loss.p_good_to_bad,
                                              links.loss.p_bad_to_good) for d in (UP, DOWN))
            for c in range(n_clients))
    return dark, bad


def build_abstract_network(scenario: Scenario) -> Network:
    """Fixed-rate links to ``clients.count`` clients that are always in view (but when dark)."""
    links = scenario.links
    n = scenario.clients.count
    width = max(4, len(str(n - 1)))
    dark, bad = client_impairments(scenario, n)
    always = np.array([[0.0, math.inf]])

    def channel(direction, holes):
        return fixed_channel(direction.rate_bps, direction.propagation_delay_s,
                             subtract_intervals(always, holes))

    up = tuple(channel(links.uplink, dark[c]) for c in range(n))
    down = tuple(channel(links.downlink, dark[c]) for c in range(n))
    return Network(tuple(f"client{i:0{width}d}" for i in range(n)), up, down, links.loss,
                   scenario.seed, bad)


def build_network(scenario: Scenario, topology=None) -> Network:
    """The network of ``scenario``: abstract, or from an orbital topology (contact plan)."""
    if not scenario.clients.orbital:
        return build_abstract_network(scenario)
    from sinsim.sim.topology import build_topology, orbital_network

    return orbital_network(scenario, topology if topology is not None else build_topology(scenario))
