"""Several Walker shells (``clients.walker`` as a list) and ground stations from a CSV file."""

from __future__ import annotations

import pandas as pd
import pytest

from sinsim.errors import ConfigError
from sinsim.scenario import validate_scenario
from sinsim.sim.topology import _isl, build_nodes
from sinsim.space.isl import plus_grid_pairs
from sinsim.space.timebase import Timebase

SHELL_A = {"inclination_deg": 53, "total": 12, "planes": 3, "phasing": 1, "altitude_km": 550}
SHELL_B = {"inclination_deg": 97.6, "total": 16, "planes": 4, "phasing": 1, "altitude_km": 560}
GS = {"ground_stations": [{"id": "gs", "lat_deg": 40.4, "lon_deg": -3.7}]}


def scenario(walker, server=GS, **extra):
    return validate_scenario({
        "name": "shells", "start": "2026-01-01T00:00:00Z", "horizon": "1h",
        "clients": {"walker": walker}, "server": server,
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2},
        "algorithms": ["fedavg"], **extra})


def test_a_list_of_shells_gives_ids_per_shell():
    sc = scenario([SHELL_A, SHELL_B, {**SHELL_A, "altitude_km": 600, "id_prefix": "high"}])
    clients, servers = build_nodes(sc)
    assert sc.n_clients_known == len(clients) == 40
    assert [c.id for c in clients[:2]] == ["s0-sat0000", "s0-sat0001"]
    assert clients[12].id == "s1-sat0000" and clients[28].id == "high0000"
    assert len({c.catalog_number for c in clients}) == 40  # run on over the shells
    assert clients[12].satrec.inclo == pytest.approx(97.6 * 3.141592653589793 / 180)
    one, _ = build_nodes(scenario(SHELL_A))  # one shell (a mapping): ids as before
    assert [c.id for c in one[:2]] == ["sat0000", "sat0001"]
    assert [c.catalog_number for c in one[:2]] == [1, 2]
    with pytest.raises(ConfigError, match="id_prefix must differ"):
        scenario([{**SHELL_A, "id_prefix": "x"}, {**SHELL_B, "id_prefix": "x"}])
    with pytest.raises(ConfigError, match="at least one shell"):
        scenario([])
    with pytest.raises(ConfigError, match="unknown key"):
        scenario([SHELL_A, {**SHELL_B, "planez": 4}])


def test_plus_grid_links_stay_within_each_shell():
    isl = {"links": {"model": "fixed", "uplink": {"rate_bps": 1e6},
                     "downlink": {"rate_bps": 1e6},
                     "isl": {"topology": "plus_grid", "rate_bps": 1e6, "max_range_km": 8000}}}
    sc = scenario([SHELL_A, SHELL_B], **isl)
    clients, _ = build_nodes(sc)
    tb = Timebase(sc.start)
    windows = _isl(sc, clients, tb)
    links = set(zip(windows.a, windows.b))
    assert all(a[:3] == b[:3] for a, b in links)  # s0- with s0-, s1- with s1-
    expected = {(clients[i].id, clients[j].id) for i, j in plus_grid_pairs(clients[:12], 3, tb)}
    expected |= {(clients[12 + i].id, clients[12 + j].id)
                 for i, j in plus_grid_pairs(clients[12:], 4, tb)}
    assert links <= expected  # (4 satellites a plane at 550 km: in-plane links graze the Earth)
    assert {a[:3] for a, _ in links} == {"s0-", "s1-"}


def test_ground_stations_from_a_csv_file(tmp_path):
    from sinsim.scenario import load_scenario

    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "stations.csv").write_text(
        "id,lat_deg,lon_deg,altitude_m,min_elevation_deg\n"
        "madrid,40.4168,-3.7038,650,25\n"
        "\n"
        "sydney,-33.8688,151.2093,,\n")
    yaml = ("name: csv\nstart: 2026-01-01T00:00:00Z\nhorizon: 1h\n"
            f"clients: {{walker: {SHELL_A}}}\n"
            "server: {ground_stations: {csv: st/stations.csv}}\n"
            "training: {dataset: synthetic, rounds: 1, clients_per_round: 2}\n"
            "algorithms: [fedavg]\n").replace("'", "")
    (tmp_path / "sc.yaml").write_text(yaml)
    sc = load_scenario(tmp_path / "sc.yaml")  # the path is relative to the scenario file
    _, servers = build_nodes(sc)
    assert [s.id for s in servers] == ["madrid", "sydney"]
    assert servers[0].altitude_m == 650 and servers[0].min_elevation_deg == 25
    assert servers[1].altitude_m == 0 and servers[1].min_elevation_deg == 10  # the defaults
    assert sc.resolved()["server"]["ground_stations"][1]["id"] == "sydney"
    assert [g.antennas for g in sc.server.ground_stations] == [1, 1]  # no column: one each
    (tmp_path / "st" / "stations.csv").write_text(
        "id,lat_deg,lon_deg,antennas\nmadrid,40.4,-3.7,3\nsydney,-33.9,151.2,\n")
    sc = load_scenario(tmp_path / "sc.yaml")
    assert [g.antennas for g in sc.server.ground_stations] == [3, 1]
    bad = {
        "id,lat_deg,lon_deg,antennas\nx,1,2,0\n": r"line 2: antennas",
        "id,lat_deg,lon_deg\nx,95,0\n": r"line 2: lat_deg",
        "id,lat_deg,lon_deg\nx,1,2\nx,3,4\n": r"line 3: station id 'x' repeats line 2",
        "id,lat_deg\nx,1\n": r"line 1: the header",
        "id,lat_deg,lon_deg\nx,1\n": r"line 2: 2 fields",
        "id,lat_deg,lon_deg\nx,north,2\n": r"line 2: lat_deg",
        "id,lat_deg,lon_deg\n": r"no stations",
    }
    for text, message in bad.items():
        (tmp_path / "st" / "stations.csv").write_text(text)
        with pytest.raises(ConfigError, match=message) as e:
            load_scenario(tmp_path / "sc.yaml")
        assert "stations.csv" in str(e.value) and "server.ground_stations.csv" in str(e.value)
    with pytest.raises(ConfigError, match="no such ground-station CSV file"):
        load_scenario(tmp_path / "sc.yaml", ["server.ground_stations.csv=nope.csv"])
    with pytest.raises(ConfigError, match="give a list of stations"):
        scenario(SHELL_A, server={"ground_stations": {"path": "x.csv"}})


def test_contacts_memory_mb_reaches_the_plan_and_changes_nothing(tmp_path):
    from sinsim.sim.topology import build_topology

    plans = []
    for memory_mb, cache in ((512, "a"), (0.01, "b")):  # 0.01 MB: a pair a chunk
        sc = scenario([SHELL_A, SHELL_B],
                      contacts={"memory_mb": memory_mb, "cache_dir": str(tmp_path / cache)})
        assert sc.contacts.memory_mb == memory_mb
        plans.append(build_topology(sc).plan.windows)
    assert len(plans[0]) > 3
    pd.testing.assert_frame_equal(plans[0], plans[1])
    with pytest.raises(ConfigError, match="memory_mb"):
        scenario(SHELL_A, contacts={"memory_mb": 0})
