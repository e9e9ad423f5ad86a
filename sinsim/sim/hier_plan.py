"""Where hierfl's copies go, from the contact plan (``sinsim.sim.hier_server`` moves them):
a router per orbital plane over its ring (``plane_rings``), the plane's entry satellite for the
global model (``entry_of``: the earliest whole delivery inside one window), its sink
(``sink_of``: the first satellite whose own link to the server opens), and the latest time a
plane model can leave and still arrive by the deadline (``leave_by``). Pure functions of the
network, no SimPy.
"""

from __future__ import annotations

from typing import Any

from sinsim.sim.cgr import Router
from sinsim.sim.network import Network

__all__ = ["plane_rings", "first_in_view", "whole_in_window_s", "entry_of", "sink_of",
           "leave_by"]


def plane_rings(net: Network, planes: list[int]) -> dict[int, Router]:
    """A router per plane over the links between two of its satellites and their own links to
    the server (not back: no route between satellites goes through the server)."""
    index = {cid: i for i, cid in enumerate(net.client_ids)}
    out = {}
    for p in sorted(set(planes)):
        members = tuple(cid for cid, q in zip(net.client_ids, planes, strict=True) if q == p)
        links = tuple(link for link in net.links if link.src in index
                      and planes[index[link.src]] == p
                      and (link.dst == net.server_id
                           or (link.dst in index and planes[index[link.dst]] == p)))
        out[p] = Router(Network(members, links, net.seed, net.server_id, routing="relay"))
    return out


def first_in_view(net: Network, planes: list[int], plane: int, t_s: float,
                  direction: str = "up") -> int:
    """The satellite of ``plane`` whose own link to (``up``) or from (``down``) the server
    opens first at or after ``t_s`` (ties: the lower index; none ever: the first of the
    plane)."""
    best = None
    for c, p in enumerate(planes):
        if p != plane:
            continue
        route = net.route_up(c) if direction == "up" else net.route_down(c)
        window = route[0].channel.next_window(t_s) if route else None
        start = window[0] if window is not None else float("inf")
        if best is None or start < best[0]:
            best = (start, c)
    return best[1]


def whole_in_window_s(channel: Any, t_s: float, n_bytes: int, deadline_s: float) -> float:
    """When ``n_bytes`` sent over ``channel`` from ``t_s`` are all there, sent inside one
    contact window that ends by ``deadline_s`` (the first such window); inf if none."""
    window = channel.next_window(t_s)
    while window is not None and window[0] < deadline_s:
        start, end = window
        done_s = channel.rate.time_for(start, 8 * n_bytes)
        if done_s <= min(end, deadline_s):
            return done_s + channel.delay_s(start)
        window = channel.next_window(end)
    return float("inf")


def entry_of(net: Network, planes: list[int], plane: int, t_s: float, n_bytes: int,
             deadline_s: float, skip: set[int] = frozenset()) -> int | None:
    """The satellite of ``plane`` (not in ``skip``) that the global model (``n_bytes``)
    reaches first over its own link from the server, sent whole inside a window before
    ``deadline_s`` (ties: the lower index); if none can, the one whose link opens first; None
    when every satellite of the plane is skipped."""
    best, opens = None, None
    for c, p in enumerate(planes):
        if p != plane or c in skip:
            continue
        route = net.route_down(c)
        window = route[0].channel.next_window(t_s) if route else None
        start = window[0] if window is not None else float("inf")
        if opens is None or start < opens[0]:
            opens = (start, c)
        if len(route) != 1:  # not its own link
            continue
        arrival_s = whole_in_window_s(route[0].channel, t_s, n_bytes, deadline_s)
        if best is None or arrival_s < best[0]:
            best = (arrival_s, c)
    if best is None or best[0] == float("inf"):
        return None if opens is None else opens[1]
    return best[1]


def sink_of(net: Network, planes: list[int], plane: int, t_s: float) -> int:
    """The plane's sink: :func:`first_in_view` on the way up."""
    return first_in_view(net, planes, plane, t_s, "up")


def leave_by(ring: Router, src: str, dst: str, t_s: float, n_bytes: int, deadline_s: float,
             tol_s: float = 1.0) -> float | None:
    """The latest time in ``[t_s, deadline_s]`` at which ``n_bytes`` ready at ``src`` can
    leave and still be all at ``dst`` by ``deadline_s`` over ``ring``'s links (its contact
    plan, nothing booked), to ``tol_s`` (bisection: leaving earlier never arrives later);
    None if not even at ``t_s``."""
    def arrives(t: float) -> bool:
        return bool(ring.earliest(src, dst, t, n_bytes, deadline_s)[1])

    if not arrives(t_s):
        return None
    lo, hi = t_s, deadline_s
    while hi - lo > tol_s:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if arrives(mid) else (lo, mid)
    return lo
