"""Loss models and failure periods: each loss kind decides as the keyed draws always did.

The oracle ``old_lost`` is the decision the star network made before losses had their own
module: a draw from ``rng_for(seed, "loss", round, client, direction)`` against ``p`` (Bernoulli),
or against ``loss_bad`` / ``loss_good`` depending on whether the transfer was on the air in a bad
period drawn from ``rng_for(seed, "channel", client, direction)`` (Gilbert-Elliott).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sinsim._rng import rng_for
from sinsim.scenario import validate_scenario
from sinsim.sim.impairments import (
    BernoulliLoss,
    GilbertElliottLoss,
    NoLoss,
    failure_periods,
    gilbert_elliott_bad_periods,
    impairment,
    overlaps,
    subtract_intervals,
)
from sinsim.sim.network import DOWN, UP
from sinsim.sim.wiring import build_network

HORIZON_S = 20_000.0
GE = SimpleNamespace(kind="gilbert_elliott", p_good_to_bad=0.05, p_bad_to_good=0.2,
                     loss_good=0.1, loss_bad=0.9, step=10.0)


def brute_overlaps(segments, intervals) -> bool:
    return any(a < e and s < b for a, b in segments for s, e in intervals)


def old_lost(seed, spec, round_, client, direction, segments) -> bool:
    """The loss decision as it was made before the refactor (see the module docstring)."""
    if spec.kind == "none":
        return False
    if spec.kind == "bernoulli":
        p = spec.p
    else:
        bad = gilbert_elliott_bad_periods(rng_for(seed, "channel", client, direction), HORIZON_S,
                                          spec.step, spec.p_good_to_bad, spec.p_bad_to_good)
        p = spec.loss_bad if brute_overlaps(segments, bad) else spec.loss_good
    if p <= 0:
        return False
    return bool(rng_for(seed, "loss", round_, client, direction).random() < p)


def random_segments(rng, n=3):
    starts = np.sort(rng.uniform(0, HORIZON_S - 100, n))
    return [(float(s), float(s + rng.uniform(0.1, 60))) for s in starts]


@pytest.mark.parametrize("spec", [
    SimpleNamespace(kind="none"),
    SimpleNamespace(kind="bernoulli", p=0.0),
    SimpleNamespace(kind="bernoulli", p=0.3),
    SimpleNamespace(kind="bernoulli", p=1.0),
    GE,
    SimpleNamespace(**{**GE.__dict__, "loss_good": 0.0}),
], ids=["none", "p0", "p0.3", "p1", "ge", "ge_good_lossless"])
def test_each_loss_kind_decides_as_the_old_keyed_draws(spec):
    # Prepare
    rng = np.random.default_rng(1)
    seed = 7

    for c in range(6):
        for d in (UP, DOWN):
            model = impairment(spec, seed, (c, d), HORIZON_S)
            for r in range(1, 16):
                segments = random_segments(rng)

                # Execute / Assert
                assert model.lost(seed, (c, d), r, segments) == old_lost(seed, spec, r, c, d,
                                                                         segments)


def test_each_kind_builds_its_class():
    # Execute
    none = impairment(SimpleNamespace(kind="none"), 0, (0, UP), HORIZON_S)
    bern = impairment(SimpleNamespace(kind="bernoulli", p=0.2), 0, (0, UP), HORIZON_S)
    ge = impairment(GE, 0, (3, DOWN), HORIZON_S)

    # Assert
    assert none == NoLoss()
    assert bern == BernoulliLoss(0.2)
    assert isinstance(ge, GilbertElliottLoss)
    expected = gilbert_elliott_bad_periods(rng_for(0, "channel", 3, DOWN), HORIZON_S, 10.0,
                                           0.05, 0.2)
    np.testing.assert_array_equal(ge.bad, expected)
    assert (ge.loss_good, ge.loss_bad) == (0.1, 0.9)


@pytest.mark.parametrize("loss", [
    {"kind": "none"}, {"kind": "bernoulli", "p": 0.4},
    {"kind": "gilbert_elliott", "p_good_to_bad": 0.05, "p_bad_to_good": 0.2, "loss_good": 0.1,
     "loss_bad": 0.9, "step": 10.0}])
def test_the_scenarios_network_decides_as_the_old_keyed_draws(tiny_raw, loss):
    # Prepare: the star's links carry the keys (client, direction)
    tiny_raw.update(seed=5, horizon=HORIZON_S, links={"loss": loss})
    scenario = validate_scenario(tiny_raw)
    net = build_network(scenario)
    rng = np.random.default_rng(2)

    for c in range(len(net.client_ids)):
        for d, (link,) in ((UP, net.route_up(c)), (DOWN, net.route_down(c))):
            assert link.key == (c, d)
            for r in range(1, 11):
                segments = random_segments(rng)

                # Execute / Assert
                assert net.lost(link, r, segments) == old_lost(5, scenario.links.loss, r, c, d,
                                                               segments)


def test_loss_draw_is_deterministic_and_keyed():
    # Prepare
    model = BernoulliLoss(0.5)
    keys = [(r, c, d) for r in range(1, 21) for c in range(10) for d in (UP, DOWN)]

    # Execute
    first = [model.lost(0, (c, d), r, ()) for r, c, d in keys]
    again = [model.lost(0, (c, d), r, ()) for r, c, d in reversed(keys)][::-1]  # any order
    reseeded = [model.lost(1, (c, d), r, ()) for r, c, d in keys]

    # Assert
    assert first == again
    assert first != reseeded
    assert 0 < sum(first) < len(first)


def test_loss_frequency_is_close_to_p():
    keys = [(r, c, d) for r in range(1, 101) for c in range(50) for d in (UP, DOWN)]
    for p in (0.05, 0.3):
        # Execute
        rate = np.mean([BernoulliLoss(p).lost(3, (c, d), r, ()) for r, c, d in keys])

        # Assert: 10,000 draws, std <= 0.005
        assert rate == pytest.approx(p, abs=0.02)


@pytest.mark.parametrize(("p", "expected"), [(0.0, False), (1.0, True)])
def test_loss_probability_zero_and_one(p, expected):
    draws = {BernoulliLoss(p).lost(0, (c, d), r, ())
             for r in range(20) for c in range(2) for d in (UP, DOWN)}
    assert draws == {expected}
    assert not any(NoLoss().lost(0, (c, UP), 1, [(0.0, 1.0)]) for c in range(20))


def test_gilbert_elliott_loses_transfers_on_the_air_in_a_bad_period():
    # Prepare: always lost in the bad period [100, 200), never outside it
    model = GilbertElliottLoss(loss_good=0.0, loss_bad=1.0, bad=np.array([[100.0, 200.0]]))

    # Execute / Assert
    assert model.lost(0, (0, UP), 1, [(150.0, 160.0)])  # inside the bad period
    assert model.lost(0, (0, UP), 1, [(50.0, 60.0), (190.0, 250.0)])  # a later segment
    assert not model.lost(0, (0, UP), 1, [(0.0, 100.0), (200.0, 300.0)])  # edges only: good
    assert not GilbertElliottLoss(0.0, 1.0, np.empty((0, 2))).lost(0, (0, DOWN), 1,
                                                                   [(150.0, 160.0)])


def test_overlaps_agrees_with_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(300):
        edges = np.sort(rng.choice(np.arange(1000), 2 * int(rng.integers(0, 6)), replace=False))
        intervals = edges.reshape(-1, 2).astype(float)
        segments = random_segments(rng, int(rng.integers(0, 4)))
        segments = [(a / 20, b / 20) for a, b in segments]
        assert overlaps(segments, intervals) == brute_overlaps(segments, intervals)


def test_failures_and_bursty_losses_are_keyed_and_bounded():
    a = failure_periods(np.random.default_rng(5), 86400 * 30, 2.0, 3600)
    b = failure_periods(np.random.default_rng(5), 86400 * 30, 2.0, 3600)
    np.testing.assert_array_equal(a, b)
    assert 30 < len(a) < 90  # ~60 failures in 30 days at 2/day
    assert (a[:-1, 1] - a[:-1, 0] >= 3600 - 1e-9).all()  # overlapping outages merge
    assert (a[1:, 0] > a[:-1, 1]).all()
    assert failure_periods(np.random.default_rng(5), 86400, 0.0, 3600).shape == (0, 2)
    rng = np.random.default_rng(0)
    bad = gilbert_elliott_bad_periods(rng, 1e6, 1.0, 0.01, 0.1)
    fraction = (bad[:, 1] - bad[:, 0]).sum() / 1e6
    assert fraction == pytest.approx(0.01 / 0.11, abs=0.02)  # stationary P(bad)
    assert (bad[:, 1] - bad[:, 0]).mean() == pytest.approx(10.0, rel=0.15)  # 1 / p_bad_to_good


def test_subtract_intervals():
    windows = np.array([[0.0, 100.0], [200.0, 300.0]])
    holes = np.array([[50.0, 250.0]])
    np.testing.assert_array_equal(subtract_intervals(windows, holes), [[0, 50], [250, 300]])
    np.testing.assert_array_equal(subtract_intervals(windows, np.empty((0, 2))), windows)
    assert subtract_intervals(windows, np.array([[0.0, 300.0]])).shape == (0, 2)


def test_failures_darken_both_links_of_a_client(tiny_raw):
    # Prepare
    tiny_raw.update(seed=2, horizon=10 * 86400.0,
                    links={"failures": {"rate_per_day": 3.0, "duration": 7200.0}})
    net = build_network(validate_scenario(tiny_raw))

    for c in range(len(net.client_ids)):
        # Execute
        dark = failure_periods(rng_for(2, "failure", c), 10 * 86400.0, 3.0, 7200.0)
        (up,), (down,) = net.route_up(c), net.route_down(c)

        # Assert
        expected = subtract_intervals(np.array([[0.0, np.inf]]), dark)
        np.testing.assert_array_equal(up.channel.windows, expected)
        np.testing.assert_array_equal(down.channel.windows, expected)
        assert len(dark) > 0
