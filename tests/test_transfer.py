"""The transfer process on hand-made channels, and rate profiles (keyed loss draws:
``test_impairments.py``; routes: ``test_routing.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sinsim.sim.channel import ALWAYS, Channel, ConstantRate, SampledRate, fixed_channel
from sinsim.sim.transfer import TransferOutcome, transfer

INF = math.inf


def run_transfer(channel: Channel, n_bytes: int, deadline_s: float, *, start_s: float = 0.0,
                 env: simpy.Environment | None = None, **kwargs) -> TransferOutcome:
    """Run one transfer that starts at ``start_s`` in a fresh environment; its outcome."""
    env = env if env is not None else simpy.Environment()

    def proc():
        if start_s > 0:
            yield env.timeout(start_s)
        return (yield from transfer(env, channel, n_bytes, deadline_s, **kwargs))

    p = env.process(proc())
    env.run()
    return p.value


def random_windows(rng: np.random.Generator, k: int, t_end: float = 1_000.0) -> np.ndarray:
    """``k`` sorted, disjoint [start, end) windows in [0, t_end] with gaps between them.

    Edges are multiples of 1/8 s, so ``now + (end - now)`` is exact in floating point (see
    ``test_pause_at_a_window_end_is_counted_once`` for what happens otherwise)."""
    edges = np.sort(rng.choice(np.arange(1, int(8 * t_end)), 2 * k, replace=False)) / 8.0
    return edges.reshape(k, 2)


def resume_oracle(windows: np.ndarray, rate_bps: float, t0: float, bits: float):
    """(first transmit instant, last-bit instant, window ends crossed) by walking the windows."""
    crossed, first = 0, None
    for start, end in windows:
        if end <= t0:
            continue
        start = max(start, t0)
        first = start if first is None else first
        if rate_bps * (end - start) >= bits:
            return first, start + bits / rate_bps, crossed
        bits -= rate_bps * (end - start)
        crossed += 1
    return first, None, crossed


def segments_inside_windows(segments, windows: np.ndarray) -> bool:
    return all(any(ws - 1e-9 <= s and e <= we + 1e-9 for ws, we in windows)
               for s, e in segments)


# --------------------------------------------------------------------------------------------
# always in view


def test_always_in_view_duration_is_size_over_rate_plus_delay():
    # Prepare: random rates (1 kb/s .. 1 Gb/s), sizes, delays and start times
    rng = np.random.default_rng(2024)
    for _ in range(200):
        rate = float(10 ** rng.uniform(3, 9))
        n_bytes = int(rng.integers(1, 10_000_000))
        delay = float(rng.uniform(0, 0.5))
        start = float(rng.uniform(0, 10_000))

        # Execute
        out = run_transfer(fixed_channel(rate, delay), n_bytes, INF, start_s=start)

        # Assert
        assert out.status == "delivered"
        assert out.start_s == start
        assert out.end_s - out.start_s == pytest.approx(n_bytes * 8 / rate + delay, abs=1e-9)
        assert out.pauses == 0
        assert out.bits_sent == 8 * n_bytes
        assert out.transmit_s == pytest.approx(n_bytes * 8 / rate, abs=1e-9)
        assert out.segments == [(start, pytest.approx(start + n_bytes * 8 / rate, abs=1e-9))]


def test_lenet5_update_over_a_10_mbps_uplink():
    # Prepare: a 1,724,328-byte FedAvg update, 10 Mb/s, 4 ms propagation delay
    channel = fixed_channel(10e6, 0.004)

    # Execute
    out = run_transfer(channel, 1_724_328, deadline_s=3600.0)

    # Assert: 1,724,328 * 8 / 1e7 = 1.3794624 s, plus 4 ms
    assert out.status == "delivered"
    assert out.end_s == pytest.approx(1.3834624, abs=1e-9)
    assert out.mean_rate_bps == pytest.approx(10e6)
    assert out.wait_s == pytest.approx(0.004, abs=1e-9)


def test_empty_payload_arrives_after_the_delay():
    # Execute
    out = run_transfer(fixed_channel(1e3, 0.25), 0, INF, start_s=3.0)

    # Assert
    assert out.status == "delivered"
    assert out.end_s == pytest.approx(3.25)


def test_parallel_transfers_do_not_interfere(env):
    # Prepare: the channel is pure data; two processes on one channel in one environment
    channel = fixed_channel(8_000.0, 0.1)
    outs = []

    def proc(n_bytes):
        outs.append((yield from transfer(env, channel, n_bytes, INF)))

    # Execute
    env.process(proc(1_000))
    env.process(proc(3_000))
    env.run()

    # Assert: 1,000 B -> 1 s, 3,000 B -> 3 s, each plus 0.1 s
    assert sorted(o.end_s for o in outs) == [pytest.approx(1.1), pytest.approx(3.1)]
    assert env.now == pytest.approx(3.1)


# --------------------------------------------------------------------------------------------
# windows


def test_transfer_outside_a_window_waits_for_the_window():
    # Prepare
    channel = fixed_channel(1_000.0, 0.5, np.array([[100.0, 200.0]]))

    # Execute
    out = run_transfer(channel, 1_000, INF)

    # Assert: starts sending at 100, 8 s of air time, arrives 0.5 s later
    assert out.segments == [(100.0, 108.0)]
    assert out.end_s == pytest.approx(108.5)
    assert out.wait_s == pytest.approx(100.5)
    assert out.pauses == 0
    assert out.status == "delivered"


def test_transfer_between_windows_waits_for_the_next_one():
    # Prepare
    channel = fixed_channel(1_000.0, 0.0, np.array([[100.0, 200.0], [300.0, 400.0]]))

    # Execute
    out = run_transfer(channel, 1_000, INF, start_s=250.0)

    # Assert
    assert out.segments == [(300.0, 308.0)]
    assert out.end_s == pytest.approx(308.0)


def test_transfer_started_inside_a_window_sends_at_once():
    # Prepare
    channel = fixed_channel(1_000.0, 0.0, np.array([[100.0, 200.0]]))

    # Execute
    out = run_transfer(channel, 1_000, INF, start_s=150.0)

    # Assert
    assert out.segments == [(150.0, 158.0)]


def test_resume_pauses_at_window_ends_and_keeps_the_bits_sent():
    # Prepare: 3,000 B = 24,000 bits at 1 kb/s need 24 s of air: 10 + 10 + 4
    windows = np.array([[0.0, 10.0], [20.0, 30.0], [40.0, 100.0]])
    channel = fixed_channel(1_000.0, 0.5, windows)

    # Execute
    out = run_transfer(channel, 3_000, INF, policy="resume")

    # Assert
    assert out.status == "delivered"
    assert out.segments == [(0.0, 10.0), (20.0, 30.0), (40.0, 44.0)]
    assert out.pauses == 2
    assert out.end_s == pytest.approx(44.5)
    assert sum(1_000.0 * (e - s) for s, e in out.segments) == pytest.approx(8 * 3_000)
    assert out.bits_sent == pytest.approx(8 * 3_000)
    assert out.transmit_s == pytest.approx(24.0)


def test_resume_matches_the_window_walk_oracle_on_random_windows():
    # Prepare
    rng = np.random.default_rng(7)
    for _ in range(150):
        windows = random_windows(rng, int(rng.integers(1, 12)))
        rate = float(rng.uniform(100, 10_000))
        start = float(rng.integers(0, 8 * 900)) / 8.0
        capacity = sum(rate * (e - max(s, start)) for s, e in windows if e > start)
        n_bytes = int(rng.integers(1, max(2, int(capacity / 8 * 1.3))))
        delay = float(rng.uniform(0, 2))
        first, last_bit, crossed = resume_oracle(windows, rate, start, 8.0 * n_bytes)

        # Execute
        out = run_transfer(fixed_channel(rate, delay, windows), n_bytes, 2_000.0,
                           start_s=start, policy="resume")

        # Assert
        assert segments_inside_windows(out.segments, windows)
        assert all(e > s for s, e in out.segments)
        assert all(a[1] <= b[0] for a, b in zip(out.segments, out.segments[1:]))
        if last_bit is None:  # not enough contact before the horizon
            assert out.status == "timeout"
            assert out.end_s == 2_000.0
            assert out.bits_sent == pytest.approx(capacity, rel=1e-9)
            continue
        assert out.status == "delivered"
        assert out.segments[0][0] == pytest.approx(first, abs=1e-9)
        assert out.end_s == pytest.approx(last_bit + delay, abs=1e-6)
        assert out.pauses == crossed == len(out.segments) - 1
        assert sum(rate * (e - s) for s, e in out.segments) == pytest.approx(8 * n_bytes,
                                                                             rel=1e-9)
        for _, end in out.segments[:-1]:  # every pause is at a window's end
            assert np.isclose(windows[:, 1], end).any()


def test_resume_over_a_sampled_rate_sends_exactly_the_payload():
    # Prepare: the rate changes inside and across windows
    windows = np.array([[5.0, 15.0], [30.0, 38.0], [50.0, 200.0]])
    rate = SampledRate(np.array([0.0, 10.0, 35.0, 60.0]), np.array([800.0, 200.0, 1_600.0, 400.0]))
    channel = Channel(windows, rate, lambda t: 0.1)

    # Execute
    out = run_transfer(channel, 3_500, INF)

    # Assert: 28,000 bits: 4,000 + 1,000 in [5, 15); 1,000 + 4,800 in [30, 38); the other
    # 17,200 from 50: 16,000 at 1.6 kb/s until 60, then 1,200 at 400 b/s (3 s)
    assert out.status == "delivered"
    assert out.pauses == 2
    assert segments_inside_windows(out.segments, windows)
    assert sum(rate.bits(s, e) for s, e in out.segments) == pytest.approx(28_000.0)
    assert out.segments[-1] == (50.0, pytest.approx(63.0))
    assert out.end_s == pytest.approx(63.1)


@pytest.mark.parametrize("policy", ["resume", "restart"])
def test_pause_at_a_window_end_is_counted_once(policy):
    # Prepare: 200 B = 1,600 bits at 1 kb/s from 0.2 s: 700 bits in [0, 0.9), the rest later
    channel = fixed_channel(1_000.0, 0.0, np.array([[0.0, 0.9], [2.0, 10.0]]))

    # Execute
    out = run_transfer(channel, 200, INF, start_s=0.2, policy=policy)

    # Assert
    assert out.status == "delivered"
    assert out.pauses == 1
    assert len(out.segments) == 2
    assert out.segments[0] == (0.2, 0.9)


def test_restart_resends_the_whole_payload_in_a_long_enough_window():
    # Prepare: 24 s needed; the first window is 10 s, the second 30 s
    windows = np.array([[0.0, 10.0], [20.0, 50.0]])
    channel = fixed_channel(1_000.0, 0.5, windows)

    # Execute
    out = run_transfer(channel, 3_000, INF, policy="restart")

    # Assert
    assert out.status == "delivered"
    assert out.segments == [(0.0, 10.0), (20.0, 44.0)]
    assert 1_000.0 * (out.segments[-1][1] - out.segments[-1][0]) == pytest.approx(8 * 3_000)
    assert out.bits_sent == pytest.approx(10_000 + 24_000)
    assert out.pauses == 1
    assert out.end_s == pytest.approx(44.5)


def test_restart_skips_windows_that_are_too_short():
    # Prepare: 24 s needed; windows of 10, 20, 5 and 40 s
    windows = np.array([[0.0, 10.0], [20.0, 40.0], [50.0, 55.0], [60.0, 100.0]])
    channel = fixed_channel(1_000.0, 0.0, windows)

    # Execute
    resume = run_transfer(channel, 3_000, INF, policy="resume")
    restart = run_transfer(channel, 3_000, INF, policy="restart")

    # Assert
    assert resume.end_s == pytest.approx(34.0)
    assert restart.end_s == pytest.approx(84.0)
    assert restart.pauses == 3
    assert restart.segments[-1] == (60.0, pytest.approx(84.0))
    assert segments_inside_windows(restart.segments, windows)


def test_restart_times_out_when_no_window_is_long_enough():
    # Prepare: 24 s needed; every window is 10 s
    windows = np.array([[0.0, 10.0], [20.0, 30.0], [40.0, 50.0]])
    channel = fixed_channel(1_000.0, 0.0, windows)

    # Execute
    out = run_transfer(channel, 3_000, 1_000.0, policy="restart")

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 1_000.0
    assert out.pauses == 3
    assert out.segments == [(0.0, 10.0), (20.0, 30.0), (40.0, 50.0)]


# --------------------------------------------------------------------------------------------
# deadlines and losses


def test_deadline_during_transmission_times_out_exactly_at_the_deadline():
    # Prepare: 24 s of air needed, deadline after 10 s
    channel = fixed_channel(1_000.0)

    # Execute
    out = run_transfer(channel, 3_000, 10.0)

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 10.0
    assert out.segments == [(0.0, 10.0)]
    assert out.bits_sent == pytest.approx(10_000.0)


def test_deadline_between_windows_times_out_at_the_deadline():
    # Prepare
    channel = fixed_channel(1_000.0, 0.0, np.array([[0.0, 10.0], [20.0, 30.0]]))

    # Execute
    out = run_transfer(channel, 3_000, 15.0)

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 15.0
    assert out.pauses == 1


def test_deadline_before_any_window_times_out_without_sending():
    # Prepare
    channel = fixed_channel(1_000.0, 0.0, np.array([[100.0, 200.0]]))

    # Execute
    out = run_transfer(channel, 10, 50.0)

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 50.0
    assert out.segments == []
    assert out.bits_sent == 0.0


def test_no_window_left_times_out_at_the_deadline():
    # Prepare
    channel = fixed_channel(1_000.0, 0.0, np.array([[0.0, 10.0]]))

    # Execute
    out = run_transfer(channel, 10, 500.0, start_s=20.0)

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 500.0


def test_arrival_exactly_at_the_deadline_is_delivered_and_just_after_times_out():
    # Prepare: 1,000 B at 8 kb/s = 1 s, plus 0.5 s delay -> arrives at 1.5 s
    channel = fixed_channel(8_000.0, 0.5)

    # Execute
    on_time = run_transfer(channel, 1_000, 1.5)
    late = run_transfer(channel, 1_000, 1.499)

    # Assert
    assert on_time.status == "delivered"
    assert on_time.end_s == pytest.approx(1.5)
    assert late.status == "timeout"
    assert late.end_s == 1.499


def test_a_late_arrival_never_sends_more_than_the_payload():
    # Prepare: 500 B at 1 kb/s: the last bit leaves at 4 s, arrives at 14 s; deadline 12 s
    channel = fixed_channel(1_000.0, 10.0)

    # Execute
    out = run_transfer(channel, 500, 12.0, policy="resume")

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 12.0
    assert out.bits_sent <= 8 * 500
    assert out.segments == [(0.0, 4.0)]


@pytest.mark.parametrize("windows", [ALWAYS, np.array([[0.0, 10.0], [20.0, 30.0], [40.0, 99.0]])])
def test_lost_transfer_is_dropped_when_it_would_have_arrived(windows):
    # Prepare
    channel = fixed_channel(1_000.0, 0.5, windows)

    # Execute
    delivered = run_transfer(channel, 3_000, INF)
    dropped = run_transfer(channel, 3_000, INF, lost=True)

    # Assert
    assert delivered.status == "delivered"
    assert dropped.status == "dropped"
    assert dropped.end_s == delivered.end_s
    assert dropped.segments == delivered.segments
    assert dropped.pauses == delivered.pauses
    assert dropped.bits_sent == delivered.bits_sent


def test_lost_transfer_that_misses_the_deadline_times_out():
    # Execute
    out = run_transfer(fixed_channel(1_000.0), 3_000, 10.0, lost=True)

    # Assert
    assert out.status == "timeout"
    assert out.end_s == 10.0


# --------------------------------------------------------------------------------------------
# channels and rate profiles


@pytest.mark.parametrize(
    ("t", "expected"),
    [(0.0, (10.0, 20.0)), (10.0, (10.0, 20.0)), (15.0, (15.0, 20.0)), (20.0, (30.0, 40.0)),
     (25.0, (30.0, 40.0)), (39.9, (39.9, 40.0)), (40.0, None), (1e9, None)],
)
def test_next_window(t, expected):
    # Prepare
    channel = fixed_channel(1.0, 0.0, np.array([[10.0, 20.0], [30.0, 40.0]]))

    # Execute
    window = channel.next_window(t)

    # Assert
    assert window == (pytest.approx(expected) if expected else None)


def test_constant_rate_is_exact_and_rejects_non_positive_rates():
    # Prepare
    rate = ConstantRate(2_000.0)

    # Assert
    assert rate.bits(1.0, 4.0) == 6_000.0
    assert rate.bits(4.0, 1.0) == 0.0
    assert rate.time_for(1.0, 6_000.0) == 4.0
    assert rate.rate_at(123.0) == 2_000.0
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError):
            ConstantRate(bad)


def _brute_bits(times, rates, t0, t1, n=200_000):
    """Midpoint Riemann sum of the step function (independent of SampledRate's cumulative)."""
    dt = (t1 - t0) / n
    mids = t0 + (np.arange(n) + 0.5) * dt
    idx = np.clip(np.searchsorted(times, mids, side="right") - 1, 0, None)
    return float(rates[idx].sum() * dt), dt


def _random_profile(rng):
    k = int(rng.integers(1, 9))
    times = np.sort(rng.choice(np.arange(0, 1_000), k, replace=False)).astype(float)
    times += rng.uniform(0, 1)
    rates = rng.uniform(10, 100, k)
    return times, rates


def test_sampled_rate_bits_agree_with_numeric_integration():
    # Prepare
    rng = np.random.default_rng(11)
    for _ in range(60):
        times, rates = _random_profile(rng)
        sampled = SampledRate(times, rates)
        t0 = float(rng.uniform(times[0], times[-1] + 50))
        t1 = t0 + float(rng.uniform(0.1, 600))

        # Execute
        bits = sampled.bits(t0, t1)

        # Assert: each knot inside [t0, t1] costs the Riemann sum at most max(rate) * dt
        brute, dt = _brute_bits(times, rates, t0, t1)
        assert bits == pytest.approx(brute, abs=(len(times) + 1) * rates.max() * dt)
        for t in rng.uniform(t0, t1, 5):  # the step function used above is SampledRate's
            i = max(0, int(np.searchsorted(times, t, side="right")) - 1)
            assert sampled.rate_at(float(t)) == rates[i]


def test_sampled_rate_time_for_agrees_with_numeric_integration():
    # Prepare
    rng = np.random.default_rng(12)
    for _ in range(60):
        times, rates = _random_profile(rng)
        sampled = SampledRate(times, rates)
        t0 = float(rng.uniform(times[0], times[-1] + 50))
        bits = float(rng.uniform(1, 30_000))

        # Execute
        t_done = sampled.time_for(t0, bits)

        # Assert: the first grid instant at which the Riemann sum reaches ``bits``
        horizon = bits / rates.min() + 1
        n = 200_000
        dt = horizon / n
        mids = t0 + (np.arange(n) + 0.5) * dt
        step = rates[np.clip(np.searchsorted(times, mids, side="right") - 1, 0, None)]
        cum = np.cumsum(step) * dt
        t_brute = t0 + (int(np.searchsorted(cum, bits)) + 1) * dt
        tol = (len(times) + 2) * rates.max() / rates.min() * dt
        assert t_done == pytest.approx(t_brute, abs=tol)


def test_sampled_rate_bits_and_time_for_are_inverses():
    # Prepare
    rng = np.random.default_rng(13)
    for _ in range(500):
        times, rates = _random_profile(rng)
        sampled = SampledRate(times, rates)
        t0 = float(rng.uniform(times[0], times[-1] + 50))
        t1 = t0 + float(rng.uniform(0.001, 800))
        bits = float(rng.uniform(0.01, 50_000))

        # Execute / Assert
        assert sampled.bits(t0, sampled.time_for(t0, bits)) == pytest.approx(bits, rel=1e-9)
        assert sampled.time_for(t0, sampled.bits(t0, t1)) == pytest.approx(t1, rel=1e-9)
        assert sampled.time_for(t0, 0.0) == t0


def test_sampled_rate_with_zero_rates():
    # Prepare: 100 b/s on [0, 10), nothing on [10, 20), 100 b/s from 20
    sampled = SampledRate(np.array([0.0, 10.0, 20.0]), np.array([100.0, 0.0, 100.0]))
    silent_tail = SampledRate(np.array([0.0, 10.0]), np.array([100.0, 0.0]))

    # Assert
    assert sampled.bits(5.0, 25.0) == pytest.approx(1_000.0)
    assert sampled.time_for(0.0, 1_000.0) == pytest.approx(10.0)  # the first instant
    assert sampled.time_for(0.0, 1_500.0) == pytest.approx(25.0)
    assert sampled.time_for(12.0, 100.0) == pytest.approx(21.0)
    assert silent_tail.time_for(0.0, 2_000.0) == math.inf
    assert silent_tail.bits(0.0, 1e9) == pytest.approx(1_000.0)


def test_sampled_rate_time_for_before_the_first_knot_inverts_bits():
    # Prepare
    sampled = SampledRate(np.array([10.0, 20.0]), np.array([100.0, 200.0]))

    # Execute
    t_done = sampled.time_for(0.0, 500.0)

    # Assert
    assert sampled.bits(0.0, t_done) == pytest.approx(500.0)


@pytest.mark.parametrize(
    ("times", "rates"),
    [([0.0, 1.0], [1.0]), ([], []), ([0.0, 0.0], [1.0, 1.0]), ([1.0, 0.0], [1.0, 1.0]),
     ([0.0, 1.0], [1.0, -1.0])],
)
def test_sampled_rate_rejects_bad_profiles(times, rates):
    # Execute / Assert
    with pytest.raises(ValueError):
        SampledRate(np.array(times), np.array(rates))
