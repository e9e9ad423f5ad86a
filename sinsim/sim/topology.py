"""From a scenario to space nodes, a contact plan and the channels the engine walks.

This is where ``sim`` meets ``space``: the scenario's node descriptions become
``sinsim.space`` objects, the contact plan is computed (or read from its cache), and every
client gets an up- and a down-channel whose windows are its contact windows (minus its dark
periods) and whose rate follows the link model along each pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sinsim.errors import ConfigError
from sinsim.scenario import LinkDirection, Scenario, UAVSpec
from sinsim.sim.channel import Channel, ConstantRate, SampledRate
from sinsim.sim.network import Network, client_impairments, subtract_intervals
from sinsim.space import links as space_links
from sinsim.space.contacts import ContactPlan, compute_contact_plan
from sinsim.space.orbits import (
    UAV,
    GroundStation,
    Satellite,
    circular_satellite,
    load_tle,
    nodes_table,
    walker_constellation,
    write_tle_file,
)
from sinsim.space.timebase import Timebase


@dataclass(frozen=True)
class Topology:
    timebase: Timebase
    clients: list
    servers: list
    plan: ContactPlan


def default_cache_dir() -> Path:
    return Path(os.environ.get("SINSIM_CACHE_DIR", Path.home() / ".cache" / "sinsim"))


def _uav(spec: UAVSpec) -> UAV:
    if spec.loiter is not None:
        return UAV(spec.id, spec.altitude_m, spec.speed_mps,
                   loiter_center=(spec.loiter.lat_deg, spec.loiter.lon_deg),
                   loiter_radius_m=spec.loiter.radius_m)
    return UAV(spec.id, spec.altitude_m, spec.speed_mps, waypoints=list(spec.waypoints))


def build_nodes(sc: Scenario) -> tuple[list, list]:
    """(clients, servers) as ``sinsim.space`` nodes. Raises ConfigError naming the key."""
    c, s = sc.clients, sc.server
    clients: list = []
    if c.walker is not None:
        w = c.walker
        clients += walker_constellation(
            inclination_deg=w.inclination_deg, total=w.total, planes=w.planes,
            phasing=w.phasing, altitude_m=w.altitude_km * 1e3, epoch_utc=sc.start,
            pattern=w.pattern, id_prefix=w.id_prefix)
    if c.tle is not None:
        try:
            clients += load_tle(c.tle.path, name_pattern=c.tle.name_pattern, limit=c.tle.limit)
        except FileNotFoundError:
            raise ConfigError(f"no such TLE file {c.tle.path}", key="clients.tle.path") from None
        except (OSError, ValueError) as e:
            raise ConfigError(str(e), key="clients.tle.path") from None
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
        raise ConfigError("no clients (the TLE selection matched nothing?)", key="clients")
    return clients, servers


def build_topology(sc: Scenario) -> Topology:
    clients, servers = build_nodes(sc)
    timebase = Timebase(sc.start)
    cache = Path(sc.contacts.cache_dir) if sc.contacts.cache_dir else default_cache_dir()
    plan = compute_contact_plan(
        clients, servers, timebase, sc.horizon, cache_dir=cache / "contacts",
        step_s=sc.contacts.step, max_range_m=sc.contacts.max_range_km * 1e3,
        grazing_altitude_m=sc.contacts.grazing_altitude_km * 1e3)
    return Topology(timebase, clients, servers, plan)


def write_topology(topo: Topology, out_dir: str | Path) -> None:
    """``contacts.csv``, ``nodes.csv`` and ``nodes.tle`` (every satellite, named by node id)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    topo.plan.to_csv(out / "contacts.csv", topo.timebase)
    nodes = topo.clients + topo.servers
    table = nodes_table(nodes)
    table.insert(2, "role", ["client"] * len(topo.clients) + ["server"] * len(topo.servers))
    table.to_csv(out / "nodes.csv", index=False)
    write_tle_file(out / "nodes.tle", [n for n in nodes if isinstance(n, Satellite)])


# ---------------------------------------------------------------------------------------------
# channels


def _budget_params(direction: LinkDirection, default):
    overrides = direction.budget_overrides()
    try:
        return space_links.BudgetLinkParams(**{**default.__dict__, **overrides})
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), key="links") from None


def _sampled_rate(plan: ContactPlan, client_id: str, windows: np.ndarray, params,
                  step_s: float) -> SampledRate:
    """Piecewise-constant rate over the windows: each ``step_s`` slice of a pass takes the
    rate at its midpoint's range; zero between windows."""
    starts, mids = [], []
    for begin, end in windows:
        t = np.arange(begin, end, step_s)
        starts.append(t)
        mids.append((t + np.minimum(t + step_s, end)) / 2)
    if not starts:
        return SampledRate(np.array([0.0]), np.array([0.0]))
    t_all, mid_all = np.concatenate(starts), np.concatenate(mids)
    range_m, _ = plan.geometry(client_id, mid_all)
    rates = np.asarray(space_links.rate_bps(range_m, params), dtype=float)
    # a zero-rate knot at each window end, unless the next window starts right there
    ends = windows[:, 1]
    ends = ends[np.isfinite(ends) & ~np.isin(ends, t_all)]
    times = np.concatenate([[0.0], t_all, ends])
    values = np.concatenate([[0.0], rates, np.zeros(len(ends))])
    times, first = np.unique(times[::-1], return_index=True)  # keep the last value per time
    values = values[::-1][first]
    return SampledRate(times, values)


def orbital_network(sc: Scenario, topo: Topology) -> Network:
    """Channels from the contact plan: windows (minus dark periods), rate, range-based delay."""
    links = sc.links
    ids = tuple(n.id for n in topo.clients)
    dark, bad = client_impairments(sc, len(ids))
    up_default, down_default = space_links.DEFAULT_SPACE_TO_GROUND, space_links.DEFAULT_GROUND_TO_SPACE
    ups, downs = [], []
    for i, cid in enumerate(ids):
        windows = subtract_intervals(topo.plan.windows_for(cid), dark[i])
        for direction, default, out in ((links.uplink, up_default, ups),
                                        (links.downlink, down_default, downs)):
            if links.model == "fixed":
                rate = ConstantRate(direction.rate_bps)
            else:
                rate = _sampled_rate(topo.plan, cid, windows, _budget_params(direction, default),
                                     sc.contacts.rate_step)
            out.append(Channel(windows, rate, _delay_fn(topo.plan, cid)))
    return Network(ids, tuple(ups), tuple(downs), links.loss, sc.seed, bad)


def _delay_fn(plan: ContactPlan, client_id: str):
    def delay_s(t_s: float) -> float:
        range_m, _ = plan.geometry(client_id, np.array([t_s]))
        return float(space_links.propagation_delay_s(range_m[0]))

    return delay_s
