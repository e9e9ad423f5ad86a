"""Clients trained in several processes, with the same numbers as in one.

A client's update depends only on (strategy, received model, client, the client's state, its
random stream): never on the clock. So a server may queue a client's training as soon as these
are known, and block only when the simulated client needs the update.

``TrainingPool(trainer, processes)`` runs ``processes - 1`` helper processes (started once per
run, from a fork server that has imported torch once per Python process, in a background thread
so that the run does not wait for them; each builds its own model and ``LocalTrainer`` on the
training data, shared through torch's shared memory, not copied; ``threads`` torch threads
each). The run's own process is the last worker: while it waits for an update it takes queued
jobs itself, so it also does all the work until the helpers are up.

A job trains from a *context*: ``context(strategy, received, payload)`` sends every helper,
once, the strategy (only when its pickle changed) and the model's payload, which each decodes as
the clients do; several contexts may be open at once (the asynchronous server's versions,
hierfl's plane models). ``train(context, clients, keys)`` queues a job: the clients, their
states (``strategy.client_state``, read now) and each one's random-stream key
(``rng_for(*key)``); ``result(job)`` waits for its ``ClientUpdate``. A job changes nothing: the
server commits a client's state itself, once it has taken the client's update (so the state
never changes while the job waits). ``release(context)`` drops a context whose remaining jobs are
not needed (they are skipped, in every process). A synchronous round is one context:
``start_round`` (which releases the round before), ``submit(clients)``, ``update(client)``; a
job whose update is never asked for (its downlink failed after all) is dropped with the round.

``evaluate`` splits the test batches across the processes and sums the per-batch results in
batch order, so accuracy and loss equal ``LocalTrainer.evaluate``'s to the last bit.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sinsim._rng import rng_for
from sinsim.learn.pool_helper import run_helper
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
    context: int
    clients: list[int]
    states: list[Any]
    keys: list[tuple]  # each client's random-stream key: rng_for(*key)
    batched: bool
    result: list | None = None


@dataclass
class _Context:
    strategy: Any  # None: an evaluation (``received`` is the state evaluated)
    received: Any
    jobs: set[int] = field(default_factory=set)  # ids of the jobs queued on it


@dataclass
class _RoundState:
    context: int
    rng_key: tuple
    by_client: dict[int, _Job] = field(default_factory=dict)


class TrainingPool:
    """The run's process plus ``processes - 1`` helpers; see the module docstring."""

    def __init__(self, trainer: LocalTrainer, processes: int, threads: int = 1):
        if trainer.device.type != "cpu" and processes > 1:
            raise ValueError("training in several processes needs the CPU")
        self.trainer, self.processes = trainer, max(1, processes)
        self._next_context = 0
        self._next_id = 0
        self._contexts: dict[int, _Context] = {}
        self._round: _RoundState | None = None
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
            self._procs.append(ctx.Process(target=run_helper, name=f"sinsim-train-{i + 1}",
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

    # -- contexts and jobs ------------------------------------------------------------------
    def context(self, strategy: Any, received: Any, payload: bytes) -> int:
        """Open a context: ``received`` is the decoded ``payload`` the clients train from (each
        helper decodes it once, with ``strategy``); its id, for ``train`` and ``release``."""
        blob = pickle.dumps(strategy) if self._procs else None
        changed = blob != self._sent_strategy
        self._sent_strategy = blob
        return self._open(_Context(strategy, received),
                          ("context", (blob if changed else None, payload)))

    def _open(self, ctx: _Context, message: tuple) -> int:
        self._next_context += 1
        self._contexts[self._next_context] = ctx
        for inbox in self._inboxes if self._procs else ():
            inbox.put((message[0], self._next_context, message[1]))
        return self._next_context

    def train(self, context: int, clients: Sequence[int], keys: Sequence[tuple], *,
              batched: bool = False) -> _Job:
        """Queue the training of ``clients`` from ``context``'s model, client i on the random
        stream ``rng_for(*keys[i])`` (with ``batched``, together, with
        ``strategy.client_updates_batched``); their states are read now. The job, for
        ``result``."""
        clients, strategy = list(clients), self._contexts[context].strategy
        job = _Job(self._next_id, context, clients, [strategy.client_state(c) for c in clients],
                   [tuple(k) for k in keys], batched)
        return self._queue(job, ("train", clients, job.states, job.keys, batched))

    def _queue(self, job: _Job, item: tuple) -> _Job:
        self._next_id += 1
        self._jobs_by_id[job.id] = job
        self._contexts[job.context].jobs.add(job.id)
        if self._procs:
            self._jobs.put((item[0], job.id, job.context, *item[1:]))
        return job

    def result(self, job: _Job, client: int | None = None):
        """The ``ClientUpdate`` of ``client`` (default: the job's first) from ``job``: waiting
        for it, and meanwhile taking queued jobs (with no helpers: computed here, now). Take it
        before its context is released."""
        if job.result is None and (not self._procs or job.id < 0):
            job.result = self._run_train(job)
        while job.result is None:
            if job.id not in self._jobs_by_id:
                raise RuntimeError(f"job {job.id}'s context was released before its result "
                                   f"was taken")
            self._progress()
        return job.result[0 if client is None else job.clients.index(client)]

    def release(self, context: int) -> None:
        """Drop ``context``: its jobs whose results were not taken are skipped, in every
        process (a released id is never reused)."""
        ctx = self._contexts.pop(context, None)
        if ctx is None:
            return
        for job_id in ctx.jobs:
            self._jobs_by_id.pop(job_id, None)
        for inbox in self._inboxes if self._procs else ():
            inbox.put(("release", context, None))

    def _run_train(self, job: _Job) -> list:
        ctx = self._contexts[job.context]
        rngs = [rng_for(*k) for k in job.keys]
        if job.batched:
            return ctx.strategy.client_updates_batched(self.trainer, ctx.received, job.clients,
                                                       rngs)
        return [ctx.strategy.client_update(self.trainer, ctx.received, job.clients[0], rngs[0])]

    # -- a synchronous round: one context ---------------------------------------------------
    def start_round(self, strategy: Any, received: Any, payload: bytes, rng_key: tuple) -> None:
        """A new round (the one before is released): ``received`` is the decoded ``payload``
        the clients get; ``rng_for(*rng_key, client)`` is a client's random stream."""
        self._end_round()
        self._round = _RoundState(self.context(strategy, received, payload), tuple(rng_key))

    def _end_round(self) -> None:
        if self._round is not None:
            self.release(self._round.context)
            self._round = None

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
            job = self.train(rnd.context, group, [(*rnd.rng_key, c) for c in group],
                             batched=batched)
            for c in group:
                rnd.by_client[c] = job

    def update(self, client: int):
        """The ``ClientUpdate`` of ``client`` this round: its queued job's result (waiting for
        it, and meanwhile taking queued jobs), or computed here if it was never queued."""
        rnd = self._round
        job = rnd.by_client.pop(client, None)
        if job is None:  # not queued (or asked for twice): compute it here, now
            job = _Job(-1, rnd.context, [client],
                       [self._contexts[rnd.context].strategy.client_state(client)],
                       [(*rnd.rng_key, client)], False)
        return self.result(job, client)

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        """``LocalTrainer.evaluate`` with the test batches split across the processes (the
        synchronous round, if any, ends here; other contexts stay open)."""
        trainer = self.trainer
        n_batches = trainer.n_eval_batches
        self._end_round()
        if not self._procs or n_batches < 2:
            return trainer.evaluate(state)
        cid = self._open(_Context(None, state), ("eval", pickle.dumps(
            {k: v.detach().clone() for k, v in state.items()})))
        bounds = np.linspace(0, n_batches, min(self.processes, n_batches) + 1).round()
        parts = [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        jobs = [self._queue(_Job(self._next_id, cid, [], [], [], False),
                            ("eval", part.start, part.stop)) for part in parts[1:]]
        sums = trainer.evaluate_batches(state, parts[0])
        for job in jobs:
            while job.result is None:
                self._progress()
            sums.extend(job.result)
        self.release(cid)
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
        if job is None or job.result is not None:
            return  # its context was released, or a helper did it already
        if item[0] == "train":
            job.result = self._run_train(job)
        else:
            job.result = self.trainer.evaluate_batches(self._contexts[job.context].received,
                                                       range(item[3], item[4]))

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
