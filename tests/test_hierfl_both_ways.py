"""hierfl both ways: one global model a plane goes down and round the ring, the sink leaves
when what can still arrive has arrived (from the contact plan), late updates are kept for the
plane's next round, and HierFAVG's plane rounds (κ₁)."""

from __future__ import annotations

import pandas as pd
import pytest

from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from sinsim.sim.hier_plan import leave_by, plane_rings
from sinsim.sim.topology import build_nodes
from sinsim.space.planes import orbital_planes
from tests.invariants import check_run_invariants
from tests.test_hierfl import raw

pytestmark = pytest.mark.slow  # two small runs (~15 s)

PLANE = {f"sat{i:04d}": i // 10 for i in range(40)}  # raw(): 4 planes of 10


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py): these runs check tables, not learning."""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three rounds with a 3 h deadline and slow computers (an update takes ~1.5 h: late
    members); the prepared run."""
    tmp = tmp_path_factory.mktemp("hier2")
    sc = validate_scenario({**raw(training__round_deadline="3h", training__rounds=3,
                                  compute={"flops_per_s": 1.5e5},
                                  algorithms=["hierfl"]),
                            "contacts": {"cache_dir": str(tmp / "c")}})
    got = {}
    run_scenario(sc, tmp / "out", on_prepared=lambda prep: got.setdefault("prep", prep))
    out = tmp / "out"
    tables = {name: pd.read_csv(out / f"{name}.csv") for name in ("rounds", "transfers",
                                                                   "clients", "hops")}
    return out, tables, sc, got["prep"]


def test_invariants_hold(run):
    check_run_invariants(run[0])


def test_one_copy_of_the_global_model_a_plane_goes_down(run):
    _, t, _, _ = run
    n_again = 0
    for alg in ("hierfl",):
        tr, cl = t["transfers"], t["clients"]
        tr, cl = tr[tr.algorithm == alg], cl[cl.algorithm == alg]
        for r, rt in tr.groupby("round"):
            downs = rt[rt.direction == "down"]
            planes_selected = {PLANE[c] for c in cl[cl["round"] == r].client}
            assert {PLANE[c] for c in downs.client} == planes_selected
            for _, tries in downs.groupby(downs.client.map(PLANE)):
                # one copy a plane; a lost one is sent again to another satellite
                assert (tries.status.iloc[:-1] == "dropped").all()
                assert tries.client.is_unique
                assert (tries.start_s.diff().dropna() >= 0).all()
                n_again += len(tries) - 1
            for d in downs.itertuples():  # over the entry's own ground link
                assert d.route.split(">") in (["gs", d.client], [])
            row = t["rounds"].set_index(["algorithm", "round"]).loc[(alg, r)]
            assert row.bytes_down == downs.bytes.sum() == len(downs) * downs.bytes.iloc[0]
    assert n_again > 0  # this run loses a copy on its way down (round 2)


def test_the_ring_delivers_the_model_to_every_member_from_its_planes_copy(run):
    _, t, _, _ = run
    tr, cl, hops = t["transfers"], t["clients"], t["hops"]
    tr, cl = tr[tr.algorithm == "hierfl"], cl[cl.algorithm == "hierfl"]
    hops = hops[(hops.algorithm == "hierfl") & (hops.direction == "ring")]
    n_ring = 0
    for r, rt in tr.groupby("round"):
        entry = {PLANE[d.client]: d for d in rt[rt.direction == "down"].itertuples()}  # last
        for c in cl[cl["round"] == r].itertuples():
            ring = rt[(rt.direction == "ring") & (rt.client == c.client)]
            if c.client == entry[PLANE[c.client]].client:
                assert ring.empty and c.down_status == entry[PLANE[c.client]].status
                continue
            if entry[PLANE[c.client]].status != "delivered":
                assert ring.empty and c.down_status != "delivered"
                continue
            assert len(ring) == 1 and ring.status.iloc[0] == c.down_status
            if c.down_status == "delivered":
                n_ring += 1
                assert ring.start_s.iloc[0] >= entry[PLANE[c.client]].end_s - 1e-6
                route = ring.route.iloc[0]
                if isinstance(route, str):  # its own hops (else copied where one passed)
                    assert {PLANE[n] for n in route.split(">")} == {PLANE[c.client]}
        # a broadcast tree: every crosslink carries the round's model at most once
        rh = hops[hops["round"] == r]
        assert not rh.duplicated(["from", "to"]).any()
    assert n_ring > 0


def test_the_sink_leaves_in_time_and_late_updates_are_kept_for_the_next_round(run):
    _, t, sc, _ = run
    tr, cl, rounds = t["transfers"], t["clients"], t["rounds"]
    tr, cl = tr[tr.algorithm == "hierfl"], cl[cl.algorithm == "hierfl"]
    deadline_s = sc.training.round_deadline
    n_late = n_carried = 0
    for r, rt in tr.groupby("round"):
        row = rounds[(rounds.algorithm == "hierfl") & (rounds["round"] == r)].iloc[0]
        ups = rt[rt.direction == "up"]
        # the plan lets every upload leave in time: none times out at the deadline
        assert (ups.status != "timeout").all()
        assert (ups.end_s <= row.sim_start_s + deadline_s + 1e-6).all()
        late = set(cl[(cl["round"] == r) & (cl.up_status == "late")].client)
        n_late += len(late)
        nxt = tr[(tr["round"] == r + 1) & (tr.direction == "carry")]
        assert set(nxt.client) <= late  # carried: only the last round's late updates, once
        n_carried += len(nxt)
        for c in late:  # a late update did not reach its sink before the sink left
            up = ups[ups.client.map(PLANE) == PLANE[c]]
            sent = rt[(rt.direction == "plane") & (rt.client == c)]
            if len(up) and len(sent):
                assert sent.status.iloc[0] == "timeout"
    assert n_late > 0 and n_carried > 0


def test_leave_by_is_the_latest_departure_that_makes_the_deadline(run):
    _, _, sc, prep = run
    net = prep.network
    planes = orbital_planes(build_nodes(sc)[0])
    ring = plane_rings(net, planes)[1]
    n_bytes = 10_000_000
    for t_s in (0.0, 5000.0):
        deadline_s = t_s + 3 * 3600
        t = leave_by(ring, "sat0013", net.server_id, t_s, n_bytes, deadline_s)
        assert t is not None and t_s <= t <= deadline_s
        assert ring.earliest("sat0013", net.server_id, t, n_bytes, deadline_s)[1]
        assert not ring.earliest("sat0013", net.server_id, t + 2.0, n_bytes, deadline_s)[1]
    assert leave_by(ring, "sat0013", net.server_id, 0.0, n_bytes, 1.0) is None


@pytest.fixture(scope="module")
def kappa(tmp_path_factory):
    """One round, fast computers, κ₁ = 1 and κ₁ = 2."""
    tmp = tmp_path_factory.mktemp("hier3")
    sc = validate_scenario({**raw(training__rounds=1, algorithms=[
        "hierfl", {"hierfl": {"label": "hierfl-k2", "plane_rounds": 2}}]),
        "contacts": {"cache_dir": str(tmp / "c")}})
    run_scenario(sc, tmp / "out")
    check_run_invariants(tmp / "out")
    return {name: pd.read_csv(tmp / "out" / f"{name}.csv") for name in ("transfers", "clients")}


def test_plane_rounds_train_and_average_kappa1_times(kappa):
    t = kappa
    tr, cl = t["transfers"], t["clients"]
    one = cl[(cl.algorithm == "hierfl") & (cl["round"] == 1)].set_index("client")
    two = cl[(cl.algorithm == "hierfl-k2") & (cl["round"] == 1)].set_index("client")
    tr2 = tr[(tr.algorithm == "hierfl-k2") & (tr["round"] == 1)]
    sinks = set(tr2[tr2.direction == "up"].client)
    twice = 0
    for c in two[two.aggregated.astype(bool)].index:
        assert two.compute_s[c] == pytest.approx(2 * one.compute_s[c])  # trained twice
        if c not in sinks:
            assert (tr2[(tr2.direction == "plane") & (tr2.client == c)].status
                    == "delivered").sum() == 2  # sent to its sink twice
        twice += 1
    assert twice > 0
    # the first plane model went back round the ring from the sink
    back = tr2[(tr2.direction == "ring") & tr2.route.fillna("").str.split(">").str[0]
               .isin(sinks)]
    assert len(back) > 0
