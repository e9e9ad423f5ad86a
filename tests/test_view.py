"""The run's web page without a browser (tests/test_view_browser.py opens it in Chromium): what
it is built from, what it says it thinned, partial runs, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("plotly", reason="the view extra is not installed (pip install "
                                     "'sinsim[view]')")

from sinsim.cli import main  # noqa: E402
from sinsim.space.timebase import Timebase  # noqa: E402
from sinsim.space.tracks import subpoints  # noqa: E402
from sinsim.studies import coastlines, view, view_charts, view_data, view_map  # noqa: E402

STORED = Path(__file__).resolve().parent / "data" / "results_small"
LEO = STORED / "leo_walker"
TINY = STORED / "tiny"


def _meta(page: str) -> dict:
    return json.loads(re.search(r"id='sinsim-meta'>(.*?)</script>", page).group(1))


@pytest.fixture(scope="module")
def leo_run():
    return view_data.load_run(LEO)


def test_coastlines_are_the_shipped_natural_earth_lines():
    lines = coastlines.coastlines()
    assert len(lines) >= 130  # land-110m's arcs (some split at the antimeridian)
    for line in lines:
        assert np.all(np.abs(line[:, 0]) <= 180) and np.all(np.abs(line[:, 1]) <= 90)
        assert np.all(np.abs(np.diff(line[:, 0])) <= 180)  # no line jumps across the map
    lon, lat = np.concatenate(lines).T
    # Africa's southern tip, Cape Agulhas (20.0 E, 34.8 S), is on a coastline within 0.5 deg
    assert np.min(np.hypot(lon - 20.0, lat + 34.8)) < 0.5


def test_frame_times_take_the_smallest_round_step_under_the_cap():
    t = view_data.frame_times(18 * 3600, max_frames=720)
    assert t[1] - t[0] == 120 and t[-1] >= 18 * 3600 and len(t) <= 720
    assert np.diff(view_data.frame_times(600, 720))[0] == view_data.MIN_STEP_S


def test_the_scene_puts_satellites_where_their_tles_say(leo_run):
    sc = view_data.scene(leo_run)
    assert len(sc.tracks) == 19 and sc.times_s[0] == 0
    sat = leo_run.satellites[3]
    lat, lon = subpoints([sat], Timebase(leo_run.start_utc), sc.times_s[[0, 50]])
    np.testing.assert_allclose(sc.lat[sat.id][[0, 50]], lat[0])
    np.testing.assert_allclose(sc.lon[sat.id][[0, 50]], lon[0])
    assert sc.lat["shanghai"][0] == pytest.approx(31.0)
    # every transfer drawn goes between the station and a client
    assert set(sc.transfers["from"]) | set(sc.transfers["to"]) >= {"shanghai", "sat0032"}


def test_thinning_keeps_the_satellites_that_carried_a_model_and_says_so(leo_run):
    sc = view_data.scene(leo_run, max_satellites=12)
    involved = set(pd.read_csv(LEO / "transfers.csv").client)
    assert len(involved) == 9
    assert len(sc.tracks) == 12 and involved <= set(sc.tracks)
    assert any("thinned: 12 of 19 satellites" in n for n in sc.notes)


def test_links_and_transfers_appear_in_the_frames_when_they_happen(leo_run):
    sc = view_data.scene(leo_run)
    fig = view_map.map_figure(leo_run, sc)
    names = [t["name"] for t in fig["data"]]
    frame_names = [names[i] for i in fig["frames"][0]["traces"]]
    up = frame_names.index("ground links up")
    down = frame_names.index("fedavg download")
    link = pd.read_csv(LEO / "contacts.csv").iloc[0]
    f = int(np.searchsorted(sc.times_s, (link.start_s + link.end_s) / 2))
    assert len(fig["frames"][f]["data"][up]["x"]) >= 3  # a line to the station in the pass
    t = pd.read_csv(LEO / "transfers.csv")
    t = t[(t.direction == "down") & (t.status == "delivered")].iloc[0]
    f = int(np.argmin(np.abs(sc.times_s - t.end_s)))
    assert len(fig["frames"][f]["data"][down]["x"]) >= 3
    assert len(fig["frames"]) == len(sc.times_s)
    steps = fig["layout"]["sliders"][0]["steps"]
    assert len(steps) == len(sc.times_s) and "UTC" in steps[0]["label"]


def test_a_line_across_the_antimeridian_is_drawn_to_both_edges():
    sc = view_data.Scene(np.zeros(1), 30.0, {"a": np.array([10.0]), "b": np.array([-10.0])},
                         {"a": np.array([170.0]), "b": np.array([-170.0])}, {}, {}, {},
                         pd.DataFrame(), pd.DataFrame(), [])
    x, y = view_map._segments(sc, ["a"], ["b"], 0)
    assert x == [170.0, 180.0, None, -180.0, -170.0, None]
    assert y[1] == y[3] == pytest.approx(0.0)


def test_timeline_splits_each_transfer_into_its_wait_and_its_transmission():
    transfers = pd.read_csv(LEO / "transfers.csv")
    seg = view_charts.timeline_segments(transfers, pd.read_csv(LEO / "clients.csv"))
    moving = seg[seg.kind != "compute"]
    total = (moving.end_s - moving.start_s).sum()
    assert total == pytest.approx((transfers.end_s - transfers.start_s).sum())
    dropped = (transfers.status != "delivered").sum()
    assert (seg.kind == "dropped").sum() == dropped
    assert (seg.kind == "compute").sum() == pd.read_csv(LEO / "clients.csv").compute_s.notna().sum()


def test_uavs_fly_their_scenario_paths():
    summary = {"resolved_scenario": {"clients": {"uavs": [
        {"id": "uav00", "altitude_m": 12000, "speed_mps": 60,
         "loiter": {"lat_deg": 48.3, "lon_deg": 11.5, "radius_m": 20000}, "waypoints": None}]},
        "server": {"uav": None}}}
    (uav,) = view_data._uavs(summary)
    lat, lon = uav.latlon_deg(np.array([0.0, 600.0]))
    assert abs(lat[0] - 48.3) < 0.3 and (lat[0], lon[0]) != (lat[1], lon[1])


def test_the_cli_writes_one_self_contained_page(tmp_path, capsys):
    run = tmp_path / "leo"
    shutil.copytree(LEO, run)
    assert main(["view", str(run)]) == 0
    page_path = run / "view.html"
    assert f"{page_path} (" in capsys.readouterr().out
    page = page_path.read_text(encoding="utf-8")
    assert "<script src" not in page.replace(" ", "").lower()  # every script inline
    for div in ("sinsim-map", "sinsim-timeline", "sinsim-curves", "sinsim-summary"):
        assert f"id=\"{div}\"" in page or f"id='{div}'" in page
    assert _meta(page)["satellites_drawn"] == 19
    assert "0.7245" in page  # the summary's final accuracy


def test_a_partial_run_renders_what_it_has(tmp_path):
    run = tmp_path / "partial"
    run.mkdir()
    for name in ("contacts.csv", "nodes.csv", "nodes.tle"):  # what `sinsim contacts` writes
        shutil.copy(LEO / name, run / name)
    page = view.build_page(run)
    assert "sinsim-no-timeline" in page and "sinsim-no-curves" in page
    assert "no summary.json" in page
    summary = json.loads((LEO / "summary.json").read_text())
    summary["status"] = "failed"
    (run / "summary.json").write_text(json.dumps(summary))
    shutil.copy(LEO / "rounds.csv", run / "rounds.csv")
    page = view.build_page(run)
    assert "status is &#x27;failed&#x27;" in page and "sinsim-curves" in page


@pytest.mark.parametrize(("make", "words"), [
    (lambda d: d, "not a sinsim results directory"),
    (lambda d: d / "missing", "no such results directory"),
    (lambda d: shutil.copytree(TINY, d / "tiny"), "no contacts.csv or nodes.csv"),
])
def test_bad_input_exits_2_with_one_line_naming_what_is_missing(make, words, tmp_path, capsys):
    target = make(tmp_path)
    assert main(["view", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and str(target) in err


def test_an_out_that_is_a_directory_exits_2(tmp_path, capsys):
    assert main(["view", str(LEO), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_show_puts_the_page_in_a_notebook_iframe():
    pytest.importorskip("IPython")
    shown = view.show(LEO, height_px=900)
    assert shown.data.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;")
    assert "height='900'" in shown.data and "<script" not in shown.data  # escaped inside
