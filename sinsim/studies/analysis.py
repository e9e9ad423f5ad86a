"""Where the time of a round goes, from the output tables only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def round_time_breakdown(results_dir: str | Path) -> pd.DataFrame:
    """Per algorithm and round, the mean over the clients that were averaged of the time spent
    waiting (for a pass, paused at loss of signal, or in propagation), transmitting and
    computing, plus the round duration. Seconds of simulated time."""
    d = Path(results_dir)
    transfers = pd.read_csv(d / "transfers.csv")
    clients = pd.read_csv(d / "clients.csv")
    rounds = pd.read_csv(d / "rounds.csv")
    transfers["transmit_s"] = transfers.end_s - transfers.start_s - transfers.wait_s
    per_client = (transfers.groupby(["algorithm", "round", "client"])[["wait_s", "transmit_s"]]
                  .sum().reset_index())
    counted = clients[clients.aggregated.astype(bool)][["algorithm", "round", "client",
                                                         "compute_s"]]
    merged = counted.merge(per_client, on=["algorithm", "round", "client"])
    out = (merged.groupby(["algorithm", "round"])[["wait_s", "transmit_s", "compute_s"]].mean()
           .reset_index())
    return rounds[["algorithm", "round", "round_duration_s", "completed"]].merge(
        out, on=["algorithm", "round"], how="left")
