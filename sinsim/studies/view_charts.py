"""The web page's charts besides the map: where each round's time went (a timeline of every
selected client: waiting for a pass, download, compute, upload, dropped), and accuracy against
round, simulated time and cumulative bytes (Plotly figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sinsim.studies.units import time_unit
from sinsim.studies.view_map import algorithm_colors

__all__ = ["timeline_segments", "timeline_figure", "curves_figure", "TIMELINE_DIV",
           "CURVES_DIV", "KINDS"]

TIMELINE_DIV = "sinsim-timeline"
CURVES_DIV = "sinsim-curves"
# segment kind -> colour, in legend order
KINDS = {"waiting (download)": "#c6dbef", "download": "#3182bd", "compute": "#e6550d",
         "waiting (upload)": "#fdd0a2", "upload": "#31a354", "dropped": "#d62728"}


def timeline_segments(transfers: pd.DataFrame, clients: pd.DataFrame | None) -> pd.DataFrame:
    """Every stretch of every selected client's round: ``algorithm, round, client, kind,
    start_s, end_s``. A transfer is its wait (``wait_s``: for a pass, a pause, the relay) then
    its transmission; a transfer that did not arrive is ``dropped`` over its transmission;
    compute comes from clients.csv."""
    rows = []
    x = transfers
    wait = x["wait_s"].fillna(0.0) if "wait_s" in x else pd.Series(0.0, index=x.index)
    for r, w in zip(x.itertuples(index=False), wait):
        sent = min(r.start_s + w, r.end_s)
        word = "download" if r.direction == "down" else "upload"
        key = (r.algorithm, int(r.round), str(r.client))
        if w > 0:
            rows.append((*key, f"waiting ({word})", r.start_s, sent))
        rows.append((*key, word if r.status == "delivered" else "dropped", sent, r.end_s))
    if clients is not None and len(clients):
        c = clients.dropna(subset=["compute_start_s", "compute_s"])
        for r in c.itertuples(index=False):
            rows.append((r.algorithm, int(r.round), str(r.client), "compute", r.compute_start_s,
                         r.compute_start_s + r.compute_s))
    return pd.DataFrame(rows, columns=["algorithm", "round", "client", "kind", "start_s",
                                       "end_s"])


def timeline_figure(rounds: pd.DataFrame, transfers: pd.DataFrame,
                    clients: pd.DataFrame | None) -> go.Figure:
    """One view per round (a slider): a row per selected client of each algorithm, its bars
    the stretches of :func:`timeline_segments`, a red x where a transfer that was not delivered
    ended (dropped or timed out), and a black tick where the algorithm's round ended."""
    seg = timeline_segments(transfers, clients)
    div, unit = time_unit(float(rounds.round_duration_s.max()) if len(rounds) else 0.0)
    fig = go.Figure()
    views = []
    round_ids = sorted(set(rounds["round"]) | set(seg["round"]))
    for k, rnd in enumerate(round_ids):
        s = seg[seg["round"] == rnd]
        r = rounds[rounds["round"] == rnd]
        labels = [f"{a} · {c}" for a, c in
                  s[["algorithm", "client"]].drop_duplicates().sort_values(
                      ["algorithm", "client"]).itertuples(index=False)]
        row = {lab: i for i, lab in enumerate(labels)}
        first = len(fig.data)
        for kind, color in KINDS.items():
            part = s[s.kind == kind]
            fig.add_trace(go.Bar(
                orientation="h", name=kind, legendgroup=kind, marker_color=color,
                base=(part.start_s / div).round(4).tolist(),
                x=((part.end_s - part.start_s) / div).round(4).tolist(),
                y=[row[f"{a} · {c}"] for a, c in zip(part.algorithm, part.client)],
                visible=k == 0, hovertemplate=f"{kind}<br>%{{base:.3f}} + %{{x:.3f}} {unit}"
                                              "<extra></extra>"))
        lost = s[s.kind == "dropped"]
        fig.add_trace(go.Scatter(
            x=(lost.end_s / div).round(4).tolist(),
            y=[row[f"{a} · {c}"] for a, c in zip(lost.algorithm, lost.client)],
            mode="markers", name="not delivered (ends here)", visible=k == 0,
            marker={"symbol": "x", "size": 9, "color": KINDS["dropped"]}))
        ends_x, ends_y = [], []
        for lab, i in row.items():
            alg = lab.split(" · ")[0]
            end = r.loc[r.algorithm == alg, "sim_end_s"]
            if len(end):
                ends_x.append(round(float(end.iloc[0]) / div, 4))
                ends_y.append(i)
        fig.add_trace(go.Scatter(x=ends_x, y=ends_y, mode="markers", name="round end",
                                 marker={"symbol": "line-ns-open", "size": 14, "color": "black",
                                         "line": {"width": 2}}, visible=k == 0))
        lo = min([s.start_s.min() if len(s) else np.inf, r.sim_start_s.min()]) / div
        hi = max([s.end_s.max() if len(s) else 0.0, r.sim_end_s.max() if len(r) else 0.0]) / div
        pad = 0.02 * (hi - lo) if hi > lo else 1.0
        views.append((first, len(fig.data), labels, [lo - pad, hi + pad], rnd))
    steps = []
    for first, last, labels, x_range, rnd in views:
        visible = [first <= i < last for i in range(len(fig.data))]
        steps.append({"method": "update", "label": f"round {rnd}", "args": [
            {"visible": visible},
            {"xaxis.range": x_range, "yaxis.tickvals": list(range(len(labels))),
             "yaxis.ticktext": labels, "yaxis.range": [len(labels) - 0.5, -0.5],
             "title.text": f"round {rnd}: where each selected client's time went"}]})
    first_view = views[0] if views else (0, 0, [], [0, 1], None)
    n_rows = max((len(v[2]) for v in views), default=1)
    fig.update_layout(
        barmode="overlay", height=max(320, 160 + 18 * n_rows),
        title=f"round {first_view[4]}: where each selected client's time went",
        xaxis={"title": f"simulated time ({unit})", "range": first_view[3]},
        yaxis={"tickvals": list(range(len(first_view[2]))), "ticktext": first_view[2],
               "range": [len(first_view[2]) - 0.5, -0.5], "tickfont": {"size": 10}},
        margin={"l": 150, "r": 10, "t": 80, "b": 40},
        legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"},
        sliders=[{"active": 0, "steps": steps, "y": -0.15, "pad": {"t": 30},
                  "currentvalue": {"visible": False}}] if len(steps) > 1 else [])
    return fig


def curves_figure(rounds: pd.DataFrame) -> go.Figure:
    """Test accuracy against round, simulated time and cumulative bytes (up + down), one line
    per algorithm."""
    div, unit = time_unit(float(rounds.sim_end_s.max()) if len(rounds) else 0.0)
    total = rounds.bytes_up_cum + rounds.bytes_down_cum
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.04)
    colors = algorithm_colors(rounds.algorithm)
    for name, r in rounds.sort_values("round").groupby("algorithm"):
        style = {"mode": "lines+markers", "line": {"color": colors[name]}, "legendgroup": name,
                 "name": name}
        fig.add_trace(go.Scatter(x=r["round"], y=r.test_accuracy, **style), 1, 1)
        fig.add_trace(go.Scatter(x=(r.sim_end_s / div).round(4), y=r.test_accuracy,
                                 showlegend=False, **style), 1, 2)
        fig.add_trace(go.Scatter(x=(total[r.index] / 1e6).round(4), y=r.test_accuracy,
                                 showlegend=False, **style), 1, 3)
    fig.update_xaxes(title_text="round", row=1, col=1, dtick=1 if rounds["round"].max() <= 20
                     else None)
    fig.update_xaxes(title_text=f"simulated time ({unit})", row=1, col=2)
    fig.update_xaxes(title_text="bytes up + down, cumulative (MB)", row=1, col=3)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_layout(title="accuracy", height=360, margin={"l": 60, "r": 10, "t": 50, "b": 50})
    return fig
