"""Standard figures of a results directory. Reads only the output tables (never the simulator);
ground tracks come from the run's ``nodes.tle`` through :mod:`sinsim.space.tracks`.

    python -m sinsim plot results/leo_walker        # PNG and PDF files beside the tables
    python -m sinsim plot results/my_sweep          # a sweep directory: sinsim.studies.sweep_plots

Every figure function takes tables (pandas DataFrames, as written by a run) and an optional
matplotlib ``ax`` and returns the axes it drew on, so notebooks can lay figures out as they
like; :mod:`sinsim.studies.tables` loads them. :func:`plot_results` writes every figure that a
directory's tables allow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from sinsim.space.tracks import ground_track
from sinsim.studies.analysis import round_time_breakdown_of
from sinsim.studies.coastlines import coastlines
from sinsim.studies.figures import (
    axes,
    bytes_unit,
    check_formats,
    colors,
    figure,
    save,
    time_unit,
)
from sinsim.studies.sweep_plots import plot_sweep
from sinsim.studies.tables import (
    MissingTable,
    is_sweep,
    load_results,
    load_tles,
    results_path,
    run_start,
)

__all__ = [
    "accuracy_vs_round", "accuracy_vs_bytes", "accuracy_vs_time", "bytes_per_round",
    "round_durations", "round_time_split", "contact_timeline", "ground_tracks", "plot_results",
    "FIGURES",
]


def _lines(rounds: pd.DataFrame, x: str, ax, xdiv: float = 1.0, y: str = "test_accuracy"):
    palette = colors(rounds.algorithm)
    for name, r in rounds.sort_values("round").groupby("algorithm"):
        ax.plot(r[x] / xdiv, r[y], marker="o", ms=3, label=name, color=palette[name])
    if rounds.algorithm.nunique():
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# ------------------------------------------------------------------------------ run figures
def accuracy_vs_round(rounds: pd.DataFrame, ax=None):
    """Test accuracy after each round, one line per algorithm."""
    ax = _lines(rounds, "round", axes(ax))
    if rounds["round"].nunique() <= 12:
        ax.set_xticks(np.sort(rounds["round"].unique()))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="round", ylabel="test accuracy", title="accuracy vs round")
    return ax


def accuracy_vs_bytes(rounds: pd.DataFrame, ax=None, direction: str = "up",
                      log: bool | None = None):
    """Test accuracy against the cumulative bytes sent ``direction`` (``"up"``: clients to
    server, ``"down"``: server to clients), one line per algorithm. ``log``: a logarithmic
    bytes axis; by default when the algorithms' totals differ more than tenfold (a quantized
    model next to fp32)."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    col = f"bytes_{direction}_cum"
    div, unit = bytes_unit(rounds[col].max() if len(rounds) else 0)
    ax = _lines(rounds, col, axes(ax), div)
    if log is None:
        totals = rounds.groupby("algorithm")[col].max()
        log = bool(len(totals) > 1 and totals.min() > 0 and totals.max() > 10 * totals.min())
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    word = "uplink" if direction == "up" else "downlink"
    ax.set(xlabel=f"{word} bytes, cumulative ({unit})", ylabel="test accuracy",
           title=f"accuracy vs {word} bytes")
    return ax


def accuracy_vs_time(rounds: pd.DataFrame, ax=None):
    """Test accuracy against simulated SIN time, one line per algorithm."""
    div, unit = time_unit(rounds.sim_end_s.max() if len(rounds) else 0)
    ax = _lines(rounds, "sim_end_s", axes(ax), div)
    ax.set(xlabel=f"simulated time ({unit})", ylabel="test accuracy",
           title="accuracy vs SIN time")
    return ax


def _grouped_bars(ax, rounds_index: np.ndarray, series: list[tuple[str, np.ndarray, dict]]):
    """Bars of several series side by side at each round."""
    width = 0.8 / max(len(series), 1)
    for i, (label, values, style) in enumerate(series):
        ax.bar(rounds_index + (i - (len(series) - 1) / 2) * width, values, width, label=label,
               **style)
    ax.set_xticks(rounds_index)
    _headroom(ax)


def _headroom(ax, factor: float = 1.35):
    """Room above bars for the legend."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, bottom + (top - bottom) * factor)


def bytes_per_round(rounds: pd.DataFrame, ax=None):
    """Bytes sent up (solid) and down (hatched) in each round, bars grouped by algorithm."""
    ax = axes(ax)
    palette = colors(rounds.algorithm)
    div, unit = bytes_unit(max(rounds.bytes_up.max(), rounds.bytes_down.max())
                            if len(rounds) else 0)
    index = np.sort(rounds["round"].unique())
    series = []
    for name, r in rounds.groupby("algorithm"):
        r = r.set_index("round").reindex(index)
        series.append((f"{name} up", r.bytes_up.to_numpy() / div, {"color": palette[name]}))
        series.append((f"{name} down", r.bytes_down.to_numpy() / div,
                       {"color": palette[name], "alpha": 0.45, "hatch": "//"}))
    _grouped_bars(ax, index, series)
    ax.set(xlabel="round", ylabel=f"bytes per round ({unit})", title="bytes per round")
    ax.legend(fontsize="small", loc="upper left", ncols=2)
    return ax


def round_durations(rounds: pd.DataFrame, ax=None):
    """Simulated duration of every round, one bar per algorithm."""
    ax = axes(ax)
    palette = colors(rounds.algorithm)
    div, unit = time_unit(rounds.round_duration_s.max() if len(rounds) else 0)
    index = np.sort(rounds["round"].unique())
    _grouped_bars(ax, index, [
        (name, r.set_index("round").reindex(index).round_duration_s.to_numpy() / div,
         {"color": palette[name]}) for name, r in rounds.groupby("algorithm")])
    ax.set(xlabel="round", ylabel=f"duration ({unit})", title="simulated round duration")
    ax.legend(fontsize="small", loc="upper left", ncols=3)
    return ax


PARTS = (("wait_s", "waiting (pass, pause, propagation)", "#9ecae1"),
         ("transmit_s", "transmitting", "#3182bd"),
         ("compute_s", "computing", "#e6550d"))


_DURATION_TICKS_S = (1e-3, 1e-2, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0,
                     7 * 86400.0)


def _duration_label(seconds: float, _pos=None) -> str:
    """A time on a log axis as people say it: 10 ms, 2 s, 5 min, 3 h, 2 d."""
    for div, unit in ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"),
                      (1e-6, "µs")):
        if seconds >= div:
            return f"{seconds / div:g} {unit}"
    return f"{seconds:g} s"


def round_time_split(breakdown: pd.DataFrame, ax=None):
    """Where a round's time goes: per round and algorithm, the mean time an averaged client
    spent waiting, transmitting and computing, side by side on a logarithmic time axis (seconds
    of transmitting and computing stay readable beside hours of waiting; hatches tell
    algorithms apart); a black tick marks the round's duration. ``breakdown`` is
    :func:`sinsim.studies.analysis.round_time_breakdown` (or ``round_time_breakdown_of``)."""
    ax = axes(ax)
    parts = [p for p, _, _ in PARTS]
    b = breakdown.fillna({p: 0.0 for p in parts})
    index = np.sort(b["round"].unique())
    algorithms = sorted(b.algorithm.unique())
    hatches = ["", "//", "..", "xx", "\\\\", "++"]
    group = 0.8 / max(len(algorithms), 1)
    width = group / len(PARTS)
    positive = b[parts + ["round_duration_s"]].to_numpy(float)
    positive = positive[positive > 0]
    floor = positive.min() / 3 if positive.size else 1e-3
    for i, name in enumerate(algorithms):
        r = b[b.algorithm == name].set_index("round").reindex(index).fillna(0.0)
        x = index + (i - (len(algorithms) - 1) / 2) * group
        for j, (part, _, color) in enumerate(PARTS):
            ax.bar(x + (j - 1) * width, r[part].to_numpy(), width, bottom=floor, color=color,
                   edgecolor="white", hatch=hatches[i % len(hatches)])
        ax.scatter(x, r.round_duration_s.to_numpy(), marker="_", s=200, color="black",
                   zorder=3)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(FixedLocator(_DURATION_TICKS_S))
    ax.yaxis.set_major_formatter(FuncFormatter(_duration_label))
    ax.yaxis.set_minor_formatter(NullFormatter())
    handles = [Patch(color=c, label=label) for _, label, c in PARTS]
    handles.append(plt.Line2D([], [], marker="_", ls="", color="black", ms=12,
                              label="round duration"))
    if len(algorithms) > 1:
        handles += [Patch(facecolor="white", edgecolor="grey", hatch=hatches[i % len(hatches)],
                          label=name) for i, name in enumerate(algorithms)]
    ax.set_xticks(index)
    bottom, top = ax.get_ylim()
    ax.set_ylim(floor, top * 30)  # room for the legend on the log axis
    ax.legend(handles=handles, fontsize="x-small", loc="upper left", ncols=2)
    ax.set(xlabel="round", ylabel="mean time per averaged client (log scale)",
           title="where a round's time goes")
    return ax


def _round_marks(ax, rounds: pd.DataFrame, div: float, palette: dict) -> list:
    """A dashed vertical line where each round of each algorithm starts, numbered on top;
    legend handles."""
    for name, r in rounds.groupby("algorithm"):
        for row in r.itertuples(index=False):
            ax.axvline(row.sim_start_s / div, color=palette.get(name, "grey"), lw=0.7,
                       ls="--", alpha=0.6, zorder=0)
        if name == min(rounds.algorithm):
            for row in r.itertuples(index=False):
                ax.annotate(f"r{row.round}", (row.sim_start_s / div, 1.0),
                            xycoords=("data", "axes fraction"), fontsize="xx-small",
                            xytext=(2, 2), textcoords="offset points")
    return [plt.Line2D([], [], color="grey", lw=0.7, ls="--", label="round start")]


def contact_timeline(contacts: pd.DataFrame, ax=None, max_clients: int = 30,
                     clients: Sequence[str] | None = None, transfers: pd.DataFrame | None = None,
                     rounds: pd.DataFrame | None = None):
    """Gantt chart of the contact windows: one row per client (at most ``max_clients``, taken
    from ``clients`` when given, else in id order), one bar per window, coloured by server.
    With ``transfers``, each transfer of a drawn client is overlaid from when it started to
    send (after ``wait_s``: the pass, the pause) to its end, in its algorithm's colour, with a
    marker where sending began (v down, ^ up, x not delivered). With ``rounds``, a dashed line
    marks where each round starts (in its algorithm's colour) and the time axis ends with the
    run rather than the contact plan's horizon."""
    ax = axes(ax, figsize=(7, 0.6 + 0.22 * min(max_clients, max(contacts.client.nunique(), 1))))
    every = sorted(contacts.client.unique())
    order = [c for c in (clients if clients is not None else every) if c in set(every)]
    shown = order[:max_clients]
    rows = {c: i for i, c in enumerate(shown)}
    c = contacts[contacts.client.isin(rows)]
    end = max(c.end_s.max() if len(c) else 0,
              transfers.end_s.max() if transfers is not None and len(transfers) else 0)
    run_end = max(rounds.sim_end_s.max(), transfers.end_s.max() if transfers is not None
                  and len(transfers) else 0.0) if rounds is not None and len(rounds) else None
    div, unit = time_unit(run_end or end)
    palette = colors(contacts.server)
    for server, w in c.groupby("server"):
        for client, cw in w.groupby("client"):
            ax.broken_barh(list(zip(cw.start_s / div, cw.duration_s / div)),
                           (rows[client] - 0.35, 0.7), color=palette[server], alpha=0.5)
    handles = [Patch(color=palette[s], alpha=0.5, label=f"window to {s}")
               for s in sorted(palette)]
    algorithms = sorted(set(transfers.algorithm if transfers is not None else ())
                        | set(rounds.algorithm if rounds is not None else ()))
    alg_colors = dict(zip(algorithms, ("black", "crimson", "darkorange", "purple", "teal",
                                       "olive") * 4))
    if transfers is not None and len(transfers):
        t = transfers[transfers.client.isin(rows)]
        wait = t["wait_s"].fillna(0.0) if "wait_s" in t else 0.0
        sending = np.minimum(t.start_s + wait, t.end_s)
        offset = np.where(t.direction == "down", -0.12, 0.12)
        y = t.client.map(rows).to_numpy() + offset
        color = t.algorithm.map(alg_colors).to_numpy()
        ax.hlines(y, sending / div, t.end_s / div, color=color, lw=1.5)
        for (direction, delivered), g in t.groupby([t.direction, t.status == "delivered"]):
            marker = ("v" if direction == "down" else "^") if delivered else "x"
            ax.scatter(sending[g.index] / div, y[t.index.get_indexer(g.index)], marker=marker,
                       s=14, color=g.algorithm.map(alg_colors), zorder=3, lw=1)
        handles += [plt.Line2D([], [], color=alg_colors[a], lw=1.5, label=a)
                    for a in sorted(set(t.algorithm))]
        handles += [plt.Line2D([], [], color="grey", marker=m, ls="", label=label)
                    for m, label in (("v", "download sent"), ("^", "upload sent"),
                                     ("x", "not delivered"))]
    if rounds is not None and len(rounds):
        handles += _round_marks(ax, rounds, div, alg_colors)
        ax.set_xlim(-0.02 * run_end / div, 1.05 * run_end / div)  # the run, not the horizon
    ax.set_yticks(range(len(shown)), shown, fontsize="x-small")
    ax.set_ylim(len(shown) - 0.5, -0.5)
    more = f" ({len(shown)} of {len(every)} clients)" if len(shown) < len(every) else ""
    ax.set(xlabel=f"simulated time ({unit})", title=f"contact windows and transfers{more}")
    if handles:
        ax.legend(handles=handles, fontsize="x-small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    return ax


def _even_pick(items: list, n: int) -> list:
    """At most ``n`` items spread evenly over the list (so every plane of a shell shows)."""
    if len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def ground_tracks(satellites: Sequence, nodes: pd.DataFrame | None = None, ax=None,
                  start: datetime | None = None, orbits: float = 1.5,
                  max_satellites: int = 12, step_s: float = 30.0):
    """Ground tracks of ``satellites`` (:class:`sinsim.space.Satellite`:
    :func:`sinsim.studies.tables.load_tles`) over ``orbits`` revolutions from ``start`` (default:
    each satellite's epoch), at most ``max_satellites`` spread over the list, with the ground
    stations and UAVs of ``nodes`` (nodes.csv) as markers. Server satellites (``role`` server in
    nodes.csv) are drawn thick. Nodes without a TLE (UAVs) have no track. Coastlines (Natural
    Earth 1:110m, shipped: :mod:`sinsim.studies.coastlines`) are drawn underneath."""
    ax = axes(ax, figsize=(8, 4.2))
    ax.add_collection(LineCollection(coastlines(), colors="#9a9a9a", linewidths=0.6, zorder=0,
                                     label="_coastlines"))
    nodes = nodes if nodes is not None else pd.DataFrame(columns=["id", "kind", "role"])
    servers = set(nodes.id[nodes.role == "server"]) if "role" in nodes.columns else set()
    shown = _even_pick([s for s in satellites if s.id not in servers], max_satellites)
    shown += [s for s in satellites if s.id in servers]
    for sat in shown:
        _, lat, lon = ground_track(sat, start, orbits=orbits, step_s=step_s)
        jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180) + 1  # break the line at the dateline
        lat, lon = np.insert(lat, jumps, np.nan), np.insert(lon, jumps, np.nan)
        server = sat.id in servers
        ax.plot(lon, lat, lw=2.0 if server else 0.8, alpha=1.0 if server else 0.7,
                color="crimson" if server else None, label=f"{sat.id} (server)" if server
                else None)
    for kind, marker, color in (("ground_station", "^", "black"), ("uav", "v", "darkgreen")):
        n = nodes[(nodes.kind == kind) & nodes.lat_deg.notna()] if len(nodes) else nodes
        if len(n):
            ax.scatter(n.lon_deg, n.lat_deg, marker=marker, s=40, color=color, zorder=3,
                       label=kind.replace("_", " ") + "s")
            if len(n) <= 10:
                for _, row in n.iterrows():
                    ax.annotate(row.id, (row.lon_deg, row.lat_deg), fontsize="x-small",
                                xytext=(3, 3), textcoords="offset points")
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude (deg)", ylabel="latitude (deg)",
           xticks=range(-180, 181, 60), yticks=range(-90, 91, 30), aspect="equal")
    ax.grid(alpha=0.3)
    more = f"{len(shown)} of {len(satellites)}" if len(shown) < len(satellites) else len(shown)
    ax.set_title(f"ground tracks of {more} satellites, {orbits:g} orbits")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small", loc="lower left")
    return ax


# ------------------------------------------------------------------------------ writing files
def _single(draw: Callable) -> Callable:
    def build(tables: dict):
        fig, (ax,) = figure()
        draw(tables["rounds"], ax)
        return fig
    return build


def _bytes_figure(tables: dict) -> Figure:
    fig, (up, down) = figure((10, 3.6), ncols=2)
    accuracy_vs_bytes(tables["rounds"], up, "up")
    accuracy_vs_bytes(tables["rounds"], down, "down")
    return fig


def _time_split_figure(tables: dict) -> Figure:
    fig, (ax,) = figure()
    round_time_split(round_time_breakdown_of(tables["rounds"], tables["transfers"],
                                             tables["clients"]), ax)
    return fig


def _involved_first(tables: dict) -> list[str] | None:
    if "transfers" not in tables:
        return None
    involved = sorted(tables["transfers"].client.unique())
    return involved + sorted(set(tables["contacts"].client) - set(involved))


def _timeline_figure(tables: dict, max_clients: int = 30) -> Figure:
    contacts = tables["contacts"]
    n = min(max_clients, max(contacts.client.nunique(), 1))
    fig, (ax,) = figure((9.5, 1.2 + 0.22 * n))
    contact_timeline(contacts, ax, max_clients, _involved_first(tables), tables.get("transfers"),
                     tables.get("rounds"))
    return fig


# name -> (tables it needs, builder); the files are <name>.<format>
FIGURES: dict[str, tuple[tuple[str, ...], Callable[[dict], Figure]]] = {
    "accuracy_vs_round": (("rounds",), _single(accuracy_vs_round)),
    "accuracy_vs_bytes": (("rounds",), _bytes_figure),
    "accuracy_vs_time": (("rounds",), _single(accuracy_vs_time)),
    "bytes_per_round": (("rounds",), _single(bytes_per_round)),
    "round_durations": (("rounds",), _single(round_durations)),
    "round_time_split": (("rounds", "transfers", "clients"), _time_split_figure),
    "contact_timeline": (("contacts",), _timeline_figure),
}


def plot_results(results_dir: str | Path, out_dir: str | Path | None = None,
                 formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write every figure the directory's tables allow, in every format, into ``out_dir``
    (default: beside the tables) and return the paths written. A sweep directory (one with
    runs.csv) gets :func:`sinsim.studies.sweep_plots.plot_sweep` instead. Raises
    :class:`~sinsim.studies.tables.MissingTable` (a ``FileNotFoundError``) when the directory
    is missing or holds no sinsim tables, ``ValueError`` for a format matplotlib cannot write."""
    d = results_path(results_dir)
    check_formats(formats)
    if is_sweep(d):
        return plot_sweep(d, out_dir, formats)
    tables = load_results(d)
    has_tle = (d / "nodes.tle").is_file()
    if "rounds" not in tables and "contacts" not in tables and not has_tle:
        raise MissingTable(f"{d}: no rounds.csv, contacts.csv, nodes.tle or runs.csv "
                           "(is this a sinsim results directory?)")
    out = Path(out_dir) if out_dir else d
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (needs, build) in FIGURES.items():
        if all(t in tables for t in needs):
            written += save(build(tables), out, name, formats)
    if has_tle:
        satellites = load_tles(d)
        if satellites:
            fig, (ax,) = figure((9, 4.8))
            ground_tracks(satellites, tables.get("nodes"), ax, start=run_start(d))
            written += save(fig, out, "ground_tracks", formats)
    return written
