"""Training in several processes (``training.workers``): one run with 1 and with N processes.

Runs ``python -m sinsim SCENARIO --set training.workers=W`` (default ``scenarios/tiny.yaml``:
20 clients, 4 a round, FedAvg beside SpaceDML; ``--rounds`` rounds, default 1) as a fresh
command per measurement, so start-up (and the helpers' start) counts, alternating W = 1 and
W = ``--workers`` (default 2) in ABBA order, ``SINSIM_BENCH_REPEATS`` (default 2) of each;
medians. Checks that rounds.csv (``host_wall_s`` aside), transfers.csv and clients.csv are
identical byte for byte. Prints the load average: on a shared machine a second process only
helps when a core is free. The last line is ``training_workers_speedup: <t1 / tN>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 2))


def tables(out: Path) -> tuple[str, str, str]:
    rounds = pd.read_csv(out / "rounds.csv").drop(columns="host_wall_s")
    return (rounds.to_csv(index=False), (out / "transfers.csv").read_text(),
            (out / "clients.csv").read_text())


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", nargs="?", default=str(REPO / "scenarios" / "tiny.yaml"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    print(f"scenario: {args.scenario}, rounds: {args.rounds}, overrides: {args.overrides}, "
          f"{os.cpu_count()} cores, load average: {load_average()}")
    walls: dict[int, list[float]] = {1: [], args.workers: []}
    seen: dict[int, tuple[str, str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(REPEATS):
            order = (1, args.workers) if r % 2 == 0 else (args.workers, 1)
            for w in order:
                out = Path(tmp) / f"w{w}_{r}"
                cmd = [sys.executable, "-m", "sinsim", args.scenario, "--out", str(out),
                       "--quiet", "--set", f"training.rounds={args.rounds}",
                       "--set", f"training.workers={w}"]
                for o in args.overrides:
                    cmd += ["--set", o]
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
                walls[w].append(time.perf_counter() - t0)
                seen.setdefault(w, tables(out))
                if tables(out) != seen[w]:
                    raise SystemExit(f"two runs with {w} process(es) gave different tables")
                print(f"  repeat {r + 1}: workers={w}: {walls[w][-1]:.1f} s wall "
                      f"(load average {load_average()})")
    same = seen[1] == seen[args.workers]
    print(f"tables identical with 1 and {args.workers} processes (host_wall_s aside): {same}")
    if not same:
        raise SystemExit("the tables differ")
    t1, tn = statistics.median(walls[1]), statistics.median(walls[args.workers])
    print(f"load average at the end: {load_average()} ({os.cpu_count()} cores; above the "
          f"core count means others ran)")
    print(f"workers_1_s: {t1:.1f} (median of {REPEATS})")
    print(f"workers_{args.workers}_s: {tn:.1f} (median of {REPEATS})")
    print(f"training_workers_speedup: {t1 / tn:.2f}")


if __name__ == "__main__":
    main()
