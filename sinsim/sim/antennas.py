"""A station's antennas as SimPy sees them: ``count`` of them, each carrying one link at a time
and remembering the satellite it last pointed at and when it let go, so that one that turns
to another satellite first spends ``slew_s`` repointing (``links.slew``).

Direct transfers hold one while their bits are on the air (:func:`sinsim.sim.transfer.transfer`);
relayed routes book them instead (:class:`sinsim.sim.cgr.Bookings`, same slew rule).
"""

from __future__ import annotations

import math

import simpy

__all__ = ["Antennas"]


class Antennas:
    """``count`` antennas of one node in ``env``, first come first served (a SimPy resource),
    each idle one known by ``(peer it last served, when it let go)``. A granted request
    :meth:`take` s one (the one that last served this peer if idle, else the one idle
    longest) and learns the earliest time it points at the peer: ``slew_s`` after it let go
    of another satellite, at once for the same one or a fresh antenna."""

    def __init__(self, env: simpy.Environment, count: int, slew_s: float = 0.0):
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if not (math.isfinite(slew_s) and slew_s >= 0):
            raise ValueError(f"slew_s must be finite and >= 0, got {slew_s!r}")
        self.slew_s = float(slew_s)
        self.resource = simpy.Resource(env, capacity=count)
        self.idle: list[tuple[str | None, float]] = [(None, -math.inf)] * count

    def request(self) -> simpy.Event:
        """A request for the resource (``with antennas.request() as turn``)."""
        return self.resource.request()

    def take(self, peer: str | None) -> tuple[tuple[str | None, float], float]:
        """After a granted request: an idle antenna for ``peer`` (handed back to
        :meth:`give_back`) and the earliest time it points at ``peer``."""
        if not self.idle:
            raise RuntimeError("take() without a granted request")
        same = [a for a in self.idle if a[0] == peer]
        antenna = same[0] if same else min(self.idle, key=lambda a: a[1])
        self.idle.remove(antenna)
        last, released_s = antenna
        ready_s = released_s if last is None or last == peer else released_s + self.slew_s
        return antenna, ready_s

    def give_back(self, antenna: tuple[str | None, float], peer: str | None = None,
                  released_s: float | None = None) -> None:
        """Return ``antenna``: having served ``peer`` until ``released_s``, or unused (as
        it was) when they are not given. Call it before the request is released."""
        self.idle.append(antenna if released_s is None else (peer, float(released_s)))
