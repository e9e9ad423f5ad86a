"""Budget links in the network the engine walks: each direction's radio is the profile for the
kinds of node at its ends, sampled along every pass at the slice's midpoint range and elevation
(an oracle: the contact plan's geometry through ``link_budget``)."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.scenario import load_scenario
from sinsim.sim.topology import build_topology
from sinsim.sim.wiring import orbital_network
from sinsim.space.links import rate_bps
from sinsim.space.radios import PROFILES, radio_profile


def _network(path, tmp_path, *overrides):
    sc = load_scenario(path, [f"contacts.cache_dir={tmp_path}", *overrides])
    topo = build_topology(sc)
    return sc, topo, orbital_network(sc, topo)


def _slices(channel, step_s):
    """(start, midpoint) of every rate slice inside the channel's windows."""
    starts, mids = [], []
    for begin, end in channel.windows:
        t = np.arange(begin, end, step_s)
        starts.append(t)
        mids.append((t + np.minimum(t + step_s, end)) / 2)
    return np.concatenate(starts), np.concatenate(mids)


def _check_direction(sc, topo, links, radio, n_links=6):
    """The first ``n_links`` links' rates are ``radio``'s at each slice's midpoint."""
    checked = 0
    for link in links[:n_links]:
        client = link.src if link.key[-1] == 0 else link.dst  # key (client, UP=0 | DOWN=1)
        if not len(link.channel.windows):
            continue
        starts, mids = _slices(link.channel, sc.contacts.rate_step)
        range_m, elevation_deg = topo.plan.geometry(client, mids)
        want = rate_bps(range_m, radio, elevation_deg)
        got = np.array([link.channel.rate.rate_at(t) for t in starts])
        np.testing.assert_allclose(got, want, rtol=1e-12)
        checked += len(starts)
        # zero after each window (unless another one starts there)
        end = link.channel.windows[0, 1]
        if np.isfinite(end) and end not in link.channel.windows[:, 0]:
            assert link.channel.rate.rate_at(end) == 0.0
    assert checked > 0


def test_leo_walker_directions_use_the_satellite_and_station_radios(tmp_path):
    sc, topo, net = _network("scenarios/leo_walker.yaml", tmp_path, "horizon=12h")
    ups = [lk for lk in net.links if lk.dst == net.server_id]
    downs = [lk for lk in net.links if lk.src == net.server_id]
    assert len(ups) == len(downs) == 100
    _check_direction(sc, topo, ups, PROFILES["leo_xband_dvbs2"])
    _check_direction(sc, topo, downs, PROFILES["leo_sband_command"])
    # inside the 10 degree mask the X-band radio runs its best MODCOD and the command link its
    # one rate: the values a pass takes
    up_rates = {r for lk in ups for r in lk.channel.rate.rates_bps}
    assert up_rates <= {0.0, 10e6 / 1.2 * 3.567342}
    assert {r for lk in downs for r in lk.channel.rate.rates_bps} == {0.0, 250e3}


def test_overrides_and_rain_reach_the_channels(tmp_path):
    sc, topo, net = _network("scenarios/leo_walker.yaml", tmp_path, "horizon=12h",
                             "links.uplink.rain_rate_mm_per_h=50", "links.uplink.margin_db=4",
                             "links.downlink.profile=legacy_sband_shannon")
    ups = [lk for lk in net.links if lk.dst == net.server_id]
    downs = [lk for lk in net.links if lk.src == net.server_id]
    rainy = radio_profile("leo_xband_dvbs2", rain_rate_mm_per_h=50, margin_db=4)
    _check_direction(sc, topo, ups, rainy)
    _check_direction(sc, topo, downs, PROFILES["legacy_sband_shannon"])
    # heavy rain costs the low passes their best MODCOD: the rate now varies along a pass
    assert len({r for lk in ups for r in lk.channel.rate.rates_bps}) > 2


def test_a_satellite_server_gets_the_crosslink_radio_without_atmosphere(tmp_path):
    sc, topo, net = _network("scenarios/sat_server.yaml", tmp_path, "horizon=6h",
                             "links.model=budget")
    ups = [lk for lk in net.links if lk.dst == net.server_id]
    downs = [lk for lk in net.links if lk.src == net.server_id]
    _check_direction(sc, topo, ups, PROFILES["isl_ka_rf"])
    _check_direction(sc, topo, downs, PROFILES["isl_ka_rf"])
    _, elevation = topo.plan.geometry(ups[0].src, np.array([0.0, 600.0]))
    assert np.isnan(elevation).all()


def test_uav_clients_get_the_c_band_radios(tmp_path):
    sc, topo, net = _network("scenarios/uav_swarm.yaml", tmp_path, "horizon=2h",
                             "links.model=budget")
    ups = [lk for lk in net.links if lk.dst == net.server_id]
    downs = [lk for lk in net.links if lk.src == net.server_id]
    _check_direction(sc, topo, ups, PROFILES["uav_cband_dvbs2"])
    _check_direction(sc, topo, downs, PROFILES["ground_cband_uav"])


@pytest.mark.parametrize("key", ["links.uplink.profile=nope", "links.downlink.roll_off=0"])
def test_bad_radio_keys_exit_as_config_errors(tmp_path, key):
    from sinsim.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load_scenario("scenarios/leo_walker.yaml", [key])
    assert key.split("=")[0] in str(e.value)
