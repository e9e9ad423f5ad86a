"""Contact-graph routing at constellation scale: the routes of one round's 100 clients.

A 1,584-satellite Walker shell (53 degrees, 22 planes of 72, 550 km; Starlink's first shell)
with +Grid inter-satellite links and 10 ground stations over 24 h. It builds the contact plan
(satellite-station windows), the ISL plan (+Grid pairs and their windows) and the network, then
times the earliest-arrival routes (``sinsim.sim.cgr.Router``) of one round of 100 clients drawn
from the seed, for a LeNet-5 payload (1,724,328 B), as a round asks for them
(``sinsim.sim.routing.relay``, without the transfers): the broadcast of the global model to
every client at the round's start as a tree (a copy from whichever node holds the model or is
due to), then each client's update from when it has trained (30-300 s later); every plan books
its hops, and later plans go around what is booked. The baseline, in the same process, is the
direct route (each satellite's next own pass, ``hop_arrival_s`` over its ground link): what
``links.routing: direct`` costs to decide. Headline: seconds for the round's 200 routes (the
median of rounds starting at 3 h, 9 h and 15 h). Target: <= 2 s. It also prints the time of
the same 200 routes searched one by one from a single source with nothing booked (the measure
before the bookings, when a round's broadcast shared one resumable search).

Run: ``.venv/bin/python bench/routing.py`` (the plans are cached under $SINSIM_CACHE_DIR or a
temporary directory; the first run computes them).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from sinsim.scenario import validate_scenario
from sinsim.sim.cgr import Bookings, Router, hop_arrival_s
from sinsim.sim.routing import router_of
from sinsim.sim.topology import build_topology
from sinsim.sim.wiring import build_network

STATIONS = [  # (id, lat, lon): a spread of real gateway-like sites
    ("svalbard", 78.2, 15.4), ("fairbanks", 64.8, -147.7), ("hawaii", 19.8, -155.5),
    ("santiago", -33.4, -70.7), ("hartebeesthoek", -25.9, 27.7), ("perth", -31.8, 115.9),
    ("shanghai", 31.0, 121.5), ("madrid", 40.4, -3.9), ("wallops", 37.9, -75.5),
    ("singapore", 1.35, 103.8),
]
PAYLOAD_B = 1_724_328
CLIENTS = 100


def scenario(cache_dir: str):
    return validate_scenario({
        "name": "bench_routing", "seed": 0, "start": "2026-01-01T00:00:00Z", "horizon": "1d",
        "clients": {"walker": {"inclination_deg": 53, "total": 1584, "planes": 22,
                               "phasing": 17, "altitude_km": 550}},
        "server": {"ground_stations": [
            {"id": i, "lat_deg": la, "lon_deg": lo, "min_elevation_deg": 25}
            for i, la, lo in STATIONS]},
        "contacts": {"step": "60s", "cache_dir": cache_dir},
        "links": {"model": "fixed", "uplink": {"rate_bps": 100e6},
                  "downlink": {"rate_bps": 100e6}, "routing": "relay",
                  "isl": {"topology": "plus_grid", "rate_bps": 1e9, "max_range_km": 5000}},
        "training": {"dataset": "synthetic", "clients_per_round": 100},
    })


def main() -> None:
    cache = os.environ.get("SINSIM_CACHE_DIR") or tempfile.mkdtemp(prefix="bench_routing_")
    sc = scenario(cache)
    t = time.perf_counter()
    topo = build_topology(sc)
    plans_s = time.perf_counter() - t
    t = time.perf_counter()
    net = build_network(sc, topo)
    router = router_of(net)
    network_s = time.perf_counter() - t
    n_isl = len(topo.isl[["a", "b"]].drop_duplicates())
    print(f"satellites: {len(net.client_ids)}, stations: {len(topo.servers)}, "
          f"ground windows: {len(topo.plan.windows)}, ISL links: {n_isl} "
          f"({len(topo.isl)} windows), directed links: {len(net.links)}")
    print(f"contact plan + ISL plan: {plans_s:.1f} s; network + router: {network_s:.1f} s")

    rng = np.random.default_rng(0)

    def round_at(t0: float):
        """One round's routes: the broadcast to 100 clients at t0, then each client's update
        from when it has trained (its downlink's arrival plus 30-300 s of compute)."""
        clients = rng.choice(len(net.client_ids), CLIENTS, replace=False)
        compute_s = rng.uniform(30, 300, CLIENTS)
        t = time.perf_counter()
        planned, hops, copies = plan_round(net, router, clients, compute_s, t0)
        planned_s = time.perf_counter() - t
        t = time.perf_counter()
        for c, dt in zip(clients, compute_s, strict=True):  # the measure before the bookings
            down, _ = router.route(net.server_id, net.client_ids[c], t0, PAYLOAD_B)
            router.route(net.client_ids[c], net.server_id, down + dt, PAYLOAD_B)
        unbooked_s = time.perf_counter() - t
        direct = []
        t = time.perf_counter()
        for c, dt in zip(clients, compute_s, strict=True):
            down = hop_arrival_s(net.route_down(c)[0].channel, t0, PAYLOAD_B)
            up = hop_arrival_s(net.route_up(c)[0].channel, down + dt, PAYLOAD_B)
            direct += [down - t0, up - down - dt]
        direct_s = time.perf_counter() - t
        return planned_s, unbooked_s, direct_s, planned, np.array(direct), hops, copies

    results = [round_at(t0) for t0 in (3 * 3600.0, 9 * 3600.0, 15 * 3600.0)]
    planned_s, unbooked_s, direct_s = ([r[k] for r in results] for k in range(3))
    relay = np.concatenate([r[3] for r in results])
    direct = np.concatenate([r[4] for r in results])
    hops = np.concatenate([r[5] for r in results])
    copies = sum(r[6] for r in results)
    routed = relay[np.isfinite(relay)]
    print(f"relay: transfer time median {np.median(routed):.2f} s, max {routed.max():.2f} s "
          f"({len(relay) - len(routed)} of {len(relay)} without a route); hops median "
          f"{np.median(hops):.0f}, max {hops.max()}; {copies} of {len(results) * CLIENTS} "
          f"downlinks copied from a broadcast hop already planned (no search)")
    print(f"direct: transfer time median {np.median(direct):.0f} s, max {direct.max():.0f} s "
          f"(waiting for the satellite's own pass)")
    print(f"routes of a round (s): relay {[round(x, 3) for x in planned_s]}, "
          f"direct {[round(x, 4) for x in direct_s]}")
    print(f"unbooked single-source routes of a round (s), the measure before bookings: "
          f"{[round(x, 3) for x in unbooked_s]}")
    print(f"relay_vs_direct_cost: {statistics.median(planned_s) / statistics.median(direct_s):.0f}")
    print(f"routing_round_s: {statistics.median(planned_s):.3f}")


def plan_round(net, router: Router, clients, compute_s, t0: float):
    """The round's routes planned as :func:`sinsim.sim.routing.relay` plans them in a run,
    without the transfers: the broadcast as a tree (each client's model from whichever node
    holds it or is due to; a client that a planned hop already reaches needs no search), then
    each update from when its client has trained, in that order; every plan books its hops
    (:class:`~sinsim.sim.cgr.Bookings`), and bookings that ended are dropped every 600 s, as in
    a run. Returns the transfer times (down, then up, per client), the hops of each route
    searched, and how many downlinks were copies without a search."""
    bookings = Bookings(router.capacity, router.terminals)
    holds = {net.server_id: t0}  # the broadcast tree: node -> when it holds the model
    down_s, times, hops, copies = {}, [], [], 0
    for c in clients:
        cid = net.client_ids[c]
        if cid in holds:
            down_s[c], copies = holds[cid], copies + 1
            continue
        sources = {node: max(due_s, t0) for node, due_s in holds.items()}
        down_s[c], slots = router.earliest(sources, cid, t0, PAYLOAD_B, bookings=bookings)
        for slot in slots:
            bookings.book(slot)
            holds.setdefault(slot.link.dst, slot.arrival_s)
        hops.append(len(slots))
    ready = sorted((down_s[c] + dt, c) for c, dt in zip(clients, compute_s, strict=True))
    up_s = {}
    for ready_s, c in ready:
        if ready_s > bookings.forgot_s + 600.0:
            bookings.forget_before(ready_s)
        arrival, slots = router.earliest(net.client_ids[c], net.server_id, ready_s, PAYLOAD_B,
                                         bookings=bookings)
        for slot in slots:
            bookings.book(slot)
        up_s[c] = arrival - ready_s
        hops.append(len(slots))
    for c in clients:
        times += [down_s[c] - t0, up_s[c]]
    return np.array(times), np.array(hops), copies

if __name__ == "__main__":
    main()
