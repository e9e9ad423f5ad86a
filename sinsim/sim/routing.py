"""A transfer over a route, hop by hop, store-and-forward.

Each hop is a :func:`sinsim.sim.transfer.transfer` on that link's channel that starts when the
previous hop delivered the whole payload (the relay keeps it until then); the route stops at the
first hop that is not delivered (dropped or timed out), and every hop shares the transfer's
deadline. The outcome has the fields of one transfer: over one hop they are that hop's exactly;
over several, the start of the first hop, the end of the last one tried, the status of that
hop, and the pauses, bits and transmit time summed over the hops (the mean rate is then bits
over transmit time). The hops' own outcomes are kept.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import simpy

from sinsim.sim.cgr import Router, hop_arrival_s
from sinsim.sim.network import Link, Network
from sinsim.sim.transfer import TransferOutcome, transfer

Lost = Callable[[Link, Sequence[tuple[float, float]]], bool]


@dataclass
class RouteOutcome:
    n_bytes: int
    start_s: float
    end_s: float = math.nan
    status: str = "pending"  # delivered | dropped | timeout
    hops: list[TransferOutcome] = field(default_factory=list)  # one per hop tried, in order
    links: list[Link] = field(default_factory=list)  # the links of those hops

    @property
    def pauses(self) -> int:
        return sum(h.pauses for h in self.hops)

    @property
    def bits_sent(self) -> float:
        return sum(h.bits_sent for h in self.hops)

    @property
    def transmit_s(self) -> float:
        return sum(h.transmit_s for h in self.hops)

    @property
    def mean_rate_bps(self) -> float:
        transmit_s = self.transmit_s
        return self.bits_sent / transmit_s if transmit_s > 0 else math.nan

    @property
    def wait_s(self) -> float:
        return (self.end_s - self.start_s) - self.transmit_s


def transfer_over_route(env: simpy.Environment, route: Sequence[Link], n_bytes: int,
                        deadline_s: float, *, lost: Lost | None = None, policy: str = "resume",
                        hop_transfer: Callable | None = None):
    """Send ``n_bytes`` over ``route`` (a generator for ``yield from``); a :class:`RouteOutcome`.

    ``lost(link, segments)`` decides whether the hop on ``link`` was lost (None: never).
    ``hop_transfer`` replaces :func:`transfer` for every hop (same signature). A route with no
    hop (no way there) times out at the deadline."""
    hop = hop_transfer if hop_transfer is not None else transfer
    out = RouteOutcome(n_bytes=n_bytes, start_s=env.now)
    for link in route:
        decide = (lambda segs, link=link: lost(link, segs)) if lost is not None else False
        result = yield from hop(env, link.channel, n_bytes, deadline_s, lost=decide,
                                policy=policy)
        out.hops.append(result)
        out.links.append(link)
        out.end_s, out.status = result.end_s, result.status
        if result.status != "delivered":
            return out
    if not out.hops:
        if deadline_s > env.now:
            yield env.timeout(deadline_s - env.now)
        out.end_s, out.status = deadline_s, "timeout"
    return out


def send(env: simpy.Environment, net: Network, client: int, direction: str, n_bytes: int,
         deadline_s: float, *, round_: int, policy: str = "resume",
         hop_transfer: Callable | None = None):
    """Send ``n_bytes`` between client ``client`` (an index) and the server (a generator for
    ``yield from``); a :class:`RouteOutcome`. ``direction`` is ``"up"`` (to the server) or
    ``"down"``; ``round_`` keys the loss draws. The one way the engines move a payload.

    ``net.routing`` ``direct``: over the client's fixed route (its own link). ``relay``: hop by
    hop along the earliest-arrival route (:mod:`sinsim.sim.cgr`), planned again at every node
    that holds the payload; a hop waits while its link carries another transfer (one at a time,
    first come first served); a lost hop is routed around from the node that still holds the
    payload (that link is not tried again for it), and the transfer is dropped when no route
    is left. Relayed loss draws are keyed by the link and the flow (client, direction), since
    several flows cross one link in a round."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if net.routing == "relay":
        return (yield from _relay(env, net, client, direction, n_bytes, deadline_s,
                                  round_=round_, policy=policy, hop_transfer=hop_transfer))
    route = net.route_up(client) if direction == "up" else net.route_down(client)

    def lost(link: Link, segments) -> bool:
        return net.lost(link, round_, segments)

    return (yield from transfer_over_route(env, route, n_bytes, deadline_s, lost=lost,
                                           policy=policy, hop_transfer=hop_transfer))


_LINK_QUEUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _queue(env: simpy.Environment, link: Link) -> simpy.Resource:
    """The FIFO queue of ``link`` in ``env``: one transfer on the link at a time."""
    queues = _LINK_QUEUES.setdefault(env, {})
    if id(link) not in queues:
        queues[id(link)] = simpy.Resource(env, capacity=1)
    return queues[id(link)]


def router_of(net: Network) -> Router:
    """The network's router, built once."""
    router = net.__dict__.get("_router")
    if router is None:
        router = Router(net)
        object.__setattr__(net, "_router", router)
    return router


def _relay(env, net: Network, client: int, direction: str, n_bytes: int, deadline_s: float, *,
           round_: int, policy: str, hop_transfer: Callable | None):
    cid = net.client_ids[client]
    src, dst = (cid, net.server_id) if direction == "up" else (net.server_id, cid)
    return (yield from relay(env, router_of(net), net.seed, src, dst, n_bytes, deadline_s,
                             flow=(client, 0 if direction == "up" else 1), round_=round_,
                             policy=policy, hop_transfer=hop_transfer))


def relay(env: simpy.Environment, router: Router, seed: int, src: str, dst: str,
          n_bytes: int, deadline_s: float, *, flow: tuple[int, ...], round_: int,
          policy: str = "resume", hop_transfer: Callable | None = None):
    """Send ``n_bytes`` from node ``src`` to node ``dst`` store-and-forward over ``router``'s
    links (a generator for ``yield from``); a :class:`RouteOutcome`. ``flow`` names the
    payload in the loss draws (with the round and the link). See :func:`send`."""
    hop = hop_transfer if hop_transfer is not None else transfer
    at, goal = src, dst
    out = RouteOutcome(n_bytes=n_bytes, start_s=env.now)
    failed: list[Link] = []
    plan: list[tuple[Link, float]] = []  # the links ahead and when the payload is due after each
    while at != goal:
        if not plan:
            _, route = router.earliest(at, goal, env.now, n_bytes, deadline_s, policy=policy,
                                       avoid=failed)
            plan = _schedule(route, env.now, n_bytes, deadline_s, policy)
        if not plan:
            if failed:  # lost on the way and no way around: dropped where it is
                out.end_s, out.status = env.now, "dropped"
                return out
            if deadline_s > env.now:
                yield env.timeout(deadline_s - env.now)
            out.end_s, out.status = deadline_s, "timeout"
            return out
        link, due_s = plan.pop(0)
        with _queue(env, link).request() as turn:
            if turn.triggered or not math.isfinite(deadline_s):
                yield turn
            elif turn not in (yield turn | env.timeout(max(0.0, deadline_s - env.now))):
                out.end_s, out.status = deadline_s, "timeout"  # still queued at the deadline
                return out

            def lost(segs, link=link):
                return link.impairment.lost(seed, link.key + flow, round_, segs)

            result = yield from hop(env, link.channel, n_bytes, deadline_s, lost=lost,
                                    policy=policy)
        out.hops.append(result)
        out.links.append(link)
        out.end_s, out.status = result.end_s, result.status
        if result.status == "timeout":
            return out
        if result.status == "dropped":
            failed.append(link)
            plan = []
            continue
        at = link.dst
        if result.end_s > due_s + 1e-9:  # late (it queued): the rest of the plan may no longer be best
            plan = []
    return out


def _schedule(route: Sequence[Link], t_s: float, n_bytes: int, deadline_s: float,
              policy: str) -> list[tuple[Link, float]]:
    """Each link of ``route`` with the time the payload is due at its end. On time, the rest of
    an earliest-arrival route is still the earliest from there (links are FIFO)."""
    out = []
    for link in route:
        t_s = hop_arrival_s(link.channel, t_s, n_bytes, deadline_s, policy)
        out.append((link, t_s))
    return out
