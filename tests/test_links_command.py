"""`python -m sinsim links`: the link budget of each link of a scenario at a few ranges, checked
against ``sinsim.space.links.link_budget`` as the oracle."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sinsim.cli import main
from sinsim.scenario import load_scenario
from sinsim.sim.link_report import COLUMNS, link_table
from sinsim.space.atmosphere import elevation_from_range_deg, slant_range_m
from sinsim.space.links import link_budget
from sinsim.space.radios import PROFILES

ROOT = Path(__file__).resolve().parents[1]
WALKER = str(ROOT / "scenarios" / "leo_walker.yaml")
ISL = str(ROOT / "scenarios" / "leo_isl.yaml")
UAVS = str(ROOT / "scenarios" / "uav_swarm.yaml")
TINY = str(ROOT / "scenarios" / "tiny.yaml")
HEADER = ("link,direction,model_goes,range_km,elevation_deg,snr_db,modcod,rate_bps,bandwidth_hz,profile,"
          "cn0_dbhz")
SHELL_M = 550e3  # leo_walker's shell


def links(capsys, *argv: str) -> tuple[int, pd.DataFrame | None, str]:
    """Exit status, the printed table (None when nothing was printed) and stderr."""
    rc = main(["links", *argv])
    out, err = capsys.readouterr()
    table = None
    if out:
        table = pd.read_csv(io.StringIO(out), keep_default_na=False, na_values=[""],
                            dtype={"modcod": object})
        table["modcod"] = table["modcod"].fillna("")
    return rc, table, err


def check_budget(rows: pd.DataFrame, profile: str, range_m, elevation_deg) -> None:
    """``rows`` print ``profile``'s budget at the exact ``range_m`` and ``elevation_deg``."""
    b = link_budget(PROFILES[profile], np.asarray(range_m, dtype=float), elevation_deg)
    assert (rows.profile == profile).all()
    assert rows.rate_bps.tolist() == [round(r) for r in b.rate_bps]
    assert rows.modcod.tolist() == [str(m) for m in b.modcod]
    np.testing.assert_allclose(rows.snr_db, b.snr_db, atol=0.006)
    np.testing.assert_allclose(rows.cn0_dbhz, b.cn0_dbhz, atol=0.006)
    np.testing.assert_allclose(rows.range_km, np.asarray(range_m) / 1e3, atol=0.06)
    assert (rows.bandwidth_hz == PROFILES[profile].bandwidth_hz).all()


def test_default_ranges_of_the_default_scenario(capsys):
    rc, t, err = links(capsys, WALKER)
    assert rc == 0 and err == ""
    assert list(t.columns) == [*COLUMNS[:2], "model_goes", *COLUMNS[2:]]
    assert set(t.link) == {"satellite-ground"}
    assert t.direction.tolist() == ["up"] * 6 + ["down"] * 6  # the mask (10) is one of them
    elevations = [90.0, 60.0, 45.0, 30.0, 20.0, 10.0]
    range_m = slant_range_m(np.array(elevations), SHELL_M)
    for direction, profile in (("up", "leo_xband_dvbs2"), ("down", "leo_sband_command")):
        rows = t[t.direction == direction]
        assert rows.elevation_deg.tolist() == elevations
        assert rows.range_km.is_monotonic_increasing
        check_budget(rows, profile, range_m, np.array(elevations))


def test_given_ranges(capsys):
    rc, t, err = links(capsys, WALKER, "--range-km", "2000,550,1000")
    assert rc == 0 and err == ""
    ranges_m = np.array([550e3, 1000e3, 2000e3])
    elevation = elevation_from_range_deg(ranges_m, SHELL_M)
    assert t.elevation_deg.iloc[0] == 90.0  # straight overhead of a 550 km shell
    np.testing.assert_allclose(t.elevation_deg, np.tile(elevation, 2), atol=0.006)
    assert t.range_km.tolist() == [550.0, 1000.0, 2000.0] * 2
    check_budget(t[t.direction == "up"], "leo_xband_dvbs2", ranges_m, elevation)
    check_budget(t[t.direction == "down"], "leo_sband_command", ranges_m, elevation)


def test_the_module_entry_point_prints_csv():
    p = subprocess.run([sys.executable, "-m", "sinsim", "links", "scenarios/leo_walker.yaml",
                        "--range-km", "550,1000,2000"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == HEADER and len(lines) == 1 + 6


def test_a_named_profile_changes_the_up_rows(capsys):
    _, before, _ = links(capsys, WALKER, "--range-km", "550,1500")
    rc, t, _ = links(capsys, WALKER, "--range-km", "550,1500",
                     "--set", "links.uplink.profile=legacy_xband_shannon")
    assert rc == 0
    up, down = t[t.direction == "up"], t[t.direction == "down"]
    ranges_m = np.array([550e3, 1500e3])
    check_budget(up, "legacy_xband_shannon", ranges_m, elevation_from_range_deg(ranges_m, SHELL_M))
    assert (up.modcod == "").all()  # shannon: no MODCOD
    assert not up.rate_bps.equals(before[before.direction == "up"].rate_bps)
    pd.testing.assert_frame_equal(down.reset_index(drop=True),
                                  before[before.direction == "down"].reset_index(drop=True))


def test_impossible_ranges_are_left_out_and_said(capsys):
    rc, t, err = links(capsys, WALKER, "--range-km", "100,550,3000")
    assert rc == 0
    assert t.range_km.tolist() == [550.0, 550.0]
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "satellite-ground" in lines[0] and "100, 3000 km" in lines[0]


@pytest.mark.parametrize("value", ["abc", "0", "-5", "550,", "nan", "inf"])
def test_a_bad_range_is_a_usage_error(capsys, value):
    with pytest.raises(SystemExit) as e:
        main(["links", WALKER, "--range-km", value])
    assert e.value.code == 2
    assert "--range-km" in capsys.readouterr().err


def test_isl_rows(capsys):
    rc, t, _ = links(capsys, ISL)
    assert rc == 0
    isl = t[t.link == "isl"]
    assert set(t.link) == {"satellite-ground", "isl"} and (isl.direction == "cross").all()
    assert isl.range_km.tolist() == [500.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0]
    assert (isl.rate_bps == 100e6).all() and (isl.profile == "fixed").all()
    assert (isl.modcod == "").all() and isl.elevation_deg.isna().all()
    rc, t, _ = links(capsys, ISL, "--set", "links.isl.profile=isl_ka_rf",
                     "--set", "links.isl.max_range_km=2500")
    isl = t[t.link == "isl"]
    assert isl.range_km.tolist() == [500.0, 1000.0, 2000.0, 2500.0]
    assert isl.elevation_deg.isna().all()
    check_budget(isl, "isl_ka_rf", isl.range_km.to_numpy() * 1e3, None)


def test_fixed_links_print_their_rates(capsys):
    rc, t, err = links(capsys, UAVS)
    assert rc == 0 and err == ""
    assert t.link.tolist() == ["uav-ground"] * 2 and t.direction.tolist() == ["up", "down"]
    assert t.rate_bps.tolist() == [20_000_000, 50_000_000]
    assert (t.profile == "fixed").all()
    assert t[["range_km", "elevation_deg", "snr_db", "bandwidth_hz", "cn0_dbhz"]].isna().all(
        axis=None)
    rc, t, err = links(capsys, UAVS, "--range-km", "20,500")  # median UAV altitude 13.5 km
    assert t.range_km.tolist() == [20.0, 20.0]
    np.testing.assert_allclose(t.elevation_deg, elevation_from_range_deg(20e3, 13.5e3),
                               atol=0.006)
    assert "uav-ground" in err and "500 km" in err


def test_abstract_clients_are_bad_input(capsys):
    rc, t, err = links(capsys, TINY)
    assert rc == 2 and t is None
    assert "tiny.yaml: clients:" in err and "Traceback" not in err


def test_satellites_to_a_uav_server_need_a_named_profile(write_yaml, capsys):
    path = write_yaml({
        "name": "uav_server",
        "clients": {"walker": {"inclination_deg": 53, "total": 4, "planes": 2, "phasing": 1,
                               "altitude_km": 550}},
        "server": {"uav": {"id": "hub", "altitude_m": 20000, "speed_mps": 30,
                           "loiter": {"lat_deg": 48.0, "lon_deg": 11.0, "radius_m": 10000}}},
        "links": {"model": "budget"},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2},
    })
    rc, t, err = links(capsys, str(path))
    assert rc == 2 and t is None
    assert "links.uplink" in err and "satellite to a uav" in err
    rc, t, _ = links(capsys, str(path), "--set", "links.uplink.profile=isl_ka_rf",
                     "--set", "links.downlink.profile=isl_ka_rf",
                     "--set", "contacts.max_range_km=1500")
    assert rc == 0 and set(t.link) == {"satellite-uav"}
    assert t.range_km.tolist() == [500.0, 1000.0, 1500.0] * 2


def test_mixed_clients_get_one_link_kind_each(write_yaml, monkeypatch):
    def no_plan(*args, **kwargs):
        raise AssertionError("links must not compute a contact plan")

    monkeypatch.setattr("sinsim.sim.topology.compute_contact_plan", no_plan)
    monkeypatch.setattr("sinsim.sim.topology.isl_windows", no_plan)
    uav = {"speed_mps": 50, "loiter": {"lat_deg": 31.0, "lon_deg": 121.0, "radius_m": 5000}}
    path = write_yaml({
        "name": "mixed",
        "clients": {"walker": {"inclination_deg": 53, "total": 6, "planes": 2, "phasing": 1,
                               "altitude_km": 700},
                    "uavs": [{"id": f"u{i}", "altitude_m": a, **uav}
                             for i, a in enumerate((8000, 12000, 30000))]},
        "server": {"ground_stations": [
            {"id": "a", "lat_deg": 31.0, "lon_deg": 121.5, "min_elevation_deg": 15},
            {"id": "b", "lat_deg": 40.0, "lon_deg": 116.0, "min_elevation_deg": 5}]},
        "links": {"model": "budget"},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2},
    })
    t = link_table(load_scenario(path))
    assert list(t.columns) == COLUMNS
    assert t.link.unique().tolist() == ["satellite-ground", "uav-ground"]
    assert t.attrs["altitude_km"] == {"satellite-ground": 700.0, "uav-ground": 12.0}
    expected = [90.0, 60.0, 45.0, 30.0, 20.0, 10.0, 5.0]  # the smallest mask, below 10
    for (link, direction), rows in t.groupby(["link", "direction"], sort=False):
        assert rows.elevation_deg.tolist() == pytest.approx(expected), (link, direction)
    uav_up = t[(t.link == "uav-ground") & (t.direction == "up")]
    np.testing.assert_allclose(uav_up.range_km * 1e3, slant_range_m(np.array(expected), 12e3))
    assert (uav_up.profile == "uav_cband_dvbs2").all()
    with pytest.raises(ValueError):
        link_table(load_scenario(path), [0.0])


def test_out_writes_the_printed_csv(tmp_path, capsys):
    out = tmp_path / "links.csv"
    assert main(["links", WALKER, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text(encoding="utf-8") == printed and printed.startswith(HEADER + "\n")
    assert main(["links", WALKER, "--out", str(tmp_path)]) == 2  # a directory
    assert "is a directory" in capsys.readouterr().err


def test_each_row_says_which_way_the_model_goes_and_on_which_radio(capsys):
    """`up` is the model going client -> server, which a satellite sends on its radio to the
    ground (a downlink), not a radio uplink; the first-hour list of issue 27."""
    assert main(["links", WALKER]) == 0
    t = pd.read_csv(io.StringIO(capsys.readouterr().out))
    up = set(t[t.direction == "up"].model_goes)
    down = set(t[t.direction == "down"].model_goes)
    assert up == {"client -> server: satellite -> ground on the to-ground radio (a downlink)"}
    assert down == {"server -> client: ground -> satellite on the from-ground radio (an uplink)"}
