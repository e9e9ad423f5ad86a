"""The Gilbert-Elliott bad-period generator against the closed forms of its Markov chain.

The chain steps every ``step_s``: good -> bad with probability ``p_gb``, bad -> good with
``p_bg``. Closed forms checked here: the stationary bad fraction ``p_gb / (p_gb + p_bg)``,
geometric sojourns (mean ``1/p``, ``P(length = 1 step) = p``, variance ``(1 - p)/p**2``),
and a start drawn from the stationary distribution. Tolerances are five standard errors
of each estimate (fixed seeds, so the tests are deterministic).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinsim.sim.impairments import gilbert_elliott_bad_periods

CASES = [  # (p_gb, p_bg, steps in the horizon): ~20k-50k sojourns each
    (0.01, 0.1, 2_000_000),
    (0.2, 0.05, 400_000),
    (0.5, 0.5, 100_000),
]


def _sojourns(bad, horizon_s, step_s):
    """(bad lengths, good lengths) in steps, leaving out sojourns cut by either end."""
    starts, ends = bad[:, 0], bad[:, 1]
    bad_len = (ends - starts) / step_s
    good_len = (starts[1:] - ends[:-1]) / step_s
    keep = (starts > 0) & (ends < horizon_s)  # the first may have begun before 0
    return bad_len[keep], good_len


@pytest.mark.parametrize("p_gb, p_bg, n_steps", CASES)
def test_stationary_bad_fraction_matches_closed_form(p_gb, p_bg, n_steps):
    step_s = 2.0
    horizon = n_steps * step_s
    bad = gilbert_elliott_bad_periods(np.random.default_rng(11), horizon, step_s, p_gb, p_bg)
    fraction = (bad[:, 1] - bad[:, 0]).sum() / horizon
    pi = p_gb / (p_gb + p_bg)
    lam = 1.0 - p_gb - p_bg  # second eigenvalue of the transition matrix
    se = math.sqrt(pi * (1 - pi) * (1 + lam) / (1 - lam) / n_steps)  # time-average variance
    assert abs(fraction - pi) <= 5 * se, (fraction, pi, se)


@pytest.mark.parametrize("p_gb, p_bg, n_steps", CASES)
def test_sojourns_are_geometric_in_steps(p_gb, p_bg, n_steps):
    step_s = 0.5
    horizon = n_steps * step_s
    bad = gilbert_elliott_bad_periods(np.random.default_rng(3), horizon, step_s, p_gb, p_bg)
    bad_len, good_len = _sojourns(bad, horizon, step_s)
    for lengths, p in ((bad_len, p_bg), (good_len, p_gb)):
        n = lengths.size
        assert n > 5_000
        np.testing.assert_array_equal(lengths, np.round(lengths))  # whole steps
        assert lengths.min() >= 1
        mean_se = math.sqrt((1 - p) / p**2 / n)
        assert abs(lengths.mean() - 1 / p) <= 5 * mean_se, (lengths.mean(), 1 / p)
        p1 = (lengths == 1).mean()  # memoryless: a sojourn ends after its first step w.p. p
        assert abs(p1 - p) <= 5 * math.sqrt(p * (1 - p) / n), (p1, p)
        if p < 1:
            assert lengths.var() == pytest.approx((1 - p) / p**2, rel=0.1)


def test_starts_from_the_stationary_distribution():
    p_gb, p_bg, n = 0.01, 0.1, 4000
    bad_at_0 = [
        len(b) > 0 and b[0, 0] == 0.0
        for b in (
            gilbert_elliott_bad_periods(np.random.default_rng(s), 50.0, 1.0, p_gb, p_bg)
            for s in range(n)
        )
    ]
    pi = p_gb / (p_gb + p_bg)
    assert abs(np.mean(bad_at_0) - pi) <= 5 * math.sqrt(pi * (1 - pi) / n)


def test_periods_are_ordered_disjoint_on_the_step_grid_and_reproducible():
    step_s, horizon = 1.5, 10_000.25  # the last sojourn is cut at the horizon
    a = gilbert_elliott_bad_periods(np.random.default_rng(5), horizon, step_s, 0.1, 0.3)
    b = gilbert_elliott_bad_periods(np.random.default_rng(5), horizon, step_s, 0.1, 0.3)
    c = gilbert_elliott_bad_periods(np.random.default_rng(6), horizon, step_s, 0.1, 0.3)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert a.ndim == 2 and a.shape[1] == 2 and len(a) > 100
    assert a[0, 0] >= 0.0 and a[-1, 1] <= horizon
    assert (a[:, 1] > a[:, 0]).all()
    assert (a[1:, 0] - a[:-1, 1] >= step_s).all()  # a good sojourn of >= 1 step between
    edges = a.ravel()
    edges = edges[edges < horizon]
    np.testing.assert_allclose(edges / step_s, np.round(edges / step_s), atol=1e-9)


def test_certain_transitions_alternate_every_step():
    a = gilbert_elliott_bad_periods(np.random.default_rng(0), 9.5, 1.0, 1.0, 1.0)
    first = a[0, 0]
    assert first in (0.0, 1.0)
    expected = [(t, min(t + 1.0, 9.5)) for t in np.arange(first, 9.5, 2.0)]
    np.testing.assert_array_equal(a, expected)
    empty = gilbert_elliott_bad_periods(np.random.default_rng(0), 0.0, 1.0, 0.1, 0.1)
    assert empty.shape == (0, 2)
