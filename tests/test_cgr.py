"""Contact-graph routing: one hop's closed form against the transfer process, the router
against brute force over every path, and relaying (queues, losses routed around) in SimPy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sinsim.sim.cgr import Bookings, Router, Slot, hop_arrival_s, hop_slot
from sinsim.sim.channel import Channel, ConstantRate, fixed_channel
from sinsim.sim.impairments import BernoulliLoss, NoLoss
from sinsim.sim.network import Link, Network
from tests.sends import run_sends
from tests.test_transfer import random_windows, run_transfer

INF = math.inf


@pytest.mark.parametrize("policy", ["resume", "restart"])
def test_hop_arrival_is_the_transfer_outcome_on_random_channels(policy):
    rng = np.random.default_rng(7)
    for _ in range(200):
        windows = random_windows(rng, int(rng.integers(1, 6)), 200.0)
        channel = fixed_channel(float(rng.choice([100.0, 800.0, 8_000.0])),
                                float(rng.choice([0.0, 0.25])), windows)
        n_bytes = int(rng.integers(0, 2_000))
        t0 = float(rng.integers(0, 1_600)) / 8.0
        deadline = float(rng.choice([INF, 150.0, 220.0]))
        out = run_transfer(channel, n_bytes, deadline, start_s=t0, policy=policy)
        got = hop_arrival_s(channel, t0, n_bytes, deadline, policy)
        if out.status == "delivered":
            assert got == pytest.approx(out.end_s, abs=1e-9)
        else:
            assert got == INF


def random_network(rng: np.random.Generator, n: int, p_link: float) -> Network:
    """Clients c0..c(n-2) and a server; each directed pair linked with probability p_link,
    random windows, rates and delays."""
    clients = tuple(f"c{i}" for i in range(n - 1))
    nodes = (*clients, "server")
    links = []
    for k, (a, b) in enumerate(itertools.permutations(nodes, 2)):
        if rng.random() < p_link:
            channel = fixed_channel(float(rng.choice([800.0, 8_000.0, 80_000.0])),
                                    float(rng.choice([0.0, 0.5, 2.0])),
                                    random_windows(rng, int(rng.integers(1, 4)), 300.0))
            links.append(Link(a, b, channel, NoLoss(), (k, 0, 3)))
    return Network(clients, tuple(links), seed=0, routing="relay")


def brute_force(net: Network, sources: dict[str, float], dst: str, n_bytes: int,
                deadline: float, bookings: Bookings | None = None) -> float:
    """The earliest arrival over every simple path from any source, hop after hop."""
    out = {link.src: [] for link in net.links}
    for link in net.links:
        out[link.src].append(link)
    best = INF

    def walk(node, t, seen):
        nonlocal best
        if node == dst:
            best = min(best, t)
            return
        for link in out.get(node, ()):
            if link.dst not in seen:
                slot = hop_slot(link, t, n_bytes, deadline, bookings)
                if slot is not None:
                    walk(link.dst, slot.arrival_s, seen | {link.dst})

    for src, t0 in sources.items():
        walk(src, t0, {src})
    return best


def random_bookings(rng: np.random.Generator, net: Network) -> Bookings:
    """A few transmissions already booked on random links; the server carries 1 or 2 links at
    once."""
    bookings = Bookings({"server": int(rng.integers(1, 3))})
    for link in net.links:
        for _ in range(int(rng.integers(0, 3))):
            start = float(rng.integers(0, 2_400)) / 8.0
            bookings.book(Slot(link, start, start + float(rng.integers(1, 400)) / 8.0, INF))
    return bookings


@pytest.mark.parametrize("booked", [False, True])
def test_router_equals_brute_force_on_random_contact_plans(booked):
    """With and without volumes already booked on the links and the server's antennas, from
    one source or several (a broadcast's holders)."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(60):
        net = random_network(rng, int(rng.integers(3, 7)), 0.45)
        router = Router(net)
        bookings = random_bookings(rng, net) if booked else None
        n_bytes = int(rng.integers(1, 3_000))
        deadline = float(rng.choice([INF, 250.0]))
        starts = {node: float(rng.integers(0, 800)) / 8.0 for node in net.nodes}
        for src, dst in itertools.permutations(net.nodes, 2):
            sources = {src: starts[src]}
            if rng.random() < 0.3:  # a second holder
                other = str(rng.choice([n for n in net.nodes if n not in (src, dst)] or [src]))
                sources[other] = starts[other]
            arrival, slots = router.earliest(sources, dst, 0.0, n_bytes, deadline,
                                             bookings=bookings)
            assert arrival == brute_force(net, sources, dst, n_bytes, deadline, bookings)
            if slots:
                checked += 1
                # the slots are a path from a source to dst, each hop inside one window,
                # clear of the bookings, starting when the payload is there
                assert slots[0].link.src in sources and slots[-1].link.dst == dst
                t = sources[slots[0].link.src]
                for a, b in itertools.pairwise(slots):
                    assert a.link.dst == b.link.src
                for slot in slots:
                    assert slot.start_s >= t
                    window = slot.link.channel.next_window(slot.start_s)
                    assert window[0] == slot.start_s and slot.done_s <= window[1]
                    if bookings is not None:
                        assert bookings.busy_until(slot.link, slot.start_s, slot.done_s) is None
                    t = slot.arrival_s
                assert t == arrival
            else:
                assert arrival == INF
    assert checked > 100  # the random plans do have routes


def test_bookings_count_antennas_by_peer():
    """A station with one antenna carries one satellite at a time, both directions to it at
    once; a second antenna takes a second satellite."""
    up_a, down_a, up_b = (Link(s, d, fixed_channel(8_000.0), NoLoss(), (k, 0))
                          for k, (s, d) in enumerate([("a", "gs"), ("gs", "a"), ("b", "gs")]))
    bookings = Bookings({"gs": 1})
    bookings.book(Slot(up_a, 10.0, 20.0, 20.0))
    assert bookings.busy_until(down_a, 12.0, 15.0) is None  # the same satellite: same antenna
    assert bookings.busy_until(up_a, 12.0, 15.0) == 20.0  # the link itself: one at a time
    assert bookings.busy_until(up_b, 15.0, 25.0) == 20.0  # another satellite waits
    assert hop_slot(up_b, 15.0, 1_000, bookings=bookings).start_s == 20.0
    bookings.capacity["gs"] = 2
    assert bookings.busy_until(up_b, 15.0, 25.0) is None
    bookings.forget_before(19.0)  # still in the way after 19 ...
    assert bookings.busy_until(up_a, 19.0, 25.0) == 20.0
    bookings.forget_before(20.0)  # ... not once it ended
    assert bookings.busy_until(up_a, 12.0, 15.0) is None


def test_a_hop_is_not_started_where_it_cannot_finish():
    """8,000 bits at 8 kb/s need 1 s: not in the 0.5 s left of [0, 10.5) at 10; in [20, 30)."""
    link = Link("a", "b", fixed_channel(8_000.0, 0.0, np.array([[0.0, 10.5], [20.0, 30.0]])),
                NoLoss(), (0, 0))
    assert hop_slot(link, 10.0, 1_000) == Slot(link, 20.0, 21.0, 21.0)
    assert hop_slot(link, 9.0, 1_000) == Slot(link, 9.0, 10.0, 10.0)
    assert hop_slot(link, 10.0, 1_000, deadline_s=20.5) is None


def chain() -> Network:
    """a -> b -> server; b's ground link is up in [100, 200), a's only in [500, 600)."""
    isl = fixed_channel(8_000.0, 0.0)
    links = (
        Link("a", "b", isl, NoLoss(), (0, 1, 2)),
        Link("b", "a", isl, NoLoss(), (1, 0, 2)),
        Link("a", "server", fixed_channel(8_000.0, 0.0, np.array([[500.0, 600.0]])), NoLoss(),
             (0, 0)),
        Link("b", "server", fixed_channel(8_000.0, 0.0, np.array([[100.0, 200.0]])), NoLoss(),
             (1, 0)),
    )
    return Network(("a", "b"), links, seed=0, routing="relay")


def test_relay_takes_the_neighbours_earlier_pass():
    (out,) = run_sends(chain(), [(0, "up", 1_000, 0.0)])
    # 8,000 bits at 8 kb/s: a -> b in [0, 1), b holds it until its pass at 100, server at 101
    assert out.status == "delivered" and out.end_s == 101.0
    assert [(link.src, link.dst) for link in out.links] == [("a", "b"), ("b", "server")]
    assert [(h.start_s, h.end_s) for h in out.hops] == [(0.0, 1.0), (1.0, 101.0)]


def test_direct_routing_waits_for_the_own_pass():
    net = chain()
    direct = Network(net.client_ids, net.links, seed=0, routing="direct")
    (out,) = run_sends(direct, [(0, "up", 1_000, 0.0)])
    assert out.status == "delivered" and out.end_s == 501.0 and len(out.hops) == 1


def test_a_link_carries_one_transfer_at_a_time():
    # both a and b send at 0 over b's ground link: a planned first and booked [100, 101) on
    # it (after its crosslink hop), b's own update is planned around that booking
    out_a, out_b = run_sends(chain(), [(0, "up", 1_000, 0.0), (1, "up", 1_000, 0.0)])
    assert out_a.end_s == 101.0
    assert out_b.hops[0].start_s == 0.0 and out_b.end_s == 102.0  # held from 0, sent at 101


def test_a_lost_hop_is_routed_around():
    # a -> server directly (up at once, always lost) or a -> b -> server (slower)
    always = fixed_channel(8_000.0, 0.0)
    links = (
        Link("a", "server", always, BernoulliLoss(1.0), (0, 0)),
        Link("a", "b", always, NoLoss(), (0, 1, 2)),
        Link("b", "server", fixed_channel(8_000.0, 0.0, np.array([[10.0, 50.0]])), NoLoss(),
             (1, 0)),
    )
    net = Network(("a", "b"), links, seed=0, routing="relay")
    (out,) = run_sends(net, [(0, "up", 1_000, 0.0)])
    assert [h.status for h in out.hops] == ["dropped", "delivered", "delivered"]
    assert [(link.src, link.dst) for link in out.links] == [
        ("a", "server"), ("a", "b"), ("b", "server")]
    assert out.status == "delivered" and out.end_s == 11.0


def test_lost_with_no_way_around_is_dropped_and_no_route_times_out():
    lossy = Link("a", "server", fixed_channel(8_000.0, 0.0), BernoulliLoss(1.0), (0, 0))
    net = Network(("a",), (lossy,), seed=0, routing="relay")
    (out,) = run_sends(net, [(0, "up", 1_000, 0.0)], deadline_s=50.0)
    assert out.status == "dropped" and out.end_s == 1.0
    late = Link("a", "server", fixed_channel(8_000.0, 0.0, np.array([[60.0, 90.0]])), NoLoss(),
                (0, 0))
    net = Network(("a",), (late,), seed=0, routing="relay")
    (out,) = run_sends(net, [(0, "up", 1_000, 0.0)], deadline_s=50.0)
    assert out.status == "timeout" and out.end_s == 50.0 and out.hops == []


def test_relay_over_a_star_equals_direct():
    """With one link per client (no relays) and no losses, relaying changes nothing."""
    rng = np.random.default_rng(3)
    links = []
    for c in range(4):
        for src, dst, d in ((f"c{c}", "server", 0), ("server", f"c{c}", 1)):
            channel = Channel(random_windows(rng, 3, 300.0), ConstantRate(8_000.0),
                              lambda t: 0.25)
            links.append(Link(src, dst, channel, NoLoss(), (c, d)))
    jobs = [(c, d, 2_000, float(c)) for c in range(4) for d in ("up", "down")]
    outs = {}
    for routing in ("direct", "relay"):
        net = Network(tuple(f"c{c}" for c in range(4)), tuple(links), seed=0, routing=routing)
        outs[routing] = [(o.status, o.end_s, len(o.hops)) for o in run_sends(net, jobs, 400.0)]
    assert outs["relay"] == outs["direct"]


def test_a_satellite_keeps_up_as_many_crosslinks_as_it_has_terminals():
    """b with one terminal relays to a and c one after the other; a ground link is no
    crosslink and does not use one."""
    isl = fixed_channel(8_000.0, 0.0)
    ba, bc, bgs = (Link("b", d, isl, NoLoss(), (k, 0, 2))
                   for k, d in enumerate(["a", "c", "server"]))
    bookings = Bookings(terminals={"a": 1, "b": 1, "c": 1})
    bookings.book(Slot(ba, 0.0, 1.0, 1.0))
    assert hop_slot(bc, 0.0, 1_000, bookings=bookings).start_s == 1.0
    assert hop_slot(bgs, 0.0, 1_000, bookings=bookings).start_s == 0.0
    bookings.terminals["b"] = 2
    assert hop_slot(bc, 0.0, 1_000, bookings=bookings).start_s == 0.0
