"""End-to-end engine runs on generated data: invariants, determinism, paired networks."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.invariants import check_run_invariants, load_tables


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py): these runs check tables, not how much is
    learned."""


def _scenario(**overrides):
    raw = {
        "name": "engine_test", "seed": 3,
        "clients": {"count": 40},
        "links": {"uplink": {"rate_bps": 8e6, "propagation_delay_s": 0.01},
                  "downlink": {"rate_bps": 40e6, "propagation_delay_s": 0.01},
                  "loss": {"kind": "bernoulli", "p": 0.25}},
        "training": {"dataset": "synthetic_small", "rounds": 3, "clients_per_round": 5,
                     "batch_size": 20, "lr": 0.05, "round_deadline": "10min"},
        "compute": {"flops_per_s": 1e9},
    }
    for key, value in overrides.items():
        section, _, leaf = key.partition("__")
        if leaf:
            raw.setdefault(section, {})[leaf] = value
        else:
            raw[section] = value
    return validate_scenario(raw)


@pytest.fixture(scope="module")
def lossy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lossy")
    summary = run_scenario(_scenario(), out)
    return out, summary


def test_lossy_run_satisfies_invariants(lossy_run):
    out, summary = lossy_run
    check_run_invariants(out)
    rounds, transfers, _ = load_tables(out)
    assert summary["status"] == "complete"
    assert (transfers.status == "dropped").any(), "p=0.25 over 3 rounds should drop something"
    assert rounds.dropped.sum() > 0


def test_summary_records_scenario_dataset_and_versions(lossy_run):
    out, _ = lossy_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resolved_scenario"]["training"]["rounds"] == 3
    assert summary["dataset"]["name"] == "synthetic_small"
    assert summary["dataset"]["n_train"] == 2_400
    assert re.fullmatch(r"[0-9a-f]{64}", summary["dataset"]["sha256"])  # of the arrays read
    assert set(summary["versions"]) >= {"sinsim", "torch", "skyfield"}
    fedavg = summary["algorithms"]["fedavg"]
    rounds = pd.read_csv(out / "rounds.csv")
    assert fedavg["bytes_up_total"] == rounds.bytes_up.sum()
    assert fedavg["rounds_run"] == 3
    assert fedavg["final_accuracy"] == pytest.approx(rounds.test_accuracy.iloc[-1])


def test_same_seed_gives_identical_tables(lossy_run, tmp_path):
    out, _ = lossy_run
    run_scenario(_scenario(), tmp_path)
    a_rounds, a_tr, a_cl = load_tables(out)
    b_rounds, b_tr, b_cl = load_tables(tmp_path)
    pd.testing.assert_frame_equal(a_rounds.drop(columns="host_wall_s"),
                                  b_rounds.drop(columns="host_wall_s"))
    pd.testing.assert_frame_equal(a_tr, b_tr)
    pd.testing.assert_frame_equal(a_cl, b_cl)


def test_other_seed_gives_other_network(lossy_run, tmp_path):
    out, _ = lossy_run
    run_scenario(_scenario(seed=4), tmp_path)
    assert not load_tables(out)[1].equals(load_tables(tmp_path)[1])


def test_fixed_link_durations_match_closed_form(tmp_path):
    sc = _scenario(links__loss={"kind": "none"})
    run_scenario(sc, tmp_path)
    _, transfers, clients = load_tables(tmp_path)
    assert (transfers.status == "delivered").all()
    for direction, link in (("up", sc.links.uplink), ("down", sc.links.downlink)):
        t = transfers[transfers.direction == direction]
        expected = t.bytes * 8 / link.rate_bps + link.propagation_delay_s
        np.testing.assert_allclose(t.end_s - t.start_s, expected, rtol=0, atol=1e-9)
        np.testing.assert_allclose(t.mean_rate_bps, link.rate_bps, rtol=1e-12)
    # compute time is the training FLOPs over the node's FLOP/s: 3 x 4,586,000 FLOPs a sample
    trained = clients.dropna(subset=["compute_s"])
    np.testing.assert_allclose(trained.compute_s, trained.n_samples * 3 * 4_586_000 / 1e9,
                               rtol=1e-12)


def test_all_uplinks_lost_leaves_the_model_unchanged(tmp_path):
    sc = _scenario(links__loss={"kind": "bernoulli", "p": 1.0})
    run_scenario(sc, tmp_path)
    rounds, transfers, clients = load_tables(tmp_path)
    assert (rounds.completed == 0).all()
    assert not clients.aggregated.astype(bool).any()
    # nothing was averaged, so the global model (and its accuracy) never changed
    assert rounds.test_accuracy.nunique() == 1
    assert rounds.test_loss.nunique() == 1


def test_deadline_closes_the_round_with_what_arrived(tmp_path):
    # 1,724,328 B at 1 Mbit/s take 13.8 s per direction: a 20 s deadline leaves uplinks late
    sc = _scenario(links__uplink={"rate_bps": 1e6}, links__downlink={"rate_bps": 2e6},
                   links__loss={"kind": "none"}, training={
                       "dataset": "synthetic_small", "rounds": 2, "clients_per_round": 4,
                       "round_deadline": "20s"})
    run_scenario(sc, tmp_path)
    rounds, transfers, _ = load_tables(tmp_path)
    check_run_invariants(tmp_path)
    up = transfers[transfers.direction == "up"]
    assert (up.status == "timeout").all()
    np.testing.assert_allclose(up.end_s - rounds.set_index("round").loc[up["round"]].sim_start_s.to_numpy(), 20.0)
    assert (rounds.completed == 0).all()
    assert np.allclose(rounds.round_duration_s, 20.0)


def test_partial_averaging_counts_only_survivors(tmp_path, monkeypatch):
    from sinsim.learn.strategies import fedavg

    added = []
    original = fedavg.DecodingMean.add

    def spy(self, payload, n_samples):
        added.append(n_samples)
        original(self, payload, n_samples)

    monkeypatch.setattr(fedavg.DecodingMean, "add", spy)
    run_scenario(_scenario(), tmp_path)
    _, _, clients = load_tables(tmp_path)
    survivors = clients[clients.aggregated.astype(bool)]
    assert len(added) == len(survivors)
    assert sorted(added) == sorted(survivors.n_samples)
    assert len(survivors) < len(clients)


def test_failed_run_keeps_finished_rounds(tmp_path, monkeypatch):
    from sinsim.learn.training import LocalTrainer

    calls = {"n": 0}
    original = LocalTrainer.evaluate

    def failing(self, state):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return original(self, state)

    monkeypatch.setattr(LocalTrainer, "evaluate", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):  # one process: the patch applies
        run_scenario(_scenario(training__workers=1), tmp_path)
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert list(rounds["round"]) == [1]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "disk on fire" in summary["error"]
