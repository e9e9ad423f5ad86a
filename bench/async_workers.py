"""The asynchronous and hierarchical servers with ``training.workers`` 1 and 2, in one process.

Runs the same scenario through ``run_scenario`` with ``training.workers`` 1 and 2, alternating
in ABBA order, ``SINSIM_BENCH_REPEATS`` (default 2) of each, after one untimed two-worker
warm-up (the fork server imports torch once per Python process); medians. Two cases:

- async: ``scenarios/tiny.yaml`` (20 clients always in view, 4 at once; ``portable`` off) with
  FedAsync and FedBuff (``--versions`` server versions each, default 6; ``buffer_size`` 4);
- hierfl: ``scenarios/leo_isl.yaml`` (100 satellites in 10 planes, 20 a round, two local epochs;
  a 14 h horizon) with hierfl, ``plane_rounds`` 2, ``--rounds`` rounds (default 2).

Checks that every table (``host_wall_s`` aside) is identical with 1 and 2 processes. How much the
second process helps depends on how much training overlaps in simulated time: a job is queued
when its model is known (a download's first bit on the air, a round's or a plane model's
start) and taken when the simulated client needs it: the CPU time of the run's own process
with 2 workers, against 1, says how much of the work the helper took whatever the load. Prints
the load average: on a shared machine a second process only helps when a core is free. The last
line is ``speedup_async_workers_2: <t1 / t2>`` (the async case).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sinsim.scenario import load_scenario  # noqa: E402
from sinsim.sim.engine import run_scenario  # noqa: E402

REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 2))
TABLES = ("rounds", "transfers", "clients", "hops")


def tables(out: Path) -> dict[str, str]:
    """Every table of the run in ``out`` as text, ``host_wall_s`` dropped."""
    got = {}
    for name in TABLES:
        table = pd.read_csv(out / f"{name}.csv")
        got[name] = table.drop(columns=[c for c in ("host_wall_s",) if c in table]).to_csv(
            index=False)
    return got


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def measure(name: str, path: str, overrides: list[str], tmp: Path) -> float:
    """Median wall seconds with 1 and 2 processes; their ratio."""
    def scenario(workers: int):
        return load_scenario(path, [*overrides, f"training.workers={workers}"])

    print(f"{name}: {Path(path).name} {' '.join(overrides)}")
    run_scenario(scenario(2), tmp / f"{name}_warmup")  # untimed
    walls: dict[int, list[float]] = {1: [], 2: []}
    cpus: dict[int, list[float]] = {1: [], 2: []}  # the run's own process
    seen: dict[int, dict[str, str]] = {}
    for r in range(REPEATS):
        for w in (1, 2) if r % 2 == 0 else (2, 1):
            out = tmp / f"{name}_w{w}_{r}"
            t0, c0 = time.perf_counter(), time.process_time()
            summary = run_scenario(scenario(w), out)
            walls[w].append(time.perf_counter() - t0)
            cpus[w].append(time.process_time() - c0)
            assert summary["training_processes"] == w, summary["training_processes"]
            seen.setdefault(w, tables(out))
            if tables(out) != seen[w]:
                raise SystemExit(f"{name}: two runs with {w} process(es) gave different tables")
            print(f"  repeat {r + 1}: workers={w}: {walls[w][-1]:.1f} s wall, "
                  f"{cpus[w][-1]:.1f} s CPU in the run's process (load average "
                  f"{load_average()})")
    if seen[1] != seen[2]:
        raise SystemExit(f"{name}: the tables differ with 1 and 2 processes")
    print("  tables identical with 1 and 2 processes (host_wall_s aside): True")
    t1, t2 = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"  {name}_workers_1_s: {t1:.1f}, {name}_workers_2_s: {t2:.1f} (medians of {REPEATS}); "
          f"CPU in the run's process: {statistics.median(cpus[1]):.1f} s and "
          f"{statistics.median(cpus[2]):.1f} s (the helper did the rest)")
    return t1 / t2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--versions", type=int, default=6)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--skip-hierfl", action="store_true")
    args = p.parse_args()
    print(f"{os.cpu_count()} cores, load average: {load_average()}")
    os.chdir(REPO)  # the scenarios' data paths
    with tempfile.TemporaryDirectory() as tmp:
        hier = None
        if not args.skip_hierfl:
            hier = measure("hierfl", "scenarios/leo_isl.yaml",
                           ["algorithms=[{hierfl: {plane_rounds: 2}}]",
                            f"training.rounds={args.rounds}", "training.clients_per_round=20",
                            "horizon=14h"],
                           Path(tmp))
        speedup = measure("async", "scenarios/tiny.yaml",
                          ["algorithms=[fedasync, {fedbuff: {buffer_size: 4}}]",
                           "training.portable=false", f"training.rounds={args.versions}"],
                          Path(tmp))
    print(f"load average at the end: {load_average()} ({os.cpu_count()} cores; above the "
          f"core count means others ran)")
    if hier is not None:
        print(f"speedup_hierfl_workers_2: {hier:.2f}")
    print(f"speedup_async_workers_2: {speedup:.2f}")


if __name__ == "__main__":
    main()
