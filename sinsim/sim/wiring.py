"""From a scenario to the network the engine walks: the one place that builds it.

Abstract clients (``clients.count``) get fixed-rate links that are always up; orbital clients
(walker, TLE, UAVs) get links whose windows are their contact windows and whose rate follows the
link model along each pass (:mod:`sinsim.sim.topology` computes the nodes and the contact plan).
Either way the network is a star: for client ``c``, a link to the server with stream key
``(c, UP)`` and one back with ``(c, DOWN)``, both dark when the client is (failures), each with
its own loss model (:mod:`sinsim.sim.impairments`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sinsim._rng import rng_for
from sinsim.errors import ConfigError
from sinsim.scenario import Links, Scenario
from sinsim.sim.channel import Channel, ConstantRate, DelayProfile, SampledRate, fixed_channel
from sinsim.sim.impairments import (
    client_failure_periods,
    failure_periods,
    impairment,
    subtract_intervals,
)
from sinsim.sim.network import DOWN, UP, Link, Network
from sinsim.sim.topology import Topology, build_topology
from sinsim.space import links as space_links
from sinsim.space.contacts import ContactPlan
from sinsim.space.isl import pair_ranges_m, sample_times_s
from sinsim.space.radios import RadioProfile, node_kind, radio_profile

SERVER = "server"


def orbital_topology(scenario: Scenario) -> Topology | None:
    """The nodes and contact plan of an orbital scenario; None for abstract clients. The one
    place that tells the two apart."""
    return build_topology(scenario) if scenario.clients.orbital else None


def build_network(scenario: Scenario, topology: Topology | None = None) -> Network:
    """The network of ``scenario``: from ``topology`` (else the scenario's own, built here, if
    it is orbital), or abstract."""
    if topology is None:
        topology = orbital_topology(scenario)
    if topology is None:
        return abstract_network(scenario)
    return orbital_network(scenario, topology)


def star_network(scenario: Scenario, client_ids: Sequence[str], up: Sequence[Channel],
                 down: Sequence[Channel], extra: Sequence[Link] = (),
                 server_ids: Sequence[str] = ()) -> Network:
    """Client ``c`` -> server over ``up[c]``, server -> client ``c`` over ``down[c]``; the loss
    model of each link from ``scenario.links.loss``, keyed by (c, direction). ``extra``: more
    links (between clients: inter-satellite links). ``server_ids``: the nodes that serve (one
    names the server node, as in ``nodes.csv`` and ``links.csv``; several stations are one
    server node, ``server``). The server node carries as many links at once as its stations
    have antennas (``server.ground_stations[].antennas``, summed), each of which spends
    ``links.slew`` turning from one satellite to another."""
    loss, seed, horizon = scenario.links.loss, scenario.seed, scenario.horizon
    server = _server_id(client_ids, server_ids[0] if len(server_ids) == 1 else SERVER)
    stations = scenario.server.ground_stations if scenario.clients.orbital else None
    antennas = ((server, sum(g.antennas for g in stations)),) if stations else ()
    isl = scenario.links.isl
    terminals = tuple((cid, isl.terminals) for cid in client_ids) if isl and extra else ()
    links = []
    for c, cid in enumerate(client_ids):
        links.append(Link(cid, server, up[c], impairment(loss, seed, (c, UP), horizon), (c, UP)))
        links.append(Link(server, cid, down[c], impairment(loss, seed, (c, DOWN), horizon),
                          (c, DOWN)))
    return Network(tuple(client_ids), tuple(links) + tuple(extra), seed, server,
                   routing=scenario.links.routing, antennas=antennas, terminals=terminals,
                   slew_s=scenario.links.slew if antennas else 0.0)


def _server_id(client_ids: Sequence[str], name: str = SERVER) -> str:
    ids = set(client_ids)
    while name in ids:
        name = "_" + name
    return name


def _dark(scenario: Scenario, n_clients: int) -> list[np.ndarray]:
    failures = scenario.links.failures
    return [client_failure_periods(scenario.seed, c, scenario.horizon, failures)
            for c in range(n_clients)]


def abstract_network(scenario: Scenario) -> Network:
    """Fixed-rate links to ``clients.count`` clients that are always up (but when dark)."""
    links = scenario.links
    n = scenario.clients.count
    width = max(4, len(str(n - 1)))
    dark = _dark(scenario, n)
    always = np.array([[0.0, math.inf]])

    def channel(direction, holes):
        return fixed_channel(direction.rate_bps, direction.propagation_delay_s,
                             subtract_intervals(always, holes))

    up = [channel(links.uplink, dark[c]) for c in range(n)]
    down = [channel(links.downlink, dark[c]) for c in range(n)]
    return star_network(scenario, [f"client{i:0{width}d}" for i in range(n)], up, down)


def orbital_network(sc: Scenario, topo: Topology) -> Network:
    """Channels from the contact plan: windows (minus dark periods), rate, range-based delay;
    plus the inter-satellite links of ``topo.isl``. With ``links.routing: relay`` every delay
    is sampled every ``contacts.rate_step`` and interpolated (:class:`DelayProfile`): the router
    evaluates delays many times."""
    links = sc.links
    ids = [n.id for n in topo.clients]
    dark = _dark(sc, len(ids))
    relay = links.routing == "relay"
    server_kind = node_kind(topo.plan.servers[0])
    radios: dict[tuple[str, str, str], RadioProfile] = {}  # (direction, tx kind, rx kind)
    ups, downs = [], []
    for i, node in enumerate(topo.clients):
        cid = node.id
        windows = subtract_intervals(after_acquisition(topo.plan.windows_for(cid),
                                                      links.acquisition), dark[i])
        delay = (_delay_profile(topo.plan, cid, windows, sc.contacts.rate_step) if relay
                 else _delay_fn(topo.plan, cid))
        kind = node_kind(node)
        for name, tx, rx, out in (("uplink", kind, server_kind, ups),
                                  ("downlink", server_kind, kind, downs)):
            if links.model == "fixed":
                rate = ConstantRate(getattr(links, name).rate_bps)
            else:
                if (name, tx, rx) not in radios:
                    radios[name, tx, rx] = direction_radio(links, name, tx, rx)
                rate = _sampled_rate(topo.plan, cid, windows, radios[name, tx, rx],
                                     sc.contacts.rate_step)
            out.append(Channel(windows, rate, delay))
    return star_network(sc, ids, ups, downs, _isl_links(sc, topo, dark),
                        [n.id for n in topo.plan.servers])


def _isl_links(sc: Scenario, topo: Topology, dark: list[np.ndarray]) -> list[Link]:
    """Both directions of every inter-satellite link: its windows minus either end's dark
    periods, the fixed ISL rate (or that of ``links.isl.profile`` along the sampled range), the
    delay of the sampled range, less ``links.isl.acquisition`` at the start of each contact
    and the crosslink's own outages (``links.isl.failures``, one draw per pair); its loss
    model ``links.isl.loss``; stream keys ``(a, b, 2)`` by client index."""
    if topo.isl is None or not len(topo.isl):
        return []
    index = {n.id: i for i, n in enumerate(topo.clients)}
    by_pair = {pair: g[["start_s", "end_s"]].to_numpy(dtype=float)
               for pair, g in topo.isl.groupby(["a", "b"], sort=True)}
    pairs = [(index[a], index[b]) for a, b in by_pair]
    times = sample_times_s(sc.horizon, ISL_RANGE_STEP_S)
    ranges = pair_ranges_m(topo.clients, pairs, topo.timebase, times)
    isl = sc.links.isl
    radio = None if isl.profile is None else radio_profile(isl.profile)
    out = []
    for (i, j), windows, range_m in zip(pairs, by_pair.values(), ranges, strict=True):
        windows = after_acquisition(windows, isl.acquisition)
        outages = failure_periods(rng_for(sc.seed, "failure", i, j, 2), sc.horizon,
                                  isl.failures.rate_per_day, isl.failures.duration)
        for holes in (dark[i], dark[j], outages):
            windows = subtract_intervals(windows, holes)
        rate = ConstantRate(isl.rate_bps) if radio is None else _isl_rate(times, range_m, radio)
        channel = Channel(windows, rate,
                          DelayProfile(times, space_links.propagation_delay_s(range_m)))
        for a, b in ((i, j), (j, i)):
            out.append(Link(topo.clients[a].id, topo.clients[b].id, channel,
                            impairment(isl.loss, sc.seed, (a, b, 2), sc.horizon), (a, b, 2)))
    return out


def after_acquisition(windows: np.ndarray, acquisition_s: float) -> np.ndarray:
    """Each window less its first ``acquisition_s`` (pointing, lock); windows no longer than
    that carry nothing and go.

    >>> after_acquisition(np.array([[0., 10.], [20., 22.]]), 5.0).tolist()
    [[5.0, 10.0]]
    """
    if acquisition_s <= 0 or not len(windows):
        return windows
    out = windows.astype(float).copy()
    out[:, 0] += acquisition_s
    return out[out[:, 0] < out[:, 1]]


def _isl_rate(times_s: np.ndarray, range_m: np.ndarray, radio: RadioProfile) -> SampledRate:
    """The crosslink rate of ``radio``: each interval between range samples takes the rate at
    its mean range (zero where the radio cannot close the link)."""
    mid_m = np.append((range_m[:-1] + range_m[1:]) / 2, range_m[-1])
    return SampledRate(times_s, space_links.rate_bps(np.maximum(mid_m, 1.0), radio))


ISL_RANGE_STEP_S = 60.0  # ranges between satellites sampled this often for delays (error < 1 us)


def _delay_profile(plan: ContactPlan, client_id: str, windows: np.ndarray,
                   step_s: float) -> DelayProfile:
    """The delay to the nearest visible server, sampled every ``step_s`` inside the windows
    (and at their ends)."""
    t = [np.append(np.arange(a, b, step_s), b) for a, b in windows if np.isfinite(b)]
    if not t:
        return DelayProfile([0.0], [0.0])
    times = np.unique(np.concatenate(t))
    range_m, _ = plan.geometry(client_id, times)
    return DelayProfile(times, space_links.propagation_delay_s(range_m))


def direction_radio(links: Links, name: str, tx_kind: str, rx_kind: str) -> RadioProfile:
    """The radio of ``links.<name>`` (``uplink`` or ``downlink``) from a ``tx_kind`` to an
    ``rx_kind`` node. The scenario checked it at load time; one built in code that was not
    still gets a ConfigError naming the key."""
    try:
        return getattr(links, name).radio(tx_kind, rx_kind)
    except ValueError as e:
        raise ConfigError(str(e), key=f"links.{name}") from None


def _sampled_rate(plan: ContactPlan, client_id: str, windows: np.ndarray, radio: RadioProfile,
                  step_s: float) -> SampledRate:
    """Piecewise-constant rate over the windows: each ``step_s`` slice of a pass takes the
    rate of ``radio`` at its midpoint's range and elevation; zero between windows."""
    starts, mids = [], []
    for begin, end in windows:
        t = np.arange(begin, end, step_s)
        starts.append(t)
        mids.append((t + np.minimum(t + step_s, end)) / 2)
    if not starts:
        return SampledRate(np.array([0.0]), np.array([0.0]))
    t_all, mid_all = np.concatenate(starts), np.concatenate(mids)
    range_m, elevation_deg = plan.geometry(client_id, mid_all)
    rates = space_links.rate_bps(range_m, radio, elevation_deg)
    # a zero-rate knot at each window end, unless the next window starts right there
    ends = windows[:, 1]
    ends = ends[np.isfinite(ends) & ~np.isin(ends, t_all)]
    times = np.concatenate([[0.0], t_all, ends])
    values = np.concatenate([[0.0], rates, np.zeros(len(ends))])
    times, first = np.unique(times[::-1], return_index=True)  # keep the last value per time
    values = values[::-1][first]
    return SampledRate(times, values)


def _delay_fn(plan: ContactPlan, client_id: str):
    def delay_s(t_s: float) -> float:
        range_m, _ = plan.geometry(client_id, np.array([t_s]))
        return float(space_links.propagation_delay_s(range_m[0]))

    return delay_s
