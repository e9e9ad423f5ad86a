"""Asynchronous servers (FedAsync, FedBuff): the server-side math in closed form, their
equivalences with FedAvg on the same draws, and the engine's invariants for their tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from sinsim.learn.codecs import CODECS, ModelSpec
from sinsim.learn.strategies import build_strategy
from sinsim.learn.strategies.asynchronous import (
    ConstantStaleness,
    HingeStaleness,
    PolynomialStaleness,
    staleness_weight,
)
from sinsim.learn.strategies.fedasync import add_scaled, mix
from sinsim.learn.strategies.fedavg import DecodingMean, UpdateMean
from sinsim.learn.strategies.fedbuff import buffered_step
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.invariants import check_run_invariants, load_tables


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py): these runs check tables, not how much is
    learned."""

ROOT = Path(__file__).resolve().parents[1]
NEW = ["staleness_mean", "staleness_max", "host_wall_s", "algorithm"]


def _states(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}
            for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# the pure functions, in closed form


def test_staleness_functions_in_closed_form():
    poly, hinge = PolynomialStaleness(a=0.5), HingeStaleness(a=10, b=4)
    for tau in range(12):
        assert staleness_weight(ConstantStaleness(), tau) == 1.0
        assert staleness_weight(poly, tau) == pytest.approx(1 / (1 + tau) ** 0.5)
        expected = 1.0 if tau <= 4 else 1 / (10 * (tau - 4) + 1)
        assert staleness_weight(hinge, tau) == pytest.approx(expected)
    assert staleness_weight(poly, 0) == 1.0 and staleness_weight(hinge, 0) == 1.0
    with pytest.raises(ValueError, match="staleness"):
        staleness_weight(poly, -1)


def test_mixing_in_closed_form():
    g, x = _states(2)
    out = mix(g, x, 0.25)
    for k in g:
        torch.testing.assert_close(out[k], 0.75 * g[k] + 0.25 * x[k])
        assert torch.equal(mix(g, x, 1.0)[k], x[k])  # alpha 1: the client's model, exactly
    torch.testing.assert_close(add_scaled(g, x, 0.5)["w"], g["w"] + 0.5 * x["w"])


def test_fedasync_mixing_weight_is_mixing_times_staleness():
    spec = ModelSpec.of(_states(1)[0])
    s = build_strategy("fedasync", spec, {"mixing": 0.8,
                                          "staleness": {"kind": "hinge", "a": 2, "b": 1}})
    assert [s.mixing_weight(t) for t in (0, 1, 2, 3)] == pytest.approx(
        [0.8, 0.8, 0.8 / 3, 0.8 / 5])
    g, x = _states(2)
    codec = CODECS["float32"](spec)
    out = s.on_arrival(g, codec.encode(x), 10, 2)
    torch.testing.assert_close(out["b"], (1 - 0.8 / 3) * g["b"] + 0.8 / 3 * x["b"])


def test_buffered_step_in_closed_form():
    g, *us = _states(4)
    n, w = [10, 20, 30], [1.0, 0.5, 0.25]
    out = buffered_step(g, us, n, w, server_lr=0.5)
    for k in g:
        expected = g[k] + 0.5 * sum(ni * wi * u[k] for ni, wi, u in zip(n, w, us)) / sum(n)
        torch.testing.assert_close(out[k], expected)


def test_fedbuff_buffers_then_steps_and_a_fresh_buffer_is_fedavgs_round():
    # Prepare: three clients' trained models from one global model
    g, *xs = _states(4, seed=1)
    spec = ModelSpec.of(g)
    codec = CODECS["float32"](spec)
    fedbuff = build_strategy("fedbuff", spec, {"buffer_size": 3})
    deltas = [{k: x[k] - g[k] for k in g} for x in xs]
    n = [5, 7, 11]

    # Execute: FedBuff's arrivals, all fresh; FedAvg's round on the same updates
    outs = [fedbuff.on_arrival(g, codec.encode(d), ni, 0) for d, ni in zip(deltas, n)]
    fedavg_update = UpdateMean(codec.decode)  # FedAvg with an update codec
    fedavg_weights = DecodingMean(codec.decode)  # FedAvg sending weights
    for d, x, ni in zip(deltas, xs, n):
        fedavg_update.add(codec.encode(d), ni)
        fedavg_weights.add(codec.encode(x), ni)

    # Assert: no new version until the buffer is full, then FedAvg's model
    assert outs[0] is g and outs[1] is g and outs[2] is not g
    assert fedbuff.buffer == []
    want = fedavg_update.result(g)
    for k in g:
        assert torch.equal(outs[2][k], want[k])  # to the bit
        torch.testing.assert_close(outs[2][k], fedavg_weights.result(g)[k])


# ---------------------------------------------------------------------------------------------
# the engine: equivalences with FedAvg on the same draws


def _scenario(algorithms, *, rounds=3, clients=6, cpr=1, loss=None, **training):
    return validate_scenario({
        "name": "async_test", "seed": 5, "clients": {"count": clients},
        "links": {"uplink": {"rate_bps": 8e6, "propagation_delay_s": 0.01},
                  "downlink": {"rate_bps": 40e6, "propagation_delay_s": 0.01},
                  "loss": loss or {"kind": "none"}},
        "training": {"dataset": "synthetic_small", "rounds": rounds, "clients_per_round": cpr,
                     "batch_size": 50, "lr": 0.05, "round_deadline": "10min", "workers": 1,
                     **training},
        "compute": {"flops_per_s": 1e9},
        "algorithms": algorithms})


def _by_algorithm(table: pd.DataFrame, drop=()) -> dict[str, pd.DataFrame]:
    return {a: t.drop(columns=[c for c in (*drop, "algorithm") if c in t])
            .reset_index(drop=True) for a, t in table.groupby("algorithm")}


def test_fedasync_with_one_client_fresh_updates_and_mixing_1_is_fedavg_with_one_client(
        tmp_path):
    # Execute: concurrency 1 (every update fresh) and alpha 1: the new model is the client's
    sc = _scenario(["fedavg", {"fedasync": {"concurrency": 1, "mixing": 1.0,
                                            "staleness": "constant"}}])
    run_scenario(sc, tmp_path)

    # Assert: the same tables, row for row (the staleness columns aside)
    rounds, transfers, clients = load_tables(tmp_path)
    r = _by_algorithm(rounds, NEW)
    pd.testing.assert_frame_equal(r["fedavg"], r["fedasync"], check_exact=True)
    for table in (transfers, clients):
        t = _by_algorithm(table)
        pd.testing.assert_frame_equal(t["fedavg"], t["fedasync"], check_exact=True)
    asyn = rounds[rounds.algorithm == "fedasync"]
    assert (asyn.staleness_max == 0).all() and (asyn.staleness_mean == 0).all()
    assert rounds[rounds.algorithm == "fedavg"].staleness_max.isna().all()
    check_run_invariants(tmp_path)


def test_fedbuff_whose_buffer_fills_in_one_batch_is_fedavg(tmp_path):
    # Execute: 3 clients at once, a buffer of 3; equal shards and links, so the first three
    # dispatches arrive together and fill the buffer before any later one (version 1)
    sc = _scenario(["fedavg", {"fedbuff": {"concurrency": 3, "buffer_size": 3,
                                           "staleness": "constant"}}], rounds=1, cpr=3)
    run_scenario(sc, tmp_path)

    # Assert: FedAvg's round (the model up to float rounding: FedBuff sends updates)
    rounds, transfers, clients = load_tables(tmp_path)
    r = _by_algorithm(rounds, NEW)
    pd.testing.assert_frame_equal(r["fedavg"].drop(columns=["test_accuracy", "test_loss"]),
                                  r["fedbuff"].drop(columns=["test_accuracy", "test_loss"]),
                                  check_exact=True)
    # a near-tie may flip one of synthetic_small's 500 test predictions
    assert r["fedbuff"].test_accuracy[0] == pytest.approx(r["fedavg"].test_accuracy[0],
                                                          abs=1.5 / 500)
    assert r["fedbuff"].test_loss[0] == pytest.approx(r["fedavg"].test_loss[0], rel=1e-5)
    assert r["fedbuff"].completed[0] == 3
    for table in (transfers, clients):
        t = _by_algorithm(table)
        pd.testing.assert_frame_equal(t["fedavg"], t["fedbuff"], check_exact=True)


@pytest.fixture(scope="module")
def lossy_async(tmp_path_factory):
    out = tmp_path_factory.mktemp("lossy_async")
    sc = _scenario([{"fedasync": {"concurrency": 3}},
                    {"fedbuff": {"concurrency": 4, "buffer_size": 3}}],
                   rounds=5, clients=8, loss={"kind": "bernoulli", "p": 0.25})
    return out, run_scenario(sc, out)


@pytest.mark.slow  # an engine run: CI's slow suite
def test_async_runs_satisfy_the_engines_invariants(lossy_async):
    out, summary = lossy_async
    assert summary["status"] == "complete"
    check_run_invariants(out)  # with the asynchronous rows' own (tests/invariants.py)
    rounds, transfers, clients = load_tables(out)
    for alg in ("fedasync", "fedbuff"):
        rs = rounds[rounds.algorithm == alg]
        assert list(rs["round"]) == [1, 2, 3, 4, 5]  # training.rounds counts versions
        assert summary["algorithms"][alg]["rounds_run"] == 5
    assert (transfers.status == "dropped").any()
    # staleness is never negative, and with several clients at once some update was stale
    assert (rounds.staleness_max >= 0).all() and (rounds.staleness_mean >= 0).all()
    assert (rounds.staleness_max > 0).any()
    fedbuff = rounds[rounds.algorithm == "fedbuff"]
    assert (fedbuff.completed == 3).all()  # one version per buffer of 3
    assert (rounds[rounds.algorithm == "fedasync"].completed == 1).all()


def test_no_update_is_applied_before_it_arrived(lossy_async):
    out, _ = lossy_async
    rounds, _, clients = load_tables(out)
    agg = clients[clients.aggregated.astype(bool)].merge(
        rounds[["algorithm", "round", "sim_start_s", "sim_end_s"]], on=["algorithm", "round"])
    assert len(agg) == rounds.completed.sum()
    assert (agg.arrived_s <= agg.sim_end_s + 1e-9).all()  # applied at or after arrival
    assert (agg.arrived_s >= agg.sim_start_s - 1e-9).all()  # ...in the next version made


@pytest.mark.slow  # an engine run: CI's slow suite
def test_same_seed_same_async_tables(lossy_async, tmp_path):
    out, _ = lossy_async
    sc = _scenario([{"fedasync": {"concurrency": 3}},
                    {"fedbuff": {"concurrency": 4, "buffer_size": 3}}],
                   rounds=5, clients=8, loss={"kind": "bernoulli", "p": 0.25})
    run_scenario(sc, tmp_path)
    for a, b in zip(load_tables(out), load_tables(tmp_path)):
        pd.testing.assert_frame_equal(a.drop(columns="host_wall_s", errors="ignore"),
                                      b.drop(columns="host_wall_s", errors="ignore"))


def test_an_async_checkpoint_that_does_not_fit_is_refused(tmp_path):
    from sinsim.sim.checkpoint import AlgorithmState, CheckpointError
    from sinsim.sim.engine import prepare, run_algorithm
    from sinsim.sim.recorder import Recorder

    sc = _scenario(["fedasync"], rounds=1)
    prep = prepare(sc)
    other_model = {"w": torch.zeros(3)}
    for state in (AlgorithmState("fedasync", [], 0.0, prep.init_state, None),  # no log
                  AlgorithmState("fedasync", [], 0.0, other_model, None, log={})):
        with pytest.raises(CheckpointError, match="does not fit"):
            run_algorithm(prep, sc.algorithms[0], Recorder(tmp_path), resume=state)


# ---------------------------------------------------------------------------------------------
# the scenario and the command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.run([sys.executable, "-m", "sinsim", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def test_an_unknown_fedasync_parameter_is_exit_2_naming_it(tmp_path):
    proc = _cli("scenarios/tiny.yaml", "--out", str(tmp_path), "--set",
                "algorithms=[fedavg, {fedasync: {mixng: 0.5}}]")
    assert proc.returncode == 2
    assert "algorithms.1" in proc.stderr and "mixng" in proc.stderr


@pytest.mark.slow
def test_tiny_with_both_async_algorithms_learns(tmp_path):
    proc = _cli("scenarios/tiny.yaml", "--out", str(tmp_path), "--quiet", "--set",
                "algorithms=[fedavg, fedasync, fedbuff]")
    assert proc.returncode == 0, proc.stderr
    rounds = pd.read_csv(tmp_path / "rounds.csv").set_index(["algorithm", "round"])
    for alg in ("fedasync", "fedbuff"):
        assert rounds.loc[(alg, 3), "test_accuracy"] > 0.5  # chance: 0.1
        assert rounds.loc[(alg, 3), "test_loss"] < rounds.loc[(alg, 1), "test_loss"]
    check_run_invariants(tmp_path)
