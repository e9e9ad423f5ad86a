"""Where a sweep's runs go: a local process pool (``spawn``; one worker per core by default) or
Dask (``dask.distributed``: a ``LocalCluster`` with one thread per worker process, or the
scheduler at an address; install ``sinsim[dask]``). Runs are deterministic given scenario and
seed, so both give the same tables (except ``host_wall_s``).

A task is ``(scenario path, overrides, output directory)``: the worker loads the scenario itself,
which keeps the task picklable and the same on both executors. Paths are absolute, so workers on
other machines need the same paths (a shared filesystem), ``sinsim`` importable and the data
(``SINSIM_DATA_DIR``, else ``./data`` of their working directory).

On a cluster a worker may die mid-run. The scheduler then reruns its task on another worker (at
most ``distributed.scheduler.allowed-failures`` times, 3 by default; then the run is reported
failed with ``KilledWorker``), and a task that raises is resubmitted :data:`RETRIES` times. An
attempt that finds the checkpoint of an earlier one of the same scenario (``--resume``,
``sinsim.sim.checkpoint``) continues from its last complete round, keeping only the tables (cut
back to the checkpoint) and the checkpoint; otherwise it starts from an empty run directory. So
nothing the dead attempt half-wrote survives, and a sweep rerun after a kill resumes its runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sinsim._lifeline import exit_with_parent
from sinsim.errors import ConfigError, InputError
from sinsim.scenario import load_scenario
from sinsim.sweep.plan import DASK_HINT, ExecutorSpec, RunSpec

__all__ = ["run_one", "run_local", "run_dask", "cores", "RunFn", "Task", "Finished", "RETRIES"]

RETRIES = 2  # Dask resubmits a task that raised this many times (a dead worker: see above)

RunFn = Callable[[str, Sequence[str], str], dict[str, Any]]
Task = tuple[RunSpec, tuple[str, list[str], str]]  # a run and the arguments of its RunFn
Finished = Callable[[RunSpec, dict[str, Any]], None]

# One run at a time per process: torch's thread count and seeding are process-wide, so runs in
# threads of one process (a Dask worker started with --nthreads > 1) would disturb each other.
_ONE_RUN = threading.Lock()


def run_one(scenario_path: str, overrides: Sequence[str], out_dir: str) -> dict[str, Any]:
    """Run one scenario into ``out_dir`` (in a worker process, one torch thread). Never raises:
    returns ``{"status": "complete" | "failed", "error", "wall_s"}``; a failed run's traceback
    goes to ``out_dir/error.txt``."""
    with _ONE_RUN:
        return _run_one(scenario_path, overrides, out_dir)


def _run_one(scenario_path: str, overrides: Sequence[str], out_dir: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(out_dir)
    try:
        import torch

        from sinsim.sim.engine import run_scenario

        torch.set_num_threads(1)
        scenario = load_scenario(scenario_path, overrides)
        resume = _resumable(out, scenario.resolved())
        if out.exists() and not resume:
            # a failed, outdated or killed attempt (a Dask worker that died mid-run): its
            # partial tables must not mix with this attempt's, so start from an empty directory
            shutil.rmtree(out)
        run_scenario(scenario, out, resume=resume)
        return {"status": "complete", "error": None, "wall_s": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - reported by the sweep, the other runs go on
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        return {"status": "failed", "error": f"{type(e).__name__}: {e}",
                "wall_s": time.perf_counter() - t0}


def _resumable(out: Path, resolved: dict[str, Any]) -> bool:
    """Does ``out`` hold a checkpoint of this scenario? Then everything but the tables and the
    checkpoint (and its log) is removed, and the run resumes (the recorder cuts the tables back)."""
    from sinsim.sim import checkpoint  # the engine's room: imported in the worker only

    try:
        cp = checkpoint.load(out) if out.is_dir() else None
    except checkpoint.CheckpointError as e:  # not loaded: the run starts afresh, as below
        logging.getLogger(__name__).warning("%s; the run starts afresh", e)
        return False
    if cp is None or cp.scenario_sha256 != checkpoint.scenario_hash(resolved):
        return False
    kept = {f"{table}.csv" for table in cp.counts} | {checkpoint.CHECKPOINT, checkpoint.LOG}
    for path in out.iterdir():
        if path.name not in kept:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return True


def run_local(tasks: Sequence[Task], workers: int, run_fn: RunFn, finished: Finished) -> None:
    """Every task on a pool of ``workers`` spawned processes; ``finished`` as each ends. A
    worker ends when this process does, however it ends (``exit_with_parent``); interrupted
    here (Ctrl-C), the workers are stopped at once rather than left to finish their runs."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: torch is not fork-safe once its thread pools exist
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent)
    try:
        futures = {pool.submit(run_fn, *args): run for run, args in tasks}
        for fut in as_completed(futures):
            finished(futures[fut], _result(fut))
    except BaseException:
        _terminate_workers(pool)  # before shutdown, which forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _terminate_workers(pool) -> None:
    """Stop a ``ProcessPoolExecutor``'s workers now (``terminate_workers`` from Python 3.14)."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        p.terminate()


def run_dask(tasks: Sequence[Task], ex: ExecutorSpec, workers: int, run_fn: RunFn,
             finished: Finished, file: str) -> int:
    """Every task on Dask (the scheduler at ``ex.address``, else a ``LocalCluster`` of
    ``workers`` processes); returns the number of workers used."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise ConfigError(f"{DASK_HINT} ({e})", file=file) from None
    cluster = None
    if ex.address:
        client = _connect(Client, ex.address)
        workers = len(client.nthreads())  # may be 0: the runs wait for workers to join
    else:
        workers = min(workers, len(tasks))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures, runs = [], {}
        for run, args in tasks:
            fut = client.submit(run_fn, *args, pure=False, retries=RETRIES,
                                key=f"sinsim-{run.run_id}-{os.urandom(4).hex()}")
            futures.append(fut)
            runs[fut.key] = run
        for fut in as_completed(futures):
            finished(runs[fut.key], _result(fut))
        if ex.address:  # workers may join or leave meanwhile: report the larger count
            workers = max(workers, len(client.nthreads()))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return workers


def _connect(client_cls, address: str):
    """A client of the scheduler at ``address``; an unreachable or malformed address is bad
    input (exit 2), named with where it came from."""
    import asyncio

    from distributed.comm import get_address_host_port

    try:
        get_address_host_port(address)  # a malformed one fails here, before a Client exists
        return client_cls(address)
    except (OSError, ValueError, TypeError, asyncio.TimeoutError) as e:
        raise InputError(
            f"cannot connect to the Dask scheduler at {address!r} (--scheduler or "
            f"executor.address): {type(e).__name__}: {e}; start one with `dask scheduler` and "
            "give the address it prints (tcp://HOST:PORT)") from None


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _result(fut) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as e:  # noqa: BLE001 - a worker that died (out of memory, killed, ...)
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "wall_s": None}
