"""The asynchronous server's handover: ``newest`` (the model held when the download's first bit
goes on the air) against ``dispatch`` (the model held when the client was picked)."""

from __future__ import annotations

import pandas as pd
import pytest

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
