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

- **Checkpoints** (``--resume``). After every version the server hands ``on_checkpoint`` the
  version's state (rows, clock, global model, strategy, batteries) and its *log*: every
  training so far (its ``ClientUpdate``, keyed by (batch, client); each is handed over and
  written once, to a file of its own under ``checkpoint.log/``, and not kept in memory after).
  Dispatches are in flight at every version, inside SimPy processes that cannot be saved, so a resumed run *replays* the
  run from t = 0: the same dispatches, transfers, handovers and arrivals, each training taken
  from the log instead of trained, each version's evaluation from its saved row, and no rows
  written, up to the checkpoint's last version; from there it goes on live. This is exact
  because everything the replay recomputes (selection, transfers, losses, batteries,
  ``on_arrival``, the strategy's client states) is a function of the keyed draws and the
  updates, which are the logged ones; and it is checked: every version made again must equal
  its saved row (host time and evaluation aside), and at the last one the global model, the
  strategy's state and the batteries must equal the checkpoint's, else the checkpoint is
  refused (``CheckpointError``). A training not in the log (one that started after the
  checkpoint was taken) is trained as in any run. The replay costs the simulation of the
  versions before the checkpoint, not their training or evaluation; the log holds one update
  payload per training so far (it grows with the run).

- **Training** (``training.workers`` > 1, a ``pool``): a dispatch's training is queued as soon
  as its model is known, on the pool's context of that version (one a version, opened when a job
  first needs it, released when no download can still get it and no job on it is waiting): at
  dispatch for ``dispatch`` handover, when the download's first bit goes on the air for
  ``newest`` (a dry run of the same transfer, ``kernel.downlink_dry_run``, says when, and whether
  it will be delivered at all). The client takes the job's update when its download is handed
  over; if the job is on another version than the one handed over (a version made at that very
  instant, or a real download that started later than its dry run, e.g. waiting for an antenna),
  it is queued again on the handed-over version. So the tables are those of one process. Without
  a pool the client trains here, when its download arrives; a replayed dispatch (a resume) is not
  queued at all.

Not done here: ``training.batched`` (one client a job).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy
import torch

from sinsim.learn.codecs import ModelSpec
from sinsim.learn.parallel import TrainingPool
from sinsim.learn.strategies import ClientUpdate, RoundContext, Strategy
from sinsim.sim import checkpoint, kernel
from sinsim.sim.checkpoint import AlgorithmState


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
              on_round_end: Any, pool: TrainingPool | None = None, *,
              resume: AlgorithmState | None = None,
              on_checkpoint: Any = None) -> dict[str, Any]:
    """Run ``algorithm`` (an asynchronous ``strategy``) to ``training.rounds`` versions (or the
    horizon, or the target with ``stop_at_target``); its summary, as ``run_algorithm``'s.
    ``on_checkpoint`` is given the state after every version; ``resume`` replays the run up to
    its checkpoint's last version (module docstring) and goes on from there. ``pool``: the
    clients train there (module docstring); None: in this process."""
    sc, net, tr = prep.scenario, prep.network, prep.scenario.training
    concurrency = strategy.params.concurrency or tr.clients_per_round
    label = algorithm.label
    env = simpy.Environment()
    done = simpy.Store(env)
    rows: list[dict[str, Any]] = []
    batteries = kernel.batteries(prep)  # with ``power:``; a client's loads never overlap
    replay = _Replay(prep, strategy, resume, recorder)
    # the trainings not yet handed to a checkpoint ((batch, client) -> update), and the names
    # of those that were (written: a checkpoint's log holds every training so far)
    log: dict[tuple[int, int], ClientUpdate] = {}
    logged = dict.fromkeys(resume.log) if resume is not None else {}

    def on_trained(key: tuple[int, int], update: ClientUpdate) -> None:
        if on_checkpoint is not None and _entry(*key) not in logged:
            log[key] = update

    def dispatch(d: _Dispatch):
        yield from kernel.client(env, prep, strategy, d.rnd, d.client, pool)
        yield done.put(d)

    handover = getattr(strategy.params, "handover", "newest")
    # (time made, version, payload, decoded): the versions a pending download may still get
    history: list[tuple[float, int, bytes, Any]] = []
    pending: set[int] = set()  # id() of the dispatches whose download is not handed over yet

    def held_at(t_s: float) -> tuple:
        """``(made_s, version, payload, received)``: the newest model the server held at
        ``t_s`` (a download still pending keeps it in ``history``)."""
        return [h for h in history if h[0] <= t_s][-1]

    def hand_over(d: _Dispatch, down: Any) -> None:
        """Give ``d`` the newest model at its download's first bit on the air."""
        pending.discard(id(d))
        _, d.version, payload, received = held_at(first_bit_s(down))
        assert len(payload) == len(d.rnd.down_payload), "the global payload changed size"
        d.rnd.down_payload, d.rnd.received = payload, received
        if pool is not None and d.rnd.replayed is None:
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
        queue_training(d, *held_at(start_s)[1:])

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
                                        received, _Arrival(), batteries=batteries,
                                        replayed=replay.log.pop((batch, c), None))
                    rnd.on_trained = lambda u, key=(batch, c): on_trained(key, u)
                    d = _Dispatch(c, batch, version, rnd, rnd.aggregator)
                    if handover == "newest":
                        rnd.on_download = lambda down, d=d: hand_over(d, down)
                        pending.add(id(d))
                    elif pool is not None and rnd.replayed is None:
                        rnd.on_download = lambda down, d=d: queue_training(
                            d, d.version, d.rnd.down_payload, d.rnd.received)
                    busy[c] = d
                    if pool is not None and rnd.replayed is None:  # queue its training
                        down = kernel.downlink_dry_run(prep, rnd, c, env.now)  # once known
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
            tables = _version_tables(label, version, t_last, env.now, finished, stale, rows,
                                     wall0)
            if version <= replay.versions:  # before the checkpoint: its rows are written
                row = replay.check(tables, global_state, batteries)
            else:
                row = _write_version(recorder, tables,
                                     (pool or prep.trainer).evaluate(global_state))
            rows.append(row)
            if version > replay.versions and on_checkpoint:
                new = {_entry(b, c): {"batch": b, "client": c, "update": kernel.update_data(u)}
                       for (b, c), u in log.items()}
                on_checkpoint(AlgorithmState(
                    label, list(rows), env.now, global_state, strategy.checkpoint(),
                    kernel.battery_states(batteries), log={**logged, **new}))
                logged.update(dict.fromkeys(new))  # written: not kept here any more
                log.clear()
            if version > replay.versions and on_round_end:
                on_round_end(row)
            finished, stale, t_last, wall0 = [], [], env.now, time.perf_counter()
            if version >= tr.rounds or kernel.reached_target(sc, row):
                return

    try:
        env.run(until=env.process(server()))
    finally:
        for context in contexts.values():  # the jobs of dispatches still under way
            pool.release(context)
    replay.finish(len(rows))
    return kernel.summary(rows, env.now, tr.target_accuracy)


def _entry(batch: int, client: int) -> str:
    """The name of a training in a checkpoint's log."""
    return f"b{batch}c{client}"


class _Replay:
    """A resumed run's way to its checkpoint: the trainings it logged (``log``), and the
    versions it made (``versions``), which the replay makes again and checks."""

    def __init__(self, prep: Any, strategy: Strategy, resume: AlgorithmState | None,
                 recorder: Any):
        self.strategy, self.resume = strategy, resume
        self.log: dict[tuple[int, int], ClientUpdate] = {}  # taken as the replay meets them
        self.path = recorder.out_dir / checkpoint.CHECKPOINT
        self.versions = len(resume.rows) if resume is not None else 0
        if resume is None:
            return
        try:
            spec = ModelSpec.of(resume.global_state)
            if spec != prep.spec:
                raise ValueError(f"a global model of {spec.names} {spec.shapes}, "
                                 f"not the scenario's")
            for name, data in resume.log.items():
                b, c = data["batch"], data["client"]
                if type(b) is not int or type(c) is not int or name != _entry(b, c):
                    raise TypeError("a logged training not keyed by (batch, client)")
                self.log[(b, c)] = kernel.update_of(data["update"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            self._refuse(f"its {resume.label} state does not fit this scenario ({e})")

    def _refuse(self, why: str):
        raise checkpoint.CheckpointError(
            f"{why}; delete it and run without --resume to start over", file=str(self.path))

    def check(self, tables: tuple, global_state: Any, batteries: Any) -> dict[str, Any]:
        """Version ``row["round"]`` made again: the checkpoint's row (its host time), once
        the one made again matches it; at the last, the model, strategy and batteries too."""
        row = tables[0]
        saved = self.resume.rows[row["round"] - 1]
        for key, value in row.items():
            if key != "host_wall_s" and key not in ("test_accuracy", "test_loss") \
                    and _difference(value, saved.get(key)):
                self._refuse(f"replaying {self.resume.label} to its checkpoint gave another "
                             f"version {row['round']} ({key}: {saved.get(key)!r} then, "
                             f"{value!r} now)")
        if row["round"] == self.versions:
            for what, now, then in (
                    ("global model", global_state, self.resume.global_state),
                    ("strategy state", self.strategy.checkpoint(), self.resume.strategy),
                    ("batteries", kernel.battery_states(batteries), self.resume.batteries)):
                diff = _difference(now, then)
                if diff:
                    self._refuse(f"replaying {self.resume.label} to its checkpoint gave "
                                 f"another {what} (at {diff})")
        return saved

    def finish(self, versions: int) -> None:
        if versions < self.versions:
            self._refuse(f"replaying {self.resume.label} ended at version {versions}, before "
                         f"its checkpoint's {self.versions}")


def _version_tables(label: str, version: int, t0: float, now: float,
                    finished: list[_Dispatch], stale: list[int], rows: list[dict[str, Any]],
                    wall0: float) -> tuple:
    """Version ``version``'s rows: its round row (without its evaluation), and the transfers,
    clients and power rows of the dispatches that finished since ``t0``. ``wall0``: the host
    clock at version ``version`` - 1."""
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
                           (float("nan"), float("nan")), rows[-1] if rows else None, wall0)
    row["staleness_mean"] = float(np.mean(stale)) if stale else None
    row["staleness_max"] = max(stale) if stale else None
    return (row, transfers,
            sorted(clients, key=lambda x: (x["client"], x["compute_start_s"] or 0)),
            [p for d in finished for p in d.rnd.power])


def _write_version(recorder: Any, tables: tuple,
                   evaluation: tuple[float, float]) -> dict[str, Any]:
    """Write a version's rows (``_version_tables``) with its evaluation; its round row."""
    row, transfers, clients, power = tables
    row["test_accuracy"], row["test_loss"] = evaluation
    kernel.write_round(recorder, row, transfers, clients, power)
    return row


def _difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first key path where two pieces of checkpoint data (dicts, lists, tuples, numbers,
    strings, tensors, arrays) differ, bit for bit (NaN equals NaN); None if they are equal."""
    here = path or "(top)"
    if isinstance(a, (torch.Tensor, np.ndarray)) or isinstance(b, (torch.Tensor, np.ndarray)):
        x = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
        y = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else b
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                and type(a) is type(b) and x.dtype == y.dtype
                and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")):
            return here
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return here
        for key in a:
            diff = _difference(a[key], b[key], f"{path}.{key}" if path else str(key))
            if diff:
                return diff
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return here
        for i, (x, y) in enumerate(zip(a, b)):
            diff = _difference(x, y, f"{path}.{i}" if path else str(i))
            if diff:
                return diff
        return None
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return None  # NaN, as a loss may be
    return None if type(a) is type(b) and a == b else here
