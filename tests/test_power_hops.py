"""Power where the energy goes: loads that overlap add up, relays pay for the hops they send
and receive, crosslink terminals draw standby power, and a hop's sender must afford each
segment when it goes on the air (not when the transfer was asked for)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sinsim.sim.channel import fixed_channel
from sinsim.sim.impairments import NoLoss
from sinsim.sim.ledger import Ledger
from sinsim.sim.network import Link, Network
from sinsim.sim.power import Battery, PowerParams
from sinsim.sim.routing import send

SHADOW = np.zeros((0, 2))
P = dict(battery_wh=1.0, solar_w=21.0, idle_w=1.0, compute_w=15.0, tx_w=20.0, rx_w=5.0,
         min_soc=0.5)  # 3,600 J, floor 1,800 J


def battery(sunlit=SHADOW, crosslinks=False, **kw) -> Battery:
    return Battery(PowerParams(**{**P, **kw}), sunlit, horizon_s=100_000.0,
                   crosslinks=crosslinks)


# --------------------------------------------------------------------------- the battery
def test_loads_registered_ahead_add_up_where_they_overlap():
    b = battery(initial_soc=1.0)
    assert b.add_load(10.0, 30.0, 20.0, "tx") == 400.0
    assert b.add_load(20.0, 40.0, 5.0, "rx") == 100.0
    assert b.t_s == 0.0 and b.used_j == {"tx": 400.0, "rx": 100.0}  # nothing advanced yet
    assert b.energy_at(50.0) == 3600.0 - 1.0 * 50 - 400.0 - 100.0
    assert b.advance(25.0) == 3600.0 - 25.0 - 20.0 * 15 - 5.0 * 5
    assert b.advance(50.0) == 3600.0 - 50.0 - 400.0 - 100.0
    with pytest.raises(ValueError, match="time order"):
        b.add_load(10.0, 20.0, 1.0)


def test_earliest_start_counts_the_loads_registered_ahead():
    # shadow, idle 1 W: a 20 W load for 50 s (1,050 J with idle) fits from t=0 on a full
    # battery (3,600 - 1,050 >= 1,800), but not under another 20 W load over [0, 100)
    b = battery(initial_soc=1.0)
    assert b.earliest_start(0.0, 50.0, 20.0) == 0.0
    b.add_load(0.0, 100.0, 20.0)
    assert b.earliest_start(0.0, 50.0, 20.0) == math.inf  # shadow for ever: never
    lit = battery(sunlit=[[200.0, 100_000.0]], initial_soc=1.0)
    lit.add_load(0.0, 100.0, 20.0)
    # by 200 it is down to 3,600 - 200 - 2,000 = 1,400 J; in sunlight it gains 20 W idle and
    # the 20 W load breaks even: it may start once it is back at the floor, at 200 + 400/20
    assert lit.earliest_start(0.0, 50.0, 20.0) == pytest.approx(220.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_earliest_start_with_loads_ahead_agrees_with_can_run(seed):
    """The start found is feasible (``can_run``, which integrates the loads ahead exactly),
    and no start on a 10 s grid before it is (more than 1 s before)."""
    rng = np.random.default_rng(seed)
    edges = np.sort(rng.uniform(0.0, 20_000.0, 8))
    sunlit = edges.reshape(-1, 2)
    b = Battery(PowerParams(battery_wh=float(rng.uniform(2.0, 6.0)), solar_w=30.0,
                            idle_w=float(rng.uniform(0.5, 4.0)), compute_w=15.0, tx_w=20.0,
                            rx_w=5.0, min_soc=float(rng.uniform(0.2, 0.6)),
                            initial_soc=float(rng.uniform(0.3, 1.0))),
                sunlit, horizon_s=25_000.0)
    for _ in range(3):
        a = float(rng.uniform(0.0, 3000.0))
        b.add_load(a, a + float(rng.uniform(10.0, 3000.0)), float(rng.choice([5.0, 20.0])))
    for _ in range(3):
        t_s, d = float(rng.uniform(0.0, 5000.0)), float(rng.uniform(10.0, 2000.0))
        tau = b.earliest_start(t_s, d, 20.0)
        grid = np.arange(math.ceil(t_s), min(tau - 1.0, 25_000.0 - d), 10.0)
        assert not any(b.can_run(g, d, 20.0) for g in grid)
        if math.isfinite(tau):
            assert b.can_run(tau, d, 20.0)


def test_crosslink_terminals_draw_standby_all_the_time():
    sunlit = [[800.0, 4000.0]]
    plain = battery(sunlit, crosslinks=False, isl_standby_w=3.0)
    isl = battery(sunlit, crosslinks=True, isl_standby_w=3.0)
    for t in (500.0, 800.0, 810.0):  # shadow, then sunlight (no clamping): t x standby_w
        assert plain.energy_at(t) - isl.energy_at(t) == pytest.approx(3.0 * t, abs=1e-9)
    assert isl.energy_at(810.0) == 3600.0 - (1.0 + 3.0) * 800.0 + (21.0 - 4.0) * 10.0
    assert battery(isl_standby_w=0.0, crosslinks=True).energy_at(500.0) == 3100.0


# --------------------------------------------------------------------------- hops and relays
def chain(windows: dict[tuple[str, str], list[list[float]]], clients: tuple[str, ...],
          routing: str = "direct", antennas: int = 0) -> Network:
    """Links at 8 kb/s (1,000 bytes a second) in their windows, no delay; server ``gs``."""
    links = [Link(a, b, fixed_channel(8_000.0, 0.0, np.array(w, dtype=float)), NoLoss(), (k, 9))
             for k, ((a, b), w) in enumerate(windows.items())]
    return Network(clients, tuple(links), seed=0, server_id="gs", routing=routing,
                   antennas=(("gs", antennas),) if antennas else ())


def run(net: Network, jobs, ledger: Ledger, deadline_s=math.inf):
    env = simpy.Environment()

    def job(c, d, n, t0):
        yield env.timeout(t0)
        return (yield from send(env, net, c, d, n, deadline_s, round_=1, ledger=ledger))

    procs = [env.process(job(*j)) for j in jobs]
    env.run()
    return [p.value for p in procs]


@pytest.mark.parametrize("routing", ["direct", "relay"])
def test_a_relay_pays_its_hops_airtime_at_tx_and_rx_power(routing):
    # a -> r -> gs: 10,000 bytes, 10 s a hop; r's hop to the ground pauses once (2 windows)
    net = chain({("a", "r"): [[0, 1000]], ("r", "gs"): [[20, 24], [30, 1000]]}, ("a", "r"),
                routing)
    ledger = Ledger({"a": battery(initial_soc=1.0), "r": battery(initial_soc=1.0)})
    out, = run(net, [(0, "up", 10_000 if routing == "direct" else 3_000, 0.0)], ledger)
    assert out.status == "delivered"
    a, r = ledger.nodes["a"], ledger.nodes["r"]
    a_air = sum(e - s for s, e in out.hops[0].segments)
    r_air = sum(e - s for s, e in out.hops[1].segments)
    assert (a.used_j["tx"], a.used_j["rx"]) == (20.0 * a_air, 0.0)
    assert (r.used_j["rx"], r.used_j["tx"]) == (5.0 * a_air, 20.0 * r_air)
    if routing == "direct":  # resumes: 4 s in the first window, 6 in the second
        assert out.hops[1].segments == [(20.0, 24.0), (30.0, 36.0)]
        assert r_air == 10.0
    else:  # a relayed hop goes whole inside one window
        assert out.hops[1].segments == [(20.0, 23.0)]
    rows = {row["node"]: row for row in ledger.rows(100.0)}
    assert rows["r"]["energy_tx_j"] == 20.0 * r_air and rows["r"]["energy_compute_j"] == 0.0
    # the relay's battery: idle for 100 s plus exactly its loads (shadow, no clamping)
    assert ledger.batteries["r"].energy_j == pytest.approx(
        3600.0 - 100.0 - 5.0 * a_air - 20.0 * r_air, abs=1e-9)


def test_the_gate_applies_at_the_pass_not_at_the_request():
    # a asks at 0, its pass is [1000, 2000). Shadow until 1200, then sunlit. At 0 it could
    # afford 10 s at 20 W (2,160 - 210 >= 1,800); by 1000 it has idled to 1,160 J. In sunlight
    # idle gains 20 W and the 20 W transmitter breaks even, so it may start once back at the
    # floor: 960 J at 1200, + 20 W for 42 s -> 1242.
    sun = [[1200.0, 100_000.0]]
    ledger = Ledger({"a": battery(sun, initial_soc=0.6), "b": battery(sun, initial_soc=1.0)})
    net = chain({("a", "gs"): [[1000, 2000]], ("b", "gs"): [[1000, 2000]]}, ("a", "b"),
                antennas=1)
    a, b = run(net, [(0, "up", 10_000, 0.0), (1, "up", 10_000, 500.0)], ledger,
               deadline_s=5000.0)
    assert a.status == "delivered"
    assert a.hops[0].segments[0][0] == pytest.approx(1242.0, abs=1e-9)
    assert a.end_s == pytest.approx(1252.0, abs=1e-9)
    assert a.wait_s == pytest.approx(1242.0, abs=1e-9)  # the pass, then the charge
    assert ledger.nodes["a"].waited_s == pytest.approx(242.0, abs=1e-9)  # only the charge
    # b, with charge, took the one antenna at the pass while a waited without holding it
    assert b.hops[0].segments == [(1000.0, 1010.0)]


def test_a_battery_short_at_the_request_but_charged_by_the_pass_waits_only_for_the_pass():
    # at 0 it cannot afford the 10 s (1,850 - 210 < 1,800); the sun over [100, 900) fills it
    ledger = Ledger({"a": battery([[100.0, 900.0]], initial_soc=1850.0 / 3600.0)})
    net = chain({("a", "gs"): [[1000, 2000]]}, ("a",))
    a, = run(net, [(0, "up", 10_000, 0.0)], ledger, deadline_s=5000.0)
    assert a.hops[0].segments == [(1000.0, 1010.0)]
    assert ledger.nodes["a"].waited_s == 0.0


def test_a_sender_that_never_affords_it_times_out_at_the_deadline():
    ledger = Ledger({"a": battery(initial_soc=0.6)})  # shadow: 1,160 J by the pass
    net = chain({("a", "gs"): [[1000, 2000]]}, ("a",))
    a, = run(net, [(0, "up", 10_000, 0.0)], ledger, deadline_s=1500.0)
    assert (a.status, a.end_s, a.hops[0].segments) == ("timeout", 1500.0, [])
    assert ledger.nodes["a"].waited_s == 500.0
    assert ledger.nodes["a"].used_j["tx"] == 0.0


@pytest.mark.parametrize(("isl", "base_w"), [(None, 1.0), ({"rate_bps": 1e8}, 1.0 + 2.5)])
def test_satellites_draw_standby_only_with_crosslinks(isl, base_w):
    from types import SimpleNamespace

    from sinsim.scenario import validate_scenario
    from sinsim.sim import kernel

    sc = validate_scenario({
        "name": "standby", "clients": {"walker": {"inclination_deg": 53, "total": 4,
                                                  "planes": 2, "phasing": 1,
                                                  "altitude_km": 550}},
        "server": {"ground_stations": [{"id": "gs", "lat_deg": 31.0, "lon_deg": 121.5}]},
        "links": {"routing": "relay", **({"isl": isl} if isl else {})},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2},
        "power": {**P, "isl_standby_w": 2.5}})
    prep = SimpleNamespace(scenario=sc, sunlit=[SHADOW] * 4)
    assert [b.base_w for b in kernel.batteries(prep)] == [base_w] * 4
