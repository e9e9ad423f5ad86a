"""Peak memory of one round with 10,000 clients, vs the same process with only the data loaded.

Each measurement is a fresh child process (this file with ``--child run|baseline``) that prints
its own peak RSS (``ru_maxrss``) when done, so a peak belongs to that run only:

- ``run``: ``run_scenario`` of a 10,000-client scenario (iid shards of a few samples each,
  10 clients per round, 1 round) into a temp dir.
- ``baseline``: the same imports (torch, sinsim's engine, skyfield) and the same dataset loaded,
  nothing else. ``added_mb`` = run - baseline is what the 10,000 clients and the round cost.

The two kinds alternate, REPEATS times each; medians are reported. The last line is the
headline ``peak_rss_mb: <run's peak>`` (target <= 2048).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

DATA_DIR = REPO / "data"
N_CLIENTS = 10_000
CLIENTS_PER_ROUND = 10
REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 2))
TARGET_MB = 2048


def pick_dataset() -> str:
    from sinsim.errors import DatasetUnavailable
    from sinsim.learn.datasets import load_dataset

    try:
        load_dataset("fashion_mnist", DATA_DIR, download=False)
        return "fashion_mnist"
    except DatasetUnavailable:
        return "synthetic"  # 12,000 samples: still more than one per client


def raw_scenario(dataset: str) -> dict:
    return {
        "name": "bench_memory_10k_clients",
        "seed": 0,
        "clients": {"count": N_CLIENTS},
        "links": {"model": "fixed", "loss": {"kind": "none"}},
        "training": {"dataset": dataset, "data_dir": str(DATA_DIR), "download": False,
                     "partition": "iid", "model": "lenet5", "rounds": 1,
                     "clients_per_round": CLIENTS_PER_ROUND, "batch_size": 10,
                     "round_deadline": "1d", "device": "cpu"},
        "algorithms": ["fedavg"],
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    """Resident memory now (Linux /proc), to show what stays held after the peak."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def child(kind: str, dataset: str) -> None:
    t0 = time.perf_counter()
    import skyfield  # noqa: F401 - run_scenario imports it too
    import torch  # noqa: F401

    from sinsim.learn.datasets import load_dataset
    from sinsim.scenario import validate_scenario
    from sinsim.sim.engine import run_scenario

    out: dict = {"kind": kind}
    if kind == "baseline":
        data = load_dataset(dataset, DATA_DIR, download=False)
        out["n_train"] = data.n_train
    else:
        scenario = validate_scenario(raw_scenario(dataset))
        with tempfile.TemporaryDirectory(prefix="sinsim-bench-") as tmp:
            summary = run_scenario(scenario, tmp)
        algo = summary["algorithms"]["fedavg"]
        out.update(n_train=summary["dataset"]["n_train"], rounds_run=algo["rounds_run"],
                   accuracy=algo["final_accuracy"])
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    out["rss_end_mb"] = current_rss_mb()
    print(json.dumps(out))


def measure(kind: str, dataset: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, dataset], cwd=REPO,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"FAIL: the {kind} child exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    dataset = pick_dataset()
    print(f"dataset: {dataset}, clients: {N_CLIENTS}, per round: {CLIENTS_PER_ROUND}, "
          f"rounds: 1, one fresh process per measurement, {REPEATS} of each kind")
    runs, bases = [], []
    for i in range(REPEATS):
        for kind in (("baseline", "run") if i % 2 == 0 else ("run", "baseline")):
            m = measure(kind, dataset)
            (runs if kind == "run" else bases).append(m)
            extra = (f", rounds_run {m['rounds_run']}, accuracy {m['accuracy']:.4f}"
                     if kind == "run" else "")
            print(f"  {kind:8s}: peak {m['peak_rss_mb']:.1f} MB, resident at the end "
                  f"{m['rss_end_mb']:.1f} MB, {m['wall_s']:.1f} s, "
                  f"n_train {m['n_train']}{extra}")
    peak = statistics.median(m["peak_rss_mb"] for m in runs)
    base = statistics.median(m["peak_rss_mb"] for m in bases)
    held = (statistics.median(m["rss_end_mb"] for m in runs)
            - statistics.median(m["rss_end_mb"] for m in bases))
    print(f"held_at_end_mb: {held:.1f} (resident after the run minus after loading the data)")
    print(f"baseline_rss_mb: {base:.1f} (imports + {dataset} loaded)")
    print(f"added_mb: {peak - base:.1f} (what {N_CLIENTS} clients and one round add; "
          f"ratio {peak / base:.3f}; target peak <= {TARGET_MB} MB)")
    print(f"peak_rss_mb: {peak:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
