"""Contact-graph routing: the earliest-arrival route of a payload over a time-varying graph.

Each link of the :class:`~sinsim.sim.network.Network` is up in its windows and moves bits at
its rate, with a propagation delay (its :class:`~sinsim.sim.channel.Channel`). A node holds a
payload until the next hop can take it (store-and-forward). :func:`hop_arrival_s` is the
closed form of one hop: when a payload ready at ``t`` is all across a link, without losses,
exactly as :func:`sinsim.sim.transfer.transfer` sends it (waiting for windows, pausing at loss of
signal and resuming or restarting). A hop's arrival never gets earlier when its payload is ready
later (links are FIFO), so Dijkstra's algorithm over nodes, labelled with the earliest time the
whole payload can be there, gives the earliest arrival (the contact-graph routing of DTN's ION,
with contacts grouped by link; Fraire et al. 2021). Ties go to the node found first, then the
earlier link, so routes are deterministic.

What the router does not see: other transfers queued on the same link (the engine serialises
them; a route planned alone can be late), and losses (a lost hop is re-routed from the node that
holds the payload).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Collection

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


class Router:
    """Earliest-arrival routes over ``network``'s links.

    A search from one source at one time (for one payload size, deadline and policy) is kept
    and resumed for the next destination asked for (the server's broadcast of a round asks for
    a route to every selected client at the same instant); the last ``keep`` searches are kept.
    """

    def __init__(self, network: Network, keep: int = 4):
        self.nodes = network.nodes
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.out: list[list[tuple[int, Link]]] = [[] for _ in self.nodes]
        for link in network.links:
            self.out[self.index[link.src]].append((self.index[link.dst], link))
        self.keep = keep
        self._searches: dict[tuple, _Search] = {}

    def earliest(self, src: str, dst: str, t_s: float, n_bytes: int,
                 deadline_s: float = math.inf, *, policy: str = "resume",
                 avoid: Collection[Link] = ()) -> tuple[float, Route]:
        """``(arrival_s, route)``: the earliest time ``n_bytes`` ready at ``src`` at ``t_s`` can
        all be at ``dst`` by ``deadline_s``, and the links to take; ``(inf, ())`` if none.
        ``avoid``: links not to use (those that lost this payload)."""
        goal = self.index[dst]
        if avoid:
            search = _Search(self, self.index[src], t_s, n_bytes, deadline_s, policy,
                             {id(link) for link in avoid})
        else:
            key = (src, t_s, n_bytes, deadline_s, policy)
            search = self._searches.pop(key, None)
            if search is None:
                search = _Search(self, self.index[src], t_s, n_bytes, deadline_s, policy, set())
            self._searches[key] = search  # the most recent last
            while len(self._searches) > self.keep:
                del self._searches[next(iter(self._searches))]
        return search.route_to(goal)


class _Search:
    """Dijkstra's algorithm from one source, run only as far as the destinations asked for.

    Heap entries ``(time, order, node, None)`` are arrivals; ``(time, order, from, link)`` are
    hops not yet evaluated, keyed by a lower bound of their arrival (the start of the link's
    next window): a link that is closed now is evaluated only if nothing better came first."""

    def __init__(self, router: Router, start: int, t_s: float, n_bytes: int,
                 deadline_s: float, policy: str, avoid_ids: set[int]):
        n = len(router.nodes)
        self.router, self.start = router, start
        self.n_bytes, self.deadline_s, self.policy, self.avoid_ids = (
            n_bytes, deadline_s, policy, avoid_ids)
        self.best = [math.inf] * n
        self.best[start] = t_s
        self.via: list[tuple[int, Link] | None] = [None] * n
        self.done = [False] * n
        self.order = itertools.count()
        self.heap: list[tuple[float, int, int, Link | None]] = [(t_s, next(self.order), start,
                                                                 None)]

    def route_to(self, goal: int) -> tuple[float, Route]:
        self._run_until(goal)
        if not math.isfinite(self.best[goal]):
            return math.inf, ()
        route: list[Link] = []
        node = goal
        while node != self.start:
            u, link = self.via[node]
            route.append(link)
            node = u
        return self.best[goal], tuple(reversed(route))

    def _run_until(self, goal: int) -> None:
        best, via, done, heap = self.best, self.via, self.done, self.heap
        out, index, order = self.router.out, self.router.index, self.order
        n_bytes, deadline_s, policy, avoid_ids = (
            self.n_bytes, self.deadline_s, self.policy, self.avoid_ids)
        while heap and not done[goal]:
            t, _, u, pending = heapq.heappop(heap)
            if pending is not None:  # evaluate the hop u -> v now
                v = index[pending.dst]
                if done[v]:
                    continue
                arrival = hop_arrival_s(pending.channel, best[u], n_bytes, deadline_s, policy)
                if arrival < best[v]:
                    best[v], via[v] = arrival, (u, pending)
                    heapq.heappush(heap, (arrival, next(order), v, None))
                continue
            if done[u]:
                continue
            done[u] = True
            for v, link in out[u]:
                if done[v] or id(link) in avoid_ids:
                    continue
                window = link.channel.next_window(t)
                if window is None or window[0] >= deadline_s or window[0] >= best[v]:
                    continue  # no window in time, or it cannot beat what v has
                if window[0] > t:  # closed now: evaluate when its window comes up
                    heapq.heappush(heap, (window[0], next(order), u, link))
                    continue
                arrival = hop_arrival_s(link.channel, t, n_bytes, deadline_s, policy)
                if arrival < best[v]:
                    best[v], via[v] = arrival, (u, link)
                    heapq.heappush(heap, (arrival, next(order), v, None))
