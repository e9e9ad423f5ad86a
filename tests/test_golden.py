"""Golden tables: every scenario in ``scenarios/``, run for 2 rounds in portable mode, gives the
tables stored in ``tests/data/golden/<scenario>/`` (``rounds.csv`` without ``host_wall_s``,
``transfers.csv``, ``clients.csv`` and, for orbital scenarios, ``contacts.csv``). A refactor keeps
them unchanged; a change that is meant to move a number regenerates them, and says so in its commit::

    .venv/bin/python -m tests.test_golden [NAME ...]   # rewrites tests/data/golden/
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
TABLES = ("rounds.csv", "transfers.csv", "clients.csv", "contacts.csv")
# tables newer than some goldens: compared where the golden has them
NEWER_TABLES = ("hops.csv", "links.csv", "power.csv")
WALL_CLOCK = ("host_wall_s",)  # the host's clock: differs between any two runs
# columns newer than some goldens (staleness: empty for synchronous algorithms; hops: one for
# direct routes): compared where the golden has them, and no other column may be new
NEWER = ("staleness_mean", "staleness_max", "bytes_up_hops", "bytes_down_hops", "bytes_plane",
         "hops", "route", "bytes_hops")
# 600 images a device and 11-epoch FedAvg: 3 clients a round keep the seed's set-ups to minutes
# (paper_table1 is also the end-to-end run on the real MNIST, with all five algorithms). On
# Fashion-MNIST, FedAvg and one SpaceDML (the data path and both codecs; the other three rows
# are paper_table1's code on other images): 91 s instead of 390 s, and those two algorithms'
# rows are the same as in the five-algorithm run (the algorithms do not share random streams)
EXTRA = {"paper_table1": ("training.clients_per_round=3",),
         "paper_table1_fmnist": (
             "training.clients_per_round=3",
             "algorithms=[fedavg, {spacedml: {label: spacedml-0.8, pruning_ratio: 0.8}}]")}
# every golden in portable mode (sinsim.learn.portable): training rounds the same on any x86-64
# processor, so the tables hold on another machine to the last digit
PORTABLE = ("training.portable=true",)


def run_two_rounds(name: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.run(
        [sys.executable, "-m", "sinsim", f"scenarios/{name}.yaml", "--out", str(out),
         "--set", "training.rounds=2", "--quiet",
         *(a for item in (*PORTABLE, *EXTRA.get(name, ())) for a in ("--set", item))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=list(WALL_CLOCK), errors="ignore")


def comparable(new: pd.DataFrame, golden: pd.DataFrame) -> pd.DataFrame:
    """``new`` without the newer columns the golden does not have yet (only those)."""
    extra = [c for c in new.columns if c not in golden.columns]
    assert set(extra) <= set(NEWER), f"columns not in the goldens: {extra}"
    return new.drop(columns=extra)


def test_every_scenario_has_golden_tables():
    assert SCENARIOS, "no scenarios found"
    missing = [n for n in SCENARIOS if not (GOLDEN / n / "rounds.csv").exists()]
    assert not missing, f"regenerate golden tables (python -m tests.test_golden): {missing}"


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", SCENARIOS)
def test_two_rounds_give_the_golden_tables(name, tmp_path):
    if name == "paper_table1_fmnist" and not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    proc = run_two_rounds(name, tmp_path)
    assert proc.returncode == 0, proc.stderr
    for table in (*TABLES, *NEWER_TABLES):
        golden = GOLDEN / name / table
        if not golden.exists():
            assert table in NEWER_TABLES or not (tmp_path / table).exists(), \
                f"{table} is new: regenerate the goldens"
            continue
        expected = read_table(golden)
        pd.testing.assert_frame_equal(comparable(read_table(tmp_path / table), expected),
                                      expected, check_exact=True, obj=f"{name}/{table}")


def regenerate(names: list[str]) -> None:
    import shutil
    import tempfile

    for name in names or SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            proc = run_two_rounds(name, Path(tmp))
            if proc.returncode != 0:
                sys.exit(f"{name}: {proc.stderr}")
            dest = GOLDEN / name
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for table in (*TABLES, *NEWER_TABLES):
                if (Path(tmp) / table).exists():
                    shutil.copy(Path(tmp) / table, dest / table)
        print(f"{name}: {dest}")


if __name__ == "__main__":
    regenerate(sys.argv[1:])
