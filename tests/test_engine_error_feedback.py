"""Error feedback through the engine: a client whose upload is never sent keeps its whole
update (residual included), not the residual that assumed delivery."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.learn.strategies import FedAvg
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.invariants import load_tables


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small``: the residuals matter here, not the accuracy."""


@pytest.mark.slow  # an engine run (a few seconds): CI's slow suite
@pytest.mark.parametrize("flops_per_s,sent", [(1e3, False)])  # (1e12, True): test_update_codecs
def test_the_residual_follows_what_was_sent(tmp_path, monkeypatch, flops_per_s, sent):
    # Arrange: record what every client keeps; a slow computer never finishes in the round
    kept: dict[int, list[np.ndarray]] = {}
    original = FedAvg.set_client_state

    def record(self, client, state):
        kept.setdefault(client, []).append(state)
        original(self, client, state)

    monkeypatch.setattr(FedAvg, "set_client_state", record)
    sc = validate_scenario({
        "name": "ef", "seed": 1, "clients": {"count": 4},
        "links": {"uplink": {"rate_bps": 8e6}, "downlink": {"rate_bps": 40e6}},
        "training": {"dataset": "synthetic_small", "rounds": 1, "clients_per_round": 2,
                     "batch_size": 50, "round_deadline": "10min", "workers": 1},
        "compute": {"flops_per_s": flops_per_s},
        "algorithms": [{"fedavg": {"update": {"kind": "topk", "fraction": 0.01}}}]})

    # Execute
    run_scenario(sc, tmp_path)

    # Assert: trained, a client keeps the residual after its top-k; never sent, it then keeps
    # its whole update instead: the residual plus exactly the k values it would have sent
    _, _, clients = load_tables(tmp_path)
    assert set(clients.up_status) == {"delivered" if sent else "not_sent"}
    assert len(kept) == 2
    for states in kept.values():
        assert len(states) == (1 if sent else 2)
        if not sent:
            residual, whole = states
            k = int(np.ceil(0.01 * residual.size))
            assert np.count_nonzero(whole - residual) == k
