"""A station's antenna that turns from one satellite to another first slews ``links.slew``
seconds: direct transfers (held antennas) and relayed routes (booked ones) alike."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.errors import ConfigError
from sinsim.scenario import load_scenario
from sinsim.sim.channel import fixed_channel
from sinsim.sim.impairments import NoLoss
from sinsim.sim.network import Link, Network
from tests.sends import run_sends as run


def star(windows: dict[str, list[list[float]]], slew_s: float, antennas: int = 1,
         routing: str = "direct") -> Network:
    """Satellites seen by station ``gs`` in their windows, 8 kb/s each way."""
    links = []
    for k, (sat, w) in enumerate(windows.items()):
        channel = fixed_channel(8_000.0, 0.0, np.array(w, dtype=float))
        links += [Link(sat, "gs", channel, NoLoss(), (k, 0)),
                  Link("gs", sat, channel, NoLoss(), (k, 1))]
    return Network(tuple(windows), tuple(links), seed=0, server_id="gs", routing=routing,
                   antennas=(("gs", antennas),), slew_s=slew_s)


@pytest.mark.parametrize("routing", ["direct", "relay"])
def test_the_second_satellite_waits_for_the_slew(routing):
    both = {"a": [[0, 100]], "b": [[0, 100]]}
    jobs = [(0, "up", 10_000, 0.0), (1, "up", 10_000, 0.0)]  # 10 s each
    a, b = run(star(both, 0.0, routing=routing), jobs)
    assert (a.hops[0].segments, b.hops[0].segments) == ([(0.0, 10.0)], [(10.0, 20.0)])
    a, b = run(star(both, 25.0, routing=routing), jobs)
    assert a.hops[0].segments == [(0.0, 10.0)] and a.end_s == 10.0
    assert b.hops[0].segments == [(35.0, 45.0)] and b.end_s == 45.0  # 10 + 25 slew
    assert b.wait_s == 35.0  # the slew shows as waiting
    # two antennas: each satellite has its own, nobody slews
    a, b = run(star(both, 25.0, antennas=2, routing=routing), jobs)
    assert [a.end_s, b.end_s] == [10.0, 10.0]


@pytest.mark.parametrize("routing", ["direct", "relay"])
def test_the_same_satellite_again_needs_no_slew(routing):
    net = star({"a": [[0, 100]], "b": [[0, 100]]}, 25.0, routing=routing)
    down, up, other = run(net, [(0, "down", 10_000, 0.0), (0, "up", 10_000, 0.0),
                                (1, "up", 10_000, 0.0)])
    # a both ways, one pointing: one after the other on a held antenna, at once on a booked
    # one (the two directions to one satellite share it); then b, 25 s after a's last bit
    a_done = 20.0 if routing == "direct" else 10.0
    assert down.end_s == 10.0 and up.end_s == a_done
    assert other.hops[0].segments == [(a_done + 25.0, a_done + 35.0)]


def test_a_slew_that_outlasts_the_window_moves_to_the_next_one():
    # b's first pass closes at 30, before the antenna can point at it (10 + 25 = 35)
    net = star({"a": [[0, 100]], "b": [[0, 30], [50, 60]]}, 25.0)
    a, b = run(net, [(0, "up", 10_000, 0.0), (1, "up", 8_000, 0.0)])
    assert a.end_s == 10.0
    assert b.hops[0].segments == [(50.0, 58.0)] and b.pauses == 0
    # with no slew it would have gone in the first pass, right after a
    a, b = run(star({"a": [[0, 100]], "b": [[0, 30], [50, 60]]}, 0.0),
               [(0, "up", 10_000, 0.0), (1, "up", 8_000, 0.0)])
    assert b.hops[0].segments == [(10.0, 18.0)]


def test_slew_key_reaches_the_network_and_is_checked(tmp_path):
    from sinsim.sim.wiring import build_network

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nhorizon: 2h\nclients:\n  walker: {inclination_deg: 53, total: 4,"
                    " planes: 2, phasing: 1, altitude_km: 550}\nserver:\n  ground_stations:\n"
                    "    - {id: gs, lat_deg: 31.0, lon_deg: 121.5}\n"
                    "training: {dataset: synthetic, rounds: 1, clients_per_round: 2}\n")
    sc = load_scenario(path)
    assert sc.links.slew == 0.0
    sc = load_scenario(path, ("links.slew=1min",))
    assert sc.links.slew == 60.0
    assert build_network(sc).slew_s == 60.0
    with pytest.raises(ConfigError) as info:
        load_scenario(path, ("links.slew=-5",))
    assert info.value.key == "links.slew"
