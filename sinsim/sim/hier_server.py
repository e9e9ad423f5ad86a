"""The hierarchical server (strategies with ``hierarchical = True``: ``hierfl``).

A round starts, as the synchronous engine's, with the same selection. Then, plane by plane
(``space.planes``), for every plane with a selected member (or an update kept from the round
before):

- **Down, one copy a plane.** The global model goes down once, over the own ground link of the
  plane's *entry*: the satellite of the plane (selected or not) that its own link from the
  server would bring the whole model to first, inside one window before the deadline
  (``sinsim.sim.hier_plan.entry_of``; a ``down`` row under its id). A copy lost on the way down is sent again
  to the plane's next such satellite while the sink's ``t_leave`` (below) has not passed. From there it is passed
  round the plane's ring over the inter-satellite links to every selected member, as a
  broadcast tree (``routing.relay`` with a ``Tree``: a copy is taken from whichever satellite
  holds it, every hop crossed once); ``ring`` rows under the member's id (none for the entry).
- **Sink.** The plane's sink, where its updates meet, is the satellite of the plane whose own
  link to the server opens first at or after the round's start.
- **When the sink sends** (``hier_plan.leave_by``): the latest time ``t_leave`` at which the sink can
  start its upload and still have it at the server by the round's deadline, over the plane's
  ring and its satellites' ground links (the contact plan, nothing else booked). A member's
  update is sent to the sink (``plane`` rows) only if the plan gets it there by ``t_leave``;
  the sink sends as soon as every member has settled (its update arrived, it failed, or it
  cannot arrive by ``t_leave``), and at ``t_leave`` at the latest.
- **Late updates are kept for the next round.** A member whose update cannot reach the sink
  by ``t_leave`` keeps it (``up_status`` ``late``); in the plane's next round it is relayed to
  that round's sink (a ``carry`` row under the member's id) and averaged into the plane model
  with its samples, once (a second miss drops it). A second partial upload would leave after
  ``t_leave``, so by its definition it could not reach the server before the deadline.
- **Plane rounds** (``plane_rounds``, HierFAVG's κ₁): with κ₁ > 1 the sink averages what
  arrived, passes that plane model back round the ring (``ring`` rows) and the members train
  again from it, κ₁ times in all (each plane round bounded by ``t_leave``); the last plane
  model is uploaded.
- **Upload.** The sink sends its plane model along the earliest-arrival route over the ring
  and its satellites' own links to the server (an ``up`` row under the sink's id). The server
  averages the plane models that arrived, weighted by their samples.

``rounds.csv``: ``bytes_up`` / ``bytes_down`` are the ground transfers (plane models up, one
global model a plane down), ``bytes_plane`` what crossed the rings (``plane``, ``ring`` and
``carry`` rows; their hops in ``hops.csv``); ``completed`` counts the selected satellites whose
update of this round reached the server inside a plane model (``aggregated``). Batteries
(``power:``) are not modelled here.

**Training** (``training.workers`` > 1, a ``pool``): every selected member's training from the
global model is queued when the round starts (its inputs are known then; the jobs of members
the model does not reach are dropped with the round), and with κ₁ > 1 the members' training
from a plane model when the sink has made it, before it goes round the ring; each on its own
context of the pool. A member takes its job's update when it holds the model, so the tables
are those of one process. Without a pool members train here, when they hold the model.

After every round ``on_checkpoint`` gets the state with the late updates kept (payloads; a plane
with none kept still runs its next round); ``resume`` goes on in a fresh SimPy environment at its
clock, as the synchronous engine does: every transfer of a round ends inside it, so nothing then
booked on links or antennas is in a later round's way (and trees are per round)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import simpy

from sinsim.errors import ConfigError
from sinsim.learn.parallel import TrainingPool
from sinsim.learn.strategies import RoundContext, Strategy
from sinsim.sim import checkpoint, kernel
from sinsim.sim.cgr import Router
from sinsim.sim.checkpoint import AlgorithmState
from sinsim.sim.hier_plan import entry_of, leave_by, plane_rings, sink_of
from sinsim.sim.routing import Tree, relay, send
from sinsim.sim.topology import build_nodes
from sinsim.space.planes import orbital_planes

RING_DIRECTIONS = ("plane", "ring", "carry")  # transfers over the planes' crosslinks


def run_hierarchical(prep: Any, algorithm: Any, strategy: Strategy, recorder: Any,
                     on_round_end: Any, pool: TrainingPool | None = None, *,
                     resume: AlgorithmState | None = None,
                     on_checkpoint: Any = None) -> dict[str, Any]:
    """Run ``algorithm`` (a hierarchical ``strategy``) for ``training.rounds`` rounds; its
    summary, as ``run_algorithm``'s (``resume``, ``on_checkpoint`` too). ``pool``: the members
    train there (see the module docstring); None: in this process."""
    sc, net, tr = prep.scenario, prep.network, prep.scenario.training
    try:
        planes = orbital_planes(build_nodes(sc)[0])
    except TypeError as e:
        raise ConfigError(f"{algorithm.label} needs satellite clients: {e}",
                          key="algorithms") from None
    rings = plane_rings(net, planes)
    rows: list[dict[str, Any]] = []
    kept: dict[int, list[_Kept]] = {}  # plane: the late updates its next round averages
    global_state = prep.init_state
    if resume is not None:
        rows, global_state = list(resume.rows), resume.global_state
        path = recorder.out_dir / checkpoint.CHECKPOINT
        kernel.restore(prep, strategy, resume, None, path)
        kept = _kept_of(resume, planes, path)
    env = simpy.Environment(initial_time=resume.now_s if resume is not None else 0)
    first = rows[-1]["round"] + 1 if rows else 1
    if rows and kernel.reached_target(sc, rows[-1]):
        first = tr.rounds + 1  # it had stopped there

    def server():
        nonlocal global_state
        for r in range(first, tr.rounds + 1):
            if env.now >= sc.horizon:
                break
            wall0 = time.perf_counter()
            candidates = kernel.candidates(sc, net, env.now)
            if not candidates:
                t_next = net.next_contact_s(env.now)
                if t_next >= sc.horizon:
                    break
                yield env.timeout(t_next - env.now)
                candidates = kernel.candidates(sc, net, env.now)
            t0 = env.now
            selected = strategy.select(RoundContext(r, t0, tuple(candidates),
                                                    tr.clients_per_round, sc.seed))
            down_payload = strategy.encode_global(global_state)
            rnd = kernel.Round(algorithm.label, r, t0 + tr.round_deadline, down_payload,
                                strategy.decode_global(down_payload), strategy.new_aggregator())
            by_plane: dict[int, list[int]] = {p: [] for p in kept}
            for c in selected:
                by_plane.setdefault(planes[c], []).append(c)
            now_kept = {p: kept.pop(p, []) for p in by_plane}
            plane = _Plane(env, prep, strategy, rnd, rings, planes, pool)
            plane.queue(rnd.received, down_payload,
                        [c for _, members in sorted(by_plane.items()) for c in members], 1)
            yield env.all_of([env.process(plane.run(p, members, now_kept[p], kept))
                              for p, members in sorted(by_plane.items())])
            plane.release()
            global_state = rnd.aggregator.result(global_state)
            for row in rnd.clients:
                row["aggregated"] = row["up_status"] == "delivered"
            completed = sum(row["aggregated"] for row in rnd.clients)
            evaluation = (pool or prep.trainer).evaluate(global_state)
            row = kernel.round_row(algorithm.label, r, t0, env.now, len(selected), completed,
                                    rnd.transfers, [], evaluation,
                                    rows[-1] if rows else None, wall0)
            row["bytes_plane"] = sum(t["bytes"] for t in rnd.transfers
                                     if t["direction"] in RING_DIRECTIONS)
            kernel.write_round(recorder, row, rnd.transfers,
                                sorted(rnd.clients, key=lambda x: x["client"]), [])
            rows.append(row)
            if on_checkpoint:
                on_checkpoint(AlgorithmState(
                    algorithm.label, list(rows), env.now, global_state, strategy.checkpoint(),
                    server={"kept": [[p, [[k.holder, np.frombuffer(k.payload, np.uint8),
                                           k.n_samples] for k in ks]]
                                     for p, ks in kept.items()]}))
            if on_round_end:
                on_round_end(row)
            if kernel.reached_target(sc, row):
                break

    env.run(until=env.process(server()))
    return kernel.summary(rows, env.now, tr.target_accuracy)


def _kept_of(resume: AlgorithmState, planes: list[int], path) -> dict[int, list[_Kept]]:
    """The late updates a checkpoint kept, by plane, in its order; ``CheckpointError`` if they
    are not updates of the scenario's planes."""
    kept: dict[int, list[_Kept]] = {}
    try:
        for p, updates in resume.server["kept"]:
            if p not in planes or p in kept:
                raise ValueError(f"plane {p!r} is not one of the scenario's (or twice)")
            kept[p] = []
            for c, payload, n_samples in updates:
                if not (type(c) is int and 0 <= c < len(planes) and planes[c] == p):
                    raise ValueError(f"satellite {c!r} is not one of plane {p!r}'s")
                if payload.dtype != np.uint8 or payload.ndim != 1 or not isinstance(
                        n_samples, (int, np.integer)):
                    raise TypeError("a kept update is not a byte array and a sample count")
                kept[p].append(_Kept(c, payload.tobytes(), n_samples))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise checkpoint.CheckpointError(
            f"its {resume.label} state does not fit this scenario ({e}); delete it and run "
            f"without --resume to start over", file=str(path)) from None
    return kept


class _Kept:
    """A late update, kept by the member that made it for its plane's next round."""

    def __init__(self, holder: int, payload: bytes, n_samples: int):
        self.holder, self.payload, self.n_samples = holder, payload, n_samples


class _Sink:
    """What reaches a plane's sink in one plane round."""

    def __init__(self, aggregator):
        self.aggregator = aggregator
        self.rows: list[dict[str, Any]] = []  # clients.csv rows of the updates it holds
        self.n_samples = 0
        self.members: set[int] = set()  # the members whose update it holds


class _Plane:
    """One round's plane processes (what they share)."""

    def __init__(self, env, prep, strategy, rnd, rings, planes, pool=None):
        self.env, self.prep, self.strategy, self.rnd = env, prep, strategy, rnd
        self.rings, self.planes = rings, planes
        self.net, self.policy = prep.network, prep.scenario.links.on_loss_of_signal
        self.pool = pool
        self.contexts: list[int] = []  # the pool's contexts of this round
        self.jobs: dict[tuple[int, int], Any] = {}  # (member, plane round): its queued job

    def queue(self, received: Any, payload: bytes, members: list[int], k: int) -> None:
        """With a pool: queue the training of ``members`` in plane round ``k`` from
        ``received`` (the decoded ``payload``)."""
        if self.pool is None or not members:
            return
        context = self.pool.context(self.strategy, received, payload)
        self.contexts.append(context)
        seed, r = self.prep.scenario.seed, self.rnd.number
        for c in members:
            key = (seed, "train", r, c) if k == 1 else (seed, "train", r, c, k)
            self.jobs[c, k] = self.pool.train(context, [c], [key])

    def release(self) -> None:
        """The round is over: drop its jobs that were not needed."""
        for context in self.contexts:
            self.pool.release(context)
        self.contexts, self.jobs = [], {}

    def _row(self, client: int, direction: str, out) -> None:
        self.rnd.transfers.append(kernel.transfer_row(
            self.rnd.algorithm, self.rnd.number, self.net.client_ids[client], direction, out))

    def run(self, p: int, members: list[int], carried: list[_Kept], kept: dict):
        """Plane ``p``'s round: one copy down and round the ring, ``plane_rounds`` plane
        averages at the sink, the upload; late updates go to ``kept[p]``."""
        env, net, rnd, strategy = self.env, self.net, self.rnd, self.strategy
        ring, ids = self.rings[p], self.net.client_ids
        t0 = env.now
        sink = sink_of(net, self.planes, p, t0)
        n_up = len(strategy.encode_plane(rnd.received))  # the plane model's size
        t_leave = leave_by(ring, ids[sink], net.server_id, t0, n_up, rnd.deadline_s)
        cut_s = t0 if t_leave is None else t_leave
        rows = {c: self._client_row(c) for c in members}
        holds = set()  # members that hold the global model
        if members:
            tried: set[int] = set()  # entries whose copy was lost: the next satellite tries
            while True:
                entry = entry_of(net, self.planes, p, env.now, len(rnd.down_payload),
                                 rnd.deadline_s, skip=tried)
                down = yield from send(env, net, entry, "down", len(rnd.down_payload),
                                       rnd.deadline_s, round_=rnd.number, policy=self.policy)
                self._row(entry, "down", down)
                tried.add(entry)
                if down.status != "dropped" or env.now >= cut_s or entry_of(
                        net, self.planes, p, env.now, 1, rnd.deadline_s, skip=tried) is None:
                    break
            if down.status == "delivered":
                holds = yield from self._ring(ring, entry, members, rnd.down_payload, cut_s,
                                              rows, first=True)
            else:
                for c in members:
                    rows[c]["down_status"] = down.status
        state, n_samples, last = rnd.received, 0, None
        late: dict[int, _Kept] = {}
        every: list = []  # every process this plane started
        for k in range(1, self.strategy.params.plane_rounds + 1):
            at_sink = _Sink(strategy.plane_aggregator())
            procs = [env.process(self._carry(ring, kept_, sink, cut_s, at_sink))
                     for kept_ in (carried if k == 1 else [])]
            settled = [env.event() for _ in holds]
            procs += [env.process(self._member(ring, c, k, sink, state, cut_s, at_sink,
                                               rows[c], late, done))
                      for c, done in zip(sorted(holds), settled, strict=True)]
            every += procs
            wait = env.timeout(max(0.0, cut_s - env.now))
            yield env.all_of(settled + procs[:len(procs) - len(settled)]) | wait
            if at_sink.aggregator.count:
                last = at_sink
                state = at_sink.aggregator.result(rnd.received)
            if k == strategy.params.plane_rounds or env.now >= cut_s or last is None:
                break
            payload = strategy.encode_plane(state)  # round the ring again
            received = strategy.decode_global(payload)
            self.queue(received, payload, sorted(last.members), k + 1)
            holds = yield from self._ring(ring, sink, sorted(last.members), payload, cut_s,
                                          rows)
            state = received
        if last is not None:
            payload = strategy.encode_plane(state)
            n_samples = last.n_samples
            up = yield from relay(env, ring, net.seed, ids[sink], net.server_id, len(payload),
                                  rnd.deadline_s, flow=(sink, 0), round_=rnd.number,
                                  policy=self.policy)
            self._row(sink, "up", up)
            for row in last.rows:
                row["up_status"] = up.status
                row["arrived_s"] = up.end_s if up.status == "delivered" else None
            if up.status == "delivered":
                rnd.aggregator.add(payload, n_samples)
        yield env.all_of(every)  # the members still training
        for row in rows.values():
            if row["down_status"] == "delivered" and row["up_status"] is None:
                row["up_status"] = "late"  # its update is in an earlier plane model only
        kept[p] = [late[c] for c in sorted(late)]

    def _client_row(self, c: int) -> dict[str, Any]:
        row = {"algorithm": self.rnd.algorithm, "round": self.rnd.number,
               "client": self.net.client_ids[c], "n_samples": len(self.prep.shards[c]),
               "down_status": None, "compute_start_s": None, "compute_s": None,
               "up_status": None, "arrived_s": None, "aggregated": False}
        self.rnd.clients.append(row)
        return row

    def _ring(self, ring: Router, src: int, members: list[int], payload: bytes, cut_s: float,
              rows: dict, first: bool = False, k: int = 1):
        """Pass ``payload`` from ``src`` round the ring to ``members`` as a broadcast tree
        (``ring`` rows); the members that hold it then."""
        env, ids = self.env, self.net.client_ids
        tree = Tree(env)
        tree.add(ids[src], env.now, there=True)
        procs = {c: env.process(relay(env, ring, self.net.seed, ids[src], ids[c], len(payload),
                                      cut_s, flow=(c, 1) if first else (c, 1, k),
                                      round_=self.rnd.number, policy=self.policy, tree=tree))
                 for c in members if c != src}
        if procs:
            yield env.all_of(list(procs.values()))
        holds = {c for c in members if c == src}
        for c, proc in procs.items():
            self._row(c, "ring", proc.value)
            if proc.value.status == "delivered":
                holds.add(c)
        if first:
            for c in members:
                rows[c]["down_status"] = "delivered" if c in holds else procs[c].value.status
        return holds

    def _carry(self, ring: Router, kept: _Kept, sink: int, cut_s: float, at_sink: _Sink):
        """A late update of the round before, from the member that kept it to this sink."""
        ids = self.net.client_ids
        if kept.holder != sink:
            out = yield from relay(self.env, ring, self.net.seed, ids[kept.holder], ids[sink],
                                   len(kept.payload), cut_s, flow=(kept.holder, 3),
                                   round_=self.rnd.number, policy=self.policy)
            self._row(kept.holder, "carry", out)
            if out.status != "delivered":
                return
        at_sink.aggregator.add(kept.payload, kept.n_samples)
        at_sink.n_samples += kept.n_samples

    def _member(self, ring: Router, c: int, k: int, sink: int, state, cut_s: float,
                at_sink: _Sink, row: dict, late: dict, done: simpy.Event):
        """A member holding the model: train, send to the sink if the plan gets the update
        there by ``cut_s`` (else keep it: ``late``); ``done`` fires when the sink need not
        wait for it any more."""
        env, sc, ids, r = self.env, self.prep.scenario, self.net.client_ids, self.rnd.number
        update = kernel.trained(self.prep, self.strategy, state, c,
                                (r, c) if k == 1 else (r, c, k), self.pool,
                                self.jobs.pop((c, k), None))
        compute_s = update.flops / sc.compute.flops_per_s
        if k == 1:
            row["compute_start_s"], row["compute_s"] = env.now, compute_s
        else:
            row["compute_s"] += compute_s
        if env.now + compute_s >= self.rnd.deadline_s:
            done.succeed()
            yield env.timeout(self.rnd.deadline_s - env.now)
            row["up_status"] = "not_sent"
            return
        if env.now + compute_s > cut_s:
            done.succeed()  # it cannot be at the sink in time: the sink does not wait
        yield env.timeout(compute_s)
        n = len(update.payload)
        arrived = c == sink
        if env.now > cut_s or (c != sink and not ring.earliest(ids[c], ids[sink], env.now, n,
                                                                cut_s)[1]):
            arrived = False
            row["up_status"] = "late"
        elif c != sink:
            out = yield from relay(env, ring, self.net.seed, ids[c], ids[sink], n, cut_s,
                                   flow=(c, 2) if k == 1 else (c, 2, k), round_=r,
                                   policy=self.policy)
            self._row(c, "plane", out)
            arrived = out.status == "delivered"
            row["up_status"] = None if arrived else (
                "late" if out.status == "timeout" else out.status)
        if row["up_status"] == "late":  # kept for the plane's next round
            late[c] = _Kept(c, update.payload, update.n_samples)
        if arrived:
            at_sink.aggregator.add(update.payload, update.n_samples)
            at_sink.n_samples += update.n_samples
            at_sink.rows.append(row)
            at_sink.members.add(c)
        if not done.triggered:
            done.succeed()
