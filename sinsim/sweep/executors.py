"""Where a sweep's runs go: a local process pool (``spawn``; one worker per core by default) or
Dask (``dask.distributed``: a ``LocalCluster`` with one thread per worker process, or the
scheduler at an address; install ``sinsim[dask]``). Runs are deterministic given scenario and
seed, so both give the same tables (except ``host_wall_s``).

A task is ``(scenario path, overrides, output directory)``: the worker loads the scenario itself,
which keeps the task picklable and the same on both executors.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sinsim.errors import ConfigError
from sinsim.scenario import load_scenario
from sinsim.sweep.plan import DASK_HINT, ExecutorSpec, RunSpec

__all__ = ["run_one", "run_local", "run_dask", "cores", "RunFn", "Task", "Finished"]

RunFn = Callable[[str, Sequence[str], str], dict[str, Any]]
Task = tuple[RunSpec, tuple[str, list[str], str]]  # a run and the arguments of its RunFn
Finished = Callable[[RunSpec, dict[str, Any]], None]


def run_one(scenario_path: str, overrides: Sequence[str], out_dir: str) -> dict[str, Any]:
    """Run one scenario into ``out_dir`` (in a worker process, one torch thread). Never raises:
    returns ``{"status": "complete" | "failed", "error", "wall_s"}``; a failed run's traceback
    goes to ``out_dir/error.txt``."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    try:
        import torch

        from sinsim.sim.engine import run_scenario

        torch.set_num_threads(1)
        if out.exists():
            shutil.rmtree(out)  # a failed or outdated attempt: start clean
        scenario = load_scenario(scenario_path, overrides)
        run_scenario(scenario, out)
        return {"status": "complete", "error": None, "wall_s": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - reported by the sweep, the other runs go on
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        return {"status": "failed", "error": f"{type(e).__name__}: {e}",
                "wall_s": time.perf_counter() - t0}


def run_local(tasks: Sequence[Task], workers: int, run_fn: RunFn, finished: Finished) -> None:
    """Every task on a pool of ``workers`` spawned processes; ``finished`` as each ends."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: torch is not fork-safe once its thread pools exist
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(run_fn, *args): run for run, args in tasks}
        for fut in as_completed(futures):
            finished(futures[fut], _result(fut))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


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
        client = Client(ex.address)
        workers = len(client.nthreads()) or workers
    else:
        workers = min(workers, len(tasks))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures, runs = [], {}
        for run, args in tasks:
            fut = client.submit(run_fn, *args, pure=False,
                                key=f"sinsim-{run.run_id}-{os.urandom(4).hex()}")
            futures.append(fut)
            runs[fut.key] = run
        for fut in as_completed(futures):
            finished(runs[fut.key], _result(fut))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return workers


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
