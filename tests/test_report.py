"""The sweep overview reads a tidy sweep table and reduces each run to its headline numbers."""

from __future__ import annotations

import json

import pandas as pd

from sinsim.cli import main as cli
from sinsim.studies.report import overview, to_markdown

STATIONS = json.dumps([{"id": "shanghai"}, {"id": "kashgar"}])


def _runs() -> pd.DataFrame:
    rows = []
    for run, rate in (("a", 9600.0), ("b", 1e6)):
        for alg in ("fedavg", "spacedml"):
            for r in (1, 2):
                rows.append({"run_id": run, "seed": 0, "links.uplink.rate_bps": rate,
                             "server.ground_stations": STATIONS, "algorithm": alg, "round": r,
                             "round_duration_s": 100.0 * r, "selected": 4, "completed": r,
                             "bytes_up_cum": 10 * r, "bytes_down_cum": 20 * r,
                             "test_accuracy": 0.5 + 0.1 * r})
    return pd.DataFrame(rows)


def test_overview_reduces_each_run():
    t = overview(_runs()).set_index(["links.uplink.rate_bps", "algorithm"])
    row = t.loc[(9600.0, "spacedml")]
    # Assert
    assert row.final_accuracy == 0.7 and row.mean_round_s == 150.0
    assert row.averaged_share == 3 / 8 and row.bytes_up == 20 and row.rounds == 2


def test_markdown_names_stations_and_command_exits(tmp_path, capsys):
    keys = ["links.uplink.rate_bps", "server.ground_stations"]
    md = to_markdown(overview(_runs(), keys), keys)
    assert "| 9600 | shanghai, kashgar | fedavg | 0.7000 | 150.0 | 38 % | 20 | 40 |" in md
    _runs().to_csv(tmp_path / "runs.csv", index=False)
    assert cli(["report", str(tmp_path)]) == 0
    assert "### " in capsys.readouterr().out
    assert cli(["report", str(tmp_path / "nope")]) == 2
