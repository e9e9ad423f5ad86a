"""Invariants every run's tables must satisfy (shared by the end-to-end tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOL_S = 1e-9


def load_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(out / "rounds.csv"), pd.read_csv(out / "transfers.csv"),
            pd.read_csv(out / "clients.csv"))


def asynchronous_algorithms(rounds: pd.DataFrame) -> set[str]:
    """The algorithms of an asynchronous server: those whose rows have a staleness."""
    if "staleness_max" not in rounds:
        return set()
    return set(rounds.loc[rounds.staleness_max.notna(), "algorithm"])


def check_run_invariants(out: Path) -> None:
    """The synchronous engine's invariants; for an asynchronous server's algorithm (a row per
    server version, whose dispatches may have started in an earlier version) the ones that
    still hold, and its own (``check_async_rows``)."""
    rounds, transfers, clients = load_tables(out)
    assert len(rounds) > 0
    check_hop_invariants(out)
    asyn = asynchronous_algorithms(rounds)
    hier = (set(rounds.loc[rounds.bytes_plane.notna(), "algorithm"])
            if "bytes_plane" in rounds else set())
    for (alg, r), tr in transfers.groupby(["algorithm", "round"]):
        row = rounds[(rounds.algorithm == alg) & (rounds["round"] == r)].iloc[0]
        # bytes per round are the sums over transfers.csv
        assert row.bytes_up == tr[tr.direction == "up"].bytes.sum()
        assert row.bytes_down == tr[tr.direction == "down"].bytes.sum()
        # every transfer lies inside its round (an asynchronous dispatch's downlink may have
        # started in an earlier version: only its end is inside)
        if alg not in asyn:
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
        if alg in hier:
            check_hierarchical_round(row, tr, cl)
            continue
        for _, c in agg.iterrows():
            mine = tr[tr.client == c.client]
            # (an asynchronous round may hold two dispatches of one client: match by time)
            up = mine[(mine.direction == "up") & ((mine.end_s - c.arrived_s).abs() <= TOL_S)]
            up = up.iloc[0]
            downs = mine[(mine.direction == "down") & (mine.end_s <= up.start_s + TOL_S)]
            down = downs.sort_values("end_s").iloc[-1]
            assert down.status == "delivered" and up.status == "delivered"
            assert up.start_s >= down.end_s + c.compute_s - 1e-6
            if alg in asyn:
                # applied in the version made after it arrived, not in an earlier one
                assert c.arrived_s >= row.sim_start_s - TOL_S
                continue
            # a round lasts at least its counted clients' downlink + compute + uplink
            path_s = (down.end_s - down.start_s) + c.compute_s + (up.end_s - up.start_s)
            assert row.round_duration_s >= path_s - 1e-6
    for alg in asyn:
        check_async_rows(rounds[rounds.algorithm == alg])


def check_hierarchical_round(row, tr: pd.DataFrame, cl: pd.DataFrame) -> None:
    """A hierarchical round: updates go to their plane's sink over the ring (``plane``
    transfers, satellite to satellite), the sinks send one model each (``up``); an averaged
    client's update arrived with one of them."""
    ring = tr[tr.direction.isin(["plane", "ring", "carry"])]  # over the planes' crosslinks
    assert row.bytes_plane == ring.bytes.sum()
    assert not ring.route.fillna("").str.contains("server").any()
    plane = tr[tr.direction == "plane"]  # this round's updates to their sinks
    ups = tr[tr.direction == "up"]
    assert len(ups) == ups.client.nunique()  # one upload a sink
    agg = cl[cl.aggregated.astype(bool)]
    delivered = ups[ups.status == "delivered"].end_s.to_numpy()
    for t in agg.arrived_s:
        assert np.isclose(delivered, t, rtol=0, atol=TOL_S).any()
    for _, c in cl[cl.down_status == "delivered"].iterrows():
        sent = plane[plane.client == c.client]
        if len(sent):  # not the sink itself: it sent after training (with plane rounds,
            # compute_s sums its trainings, and an update goes after each)
            assert (sent.start_s >= c.compute_start_s - 1e-6).all()
            if len(sent) == 1 and len(plane.client.unique()) == len(plane):
                assert (sent.start_s >= c.compute_start_s + c.compute_s - 1e-6).all()


def check_async_rows(rs: pd.DataFrame) -> None:
    """An asynchronous server's rows: every version applied at least one update, and the
    staleness of the updates applied in version v is in 0 .. v - 1."""
    assert (rs.completed >= 1).all()
    assert (rs.staleness_max >= 0).all()
    assert (rs.staleness_max <= rs["round"] - 1).all()
    assert (rs.staleness_mean >= 0).all()
    assert (rs.staleness_mean <= rs.staleness_max + 1e-12).all()


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
    at = 0  # hops.csv lists every transfer's hops in transfers.csv's order
    for t in transfers.itertuples(index=False):
        h = hops.iloc[at:at + t.hops]
        at += t.hops
        if t.hops == 0:  # no way there, or a broadcast's copy for another passed through
            assert t.status == "timeout" or (t.status == "delivered"
                                             and t.direction in ("down", "ring"))
            assert not isinstance(t.route, str)
            continue
        assert (h[keys] == [t.algorithm, t.round, t.client, t.direction]).all(axis=None)
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
            b = "server" if row.b in servers and len(servers) > 1 else row.b  # one: its id
            for pair in ((row.a, b), (b, row.a)):
                windows.setdefault(pair, []).append((row.start_s, row.end_s))
        for hop in hops[hops.status == "delivered"].itertuples(index=False):
            ws = windows[(hop[5], hop.to)]  # hop[5]: the "from" column
            # the last bit left inside a window (it arrives one propagation delay later)
            assert any(a - TOL_S <= hop.end_s and hop.end_s - 0.05 <= b for a, b in ws), hop
