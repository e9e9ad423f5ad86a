"""The asynchronous and hierarchical servers with ``training.workers`` > 1: the same tables as in
one process (every table; ``host_wall_s`` aside), with each client's training queued on its own
model as soon as that model is known."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sinsim.learn.parallel import TrainingPool
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.benches import load_bench
from tests.test_hierfl import raw

pytestmark = pytest.mark.slow  # engine runs with a helper process: CI's slow suite

_tables = load_bench("async_workers").tables  # every table as text, host_wall_s dropped


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small``: these runs check tables, not learning."""


def _runs(scenario: dict, tmp_path: Path, monkeypatch) -> tuple[dict, dict, list]:
    """The tables with 1 and 2 processes; the jobs queued with 2 (the strategy's name and the
    random-stream key of each)."""
    jobs: list[tuple] = []
    train = TrainingPool.train

    def spy(self, context, clients, keys, **kw):
        name = type(self._contexts[context].strategy).__name__
        jobs.extend((name, *k) for k in keys)
        return train(self, context, clients, keys, **kw)

    out = {}
    for workers in (1, 2):
        sc = validate_scenario({**scenario, "training": {**scenario["training"],
                                                          "workers": workers}})
        monkeypatch.setattr(TrainingPool, "train", spy)
        summary = run_scenario(sc, tmp_path / f"w{workers}")
        assert summary["training_processes"] == workers
        out[workers] = _tables(tmp_path / f"w{workers}")
    return out[1], out[2], jobs


def _async(handover: str, algorithms: tuple[str, ...]) -> dict:
    # clients go dark often (failures), so a download may wait long after its dispatch while
    # other clients' updates make new versions (tests/test_async_params.py)
    return {
        "name": "async_workers", "seed": 3, "clients": {"count": 8},
        "links": {"uplink": {"rate_bps": 8e6, "propagation_delay_s": 0.01},
                  "downlink": {"rate_bps": 40e6, "propagation_delay_s": 0.01},
                  "failures": {"rate_per_day": 40, "duration": "40min"},
                  "loss": {"kind": "bernoulli", "p": 0.2}},
        "training": {"dataset": "synthetic_small", "rounds": 6, "clients_per_round": 1,
                     "batch_size": 50, "lr": 0.05, "round_deadline": "3h"},
        "compute": {"flops_per_s": 1e9},
        "algorithms": [{name: {"concurrency": 4, "handover": handover,
                               **({"buffer_size": 2} if name == "fedbuff" else {})}}
                       for name in algorithms]}


@pytest.mark.parametrize("handover, algorithms", [("newest", ("fedasync", "fedbuff")),
                                                  ("dispatch", ("fedasync",))])
def test_async_servers_with_two_processes_give_the_same_tables(handover, algorithms, tmp_path,
                                                               monkeypatch):
    # Execute
    one, two, jobs = _runs(_async(handover, algorithms), tmp_path, monkeypatch)

    # Assert: every table the same; one job per delivered download (none queued twice, none
    # for a download that failed), each on its dispatch's keyed stream
    assert one == two
    transfers = pd.read_csv(tmp_path / "w2" / "transfers.csv")
    rounds = pd.read_csv(tmp_path / "w2" / "rounds.csv")
    down = transfers[transfers.direction == "down"]
    assert (down.status != "delivered").any(), "a lost download should be in the scenario"
    assert (rounds.staleness_max > 0).any(), "stale updates should be in the scenario"
    delivered = (down.status == "delivered").sum()
    # dispatches still under way at the last version are not in the tables but had their job
    assert delivered <= len(jobs) <= delivered + len(algorithms) * 4
    assert len(set(jobs)) == len(jobs)


@pytest.mark.parametrize("plane_rounds", [1, 2])
def test_hierfl_with_two_processes_gives_the_same_tables(plane_rounds, tmp_path, monkeypatch):
    # Prepare: hierfl's test constellation (4 planes of 10, 10 % loss), slow computers so that
    # some updates are late (tests/test_hierfl_both_ways.py)
    scenario = {**raw(training__round_deadline="3h", training__rounds=2,
                      compute={"flops_per_s": 1.5e5},
                      algorithms=[{"hierfl": {"plane_rounds": plane_rounds}}]),
                "contacts": {"cache_dir": str(tmp_path / "c")}}

    # Execute
    one, two, jobs = _runs(scenario, tmp_path, monkeypatch)

    # Assert
    assert one == two
    clients = pd.read_csv(tmp_path / "w2" / "clients.csv")
    assert len([k for k in jobs if len(k) == 5]) == len(clients)  # the selected, each round
    if plane_rounds == 2:
        assert any(len(k) == 6 for k in jobs), "a member should train a plane model"
