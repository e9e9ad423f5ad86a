"""bench/routing.py times the routes of a round as a run plans them: its plan (the broadcast as
a tree, every plan booked) gives the arrival times that ``sinsim.sim.routing.send`` gives in
SimPy, on a small relayed constellation without losses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import simpy

from sinsim.scenario import load_scenario
from sinsim.sim.routing import router_of, send
from sinsim.sim.topology import build_topology
from sinsim.sim.wiring import build_network
from tests.benches import load_bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_bench("routing")


def test_the_bench_plans_a_round_as_a_run_sends_it(bench, tmp_path):
    # Prepare: leo_isl shrunk (24 satellites, 6 h), lossless, one antenna at the station
    sc = load_scenario(ROOT / "scenarios" / "leo_isl.yaml", [
        "clients.walker.total=24", "clients.walker.planes=4", "horizon=6h", "contacts.step=60s",
        "links.loss.p=0", f"contacts.cache_dir={tmp_path}"])
    net = build_network(sc, build_topology(sc))
    rng = np.random.default_rng(3)
    clients = rng.choice(len(net.client_ids), 12, replace=False)
    compute_s = rng.uniform(30, 300, len(clients))
    t0 = 3600.0

    # Execute: the bench's plan, and the same round sent in SimPy
    planned, hops, copies = bench.plan_round(net, router_of(net), clients, compute_s, t0)
    env = simpy.Environment(initial_time=t0)
    sent: dict[int, tuple] = {}

    def client(c: int, dt: float):
        down = yield from send(env, net, c, "down", bench.PAYLOAD_B, math.inf, round_=0)
        yield env.timeout(dt)
        up = yield from send(env, net, c, "up", bench.PAYLOAD_B, math.inf, round_=0)
        sent[c] = (down.end_s - t0, up.end_s - down.end_s - dt, down.status, up.status)

    for c, dt in zip(clients, compute_s, strict=True):
        env.process(client(int(c), float(dt)))
    env.run()

    # Assert: every transfer delivered, at the planned time; the tree saved some searches
    assert {s for c in clients for s in sent[c][2:]} == {"delivered"}
    simulated = np.array([t for c in clients for t in sent[c][:2]])
    np.testing.assert_allclose(planned, simulated, rtol=0, atol=1e-6)
    assert copies > 0 and len(hops) == 2 * len(clients) - copies
    assert hops.max() > 1  # relayed: some routes cross the ISL grid
