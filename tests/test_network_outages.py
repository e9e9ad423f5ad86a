"""Crosslink loss and outages (``links.isl.loss``, ``links.isl.failures``) and the time a
contact's start costs (``links.acquisition``, ``links.isl.acquisition``)."""

from __future__ import annotations

import numpy as np

from sinsim.scenario import validate_scenario
from sinsim.sim.impairments import BernoulliLoss, NoLoss
from sinsim.sim.network import Network
from sinsim.sim.wiring import after_acquisition, build_network


def _scenario(**links):
    return validate_scenario({
        "name": "isl", "seed": 3, "horizon": "3h",
        "clients": {"walker": {"inclination_deg": 53, "total": 12, "planes": 3, "phasing": 1,
                               "altitude_km": 550}},
        "server": {"ground_stations": [{"id": "gs", "lat_deg": 31.0, "lon_deg": 121.5}]},
        "links": {"model": "fixed", "routing": "relay", **links},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2},
    })


def _windows(net: Network):
    ground = {(lk.src, lk.dst): lk.channel.windows for lk in net.links
              if net.server_id in (lk.src, lk.dst)}
    isl = {(lk.src, lk.dst): lk.channel.windows for lk in net.links
           if net.server_id not in (lk.src, lk.dst)}
    return ground, isl


def test_after_acquisition_cuts_each_window_start():
    w = np.array([[0.0, 10.0], [20.0, 22.0], [30.0, 40.0]])
    assert after_acquisition(w, 0.0) is w
    assert after_acquisition(w, 5.0).tolist() == [[5.0, 10.0], [35.0, 40.0]]


def test_acquisition_and_outages_shorten_the_windows_and_zero_reproduces_today():
    isl = {"rate_bps": 1e8, "max_range_km": 5000}
    base = build_network(_scenario(isl=isl))
    assert base.server_id == "gs"  # the station's id names the server node
    ground0, isl0 = _windows(base)
    assert all(isinstance(lk.impairment, NoLoss) for lk in base.links)
    cut = build_network(_scenario(acquisition="30s", isl={**isl, "acquisition": "10s"}))
    ground1, isl1 = _windows(cut)
    for pair, w in ground0.items():
        np.testing.assert_array_equal(ground1[pair], after_acquisition(w, 30.0))
    for pair, w in isl0.items():
        np.testing.assert_array_equal(isl1[pair], after_acquisition(w, 10.0))
    out = build_network(_scenario(isl={**isl, "failures": {"rate_per_day": 24,
                                                           "duration": "20min"},
                                       "loss": {"kind": "bernoulli", "p": 0.2}}))
    ground2, isl2 = _windows(out)
    assert ground2.keys() == ground0.keys()
    for pair in ground0:
        np.testing.assert_array_equal(ground2[pair], ground0[pair])  # ground links untouched
    up0 = sum(float((w[:, 1] - w[:, 0]).sum()) for w in isl0.values())
    up2 = sum(float((w[:, 1] - w[:, 0]).sum()) for w in isl2.values())
    assert up2 < 0.9 * up0  # about 1/3 of the time down at 24 outages a day of 20 min
    for (a, b), w in isl2.items():  # one outage draw per pair: both directions agree
        np.testing.assert_array_equal(w, isl2[(b, a)])
    lossy = [lk.impairment for lk in out.links if out.server_id not in (lk.src, lk.dst)]
    assert lossy and all(isinstance(i, BernoulliLoss) for i in lossy)
