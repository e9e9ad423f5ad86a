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
    """Earliest-arrival routes over ``network``'s links (computed on demand, not cached:
    they depend on the time, the payload size and the deadline)."""

    def __init__(self, network: Network):
        self.nodes = network.nodes
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.out: list[list[tuple[int, Link]]] = [[] for _ in self.nodes]
        for link in network.links:
            self.out[self.index[link.src]].append((self.index[link.dst], link))

    def earliest(self, src: str, dst: str, t_s: float, n_bytes: int,
                 deadline_s: float = math.inf, *, policy: str = "resume",
                 avoid: Collection[Link] = ()) -> tuple[float, Route]:
        """``(arrival_s, route)``: the earliest time ``n_bytes`` ready at ``src`` at ``t_s`` can
        all be at ``dst`` by ``deadline_s``, and the links to take; ``(inf, ())`` if none.
        ``avoid``: links not to use (those that lost this payload)."""
        start, goal = self.index[src], self.index[dst]
        avoid_ids = {id(link) for link in avoid}
        if start == goal:
            return t_s, ()
        n = len(self.nodes)
        best = [math.inf] * n
        via: list[tuple[int, Link] | None] = [None] * n
        best[start] = t_s
        done = [False] * n
        heap = [(t_s, start)]
        while heap:
            t, u = heapq.heappop(heap)
            if done[u]:
                continue
            done[u] = True
            if u == goal:
                break
            for v, link in self.out[u]:
                if done[v] or id(link) in avoid_ids:
                    continue
                arrival = hop_arrival_s(link.channel, t, n_bytes, deadline_s, policy)
                if arrival < best[v]:
                    best[v] = arrival
                    via[v] = (u, link)
                    heapq.heappush(heap, (arrival, v))
        if not math.isfinite(best[goal]):
            return math.inf, ()
        route: list[Link] = []
        node = goal
        while node != start:
            u, link = via[node]
            route.append(link)
            node = u
        return best[goal], tuple(reversed(route))
