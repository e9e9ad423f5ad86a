"""The network as a graph: links, fewest-hop routes, who is in view; built from a scenario."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinsim.scenario import validate_scenario
from sinsim.sim.channel import fixed_channel
from sinsim.sim.impairments import BernoulliLoss, NoLoss
from sinsim.sim.network import DOWN, UP, Link, Network
from sinsim.sim.wiring import abstract_network, build_network, orbital_topology


def link(src, dst, windows=None, key=(0, 0)):
    ch = fixed_channel(1e6) if windows is None else fixed_channel(1e6, 0.0, np.array(windows))
    return Link(src, dst, ch, NoLoss(), key)


def test_routes_are_fewest_hop_paths_through_relays():
    # Prepare: a and b talk to the server; c only through b; d through c and b; e is alone
    links = (link("a", "S"), link("S", "a"), link("b", "S"), link("S", "b"),
             link("c", "b"), link("b", "c"), link("d", "c"), link("c", "d"),
             link("d", "a", key=(9, 9)))
    net = Network(("a", "b", "c", "d", "e"), links, seed=0, server_id="S")

    def path(route):
        return [route[0].src] + [ln.dst for ln in route] if route else []

    # Execute / Assert
    assert path(net.route_up(0)) == ["a", "S"]
    assert path(net.route_up(2)) == ["c", "b", "S"]
    assert path(net.route_up(3)) == ["d", "a", "S"]  # 2 hops via a beats 3 via c, b
    assert path(net.route_down(3)) == ["S", "b", "c", "d"]  # no a -> d link
    assert net.route_up(4) == net.route_down(4) == ()
    for c in range(4):
        for route in (net.route_up(c), net.route_down(c)):
            assert all(x.dst == y.src for x, y in zip(route, route[1:]))
    assert net.nodes == ("a", "b", "c", "d", "e", "S")


def test_in_view_and_next_contact_use_direct_links_from_the_server():
    # Prepare: c reaches the server only through b, whose link to c is always up
    links = (link("S", "a", [[100.0, 200.0]]), link("S", "b", [[50.0, 60.0], [300.0, 400.0]]),
             link("b", "c"), link("a", "S"), link("b", "S"), link("c", "b"))
    net = Network(("a", "b", "c"), links, seed=0, server_id="S")

    # Execute / Assert
    assert net.in_view(0.0, 10.0) == []
    assert net.in_view(0.0, 50.0) == [1]
    assert net.in_view(55.0, 150.0) == [0, 1]
    assert net.in_view(150.0, 250.0) == [0]
    assert net.next_contact_s(0.0) == 50.0
    assert net.next_contact_s(61.0) == 100.0
    assert net.next_contact_s(250.0) == 300.0
    assert net.next_contact_s(400.0) == math.inf


def test_lost_draws_with_the_links_key():
    ln = Link("a", "S", fixed_channel(1e6), BernoulliLoss(0.5), (3, UP))
    net = Network(("a",), (ln,), seed=4, server_id="S")
    draws = [net.lost(ln, r, ()) for r in range(40)]
    assert draws == [BernoulliLoss(0.5).lost(4, (3, UP), r, ()) for r in range(40)]


def test_bad_graphs_are_refused():
    with pytest.raises(ValueError, match="unknown node"):
        Network(("a",), (link("a", "x"),), seed=0, server_id="S")
    with pytest.raises(ValueError, match="also a client"):
        Network(("S",), (), seed=0, server_id="S")


def test_build_network_uses_the_scenario_links(tiny_raw):
    # Prepare
    tiny_raw["links"] = {"uplink": {"rate_bps": 2e6, "propagation_delay_s": 0.01},
                         "loss": {"kind": "none"}}
    scenario = validate_scenario(tiny_raw)

    # Execute
    net = build_network(scenario)

    # Assert: a star, links keyed (client, direction)
    assert orbital_topology(scenario) is None
    assert net.client_ids == ("client0000", "client0001", "client0002", "client0003")
    assert len(net.links) == 8
    for c, cid in enumerate(net.client_ids):
        (up,), (down,) = net.route_up(c), net.route_down(c)
        assert (up.src, up.dst, up.key) == (cid, net.server_id, (c, UP))
        assert (down.src, down.dst, down.key) == (net.server_id, cid, (c, DOWN))
        assert up.impairment == down.impairment == NoLoss()
    (up,) = net.route_up(0)
    assert up.channel.rate.rate_at(0.0) == 2e6
    assert up.channel.delay_s(0.0) == 0.01
    assert net.route_down(3)[0].channel.rate.rate_at(0.0) == 50e6
    assert net.in_view(0.0, 0.0) == [0, 1, 2, 3]
    assert net.next_contact_s(5.0) == 5.0


def test_the_server_node_never_takes_a_clients_id(tiny_raw, monkeypatch):
    scenario = validate_scenario(tiny_raw)
    monkeypatch.setattr("sinsim.sim.wiring.SERVER", "client0002")
    net = abstract_network(scenario)
    assert net.server_id not in net.client_ids
    assert len(net.route_up(2)) == 1
