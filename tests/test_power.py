"""The battery model: closed-form cases by hand and a brute-force (time-stepping) oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinsim.sim.power import Battery, PowerParams

CUBESAT = dict(battery_wh=80.0, solar_w=30.0, idle_w=5.0, compute_w=15.0, tx_w=20.0, rx_w=5.0,
               min_soc=0.3)
CAP = 80.0 * 3600.0  # 288 kJ
FLOOR = 0.3 * CAP  # 86.4 kJ


def params(**kw):
    return PowerParams(**{**CUBESAT, **kw})


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("battery_wh", 0.0, "battery_wh must be > 0"),
        ("solar_w", -1.0, "solar_w must be >= 0"),
        ("min_soc", 1.0, r"min_soc must be in \[0, 1\)"),
        ("initial_soc", 1.5, r"initial_soc must be in \[0, 1\]"),
        ("idle_w", math.nan, "idle_w must be a finite number"),
        ("tx_w", True, "tx_w must be a finite number"),
    ],
)
def test_params_are_validated(key, value, match):
    with pytest.raises(ValueError, match=match):
        params(**{key: value})


def test_params_derived_and_frozen():
    p = params()
    assert p.capacity_j == CAP and p.floor_j == pytest.approx(FLOOR)
    with pytest.raises(AttributeError):
        p.solar_w = 1.0


# --------------------------------------------------------------------------- closed forms
def test_constant_sun_stays_full():
    b = Battery(params(), [[0.0, 1e6]])
    assert b.earliest_start(0.0, 3600.0, 15.0) == 0.0
    assert b.consume(0.0, 3600.0, 15.0, "compute") == 15.0 * 3600.0
    assert b.energy_j == CAP and b.lowest_soc == 1.0  # +10 W net: clamped at full
    assert b.used_j == {"compute": 54000.0}
    assert b.sunlit(10.0) and not b.sunlit(2e6)


def test_shadow_drains_linearly_and_bounds_the_load():
    b = Battery(params(), np.zeros((0, 2)), horizon_s=50000.0)
    room = CAP - FLOOR  # 201.6 kJ at 20 W (15 compute + 5 idle) lasts 10080 s
    assert b.earliest_start(0.0, 10080.0, 15.0) == 0.0
    assert b.earliest_start(0.0, 10081.0, 15.0) == math.inf
    assert b.energy_at(1000.0) == CAP - 5000.0
    b.consume(0.0, 3600.0, 15.0)
    assert b.energy_j == pytest.approx(CAP - 72000.0)
    assert room == pytest.approx(201600.0)
    b.advance(1e6)  # idling in shadow empties the battery, and it stays at 0
    assert b.energy_j == 0.0 and b.lowest_soc == 0.0


def test_clamping_at_full_then_shadow():
    b = Battery(params(initial_soc=0.9), [[0.0, 7200.0]], horizon_s=20000.0)
    # +25 W idle in sun: full after (CAP - 0.9 CAP) / 25 s, then clamped
    assert b.energy_at(0.1 * CAP / 25.0) == pytest.approx(CAP)
    assert b.energy_at(7200.0) == CAP
    assert b.energy_at(8200.0) == pytest.approx(CAP - 5000.0)


def test_waits_for_the_sun_to_recharge_before_a_long_compute():
    """In shadow at 35% charge, sun from t = 3600 s: a 30-min compute (20 W in shadow, +10 W
    net in sun) must wait for the sun and then for the charge to climb back to min_soc."""
    b = Battery(params(initial_soc=0.35), [[3600.0, 1e5]])
    e_sun = 0.35 * CAP - 5.0 * 3600.0  # 82.8 kJ at sunrise, below the floor
    tau = 3600.0 + (FLOOR - e_sun) / 25.0  # idle charges at +25 W until the floor: 3744 s
    assert b.earliest_start(0.0, 1800.0, 15.0) == pytest.approx(tau, abs=1e-6)
    assert not b.can_run(tau - 1.0, 1800.0, 15.0)
    assert b.can_run(tau, 1800.0, 15.0)
    b.consume(tau, tau + 1800.0, 15.0, "compute")
    assert b.lowest_soc == pytest.approx(e_sun / CAP)  # the idle dip before sunrise
    assert b.energy_j == pytest.approx(FLOOR + 10.0 * 1800.0)


def test_a_load_spanning_a_shadow_needs_charge_before_it():
    """Sun until 10000 s, shadow until 12000 s, sun after: a 4000 s compute that would cross
    the shadow (20 W there) needs 40 kJ above the floor at the shadow's start."""
    b = Battery(params(solar_w=10.0, initial_soc=0.3), [[0.0, 10000.0], [12000.0, 1e5]])
    # net power: idle +5 W in sun, -5 W in shadow; under the load -10 W in sun, -20 W in
    # shadow.  From the floor at t = 0, the charge above the floor is 5 tau at tau <= 10000.
    # tau <= 6000 (all sun): needs 5 tau >= 40000, no.  6000 < tau <= 8000: the end is the
    # lowest point, 5 tau - 10 (10000 - tau) - 20 (tau - 6000) = 20000 - 5 tau < 0.
    # 8000 < tau < 12000: the end again, 5 tau - 60000 < 0.  tau >= 12000 (all sun):
    # 40000 + 5 (tau - 12000) - 40000 >= 0: the earliest start is the sunrise at 12000 s.
    assert b.earliest_start(0.0, 4000.0, 15.0) == pytest.approx(12000.0, abs=1e-6)
    assert not any(b.can_run(t, 4000.0, 15.0) for t in np.arange(0.0, 12000.0, 50.0))
    assert b.can_run(12000.0, 4000.0, 15.0)


def test_time_order_and_reset_lowest():
    b = Battery(params(), [[0.0, 100.0]], horizon_s=1000.0)
    b.advance(500.0)
    with pytest.raises(ValueError, match="time order"):
        b.advance(100.0)
    with pytest.raises(ValueError, match="time order"):
        b.earliest_start(0.0, 10.0, 1.0)
    assert b.reset_lowest() == pytest.approx((CAP - 2000.0) / CAP)
    assert b.lowest_soc == b.soc
    assert b.earliest_start(2000.0, 10.0, 1.0) == math.inf  # after the horizon


# --------------------------------------------------------------------------- oracle
def _lit(intervals, t):
    t = np.asarray(t, dtype=float)
    out = np.zeros(t.shape, dtype=bool)
    for s, e in intervals:
        out |= (t >= s) & (t < e)
    return out


def _stepped(p: PowerParams, intervals, t0, e0, duration, load_w, dt):
    """Fine time stepping from (t0, e0) for ``duration``; returns (end, lowest) energies."""
    n = math.ceil(duration / dt)
    h = np.minimum(dt, duration - dt * np.arange(n))
    mids = t0 + dt * np.arange(n) + 0.5 * h
    gain = (np.where(_lit(intervals, mids), p.solar_w, 0.0) - p.idle_w - load_w) * h
    e = low = float(e0)
    for g in gain.tolist():
        e = min(p.capacity_j, e + g)  # clamp at full only: a dip below 0 is a dip
        low = min(low, e)
    return e, low


def _random_case(rng):
    period = rng.uniform(5400.0, 6000.0)
    shadow = rng.uniform(0.0, 0.4) * period
    phase = rng.uniform(0.0, period)
    horizon = 30000.0
    starts = np.arange(-period + phase, horizon, period)
    iv = np.column_stack([starts + shadow, starts + period])
    iv = np.clip(iv, 0.0, horizon)
    iv = iv[iv[:, 1] > iv[:, 0]]
    p = PowerParams(
        battery_wh=rng.uniform(10.0, 40.0), solar_w=rng.uniform(5.0, 40.0),
        idle_w=rng.uniform(0.5, 6.0), compute_w=15.0, tx_w=20.0, rx_w=5.0,
        min_soc=rng.uniform(0.1, 0.6), initial_soc=rng.uniform(0.0, 1.0),
    )
    return p, iv, horizon


@pytest.mark.parametrize("seed", range(8))  # 21 start now, 6 wait, 5 never
def test_earliest_start_matches_brute_force(seed):
    """``earliest_start`` against time stepping (dt = 1 s) from every integer start time.

    The found start is feasible by stepping (within the stepping error), and no integer
    start before it is feasible with a margin.  Margin: a 1 s step misplaces each edge by
    < 1 s, so < (solar + idle + load) J per edge; a few edges in a window.
    """
    rng = np.random.default_rng(seed)
    p, iv, horizon = _random_case(rng)
    margin = 8.0 * (p.solar_w + p.idle_w + 20.0)
    battery = Battery(p, iv, horizon_s=horizon)
    t_now = float(rng.uniform(0.0, 5000.0))
    battery.advance(t_now)
    # net idle power over each second [i, i + 1) (sampled at its middle), and the idle
    # trajectory at every integer time from the battery's state
    n = int(horizon) + 10000
    idle_w = np.where(_lit(iv, np.arange(n) + 0.5), p.solar_w, 0.0) - p.idle_w
    first = math.ceil(t_now)
    taus = np.arange(first, int(horizon) + 1)
    e_idle = np.empty(taus.size)
    e = _stepped(p, iv, t_now, battery.energy_j, first - t_now, 0.0, 1.0)[0]
    for k in range(taus.size):
        e_idle[k] = e
        e = min(p.capacity_j, e + idle_w[first + k])
    for _ in range(4):
        load = float(rng.choice([p.compute_w, p.tx_w, p.rx_w]))
        duration = float(rng.uniform(0.0, 9000.0))
        t_s = float(rng.uniform(t_now, 15000.0))
        tau = battery.earliest_start(t_s, duration, load)
        sel = taus >= t_s
        start = taus[sel]
        e, low = e_idle[sel].copy(), e_idle[sel].copy()
        whole = int(duration)
        for k in range(whole):
            e = np.minimum(p.capacity_j, e + idle_w[start + k] - load)
            np.minimum(low, e, out=low)
        h = duration - whole  # the last, partial step
        lit = _lit(iv, start + whole + 0.5 * h)
        e = np.minimum(p.capacity_j, e + h * (np.where(lit, p.solar_w, 0.0) - p.idle_w - load))
        np.minimum(low, e, out=low)
        strict = start[low >= p.floor_j + margin]
        if math.isfinite(tau):
            assert t_s <= tau <= horizon
            e0 = battery.energy_at(tau)
            assert _stepped(p, iv, tau, e0, duration, load, 1.0)[1] >= p.floor_j - margin
            assert battery.can_run(tau, duration, load)
            assert not strict.size or strict[0] >= tau - 1e-9
        else:
            assert not strict.size, (t_s, duration, load, strict[:3])


# --------------------------------------------------------------------------- scenario section
def test_scenario_power_section_defaults_and_params(tiny_raw):
    from sinsim.scenario import validate_scenario

    assert validate_scenario(tiny_raw).power is None  # not modelled unless given
    tiny_raw["clients"] = {"walker": {"inclination_deg": 53, "total": 20, "planes": 4,
                                      "phasing": 1, "altitude_km": 550}}
    tiny_raw["server"] = {"ground_stations": [{"id": "g", "lat_deg": 0, "lon_deg": 0}]}
    tiny_raw["power"] = {}
    power = validate_scenario(tiny_raw).power
    # the default floor: 70 % state of charge, at most 30 % depth of discharge
    assert PowerParams(**power.model_dump()) == PowerParams(**{**CUBESAT, "min_soc": 0.7})
    tiny_raw["power"] = {"battery_wh": 20, "min_soc": 0.5}
    assert PowerParams(**validate_scenario(tiny_raw).power.model_dump()).capacity_j == 72000.0


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("battery_wh", 0, "power.battery_wh: must be > 0"),
        ("solar_w", -3, "power.solar_w: must be >= 0"),
        ("min_soc", 1.0, "power.min_soc: must be < 1"),
        ("initial_soc", 2, "power.initial_soc: must be <= 1"),
        ("tx_w", "lots", "power.tx_w"),
        ("idle_w", float("nan"), "power.idle_w: must be a finite number"),
        ("solar", 30, "power.solar"),
    ],
)
def test_bad_power_value_exits_2_naming_the_key(write_yaml, tiny_raw, capsys, key, value,
                                                fragment):
    from sinsim.cli import main

    tiny_raw["power"] = {key: value}
    assert main([str(write_yaml(tiny_raw))]) == 2
    assert fragment in capsys.readouterr().err
