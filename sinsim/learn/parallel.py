"""Clients of a round trained in several processes, with the same numbers as in one.

A client's update depends only on (strategy, received global model, client, the client's state,
its random stream): never on the clock. So the engine may queue a round's training jobs as soon
as the round starts, in the order it will need them, and block only when it needs an update.

``TrainingPool(trainer, processes)`` runs ``processes - 1`` helper processes (started once per
run, from a fork server that has imported torch once per Python process, in a background thread
so that the run does not wait for them; each builds its own model and ``LocalTrainer`` on the
training data, shared through torch's shared memory, not copied; ``threads`` torch threads
each). The run's own process is the last worker: while it waits for an update it takes queued
jobs itself, so it also does all the work until the helpers are up. Per round the pool sends
every helper, once, the strategy (only when its pickle changed) and the broadcast payload, which
each decodes as the clients do. A job carries the clients, their states
(``strategy.client_state``) and the round's random-stream key; it returns ``ClientUpdate``s and
changes nothing: the engine commits the states itself. A job whose update is never asked for
(its downlink failed after all) is dropped.

``evaluate`` splits the test batches across the processes and sums the per-batch results in
batch order, so accuracy and loss equal ``LocalTrainer.evaluate``'s to the last bit.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sinsim._lifeline import exit_with_parent
from sinsim._rng import rng_for
from sinsim.learn import portable
from sinsim.learn.training import LocalTrainer, combine_eval

_POLL_S = 0.05  # how often a waiting process looks for a job to take or a dead helper


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not all the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def inside_another_pool() -> bool:
    """Is this process a worker of another pool (a sweep's or a Dask cluster's worker, a
    ``multiprocessing`` child, or a pytest-xdist worker)? That pool already spreads its work over
    the cores: a pool inside each of its workers would only oversubscribe them."""
    return (multiprocessing.parent_process() is not None
            or "PYTEST_XDIST_WORKER" in os.environ)


def resolve_workers(setting: int | str, *, clients_per_round: int, cpu_threads: int = 1,
                    device: torch.device | None = None) -> int:
    """How many processes train: ``setting`` when it is a number; ``auto``: one per
    ``cpu_threads`` usable cores (the process's CPU affinity), at most ``clients_per_round``.
    The load average is not subtracted: right after any other run it stays above 1 for a
    minute, and ``auto`` then used one core of an idle machine. Always 1 on a GPU, and for
    ``auto`` inside another pool's worker (:func:`inside_another_pool`)."""
    if device is not None and device.type != "cpu":
        return 1
    if setting == "auto":
        if inside_another_pool():
            return 1
        return max(1, min(usable_cores() // max(cpu_threads, 1), clients_per_round))
    n = int(setting)
    if n > 1 and multiprocessing.current_process().daemon:
        return 1  # a daemonic process may not have children
    return max(1, n)


@dataclass
class _Job:
    id: int
    token: int
    clients: list[int]
    states: list[Any]
    batched: bool
    result: list | None = None


@dataclass
class _RoundState:
    strategy: Any
    received: Any
    rng_key: tuple
    token: int
    by_client: dict[int, _Job] = field(default_factory=dict)


class TrainingPool:
    """The run's process plus ``processes - 1`` helpers; see the module docstring."""

    def __init__(self, trainer: LocalTrainer, processes: int, threads: int = 1):
        if trainer.device.type != "cpu" and processes > 1:
            raise ValueError("training in several processes needs the CPU")
        self.trainer, self.processes = trainer, max(1, processes)
        self._token = 0
        self._next_id = 0
        self._round: _RoundState | None = None
        self._eval_state: dict[str, torch.Tensor] | None = None
        self._jobs_by_id: dict[int, _Job] = {}
        self._sent_strategy: bytes | None = None
        self._procs: list = []
        self._inboxes: list = []
        if self.processes == 1:
            return
        ctx = self._ctx = _mp_context()
        for t in (trainer.x_train, trainer.y_train, trainer.x_test, trainer.y_test):
            t.share_memory_()  # moved once into shared memory; the helpers map it
        self._jobs, self._results = ctx.Queue(), ctx.Queue()
        init = (pickle.dumps(trainer.model), trainer.x_train, trainer.y_train, trainer.x_test,
                trainer.y_test, trainer.shards, trainer.config, trainer.flops_per_sample)
        for i in range(self.processes - 1):
            inbox = ctx.Queue()
            inbox.put(("init", 0, init))
            self._procs.append(ctx.Process(target=_helper, name=f"sinsim-train-{i + 1}",
                                           args=(self._jobs, inbox, self._results, threads),
                                           daemon=True))
            self._inboxes.append(inbox)
        self._start_error: BaseException | None = None
        self._closing = False
        self._start_lock = threading.Lock()
        threading.Thread(target=self._start_helpers, daemon=True).start()

    def _start_helpers(self) -> None:
        try:
            if self._ctx.get_start_method() == "forkserver":
                # a process that needs nothing from this run: it returns once the fork server
                # has imported torch (the first pool of a Python process only), so a run that
                # ends before that leaves no helper half-started
                ping = self._ctx.Process(target=_ping, daemon=True)
                ping.start()
                ping.join()
            with self._start_lock:  # milliseconds now
                if not self._closing:
                    for p in self._procs:
                        p.start()
        except BaseException as e:  # noqa: BLE001 - reported by the waiting process
            self._start_error = e

    # -- training --------------------------------------------------------------------------
    def start_round(self, strategy: Any, received: Any, payload: bytes, rng_key: tuple) -> None:
        """A new round: ``received`` is the decoded ``payload`` the clients get;
        ``rng_for(*rng_key, client)`` is a client's random stream."""
        self._token += 1
        self._round = _RoundState(strategy, received, tuple(rng_key), self._token)
        self._jobs_by_id.clear()
        if not self._procs:
            return
        blob = pickle.dumps(strategy)
        changed = blob != self._sent_strategy
        self._sent_strategy = blob
        for inbox in self._inboxes:
            inbox.put(("round", self._token, (blob if changed else None, payload,
                                              self._round.rng_key)))

    def submit(self, clients: Sequence[int], *, batched: bool = False) -> None:
        """Queue the training of ``clients`` (in the order their updates will be needed); with
        ``batched``, as ``processes`` chunks for ``strategy.client_updates_batched``."""
        rnd = self._round
        clients = [c for c in clients if c not in rnd.by_client]
        if batched:
            size = -(-len(clients) // self.processes)
            groups = [clients[i: i + size] for i in range(0, len(clients), size)]
        else:
            groups = [[c] for c in clients]
        for group in groups:
            job = _Job(self._next_id, rnd.token, group,
                       [rnd.strategy.client_state(c) for c in group], batched)
            self._next_id += 1
            self._jobs_by_id[job.id] = job
            for c in group:
                rnd.by_client[c] = job
            if self._procs:
                self._jobs.put(("train", job.id, job.token, group, job.states, batched))

    def update(self, client: int):
        """The ``ClientUpdate`` of ``client`` this round: its queued job's result (waiting for
        it, and meanwhile taking queued jobs), or computed here if it was never queued."""
        rnd = self._round
        job = rnd.by_client.pop(client, None)
        if job is None:  # not queued (or asked for twice): compute it here, now
            job = _Job(-1, rnd.token, [client], [rnd.strategy.client_state(client)], False)
        if job.result is None and (not self._procs or job.id < 0):
            job.result = self._run_train(job)
        while job.result is None:
            self._progress()
        return job.result[job.clients.index(client)]

    def _run_train(self, job: _Job) -> list:
        rnd = self._round
        rngs = [rng_for(*rnd.rng_key, c) for c in job.clients]
        if job.batched:
            return rnd.strategy.client_updates_batched(self.trainer, rnd.received, job.clients,
                                                       rngs)
        return [rnd.strategy.client_update(self.trainer, rnd.received, job.clients[0], rngs[0])]

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        """``LocalTrainer.evaluate`` with the test batches split across the processes."""
        trainer = self.trainer
        n_batches = trainer.n_eval_batches
        if not self._procs or n_batches < 2:
            return trainer.evaluate(state)
        self._token += 1
        self._round, self._eval_state = None, state
        self._jobs_by_id.clear()
        blob = pickle.dumps({k: v.detach().clone() for k, v in state.items()})
        for inbox in self._inboxes:
            inbox.put(("eval", self._token, blob))
        bounds = np.linspace(0, n_batches, min(self.processes, n_batches) + 1).round()
        parts = [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        jobs = []
        for part in parts[1:]:
            job = _Job(self._next_id, self._token, [part.start, part.stop], [], False)
            self._next_id += 1
            self._jobs_by_id[job.id] = job
            self._jobs.put(("eval", job.id, job.token, part.start, part.stop))
            jobs.append(job)
        sums = trainer.evaluate_batches(state, parts[0])
        for job in jobs:
            while job.result is None:
                self._progress()
            sums.extend(job.result)
        self._eval_state = None
        return combine_eval(sums, len(trainer.y_test))

    # -- waiting ---------------------------------------------------------------------------
    def _progress(self) -> None:
        """Collect finished jobs; take a queued job and run it here; or wait a little."""
        if self._collect(block=False):
            return
        try:
            item = self._jobs.get(block=False)
        except queue.Empty:
            self._collect(block=True)
            return
        job = self._jobs_by_id.get(item[1])
        if job is None or job.token != self._token or job.result is not None:
            return  # stale: nobody needs it any more
        if item[0] == "train":
            job.result = self._run_train(job)
        else:
            job.result = self.trainer.evaluate_batches(self._eval_state, range(item[3], item[4]))

    def _collect(self, block: bool) -> bool:
        """Store the results that have arrived; True if any did."""
        got = False
        while True:
            try:
                job_id, status, value = self._results.get(block=block and not got,
                                                          timeout=_POLL_S)
            except queue.Empty:
                if block and not got:
                    self._check_helpers()
                return got
            got = True
            if status == "error":
                raise RuntimeError(f"a training helper process failed:\n{value}")
            job = self._jobs_by_id.get(job_id)
            if status == "ok" and job is not None and job.result is None:
                job.result = value

    def _check_helpers(self) -> None:
        if self._start_error is not None:
            raise RuntimeError(f"could not start the training helpers: {self._start_error!r}")
        for p in self._procs:
            if p.exitcode is not None:  # None while running or not started yet
                raise RuntimeError(f"training helper {p.name} exited (code {p.exitcode})")

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the helpers (a run that ends before the fork server is up starts none)."""
        procs, self._procs = self._procs, []
        if not procs:
            return
        with self._start_lock:
            self._closing = True
        started = [p for p in procs if p.pid is not None]
        for _ in started:
            self._jobs.put(None)
        for p in started:
            p.join(timeout=1.0)
        for p in started:
            if p.exitcode is None:
                p.terminate()
                p.join()
        for q in (self._jobs, self._results, *self._inboxes):
            q.cancel_join_thread()  # never block this process's exit on unread items

    def __enter__(self) -> TrainingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mp_context():
    """A fork server that has imported this module (so torch) once, where there is one: each
    helper then starts in milliseconds; else spawn. Never plain fork: torch's thread pools in
    this process would not survive it."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = torch.multiprocessing.get_context("forkserver")
        # _forkserver_preload first: the server ends with the run even while importing torch
        ctx.set_forkserver_preload(["sinsim._forkserver_preload", __name__])
        return ctx
    return torch.multiprocessing.get_context("spawn")


def _ping() -> None:
    pass


def _get(q) -> Any:
    """The next item of ``q``; None when the run's process has gone (so no helper outlives
    it, whatever it was waiting for)."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            return q.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return None


def _helper(jobs, inbox, results, threads: int) -> None:
    """A helper process: build the trainer, then run jobs until told to stop (or orphaned)."""
    exit_with_parent()  # the run's process killed (even by SIGKILL): this one goes at once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's process to handle
    results.cancel_join_thread()  # exiting never waits for results nobody will read
    torch.set_num_threads(threads)
    if portable.pinned():  # as the run's process (sinsim.sim.prepared.prepare)
        portable.apply()
    from sinsim.learn.datasets import Dataset

    msg = _get(inbox)
    if msg is None:
        return
    model_blob, x_train, y_train, x_test, y_test, shards, config, flops = msg[2]
    dataset = Dataset("shared", "shared", x_train, y_train, x_test, y_test)
    trainer = LocalTrainer(pickle.loads(model_blob), dataset, shards, config, flops,
                           torch.device("cpu"))
    ctx = {"token": 0, "strategy": None, "received": None, "rng_key": (), "eval_state": None}

    def apply(msg) -> None:  # a round's or an evaluation's context, in the order sent
        what, ctx["token"], value = msg
        if what == "round":
            blob, payload, ctx["rng_key"] = value
            if blob is not None:
                ctx["strategy"] = pickle.loads(blob)
            ctx["received"] = ctx["strategy"].decode_global(payload)
        elif what == "eval":
            ctx["eval_state"] = pickle.loads(value)

    while True:
        item = _get(jobs)
        if item is None:
            return
        kind, job_id, job_token = item[:3]
        while True:  # contexts already here: a job of an older one is not needed any more
            try:
                apply(inbox.get(block=False))
            except queue.Empty:
                break
        while ctx["token"] < job_token:  # the round or evaluation this job belongs to
            msg = _get(inbox)
            if msg is None:
                return
            apply(msg)
        strategy, received, rng_key = ctx["strategy"], ctx["received"], ctx["rng_key"]
        if job_token < ctx["token"]:
            results.put((job_id, "stale", None))
            continue
        try:
            if kind == "train":
                clients, states, batched = item[3:]
                for c, s in zip(clients, states):
                    strategy.set_client_state(c, s)
                rngs = [rng_for(*rng_key, c) for c in clients]
                if batched:
                    out = strategy.client_updates_batched(trainer, received, clients, rngs)
                else:
                    out = [strategy.client_update(trainer, received, clients[0], rngs[0])]
            else:
                out = trainer.evaluate_batches(ctx["eval_state"], range(item[3], item[4]))
            results.put((job_id, "ok", out))
        except Exception:  # noqa: BLE001 - reported to the run's process, which raises it
            results.put((job_id, "error", traceback.format_exc()))
