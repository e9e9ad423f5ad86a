"""The asynchronous algorithms' parameters from their papers: the server's handover (``newest``,
the model held when the download's first bit goes on the air, against ``dispatch``, the model
held when the client was picked), FedAsync's proximal term ``rho``, FedBuff's server learning
rate and a concurrency above the buffer size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sinsim.learn.codecs import ModelSpec
from sinsim.learn.datasets import load_dataset
from sinsim.learn.models import build_model, training_flops_per_sample
from sinsim.learn.partitions import partition_iid
from sinsim.learn.strategies import build_strategy
from sinsim.learn.training import LocalTrainer, TrainConfig
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.invariants import check_run_invariants, load_tables


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small``: these runs check tables and staleness, not accuracy."""


def _scenario(handover: str):
    # clients go dark often (failures), so a download may wait long after its dispatch while
    # other clients' updates make new versions
    return validate_scenario({
        "name": "handover", "seed": 3, "clients": {"count": 8},
        "links": {"uplink": {"rate_bps": 8e6, "propagation_delay_s": 0.01},
                  "downlink": {"rate_bps": 40e6, "propagation_delay_s": 0.01},
                  "failures": {"rate_per_day": 40, "duration": "40min"}},
        "training": {"dataset": "synthetic_small", "rounds": 8, "clients_per_round": 1,
                     "batch_size": 50, "lr": 0.05, "round_deadline": "3h", "workers": 1},
        "compute": {"flops_per_s": 1e9},
        "algorithms": [{"fedasync": {"concurrency": 4, "handover": handover}}]})


@pytest.mark.slow  # two engine runs: CI's slow suite (a few seconds)
def test_newest_handover_same_transfers_less_staleness(tmp_path):
    # Execute: the same run, the model handed over at dispatch and at the pass
    runs = {}
    for handover in ("dispatch", "newest"):
        run_scenario(_scenario(handover), tmp_path / handover)
        check_run_invariants(tmp_path / handover)
        runs[handover] = load_tables(tmp_path / handover)

    # Assert: same bytes and same times (the handover changes which model, not the transfers)
    (r_old, t_old, c_old), (r_new, t_new, c_new) = runs["dispatch"], runs["newest"]
    pd.testing.assert_frame_equal(t_old, t_new)
    cols = ["round", "client", "down_status", "compute_start_s", "up_status", "arrived_s"]
    pd.testing.assert_frame_equal(c_old[cols], c_new[cols])
    # ... and an update is never staler, and here some download waited past a new version
    assert (r_new.staleness_mean <= r_old.staleness_mean).all()
    assert r_new.staleness_mean.sum() < r_old.staleness_mean.sum()


@pytest.mark.slow
def test_newest_handover_staleness_counts_from_the_first_bit(tmp_path):
    # Execute
    run_scenario(_scenario("newest"), tmp_path)
    rounds, transfers, clients = load_tables(tmp_path)

    # Assert: an applied update's staleness = the versions made after its download's first
    # bit went on the air and before it was applied (one update per FedAsync version)
    down = transfers[transfers.direction == "down"].set_index(["round", "client"])
    made = rounds.sim_end_s.to_numpy()
    for r in rounds.itertuples():
        c = clients[(clients["round"] == r.round) & clients.aggregated.astype(bool)].iloc[0]
        t = down.loc[(r.round, c.client)]
        first_bit_s = t.start_s + t.wait_s  # one hop, no pause: it waits, then sends
        expected = int((made[: r.round - 1] > first_bit_s).sum())
        assert r.staleness_max == expected


def _distance(a, b) -> float:
    return float(sum(((a[k].double() - b[k].double()) ** 2).sum() for k in a)) ** 0.5


def test_fedasync_rho_pulls_the_client_towards_the_model_it_downloaded(small_synthetic):
    # Arrange: LeNet-5 on a synthetic shard, FedAsync without and with the proximal term
    dataset = load_dataset(small_synthetic)
    model = build_model("lenet5", seed=0)
    trainer = LocalTrainer(model, dataset, partition_iid(dataset.n_train, 20,
                                                         np.random.default_rng(0)),
                           TrainConfig(epochs=1, batch_size=10, lr=0.05),
                           training_flops_per_sample(model), torch.device("cpu"))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    spec = ModelSpec.of(start)
    drift = {}
    for rho in (0.0, 0.0, 5.0):
        strategy = build_strategy("fedasync", spec, {"rho": rho})
        update = strategy.client_update(trainer, start, 0, np.random.default_rng(3))
        drift.setdefault(rho, []).append(_distance(strategy.codec.decode(update.payload), start))

    # Assert: rho 0 is FedAvg's client (the same training twice), rho > 0 stays closer
    assert drift[0.0][0] == drift[0.0][1]
    assert drift[5.0][0] < 0.9 * drift[0.0][0]


def test_fedbuff_server_lr_scales_the_step_and_concurrency_may_exceed_the_buffer():
    spec = ModelSpec((("w"),), ((3,),))
    base = {"w": torch.zeros(3)}
    update = {"w": torch.tensor([1.0, -2.0, 4.0])}
    for lr in (1.0, 0.5):
        s = build_strategy("fedbuff", spec, {"buffer_size": 1, "server_lr": lr,
                                             "concurrency": 7})
        assert s.params.concurrency == 7 > s.params.buffer_size
        out = s.on_arrival(base, s.codec.encode(update), 10, 0)
        torch.testing.assert_close(out["w"], lr * update["w"])
