"""What the run's web page shows, as plain arrays (:mod:`sinsim.studies.view` draws them).

Reads only a results directory: ``nodes.csv`` and ``nodes.tle`` (satellites are propagated
again from their exported TLEs, as the static ground-track figure does), ``links.csv`` or
``contacts.csv`` (the links that are up), ``hops.csv`` or ``transfers.csv`` (the transfers in
flight), ``rounds.csv`` / ``clients.csv`` (the timeline and curves) and ``summary.json``. A
partial run (failed, killed, or a ``contacts`` export) gives what its tables hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from sinsim.space.nodes import UAV
from sinsim.space.timebase import Timebase
from sinsim.space.tracks import orbit_period_s, subpoints
from sinsim.studies.tables import MissingTable, load_results, load_summary, load_tles, run_start

__all__ = ["Run", "Scene", "load_run", "frame_times", "scene", "MAX_FRAMES", "MAX_SATELLITES",
           "MIN_STEP_S"]

MAX_FRAMES = 720  # slider positions: page size grows with frames x drawn nodes and links
MAX_SATELLITES = 300  # satellites drawn; more are thinned (starlink_scale: every one that
#                       carried a model, the rest spread evenly over the list)
MIN_STEP_S = 30.0
_NICE_STEPS_S = (30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200,
                 86400)
_ROUND_DEG = 2  # decimals of positions on the page (~1 km)


@dataclass
class Run:
    """A results directory's tables, as the page needs them."""

    path: Path
    tables: dict[str, pd.DataFrame]
    summary: dict
    start_utc: datetime
    satellites: list
    uavs: list[UAV]
    notes: list[str] = field(default_factory=list)  # what the page could not show, or thinned

    @property
    def nodes(self) -> pd.DataFrame:
        return self.tables["nodes"]


def _links(tables: dict) -> pd.DataFrame:
    """Every window of every link pair: ``a, b, kind, start_s, end_s`` (links.csv, else the
    ground windows of contacts.csv)."""
    if "links" in tables:
        return tables["links"][["a", "b", "kind", "start_s", "end_s"]]
    c = tables["contacts"]
    return pd.DataFrame({"a": c.client, "b": c.server, "kind": "ground", "start_s": c.start_s,
                         "end_s": c.end_s})


def _start_from_contacts(contacts: pd.DataFrame) -> datetime | None:
    """The run's start from a contact window's UTC start and its sim seconds (whole second)."""
    if not len(contacts) or "start_utc" not in contacts:
        return None
    first = contacts.iloc[0]
    utc = datetime.fromisoformat(str(first.start_utc).replace("Z", "+00:00"))
    start = utc - timedelta(seconds=float(first.start_s))
    return start.replace(microsecond=0) + timedelta(seconds=round(start.microsecond / 1e6))


def _uavs(summary: dict) -> list[UAV]:
    """The UAVs of the resolved scenario in summary.json (clients and server)."""
    scenario = summary.get("resolved_scenario") or {}
    specs = list((scenario.get("clients") or {}).get("uavs") or [])
    server = (scenario.get("server") or {}).get("uav")
    specs += [server] if server else []
    uavs = []
    for s in specs:
        if s.get("loiter"):
            uavs.append(UAV(s["id"], s["altitude_m"], s["speed_mps"],
                            loiter_center=(s["loiter"]["lat_deg"], s["loiter"]["lon_deg"]),
                            loiter_radius_m=s["loiter"]["radius_m"]))
        else:
            uavs.append(UAV(s["id"], s["altitude_m"], s["speed_mps"],
                            waypoints=[tuple(w) for w in s["waypoints"]]))
    return uavs


def load_run(results_dir: str | Path) -> Run:
    """The run in ``results_dir``; :class:`MissingTable` (bad input, exit 2) naming what is
    missing when it is not a run or has no contact plan or nodes."""
    d = Path(results_dir)
    if not d.is_dir():
        raise MissingTable(f"{d}: no such results directory")
    tables = load_results(d)
    for extra in ("links", "hops"):
        if (d / f"{extra}.csv").is_file():
            tables[extra] = pd.read_csv(d / f"{extra}.csv")
    has_summary = (d / "summary.json").is_file()
    if not tables and not has_summary:
        raise MissingTable(f"{d}: not a sinsim results directory (no summary.json, rounds.csv, "
                           "contacts.csv or nodes.csv)")
    missing = [f"{t}.csv" for t in ("contacts", "nodes") if t not in tables]
    if missing:
        raise MissingTable(
            f"{d}: no {' or '.join(missing)}: the page draws the run's contact plan and nodes "
            "(runs of satellite or UAV clients write them; abstract clients (clients.count) "
            "have none)")
    summary = load_summary(d) if has_summary else {}
    notes = []
    if not has_summary:
        notes.append("no summary.json (a contacts-only export or an unfinished run)")
    elif summary.get("status") not in (None, "complete"):
        notes.append(f"the run's status is {summary.get('status')!r}: showing what it wrote")
    start = run_start(d) or _start_from_contacts(tables["contacts"])
    if start is None:
        raise MissingTable(f"{d}: cannot tell the run's start: no summary.json and no contact "
                           "windows")
    satellites = load_tles(d) if (d / "nodes.tle").is_file() else []
    if not satellites and (tables["nodes"].kind == "satellite").any():
        notes.append("no nodes.tle: satellites are not drawn")
    uavs = _uavs(summary)
    if not uavs and (tables["nodes"].kind == "uav").any():
        notes.append("UAVs drawn at their nodes.csv positions (no summary.json to fly them)")
    return Run(d, tables, summary, start, satellites, uavs, notes)


def span_s(run: Run) -> float:
    """The time the page covers: to the end of the last round (or transfer), else the contact
    plan's horizon."""
    t = run.tables
    ends = [t["rounds"].sim_end_s.max() if "rounds" in t and len(t["rounds"]) else 0.0,
            t["transfers"].end_s.max() if "transfers" in t and len(t["transfers"]) else 0.0]
    end = max(ends)
    if not end > 0:
        horizon = (run.summary.get("resolved_scenario") or {}).get("horizon")
        end = float(horizon) if horizon else float(_links(t).end_s.max() or 0.0)
    return max(end, MIN_STEP_S)


def frame_times(span: float, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Slider times (s): from 0 to past ``span`` at the smallest round step that gives at most
    ``max_frames`` positions."""
    need = span / max(max_frames - 1, 1)
    step = next((s for s in _NICE_STEPS_S if s >= max(need, MIN_STEP_S)),
                math.ceil(need / 86400) * 86400)
    return np.arange(0.0, span + step, step)


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


@dataclass
class Scene:
    """Positions and events sampled at the slider's times."""

    times_s: np.ndarray
    step_s: float
    lat: dict[str, np.ndarray]  # node id -> latitude per frame (stations: constant)
    lon: dict[str, np.ndarray]
    kind: dict[str, str]  # node id -> satellite | uav | ground_station
    role: dict[str, str]
    tracks: dict[str, tuple[np.ndarray, np.ndarray]]  # satellite -> one orbit's lat, lon
    links: pd.DataFrame  # a, b, kind, start_s, end_s of the drawn nodes
    transfers: pd.DataFrame  # algorithm, direction, from, to, start_s, end_s (in flight)
    notes: list[str]


def _involved(run: Run) -> set[str]:
    t = run.tables
    ids: set[str] = set()
    if "hops" in t:
        ids |= set(t["hops"]["from"].astype(str)) | set(t["hops"]["to"].astype(str))
    if "transfers" in t:
        ids |= set(t["transfers"].client.astype(str))
    return ids


def _in_flight(run: Run, server: str | None) -> pd.DataFrame:
    """Every hop (hops.csv) or, without hops, every transfer between client and server over
    its transmitting time (after its wait): ``algorithm, direction, from, to, start_s,
    end_s``. A hop that names ``server`` is drawn from the run's first server node."""
    t = run.tables
    cols = ["algorithm", "direction", "from", "to", "start_s", "end_s"]
    if "hops" in t and len(t["hops"]):
        f = t["hops"][cols].copy()
    elif "transfers" in t and len(t["transfers"]):
        x = t["transfers"]
        wait = x["wait_s"].fillna(0.0) if "wait_s" in x else 0.0
        up = x.direction == "up"
        f = pd.DataFrame({"algorithm": x.algorithm, "direction": x.direction,
                          "from": np.where(up, x.client, server or ""),
                          "to": np.where(up, server or "", x.client),
                          "start_s": np.minimum(x.start_s + wait, x.end_s), "end_s": x.end_s})
    else:
        return pd.DataFrame(columns=cols)
    if server is not None:
        f = f.replace({"from": {"server": server}, "to": {"server": server}})
    return f.astype({"from": str, "to": str})


def scene(run: Run, max_frames: int = MAX_FRAMES, max_satellites: int = MAX_SATELLITES) -> Scene:
    """Sample the run at the slider's times: every station and UAV, at most ``max_satellites``
    satellites (every one that carried a model first), and the links and transfers among them."""
    times = frame_times(span_s(run), max_frames)
    step = float(times[1] - times[0]) if len(times) > 1 else MIN_STEP_S
    nodes = run.nodes
    kind = dict(zip(nodes.id.astype(str), nodes.kind.astype(str)))
    role = dict(zip(nodes.id.astype(str), nodes.role.astype(str)))
    notes = list(run.notes)
    involved = _involved(run)
    servers = [s for s in run.satellites if role.get(s.id) == "server"]
    first = [s for s in run.satellites if s.id in involved and s not in servers]
    rest = [s for s in run.satellites if s.id not in involved and s not in servers]
    room = max(max_satellites - len(servers) - len(first), 0)
    shown = servers + first[:max_satellites] + _spread(rest, room)
    if len(shown) < len(run.satellites):
        notes.append(f"thinned: {len(shown)} of {len(run.satellites)} satellites drawn (every "
                     f"server, {min(len(first), max_satellites)} that carried a model, the rest "
                     "spread evenly over the constellation); links and transfers of satellites "
                     "not drawn are left out")
    lat: dict[str, np.ndarray] = {}
    lon: dict[str, np.ndarray] = {}
    tracks = {}
    if shown:
        timebase = Timebase(run.start_utc)
        la, lo = subpoints(shown, timebase, times)
        period = orbit_period_s(shown[0])
        track_t = np.arange(0.0, period + 60.0, 60.0)
        tla, tlo = subpoints(shown, timebase, track_t)
        for i, s in enumerate(shown):
            lat[s.id], lon[s.id] = la[i], lo[i]
            tracks[s.id] = (tla[i], tlo[i])
    for u in run.uavs:
        lat[u.id], lon[u.id] = (np.asarray(v, dtype=float) for v in u.latlon_deg(times))
    for _, n in nodes[nodes.kind != "satellite"].iterrows():
        if str(n.id) not in lat and pd.notna(n.lat_deg):
            lat[str(n.id)] = np.full(len(times), float(n.lat_deg))
            lon[str(n.id)] = np.full(len(times), float(n.lon_deg))
    server_ids = [i for i, r in role.items() if r == "server"]
    if len(server_ids) > 1 and "hops" not in run.tables and len(run.tables.get(
            "transfers", ())):
        notes.append(f"transfers drawn to the first of {len(server_ids)} server nodes "
                     "(transfers.csv does not say which one carried them)")
    links = _links(run.tables)
    links = links[links.a.astype(str).isin(lat) & links.b.astype(str).isin(lat)]
    transfers = _in_flight(run, server_ids[0] if server_ids else None)
    transfers = transfers[transfers["from"].isin(lat) & transfers["to"].isin(lat)]
    if len(times) >= max_frames:
        notes.append(f"positions every {step:g} s ({len(times)} slider positions)")
    return Scene(times, step, lat, lon, kind, role, tracks, links.reset_index(drop=True),
                 transfers.reset_index(drop=True), notes)


def round_xy(values, decimals: int = _ROUND_DEG) -> list:
    """Floats rounded for the page, NaN as ``None``."""
    a = np.round(np.asarray(values, dtype=float), decimals)
    return [None if not math.isfinite(v) else v for v in a.tolist()]
