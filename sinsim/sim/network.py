"""The SIN as the engine sees it: a time-varying graph, as plain data.

Nodes are the clients (by id) and one server node. A directed :class:`Link` carries a
:class:`~sinsim.sim.channel.Channel` (when it is up, how fast, its delay), its loss model
(:mod:`sinsim.sim.impairments`) and the stream key that keys its random draws. A *route* is a
tuple of links, each hop's ``dst`` the next hop's ``src``. Today's network is a star: a link
from every client to the server and one back, so every route has one hop; relays are more links.

Routes are the fewest-hop paths over the links (ties: the earlier link), computed once. The
network is built from a scenario in :mod:`sinsim.sim.wiring`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from sinsim.sim.channel import Channel
from sinsim.sim.impairments import Impairment, StreamKey

UP, DOWN = 0, 1

Route = tuple["Link", ...]


@dataclass(frozen=True)
class Link:
    """A directed link ``src`` -> ``dst`` (node ids)."""

    src: str
    dst: str
    channel: Channel
    impairment: Impairment
    key: StreamKey  # names the link in keyed random draws: the star's are (client, direction)


@dataclass(frozen=True)
class Network:
    client_ids: tuple[str, ...]
    links: tuple[Link, ...]
    seed: int
    server_id: str = "server"
    routing: str = "direct"  # direct: the fixed fewest-hop routes; relay: sinsim.sim.cgr
    antennas: tuple[tuple[str, int], ...] = ()  # (node, links it carries at once); others: any
    terminals: tuple[tuple[str, int], ...] = ()  # (satellite, crosslinks it keeps up at once)
    slew_s: float = 0.0  # an antenna of ``antennas`` turning from one satellite to another
    _up: tuple[Route, ...] = field(init=False, repr=False, compare=False)
    _down: tuple[Route, ...] = field(init=False, repr=False, compare=False)
    _direct_down: tuple[Link | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.routing not in ("direct", "relay"):
            raise ValueError(f"routing must be 'direct' or 'relay', got {self.routing!r}")
        if self.server_id in self.client_ids:
            raise ValueError(f"the server node id {self.server_id!r} is also a client's")
        if not (math.isfinite(self.slew_s) and self.slew_s >= 0):
            raise ValueError(f"slew_s must be finite and >= 0, got {self.slew_s!r}")
        nodes = {*self.client_ids, self.server_id}
        for node, count in (*self.antennas, *self.terminals):
            if node not in nodes or count < 1:
                raise ValueError(f"antennas: {node!r} must be a node with >= 1, got {count}")
        for link in self.links:
            if link.src not in nodes or link.dst not in nodes:
                raise ValueError(f"link {link.src}->{link.dst}: unknown node")
        down = _shortest_routes(self.links, self.server_id, forward=True)
        up = _shortest_routes(self.links, self.server_id, forward=False)
        direct = {link.dst: link for link in reversed(self.links) if link.src == self.server_id}
        object.__setattr__(self, "_down", tuple(down.get(c, ()) for c in self.client_ids))
        object.__setattr__(self, "_up", tuple(up.get(c, ()) for c in self.client_ids))
        object.__setattr__(self, "_direct_down", tuple(direct.get(c) for c in self.client_ids))

    @property
    def nodes(self) -> tuple[str, ...]:
        return (*self.client_ids, self.server_id)

    def route_up(self, client: int) -> Route:
        """The links an update of client ``client`` (an index) takes to the server; () if none."""
        return self._up[client]

    def route_down(self, client: int) -> Route:
        """The links the global model takes from the server to client ``client``; () if none."""
        return self._down[client]

    def lost(self, link: Link, round_: int, segments: Sequence[tuple[float, float]]) -> bool:
        """Was the transfer of round ``round_`` on ``link``, on the air during ``segments``,
        lost? A draw keyed by (round, the link's stream key)."""
        return link.impairment.lost(self.seed, link.key, round_, segments)

    def in_view(self, t0_s: float, t1_s: float) -> list[int]:
        """Clients with a direct link from the server that is up at some time in [t0_s, t1_s]."""
        out = []
        for i, link in enumerate(self._direct_down):
            w = link.channel.next_window(t0_s) if link is not None else None
            if w is not None and w[0] <= t1_s:
                out.append(i)
        return out

    def next_contact_s(self, t_s: float) -> float:
        """The earliest time >= t_s at which a direct link from the server to a client is up
        (inf if never)."""
        starts = [w[0] for link in self._direct_down
                  if link is not None and (w := link.channel.next_window(t_s)) is not None]
        return min(starts, default=math.inf)


def _shortest_routes(links: Sequence[Link], root: str, *, forward: bool) -> dict[str, Route]:
    """Fewest-hop routes from ``root`` to every node (``forward``) or from every node to
    ``root``, by breadth-first search; among equally short ones the earlier links win."""
    adjacent: dict[str, list[Link]] = {}
    for link in links:
        adjacent.setdefault(link.src if forward else link.dst, []).append(link)
    routes: dict[str, Route] = {root: ()}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for link in adjacent.get(node, ()):
            nxt = link.dst if forward else link.src
            if nxt not in routes:
                routes[nxt] = routes[node] + (link,) if forward else (link,) + routes[node]
                queue.append(nxt)
    del routes[root]
    return routes
