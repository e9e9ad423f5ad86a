"""From a scenario to space nodes and a contact plan.

This is where ``sim`` meets ``space``: the scenario's node descriptions become
``sinsim.space`` objects and the contact plan is computed (or read from its cache).
``sinsim.sim.wiring`` turns them into the network's links.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sinsim import paths
from sinsim.errors import ConfigError
from sinsim.scenario import OMMSource, Scenario, TLESource, UAVSpec
from sinsim.space.contacts import ContactPlan, compute_contact_plan
from sinsim.space.eclipse import sunlit_windows
from sinsim.space.isl import all_pairs, isl_windows, plus_grid_pairs
from sinsim.space.orbits import (
    UAV,
    GroundStation,
    Satellite,
    circular_satellite,
    load_omm,
    load_tle,
    nodes_table,
    walker_constellation,
    warn_element_age,
    write_tle_file,
)
from sinsim.space.planes import orbital_planes
from sinsim.space.timebase import Timebase


@dataclass(frozen=True)
class Topology:
    timebase: Timebase
    clients: list
    servers: list
    plan: ContactPlan
    isl: pd.DataFrame | None = None  # windows of the inter-satellite links (space.isl columns)


def default_cache_dir() -> Path:
    """``$SINSIM_CACHE_DIR``, else the per-user cache directory (:mod:`sinsim.paths`)."""
    return paths.cache_dir()


def _uav(spec: UAVSpec) -> UAV:
    if spec.loiter is not None:
        return UAV(spec.id, spec.altitude_m, spec.speed_mps,
                   loiter_center=(spec.loiter.lat_deg, spec.loiter.lon_deg),
                   loiter_radius_m=spec.loiter.radius_m)
    return UAV(spec.id, spec.altitude_m, spec.speed_mps, waypoints=list(spec.waypoints))


def _read_elements(source: TLESource | OMMSource, key: str) -> list[Satellite]:
    """The satellites of a ``tle``/``omm`` section; a missing or malformed file is a
    ConfigError naming the key, the file and the line (TLE) or record (OMM)."""
    kind, load = ("OMM", load_omm) if isinstance(source, OMMSource) else ("TLE", load_tle)
    try:
        return load(source.path, name_pattern=source.name_pattern, limit=source.limit)
    except FileNotFoundError:
        raise ConfigError(f"no such {kind} file {source.path}", key=f"{key}.path") from None
    except IsADirectoryError:
        raise ConfigError(f"{source.path} is a directory, not a {kind} file",
                          key=f"{key}.path") from None
    except (OSError, ValueError) as e:
        raise ConfigError(str(e), key=f"{key}.path") from None


def _server_from_file(s, key: str) -> Satellite:
    source = s.tle if s.tle is not None else s.omm
    found = _read_elements(source, key)
    if len(found) != 1:
        names = ", ".join(n.id for n in found[:5]) + (", ..." if len(found) > 5 else "")
        raise ConfigError(f"the server is one satellite, but {source.path} gives {len(found)}"
                          f"{': ' + names if found else ''}; narrow name_pattern or set "
                          f"limit: 1", key=key)
    sat = found[0]
    node_id = s.id if "id" in s.model_fields_set else sat.id
    return Satellite(node_id, sat.satrec, source=sat.source, record=sat.record)


def build_nodes(sc: Scenario) -> tuple[list, list]:
    """(clients, servers) as ``sinsim.space`` nodes. Raises ConfigError naming the key; warns
    (``ElementAgeWarning``) when element sets read from files are far from ``start``."""
    c, s = sc.clients, sc.server
    clients: list = []
    for w, prefix in c.walker_shells:  # catalog numbers run on over the shells
        clients += walker_constellation(
            inclination_deg=w.inclination_deg, total=w.total, planes=w.planes,
            phasing=w.phasing, altitude_m=w.altitude_km * 1e3, epoch_utc=sc.start,
            pattern=w.pattern, id_prefix=prefix, first_catalog_number=len(clients) + 1)
    if c.tle is not None:
        clients += _read_elements(c.tle, "clients.tle")
    if c.omm is not None:
        clients += _read_elements(c.omm, "clients.omm")
    clients += [_uav(u) for u in c.uavs or []]
    servers: list = []
    if s.ground_stations is not None:
        servers = [GroundStation(g.id, g.lat_deg, g.lon_deg, g.altitude_m, g.min_elevation_deg)
                   for g in s.ground_stations]
    elif s.satellite is not None and s.satellite.client is not None:
        idx = [i for i, n in enumerate(clients) if n.id == s.satellite.client]
        if not idx or not isinstance(clients[idx[0]], Satellite):
            raise ConfigError(f"no client satellite with id {s.satellite.client!r}",
                              key="server.satellite.client")
        servers = [clients.pop(idx[0])]
    elif s.satellite is not None and (s.satellite.tle or s.satellite.omm) is not None:
        kind = "tle" if s.satellite.tle is not None else "omm"
        servers = [_server_from_file(s.satellite, f"server.satellite.{kind}")]
    elif s.satellite is not None:
        o = s.satellite.orbit
        servers = [circular_satellite(s.satellite.id, altitude_m=o.altitude_km * 1e3,
                                      inclination_deg=o.inclination_deg, raan_deg=o.raan_deg,
                                      arg_latitude_deg=o.arg_latitude_deg, epoch_utc=sc.start)]
    elif s.uav is not None:
        servers = [_uav(s.uav)]
    ids = [n.id for n in clients + servers]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"node ids must be unique, repeated: {', '.join(dup[:5])}",
                          key="clients")
    if not clients:
        raise ConfigError("no clients (the TLE/OMM selection matched nothing?)", key="clients")
    warn_element_age(clients + servers, sc.start)
    return clients, servers


def build_topology(sc: Scenario) -> Topology:
    clients, servers = build_nodes(sc)
    timebase = Timebase(sc.start)
    cache = Path(sc.contacts.cache_dir) if sc.contacts.cache_dir else default_cache_dir()
    plan = compute_contact_plan(
        clients, servers, timebase, sc.horizon, cache_dir=cache / "contacts",
        step_s=sc.contacts.step, max_range_m=sc.contacts.max_range_km * 1e3,
        grazing_altitude_m=sc.contacts.grazing_altitude_km * 1e3,
        memory_mb=sc.contacts.memory_mb)
    return Topology(timebase, clients, servers, plan, _isl(sc, clients, timebase))


def _isl(sc: Scenario, clients: list, timebase: Timebase) -> pd.DataFrame | None:
    """The windows of the scenario's inter-satellite links (``links.isl``), or None."""
    isl = sc.links.isl
    if isl is None:
        return None
    sats = [n for n in clients if isinstance(n, Satellite)]
    if isl.topology == "plus_grid":  # within each shell; the shells come first, plane-major
        pairs, offset = [], 0
        for w, _ in sc.clients.walker_shells:
            shell = sats[offset:offset + w.total]
            pairs += [(offset + i, offset + j)
                      for i, j in plus_grid_pairs(shell, w.planes, timebase, pattern=w.pattern)]
            offset += w.total
    else:
        pairs = all_pairs(len(sats))
    return isl_windows(sats, pairs, timebase, sc.horizon, step_s=sc.contacts.step,
                       max_range_m=isl.max_range_km * 1e3,
                       grazing_altitude_m=isl.grazing_altitude_km * 1e3,
                       memory_mb=sc.contacts.memory_mb)


LINK_COLUMNS = ["a", "b", "kind", "start_s", "end_s", "duration_s"]


def links_table(topo: Topology) -> pd.DataFrame:
    """One row per window of every pair of nodes with a link: client and ground station or
    server (``ground``), two satellites (``isl``); sorted by kind, a, b, start_s."""
    w = topo.plan.windows
    ground = pd.DataFrame({"a": w.client, "b": w.server, "kind": "ground", "start_s": w.start_s,
                           "end_s": w.end_s, "duration_s": w.duration_s})
    parts = [ground]
    if topo.isl is not None:
        parts.append(topo.isl.assign(kind="isl")[LINK_COLUMNS])
    table = pd.concat(parts, ignore_index=True)[LINK_COLUMNS]
    return table.sort_values(["kind", "a", "b", "start_s"], kind="stable").reset_index(drop=True)


def client_planes(sc: Scenario, topology: Topology | None = None) -> list[int]:
    """The orbital plane of each client (``sinsim.space.planes.orbital_planes``, with the
    tolerances of ``training.partition``), from ``topology``'s clients or, without one, from the
    scenario's nodes (no contact plan needed). A client that is not a satellite is a
    ConfigError naming ``training.partition``."""
    p = sc.training.partition
    if not sc.clients.orbital:
        raise ConfigError("by_plane needs satellite clients; abstract clients (clients.count) "
                          "have no orbital plane", key="training.partition")
    clients = topology.clients if topology is not None else build_nodes(sc)[0]
    try:
        return orbital_planes(clients, p.raan_tolerance_deg, p.inclination_tolerance_deg)
    except TypeError as e:
        raise ConfigError(f"by_plane needs satellite clients: {e}",
                          key="training.partition") from None


def client_sunlit(sc: Scenario, topology: Topology | None = None) -> list[np.ndarray | None]:
    """Each client's sunlit intervals over the horizon (``sinsim.space.eclipse``), None for a
    client that is not a satellite (UAVs carry no modelled battery); from ``topology``'s
    clients or, without one, the scenario's nodes."""
    clients = topology.clients if topology is not None else build_nodes(sc)[0]
    timebase = topology.timebase if topology is not None else Timebase(sc.start)
    sats = [n for n in clients if isinstance(n, Satellite)]
    windows = iter(sunlit_windows(sats, timebase, sc.horizon))
    return [next(windows) if isinstance(n, Satellite) else None for n in clients]


def write_topology(topo: Topology, out_dir: str | Path) -> None:
    """``contacts.csv``, ``links.csv``, ``nodes.csv`` and ``nodes.tle`` (every satellite,
    named by node id)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    topo.plan.to_csv(out / "contacts.csv", topo.timebase)
    links_table(topo).to_csv(out / "links.csv", index=False)
    nodes = topo.clients + topo.servers
    table = nodes_table(nodes)
    table.insert(2, "role", ["client"] * len(topo.clients) + ["server"] * len(topo.servers))
    table.to_csv(out / "nodes.csv", index=False)
    write_tle_file(out / "nodes.tle", [n for n in nodes if isinstance(n, Satellite)])


def contacts_info(topo: Topology) -> dict[str, Any]:
    """What ``summary.json`` says about the contact plan."""
    w = topo.plan.windows
    return {"windows": len(w), "clients": len(topo.clients),
            "clients_with_contact": int(w.client.nunique()) if len(w) else 0,
            "servers": [n.id for n in topo.servers],
            "mean_window_s": float(w.duration_s.mean()) if len(w) else None,
            **({"isl_links": int(topo.isl[["a", "b"]].drop_duplicates().shape[0]),
                "isl_windows": len(topo.isl)} if topo.isl is not None else {})}
