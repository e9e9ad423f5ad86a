"""No process outlives its run: a run with two training processes, or a sweep with two worker
processes (each running a scenario with two training processes), killed by SIGTERM, SIGINT or
SIGKILL sent to the parent process only, leaves none of its processes behind.

Each command starts in a session of its own (so its process group is its own); the test waits
until the workers exist (found through /proc: the descendants of the parent), signals the parent
alone, and then looks, for a few seconds, for any live process of that group or any process it
saw before the signal. A `finally` kills whatever is left (by group and by pid), so a failing
test leaves nothing behind either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
ENV.pop("PYTEST_XDIST_WORKER", None)  # the commands run as a user runs them
# tiny.yaml on synthetic data, long enough not to end before the signal
RUN_SETTINGS = {"training.dataset": "synthetic", "training.rounds": 200, "clients.count": 8,
                "training.clients_per_round": 4, "algorithms": ["fedavg"],
                "training.workers": 2}
GRACE_S = 10  # the processes must be gone within this (they go in well under a second)
START_S = 120  # how long the workers may take to appear on a loaded machine


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, process group, state) of ``pid``; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), int(fields[2]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _descendants(root: int) -> dict[int, tuple[int, str]]:
    """Live descendants of ``root``: pid -> (parent pid, command line)."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        st = _stat(pid)
        if st is not None and st[2] != "Z":
            children.setdefault(st[0], []).append(pid)
    out, todo = {}, [(root, c) for c in children.get(root, [])]
    while todo:
        parent, pid = todo.pop()
        out[pid] = (parent, _cmdline(pid))
        todo.extend((pid, c) for c in children.get(pid, []))
    return out


def _alive(pids: set[int], pgid: int) -> dict[int, str]:
    """Those of ``pids``, and any process of group ``pgid``, still alive (zombies are dead)."""
    left = {}
    for pid in set(_pids()):
        st = _stat(pid)
        if st is not None and st[2] != "Z" and (pid in pids or st[1] == pgid):
            left[pid] = _cmdline(pid)
    return left


def _wait_for(proc: subprocess.Popen, ready, what: str) -> dict[int, tuple[int, str]]:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        procs = _descendants(proc.pid)
        if ready(procs):
            return procs
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the command ended (code {proc.returncode}) before {what}:\n{out}")
        time.sleep(0.1)
    pytest.fail(f"no {what} after {START_S} s: {_descendants(proc.pid)}")


def _kill_and_look(cmd: list[str], sig: signal.Signals, ready, what: str) -> None:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen: dict[int, tuple[int, str]] = {}
    try:
        seen = _wait_for(proc, ready, what)
        os.kill(proc.pid, sig)  # the parent only, not its group
        proc.wait(timeout=GRACE_S * 3)
        deadline = time.monotonic() + GRACE_S
        while (left := _alive(set(seen), proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"left behind after {sig.name} to the parent: {left}"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in seen:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def _training_helpers(procs: dict[int, tuple[int, str]]) -> int:
    """Training helpers: children of multiprocessing's fork server (whose command line they
    keep)."""
    servers = {pid for pid, (_, cmd) in procs.items() if "multiprocessing.forkserver" in cmd}
    return sum(parent in servers for parent, _ in procs.values())


def _sweep_workers(procs: dict[int, tuple[int, str]]) -> int:
    return sum("multiprocessing.spawn" in cmd for _, cmd in procs.values())


SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_killed_run_leaves_no_training_process(sig, tmp_path):
    sets = [a for k, v in RUN_SETTINGS.items() for a in ("--set", f"{k}={_yaml(v)}")]
    cmd = [sys.executable, "-m", "sinsim", "scenarios/tiny.yaml", "--out", str(tmp_path / "out"),
           "--quiet", *sets]
    _kill_and_look(cmd, sig, lambda p: _training_helpers(p) >= 1, "training helper")


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_killed_sweep_leaves_no_worker(sig, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "orphans", "scenario": str(ROOT / "scenarios" / "tiny.yaml"),
        "set": RUN_SETTINGS, "grid": {"training.lr": [0.01, 0.05]}, "seeds": [0],
        "executor": {"kind": "local"}}), encoding="utf-8")
    cmd = [sys.executable, "-m", "sinsim", "sweep", str(sweep), "--out", str(tmp_path / "out"),
           "--workers", "2", "--quiet"]
    # both sweep workers, and the training helper of a run inside one of them
    _kill_and_look(cmd, sig, lambda p: _sweep_workers(p) >= 2 and _training_helpers(p) >= 1,
                   "sweep workers running training helpers")


def _yaml(value) -> str:
    return value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True
                                                                ).strip()
