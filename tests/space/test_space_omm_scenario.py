"""OMM files in scenarios: ``clients.omm`` and ``server.satellite.{tle,omm}``, paths relative to
the scenario, ``nodes.csv`` columns, bad input exits 2 naming the file and the record, the
element-age warning of a run."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from test_space_omm import omm_records, write_omm

from sinsim.cli import main
from sinsim.errors import ConfigError
from sinsim.scenario import OMMSource, load_scenario, validate_scenario
from sinsim.sim.topology import build_nodes
from sinsim.space.nodes import ElementAgeWarning
from sinsim.space.orbits import load_tle


def _raw(tmp_path, clients, server=None, start="2020-05-07T00:00:00Z"):
    return {
        "name": "omm", "start": start, "horizon": "12h", "clients": clients,
        "server": server or {"ground_stations": [{"id": "madrid", "lat_deg": 40.42,
                                                  "lon_deg": -3.70, "min_elevation_deg": 10}]},
        "contacts": {"cache_dir": str(tmp_path / "cache"), "step": 60},
        "training": {"dataset": "synthetic", "clients_per_round": 2},
    }


@pytest.fixture
def omm_csv(tmp_path, starlink_tle_path):
    path = tmp_path / "data" / "starlink.csv"
    path.parent.mkdir()
    write_omm(path, omm_records(load_tle(starlink_tle_path)), "csv")
    return path


def test_omm_paths_are_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "s.yaml"
    raw = _raw(tmp_path, {"omm": {"path": "../gp.json", "limit": 5}},
               {"satellite": {"tle": {"path": "hub.tle"}}})
    path.write_text(yaml.safe_dump(raw))
    sc = load_scenario(path)
    assert isinstance(sc.clients.omm, OMMSource)
    assert sc.clients.omm.path == str(tmp_path / "gp.json") and sc.clients.omm.limit == 5
    assert sc.server.satellite.tle.path == str(tmp_path / "sub" / "hub.tle")
    assert sc.n_clients_known is None


def test_a_satellite_server_is_one_kind(tmp_path):
    raw = _raw(tmp_path, {"omm": {"path": "a.json"}},
               {"satellite": {"orbit": {"altitude_km": 1200, "inclination_deg": 87.9},
                              "omm": {"path": "b.json"}}})
    with pytest.raises(ConfigError, match="server.satellite: give exactly one of client, "
                                          "orbit, tle or omm, got orbit, omm"):
        validate_scenario(raw)
    raw["server"]["satellite"] = {"omm": {"path": "b.json", "nme_pattern": "x"}}
    with pytest.raises(ConfigError, match="server.satellite.omm.nme_pattern: unknown key; "
                                          "did you mean 'name_pattern'"):
        validate_scenario(raw)


def test_omm_clients_and_an_omm_server(tmp_path, omm_csv):
    raw = _raw(tmp_path, {"omm": {"path": str(omm_csv), "name_pattern": "starlink-2*"}},
               {"satellite": {"omm": {"path": str(omm_csv), "name_pattern": "STARLINK-31"}}})
    clients, servers = build_nodes(validate_scenario(raw))
    assert [s.id for s in servers] == ["STARLINK-31"] and servers[0].record == 1
    assert len(clients) == 9 and all(c.id.startswith("STARLINK-2") for c in clients)
    raw["server"]["satellite"]["id"] = "hub"
    assert build_nodes(validate_scenario(raw))[1][0].id == "hub"
    raw["server"]["satellite"] = {"omm": {"path": str(omm_csv), "name_pattern": "STARLINK-3*"}}
    with pytest.raises(ConfigError, match=r"server.satellite.omm: the server is one satellite, "
                                          r"but .*starlink.csv gives 8: STARLINK-31, .*, \.\.\.; narrow name_pattern"):
        build_nodes(validate_scenario(raw))


def test_contacts_command_with_an_omm_file(tmp_path, omm_csv, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(_raw(tmp_path, {"omm": {"path": "data/starlink.csv",
                                                               "limit": 8}})))
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "out")]) == 0
    nodes = pd.read_csv(tmp_path / "out" / "nodes.csv")
    sats = nodes[nodes.kind == "satellite"]
    assert sats.source.tolist() == [str(omm_csv)] * 8 and sats.record.tolist() == list(range(1, 9))
    assert sats.catalog_number.tolist()[:2] == [44235, 44236]
    assert sats.epoch_utc.str.startswith("2020-05-0").all()
    contacts = pd.read_csv(tmp_path / "out" / "contacts.csv")
    assert len(contacts) > 0 and set(contacts.client) <= set(sats.id)
    assert "8 clients" in capsys.readouterr().out


def test_bad_omm_file_exits_2_naming_the_file_and_record(tmp_path, omm_csv, capsys):
    lines = omm_csv.read_text().splitlines()
    lines[3] = lines[3].replace(",U,", ",U,x", 1)  # NORAD_CAT_ID of record 3: "x44237"
    omm_csv.write_text("\n".join(lines) + "\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(_raw(tmp_path, {"omm": {"path": "data/starlink.csv"}})))
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sinsim: error: {scenario}: clients.omm.path: {omm_csv}: record 3 "
                          f"(STARLINK-23): NORAD_CAT_ID must be a whole number, got 'x44237'")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    missing = tmp_path / "s2.yaml"
    missing.write_text(yaml.safe_dump(_raw(tmp_path, {"omm": {"path": "nope.json"}})))
    assert main(["contacts", str(missing), "--out", str(tmp_path / "out2")]) == 2
    assert f"clients.omm.path: no such OMM file {tmp_path / 'nope.json'}" in capsys.readouterr().err


def test_a_run_far_from_the_epochs_warns(tmp_path, omm_csv):
    raw = _raw(tmp_path, {"omm": {"path": str(omm_csv), "limit": 3}},
               start="2020-06-07T00:00:00Z")
    with pytest.warns(ElementAgeWarning, match=r"starts 31\.\d days after the epoch .* "
                                               r"1-3 km per day"):
        build_nodes(validate_scenario(raw))
