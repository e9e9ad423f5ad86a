"""Soak: ten rounds of the default scenario with everything that can go wrong switched on (node
failures, bursty Gilbert-Elliott losses, a slow uplink whose transfers are cut by the end of a
pass and restarted): every engine
invariant holds on every row of every table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.invariants import check_run_invariants

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_leo_walker_with_failures_bursts_and_restarts_keeps_every_invariant(tmp_path):
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "sinsim", "scenarios/leo_walker.yaml", "--out", str(tmp_path),
         "--quiet", "--set", "training.rounds=10",
         "--set", "links.failures={rate_per_day: 2, duration: 2h}",
         "--set", "links.loss={kind: gilbert_elliott, p_good_to_bad: 0.005, "
                  "p_bad_to_good: 0.05, loss_bad: 0.8, loss_good: 0.01, step: 1s}",
         "--set", "links.on_loss_of_signal=restart",
         # a 50 kbit/s radio: an fp32 upload takes 4.6 min, so the ends of passes cut many
         "--set", "links.uplink.profile=legacy_xband_shannon",
         "--set", "links.uplink.max_rate_bps=5e4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr

    check_run_invariants(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "complete"
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    transfers = pd.read_csv(tmp_path / "transfers.csv")
    assert set(rounds.algorithm) == {"fedavg", "spacedml"}
    assert (rounds.groupby("algorithm")["round"].max() >= 1).all()
    # the impairments did happen, and the run went on through them
    assert {"dropped", "delivered"} <= set(transfers.status)
    assert (transfers.pauses > 0).any()  # transfers cut by loss of signal and restarted
    restarted = transfers[(transfers.pauses > 0) & (transfers.status != "timeout")]
    # with restart, a transfer cut before it finished puts more than its payload on the air
    assert (restarted.bytes_sent > restarted.bytes).all()
