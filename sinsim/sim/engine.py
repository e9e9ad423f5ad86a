"""The SimPy engine: ``run_scenario`` runs every algorithm of a scenario on the same network and
seed, with checkpoints for ``--resume``; ``run_algorithm`` runs one. The synchronous server is
here (each round: select, broadcast, every selected client receives, trains and sends back
before the deadline, the server averages what arrived); the asynchronous and hierarchical servers
are ``sinsim.sim.async_server`` and ``sinsim.sim.hier_server``. All three drive the same kernel
(``sinsim.sim.kernel``: a client's steps, rows, batteries, the summary).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simpy
import torch

from sinsim._version import __version__ as SINSIM_VERSION
from sinsim.errors import ConfigError, WriteFailed
from sinsim.learn import portable
from sinsim.learn.parallel import TrainingPool
from sinsim.learn.strategies import RoundContext, Strategy, build_strategy
from sinsim.scenario import Algorithm, Scenario
from sinsim.sim import checkpoint, kernel
from sinsim.sim.async_server import run_async
from sinsim.sim.checkpoint import AlgorithmState, Checkpoint
from sinsim.sim.hier_server import run_hierarchical
from sinsim.sim.prepared import Prepared, RoundCallback, prepare, training_pool
from sinsim.sim.recorder import Recorder
from sinsim.sim.topology import contacts_info, write_topology
from sinsim.sim.wiring import build_network, orbital_topology

__all__ = ["Prepared", "prepare", "training_pool", "run_algorithm", "run_scenario"]


def run_algorithm(prep: Prepared, algorithm: Algorithm, recorder: Recorder,
                  on_round_end: RoundCallback | None = None,
                  pool: TrainingPool | None = None, *, resume: AlgorithmState | None = None,
                  on_checkpoint: Callable[[AlgorithmState], None] | None = None
                  ) -> dict[str, Any]:
    """Run every round of one algorithm in its own SimPy environment; returns its summary.
    ``pool`` (see ``training_pool``) trains the clients; None: in this process. ``resume``
    continues from a checkpoint taken after a round (an asynchronous algorithm's: after a
    version); ``on_checkpoint`` is given the state after every round (once its rows are on
    disk). All three servers take both."""
    sc, net = prep.scenario, prep.network
    strategy: Strategy = build_strategy(algorithm.name, prep.spec, algorithm.strategy_params,
                                        sc.training.model)
    if not strategy.synchronous:  # FedAsync, FedBuff: the asynchronous server
        return run_async(prep, algorithm, strategy, recorder, on_round_end, pool,
                         resume=resume, on_checkpoint=on_checkpoint)
    if strategy.hierarchical:  # hierfl: planes aggregate over their rings first
        return run_hierarchical(prep, algorithm, strategy, recorder, on_round_end, pool,
                                resume=resume, on_checkpoint=on_checkpoint)
    batched = sc.training.batched and hasattr(strategy, "client_updates_batched")
    rows: list[dict[str, Any]] = []  # the rounds.csv rows of this algorithm
    global_state = prep.init_state
    batteries = kernel.batteries(prep)
    if resume is not None:
        rows, global_state = list(resume.rows), resume.global_state
        kernel.restore(prep, strategy, resume, batteries, recorder.out_dir / checkpoint.CHECKPOINT)
    env = simpy.Environment(initial_time=resume.now_s if resume is not None else 0)
    first = rows[-1]["round"] + 1 if rows else 1
    if rows and kernel.reached_target(sc, rows[-1]):
        first = sc.training.rounds + 1  # it had stopped there

    def server():
        nonlocal global_state
        for r in range(first, sc.training.rounds + 1):
            if env.now >= sc.horizon:
                break
            wall0 = time.perf_counter()
            candidates = kernel.candidates(sc, net, env.now)
            if not candidates:  # nobody in view: wait for the next contact
                t_next = net.next_contact_s(env.now)
                if t_next >= sc.horizon:
                    break
                yield env.timeout(t_next - env.now)
                candidates = kernel.candidates(sc, net, env.now)
            t0 = env.now
            ctx = RoundContext(r, t0, tuple(candidates), sc.training.clients_per_round, sc.seed)
            selected = strategy.select(ctx)
            down_payload = strategy.encode_global(global_state)
            rnd = kernel.Round(algorithm.label, r, t0 + sc.training.round_deadline, down_payload,
                         strategy.decode_global(down_payload), strategy.new_aggregator(),
                         batteries=batteries)
            if pool is not None:
                pool.start_round(strategy, rnd.received, down_payload, (sc.seed, "train", r))
                pool.submit(kernel.downlinks_delivered(prep, rnd, selected, env.now), batched=batched)
            yield env.all_of([env.process(kernel.client(env, prep, strategy, rnd, c, pool))
                              for c in selected])
            agg, transfers, clients = rnd.aggregator, rnd.transfers, rnd.clients
            global_state = agg.result(global_state)
            for row in clients:
                row["aggregated"] = row["up_status"] == "delivered"
            row = kernel.round_row(algorithm.label, r, t0, env.now, len(selected), agg.count,
                             transfers, rnd.bits, (pool or prep.trainer).evaluate(global_state),
                             rows[-1] if rows else None, wall0)
            kernel.write_round(recorder, row, transfers, sorted(clients, key=lambda x: x["client"]),
                         rnd.power)
            rows.append(row)
            if on_checkpoint:
                on_checkpoint(AlgorithmState(
                    algorithm.label, list(rows), env.now, global_state, strategy.checkpoint(),
                    kernel.battery_states(batteries)))
            if on_round_end:
                on_round_end(row)
            if kernel.reached_target(sc, row):
                break

    env.run(until=env.process(server()))  # not past the server: a relay may leave a timer
    return kernel.summary(rows, env.now, sc.training.target_accuracy)


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
