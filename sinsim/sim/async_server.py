"""The asynchronous server (strategies with ``synchronous = False``: FedAsync, FedBuff).

Clients are dispatched as they finish, up to ``concurrency`` at once; the server folds every
update in when it arrives (``Strategy.on_arrival``), and ``training.rounds`` counts server model
versions. One SimPy process:

- **Dispatch.** Whenever fewer than ``concurrency`` clients are busy, the free candidates
  (``training.selection``, minus the busy clients) are drawn from in one *batch*: batch b (the
  b-th server instant that dispatches) picks the free slots' number of clients with
  ``strategy.select`` and ``RoundContext(round=b)``. Each dispatched client then runs the
  kernel's client process (``sinsim.sim.kernel.client``) on a one-client round numbered
  b: the current global model goes down (``routing.send``), the client trains
  (``rng_for(seed, "train", b, client)``), waits its compute time, sends its update up; loss
  draws are keyed by b as a round's are, and the deadline is the dispatch time +
  ``training.round_deadline``. So transfers, bytes, deadlines and losses are the synchronous
  ones, and the keys (b, client) never repeat. With ``concurrency`` 1 and no losses batch b is
  round b of FedAvg with one client a round, on the same draws.
- **Handover** (the strategy's ``handover``). ``newest`` (default): the client trains the
  model the server held when its download's first bit went on the air (the latest version
  made at or before that instant; the payload's size is the same for every version, so the
  transfer is the one dispatched). ``dispatch``: the model held at dispatch.
- **Arrival.** An update that arrives has staleness tau = (server version now) - (the version
  its client downloaded), >= 0; ``on_arrival`` returns the next global model (a new version:
  FedAsync, every arrival) or the same object (no new version: FedBuff, buffering).
- **Rows.** Each new version v is one ``rounds.csv`` row, written when it is made: ``round`` v,
  ``sim_start_s`` the time of version v-1 (0 for the first), ``sim_end_s`` now;
  ``selected`` / ``completed`` / ``dropped`` count the dispatches that *finished* since version
  v-1 (completed: their update was applied in v; dropped: a transfer lost or late) and
  ``bytes_*`` their transfers; ``staleness_mean`` / ``staleness_max`` are over the updates
  applied in v; ``test_accuracy`` / ``test_loss`` evaluate version v. Those dispatches' rows in
  ``transfers.csv`` and ``clients.csv`` carry ``round`` v too (so a round's bytes and counts are
  sums over its transfers and clients, as for synchronous runs), and ``aggregated`` says that
  the update went into version v. Dispatches still in flight at the last version (or at the
  horizon) are not in the tables.

- **Training** (``training.workers`` > 1, a ``pool``): a dispatch's training is queued as soon
  as its model is known, on the pool's context of that version (one a version, opened when a job
  first needs it, released when no download can still get it and no job on it is waiting): at
  dispatch for ``dispatch`` handover, when the download's first bit goes on the air for
  ``newest`` (a dry run of the same transfer, ``kernel.downlink_dry_run``, says when, and whether
  it will be delivered at all). The client takes the job's update when its download is handed
  over; had a version been made at that very instant after the job was queued, the job is
  queued again on the handed-over version. So the tables are those of one process. Without a
  pool the client trains here, when its download arrives.

Not done here: ``training.batched`` (one client a job), and checkpoints (no ``on_checkpoint``
mid-algorithm: a ``--resume``d run starts an interrupted asynchronous algorithm again from its
first version, which gives the same tables since every draw is keyed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from sinsim.learn.parallel import TrainingPool
from sinsim.learn.strategies import RoundContext, Strategy
from sinsim.sim import kernel


@dataclass
class _Dispatch:
    """One client dispatched at batch ``batch``; it trains the global model of ``version``
    (the version at dispatch until its download is handed over)."""

    client: int
    batch: int
    version: int
    rnd: kernel.Round  # a one-client round
    arrival: _Arrival
    job_version: int = -1  # the version of the pool job queued for it (``rnd.job``)


class _Arrival:
    """The one-client round's aggregator: keeps the update that arrived (if any)."""

    def __init__(self) -> None:
        self.payload: bytes | None = None
        self.n_samples = 0

    def add(self, payload: bytes, n_samples: int) -> None:
        self.payload, self.n_samples = payload, n_samples

    @property
    def count(self) -> int:
        return int(self.payload is not None)


def first_bit_s(down: Any) -> float:
    """When the first bit of transfer ``down`` went on the air (its start if it never did)."""
    on_air = [seg for hop in down.hops[:1] for seg in hop.segments[:1]]
    return on_air[0][0] if on_air else down.start_s


def run_async(prep: Any, algorithm: Any, strategy: Strategy, recorder: Any,
              on_round_end: Any, pool: TrainingPool | None = None) -> dict[str, Any]:
    """Run ``algorithm`` (an asynchronous ``strategy``) to ``training.rounds`` versions (or the
    horizon, or the target with ``stop_at_target``); its summary, as ``run_algorithm``'s.
    ``pool``: the clients train there (see the module docstring); None: in this process."""
    sc, net, tr = prep.scenario, prep.network, prep.scenario.training
    concurrency = strategy.params.concurrency or tr.clients_per_round
    label = algorithm.label
    env = simpy.Environment()
    done = simpy.Store(env)
    rows: list[dict[str, Any]] = []
    batteries = kernel.batteries(prep)  # with ``power:``; a client's loads never overlap

    def dispatch(d: _Dispatch):
        yield from kernel.client(env, prep, strategy, d.rnd, d.client, pool)
        yield done.put(d)

    handover = getattr(strategy.params, "handover", "newest")
    # (time made, version, payload, decoded): the versions a pending download may still get
    history: list[tuple[float, int, bytes, Any]] = []
    pending: set[int] = set()  # id() of the dispatches whose download is not handed over yet

    def hand_over(d: _Dispatch, down: Any) -> None:
        """Give ``d`` the newest model at its download's first bit on the air."""
        pending.discard(id(d))
        start_s = first_bit_s(down)
        _, d.version, payload, received = [h for h in history if h[0] <= start_s][-1]
        assert len(payload) == len(d.rnd.down_payload), "the global payload changed size"
        d.rnd.down_payload, d.rnd.received = payload, received
        if pool is not None:
            queue_training(d, d.version, payload, received)

    contexts: dict[int, int] = {}  # version: the pool's context of its model

    def queue_training(d: _Dispatch, version: int, payload: bytes, received: Any) -> None:
        """Make sure a job of ``d`` on ``version`` (``payload``, decoded ``received``) is
        queued."""
        if d.rnd.job is not None and d.job_version == version:
            return
        if version not in contexts:
            contexts[version] = pool.context(strategy, received, payload)
        d.rnd.job = pool.train(contexts[version], [d.client],
                               [(sc.seed, "train", d.batch, d.client)])
        d.job_version = version

    def queue_at_first_bit(d: _Dispatch, start_s: float):
        """Queue ``d``'s training when its download's first bit goes on the air, on the
        newest model then (that download is still pending: its versions are in ``history``)."""
        yield env.timeout(start_s - env.now)
        queue_training(d, *[h for h in history if h[0] <= start_s][-1][1:])

    def release_contexts() -> None:
        """Release the versions no download can get any more and no waiting job is on."""
        live = {h[1] for h in history} | {
            d.job_version for d in busy.values() if d.rnd.job is not None}
        for v in [v for v in contexts if v not in live]:
            pool.release(contexts.pop(v))

    busy: dict[int, _Dispatch] = {}  # client: its dispatch under way

    def server():
        global_state, version, batch = prep.init_state, 0, 0
        payload = strategy.encode_global(global_state)
        received = strategy.decode_global(payload)
        history.append((env.now, version, payload, received))
        finished: list[_Dispatch] = []  # dispatches that finished since the last version
        stale: list[int] = []  # staleness of the updates applied since the last version
        t_last, wall0 = env.now, time.perf_counter()
        while True:
            if env.now >= sc.horizon:
                return
            free = [c for c in kernel.candidates(sc, net, env.now) if c not in busy]
            k = min(concurrency - len(busy), len(free))
            if k > 0:
                batch += 1
                ctx = RoundContext(batch, env.now, tuple(free), k, sc.seed)
                for c in strategy.select(ctx):
                    rnd = kernel.Round(label, batch, env.now + tr.round_deadline, payload,
                                        received, _Arrival(), batteries=batteries)
                    d = _Dispatch(c, batch, version, rnd, rnd.aggregator)
                    if handover == "newest":
                        rnd.on_download = lambda down, d=d: hand_over(d, down)
                        pending.add(id(d))
                    elif pool is not None:
                        rnd.on_download = lambda down, d=d: queue_training(
                            d, d.version, d.rnd.down_payload, d.rnd.received)
                    busy[c] = d
                    if pool is not None:  # queue its training once its model is known
                        down = kernel.downlink_dry_run(prep, rnd, c, env.now)
                        if down.status == "delivered" and handover == "newest":
                            env.process(queue_at_first_bit(d, first_bit_s(down)))
                        elif down.status == "delivered":
                            queue_training(d, version, payload, received)
                    env.process(dispatch(d))
            if not busy:  # nobody in view: wait for the next contact
                t_next = net.next_contact_s(env.now)
                if t_next >= sc.horizon or t_next <= env.now:
                    return
                yield env.timeout(t_next - env.now)
                continue
            d = yield done.get()
            del busy[d.client]
            pending.discard(id(d))
            finished.append(d)
            if d.arrival.payload is None:
                continue
            staleness = version - d.version
            assert staleness >= 0, staleness
            stale.append(staleness)
            new_state = strategy.on_arrival(global_state, d.arrival.payload,
                                            d.arrival.n_samples, staleness)
            if new_state is global_state:  # buffered: no new version yet
                continue
            version, global_state = version + 1, new_state
            payload = strategy.encode_global(global_state)
            received = strategy.decode_global(payload)
            history.append((env.now, version, payload, received))
            oldest = min((b.version for b in busy.values() if id(b) in pending),
                         default=version)
            while len(history) > 1 and history[1][1] <= oldest:  # no download needs it
                history.pop(0)
            if pool is not None:
                release_contexts()
            row = _version_row(recorder, label, version, t_last, env.now, finished,
                               stale, rows, (pool or prep.trainer).evaluate(global_state),
                               wall0)
            rows.append(row)
            if on_round_end:
                on_round_end(row)
            finished, stale, t_last, wall0 = [], [], env.now, time.perf_counter()
            if version >= tr.rounds or kernel.reached_target(sc, row):
                return

    try:
        env.run(until=env.process(server()))
    finally:
        for context in contexts.values():  # the jobs of dispatches still under way
            pool.release(context)
    return kernel.summary(rows, env.now, tr.target_accuracy)


def _version_row(recorder: Any, label: str, version: int, t0: float,
                 now: float, finished: list[_Dispatch], stale: list[int],
                 rows: list[dict[str, Any]], evaluation: tuple[float, float],
                 wall0: float) -> dict[str, Any]:
    """Write version ``version``'s rows (its round, and the transfers and clients of the
    dispatches that finished since ``t0``); the round row. ``wall0``: the host clock at
    version ``version`` - 1."""
    transfers, clients, bits = [], [], []
    for d in finished:
        for t in d.rnd.transfers:
            transfers.append({**t, "round": version})
        for c in d.rnd.clients:
            clients.append({**c, "round": version,
                            "aggregated": d.arrival.payload is not None})
        bits.extend(d.rnd.bits)
    completed = sum(d.arrival.payload is not None for d in finished)
    row = kernel.round_row(label, version, t0, now, len(finished), completed, transfers, bits,
                            evaluation, rows[-1] if rows else None, wall0)
    row["staleness_mean"] = float(np.mean(stale)) if stale else None
    row["staleness_max"] = max(stale) if stale else None
    kernel.write_round(recorder, row, transfers,
                        sorted(clients, key=lambda x: (x["client"], x["compute_start_s"] or 0)),
                        [p for d in finished for p in d.rnd.power])
    return row
