"""Batteries in a run: satellites wait for charge to train and transmit; power.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sinsim.errors import ConfigError
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.invariants import check_run_invariants

POWER = {"battery_wh": 5, "solar_w": 20, "idle_w": 5, "compute_w": 15, "tx_w": 20, "rx_w": 5,
         "min_soc": 0.5, "initial_soc": 0.6}


def scenario(tmp_path, power=POWER, **links):
    return validate_scenario({
        "name": "power_test", "seed": 1, "start": "2026-01-01T00:00:00Z", "horizon": "1d",
        "clients": {"walker": {"inclination_deg": 53, "total": 40, "planes": 4, "phasing": 1,
                               "altitude_km": 550}},
        "server": {"ground_stations": [{"id": "gs", "lat_deg": 31.0, "lon_deg": 121.5,
                                        "min_elevation_deg": 10}]},
        "contacts": {"cache_dir": str(tmp_path / "cache")},
        "links": {"model": "fixed", "uplink": {"rate_bps": 1e6}, "downlink": {"rate_bps": 5e6},
                  **links},
        # about 4,100 s of training at 15 W: more than a 5 Wh battery holds above 50%, so only
        # satellites in (nearly) constant sunlight may train
        "training": {"dataset": "synthetic", "rounds": 2, "clients_per_round": 6,
                     "batch_size": 20, "lr": 0.05, "round_deadline": "3h"},
        "algorithms": ["fedavg"],
        "compute": {"flops_per_s": 1e6},
        **({"power": power} if power is not None else {}),
    })


@pytest.fixture(scope="module")
def powered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("power")
    run_scenario(scenario(tmp, routing="relay", isl={"rate_bps": 50e6, "max_range_km": 6000}),
                 tmp / "out")
    return tmp / "out"


def test_power_table_has_a_row_per_satellite_the_round_touched(powered):
    check_run_invariants(powered)
    power = pd.read_csv(powered / "power.csv")
    clients = pd.read_csv(powered / "clients.csv")
    hops = pd.read_csv(powered / "hops.csv")
    for r, rows in power.groupby("round"):
        assert list(rows.node) == sorted(rows.node)  # by node
        on_routes = set(hops[hops["round"] == r][["from", "to"]].to_numpy().ravel()) - {"gs"}
        selected = set(clients[clients["round"] == r].client)
        assert set(rows.node) == selected | on_routes  # the round's clients and its relays
        relays = rows[~rows.node.isin(selected)]
        assert len(relays) and (relays.energy_compute_j == 0).all()
        assert (relays.energy_tx_j + relays.energy_rx_j > 0).all()  # relays pay for forwarding


def test_loads_are_charged_and_gated_by_the_battery(powered):
    power = pd.read_csv(powered / "power.csv").set_index(["round", "node"])
    clients = pd.read_csv(powered / "clients.csv").set_index(["round", "client"])
    rounds = pd.read_csv(powered / "rounds.csv").set_index("round")
    trained = clients.compute_start_s.notna()
    assert trained.any() and (~trained).any()  # some satellites could not train
    for key, c in clients.iterrows():
        p = power.loc[key]
        if np.isfinite(c.compute_start_s):  # trained in full: 15 W for compute_s
            assert p.energy_compute_j == pytest.approx(15 * c.compute_s)
            assert p.min_soc >= 0.5 - 1e-9  # the gate held
        else:  # waited for charge until the round closed
            assert p.energy_compute_j == 0 and c.up_status == "not_sent"
            deadline = rounds.loc[key[0]].sim_start_s + 3 * 3600
            assert 0 < p.waited_for_power_s <= deadline - rounds.loc[key[0]].sim_start_s
        assert p.energy_rx_j > 0  # every selected satellite received the global model
    sent = clients.up_status.isin(["delivered", "dropped"])
    assert (power.loc[sent[sent].index].energy_tx_j > 0).all()


def test_without_power_there_is_no_power_table(tmp_path):
    sc = scenario(tmp_path, power=None)
    sc = validate_scenario({**sc.resolved(), "training": {**sc.resolved()["training"],
                                                           "rounds": 1}})
    run_scenario(sc, tmp_path / "out")
    assert not (tmp_path / "out" / "power.csv").exists()


def test_power_needs_satellites():
    with pytest.raises(ConfigError, match="power needs satellite clients"):
        validate_scenario({"name": "x", "clients": {"count": 20}, "power": {}})
