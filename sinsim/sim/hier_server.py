"""The hierarchical server (strategies with ``hierarchical = True``: ``hierfl``).

A round, as the synchronous engine's, starts with the same selection and broadcast (each
selected satellite's downlink over ``routing.send``). Then, plane by plane (``space.planes``):

- **Sink.** The plane's sink, where its updates meet, is the satellite of the plane (any of
  them, selected or not) whose own link to the server opens soonest after the round starts.
- **Ring.** Every selected satellite trains (FedAvg's client update, the same keyed draws) and
  sends its weights to the sink over the plane's inter-satellite links only (``routing.relay``
  over a router of the plane's links: store-and-forward along the ring, earliest arrival);
  ``transfers.csv`` rows with ``direction`` ``plane``. The sink's own update needs no
  transfer.
- **Upload.** The sink averages what reached it (sample-weighted) and sends that one model to
  the server as soon as every member has finished, or at ``plane_wait`` of the round's
  deadline with what it has (later arrivals are ``late``): along the earliest-arrival route
  over the plane's ring and its satellites' own links to the server, so it goes down from
  whichever satellite of the plane sees a station first (a ``direction`` ``up`` row under the
  sink's id; ``route`` shows the way). The server averages the plane models that arrived,
  weighted by their samples.

``rounds.csv``: ``bytes_up`` / ``bytes_down`` are the ground transfers (plane models up, the
global model down), ``bytes_plane`` the updates over the rings; ``completed`` counts the
satellites whose update reached the server inside a plane model (their ``clients.csv`` row:
``aggregated``, ``up_status`` the plane model's, ``arrived_s`` its arrival). Clients train in
this process (``training.workers`` is not used); batteries (``power:``) are not modelled here.

The engine imports this module, so this module cannot import the engine: the engine passes
itself in as ``engine`` (as for ``sinsim.sim.async_server``).
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import simpy

from sinsim._rng import rng_for
from sinsim.errors import ConfigError
from sinsim.learn.strategies import RoundContext, Strategy
from sinsim.sim.cgr import Router
from sinsim.sim.network import Network
from sinsim.sim.routing import relay, send
from sinsim.sim.topology import build_nodes
from sinsim.space.planes import orbital_planes


def plane_rings(net: Network, planes: list[int]) -> dict[int, Router]:
    """A router per plane over the links between two of its satellites and their own links to
    the server (not back: no route between satellites goes through the server)."""
    index = {cid: i for i, cid in enumerate(net.client_ids)}
    out = {}
    for p in sorted(set(planes)):
        members = tuple(cid for cid, q in zip(net.client_ids, planes, strict=True) if q == p)
        links = tuple(link for link in net.links if link.src in index
                      and planes[index[link.src]] == p
                      and (link.dst == net.server_id
                           or (link.dst in index and planes[index[link.dst]] == p)))
        out[p] = Router(Network(members, links, net.seed, net.server_id, routing="relay"))
    return out


def sink_of(net: Network, planes: list[int], plane: int, t_s: float) -> int:
    """The satellite of ``plane`` whose own link to the server opens first at or after
    ``t_s`` (ties: the lower index; none ever: the first of the plane)."""
    best = None
    for c, p in enumerate(planes):
        if p != plane:
            continue
        route = net.route_up(c)
        window = route[0].channel.next_window(t_s) if route else None
        start = window[0] if window is not None else float("inf")
        if best is None or start < best[0]:
            best = (start, c)
    return best[1]


def run_hierarchical(prep: Any, algorithm: Any, strategy: Strategy, recorder: Any,
                     on_round_end: Any, engine: ModuleType) -> dict[str, Any]:
    """Run ``algorithm`` (a hierarchical ``strategy``) for ``training.rounds`` rounds; its
    summary, as ``run_algorithm``'s."""
    sc, net, tr = prep.scenario, prep.network, prep.scenario.training
    try:
        planes = orbital_planes(build_nodes(sc)[0])
    except TypeError as e:
        raise ConfigError(f"{algorithm.label} needs satellite clients: {e}",
                          key="algorithms") from None
    rings = plane_rings(net, planes)
    env = simpy.Environment()
    rows: list[dict[str, Any]] = []

    def server():
        global_state = prep.init_state
        for r in range(1, tr.rounds + 1):
            if env.now >= sc.horizon:
                break
            wall0 = time.perf_counter()
            candidates = engine._candidates(sc, net, env.now)
            if not candidates:
                t_next = net.next_contact_s(env.now)
                if t_next >= sc.horizon:
                    break
                yield env.timeout(t_next - env.now)
                candidates = engine._candidates(sc, net, env.now)
            t0 = env.now
            selected = strategy.select(RoundContext(r, t0, tuple(candidates),
                                                    tr.clients_per_round, sc.seed))
            down_payload = strategy.encode_global(global_state)
            rnd = engine._Round(algorithm.label, r, t0 + tr.round_deadline, down_payload,
                                strategy.decode_global(down_payload), strategy.new_aggregator())
            by_plane: dict[int, list[int]] = {}
            for c in selected:
                by_plane.setdefault(planes[c], []).append(c)
            cut_s = t0 + strategy.params.plane_wait * tr.round_deadline
            yield env.all_of([env.process(_plane(
                env, prep, strategy, rnd, members, sink_of(net, planes, p, t0), rings[p], cut_s,
                engine)) for p, members in sorted(by_plane.items())])
            global_state = rnd.aggregator.result(global_state)
            for row in rnd.clients:
                row["aggregated"] = row["up_status"] == "delivered"
            completed = sum(row["aggregated"] for row in rnd.clients)
            row = engine._round_row(algorithm.label, r, t0, env.now, len(selected), completed,
                                    rnd.transfers, [], prep.trainer.evaluate(global_state),
                                    rows[-1] if rows else None, wall0)
            row["bytes_plane"] = sum(t["bytes"] for t in rnd.transfers
                                     if t["direction"] == "plane")
            engine._write_round(recorder, row, rnd.transfers,
                                sorted(rnd.clients, key=lambda x: x["client"]), [])
            rows.append(row)
            if on_round_end:
                on_round_end(row)
            if engine._reached_target(sc, row):
                break

    env.run(until=env.process(server()))
    return engine._summary(rows, env.now, tr.target_accuracy)


class _Sink:
    """What reaches a plane's sink before it uploads."""

    def __init__(self, aggregator):
        self.aggregator = aggregator
        self.rows: list[dict[str, Any]] = []  # clients.csv rows of the updates it holds
        self.closed = False  # uploaded (or gave up): later arrivals are late


def _plane(env, prep, strategy, rnd, members: list[int], sink: int, ring: Router,
           cut_s: float, engine: ModuleType):
    """One plane's round: its members' processes, then the sink's upload."""
    net, sc = prep.network, prep.scenario
    at_sink = _Sink(strategy.plane_aggregator())
    procs = [env.process(_member(env, prep, strategy, rnd, c, sink, ring, at_sink, engine))
             for c in members]
    # (a condition inside a triggered condition loses its callbacks: a fresh one below)
    yield env.all_of(procs) | env.timeout(max(0.0, min(cut_s, rnd.deadline_s) - env.now))
    at_sink.closed = True
    if at_sink.aggregator.count:
        payload = strategy.encode_plane(at_sink.aggregator.result(rnd.received))
        n_samples = sum(row["n_samples"] for row in at_sink.rows)
        up = yield from relay(env, ring, net.seed, net.client_ids[sink], net.server_id,
                              len(payload), rnd.deadline_s, flow=(sink, 0), round_=rnd.number,
                              policy=sc.links.on_loss_of_signal)
        rnd.transfers.append(engine._transfer_row(rnd.algorithm, rnd.number,
                                                  net.client_ids[sink], "up", up))
        for row in at_sink.rows:
            row["up_status"] = up.status
            row["arrived_s"] = up.end_s if up.status == "delivered" else None
        if up.status == "delivered":
            rnd.aggregator.add(payload, n_samples)
    yield env.all_of(procs)  # the rows of members still on their way


def _member(env, prep, strategy, rnd, c: int, sink: int, ring: Router, at_sink: _Sink,
            engine: ModuleType):
    """A selected satellite: receive, train, send to the sink over the ring."""
    sc, net, r = prep.scenario, prep.network, rnd.number
    policy = sc.links.on_loss_of_signal
    cid = net.client_ids[c]
    row = {"algorithm": rnd.algorithm, "round": r, "client": cid,
           "n_samples": len(prep.shards[c]), "down_status": None, "compute_start_s": None,
           "compute_s": None, "up_status": None, "arrived_s": None, "aggregated": False}
    rnd.clients.append(row)
    down = yield from send(env, net, c, "down", len(rnd.down_payload), rnd.deadline_s,
                           round_=r, policy=policy)
    rnd.transfers.append(engine._transfer_row(rnd.algorithm, r, cid, "down", down))
    row["down_status"] = down.status
    if down.status != "delivered":
        return
    update = strategy.client_update(prep.trainer, rnd.received, c,
                                    rng_for(sc.seed, "train", r, c))
    compute_s = update.flops / sc.compute.flops_per_s
    row["compute_start_s"], row["compute_s"] = env.now, compute_s
    if env.now + compute_s >= rnd.deadline_s:
        yield env.timeout(rnd.deadline_s - env.now)
        row["up_status"] = "not_sent"
        return
    yield env.timeout(compute_s)
    if c != sink:
        out = yield from relay(env, ring, net.seed, cid, net.client_ids[sink],
                               len(update.payload), rnd.deadline_s, flow=(c, 2), round_=r,
                               policy=policy)
        rnd.transfers.append(engine._transfer_row(rnd.algorithm, r, cid, "plane", out))
        if out.status != "delivered":
            row["up_status"] = out.status
            return
    if at_sink.closed:
        row["up_status"] = "late"  # the sink had uploaded without it
        return
    at_sink.aggregator.add(update.payload, update.n_samples)
    at_sink.rows.append(row)
