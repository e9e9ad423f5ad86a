"""Sweep throughput: the same sweep with 1 and with 2 local workers, in one process.

Runs ``SWEEP`` (default ``sweeps/paper_table1_npm.yaml``, 15 runs: Table I on the npm digits)
into two fresh temporary directories, first with one worker, then with two, and checks the two
combined tables are identical (``host_wall_s`` aside). ``--set KEY=VALUE`` adds fixed overrides
to the sweep's ``set`` (e.g. ``--set training.rounds=2`` for a quick look); without them the
whole Table I grid runs twice (about 25 minutes on 2 cores). The last line is
``sweep_speedup_2_workers: <t1 / t2>`` (target >= 1.6).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sinsim.sweep import plan_sweep, run_sweep  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", nargs="?", default=str(REPO / "sweeps" / "paper_table1_npm.yaml"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    src = Path(args.sweep).resolve()
    raw = yaml.safe_load(src.read_text())
    raw["scenario"] = str((src.parent / raw["scenario"]).resolve())
    for item in args.overrides:
        key, _, value = item.partition("=")
        raw.setdefault("set", {})[key] = yaml.safe_load(value)
    walls, tables = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        sweep_file = Path(tmp) / src.name
        sweep_file.write_text(yaml.safe_dump(raw, sort_keys=False))
        for workers in (1, 2):
            plan = plan_sweep(sweep_file, executor="local", workers=workers)
            result = run_sweep(plan, Path(tmp) / f"w{workers}", progress=False)
            if result.failed:
                raise SystemExit(f"runs failed: {result.failed}")
            walls[workers] = result.wall_s
            tables[workers] = (pd.read_csv(Path(tmp) / f"w{workers}" / "runs.csv")
                               .drop(columns="host_wall_s"))
            print(f"{workers} worker(s): {len(plan.runs)} runs, {result.wall_s:.1f} s wall")
    same = tables[1].equals(tables[2])
    print(f"tables identical with 1 and 2 workers: {same}")
    if not same:
        raise SystemExit("the combined tables differ between 1 and 2 workers")
    print(f"sweep_speedup_2_workers: {walls[1] / walls[2]:.2f}")


if __name__ == "__main__":
    main()
