"""The SimPy engine: a server process runs rounds; each selected client is a process that
receives the global model, trains, and sends its update back.

What is trained is computed by the strategy and the trainer from (global model, client, seed)
only; SimPy decides *when* each step happens and whether it made it before the deadline. So with
``training.workers`` > 1 (or ``training.batched``) a round queues its training jobs when it
starts, for the clients whose downlink will arrive (a dry run of the same transfers) in the order
they arrive, and a client takes its update from ``sinsim.learn.parallel.TrainingPool`` when it
needs it: the same tables as in one process.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy
import torch

from sinsim._rng import rng_for
from sinsim._version import __version__ as SINSIM_VERSION
from sinsim.errors import ConfigError, WriteFailed
from sinsim.learn import portable
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.datasets import Dataset, load_dataset
from sinsim.learn.models import build_model, training_flops_per_sample
from sinsim.learn.parallel import TrainingPool, resolve_workers
from sinsim.learn.partitions import make_partition
from sinsim.learn.strategies import ClientUpdate, RoundContext, Strategy, build_strategy
from sinsim.learn.training import LocalTrainer, TrainConfig, pick_device
from sinsim.scenario import Algorithm, Scenario
from sinsim.sim import checkpoint
from sinsim.sim.async_server import run_async
from sinsim.sim.checkpoint import AlgorithmState, Checkpoint
from sinsim.sim.hier_server import run_hierarchical
from sinsim.sim.network import Network
from sinsim.sim.power import Battery, NodePower, PowerParams
from sinsim.sim.recorder import Recorder
from sinsim.sim.routing import RouteOutcome, send
from sinsim.sim.topology import (
    Topology,
    client_planes,
    client_sunlit,
    contacts_info,
    write_topology,
)
from sinsim.sim.transfer import transfer as dry_run_transfer  # not counted by spies on transfer
from sinsim.sim.wiring import build_network, orbital_topology


@dataclass
class Prepared:
    """Everything a run needs that does not depend on the algorithm."""

    scenario: Scenario
    dataset: Dataset
    shards: list[np.ndarray]
    trainer: LocalTrainer
    init_state: dict[str, torch.Tensor]
    spec: ModelSpec
    network: Network
    sunlit: list[np.ndarray | None] | None = None  # per client, with ``power:``


def prepare(scenario: Scenario, network: Network | None = None,
            topology: Topology | None = None) -> Prepared:
    """``topology``: the one ``network`` was built from (a by_plane partition reads the
    clients' planes from it; without it they come from the scenario's nodes)."""
    tr = scenario.training
    if tr.portable and not portable.pinned():
        raise ConfigError(portable.NOT_PINNED, key="training.portable")
    network = network if network is not None else build_network(scenario, topology)
    n = len(network.client_ids)
    if tr.clients_per_round > n:
        raise ConfigError(f"{tr.clients_per_round} is larger than the number of clients ({n})",
                          key="training.clients_per_round")
    dataset = load_dataset(tr.dataset, tr.data_dir, download=tr.download)
    if n > dataset.n_train:
        raise ConfigError(f"{n} clients but {dataset.name} ({dataset.source}) has only "
                          f"{dataset.n_train} training samples", key="clients")
    planes = client_planes(scenario, topology) if tr.partition.kind == "by_plane" else None
    try:
        shards = make_partition(tr.partition, dataset.y_train.numpy(), n, scenario.seed,
                                planes=planes, n_classes=dataset.n_classes)
    except ValueError as e:
        raise ConfigError(str(e), key="training.partition") from None
    model = build_model(tr.model, scenario.seed, dataset.input_shape)
    device = pick_device("cpu" if tr.portable else tr.device)
    torch.set_num_threads(tr.cpu_threads)
    if portable.pinned():  # this process's torch settings too (the environment's are read)
        portable.apply()
    if tr.portable and (off := portable.departures()):
        raise ConfigError(f"not in effect here ({'; '.join(off)}): {portable.NOT_PINNED}",
                          key="training.portable")
    config = TrainConfig(tr.local_epochs, tr.batch_size, tr.lr, tr.momentum, tr.eval_batch_size)
    trainer = LocalTrainer(model, dataset, shards, config,
                           training_flops_per_sample(model, dataset.input_shape), device)
    init_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    sunlit = client_sunlit(scenario, topology) if scenario.power is not None else None
    return Prepared(scenario, dataset, shards, trainer, init_state, ModelSpec.of(init_state),
                    network, sunlit)


RoundCallback = Callable[[dict[str, Any]], None]


def training_pool(prep: Prepared) -> TrainingPool | None:
    """The pool for ``training.workers`` / ``training.batched``; None: train in this process,
    each client when its downlink arrives."""
    tr = prep.scenario.training
    processes = resolve_workers(tr.workers, clients_per_round=tr.clients_per_round,
                                cpu_threads=tr.cpu_threads, device=prep.trainer.device)
    if processes == 1 and not tr.batched:
        return None
    return TrainingPool(prep.trainer, processes, tr.cpu_threads)


def run_algorithm(prep: Prepared, algorithm: Algorithm, recorder: Recorder,
                  on_round_end: RoundCallback | None = None,
                  pool: TrainingPool | None = None, *, resume: AlgorithmState | None = None,
                  on_checkpoint: Callable[[AlgorithmState], None] | None = None
                  ) -> dict[str, Any]:
    """Run every round of one algorithm in its own SimPy environment; returns its summary.
    ``pool`` (see ``training_pool``) trains the clients; None: in this process. ``resume``
    continues from a checkpoint taken after a round; ``on_checkpoint`` is given the state after
    every round (once its rows are on disk)."""
    sc, net = prep.scenario, prep.network
    strategy: Strategy = build_strategy(algorithm.name, prep.spec, algorithm.strategy_params,
                                        sc.training.model)
    if not strategy.synchronous:  # FedAsync, FedBuff: the asynchronous server, in this process
        if resume is not None:
            raise ConfigError(f"{algorithm.label} is asynchronous: it is not checkpointed "
                              f"mid-run and cannot be resumed from one")
        return run_async(prep, algorithm, strategy, recorder, on_round_end,
                         engine=sys.modules[__name__])
    if strategy.hierarchical:  # hierfl: planes aggregate over their rings first
        if resume is not None:
            raise ConfigError(f"{algorithm.label} is hierarchical: it is not checkpointed "
                              f"mid-run and cannot be resumed from one")
        return run_hierarchical(prep, algorithm, strategy, recorder, on_round_end,
                                engine=sys.modules[__name__])
    batched = sc.training.batched and hasattr(strategy, "client_updates_batched")
    rows: list[dict[str, Any]] = []  # the rounds.csv rows of this algorithm
    global_state = prep.init_state
    batteries = _batteries(prep)
    if resume is not None:
        rows, global_state = list(resume.rows), resume.global_state
        _restore(prep, strategy, resume, batteries, recorder.out_dir / checkpoint.CHECKPOINT)
    env = simpy.Environment(initial_time=resume.now_s if resume is not None else 0)
    first = rows[-1]["round"] + 1 if rows else 1
    if rows and _reached_target(sc, rows[-1]):
        first = sc.training.rounds + 1  # it had stopped there

    def server():
        nonlocal global_state
        for r in range(first, sc.training.rounds + 1):
            if env.now >= sc.horizon:
                break
            wall0 = time.perf_counter()
            candidates = _candidates(sc, net, env.now)
            if not candidates:  # nobody in view: wait for the next contact
                t_next = net.next_contact_s(env.now)
                if t_next >= sc.horizon:
                    break
                yield env.timeout(t_next - env.now)
                candidates = _candidates(sc, net, env.now)
            t0 = env.now
            ctx = RoundContext(r, t0, tuple(candidates), sc.training.clients_per_round, sc.seed)
            selected = strategy.select(ctx)
            down_payload = strategy.encode_global(global_state)
            rnd = _Round(algorithm.label, r, t0 + sc.training.round_deadline, down_payload,
                         strategy.decode_global(down_payload), strategy.new_aggregator(),
                         batteries=batteries)
            if pool is not None:
                pool.start_round(strategy, rnd.received, down_payload, (sc.seed, "train", r))
                pool.submit(_downlinks_delivered(prep, rnd, selected, env.now), batched=batched)
            yield env.all_of([env.process(_client(env, prep, strategy, rnd, c, pool))
                              for c in selected])
            agg, transfers, clients = rnd.aggregator, rnd.transfers, rnd.clients
            global_state = agg.result(global_state)
            for row in clients:
                row["aggregated"] = row["up_status"] == "delivered"
            row = _round_row(algorithm.label, r, t0, env.now, len(selected), agg.count,
                             transfers, rnd.bits, (pool or prep.trainer).evaluate(global_state),
                             rows[-1] if rows else None, wall0)
            _write_round(recorder, row, transfers, sorted(clients, key=lambda x: x["client"]),
                         rnd.power)
            rows.append(row)
            if on_checkpoint:
                on_checkpoint(AlgorithmState(
                    algorithm.label, list(rows), env.now, global_state, strategy.checkpoint(),
                    None if batteries is None else [b.state() if b is not None else None for b in batteries]))
            if on_round_end:
                on_round_end(row)
            if _reached_target(sc, row):
                break

    env.run(until=env.process(server()))  # not past the server: a relay may leave a timer
    return _summary(rows, env.now, sc.training.target_accuracy)


def _round_row(label: str, r: int, t0: float, now: float, selected: int, completed: int,
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


def _write_round(recorder: Recorder, row: dict[str, Any], transfers: list[dict[str, Any]],
                 clients: list[dict[str, Any]], power: list[dict[str, Any]]) -> None:
    """Write one round (or server version): ``row`` gains the bytes over all hops; transfers
    in time order, each followed in hops.csv by its hops; power rows by node."""
    transfers = sorted(transfers, key=_transfer_order)
    for d in ("up", "down"):
        row[f"bytes_{d}_hops"] = sum(t["bytes_hops"] for t in transfers if t["direction"] == d)
    hops = [{**h, "round": t["round"]} for t in transfers for h in t["hop_rows"]]
    power = [{**p, "round": row["round"]} for p in sorted(power, key=lambda x: x["node"])]
    recorder.write_round(row, transfers, clients, hops, power)


def _restore(prep: Prepared, strategy: Strategy, resume: AlgorithmState,
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


def _batteries(prep: Prepared) -> list[Battery | None] | None:
    """A full (``power.initial_soc``) battery for every satellite client, fresh for each
    algorithm; None without ``power:``."""
    power = prep.scenario.power
    if power is None or prep.sunlit is None:
        return None
    params = PowerParams(**power.model_dump())
    return [Battery(params, w, horizon_s=prep.scenario.horizon) if w is not None else None
            for w in prep.sunlit]


def _reached_target(sc: Scenario, row: dict[str, Any]) -> bool:
    """Does the algorithm stop after this round (``training.stop_at_target``)?"""
    return sc.training.stop_at_target and row["test_accuracy"] >= sc.training.target_accuracy


def _summary(rows: list[dict[str, Any]], sim_time_s: float,
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


def _candidates(sc: Scenario, net: Network, now_s: float) -> list[int]:
    """The clients a round may pick from: all, or those in view now or within the look-ahead."""
    if sc.training.selection.kind == "random":
        return list(range(len(net.client_ids)))
    return net.in_view(now_s, now_s + sc.training.selection.lookahead)


def _transfer_order(t: dict[str, Any]) -> tuple:
    return (t["start_s"], t["direction"] != "down", t["client"])


@dataclass
class _Round:
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
    # called with a delivered downlink (a RouteOutcome) before the client trains; may set
    # ``received`` (the asynchronous server's newest-model handover)
    on_download: Any = None


def _downlinks_delivered(prep: Prepared, rnd: _Round, selected: list[int],
                         now_s: float) -> list[int]:
    """The selected clients whose downlink of this round will be delivered, earliest first:
    the same transfers as ``_client``'s, run alone (a transfer depends only on its route,
    its size, the deadline and keyed loss draws). Only the order of training depends on it."""
    net, policy, r = prep.network, prep.scenario.links.on_loss_of_signal, rnd.number
    arrivals = []
    for c in dict.fromkeys(selected):
        env = simpy.Environment(initial_time=now_s)
        down = env.process(send(env, net, c, "down", len(rnd.down_payload), rnd.deadline_s,
                                round_=r, policy=policy, hop_transfer=dry_run_transfer))
        env.run()
        if down.value.status == "delivered":
            arrivals.append((down.value.end_s, c))
    return [c for _, c in sorted(arrivals, key=lambda a: a[0])]


def _client(env: simpy.Environment, prep: Prepared, strategy: Strategy, rnd: _Round, c: int,
            pool: TrainingPool | None = None):
    net, r = prep.network, rnd.number
    cid = net.client_ids[c]
    row = {"algorithm": rnd.algorithm, "round": r, "client": cid,
           "n_samples": len(prep.shards[c]), "down_status": None, "compute_start_s": None,
           "compute_s": None, "up_status": None, "arrived_s": None, "aggregated": False}
    rnd.clients.append(row)
    power = NodePower(rnd.batteries[c], env.now) if rnd.batteries is not None \
        and rnd.batteries[c] is not None else None
    yield from _client_steps(env, prep, strategy, rnd, c, pool, row, power)
    if power is not None:
        rnd.power.append({"algorithm": rnd.algorithm, "round": r, "node": cid, **power.row()})


def _client_steps(env, prep: Prepared, strategy: Strategy, rnd: _Round, c: int,
                  pool: TrainingPool | None, row: dict[str, Any], power: NodePower | None):
    """Receive, train, send: ``row`` (clients.csv) is filled in as it goes."""
    sc, net, r = prep.scenario, prep.network, rnd.number
    policy = sc.links.on_loss_of_signal
    cid = net.client_ids[c]
    down = yield from send(env, net, c, "down", len(rnd.down_payload), rnd.deadline_s,
                           round_=r, policy=policy)
    rnd.transfers.append(_transfer_row(rnd.algorithm, r, cid, "down", down))
    row["down_status"] = down.status
    if power is not None:
        power.on_air(down, cid)
    if down.status != "delivered":
        return
    if rnd.on_download is not None:
        rnd.on_download(down)
    if pool is None:
        update = strategy.client_update(prep.trainer, rnd.received, c,
                                        rng_for(sc.seed, "train", r, c))
    else:
        update = pool.update(c)
    strategy.set_client_state(c, update.state)
    compute_s = update.flops / sc.compute.flops_per_s
    row["compute_s"] = compute_s
    if power is not None:  # wait for the charge to train (the node idles meanwhile)
        start_s = power.earliest_start(env.now, compute_s, "compute", rnd.deadline_s)
        if start_s >= rnd.deadline_s:  # not before the round closes: it never trains
            yield env.timeout(rnd.deadline_s - env.now)
            return _not_sent(strategy, c, update, row)
        yield env.timeout(start_s - env.now)
    row["compute_start_s"] = env.now
    if env.now + compute_s >= rnd.deadline_s:  # still computing when the round closes
        if power is not None:
            power.run(env.now, rnd.deadline_s - env.now, "compute")
        yield env.timeout(rnd.deadline_s - env.now)
        return _not_sent(strategy, c, update, row)
    if power is not None:
        power.run(env.now, compute_s, "compute")
    yield env.timeout(compute_s)
    if power is not None:  # ... and to transmit (for its transmit time over its own link)
        start_s = power.earliest_start(env.now, _transmit_s(net, c, len(update.payload),
                                                            env.now), "tx", rnd.deadline_s)
        if start_s >= rnd.deadline_s:
            yield env.timeout(rnd.deadline_s - env.now)
            return _not_sent(strategy, c, update, row)
        yield env.timeout(start_s - env.now)
    up = yield from send(env, net, c, "up", len(update.payload), rnd.deadline_s,
                         round_=r, policy=policy)
    rnd.transfers.append(_transfer_row(rnd.algorithm, r, cid, "up", up))
    row["up_status"] = up.status
    if up.status == "timeout" and update.unsent_state is not None:
        strategy.set_client_state(c, update.unsent_state)  # it knows it did not finish
    if power is not None:
        power.on_air(up, cid)
    if up.status == "delivered":
        row["arrived_s"] = up.end_s
        rnd.aggregator.add(update.payload, update.n_samples)
        if update.avg_bits is not None:
            rnd.bits.append(update.avg_bits)


def _not_sent(strategy: Strategy, c: int, update: ClientUpdate, row: dict[str, Any]) -> None:
    """The upload is never sent: mark it, and the client keeps what it would have sent
    (error feedback: its whole update, not the residual that assumed delivery)."""
    row["up_status"] = "not_sent"
    if update.unsent_state is not None:
        strategy.set_client_state(c, update.unsent_state)


def _transmit_s(net: Network, c: int, n_bytes: int, t_s: float) -> float:
    """The time to send ``n_bytes`` over client ``c``'s own uplink at its rate in its next
    window (what a battery must hold out for before transmitting)."""
    route = net.route_up(c)
    window = route[0].channel.next_window(t_s) if route else None
    if window is None:
        return 0.0
    rate_bps = route[0].channel.rate.rate_at(window[0])
    return 8.0 * n_bytes / rate_bps if rate_bps > 0 else 0.0


def _transfer_row(algorithm: str, r: int, client: str, direction: str,
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


def run_scenario(scenario: Scenario, out_dir, *, on_round_end: RoundCallback | None = None,
                 on_prepared: Callable[[Prepared], None] | None = None,
                 resume: bool = False) -> dict[str, Any]:
    """Run every algorithm of ``scenario`` on the same network and seed; write ``out_dir``.

    ``resume``: continue the run in ``out_dir`` from its last complete round (its checkpoint,
    ``sinsim.sim.checkpoint``); a run there with another scenario is refused (``ConfigError``),
    a completed one is not run again, and with nothing to continue the run starts afresh."""
    import skyfield

    resolved = scenario.resolved()
    cp = _resumable(out_dir, resolved) if resume else None
    if isinstance(cp, dict):  # the run there is complete
        return cp
    if cp is None:
        checkpoint.remove(out_dir)
    recorder = Recorder(out_dir, resume_counts=cp.counts if cp is not None else None,
                        optional=("power",) if scenario.power is not None else ())
    progress = cp if cp is not None else Checkpoint(resolved, dict(recorder.counts))
    summary: dict[str, Any] = {
        "scenario": scenario.name, "status": "running", "seed": scenario.seed,
        "versions": {"sinsim": SINSIM_VERSION, "torch": torch.__version__,
                     "skyfield": skyfield.__version__, "simpy": simpy.__version__},
        "resolved_scenario": resolved, "algorithms": {},
    }
    if cp is not None:
        summary["resumed_from"] = {"rounds_done": sum(
            s["rounds_run"] for s in cp.finished.values()) + (
            len(cp.current.rows) if cp.current is not None else 0)}

    def save(state: AlgorithmState) -> None:
        progress.current, progress.counts = state, dict(recorder.counts)
        checkpoint.save(recorder.out_dir, progress)

    try:
        topology = orbital_topology(scenario)
        if topology is not None:
            try:
                write_topology(topology, recorder.out_dir)
            except OSError as e:
                raise WriteFailed(f"cannot write {e.filename or recorder.out_dir}: "
                                  f"{(e.strerror or str(e)).lower()}") from e
            summary["contacts"] = contacts_info(topology)
        prep = prepare(scenario, build_network(scenario, topology), topology)
        summary["dataset"] = prep.dataset.info()
        summary["n_clients"] = len(prep.network.client_ids)
        summary["device"] = str(prep.trainer.device)
        # the kernels' instruction set; portable: pinned to the same path on every x86-64
        summary["cpu_capability"] = portable.cpu_capability()
        summary["portable"] = prep.trainer.device.type == "cpu" and portable.in_effect()
        if on_prepared:
            on_prepared(prep)
        pool = training_pool(prep)
        summary["training_processes"] = pool.processes if pool is not None else 1
        try:
            for algorithm in scenario.algorithms:
                label = algorithm.label
                if label in progress.finished:
                    summary["algorithms"][label] = progress.finished[label]
                    continue
                current = progress.current
                state = current if current is not None and current.label == label else None
                summary["algorithms"][label] = run_algorithm(
                    prep, algorithm, recorder, on_round_end, pool, resume=state,
                    on_checkpoint=save)
                progress.finished[label] = summary["algorithms"][label]
                progress.current, progress.counts = None, dict(recorder.counts)
                checkpoint.save(recorder.out_dir, progress)
        finally:
            if pool is not None:
                pool.close()
        summary["status"] = "complete"
        return summary
    except BaseException as e:
        summary["status"] = "failed"
        summary["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        recorder.close()
        try:
            recorder.write_json("summary.json", summary)
        except WriteFailed:
            if summary["status"] != "failed":
                raise  # else the failure under way is the one to tell
        if summary["status"] == "complete":  # the checkpoint goes once the summary is there
            checkpoint.remove(recorder.out_dir)


def _resumable(out_dir, resolved: dict[str, Any]) -> Checkpoint | dict[str, Any] | None:
    """What ``--resume`` finds in ``out_dir``: a checkpoint to continue, the summary of a
    complete run of the same scenario, or None (nothing to continue: start afresh)."""
    cp = checkpoint.load(out_dir)
    if cp is not None:
        before = cp.scenario
    else:
        try:
            summary = json.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        before = summary.get("resolved_scenario")
        if summary.get("status") != "complete":
            return None
    diff = checkpoint.first_difference(before, resolved)
    if not diff and cp is not None and cp.scenario_sha256 != checkpoint.scenario_hash(resolved):
        diff = "the scenario's hash differs"
    if diff:
        raise ConfigError(f"the run there was made with another scenario ({diff}); --resume "
                          f"continues only the same scenario (use another --out, or run "
                          f"without --resume to start over)", file=str(out_dir))
    return cp if cp is not None else summary
