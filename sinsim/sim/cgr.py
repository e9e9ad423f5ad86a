"""Contact-graph routing: the earliest-arrival route of a payload over a time-varying graph,
aware of what is already booked on each link and each station's antennas.

Each link of the :class:`~sinsim.sim.network.Network` is up in its windows and moves bits at
its rate, with a propagation delay (its :class:`~sinsim.sim.channel.Channel`). A node holds a
payload until the next hop can take it (store-and-forward).

:func:`hop_arrival_s` is the closed form of one hop as :func:`sinsim.sim.transfer.transfer`
sends it (waiting for windows, pausing at loss of signal and resuming or restarting): what a
direct transfer does. A relayed hop is planned by :func:`hop_slot` instead: it starts only
where it can finish, inside one window (a hop that cannot finish in what is left of a window
waits for one that can carry it whole), and only where the link and the antennas of its ends
are free of what :class:`Bookings` holds (the residual volume of contact graph routing in DTN:
each planned transmission reserves its interval on its link and on its ends' antennas). The
earliest such slot never gets earlier when the payload is ready later (links stay FIFO), so
Dijkstra's algorithm over nodes, labelled with the earliest time the whole payload can be
there, gives the earliest arrival (the contact-graph routing of DTN's ION, with contacts
grouped by link; Fraire et al. 2021). Ties go to the node found first, then the earlier link,
so routes are deterministic. Several sources (the nodes that already hold, or are due to
hold, a round's model) start the search together, each at its own time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sinsim.sim.channel import Channel
from sinsim.sim.network import Link, Network, Route


def hop_arrival_s(channel: Channel, t_s: float, n_bytes: int, deadline_s: float = math.inf,
                  policy: str = "resume") -> float:
    """When ``n_bytes`` ready at ``t_s`` have all arrived over ``channel`` (inf: not by
    ``deadline_s``). The lossless outcome of :func:`~sinsim.sim.transfer.transfer`."""
    bits_left = 8.0 * n_bytes
    delay_s: float | None = None
    t = t_s
    while True:
        window = channel.next_window(t)
        if window is None or window[0] >= deadline_s:
            return math.inf
        t, end = window
        if delay_s is None:
            delay_s = float(channel.delay_s(t))
        done_s = channel.rate.time_for(t, bits_left)
        if done_s <= end and done_s <= deadline_s:
            arrival = done_s + delay_s
            return arrival if arrival <= deadline_s else math.inf
        stop_s = min(end, deadline_s)
        if stop_s >= deadline_s:
            return math.inf
        bits_left = bits_left - channel.rate.bits(t, stop_s) if policy == "resume" \
            else 8.0 * n_bytes
        t = stop_s


@dataclass(frozen=True)
class Slot:
    """A planned hop: the first bit leaves at ``start_s``, the last at ``done_s`` (the link
    and its ends' antennas are busy in between) and arrives at ``arrival_s``."""

    link: Link
    start_s: float
    done_s: float
    arrival_s: float


class Bookings:
    """The transmissions planned on each link (one at a time), on each capacity-limited
    node (``capacity[node]`` links at once, in either direction: a station's antennas) and
    on each satellite's crosslink terminals (``terminals[node]`` crosslinks at once).

    A booking on a node names its peer (the other end of the link): the two directions to one
    satellite share an antenna (a terminal). On a capacity-limited node, bookings for two
    different satellites are ``slew_s`` apart (the antenna turns from one to the other:
    ``links.slew``). ``version`` grows with every change."""

    def __init__(self, capacity: Mapping[str, int] | None = None,
                 terminals: Mapping[str, int] | None = None, slew_s: float = 0.0):
        self.capacity: dict[str, int] = dict(capacity or {})
        self.slew_s = float(slew_s)
        self.terminals: dict[str, int] = dict(terminals or {})  # crosslinks a node keeps up
        self._by_key: dict[tuple, list[tuple[float, float, str | None, int]]] = {}
        self._tickets = itertools.count(1)
        self.version = 0
        self.forgot_s = -math.inf  # bookings that ended by then are dropped

    def _keys(self, link: Link) -> list[tuple[tuple, int, str | None]]:
        keys: list[tuple[tuple, int, str | None]] = [(("link", id(link)), 1, None)]
        crosslink = link.src in self.terminals and link.dst in self.terminals
        for node, peer in ((link.src, link.dst), (link.dst, link.src)):
            cap = self.capacity.get(node)
            if cap is not None:
                keys.append((("node", node), cap, peer))
            if crosslink:
                keys.append((("terminal", node), self.terminals[node], peer))
        return keys

    def busy_until(self, link: Link, start_s: float, done_s: float) -> float | None:
        """None if ``[start_s, done_s)`` is free on ``link`` and its ends; else a time before
        which it cannot be (the earliest end of the bookings in the way)."""
        for key, cap, peer in self._keys(link):
            pad = self.slew_s if key[0] == "node" else 0.0  # another satellite: slew between
            over = [b for b in self._by_key.get(key, ())
                    if (b[2] is None or b[2] != peer) and b[0] - pad < done_s
                    and b[1] + pad > start_s]
            if not over:
                continue
            named = {b[2] for b in over if b[2] is not None}
            if len(named) + sum(b[2] is None for b in over) >= cap:
                return min(b[1] + pad for b in over)
        return None

    def book(self, slot: Slot) -> int:
        """Reserve ``slot``; a ticket for :meth:`release`."""
        ticket = next(self._tickets)
        for key, _, peer in self._keys(slot.link):
            self._by_key.setdefault(key, []).append((slot.start_s, slot.done_s, peer, ticket))
        self.version += 1
        return ticket

    def forget_before(self, t_s: float) -> None:
        """Drop the bookings that ended by ``t_s`` (they can no longer be in anyone's way)."""
        for key, items in self._by_key.items():
            self._by_key[key] = [b for b in items if b[1] > t_s]
        self.forgot_s = t_s

    def release(self, tickets: Collection[int]) -> None:
        """Cancel the bookings of ``tickets`` (a plan given up)."""
        if not tickets:
            return
        drop = set(tickets)
        for key, items in self._by_key.items():
            self._by_key[key] = [b for b in items if b[3] not in drop]
        self.version += 1


def hop_slot(link: Link, t_s: float, n_bytes: int, deadline_s: float = math.inf,
             bookings: Bookings | None = None) -> Slot | None:
    """The earliest slot in which ``n_bytes`` ready at ``t_s`` cross ``link`` inside one of its
    windows, clear of ``bookings``, and arrive by ``deadline_s``; None if there is none."""
    channel, bits = link.channel, 8.0 * n_bytes
    t = t_s
    while True:
        window = channel.next_window(t)
        if window is None or window[0] >= deadline_s:
            return None
        start, end = window
        done = channel.rate.time_for(start, bits)
        if done > end:  # not in what is left of this window: the next one
            t = end
            continue
        if done > deadline_s:
            return None
        if bookings is not None:
            free_s = bookings.busy_until(link, start, done)
            if free_s is not None:
                t = free_s
                continue
        arrival = done + float(channel.delay_s(start))
        return Slot(link, start, done, arrival) if arrival <= deadline_s else None


class Router:
    """Earliest-arrival routes over ``network``'s links, planned around ``Bookings``."""

    def __init__(self, network: Network):
        self.nodes = network.nodes
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.out: list[list[tuple[int, Link]]] = [[] for _ in self.nodes]
        for link in network.links:
            self.out[self.index[link.src]].append((self.index[link.dst], link))
        self.capacity = dict(network.antennas)
        self.terminals = dict(network.terminals)
        self.slew_s = network.slew_s

    def earliest(self, src: str | Mapping[str, float], dst: str, t_s: float, n_bytes: int,
                 deadline_s: float = math.inf, *, avoid: Collection[Link] = (),
                 bookings: Bookings | None = None) -> tuple[float, tuple[Slot, ...]]:
        """``(arrival_s, slots)``: the earliest time ``n_bytes`` ready at ``src`` at ``t_s``
        can all be at ``dst`` by ``deadline_s``, and the hops to take (their slots);
        ``(inf, ())`` if none. ``src`` may map several sources to the time each holds the
        payload (the route then starts at one of them). ``avoid``: links not to use."""
        sources = {src: t_s} if isinstance(src, str) else dict(src)
        search = _Search(self, sources, n_bytes, deadline_s, {id(link) for link in avoid},
                         bookings)
        return search.route_to(self.index[dst])

    def route(self, src: str, dst: str, t_s: float, n_bytes: int,
              deadline_s: float = math.inf) -> tuple[float, Route]:
        """``(arrival_s, links)`` of :meth:`earliest` with nothing booked."""
        arrival, slots = self.earliest(src, dst, t_s, n_bytes, deadline_s)
        return arrival, tuple(s.link for s in slots)


class _Search:
    """Dijkstra's algorithm from the sources, run only as far as the destination.

    Heap entries ``(time, order, node, None)`` are arrivals; ``(time, order, from, link)`` are
    hops not yet evaluated, keyed by a lower bound of their arrival (the start of the link's
    next window): a link that is closed now is evaluated only if nothing better came first."""

    def __init__(self, router: Router, sources: Mapping[str, float], n_bytes: int,
                 deadline_s: float, avoid_ids: set[int], bookings: Bookings | None):
        n = len(router.nodes)
        self.router = router
        self.n_bytes, self.deadline_s, self.avoid_ids, self.bookings = (
            n_bytes, deadline_s, avoid_ids, bookings)
        self.best = [math.inf] * n
        self.via: list[tuple[int, Slot] | None] = [None] * n
        self.done = [False] * n
        self.order = itertools.count()
        self.heap: list[tuple[float, int, int, Link | None]] = []
        for node, t in sources.items():
            i = router.index[node]
            if t < self.best[i]:
                self.best[i] = t
                heapq.heappush(self.heap, (t, next(self.order), i, None))

    def route_to(self, goal: int) -> tuple[float, tuple[Slot, ...]]:
        self._run_until(goal)
        if not math.isfinite(self.best[goal]):
            return math.inf, ()
        slots: list[Slot] = []
        node = goal
        while self.via[node] is not None:
            u, slot = self.via[node]
            slots.append(slot)
            node = u
        return self.best[goal], tuple(reversed(slots))

    def _relax(self, u: int, v: int, link: Link) -> None:
        slot = hop_slot(link, self.best[u], self.n_bytes, self.deadline_s, self.bookings)
        if slot is not None and slot.arrival_s < self.best[v]:
            self.best[v], self.via[v] = slot.arrival_s, (u, slot)
            heapq.heappush(self.heap, (slot.arrival_s, next(self.order), v, None))

    def _run_until(self, goal: int) -> None:
        best, done, heap = self.best, self.done, self.heap
        out, index = self.router.out, self.router.index
        while heap and not done[goal]:
            t, _, u, pending = heapq.heappop(heap)
            if pending is not None:  # evaluate the hop u -> v now
                v = index[pending.dst]
                if not done[v]:
                    self._relax(u, v, pending)
                continue
            if done[u]:
                continue
            done[u] = True
            for v, link in out[u]:
                if done[v] or id(link) in self.avoid_ids:
                    continue
                window = link.channel.next_window(t)
                if window is None or window[0] >= self.deadline_s or window[0] >= best[v]:
                    continue  # no window in time, or it cannot beat what v has
                if window[0] > t:  # closed now: evaluate when its window comes up
                    heapq.heappush(heap, (window[0], next(self.order), u, link))
                    continue
                self._relax(u, v, link)
