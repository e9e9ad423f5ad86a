"""Orbital runs end to end (generated data): invariants on transfers against the contact plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sinsim.scenario import validate_scenario
from sinsim.sim import routing
from sinsim.sim.engine import run_scenario
from tests.invariants import check_run_invariants, load_tables


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py): these runs check tables, not how much is
    learned."""

TOL_S = 1e-6


def orbital_raw(tmp_path, **training):
    return {
        "name": "orbital_test", "seed": 1, "start": "2026-03-01T00:00:00Z", "horizon": "12h",
        "clients": {"walker": {"inclination_deg": 53, "total": 12, "planes": 3, "phasing": 1,
                               "altitude_km": 550}},
        "server": {"ground_stations": [
            {"id": "madrid", "lat_deg": 40.43, "lon_deg": -4.25, "min_elevation_deg": 10},
            {"id": "canberra", "lat_deg": -35.4, "lon_deg": 148.98, "min_elevation_deg": 10}]},
        "contacts": {"step": "30s", "cache_dir": str(tmp_path / "cache")},
        # slow budget links (1 MHz X-band up to 8PSK 3/4, ~1.9 Mbit/s; a 30 kbit/s S-band
        # command radio) so that transfers span passes
        "links": {"model": "budget", "loss": {"kind": "bernoulli", "p": 0.1},
                  "uplink": {"bandwidth_hz": 1e6, "max_modcod": "8PSK 3/4"},
                  "downlink": {"data_rate_bps": 3e4}},
        "training": {"dataset": "synthetic_small", "rounds": 3, "clients_per_round": 4,
                     "batch_size": 50, "round_deadline": "4h", **training},
        "compute": {"flops_per_s": 1e9},
    }


def run_capturing(raw, out):
    """Run and keep every (channel, outcome, deadline) of the hops the engine's transfers
    took (the downlink dry run of a pool is not counted)."""
    captured = []
    original = routing.transfer

    def spy(env, channel, n_bytes, deadline_s, **kw):
        outcome = yield from original(env, channel, n_bytes, deadline_s, **kw)
        captured.append((channel, outcome, deadline_s))
        return outcome

    routing.transfer = spy
    try:
        summary = run_scenario(validate_scenario(raw), out)
    finally:
        routing.transfer = original
    return summary, captured


@pytest.fixture(scope="module")
def orbital_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("orbital")
    summary, captured = run_capturing(orbital_raw(tmp), tmp / "out")
    return tmp / "out", summary, captured


def test_orbital_run_tables_satisfy_invariants(orbital_run):
    out, summary, captured = orbital_run
    check_run_invariants(out)
    assert summary["status"] == "complete"
    assert summary["contacts"]["windows"] > 0
    assert len(captured) == len(pd.read_csv(out / "transfers.csv"))


def test_contact_windows_of_a_pair_never_overlap(orbital_run):
    out, _, _ = orbital_run
    contacts = pd.read_csv(out / "contacts.csv")
    assert list(contacts.columns) == ["client", "server", "start_s", "end_s", "start_utc",
                                      "end_utc", "duration_s", "max_elevation_deg"]
    assert (contacts.start_s < contacts.end_s).all()
    for _, w in contacts.groupby(["client", "server"]):
        w = w.sort_values("start_s")
        assert (w.start_s.to_numpy()[1:] >= w.end_s.to_numpy()[:-1]).all()
    assert contacts.max_elevation_deg.between(10 - 0.01, 90).all()


def test_no_byte_moves_outside_a_window(orbital_run):
    _, _, captured = orbital_run
    n_segments = 0
    for channel, outcome, _ in captured:
        for a, b in outcome.segments:
            inside = (channel.windows[:, 0] <= a + TOL_S) & (b <= channel.windows[:, 1] + TOL_S)
            assert inside.any(), f"segment {(a, b)} outside every window"
            n_segments += 1
    assert n_segments > 0


def test_bytes_across_pauses_add_up_to_the_payload(orbital_run):
    _, _, captured = orbital_run
    paused = 0
    for channel, outcome, _ in captured:
        if outcome.status not in ("delivered", "dropped"):
            continue
        bits = sum(channel.rate.bits(a, b) for a, b in outcome.segments)
        assert bits == pytest.approx(8 * outcome.n_bytes, rel=1e-9)
        assert outcome.pauses == len(outcome.segments) - 1  # resume: one segment per window
        paused += outcome.pauses > 0
    assert paused > 0, "the slow downlink should make some transfers span passes"


def test_nothing_arrives_before_sent_plus_propagation_delay(orbital_run):
    _, _, captured = orbital_run
    for channel, outcome, deadline in captured:
        assert outcome.end_s <= deadline + TOL_S
        if outcome.status in ("delivered", "dropped"):
            first, last = outcome.segments[0][0], outcome.segments[-1][1]
            delay = channel.delay_s(first)
            assert 0.0018 < delay < 0.011  # 550 km overhead .. ~3,000 km at a 10 deg mask
            assert outcome.end_s == pytest.approx(last + delay, abs=TOL_S)


def test_budget_rate_follows_the_pass(orbital_run):
    _, _, captured = orbital_run
    channel = captured[0][0]
    start, end = max(channel.windows, key=lambda w: w[1] - w[0])
    rates = [channel.rate.rate_at(t) for t in np.linspace(start, end, 50, endpoint=False)]
    assert min(rates) > 0
    assert channel.rate.rate_at(end + 1.0) == 0.0 or end >= channel.windows[-1, 1]


def test_nodes_files_are_written(orbital_run):
    out, _, _ = orbital_run
    nodes = pd.read_csv(out / "nodes.csv")
    assert set(nodes.kind) == {"satellite", "ground_station"}
    assert nodes[nodes.kind == "ground_station"].min_elevation_deg.tolist() == [10, 10]
    tle = (out / "nodes.tle").read_text().splitlines()
    assert len(tle) == 3 * 12
    assert tle[0] == "sat0000" and tle[1].startswith("1 ") and tle[2].startswith("2 ")


def test_restart_policy_sends_each_payload_within_one_window(tmp_path):
    raw = orbital_raw(tmp_path, rounds=2)
    raw["links"]["on_loss_of_signal"] = "restart"
    _, captured = run_capturing(raw, tmp_path / "out")
    for channel, outcome, _ in captured:
        if outcome.status == "delivered":
            a, b = outcome.segments[-1]
            assert channel.rate.bits(a, b) == pytest.approx(8 * outcome.n_bytes, rel=1e-9)
            assert outcome.bits_sent >= 8 * outcome.n_bytes
    check_run_invariants(tmp_path / "out")


def test_visible_selection_picks_clients_in_view(tmp_path):
    raw = orbital_raw(tmp_path, selection={"kind": "visible", "lookahead": "5min"},
                      round_deadline="1h")
    run_scenario(validate_scenario(raw), tmp_path / "out")
    rounds, transfers, _ = load_tables(tmp_path / "out")
    contacts = pd.read_csv(tmp_path / "out" / "contacts.csv")
    for _, row in rounds.iterrows():
        down = transfers[(transfers["round"] == row["round"]) & (transfers.direction == "down")]
        for client in down.client:
            w = contacts[contacts.client == client]
            t0 = row.sim_start_s
            assert ((w.end_s > t0) & (w.start_s <= t0 + 300 + TOL_S)).any()


def test_sat_and_uav_servers_run(tmp_path):
    raw = orbital_raw(tmp_path, rounds=1, selection={"kind": "visible", "lookahead": "30min"})
    raw["server"] = {"satellite": {"orbit": {"altitude_km": 1200, "inclination_deg": 87.9}}}
    raw["links"] = {"model": "fixed", "uplink": {"rate_bps": 1e8}, "downlink": {"rate_bps": 1e8}}
    raw["contacts"]["max_range_km"] = 5000
    run_scenario(validate_scenario(raw), tmp_path / "sat")
    check_run_invariants(tmp_path / "sat")
    nodes = pd.read_csv(tmp_path / "sat" / "nodes.csv")
    assert nodes[nodes.role == "server"].id.tolist() == ["server_sat"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["uav_swarm", "sat_server"])
def test_bundled_orbital_scenarios_run(name, tmp_path):
    from sinsim.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / f"{name}.yaml",
                       ["training.rounds=2", f"contacts.cache_dir={tmp_path / 'cache'}"])
    summary = run_scenario(sc, tmp_path / "out")
    assert summary["status"] == "complete"
    check_run_invariants(tmp_path / "out")
    contacts = pd.read_csv(tmp_path / "out" / "contacts.csv")
    assert len(contacts) > 0


def test_orbital_run_is_deterministic_with_the_cached_plan(orbital_run, tmp_path):
    out, _, _ = orbital_run
    cache = out.parent / "cache"  # the fixture's plan, computed fresh, now read from the cache
    raw = orbital_raw(out.parent)
    assert raw["contacts"]["cache_dir"] == str(cache) and any(cache.rglob("*.npz"))
    run_scenario(validate_scenario(raw), tmp_path)
    for name in ("transfers.csv", "clients.csv", "contacts.csv", "nodes.csv", "nodes.tle"):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
    a = pd.read_csv(out / "rounds.csv").drop(columns="host_wall_s")
    b = pd.read_csv(tmp_path / "rounds.csv").drop(columns="host_wall_s")
    pd.testing.assert_frame_equal(a, b)
