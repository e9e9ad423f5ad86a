"""Numerical core of the contact search: visibility metrics, Hermite helpers, probe evaluation.

Every client/server pair gets a smooth *visibility metric* ``f(t)`` with
``f >= 0`` exactly when the pair can communicate, and its time derivative:

* ground-station pairs: ``f = sin(elevation) - sin(mask)`` (smooth even at the
  zenith, unlike the elevation angle itself);
* other pairs: ``f = min(clearance_m, max_range_m - range_m)`` where
  ``clearance_m`` is the distance from the Earth's centre to the segment
  between the nodes minus ``R_earth + grazing_altitude_m`` (spherical Earth).

Because SGP4 gives velocities for free, ``f`` and ``df/dt`` are known at every
sample, so cubic Hermite interpolation between samples is accurate to
``O(w^4)``; it is used to predict roots and extrema, while every decision is
made on true (re-propagated) values of ``f`` (see :mod:`sinsim.space.refine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .orbits import UAV, GroundStation, Satellite, states_itrs_at

HERMITE_SAFETY = 4.0  # factor on the Hermite error estimate that decides if a near miss may reach 0
MIN_SCALE_M = 1e3  # floor for the distance scale of that estimate (avoids division by ~0)
SPEED_SLACK = 1.1  # relative speed between samples may exceed the sampled one by this factor


@dataclass
class PairSet:
    """Client/server pairs over a list of unique nodes.

    ``obs`` is the observing node (the ground station for station pairs, the
    client otherwise) and ``tgt`` the other one.
    """

    nodes: list
    client: np.ndarray
    server: np.ndarray
    obs: np.ndarray
    tgt: np.ndarray
    station: np.ndarray  # bool: station pair (elevation mask) vs line-of-sight pair
    sin_mask: np.ndarray
    up: np.ndarray  # (n_pairs, 3) zenith of the station (zeros for LOS pairs)
    max_range_m: float
    graze_radius_m: np.ndarray  # per pair: sphere the line of sight must clear (see set_geometry)
    d_mask: np.ndarray  # per pair: slant range at the mask for station pairs (see set_geometry)

    def __len__(self) -> int:
        return int(self.client.size)

    @classmethod
    def build(cls, nodes, client, server, *, max_range_m: float, graze_radius_m: float) -> PairSet:
        client = np.asarray(client, dtype=np.intp)
        server = np.asarray(server, dtype=np.intp)
        is_gs = np.array([isinstance(n, GroundStation) for n in nodes], dtype=bool)
        srv_gs, cli_gs = is_gs[server], is_gs[client]
        station = srv_gs | cli_gs
        obs = np.where(srv_gs, server, client)
        tgt = np.where(srv_gs, client, server)
        node_sin_mask = np.zeros(len(nodes))
        node_up = np.zeros((len(nodes), 3))
        for i, n in enumerate(nodes):
            if isinstance(n, GroundStation):
                node_sin_mask[i] = np.sin(np.radians(n.min_elevation_deg))
                node_up[i] = n.up_unit()
        sin_mask = np.where(station, node_sin_mask[obs], 0.0)
        up = np.where(station[:, None], node_up[obs], 0.0)
        return cls(
            list(nodes),
            client,
            server,
            obs,
            tgt,
            station,
            sin_mask,
            up,
            float(max_range_m),
            np.full(client.size, float(graze_radius_m)),
            np.zeros(client.size),
        )

    def set_geometry(self, node_radius_min_m: np.ndarray) -> None:
        """Per-pair geometry from the smallest geocentric radius each node reaches.

        * Grazing sphere: a UAV flies below any sensible grazing altitude, so a
          line of sight with a UAV end must instead clear the Earth's surface
          under the UAV (a sphere of the lowest local radius it flies over).
        * Station pairs: slant range at the mask elevation,
          ``d = sqrt(r^2 - R^2 cos^2 e) - R sin e`` (spherical geometry).
        """
        ground = np.array([n.altitude_m if isinstance(n, UAV) else np.inf for n in self.nodes])
        local_surface = np.where(
            np.isfinite(ground),
            node_radius_min_m - np.where(np.isfinite(ground), ground, 0.0),
            np.inf,
        )
        self.graze_radius_m = np.minimum(
            self.graze_radius_m, np.minimum(local_surface[self.obs], local_surface[self.tgt])
        )
        r = node_radius_min_m[self.tgt]
        big_r = node_radius_min_m[self.obs]
        cos2 = 1.0 - self.sin_mask**2
        d = np.sqrt(np.maximum(r * r - big_r * big_r * cos2, 0.0)) - big_r * self.sin_mask
        self.d_mask = np.where(self.station, np.maximum(d, MIN_SCALE_M), 0.0)

    def moving(self) -> np.ndarray:
        """Bool per node: does it move in ITRS (satellites, UAVs)?"""
        return np.array([isinstance(n, (Satellite, UAV)) for n in self.nodes], dtype=bool)


def metric(ps: PairSet, k, pa, va, pb, vb):
    """``(f, df/dt, scale_m, speed_mps)`` for pairs ``k`` with states of obs (a) and tgt (b).

    Array shapes: ``k`` broadcastable to ``pa.shape[:-1]``.  ``scale_m`` is the
    distance scale and ``speed_mps`` the relative speed used by the Hermite
    error estimate.
    """
    k = np.asarray(k)
    d = pb - pa
    w = vb - va
    rng = np.sqrt(np.einsum("...i,...i->...", d, d))
    rng_safe = np.maximum(rng, 1e-3)
    rdot = np.einsum("...i,...i->...", d, w) / rng_safe
    speed = np.sqrt(np.einsum("...i,...i->...", w, w))
    station = ps.station[k]
    f = np.empty(rng.shape)
    fd = np.empty(rng.shape)
    if np.any(station):
        m = np.broadcast_to(station, rng.shape)
        up = ps.up[k]
        s = np.einsum("...i,...i->...", d, up) / rng_safe
        sd = (np.einsum("...i,...i->...", w, up) - s * rdot) / rng_safe
        f[m] = np.broadcast_to(s - ps.sin_mask[k], rng.shape)[m]
        fd[m] = sd[m]
    if not np.all(station):
        m = ~np.broadcast_to(station, rng.shape)
        f1, f1d = _clearance(pa, va, pb, vb, d, w, rng_safe, ps.graze_radius_m[k])
        f2 = ps.max_range_m - rng
        use1 = f1 <= f2
        f[m] = np.where(use1, f1, f2)[m]
        fd[m] = np.where(use1, f1d, -rdot)[m]
    return f, fd, rng, speed


def _clearance(pa, va, pb, vb, d, w, rng, graze_radius_m):  # graze_radius_m broadcasts like rng
    """Distance from the Earth's centre to segment [a, b] minus ``graze_radius_m``, and its rate."""
    dd = rng * rng
    ad = np.einsum("...i,...i->...", pa, d)
    t_star = -ad / dd
    na = np.sqrt(np.einsum("...i,...i->...", pa, pa))
    nb = np.sqrt(np.einsum("...i,...i->...", pb, pb))
    dist2_line = np.maximum(na * na - ad * ad / dd, 0.0)
    dist_line = np.sqrt(dist2_line)
    # d/dt of |a|^2 - (a.d)^2/|d|^2
    a_va = np.einsum("...i,...i->...", pa, va)
    ad_dot = np.einsum("...i,...i->...", va, d) + np.einsum("...i,...i->...", pa, w)
    d_w = np.einsum("...i,...i->...", d, w)
    dist2_dot = 2 * a_va - (2 * ad * ad_dot * dd - ad * ad * 2 * d_w) / (dd * dd)
    dist_line_dot = dist2_dot / (2 * np.maximum(dist_line, 1e-3))
    f = np.where(t_star <= 0, na, np.where(t_star >= 1, nb, dist_line)) - graze_radius_m
    fd = np.where(
        t_star <= 0,
        a_va / na,
        np.where(t_star >= 1, np.einsum("...i,...i->...", pb, vb) / nb, dist_line_dot),
    )
    return f, fd


def hermite_margin(ps: PairSet, k, width_s, scale_a, scale_b, speed_a, speed_b):
    """Estimated bound on the cubic-Hermite error of ``f`` over an interval of ``width_s``.

    For a straight-line fly-by at closest distance ``d`` and speed ``v`` the
    4th derivative of ``sin(elevation)`` peaks at ``9 (v/d)^4`` (of a
    distance-like function: ``9 d (v/d)^4``); the Hermite error is at most
    ``w^4/384`` times that.  For station pairs ``d`` is the slant range at the
    mask (``ps.d_mask``): while ``f < 0`` the node is farther than that, so a
    near miss is judged with the geometry near the mask.  Other pairs use the
    smallest range the interval allows.  ``HERMITE_SAFETY`` multiplies the
    result.
    """
    v = SPEED_SLACK * np.maximum(speed_a, speed_b)
    k = np.asarray(k)
    station = ps.station[k]
    d_los = np.maximum(np.minimum(scale_a, scale_b) - 0.5 * v * width_s, MIN_SCALE_M)
    d = np.where(station, np.maximum(ps.d_mask[k], MIN_SCALE_M), d_los)
    amp = np.where(station, 1.0, np.maximum(d_los, ps.graze_radius_m[k]))
    return HERMITE_SAFETY * 9.0 / 384.0 * width_s**4 * (v / d) ** 4 * amp


# --------------------------------------------------------------------------- Hermite helpers
def hermite_coeffs(w, f0, f1, d0, d1):
    """Coefficients of p(s) = c0 + c1 s + c2 s^2 + c3 s^3 on s in [0, 1]."""
    c1 = w * d0
    c2 = 3.0 * (f1 - f0) - 2.0 * w * d0 - w * d1
    c3 = 2.0 * (f0 - f1) + w * d0 + w * d1
    return f0, c1, c2, c3


def hermite_eval(c, s):
    c0, c1, c2, c3 = c
    return c0 + s * (c1 + s * (c2 + s * c3))


def hermite_root(c, iterations: int = 30):
    """s in [0, 1] where the cubic changes sign (p(0), p(1) of opposite sign), by bisection."""
    c0 = c[0]
    lo = np.zeros_like(c0)
    hi = np.ones_like(c0)
    neg0 = c0 < 0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        left = (hermite_eval(c, mid) < 0) == neg0  # still on the same side as s = 0
        lo = np.where(left, mid, lo)
        hi = np.where(left, hi, mid)
    p_lo, p_hi = hermite_eval(c, lo), hermite_eval(c, hi)
    den = p_lo - p_hi
    frac = np.where(den != 0, p_lo / np.where(den != 0, den, 1.0), 0.5)
    return lo + np.clip(frac, 0.0, 1.0) * (hi - lo)


def hermite_extremum(c, sense, iterations: int = 30):
    """s in [0, 1] of the extremum of the cubic where p' changes sign (+ to - for sense=+1)."""
    _, c1, c2, c3 = c
    lo = np.zeros_like(c1)
    hi = np.ones_like(c1)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        rising = sense * (c1 + mid * (2.0 * c2 + 3.0 * c3 * mid)) > 0
        lo = np.where(rising, mid, lo)
        hi = np.where(rising, hi, mid)
    s = 0.5 * (lo + hi)
    return s, hermite_eval(c, s)


# --------------------------------------------------------------------------- evaluation
class Evaluator:
    """Evaluates the metric of pairs at arbitrary times, re-propagating only there."""

    def __init__(self, ps: PairSet, timebase):
        self.ps = ps
        self.timebase = timebase
        self.calls = 0
        self.points = 0

    def __call__(self, k, t):
        k = np.asarray(k, dtype=np.intp)
        t = np.asarray(t, dtype=float)
        n = k.size
        self.calls += 1
        self.points += n
        idx = np.concatenate([self.ps.obs[k], self.ps.tgt[k]])
        pos, vel = states_itrs_at(self.ps.nodes, self.timebase, idx, np.concatenate([t, t]))
        return metric(self.ps, k, pos[:n], vel[:n], pos[n:], vel[n:])
