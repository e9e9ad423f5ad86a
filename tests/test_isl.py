"""Inter-satellite links: +Grid pairs, their windows, and a relayed run end to end."""

from __future__ import annotations

import collections
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from sinsim.errors import ConfigError
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from sinsim.space.isl import (
    all_pairs,
    isl_windows,
    pair_ranges_m,
    plus_grid_pairs,
    sample_times_s,
)
from sinsim.space.orbits import walker_constellation
from sinsim.space.timebase import Timebase
from tests.invariants import check_run_invariants


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py): these runs check tables, not how much is
    learned."""

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def shell(pattern="delta", total=40, planes=5, inclination_deg=53.0):
    sats = walker_constellation(inclination_deg=inclination_deg, total=total, planes=planes,
                                phasing=1, altitude_m=550e3, epoch_utc=T0, pattern=pattern)
    return sats, Timebase(T0)


def degrees(pairs):
    return collections.Counter([a for a, _ in pairs] + [b for _, b in pairs])


def test_plus_grid_delta_gives_every_satellite_four_links():
    sats, tb = shell()
    pairs = plus_grid_pairs(sats, 5, tb)
    assert len(pairs) == 2 * len(sats) == len(set(pairs))
    assert set(degrees(pairs).values()) == {4}
    per_plane = 8
    for a, b in pairs:
        pa, pb = a // per_plane, b // per_plane
        if pa == pb:  # in-plane: ring neighbours
            assert (b - a) % per_plane in (1, per_plane - 1)
        else:  # adjacent planes, the last one wrapping to the first
            assert (pb - pa) % 5 in (1, 4)


def test_plus_grid_star_leaves_the_seam_open():
    sats, tb = shell("star", inclination_deg=87.0)
    pairs = plus_grid_pairs(sats, 5, tb, pattern="star")
    first, last = range(0, 8), range(32, 40)
    assert not [p for p in pairs if (p[0] in first and p[1] in last)]
    deg = degrees(pairs)
    assert {deg[i] for i in [*first, *last]} == {3} and set(deg.values()) == {3, 4}


def test_cross_plane_offset_minimises_the_link_length():
    """The chosen slot offset between two planes gives shorter links than any other."""
    sats, tb = shell()
    pairs = plus_grid_pairs(sats, 5, tb)
    cross = [(a, b) for a, b in pairs if a // 8 == 0 and b // 8 == 1]
    times = np.linspace(0, 5_700, 16, endpoint=False)
    chosen = pair_ranges_m(sats, cross, tb, times).mean()
    for offset in range(8):
        other = [(s, 8 + (s + offset) % 8) for s in range(8)]
        assert chosen <= pair_ranges_m(sats, other, tb, times).mean() + 1e-6


def test_isl_windows_follow_range_and_line_of_sight():
    sats, tb = shell(total=12, planes=3)
    pairs = all_pairs(len(sats))
    df = isl_windows(sats, pairs, tb, 6_000.0, max_range_m=4_000e3)
    times = np.arange(0.0, 6_000.0, 20.0)
    ranges = pair_ranges_m(sats, pairs, tb, times)
    ids = [s.id for s in sats]
    for k, (i, j) in enumerate(pairs):
        w = df[(df.a == ids[i]) & (df.b == ids[j])][["start_s", "end_s"]].to_numpy()
        inside = np.array([((w[:, 0] <= t) & (t <= w[:, 1])).any() for t in times])
        far = ranges[k] > 4_000e3 + 10e3
        near = ranges[k] < 4_000e3 - 10e3  # at 550 km such pairs also clear 80 km (< 4,700 km)
        assert not (inside & far).any()
        assert inside[near].all()


def _relay_scenario(tmp_path, routing="relay"):
    return validate_scenario({
        "name": "isl_test", "seed": 1, "start": "2026-01-01T00:00:00Z", "horizon": "1d",
        "clients": {"walker": {"inclination_deg": 53, "total": 40, "planes": 4, "phasing": 1,
                               "altitude_km": 550}},
        "server": {"ground_stations": [{"id": "gs", "lat_deg": 31.0, "lon_deg": 121.5,
                                        "min_elevation_deg": 10}]},
        "contacts": {"cache_dir": str(tmp_path / "cache")},
        "links": {"model": "fixed", "uplink": {"rate_bps": 10e6}, "downlink": {"rate_bps": 50e6},
                  "loss": {"kind": "bernoulli", "p": 0.2}, "routing": routing,
                  "isl": {"topology": "plus_grid", "rate_bps": 50e6, "max_range_km": 6000}},
        "training": {"dataset": "synthetic_small", "rounds": 2, "clients_per_round": 6,
                     "batch_size": 20, "lr": 0.05, "round_deadline": "3h"},
        "algorithms": ["fedavg"],
        "compute": {"flops_per_s": 1e9},
    })


@pytest.fixture(scope="module")
def relayed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isl")
    out = {}
    for routing in ("relay", "direct"):
        out[routing] = tmp / routing
        run_scenario(_relay_scenario(tmp, routing), out[routing])
    return out


def test_relayed_run_keeps_the_invariants_and_uses_isls(relayed):
    out = relayed["relay"]
    check_run_invariants(out)
    links = pd.read_csv(out / "links.csv")
    assert set(links.kind) == {"ground", "isl"}
    isl = links[links.kind == "isl"]
    assert len(isl[["a", "b"]].drop_duplicates()) == 80
    # 10 a plane (36 degrees apart): in-plane links clear 80 km and are up all day; links to
    # planes 90 degrees of node away exceed 6,000 km near the equator and come and go
    plane = {f"sat{i:04d}": i // 10 for i in range(40)}
    in_plane = isl[isl.a.map(plane) == isl.b.map(plane)]
    assert len(in_plane) == 40 and (in_plane.duration_s == 86_400).all()
    hops = pd.read_csv(out / "hops.csv")
    transfers = pd.read_csv(out / "transfers.csv")
    assert transfers.hops.max() > 1  # some transfers were relayed
    isl_hops = hops[(hops["from"] != "server") & (hops.to != "server")]
    assert len(isl_hops) > 0
    rounds = pd.read_csv(out / "rounds.csv")
    assert (rounds.bytes_up_hops >= rounds.bytes_up).all()
    assert (rounds.bytes_up_hops > rounds.bytes_up).any()


def test_relaying_shortens_rounds_against_direct(relayed):
    relay = pd.read_csv(relayed["relay"] / "rounds.csv")
    direct = pd.read_csv(relayed["direct"] / "rounds.csv")
    check_run_invariants(relayed["direct"])
    assert (pd.read_csv(relayed["direct"] / "transfers.csv").hops <= 1).all()
    assert relay.round_duration_s.sum() < direct.round_duration_s.sum()
    assert relay.completed.sum() >= direct.completed.sum()


def test_relayed_runs_are_deterministic(relayed, tmp_path):
    run_scenario(_relay_scenario(tmp_path), tmp_path / "again")
    for table in ("transfers.csv", "hops.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again" / table),
                                      pd.read_csv(relayed["relay"] / table))


@pytest.mark.parametrize(("clients", "isl", "message"), [
    ({"count": 20}, {"topology": "range"}, "links.isl needs satellite clients"),
    ({"uavs": [{"id": "u", "altitude_m": 1e3, "speed_mps": 30,
                "loiter": {"lat_deg": 0, "lon_deg": 0, "radius_m": 1e3}}]},
     {"topology": "plus_grid"}, "plus_grid needs a Walker shell"),
])
def test_isl_scenario_errors(clients, isl, message):
    raw = {"name": "x", "clients": clients, "links": {"isl": isl},
           "training": {"clients_per_round": 1}}
    if "count" not in clients:
        raw["server"] = {"ground_stations": [{"id": "g", "lat_deg": 0, "lon_deg": 0}]}
    with pytest.raises(ConfigError, match=message):
        validate_scenario(raw)


def test_isl_rate_must_be_positive():
    with pytest.raises(ConfigError) as e:
        validate_scenario({"name": "x", "clients": {"count": 20},
                           "links": {"isl": {"rate_bps": 0}}})
    assert e.value.key == "links.isl.rate_bps" or "links.isl.rate_bps" in str(e.value)


@pytest.mark.parametrize("profile", ["isl_optical", "isl_ka_rf"])
def test_isl_profile_rate_follows_the_range(tmp_path, profile):
    """With links.isl.profile the crosslink rate is that radio's budget at the mean range of
    each 60 s interval (zero where the radio cannot close), not the fixed rate_bps."""
    from sinsim.sim.wiring import ISL_RANGE_STEP_S, build_network
    from sinsim.space.links import rate_bps
    from sinsim.space.radios import PROFILES

    raw = _relay_scenario(tmp_path).model_dump(mode="json")
    raw["links"]["isl"] = {"topology": "range", "max_range_km": 6000, "profile": profile}
    raw["horizon"] = "2h"
    sc = validate_scenario(raw)
    net = build_network(sc)
    index = {n: i for i, n in enumerate(net.nodes)}
    isl = [link for link in net.links if net.server_id not in (link.src, link.dst)]
    assert isl
    radio = PROFILES[profile]
    t = sample_times_s(sc.horizon, ISL_RANGE_STEP_S)
    zero_seen = full_seen = False
    for link in isl[:: max(1, len(isl) // 12)]:
        sats = [sc_node for sc_node in _nodes(sc) if sc_node.id in (link.src, link.dst)]
        assert len(sats) == 2 and index[link.src] != index[link.dst]
        (rng,) = pair_ranges_m(sats, [(0, 1)], Timebase(sc.start), t)
        mid = np.append((rng[:-1] + rng[1:]) / 2, rng[-1])
        expected = rate_bps(mid, radio)
        got = np.array([link.channel.rate.rate_at(x) for x in t])
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        zero_seen |= bool((got == 0).any())
        full_seen |= bool((got > 0).any())
    assert full_seen
    if profile == "isl_optical":  # 1 Gbit/s closes to ~4,650 km: some pairs are farther
        assert zero_seen


def _nodes(sc):
    from sinsim.sim.topology import build_nodes

    return build_nodes(sc)[0]
