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
    check_hop_invariants(out)
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


def check_hop_invariants(out: Path) -> None:
    """hops.csv against transfers.csv (and links.csv, for orbital runs): every hop carries the
    whole payload, starts when the previous one delivered it (store-and-forward), the route is
    the hops' nodes, and a delivered hop's last bit left inside a window of its pair."""
    transfers = pd.read_csv(out / "transfers.csv", keep_default_na=False, na_values=[""])
    hops = pd.read_csv(out / "hops.csv")
    rounds = pd.read_csv(out / "rounds.csv")
    keys = ["algorithm", "round", "client", "direction"]
    assert len(hops) == transfers.hops.sum()
    assert (hops.end_s >= hops.start_s - TOL_S).all()
    by_transfer = dict(tuple(hops.groupby(keys, sort=False)))
    for t in transfers.itertuples(index=False):
        h = by_transfer.get((t.algorithm, t.round, t.client, t.direction))
        if t.hops == 0:
            assert h is None and t.status == "timeout" and not isinstance(t.route, str)
            continue
        h = h.sort_values("hop")
        assert list(h.hop) == list(range(1, t.hops + 1))
        assert (h.bytes == t.bytes).all() and t.bytes_hops == t.bytes * t.hops
        assert t.route == ">".join([h["from"].iloc[0], *h["to"]])
        assert h.start_s.iloc[0] >= t.start_s - TOL_S  # later when it queued for the link
        assert abs(h.end_s.iloc[-1] - t.end_s) <= TOL_S and h.status.iloc[-1] == t.status
        # store-and-forward: a hop starts where and after the previous one delivered
        assert (h.start_s.to_numpy()[1:] >= h.end_s.to_numpy()[:-1] - TOL_S).all()
        delivered = h.status.to_numpy()[:-1] == "delivered"
        same_node = h["from"].to_numpy()[1:] == h.to.to_numpy()[:-1]
        assert (same_node | ~delivered).all()  # after a lost hop it may go another way
        assert (t.end_s >= t.start_s) and (t.status != "delivered" or t.end_s > t.start_s
                                          or t.bytes == 0)
    for d in ("up", "down"):
        tr = transfers[transfers.direction == d].groupby(["algorithm", "round"]).bytes_hops.sum()
        got = rounds.set_index(["algorithm", "round"])[f"bytes_{d}_hops"]
        assert (got.reindex(tr.index) == tr).all()
    links = out / "links.csv"
    if links.exists():
        w = pd.read_csv(links)
        servers = set(pd.read_csv(out / "nodes.csv").query("role == 'server'").id)
        windows = {}
        for row in w.itertuples(index=False):
            b = "server" if row.b in servers else row.b
            for pair in ((row.a, b), (b, row.a)):
                windows.setdefault(pair, []).append((row.start_s, row.end_s))
        for hop in hops[hops.status == "delivered"].itertuples(index=False):
            ws = windows[(hop[5], hop.to)]  # hop[5]: the "from" column
            # the last bit left inside a window (it arrives one propagation delay later)
            assert any(a - TOL_S <= hop.end_s and hop.end_s - 0.05 <= b for a, b in ws), hop
