"""Sweeps on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
127.0.0.1, started as a user starts them, and `python -m sinsim sweep --scheduler tcp://...`.

- The cluster's `runs.csv` equals the local process pool's (host time aside).
- A worker killed (SIGKILL, its whole process group) in the middle of a run: the scheduler
  reruns that run on the other worker, from an empty run directory, and the table is the same.

The sweep is `tests/data/cluster_sweep.yaml` (sweeps/tiny.yaml's grid on synthetic data, a few
seconds a run). Every process started here is killed in a `finally`, by process group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import pytest

from sinsim.sweep.table import run_state

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "tests" / "data" / "cluster_sweep.yaml"
RUNS = 4
ENV = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}


def _dask(command: str) -> list[str]:
    """`dask scheduler` / `dask worker` from this interpreter's environment, else the module."""
    script = Path(sys.executable).parent / "dask"
    if script.exists() or shutil.which("dask", path=str(script.parent)):
        return [str(script), command]
    return [sys.executable, "-m", f"distributed.cli.dask_{command}"]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    # a session of its own: killpg takes the worker's nanny and the process it runs
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _left_behind(pgids: list[int]) -> list[str]:
    """Live processes (not zombies) of these process groups, after a few seconds' grace."""
    deadline = time.monotonic() + 10
    while True:
        ps = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True,
                            text=True, check=True)
        left = [line for line in ps.stdout.splitlines()
                if int(line.split()[1]) in pgids and not line.split()[2].startswith("Z")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@contextmanager
def cluster(tmp: Path) -> Iterator[tuple[str, dict[str, subprocess.Popen], object]]:
    """A scheduler and workers `a` and `b` (one process, one thread each); yields the
    scheduler's address, the workers' processes by name and a client of the scheduler."""
    procs: list[subprocess.Popen] = []
    client = None
    try:
        sched_file = tmp / "scheduler.json"
        # the timeouts end the processes on their own should this test itself be killed
        procs.append(_start([*_dask("scheduler"), "--host", "127.0.0.1", "--port", "0",
                             "--no-dashboard", "--scheduler-file", str(sched_file),
                             "--idle-timeout", "600s"], tmp / "scheduler.log"))
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but let its writer finish
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = {}
        for name in ("a", "b"):
            # under sinsim.learn.portable: the sweep's scenario (tiny.yaml) is portable, and a
            # Dask worker takes the pins only when started with them (README: Portable mode)
            workers[name] = _start(
                [sys.executable, "-m", "sinsim.learn.portable", *_dask("worker"), address, "--name", name, "--nworkers", "1", "--nthreads",
                 "1", "--no-dashboard", "--death-timeout", "60s",
                 "--local-directory", str(tmp / f"worker-{name}")], tmp / f"worker-{name}.log")
            procs.append(workers[name])
        client = distributed.Client(address, set_as_default=False)
        client.wait_for_workers(2, timeout=120)
        yield address, workers, client
    finally:
        if client is not None:
            client.close()
        for proc in reversed(procs):
            _kill(proc)
        left = _left_behind([proc.pid for proc in procs])
        assert not left, f"processes left behind: {left}"


def sweep(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sinsim", "sweep", str(SWEEP), "--out", str(out), "--quiet",
            *args]


def table(out: Path) -> pd.DataFrame:
    """`runs.csv` without host time, rows in one order."""
    t = pd.read_csv(out / "runs.csv")
    t = t.drop(columns=[c for c in t.columns if c.startswith("host_")])
    return t.sort_values(["run_id", "algorithm", "round"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_table(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("local")
    p = subprocess.run(sweep(out, "--executor", "local", "--workers", "2"), cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    t = table(out)
    assert t.run_id.nunique() == RUNS and len(t) == RUNS * 4  # 4 rounds of FedAvg a run
    return t


def test_a_sweep_on_a_scheduler_and_two_workers_gives_the_local_table(local_table, tmp_path):
    with cluster(tmp_path) as (address, _, _):
        out = tmp_path / "out"
        p = subprocess.run(sweep(out, "--executor", "dask", "--scheduler", address), cwd=ROOT,
                           env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert f"{RUNS} runs: {RUNS} done, 0 skipped (already finished), 0 failed" in p.stdout
    assert "[dask, 2 workers" in p.stdout
    pd.testing.assert_frame_equal(table(out), local_table)
    assert set(pd.read_csv(out / "runs_index.csv").status) == {"complete"}


def test_a_worker_killed_mid_run_leaves_the_table_unchanged(local_table, tmp_path):
    out = tmp_path / "out"
    runs = out / "runs"
    with cluster(tmp_path) as (address, workers, client):
        names = {addr: info["name"] for addr, info in
                 client.scheduler_info()["workers"].items()}
        log = tmp_path / "sweep.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen(sweep(out, "--executor", "dask", "--scheduler", address),
                                    cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            # the first run with files on disk, and the worker whose task it is
            victim = killed_run = None
            deadline = time.monotonic() + 300
            while victim is None:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "no run started"
                started = [d.name for d in runs.glob("*") if d.is_dir() and any(d.iterdir())
                           and run_state(d) != "complete"] if runs.exists() else []
                for addr, keys in client.processing().items():
                    for run_id in started:
                        if any(str(k).startswith(f"sinsim-{run_id}-") for k in keys):
                            victim, killed_run = names[addr], run_id
                time.sleep(0.02)
            run_dir = runs / killed_run
            # stands for whatever else the killed attempt half-wrote (the rerun rewrites the
            # tables but would not touch this)
            (run_dir / "half_written.csv").write_text("round,acc\n1,0.", encoding="utf-8")
            t_kill = time.time_ns()
            _kill(workers[victim])
            assert run_state(run_dir) != "complete"  # killed mid-run, not after it

            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                _kill(proc)
        assert len(client.scheduler_info()["workers"]) == 1
    text = log.read_text()
    assert proc.returncode == 0, text
    assert f"{RUNS} runs: {RUNS} done, 0 skipped (already finished), 0 failed" in text
    pd.testing.assert_frame_equal(table(out), local_table)
    # the rerun started from an empty directory: nothing of the killed attempt is left
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    stale = [f.name for f in run_dir.iterdir() if f.stat().st_mtime_ns < t_kill]
    assert not stale, f"files of the killed attempt in {run_dir}: {stale}"
