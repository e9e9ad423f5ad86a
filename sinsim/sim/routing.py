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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import simpy

from sinsim.sim.antennas import Antennas
from sinsim.sim.cgr import Bookings, Router
from sinsim.sim.ledger import Ledger
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
    # a broadcast's copy that reached the destination in another transfer's hop (and link)
    copied: tuple[TransferOutcome, Link] | None = None

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
                        hop_transfer: Callable | None = None,
                        antennas: Mapping[str, int] | None = None, slew_s: float = 0.0,
                        ledger: Ledger | None = None):
    """Send ``n_bytes`` over ``route`` (a generator for ``yield from``); a :class:`RouteOutcome`.

    ``lost(link, segments)`` decides whether the hop on ``link`` was lost (None: never).
    ``hop_transfer`` replaces :func:`transfer` for every hop (same signature). ``antennas``:
    the nodes that carry only so many links at once (a hop holds one of its end's antennas
    while on the air, after ``slew_s`` repointing if it last served another satellite).
    ``ledger``: the batteries that gate and pay for each hop's segments (its sender's and
    receiver's, :class:`sinsim.sim.ledger.HopPower`). A route with no hop (no way there) times
    out at the deadline."""
    hop = hop_transfer if hop_transfer is not None else transfer
    out = RouteOutcome(n_bytes=n_bytes, start_s=env.now)
    for link in route:
        decide = (lambda segs, link=link: lost(link, segs)) if lost is not None else False
        extra = {}
        for node, peer in ((link.src, link.dst), (link.dst, link.src)):
            if antennas and node in antennas:
                extra["antenna"] = antenna_of(env, node, antennas[node], slew_s)
                extra["peer"] = peer
        if ledger is not None and (power := ledger.hop(link.src, link.dst, deadline_s)):
            extra["power"] = power
        result = yield from hop(env, link.channel, n_bytes, deadline_s, lost=decide,
                                policy=policy, **extra)
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
         hop_transfer: Callable | None = None, ledger: Ledger | None = None):
    """Send ``n_bytes`` between client ``client`` (an index) and the server (a generator for
    ``yield from``); a :class:`RouteOutcome`. ``direction`` is ``"up"`` (to the server) or
    ``"down"``; ``round_`` keys the loss draws. The one way the engines move a payload.

    ``net.routing`` ``direct``: over the client's fixed route (its own link). ``relay``: along
    the earliest-arrival route (:mod:`sinsim.sim.cgr`) planned around what other transfers
    have booked on the links and the stations' antennas (``net.antennas``), each hop inside one
    window where it can finish; the plan books its hops at once, and the payload waits at each
    node for its booked slot. The round's model (``down``) goes as a tree: a copy is taken from
    whichever node already holds it or is due to (so the model climbs the ground uplink only
    as often as the plan needs), and only the hops a transfer crossed itself are its own. A
    lost hop is routed around from the node that still holds the payload (that link is not
    tried again for it), and the transfer is dropped when no route is left. Relayed loss draws
    are keyed by the link and the flow (client, direction), since several flows cross one
    link in a round. ``ledger`` (with ``power:``): the batteries that gate each hop's
    transmission and pay for it (relays included)."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if net.routing == "relay":
        return (yield from _relay(env, net, client, direction, n_bytes, deadline_s,
                                  round_=round_, policy=policy, hop_transfer=hop_transfer,
                                  ledger=ledger))
    route = net.route_up(client) if direction == "up" else net.route_down(client)

    def lost(link: Link, segments) -> bool:
        return net.lost(link, round_, segments)

    return (yield from transfer_over_route(env, route, n_bytes, deadline_s, lost=lost,
                                           policy=policy, hop_transfer=hop_transfer,
                                           antennas=dict(net.antennas), slew_s=net.slew_s,
                                           ledger=ledger))


_ANTENNAS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def antenna_of(env: simpy.Environment, node: str, count: int,
               slew_s: float = 0.0) -> Antennas:
    """The ``count`` antennas of ``node`` in ``env`` (direct transfers: first come, first
    served; ``slew_s`` to turn from one satellite to another)."""
    pools = _ANTENNAS.setdefault(env, {})
    if node not in pools:
        pools[node] = Antennas(env, count, slew_s)
    return pools[node]


_BOOKINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TREES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bookings_of(env: simpy.Environment, router: Router) -> Bookings:
    """What is booked on the links and antennas in ``env`` (one plan for every router)."""
    bookings = _BOOKINGS.get(env)
    if bookings is None:
        bookings = _BOOKINGS[env] = Bookings()
    if env.now > bookings.forgot_s + 600.0:  # now and then
        bookings.forget_before(env.now)
    bookings.capacity.update(router.capacity)
    bookings.terminals.update(router.terminals)
    bookings.slew_s = router.slew_s
    return bookings


class Tree:
    """A broadcast as a tree: the nodes that hold one payload (a round's model), or are due
    to, each with the time it is due and an event that fires with True when it is there (False
    when the copy on its way was lost). A copy is taken from whichever holder gets it to its
    destination first; each hop is counted once, by the transfer that crossed it."""

    def __init__(self, env: simpy.Environment):
        self.env = env  # an event's value: the (hop outcome, link) that brought the copy
        self.holds: dict[str, tuple[float, simpy.Event]] = {}

    def sources(self, now_s: float) -> dict[str, float]:
        return {node: max(due_s, now_s) for node, (due_s, _) in self.holds.items()}

    def add(self, node: str, due_s: float, there: bool = False) -> simpy.Event | None:
        """``node`` holds the payload (``there``) or is due to at ``due_s``; its event if new."""
        if node in self.holds:
            return None
        event = self.env.event()
        if there:
            event.succeed(True)
        self.holds[node] = (due_s, event)
        return event

    def fail(self, node: str, event: simpy.Event) -> None:
        """The copy due at ``node`` (``event``) will not come."""
        if self.holds.get(node, (None, None))[1] is event:
            del self.holds[node]
        if not event.triggered:
            event.succeed(False)


def tree_of(env: simpy.Environment, key: tuple) -> Tree:
    """The broadcast tree of payload ``key`` in ``env`` (made on first use)."""
    trees = _TREES.setdefault(env, {})
    if key not in trees:
        trees[key] = Tree(env)
    return trees[key]


def router_of(net: Network) -> Router:
    """The network's router, built once."""
    router = net.__dict__.get("_router")
    if router is None:
        router = Router(net)
        object.__setattr__(net, "_router", router)
    return router


def _relay(env, net: Network, client: int, direction: str, n_bytes: int, deadline_s: float, *,
           round_: int, policy: str, hop_transfer: Callable | None, ledger: Ledger | None):
    cid = net.client_ids[client]
    src, dst = (cid, net.server_id) if direction == "up" else (net.server_id, cid)
    tree = None
    if direction == "down":  # the round's model: one tree per (round, size) in this env
        tree = tree_of(env, ("down", round_, n_bytes))
        tree.add(net.server_id, env.now, there=True)
    return (yield from relay(env, router_of(net), net.seed, src, dst, n_bytes, deadline_s,
                             flow=(client, 0 if direction == "up" else 1), round_=round_,
                             policy=policy, hop_transfer=hop_transfer, tree=tree,
                             ledger=ledger))


def relay(env: simpy.Environment, router: Router, seed: int, src: str, dst: str,
          n_bytes: int, deadline_s: float, *, flow: tuple[int, ...], round_: int,
          policy: str = "resume", hop_transfer: Callable | None = None,
          tree: Tree | None = None, ledger: Ledger | None = None):
    """Send ``n_bytes`` from node ``src`` to node ``dst`` store-and-forward over ``router``'s
    links (a generator for ``yield from``); a :class:`RouteOutcome`. ``flow`` names the
    payload in the loss draws (with the round and the link). ``tree``: copy the payload from
    any node that holds it (a broadcast). ``ledger``: the batteries that gate and pay for
    each hop (a hop that waits for charge leaves its booked slot: the plan does not foresee
    charge). See :func:`send`."""
    hop = hop_transfer if hop_transfer is not None else transfer
    bookings = bookings_of(env, router)
    at = src
    out = RouteOutcome(n_bytes=n_bytes, start_s=env.now)
    failed: list[Link] = []
    while at != dst:
        if tree is not None and dst in tree.holds:  # a copy for another passes through dst
            got = yield tree.holds[dst][1]
            if got:
                out.end_s, out.status = env.now, "delivered"
                out.copied = got if isinstance(got, tuple) else None
                return out
            continue
        sources = {at: env.now} if tree is None else {**tree.sources(env.now), at: env.now}
        _, slots = router.earliest(sources, dst, env.now, n_bytes, deadline_s, avoid=failed,
                                   bookings=bookings)
        if not slots:
            if failed:  # lost on the way and no way around: dropped where it is
                out.end_s, out.status = env.now, "dropped"
                return out
            if deadline_s > env.now:
                yield env.timeout(deadline_s - env.now)
            out.end_s, out.status = deadline_s, "timeout"
            return out
        tickets = [bookings.book(slot) for slot in slots]
        promises = [tree.add(slot.link.dst, slot.arrival_s) if tree is not None else None
                    for slot in slots]
        first = slots[0].link.src
        if first != at:  # a copy from a node that holds the payload, or is due to
            if not (yield tree.holds[first][1]):  # that copy was lost: plan again
                bookings.release(tickets)
                for slot, promise in zip(slots, promises, strict=True):
                    if promise is not None:
                        tree.fail(slot.link.dst, promise)
                continue
            at = first
        for k, slot in enumerate(slots):
            link = slot.link
            ready_s = env.now
            if slot.start_s > env.now:  # held here until the booked slot
                yield env.timeout(slot.start_s - env.now)

            def lost(segs, link=link):
                return link.impairment.lost(seed, link.key + flow, round_, segs)

            power = ledger.hop(link.src, link.dst, deadline_s) if ledger is not None else None
            result = yield from hop(env, link.channel, n_bytes, deadline_s, lost=lost,
                                    policy=policy, **({"power": power} if power else {}))
            result.start_s = ready_s
            out.hops.append(result)
            out.links.append(link)
            out.end_s, out.status = result.end_s, result.status
            if result.status != "delivered":
                bookings.release(tickets[k + 1:])
                for later, promise in zip(slots[k:], promises[k:], strict=True):
                    if promise is not None:
                        tree.fail(later.link.dst, promise)
                if result.status == "timeout":
                    return out
                failed.append(link)
                break
            at = link.dst
            if promises[k] is not None:
                promises[k].succeed((result, link))
    return out
