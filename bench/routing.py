"""Contact-graph routing at constellation scale: the routes of one round's 100 clients.

A 1,584-satellite Walker shell (53 degrees, 22 planes of 72, 550 km; Starlink's first shell)
with +Grid inter-satellite links and 10 ground stations over 24 h. It builds the contact plan
(satellite-station windows), the ISL plan (+Grid pairs and their windows) and the network, then
times the earliest-arrival routes (``sinsim.sim.cgr.Router``) of one round of 100 clients drawn
from the seed, for a LeNet-5 payload (1,724,328 B), as a round asks for them: the broadcast of
the global model to every client at the round's start, then each client's update from when it
has trained (30-300 s later). The baseline, in the same process, is the direct route (each
satellite's next own pass, ``hop_arrival_s`` over its ground link): what
``links.routing: direct`` costs to decide. Headline: seconds for the round's 200 routes (the
median of rounds starting at 3 h, 9 h and 15 h). Target: <= 2 s.

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
from sinsim.sim.cgr import hop_arrival_s
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
        relay, direct, hops = [], [], []
        t = time.perf_counter()
        for c, dt in zip(clients, compute_s, strict=True):
            cid = net.client_ids[c]
            down, route = router.route(net.server_id, cid, t0, PAYLOAD_B)
            hops.append(len(route))
            up, route = router.route(cid, net.server_id, down + dt, PAYLOAD_B)
            hops.append(len(route))
            relay += [down - t0, up - down - dt]
        relay_s = time.perf_counter() - t
        t = time.perf_counter()
        for c, dt in zip(clients, compute_s, strict=True):
            down = hop_arrival_s(net.route_down(c)[0].channel, t0, PAYLOAD_B)
            up = hop_arrival_s(net.route_up(c)[0].channel, down + dt, PAYLOAD_B)
            direct += [down - t0, up - down - dt]
        direct_s = time.perf_counter() - t
        return relay_s, direct_s, np.array(relay), np.array(direct), np.array(hops)

    results = [round_at(t0) for t0 in (3 * 3600.0, 9 * 3600.0, 15 * 3600.0)]
    relay_s = [r[0] for r in results]
    direct_s = [r[1] for r in results]
    relay = np.concatenate([r[2] for r in results])
    direct = np.concatenate([r[3] for r in results])
    hops = np.concatenate([r[4] for r in results])
    print(f"relay: transfer time median {np.median(relay):.2f} s, max {relay.max():.2f} s; "
          f"hops median {np.median(hops):.0f}, max {hops.max()}")
    print(f"direct: transfer time median {np.median(direct):.0f} s, max {direct.max():.0f} s "
          f"(waiting for the satellite's own pass)")
    print(f"routes of a round (s): relay {[round(x, 3) for x in relay_s]}, "
          f"direct {[round(x, 4) for x in direct_s]}")
    print(f"relay_vs_direct_cost: {statistics.median(relay_s) / statistics.median(direct_s):.0f}")
    print(f"routing_round_s: {statistics.median(relay_s):.3f}")


if __name__ == "__main__":
    main()
