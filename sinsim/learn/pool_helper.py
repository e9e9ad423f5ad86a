"""A training helper process of :class:`sinsim.learn.parallel.TrainingPool`: it builds its own
``LocalTrainer`` on the shared training data, then takes jobs in order (train a client, or
evaluate a range of test batches) from the contexts the run's process opens and releases, and
puts each result, or the traceback of its failure, on the results queue. It ends when told to,
or as soon as the run's process has gone.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import traceback
from typing import Any

import torch

from sinsim._lifeline import exit_with_parent
from sinsim._rng import rng_for
from sinsim.learn import portable
from sinsim.learn.training import LocalTrainer


def next_item(q) -> Any:
    """The next item of ``q``; None when the run's process has gone (so no helper outlives
    it, whatever it was waiting for)."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            return q.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return None


def run_helper(jobs, inbox, results, threads: int) -> None:
    """A helper process: build the trainer, then run jobs until told to stop (or orphaned)."""
    exit_with_parent()  # the run's process killed (even by SIGKILL): this one goes at once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's process to handle
    results.cancel_join_thread()  # exiting never waits for results nobody will read
    torch.set_num_threads(threads)
    if portable.pinned():  # as the run's process (sinsim.sim.prepared.prepare)
        portable.apply()
    from sinsim.learn.datasets import Dataset

    msg = next_item(inbox)
    if msg is None:
        return
    model_blob, x_train, y_train, x_test, y_test, shards, config, flops = msg[2]
    dataset = Dataset("shared", "shared", x_train, y_train, x_test, y_test)
    trainer = LocalTrainer(pickle.loads(model_blob), dataset, shards, config, flops,
                           torch.device("cpu"))
    contexts: dict[int, tuple] = {}  # id: (strategy, received), or (None, evaluated state)
    last = {"id": 0, "strategy": None}  # the newest context received, the strategy last sent

    def apply(msg) -> None:  # a context opened or released, in the order sent
        what, cid, value = msg
        if what == "context":
            blob, payload = value
            if blob is not None:
                last["strategy"] = pickle.loads(blob)
            contexts[cid] = (last["strategy"], last["strategy"].decode_global(payload))
        elif what == "eval":
            contexts[cid] = (None, pickle.loads(value))
        else:  # release
            contexts.pop(cid, None)
            return
        last["id"] = cid

    while True:
        item = next_item(jobs)
        if item is None:
            return
        kind, job_id, cid = item[:3]
        while True:  # contexts already here (a released one's jobs are not needed any more)
            try:
                apply(inbox.get(block=False))
            except queue.Empty:
                break
        while last["id"] < cid:  # the context this job belongs to
            msg = next_item(inbox)
            if msg is None:
                return
            apply(msg)
        if cid not in contexts:
            results.put((job_id, "stale", None))
            continue
        strategy, received = contexts[cid]
        try:
            if kind == "train":
                clients, states, keys, batched = item[3:]
                for c, s in zip(clients, states):
                    strategy.set_client_state(c, s)
                rngs = [rng_for(*k) for k in keys]
                if batched:
                    out = strategy.client_updates_batched(trainer, received, clients, rngs)
                else:
                    out = [strategy.client_update(trainer, received, clients[0], rngs[0])]
            else:
                out = trainer.evaluate_batches(received, range(item[3], item[4]))
            results.put((job_id, "ok", out))
        except Exception:  # noqa: BLE001 - reported to the run's process, which raises it
            results.put((job_id, "error", traceback.format_exc()))
