"""Transfers over routes: hop by hop, store-and-forward, against the hops' closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sinsim.scenario import validate_scenario
from sinsim.sim.channel import fixed_channel
from sinsim.sim.impairments import BernoulliLoss, NoLoss
from sinsim.sim.network import Link
from sinsim.sim.routing import RouteOutcome, transfer_over_route
from sinsim.sim.transfer import transfer
from sinsim.sim.wiring import build_network
from tests.test_transfer import random_windows, resume_oracle, run_transfer

INF = math.inf


def link(src, dst, channel, key=(0, 0)):
    return Link(src, dst, channel, NoLoss(), key)


def run_route(route, n_bytes, deadline_s, *, start_s=0.0, **kwargs) -> RouteOutcome:
    env = simpy.Environment()

    def proc():
        if start_s > 0:
            yield env.timeout(start_s)
        return (yield from transfer_over_route(env, route, n_bytes, deadline_s, **kwargs))

    p = env.process(proc())
    env.run()
    return p.value


def two_hops():
    # a -> b: 1 kb/s, 0.5 s delay; b -> s: 2 kb/s, 1 s delay
    first = fixed_channel(1_000.0, 0.5, np.array([[0.0, 10.0], [20.0, 100.0]]))
    second = fixed_channel(2_000.0, 1.0, np.array([[40.0, 50.0], [60.0, 200.0]]))
    return (link("a", "b", first), link("b", "s", second, (1, 0)))


def test_two_hops_store_and_forward_by_hand():
    # Execute: 3,000 B = 24,000 bits
    out = run_route(two_hops(), 3_000, INF)

    # Assert: hop 1 sends in [0, 10) and [20, 34), arrives at 34.5; hop 2 waits for its window
    # at 40, sends 20,000 bits in [40, 50) and 4,000 in [60, 62), arrives at 63
    assert out.status == "delivered"
    assert [h.segments for h in out.hops] == [[(0.0, 10.0), (20.0, 34.0)],
                                             [(40.0, 50.0), (60.0, 62.0)]]
    assert out.hops[1].start_s == out.hops[0].end_s == 34.5
    assert (out.start_s, out.end_s) == (0.0, 63.0)
    assert out.pauses == 2
    assert out.bits_sent == 48_000
    assert out.transmit_s == 36.0
    assert out.mean_rate_bps == 48_000 / 36.0
    assert out.wait_s == 63.0 - 36.0
    assert [ln.dst for ln in out.links] == ["b", "s"]


def test_two_hop_route_time_is_the_sum_of_the_hops_closed_forms():
    # Prepare: random windows, rates and delays on each hop
    rng = np.random.default_rng(21)
    checked = 0
    for _ in range(150):
        hops = []
        for _ in range(2):
            windows = random_windows(rng, int(rng.integers(1, 8)))
            hops.append((windows, float(rng.uniform(200, 5_000)), int(rng.integers(0, 9)) / 8))
        start = float(rng.integers(0, 8 * 300)) / 8
        n_bytes = int(rng.integers(1, 20_000))
        route = tuple(link(f"n{i}", f"n{i + 1}", fixed_channel(rate, delay, w))
                      for i, (w, rate, delay) in enumerate(hops))

        # Execute
        out = run_route(route, n_bytes, 5_000.0, start_s=start)

        # Assert: hop 2 starts when hop 1 arrives; the route ends when hop 2 arrives
        t = start
        for w, rate, delay in hops:
            _, last_bit, _ = resume_oracle(w, rate, t, 8.0 * n_bytes)
            if last_bit is None:
                break
            t = last_bit + delay
        if last_bit is None:
            assert out.status == "timeout"
            assert out.end_s == 5_000.0
            continue
        checked += 1
        assert out.status == "delivered"
        assert len(out.hops) == 2
        assert out.end_s == pytest.approx(t, abs=1e-6)
        assert out.hops[1].start_s == out.hops[0].end_s
        assert out.pauses == sum(h.pauses for h in out.hops)
        assert out.bits_sent == pytest.approx(2 * 8 * n_bytes, rel=1e-12)
    assert checked > 50


def test_a_dropped_hop_stops_the_route():
    # Execute: the first hop is lost
    out = run_route(two_hops(), 3_000, INF, lost=lambda ln, segs: ln.dst == "b")

    # Assert: dropped when it would have arrived at b; the second hop is never tried
    assert out.status == "dropped"
    assert len(out.hops) == 1
    assert out.end_s == 34.5
    assert out.bits_sent == 24_000


def test_a_hop_that_times_out_stops_the_route():
    # Execute: the deadline falls while hop 1 waits for its second window
    early = run_route(two_hops(), 3_000, 15.0)
    # ... and while hop 2 is paused between its windows
    late = run_route(two_hops(), 3_000, 55.0)

    # Assert
    assert (early.status, early.end_s, len(early.hops)) == ("timeout", 15.0, 1)
    assert (late.status, late.end_s, len(late.hops)) == ("timeout", 55.0, 2)
    assert late.hops[0].status == "delivered"
    assert late.bits_sent == 24_000 + 20_000


def test_a_lost_second_hop_is_dropped_at_the_end():
    out = run_route(two_hops(), 3_000, INF, lost=lambda ln, segs: ln.dst == "s")
    assert out.status == "dropped"
    assert out.end_s == 63.0
    assert [h.status for h in out.hops] == ["delivered", "dropped"]


def test_an_empty_route_times_out_at_the_deadline():
    out = run_route((), 100, 30.0, start_s=5.0)
    assert (out.status, out.start_s, out.end_s, out.hops) == ("timeout", 5.0, 30.0, [])
    assert math.isnan(out.mean_rate_bps)


def test_star_routes_have_one_hop_whose_outcome_is_transfers(tiny_raw):
    # Prepare: a lossy star with slow links that pause (failures make windows)
    tiny_raw.update(seed=3, horizon=86400.0, links={
        "uplink": {"rate_bps": 2e3, "propagation_delay_s": 0.02},
        "downlink": {"rate_bps": 5e3}, "loss": {"kind": "bernoulli", "p": 0.4},
        "failures": {"rate_per_day": 200.0, "duration": 120.0}})
    net = build_network(validate_scenario(tiny_raw))
    rng = np.random.default_rng(8)
    statuses = set()

    for c in range(len(net.client_ids)):
        for route in (net.route_up(c), net.route_down(c)):
            assert len(route) == 1
            (hop,) = route
            for r in range(1, 6):
                n_bytes, start = int(rng.integers(1, 200_000)), float(rng.uniform(0, 80_000))
                deadline = start + float(rng.uniform(10, 2_000))

                # Execute
                out = run_route(route, n_bytes, deadline, start_s=start,
                                lost=lambda ln, segs, r=r: net.lost(ln, r, segs))
                alone = run_transfer(hop.channel, n_bytes, deadline, start_s=start,
                                     lost=lambda segs, r=r, hop=hop: net.lost(hop, r, segs))

                # Assert: the very same numbers
                (h,) = out.hops
                assert h == alone
                for name in ("n_bytes", "start_s", "end_s", "status", "pauses", "bits_sent",
                             "transmit_s", "wait_s"):
                    assert getattr(out, name) == getattr(alone, name), name
                assert out.mean_rate_bps == alone.mean_rate_bps or (
                    math.isnan(out.mean_rate_bps) and math.isnan(alone.mean_rate_bps))
                statuses.add(out.status)
    assert statuses == {"delivered", "dropped", "timeout"}


def test_hop_transfer_replaces_the_transfer_of_every_hop():
    calls = []

    def spy(env, channel, n_bytes, deadline_s, **kw):
        calls.append(channel)
        return (yield from transfer(env, channel, n_bytes, deadline_s, **kw))

    route = two_hops()
    run_route(route, 10, INF, hop_transfer=spy)
    assert calls == [ln.channel for ln in route]


def test_lost_is_asked_about_each_link_with_its_segments():
    asked = []

    def lost(ln, segs):
        asked.append((ln.key, list(segs)))
        return False

    run_route((link("a", "b", fixed_channel(8e3), (4, 1)),
               Link("b", "s", fixed_channel(8e3), BernoulliLoss(0.0), (5, 0))), 1_000, INF,
              lost=lost)
    assert asked == [((4, 1), [(0.0, 1.0)]), ((5, 0), [(1.0, 2.0)])]
