"""Standard figures of a results directory or a sweep. Reads only the output tables (never the
simulator).

    python -m sinsim plot results/leo_walker        # PNG and PDF files beside the tables
    python -m sinsim plot results/my_sweep          # a sweep directory (runs.csv)

Every figure function takes tables (pandas DataFrames, as written by a run) and an optional
matplotlib ``ax`` and returns the axes it drew on, so notebooks can lay figures out as they
like. :func:`plot_results` writes every figure that a directory's tables allow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from sinsim.studies.analysis import round_time_breakdown_of, sweep_stats, swept_keys

__all__ = [
    "load_table", "load_rounds", "load_results", "load_tles", "load_sweep", "sweep_keys",
    "accuracy_vs_round", "accuracy_vs_bytes", "accuracy_vs_time", "bytes_per_round",
    "round_durations", "round_time_split", "contact_timeline", "ground_tracks", "sweep_metric",
    "plot_results", "plot_sweep", "SWEEP_METRICS",
]

TABLES = ("rounds", "transfers", "clients", "contacts", "nodes")
FIGSIZE = (5.5, 3.6)


# ---------------------------------------------------------------------------------- loaders
def _results_path(results_dir: str | Path) -> Path:
    d = Path(results_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such results directory")
    return d


def load_table(results_dir: str | Path, name: str) -> pd.DataFrame:
    """``results_dir/<name>.csv`` as a DataFrame (``name`` is e.g. ``"transfers"``)."""
    path = _results_path(results_dir) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {name}.csv (is this a sinsim results directory?)")
    return pd.read_csv(path)


def load_rounds(results_dir: str | Path) -> pd.DataFrame:
    return load_table(results_dir, "rounds")


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The tables a results directory holds, by name (``rounds``, ``transfers``, ``clients``,
    ``contacts``, ``nodes``); missing ones are left out."""
    d = _results_path(results_dir)
    return {name: pd.read_csv(d / f"{name}.csv") for name in TABLES
            if (d / f"{name}.csv").is_file()}


def load_tles(results_dir: str | Path) -> list:
    """The satellites of ``results_dir/nodes.tle`` as Skyfield ``EarthSatellite`` objects
    (offline: Skyfield's built-in timescale)."""
    from skyfield.api import load
    from skyfield.iokit import parse_tle_file

    path = _results_path(results_dir) / "nodes.tle"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no nodes.tle")
    ts = load.timescale(builtin=True)
    return list(parse_tle_file(BytesIO(path.read_bytes()), ts))


def _run_start(results_dir: Path) -> datetime | None:
    """The scenario's ``start`` from summary.json, if the directory has one."""
    try:
        start = json.loads((results_dir / "summary.json").read_text())["resolved_scenario"]["start"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(start, str):
        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if isinstance(start, datetime) and start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return start if isinstance(start, datetime) else None


def load_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """``sweep_dir/runs.csv``: one row per (run_id, algorithm, round) with ``seed`` and one
    column per swept key path."""
    path = _results_path(sweep_dir) / "runs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no runs.csv (is this a sinsim sweep directory?)")
    return pd.read_csv(path)


def sweep_keys(sweep_dir: str | Path, runs: pd.DataFrame | None = None) -> list[str]:
    """The swept keys of a sweep directory: the key-path columns of runs.csv (``training.lr``),
    plus those that the sweep's description ``sweep.json`` lists (its ``keys``, or the keys of
    its ``grid`` and ``zip``), which may have no '.' (``algorithms``)."""
    d = Path(sweep_dir)
    runs = load_sweep(d) if runs is None else runs
    listed: list[str] = []
    try:
        meta = json.loads((d / "sweep.json").read_text())
    except (OSError, ValueError):
        meta = None
    if isinstance(meta, dict):
        for field in ("keys", "grid", "zip"):
            if isinstance(meta.get(field), dict | list):
                listed += [str(k) for k in meta[field]]
    return [k for k in swept_keys(runs, listed) if k in runs.columns]


# ---------------------------------------------------------------------------------- helpers
def _ax(ax, figsize=FIGSIZE):
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _colors(names: Iterable[str]) -> dict[str, tuple]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return {n: cycle[i % len(cycle)] for i, n in enumerate(sorted(set(names)))}


def _time_unit(max_s: float) -> tuple[float, str]:
    """A divisor and a label that keep simulated times readable."""
    for div, label in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
        if max_s >= 2 * div:
            return div, label
    return 1.0, "s"


def _bytes_unit(max_bytes: float) -> tuple[float, str]:
    for div, label in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if max_bytes >= div:
            return div, label
    return 1.0, "B"


def _lines(rounds: pd.DataFrame, x: str, ax, xdiv: float = 1.0, y: str = "test_accuracy"):
    colors = _colors(rounds.algorithm)
    for name, r in rounds.sort_values("round").groupby("algorithm"):
        ax.plot(r[x] / xdiv, r[y], marker="o", ms=3, label=name, color=colors[name])
    if rounds.algorithm.nunique():
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# ------------------------------------------------------------------------------ run figures
def accuracy_vs_round(rounds: pd.DataFrame, ax=None):
    """Test accuracy after each round, one line per algorithm."""
    ax = _lines(rounds, "round", _ax(ax))
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
    div, unit = _bytes_unit(rounds[col].max() if len(rounds) else 0)
    ax = _lines(rounds, col, _ax(ax), div)
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
    div, unit = _time_unit(rounds.sim_end_s.max() if len(rounds) else 0)
    ax = _lines(rounds, "sim_end_s", _ax(ax), div)
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
    ax = _ax(ax)
    colors = _colors(rounds.algorithm)
    div, unit = _bytes_unit(max(rounds.bytes_up.max(), rounds.bytes_down.max())
                            if len(rounds) else 0)
    index = np.sort(rounds["round"].unique())
    series = []
    for name, r in rounds.groupby("algorithm"):
        r = r.set_index("round").reindex(index)
        series.append((f"{name} up", r.bytes_up.to_numpy() / div, {"color": colors[name]}))
        series.append((f"{name} down", r.bytes_down.to_numpy() / div,
                       {"color": colors[name], "alpha": 0.45, "hatch": "//"}))
    _grouped_bars(ax, index, series)
    ax.set(xlabel="round", ylabel=f"bytes per round ({unit})", title="bytes per round")
    ax.legend(fontsize="small", loc="upper left", ncols=2)
    return ax


def round_durations(rounds: pd.DataFrame, ax=None):
    """Simulated duration of every round, one bar per algorithm."""
    ax = _ax(ax)
    colors = _colors(rounds.algorithm)
    div, unit = _time_unit(rounds.round_duration_s.max() if len(rounds) else 0)
    index = np.sort(rounds["round"].unique())
    _grouped_bars(ax, index, [
        (name, r.set_index("round").reindex(index).round_duration_s.to_numpy() / div,
         {"color": colors[name]}) for name, r in rounds.groupby("algorithm")])
    ax.set(xlabel="round", ylabel=f"duration ({unit})", title="simulated round duration")
    ax.legend(fontsize="small", loc="upper left", ncols=3)
    return ax


PARTS = (("wait_s", "waiting (pass, pause, propagation)", "#9ecae1"),
         ("transmit_s", "transmitting", "#3182bd"),
         ("compute_s", "computing", "#e6550d"))


def round_time_split(breakdown: pd.DataFrame, ax=None):
    """Where a round's time goes: stacked bars of the mean time an averaged client spent
    waiting, transmitting and computing, per round and algorithm (hatches tell algorithms
    apart); a black tick marks the round's duration. ``breakdown`` is
    :func:`sinsim.studies.analysis.round_time_breakdown` (or ``round_time_breakdown_of``)."""
    ax = _ax(ax)
    b = breakdown.fillna({p: 0.0 for p, _, _ in PARTS})
    top = max(b.round_duration_s.max(), b[[p for p, _, _ in PARTS]].sum(axis=1).max()) \
        if len(b) else 0
    div, unit = _time_unit(top)
    index = np.sort(b["round"].unique())
    algorithms = sorted(b.algorithm.unique())
    hatches = ["", "//", "..", "xx", "\\\\", "++"]
    width = 0.8 / max(len(algorithms), 1)
    for i, name in enumerate(algorithms):
        r = b[b.algorithm == name].set_index("round").reindex(index).fillna(0.0)
        x = index + (i - (len(algorithms) - 1) / 2) * width
        bottom = np.zeros(len(index))
        for part, _, color in PARTS:
            values = r[part].to_numpy() / div
            ax.bar(x, values, width, bottom=bottom, color=color, edgecolor="white",
                   hatch=hatches[i % len(hatches)])
            bottom += values
        ax.scatter(x, r.round_duration_s.to_numpy() / div, marker="_", s=200, color="black",
                   zorder=3)
    handles = [Patch(color=c, label=label) for _, label, c in PARTS]
    handles.append(plt.Line2D([], [], marker="_", ls="", color="black", ms=12,
                              label="round duration"))
    if len(algorithms) > 1:
        handles += [Patch(facecolor="white", edgecolor="grey", hatch=hatches[i % len(hatches)],
                          label=name) for i, name in enumerate(algorithms)]
    ax.set_xticks(index)
    _headroom(ax, 1.5)
    ax.legend(handles=handles, fontsize="x-small", loc="upper left", ncols=2)
    ax.set(xlabel="round", ylabel=f"mean time per averaged client ({unit})",
           title="where a round's time goes")
    return ax


def contact_timeline(contacts: pd.DataFrame, ax=None, max_clients: int = 30,
                     clients: Sequence[str] | None = None, transfers: pd.DataFrame | None = None):
    """Gantt chart of the contact windows: one row per client (at most ``max_clients``, taken
    from ``clients`` when given, else in id order), one bar per window, coloured by server.
    With ``transfers``, each transfer of a drawn client is overlaid as a thin black line."""
    ax = _ax(ax, figsize=(7, 0.6 + 0.22 * min(max_clients, max(contacts.client.nunique(), 1))))
    every = sorted(contacts.client.unique())
    order = [c for c in (clients if clients is not None else every) if c in set(every)]
    shown = order[:max_clients]
    rows = {c: i for i, c in enumerate(shown)}
    c = contacts[contacts.client.isin(rows)]
    end = max(c.end_s.max() if len(c) else 0,
              transfers.end_s.max() if transfers is not None and len(transfers) else 0)
    div, unit = _time_unit(end)
    colors = _colors(contacts.server)
    for server, w in c.groupby("server"):
        for client, cw in w.groupby("client"):
            ax.broken_barh(list(zip(cw.start_s / div, cw.duration_s / div)),
                           (rows[client] - 0.35, 0.7), color=colors[server])
    handles = [Patch(color=colors[s], label=f"window to {s}") for s in sorted(colors)]
    if transfers is not None and len(transfers):
        t = transfers[transfers.client.isin(rows)]
        y = t.client.map(rows).to_numpy()
        ax.hlines(y, t.start_s / div, t.end_s / div, color="black", lw=1)
        handles.append(plt.Line2D([], [], color="black", lw=1, label="transfer"))
    ax.set_yticks(range(len(shown)), shown, fontsize="x-small")
    ax.set_ylim(len(shown) - 0.5, -0.5)
    more = f" ({len(shown)} of {len(every)} clients)" if len(shown) < len(every) else ""
    ax.set(xlabel=f"simulated time ({unit})", title=f"contact windows{more}")
    if handles:
        ax.legend(handles=handles, fontsize="x-small", loc="upper right")
    return ax


def _even_pick(items: list, n: int) -> list:
    """At most ``n`` items spread evenly over the list (so every plane of a shell shows)."""
    if len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def ground_tracks(satellites: Sequence, nodes: pd.DataFrame | None = None, ax=None,
                  start: datetime | None = None, orbits: float = 1.5,
                  max_satellites: int = 12, step_s: float = 30.0):
    """Ground tracks of ``satellites`` (Skyfield ``EarthSatellite``: :func:`load_tles`) over
    ``orbits`` revolutions from ``start`` (default: the first satellite's epoch), at most
    ``max_satellites`` spread over the list, with the ground stations and UAVs of ``nodes``
    (nodes.csv) as markers. Server satellites (``role`` server in nodes.csv) are drawn thick.
    Nodes without a TLE (UAVs) have no track."""
    from skyfield.api import load, wgs84

    ax = _ax(ax, figsize=(8, 4.2))
    ts = load.timescale(builtin=True)
    nodes = nodes if nodes is not None else pd.DataFrame(columns=["id", "kind", "role"])
    servers = set(nodes.id[nodes.role == "server"]) if "role" in nodes.columns else set()
    shown = _even_pick([s for s in satellites if s.name not in servers], max_satellites)
    shown += [s for s in satellites if s.name in servers]
    for sat in shown:
        t0 = ts.from_datetime(start) if start is not None else sat.epoch
        period_s = 2 * np.pi / sat.model.no_kozai * 60.0  # rad/min -> s
        seconds = np.arange(0.0, orbits * period_s + step_s, step_s)
        t = ts.tt_jd(t0.tt + seconds / 86400.0)
        sub = wgs84.subpoint_of(sat.at(t))
        lat, lon = sub.latitude.degrees, sub.longitude.degrees
        jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180) + 1  # break the line at the dateline
        lat, lon = np.insert(lat, jumps, np.nan), np.insert(lon, jumps, np.nan)
        server = sat.name in servers
        ax.plot(lon, lat, lw=2.0 if server else 0.8, alpha=1.0 if server else 0.7,
                color="crimson" if server else None, label=f"{sat.name} (server)" if server
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


# ---------------------------------------------------------------------------------- sweeps
SWEEP_METRICS = (  # (column, reduction over a run's rounds, label)
    ("test_accuracy", "last", "final test accuracy"),
    ("bytes_up_cum", "last", "uplink bytes, total"),
    ("round_duration_s", "mean", "mean round duration"),
)


def sweep_metric(runs: pd.DataFrame, key: str, metric: str = "test_accuracy",
                 reduce: str = "last", ax=None, keys: Iterable[str] | None = None,
                 label: str | None = None):
    """A run metric against a swept ``key``: the mean over seeds, with error bars of one
    standard deviation over seeds, one line per algorithm (and per value of any other swept
    key). ``runs`` is a sweep table (one row per run, algorithm and round, with ``run_id``,
    ``seed`` and one column per swept key); ``reduce`` says how a run's rounds give one value:
    ``"last"`` (final accuracy, total bytes) or a pandas aggregation such as ``"mean"``.
    Bytes (``bytes_*``) and seconds (``*_s``) are shown in a readable unit; a numeric key whose
    values span two decades or more gets a logarithmic axis."""
    ax = _ax(ax)
    keys = swept_keys(runs) if keys is None else list(keys)
    stats = sweep_stats(runs, key, metric, reduce, keys)
    top = float(np.nanmax(np.abs(stats["mean"]))) if len(stats) else 0.0
    div, unit = (_bytes_unit(top) if metric.startswith("bytes") else
                 _time_unit(top) if metric.endswith("_s") else (1.0, ""))
    stats[["mean", "std"]] = stats[["mean", "std"]] / div
    others = [k for k in keys if k != key]
    numeric = pd.api.types.is_numeric_dtype(stats[key])
    categories = sorted(stats[key].astype(str).unique())
    colors = _colors(stats.algorithm)
    groups = stats.groupby([*others, "algorithm"], sort=True) if others else \
        stats.groupby("algorithm", sort=True)
    for group, s in groups:
        group = group if isinstance(group, tuple) else (group,)
        name = group[-1]
        s = s.sort_values(key)
        x = s[key].to_numpy() if numeric else s[key].astype(str).map(categories.index)
        text = ", ".join([name, *(f"{k.rsplit('.', 1)[-1]}={v}"
                                  for k, v in zip(others, group[:-1]))])
        ax.errorbar(x, s["mean"], yerr=s["std"], marker="o", ms=4, capsize=3, label=text,
                    color=colors[name] if not others else None)
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    elif len(stats) and stats[key].min() > 0 and stats[key].max() >= 100 * stats[key].min():
        ax.set_xscale("log")
    elif stats[key].nunique() <= 10:
        ax.set_xticks(sorted(stats[key].unique()))
    seeds = int(runs.seed.nunique()) if "seed" in runs else 1
    label = label or f"{metric} ({reduce})"
    ax.set(xlabel=key, ylabel=f"{label} ({unit})" if unit else label)
    ax.set_title(f"{label}, {seeds} seed{'s' if seeds != 1 else ''}", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return ax


# ------------------------------------------------------------------------------ writing files
def _figure(figsize=FIGSIZE, ncols: int = 1) -> tuple[Figure, list]:
    """A figure without pyplot (no global state, no GUI backend): for files only."""
    fig = Figure(figsize=figsize)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _check_formats(formats: Sequence[str]) -> None:
    supported = Figure().canvas.get_supported_filetypes()
    bad = [f for f in formats if f not in supported]
    if bad or not formats:
        raise ValueError(f"cannot write figures as {', '.join(bad) or 'nothing'}; formats: "
                         f"{', '.join(sorted(supported))}")


def _save(fig: Figure, out: Path, name: str, formats: Sequence[str]) -> list[Path]:
    fig.tight_layout()
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        fig.savefig(path, dpi=120)
        paths.append(path)
    return paths


def _single(draw: Callable) -> Callable:
    def build(tables: dict):
        fig, (ax,) = _figure()
        draw(tables["rounds"], ax)
        return fig
    return build


def _bytes_figure(tables: dict) -> Figure:
    fig, (up, down) = _figure((10, 3.6), ncols=2)
    accuracy_vs_bytes(tables["rounds"], up, "up")
    accuracy_vs_bytes(tables["rounds"], down, "down")
    return fig


def _time_split_figure(tables: dict) -> Figure:
    fig, (ax,) = _figure()
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
    fig, (ax,) = _figure((8, 1.2 + 0.22 * n))
    contact_timeline(contacts, ax, max_clients, _involved_first(tables), tables.get("transfers"))
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
    runs.csv) gets :func:`plot_sweep` instead. Raises ``FileNotFoundError`` when the directory
    is missing or holds no sinsim tables."""
    d = _results_path(results_dir)
    _check_formats(formats)
    if (d / "runs.csv").is_file():
        return plot_sweep(d, out_dir, formats)
    tables = load_results(d)
    has_tle = (d / "nodes.tle").is_file()
    if "rounds" not in tables and "contacts" not in tables and not has_tle:
        raise FileNotFoundError(f"{d}: no rounds.csv, contacts.csv, nodes.tle or runs.csv "
                                "(is this a sinsim results directory?)")
    out = Path(out_dir) if out_dir else d
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (needs, build) in FIGURES.items():
        if all(t in tables for t in needs):
            written += _save(build(tables), out, name, formats)
    if has_tle:
        satellites = load_tles(d)
        if satellites:
            fig, (ax,) = _figure((9, 4.8))
            ground_tracks(satellites, tables.get("nodes"), ax, start=_run_start(d))
            written += _save(fig, out, "ground_tracks", formats)
    return written


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None,
               formats: Sequence[str] = ("png", "pdf"),
               metrics: Sequence[tuple[str, str, str]] = SWEEP_METRICS) -> list[Path]:
    """For every swept key of a sweep directory, one figure ``sweep_<key>`` with a panel per
    metric of ``metrics`` (:func:`sweep_metric`); returns the paths written."""
    d = _results_path(sweep_dir)
    _check_formats(formats)
    runs = load_sweep(d)
    keys = sweep_keys(d, runs)
    if not keys:
        raise FileNotFoundError(f"{d / 'runs.csv'}: no swept key columns (key paths such as "
                                "training.lr)")
    metrics = [m for m in metrics if m[0] in runs.columns]
    out = Path(out_dir) if out_dir else d
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for key in keys:
        fig, axes = _figure((4.6 * len(metrics), 3.6), ncols=len(metrics))
        for ax, (metric, reduce, label) in zip(axes, metrics):
            sweep_metric(runs, key, metric, reduce, ax, keys, label)
        written += _save(fig, out, f"sweep_{_safe(key)}", formats)
    return written
