"""The static figures tell their story (issue 26, item 4): transmitting and computing readable
beside hours of waiting, transfers drawn from when they sent, algorithms and rounds marked,
coastlines under the ground tracks (shipped data, nothing fetched)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from sinsim.studies import analysis, plots, tables  # noqa: E402

LEO = Path(__file__).resolve().parent / "data" / "results_small" / "leo_walker"


def test_round_time_split_reads_seconds_beside_hours():
    breakdown = analysis.round_time_breakdown(LEO)
    ax = plots.round_time_split(breakdown)
    assert ax.get_yscale() == "log"
    heights = sorted(p.get_height() for p in ax.patches if p.get_height() > 0)
    # the shortest part (computing, milliseconds) and the longest (waiting, hours) both drawn,
    # each above the axis floor on a scale where both can be read
    bottom, top = ax.get_ylim()
    assert heights[0] < 1 < 3600 < heights[-1] and bottom < heights[0] and heights[-1] < top
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "1 h" in labels and "1 s" in labels


def test_contact_timeline_draws_transfers_from_when_they_sent_and_marks_rounds():
    t = tables.load_results(LEO)
    transfers, rounds = t["transfers"], t["rounds"]
    ax = plots.contact_timeline(t["contacts"], transfers=transfers, rounds=rounds,
                                clients=sorted(transfers.client.unique()))
    (lines,) = [c for c in ax.collections if type(c).__name__ == "LineCollection"]
    starts = sorted(seg[0][0] for seg in lines.get_segments())
    div = 3600.0  # an 18 h run: hours
    expected = sorted(np.minimum(transfers.start_s + transfers.wait_s, transfers.end_s) / div)
    np.testing.assert_allclose(starts, expected)
    assert starts[-1] > sorted(transfers.start_s / div)[-1]  # not from the round's start
    marks = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(marks) == len(rounds)  # a dashed line where each round starts
    legend = {x.get_text() for x in ax.get_legend().get_texts()}
    assert {"fedavg", "round start", "download sent", "upload sent"} <= legend
    assert ax.get_xlim()[1] < t["contacts"].end_s.max() / div  # the run, not the horizon


def test_ground_tracks_draw_the_shipped_coastlines():
    ax = plots.ground_tracks(tables.load_tles(LEO), tables.load_table(LEO, "nodes"),
                             max_satellites=2, orbits=0.5)
    coast = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(coast) == 1 and len(coast[0].get_segments()) >= 130
    assert not [t for t in ax.get_legend().get_texts() if "coast" in t.get_text()]


def test_round_time_split_keeps_zero_parts_on_the_floor():
    b = pd.DataFrame({"algorithm": ["a"], "round": [1], "wait_s": [0.0], "transmit_s": [2.0],
                      "compute_s": [0.01], "round_duration_s": [100.0]})
    ax = plots.round_time_split(b)
    assert ax.get_ylim()[0] > 0 and len(ax.patches) == 3
