"""A relayed broadcast goes as a tree: the model climbs the ground uplink once and satellites
copy it on along the crosslinks; a station carries as many links at once as it has antennas."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.sim.channel import fixed_channel
from sinsim.sim.impairments import BernoulliLoss, NoLoss
from sinsim.sim.network import Link, Network
from tests.sends import run_sends


def line(*, uplink_loss: float = 0.0, antennas: int = 1) -> Network:
    """gs -> a at 8 kb/s (a ground uplink); a - b - c crosslinks at 80 kb/s; every satellite
    also in view of gs, b and c only from 1,000 s on."""
    slow, fast = 8_000.0, 80_000.0
    late = np.array([[1_000.0, 2_000.0]])
    links = [
        Link("gs", "a", fixed_channel(slow), BernoulliLoss(uplink_loss), (0, 1)),
        Link("gs", "b", fixed_channel(slow, 0.0, late), NoLoss(), (1, 1)),
        Link("gs", "c", fixed_channel(slow, 0.0, late), NoLoss(), (2, 1)),
        Link("a", "gs", fixed_channel(slow), NoLoss(), (0, 0)),
        Link("b", "gs", fixed_channel(slow), NoLoss(), (1, 0)),
    ]
    for k, (x, y) in enumerate((("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"))):
        links.append(Link(x, y, fixed_channel(fast), NoLoss(), (k, k, 2)))
    return Network(("a", "b", "c"), tuple(links), seed=0, server_id="gs", routing="relay",
                   antennas=(("gs", antennas),))


def test_the_model_climbs_once_and_is_copied_along_the_crosslinks():
    outs = run_sends(line(), [(c, "down", 1_000, 0.0) for c in range(3)])
    uplink_hops = [h for o in outs for h, link in zip(o.hops, o.links, strict=True)
                   if link.src == "gs"]
    assert len(uplink_hops) == 1  # one copy up the 8 kb/s uplink: [0, 1)
    a, b, c = outs
    assert [(link.src, link.dst) for link in a.links] == [("gs", "a")] and a.end_s == 1.0
    # b and c take their copies from a (b then c), not from the station
    assert [(link.src, link.dst) for link in b.links] == [("a", "b")] and b.end_s == pytest.approx(1.1)
    assert [(link.src, link.dst) for link in c.links] == [("b", "c")]
    assert c.end_s == pytest.approx(1.2) and c.hops[0].start_s == b.end_s  # when b had it
    # each hop is counted once: three hops of 1,000 bytes for three clients
    assert sum(len(o.hops) for o in outs) == 3 and all(o.status == "delivered" for o in outs)


def test_a_client_on_another_copys_path_receives_it_there():
    # c first: gs > a > b > c; b's copy is the one that passed through b (no hop of its own)
    c, b = run_sends(line(), [(2, "down", 1_000, 0.0), (1, "down", 1_000, 0.0)])
    assert [link.dst for link in c.links] == ["a", "b", "c"]
    assert b.status == "delivered" and b.hops == [] and b.end_s == pytest.approx(1.1)
    hop, link = b.copied
    assert (link.src, link.dst) == ("a", "b") and hop.end_s == b.end_s


def test_a_lost_copy_is_routed_around_and_its_followers_wait_for_it():
    # the uplink to a is always lost: a's first copy is dropped and nothing reaches the
    # satellites before the passes of b and c at 1,000 s
    outs = run_sends(line(uplink_loss=1.0), [(c, "down", 1_000, 0.0) for c in range(3)])
    a, b, c = outs
    assert [h.status for h in a.hops][0] == "dropped"
    assert all(o.status == "delivered" and o.end_s > 1_000.0 for o in outs)
    ups = [(link.dst, h.status) for o in outs for h, link in zip(o.hops, o.links, strict=True)
           if link.src == "gs"]
    # each transfer tries the uplink to a once (its own loss draw), then one copy goes up at
    # 1,000 s (to b or c) and is copied on
    assert sorted(u for u in ups if u[1] == "dropped") == [("a", "dropped")] * 3
    assert [u[0] for u in ups if u[1] == "delivered"] in (["b"], ["c"]) and len(ups) == 4


def test_a_station_with_one_antenna_carries_one_satellite_at_a_time():
    # a and b upload 1,000 bytes at once over their own ground links (1 s each)
    one = run_sends(line(antennas=1), [(0, "up", 1_000, 0.0), (1, "up", 1_000, 0.0)])
    assert sorted(o.end_s for o in one) == [1.0, 2.0]  # b's waits for the antenna
    two = run_sends(line(antennas=2), [(0, "up", 1_000, 0.0), (1, "up", 1_000, 0.0)])
    assert [o.end_s for o in two] == [1.0, 1.0]  # side by side
