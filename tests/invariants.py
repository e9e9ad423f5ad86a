"""Invariants every run's tables must satisfy (shared by the end-to-end tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOL_S = 1e-9


def load_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(out / "rounds.csv"), pd.read_csv(out / "transfers.csv"),
            pd.read_csv(out / "clients.csv"))


def check_run_invariants(out: Path) -> None:
    rounds, transfers, clients = load_tables(out)
    assert len(rounds) > 0
    for (alg, r), tr in transfers.groupby(["algorithm", "round"]):
        row = rounds[(rounds.algorithm == alg) & (rounds["round"] == r)].iloc[0]
        # bytes per round are the sums over transfers.csv
        assert row.bytes_up == tr[tr.direction == "up"].bytes.sum()
        assert row.bytes_down == tr[tr.direction == "down"].bytes.sum()
        # every transfer lies inside its round
        assert (tr.start_s >= row.sim_start_s - TOL_S).all()
        assert (tr.end_s <= row.sim_end_s + TOL_S).all()
        assert (tr.end_s >= tr.start_s).all()
    for _alg, rs in rounds.groupby("algorithm"):
        assert (np.diff(rs["round"]) == 1).all()
        assert np.array_equal(rs.bytes_up.cumsum(), rs.bytes_up_cum)
        assert np.array_equal(rs.bytes_down.cumsum(), rs.bytes_down_cum)
        # rounds follow each other in simulated time
        assert (rs.sim_start_s.iloc[1:].to_numpy() >= rs.sim_end_s.iloc[:-1].to_numpy() - TOL_S).all()
        assert np.allclose(rs.round_duration_s, rs.sim_end_s - rs.sim_start_s)
    assert (rounds.selected == rounds.completed + rounds.dropped).all()
    for (alg, r), cl in clients.groupby(["algorithm", "round"]):
        row = rounds[(rounds.algorithm == alg) & (rounds["round"] == r)].iloc[0]
        agg = cl[cl.aggregated.astype(bool)]
        # dropped / late clients are not averaged; completed counts exactly the averaged ones
        assert (agg.up_status == "delivered").all()
        assert (cl[cl.up_status != "delivered"].aggregated.astype(bool) == False).all()  # noqa: E712
        assert len(agg) == row.completed
        assert len(cl) == row.selected
        # nothing is aggregated before it arrived, and it arrived before the round closed
        assert (agg.arrived_s <= row.sim_end_s + TOL_S).all()
        assert (agg.arrived_s >= agg.compute_start_s + agg.compute_s - TOL_S).all()
        tr = transfers[(transfers.algorithm == alg) & (transfers["round"] == r)]
        for _, c in agg.iterrows():
            down = tr[(tr.client == c.client) & (tr.direction == "down")].iloc[0]
            up = tr[(tr.client == c.client) & (tr.direction == "up")].iloc[0]
            assert down.status == "delivered" and up.status == "delivered"
            # a round lasts at least its counted clients' downlink + compute + uplink
            path_s = (down.end_s - down.start_s) + c.compute_s + (up.end_s - up.start_s)
            assert row.round_duration_s >= path_s - 1e-6
            assert up.start_s >= down.end_s + c.compute_s - 1e-6
            assert abs(up.end_s - c.arrived_s) <= TOL_S
