"""The run's map for the web page: coastlines, stations, satellites and UAVs at the slider's
time, their ground tracks, the links that are up and the transfers in flight (a Plotly figure
with one animation frame per slider position; plain lon/lat line traces, so nothing is fetched).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from sinsim.studies.coastlines import coastline_xy
from sinsim.studies.view_data import Run, Scene, round_xy

__all__ = ["map_figure", "algorithm_colors", "MAP_DIV"]

MAP_DIV = "sinsim-map"
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")


def algorithm_colors(names) -> dict[str, str]:
    """One colour per algorithm, by sorted name (the map, timeline and curves agree)."""
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(sorted(set(names)))}


def _segments(sc: Scene, a: list[str], b: list[str], f: int) -> tuple[list, list]:
    """Lines from each node of ``a`` to the matching node of ``b`` at frame ``f``, as x/y lists
    with ``None`` between lines; a line across the antimeridian is drawn to both map edges."""
    xs: list = []
    ys: list = []
    for p, q in zip(a, b):
        x0, y0 = sc.lon[p][f], sc.lat[p][f]
        x1, y1 = sc.lon[q][f], sc.lat[q][f]
        if abs(x1 - x0) <= 180:
            xs += [x0, x1, None]
            ys += [y0, y1, None]
            continue
        edge = 180.0 if x0 > 0 else -180.0  # the edge on p's side
        x1w = x1 + 2 * edge  # q unwrapped beside p
        y_edge = y0 + (y1 - y0) * (edge - x0) / (x1w - x0)
        xs += [x0, edge, None, -edge, x1, None]
        ys += [y0, y_edge, None, y_edge, y1, None]
    return round_xy(xs), round_xy(ys)


def _active(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of the intervals that overlap ``[lo, hi]``."""
    return np.flatnonzero((start <= hi) & (end >= lo))


def _time_label(run: Run, t_s: float) -> str:
    utc = run.start_utc + timedelta(seconds=float(t_s))
    return f"{utc:%Y-%m-%d %H:%M} UTC (t = {t_s / 3600:.2f} h)"


def _scatter(**kwargs) -> dict:
    return {"type": "scatter", **kwargs}


def map_figure(run: Run, sc: Scene) -> dict:
    """The animated map as a Plotly figure dict (``data``, ``layout``, ``frames``; plain dicts
    because validating hundreds of frames through ``plotly.graph_objects`` takes seconds):
    static layers, then the moving ones that each frame updates."""
    cx, cy = coastline_xy()
    data = [_scatter(x=cx, y=cy, mode="lines", line={"color": "#8c8c8c", "width": 0.8},
                     name="coastlines", hoverinfo="skip")]
    tx: list = []
    ty: list = []
    uav_paths = [(sc.lat[i], sc.lon[i]) for i, k in sc.kind.items() if k == "uav" and i in sc.lat]
    for la, lo in [*sc.tracks.values(), *uav_paths]:  # UAVs: their path over the page's span
        jumps = np.flatnonzero(np.abs(np.diff(lo)) > 180) + 1
        tx += round_xy(np.insert(lo, jumps, np.nan)) + [None]
        ty += round_xy(np.insert(la, jumps, np.nan)) + [None]
    data.append(_scatter(x=tx, y=ty, mode="lines", name="ground tracks (satellites: one orbit)",
                         line={"color": "rgba(31,119,180,0.18)", "width": 0.7},
                         hoverinfo="skip"))
    stations = [i for i, k in sc.kind.items() if k == "ground_station" and i in sc.lat]
    data.append(_scatter(
        x=round_xy([sc.lon[i][0] for i in stations]),
        y=round_xy([sc.lat[i][0] for i in stations]),
        mode="markers+text", text=stations, textposition="top right", name="ground stations",
        marker={"symbol": "triangle-up", "size": 12, "color": "black"}))
    static = len(data)

    links = sc.links
    l_start, l_end = links.start_s.to_numpy(float), links.end_s.to_numpy(float)
    l_a, l_b = links.a.astype(str).to_numpy(), links.b.astype(str).to_numpy()
    moving: list[tuple[str, dict, callable]] = []

    def link_layer(kind: str, style: dict, name: str):
        sel = (links.kind == kind).to_numpy()

        def at(f: int, t: float) -> dict:
            i = _active(l_start, l_end, t, t)
            i = i[sel[i]]
            x, y = _segments(sc, l_a[i].tolist(), l_b[i].tolist(), f)
            return {"x": x, "y": y}
        moving.append((name, {"mode": "lines", "line": style, "hoverinfo": "skip"}, at))

    link_layer("ground", {"color": "rgba(44,160,44,0.8)", "width": 1.5}, "ground links up")
    if (links.kind == "isl").any():
        link_layer("isl", {"color": "rgba(148,103,189,0.35)", "width": 0.8},
                   "inter-satellite links up")

    tr = sc.transfers
    t_start, t_end = tr.start_s.to_numpy(float), tr.end_s.to_numpy(float)
    t_from, t_to = tr["from"].to_numpy(str), tr["to"].to_numpy(str)
    colors = algorithm_colors(run.tables["rounds"].algorithm if "rounds" in run.tables
                              else tr.algorithm)
    for alg in sorted(set(tr.algorithm)):
        for direction in ("down", "up"):
            sel = ((tr.algorithm == alg) & (tr.direction == direction)).to_numpy()
            if not sel.any():
                continue

            def at(f: int, t: float, sel=sel) -> dict:
                i = _active(t_start, t_end, t - sc.step_s / 2, t + sc.step_s / 2)
                i = i[sel[i]]
                x, y = _segments(sc, t_from[i].tolist(), t_to[i].tolist(), f)
                return {"x": x, "y": y}
            style = {"color": colors.get(alg, "black"), "width": 3.5 if direction == "up" else 2.5,
                     "dash": "solid" if direction == "up" else "dot"}
            moving.append((f"{alg} {direction}load", {"mode": "lines", "line": style,
                                                      "hoverinfo": "skip"}, at))

    def node_layer(ids: list[str], name: str, marker: dict):
        def at(f: int, t: float) -> dict:
            return {"x": round_xy([sc.lon[i][f] for i in ids]),
                    "y": round_xy([sc.lat[i][f] for i in ids]), "text": ids}
        moving.append((name, {"mode": "markers", "marker": marker, "hoverinfo": "text"}, at))

    sats = [i for i in sc.tracks if sc.role.get(i) != "server"]
    server_sats = [i for i in sc.tracks if sc.role.get(i) == "server"]
    uavs = [i for i, k in sc.kind.items() if k == "uav" and i in sc.lat]
    if sats:
        node_layer(sats, "satellites", {"size": 6, "color": "#1f77b4"})
    if server_sats:
        node_layer(server_sats, "server satellites", {"size": 10, "color": "crimson",
                                                      "symbol": "diamond"})
    if uavs:
        node_layer(uavs, "UAVs", {"size": 8, "color": "darkgreen", "symbol": "triangle-down"})

    for name, style, at in moving:
        data.append(_scatter(name=name, **style, **at(0, float(sc.times_s[0]))))
    indices = list(range(static, static + len(moving)))
    frames = []
    steps = []
    for f, t in enumerate(sc.times_s):
        frames.append({"name": str(f), "traces": indices,
                       "data": [_scatter(**at(f, float(t))) for _, _, at in moving]})
        steps.append({"method": "animate", "label": _time_label(run, t),
                      "args": [[str(f)], {"mode": "immediate", "frame": {"duration": 0,
                               "redraw": False}, "transition": {"duration": 0}}]})
    play = {"frame": {"duration": 120, "redraw": False}, "fromcurrent": True,
            "transition": {"duration": 0}}
    layout = dict(
        title={"text": "the run on a map: positions at the slider's time; transfers in flight "
                       f"within ± {sc.step_s / 2:g} s", "y": 0.99, "yanchor": "top"},
        height=680, margin={"l": 50, "r": 10, "t": 90, "b": 10},
        xaxis={"range": [-180, 180], "title": "longitude (deg)", "dtick": 60,
               "showgrid": True, "zeroline": False, "constrain": "domain"},
        yaxis={"range": [-90, 90], "title": "latitude (deg)", "dtick": 30,
               "scaleanchor": "x", "zeroline": False, "constrain": "domain"},
        legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": -0.06,
                      "xanchor": "left", "yanchor": "top", "direction": "left",
                      "pad": {"t": 0, "r": 10}, "buttons": [
                          {"label": "play", "method": "animate", "args": [None, play]},
                          {"label": "pause", "method": "animate", "args": [[None], {
                              "mode": "immediate", "frame": {"duration": 0, "redraw": False},
                              "transition": {"duration": 0}}]}]}],
        sliders=[{"active": 0, "steps": steps, "x": 0.14, "len": 0.86, "y": -0.02,
                  "pad": {"t": 10}, "font": {"color": "rgba(0,0,0,0)", "size": 1},
                  "ticklen": 0, "minorticklen": 0,
                  "currentvalue": {"prefix": "time: ", "font": {"size": 13, "color": "#222"}}}])
    return {"data": data, "layout": layout, "frames": frames}
