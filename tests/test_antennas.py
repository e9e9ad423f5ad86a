"""A station carries at most ``antennas`` links at once: direct transfers wait in their window
for a free antenna (and try the next window if none frees), the scenario key is checked."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.errors import ConfigError
from sinsim.scenario import load_scenario
from sinsim.sim.channel import fixed_channel
from sinsim.sim.impairments import NoLoss
from sinsim.sim.network import Link, Network
from tests.sends import run_sends as run


def star(windows: dict[str, list[list[float]]], antennas: int) -> Network:
    """Satellites seen by station ``gs`` in their windows, 8 kb/s each way."""
    links = []
    for k, (sat, w) in enumerate(windows.items()):
        channel = fixed_channel(8_000.0, 0.0, np.array(w, dtype=float))
        links += [Link(sat, "gs", channel, NoLoss(), (k, 0)),
                  Link("gs", sat, channel, NoLoss(), (k, 1))]
    return Network(tuple(windows), tuple(links), seed=0, server_id="gs",
                   antennas=(("gs", antennas),))


def test_one_antenna_serves_one_satellite_at_a_time():
    net = star({"a": [[0, 100]], "b": [[0, 100]], "c": [[0, 100]]}, antennas=1)
    outs = run(net, [(c, "down", 10_000, 0.0) for c in range(3)])  # 10 s each
    assert [o.end_s for o in outs] == [10.0, 20.0, 30.0]
    assert [o.wait_s for o in outs] == [0.0, 10.0, 20.0]  # the wait shows in wait_s
    assert [o.hops[0].segments for o in outs] == [[(0.0, 10.0)], [(10.0, 20.0)], [(20.0, 30.0)]]
    two = run(star({"a": [[0, 100]], "b": [[0, 100]], "c": [[0, 100]]}, antennas=2),
              [(c, "down", 10_000, 0.0) for c in range(3)])
    assert [o.end_s for o in two] == [10.0, 10.0, 20.0]


def test_a_satellite_whose_pass_ends_while_it_waits_tries_its_next_pass():
    # b's pass [0, 15) ends while a holds the antenna until 10, b then sends 5 s of its 10 s,
    # pauses, and resumes in its next pass at 50
    net = star({"a": [[0, 100]], "b": [[0, 15], [50, 60]]}, antennas=1)
    a, b = run(net, [(0, "up", 10_000, 0.0), (1, "up", 10_000, 0.0)])
    assert a.end_s == 10.0
    assert b.hops[0].segments == [(10.0, 15.0), (50.0, 55.0)] and b.end_s == 55.0
    assert b.pauses == 1
    # a third satellite whose whole pass falls while the antenna is busy gets nothing there
    net = star({"a": [[0, 100]], "c": [[2, 8], [200, 300]]}, antennas=1)
    a, c = run(net, [(0, "up", 10_000, 0.0), (1, "up", 1_000, 0.0)])
    assert c.hops[0].segments == [(200.0, 201.0)] and c.end_s == 201.0


def test_antennas_key_defaults_to_one_and_is_checked(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nclients:\n  walker: {inclination_deg: 53, total: 4, planes: 2,"
                    " phasing: 1, altitude_km: 550}\nserver:\n  ground_stations:\n"
                    "    - {id: gs, lat_deg: 31.0, lon_deg: 121.5}\n"
                    "training: {dataset: synthetic, rounds: 1, clients_per_round: 2}\n")
    sc = load_scenario(path)
    assert sc.server.ground_stations[0].antennas == 1
    with pytest.raises(ConfigError) as info:
        load_scenario(path, ("server.ground_stations.0.antennas=0",))
    assert info.value.key == "server.ground_stations.0.antennas"
