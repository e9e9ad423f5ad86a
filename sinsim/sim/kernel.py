"""The kernel the three servers share (synchronous rounds in ``sinsim.sim.engine``, the
asynchronous server, the hierarchical one): a round's shared state (``Round``), a client's steps
(receive, train, send: ``client``), the server's candidates, the rows of rounds.csv,
transfers.csv and hops.csv, the batteries and the summary of an algorithm.

What is trained is computed by the strategy and the trainer from (global model, client, seed)
only; SimPy decides *when* each step happens and whether it made it before the deadline. So with
``training.workers`` > 1 (or ``training.batched``) a round queues its training jobs when it
starts, for the clients whose downlink will arrive (a dry run of the same transfers,
``downlinks_delivered``) in the order they arrive, and a client takes its update from
``sinsim.learn.parallel.TrainingPool`` when it needs it: the same tables as in one process.
The asynchronous and hierarchical servers queue a job for one client at a time, each on its own
model (a server version, a plane model) as soon as that model is known, and hand it to the
client in ``Round.job`` or to :func:`trained`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy
import torch

from sinsim._rng import rng_for
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.parallel import TrainingPool
from sinsim.learn.strategies import ClientUpdate, Strategy
from sinsim.scenario import Scenario
from sinsim.sim import checkpoint
from sinsim.sim.checkpoint import AlgorithmState
from sinsim.sim.ledger import Ledger, NodePower
from sinsim.sim.network import Network
from sinsim.sim.power import Battery, PowerParams
from sinsim.sim.prepared import Prepared
from sinsim.sim.recorder import Recorder
from sinsim.sim.routing import RouteOutcome, send
from sinsim.sim.transfer import transfer as dry_run_transfer  # not counted by spies on transfer

__all__ = ["Round", "client", "client_steps", "trained", "candidates", "downlink_dry_run",
           "downlinks_delivered", "round_row", "write_round", "transfer_row", "batteries",
           "restore", "reached_target", "summary", "update_data", "update_of", "battery_states"]


def round_row(label: str, r: int, t0: float, now: float, selected: int, completed: int,
               transfers: list[dict[str, Any]], bits: list[float],
               evaluation: tuple[float, float], before: dict[str, Any] | None,
               wall0: float) -> dict[str, Any]:
    """The rounds.csv row of round ``r``: ``before`` is the previous row (None: the first)."""
    up = sum(t["bytes"] for t in transfers if t["direction"] == "up")
    down = sum(t["bytes"] for t in transfers if t["direction"] == "down")
    before = before or {"bytes_up_cum": 0, "bytes_down_cum": 0}
    acc, loss = evaluation
    return {
        "algorithm": label, "round": r, "sim_start_s": t0, "sim_end_s": now,
        "round_duration_s": now - t0, "selected": selected, "completed": completed,
        "dropped": selected - completed, "bytes_up": up, "bytes_down": down,
        "bytes_up_cum": before["bytes_up_cum"] + up,
        "bytes_down_cum": before["bytes_down_cum"] + down,
        "avg_bits": float(np.mean(bits)) if bits else None,
        "test_accuracy": acc, "test_loss": loss, "host_wall_s": time.perf_counter() - wall0,
    }


def write_round(recorder: Recorder, row: dict[str, Any], transfers: list[dict[str, Any]],
                 clients: list[dict[str, Any]], power: list[dict[str, Any]]) -> None:
    """Write one round (or server version): ``row`` gains the bytes over all hops; transfers
    in time order, each followed in hops.csv by its hops; power rows by node."""
    transfers = sorted(transfers, key=transfer_order)
    for d in ("up", "down"):
        row[f"bytes_{d}_hops"] = sum(t["bytes_hops"] for t in transfers if t["direction"] == d)
    hops = [{**h, "round": t["round"]} for t in transfers for h in t["hop_rows"]]
    power = [{**p, "round": row["round"]} for p in _by_node(power)]
    recorder.write_round(row, transfers, clients, hops, power)


def _by_node(power: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One power row per node, by id: a node that several deliveries of one asynchronous
    version touched (a relay) sums their energies and waits, and keeps the lowest charge."""
    merged: dict[str, dict[str, Any]] = {}
    for p in power:
        if p["node"] not in merged:
            merged[p["node"]] = dict(p)
            continue
        m = merged[p["node"]]
        for key in ("energy_compute_j", "energy_tx_j", "energy_rx_j", "waited_for_power_s"):
            m[key] += p[key]
        m["min_soc"] = min(m["min_soc"], p["min_soc"])
    return [merged[node] for node in sorted(merged)]


def restore(prep: Prepared, strategy: Strategy, resume: AlgorithmState,
             batteries: list[Battery | None] | None, path: Path) -> None:
    """Take the state of a checkpoint back into ``strategy`` and ``batteries`` (fresh ones);
    a checkpoint whose state does not fit them is refused (``CheckpointError``)."""
    try:
        spec = ModelSpec.of(resume.global_state)
        if spec != prep.spec:
            raise ValueError(f"a global model of {spec.names} {spec.shapes}, not the scenario's")
        strategy.restore(resume.strategy)
        saved = resume.batteries
        if (saved is None) != (batteries is None) or len(saved or ()) != len(batteries or ()):
            raise ValueError("batteries that are not the scenario's")
        for battery, state in zip(batteries or (), saved or ()):
            if (battery is None) != (state is None):
                raise ValueError("batteries that are not the scenario's")
            if battery is not None:
                battery.set_state(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise checkpoint.CheckpointError(
            f"its {resume.label} state does not fit this scenario ({e}); delete it and run "
            f"without --resume to start over", file=str(path)) from None


def update_data(update: ClientUpdate) -> dict[str, Any]:
    """``update`` as checkpoint data (its payload as a uint8 array)."""
    return {"payload": np.frombuffer(update.payload, np.uint8), "n_samples": update.n_samples,
            "flops": update.flops, "avg_bits": update.avg_bits, "state": update.state,
            "unsent_state": update.unsent_state}


def update_of(data: dict[str, Any]) -> ClientUpdate:
    """The ``ClientUpdate`` of ``update_data``; ``TypeError``/``KeyError`` for anything else."""
    payload = data["payload"]
    if not (isinstance(payload, np.ndarray) and payload.dtype == np.uint8 and payload.ndim == 1):
        raise TypeError("an update's payload is not a byte array")
    if not (isinstance(data["n_samples"], (int, np.integer))
            and isinstance(data["flops"], (int, float, np.integer, np.floating))):
        raise TypeError("an update's samples or FLOPs are not numbers")
    return ClientUpdate(payload.tobytes(), data["n_samples"], data["flops"], data["avg_bits"],
                        data["state"], data["unsent_state"])


def batteries(prep: Prepared) -> list[Battery | None] | None:
    """A full (``power.initial_soc``) battery for every satellite client (every satellite
    node: a round's clients and the relays of its routes), fresh for each algorithm, drawing
    ``power.isl_standby_w`` when the scenario has crosslinks (``links.isl``); None without
    ``power:``."""
    power = prep.scenario.power
    if power is None or prep.sunlit is None:
        return None
    params = PowerParams(**power.model_dump())
    crosslinks = prep.scenario.links.isl is not None
    return [Battery(params, w, horizon_s=prep.scenario.horizon, crosslinks=crosslinks)
            if w is not None else None for w in prep.sunlit]


def battery_states(batteries: list[Battery | None] | None) -> list[Any] | None:
    """Every battery's ``Battery.state()`` (None for a client without one), for a checkpoint;
    None without ``power:``."""
    return None if batteries is None else [b.state() if b is not None else None
                                           for b in batteries]


def reached_target(sc: Scenario, row: dict[str, Any]) -> bool:
    """Does the algorithm stop after this round (``training.stop_at_target``)?"""
    return sc.training.stop_at_target and row["test_accuracy"] >= sc.training.target_accuracy


def summary(rows: list[dict[str, Any]], sim_time_s: float,
             target: float | None) -> dict[str, Any]:
    """One algorithm's entry of summary.json, derived from its rounds."""
    last = rows[-1] if rows else {}
    reached = next((r for r in rows if target is not None and r["test_accuracy"] >= target), {})
    return {
        "final_accuracy": last.get("test_accuracy", float("nan")), "rounds_run": len(rows),
        "bytes_up_total": last.get("bytes_up_cum", 0),
        "bytes_down_total": last.get("bytes_down_cum", 0),
        "sim_time_s": sim_time_s, "host_wall_s": sum(r["host_wall_s"] for r in rows),
        "round_reached_target": reached.get("round"),
        "sim_time_to_target_s": reached.get("sim_end_s"),
    }


def candidates(sc: Scenario, net: Network, now_s: float) -> list[int]:
    """The clients a round may pick from: all, or those in view now or within the look-ahead."""
    if sc.training.selection.kind == "random":
        return list(range(len(net.client_ids)))
    return net.in_view(now_s, now_s + sc.training.selection.lookahead)


def transfer_order(t: dict[str, Any]) -> tuple:
    return (t["start_s"], t["direction"] != "down", t["client"])


@dataclass
class Round:
    """What the client processes of one round share: the broadcast, the deadline, the server's
    running aggregate, and the rows they append."""

    algorithm: str
    number: int
    deadline_s: float
    down_payload: bytes
    received: dict[str, torch.Tensor]  # the global model as every client decodes it
    aggregator: Any
    transfers: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    bits: list[float] = field(default_factory=list)
    batteries: list[Battery | None] | None = None  # per client, with ``power:``
    power: list[dict[str, Any]] = field(default_factory=list)  # power.csv rows
    ledger: Ledger | None = None  # who paid for what this round (made by the first client)
    # called with a delivered downlink (a RouteOutcome) before the client trains; may set
    # ``received`` (the asynchronous server's newest-model handover)
    on_download: Any = None
    # the asynchronous server's log: the update this (one-client) round's training gave before
    # a checkpoint, taken instead of training again; ``on_trained`` is given every update
    replayed: ClientUpdate | None = None
    on_trained: Any = None
    # a pool job queued for this round's one client (the asynchronous server, which makes sure
    # of one by ``on_download``): its update, instead of ``pool.update``
    job: Any = None


def downlink_dry_run(prep: Prepared, rnd: Round, c: int, now_s: float) -> RouteOutcome:
    """Client ``c``'s downlink of ``rnd`` sent at ``now_s``, run alone: the same route, size,
    deadline and keyed loss draws as ``client``'s, but no other transfer holding an antenna or a
    booking and no battery. A guess of whether and when it arrives, which decides only when a
    training is queued (never the tables: a job on the wrong model is queued again)."""
    env = simpy.Environment(initial_time=now_s)
    down = env.process(send(env, prep.network, c, "down", len(rnd.down_payload), rnd.deadline_s,
                            round_=rnd.number, policy=prep.scenario.links.on_loss_of_signal,
                            hop_transfer=dry_run_transfer))
    env.run()
    return down.value


def downlinks_delivered(prep: Prepared, rnd: Round, selected: list[int],
                         now_s: float) -> list[int]:
    """The selected clients whose downlink of this round will be delivered, earliest first
    (:func:`downlink_dry_run`). Only the order of training depends on it."""
    arrivals = []
    for c in dict.fromkeys(selected):
        down = downlink_dry_run(prep, rnd, c, now_s)
        if down.status == "delivered":
            arrivals.append((down.end_s, c))
    return [c for _, c in sorted(arrivals, key=lambda a: a[0])]


def trained(prep: Prepared, strategy: Strategy, received: Any, c: int, key: tuple,
            pool: TrainingPool | None = None, job: Any = None) -> ClientUpdate:
    """Client ``c``'s update from ``received`` on its random stream ``rng_for(seed, "train",
    *key)``: the result of ``job``, queued on ``pool`` for it with those inputs (the same
    numbers), else trained here, now."""
    if job is not None:
        return pool.result(job)
    return strategy.client_update(prep.trainer, received, c,
                                  rng_for(prep.scenario.seed, "train", *key))


def client(env: simpy.Environment, prep: Prepared, strategy: Strategy, rnd: Round, c: int,
            pool: TrainingPool | None = None):
    net, r = prep.network, rnd.number
    cid = net.client_ids[c]
    row = {"algorithm": rnd.algorithm, "round": r, "client": cid,
           "n_samples": len(prep.shards[c]), "down_status": None, "compute_start_s": None,
           "compute_s": None, "up_status": None, "arrived_s": None, "aggregated": False}
    rnd.clients.append(row)
    if rnd.batteries is not None and rnd.ledger is None:
        rnd.ledger = Ledger({node: b for node, b in zip(net.client_ids, rnd.batteries,
                                                        strict=True) if b is not None})
    power = rnd.ledger.node(cid, env.now) if rnd.ledger is not None else None
    yield from client_steps(env, prep, strategy, rnd, c, pool, row, power)
    if rnd.ledger is not None:  # every node the round touched so far: the last client's stay
        rnd.power[:] = [{"algorithm": rnd.algorithm, "round": r, **p}
                        for p in rnd.ledger.rows(env.now)]


def client_steps(env, prep: Prepared, strategy: Strategy, rnd: Round, c: int,
                  pool: TrainingPool | None, row: dict[str, Any], power: NodePower | None):
    """Receive, train, send: ``row`` (clients.csv) is filled in as it goes."""
    sc, net, r = prep.scenario, prep.network, rnd.number
    policy = sc.links.on_loss_of_signal
    cid = net.client_ids[c]
    down = yield from send(env, net, c, "down", len(rnd.down_payload), rnd.deadline_s,
                           round_=r, policy=policy, ledger=rnd.ledger)
    rnd.transfers.append(transfer_row(rnd.algorithm, r, cid, "down", down))
    row["down_status"] = down.status
    if down.status != "delivered":
        return
    if rnd.on_download is not None:
        rnd.on_download(down)
    job, rnd.job = rnd.job, None
    if rnd.replayed is not None:  # trained before a checkpoint: not again
        update = rnd.replayed
    elif pool is not None and job is None:
        update = pool.update(c)  # the synchronous round's
    else:
        update = trained(prep, strategy, rnd.received, c, (r, c), pool, job)
    if rnd.on_trained is not None:
        rnd.on_trained(update)
    strategy.set_client_state(c, update.state)
    compute_s = update.flops / sc.compute.flops_per_s
    row["compute_s"] = compute_s
    if power is not None:  # wait for the charge to train (the node idles meanwhile)
        start_s = power.earliest_start(env.now, compute_s, "compute", rnd.deadline_s)
        if start_s >= rnd.deadline_s:  # not before the round closes: it never trains
            yield env.timeout(rnd.deadline_s - env.now)
            return not_sent(strategy, c, update, row)
        yield env.timeout(start_s - env.now)
    row["compute_start_s"] = env.now
    if env.now + compute_s >= rnd.deadline_s:  # still computing when the round closes
        if power is not None:
            power.run(env.now, rnd.deadline_s - env.now, "compute")
        yield env.timeout(rnd.deadline_s - env.now)
        return not_sent(strategy, c, update, row)
    if power is not None:
        power.run(env.now, compute_s, "compute")
    yield env.timeout(compute_s)
    # each hop's sender waits for the charge to transmit as that hop goes on the air
    up = yield from send(env, net, c, "up", len(update.payload), rnd.deadline_s,
                         round_=r, policy=policy, ledger=rnd.ledger)
    rnd.transfers.append(transfer_row(rnd.algorithm, r, cid, "up", up))
    row["up_status"] = up.status
    if up.status == "timeout" and update.unsent_state is not None:
        strategy.set_client_state(c, update.unsent_state)  # it knows it did not finish
    if up.status == "delivered":
        row["arrived_s"] = up.end_s
        rnd.aggregator.add(update.payload, update.n_samples)
        if update.avg_bits is not None:
            rnd.bits.append(update.avg_bits)


def not_sent(strategy: Strategy, c: int, update: ClientUpdate, row: dict[str, Any]) -> None:
    """The upload is never sent: mark it, and the client keeps what it would have sent
    (error feedback: its whole update, not the residual that assumed delivery)."""
    row["up_status"] = "not_sent"
    if update.unsent_state is not None:
        strategy.set_client_state(c, update.unsent_state)


def transfer_row(algorithm: str, r: int, client: str, direction: str,
                  t: RouteOutcome) -> dict[str, Any]:
    """The transfers.csv row of ``t``; its hops.csv rows under ``hop_rows``."""
    nodes = [t.links[0].src, *(link.dst for link in t.links)] if t.links else []
    hop_rows = [{"algorithm": algorithm, "round": r, "client": client, "direction": direction,
                 "hop": k, "from": link.src, "to": link.dst, "start_s": h.start_s,
                 "end_s": h.end_s, "bytes": h.n_bytes, "status": h.status}
                for k, (h, link) in enumerate(zip(t.hops, t.links, strict=True), start=1)]
    return {"algorithm": algorithm, "round": r, "client": client, "direction": direction,
            "bytes": t.n_bytes, "start_s": t.start_s, "end_s": t.end_s, "status": t.status,
            "pauses": t.pauses, "mean_rate_bps": t.mean_rate_bps,
            "bytes_sent": int(round(t.bits_sent / 8)), "wait_s": t.wait_s,
            "hops": len(t.hops), "route": ">".join(nodes),
            "bytes_hops": sum(h.n_bytes for h in t.hops), "hop_rows": hop_rows}
