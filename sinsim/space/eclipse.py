"""Sunlight and Earth shadow of satellites: sunlit windows and the circular-orbit eclipse fraction.

The shadow model is Skyfield's own ``ICRF.is_sunlit``: a satellite is in shadow when the
straight line from it to the Sun's centre (a point) is blocked by the Earth, a sphere of
radius :data:`EARTH_SHADOW_RADIUS_M` (Skyfield's ``ERAD``).  No penumbra, no atmosphere,
no oblateness (see docs/space.md, "Eclipses").  The Sun is the geometric Earth->Sun vector
of the JPL DE421 ephemeris shipped offline by the ``skyfield-data`` package, rotated into
the same Earth-fixed frame as the satellites (:mod:`~sinsim.space.orbits`).

:func:`sunlit_windows` scans a coarse time grid for every satellite at once, finds the grid
intervals where the smooth shadow metric changes sign (and the short shadows that fall
between two samples, around each minimum of the metric), and refines every edge together
with the vectorised Hermite/bisection loop of :func:`~sinsim.space.refine.refine_roots`.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from .constants import EARTH_SHADOW_RADIUS_M
from .orbits import Satellite, states_itrs_at, states_itrs_components
from .refine import refine_roots
from .timebase import Timebase

__all__ = [
    "EARTH_SHADOW_RADIUS_M",
    "ECLIPSE_GRID_STEP_S",
    "ECLIPSE_EDGE_TOLERANCE_S",
    "ephemeris",
    "sun_itrs_m",
    "shadow_metric_m",
    "sunlit_flags",
    "sunlit_windows",
    "shadow_windows",
    "eclipse_fraction_circular",
    "beta_angle_deg",
]

ECLIPSE_GRID_STEP_S = 60.0  # coarse scan; shorter shadows are found around the metric's minima
ECLIPSE_EDGE_TOLERANCE_S = 0.01  # edges are refined to brackets this wide
_MIN_PROBE_S = 0.5  # the minimum search stops once its bracket is this narrow


@functools.lru_cache(maxsize=1)
def ephemeris():
    """The JPL DE421 ephemeris (1899-07-29 .. 2053-10-09) from the ``skyfield-data`` package.

    Offline: the file ships inside the package.  ``skyfield-data`` warns that its
    Earth-orientation file (``finals2000A.all``) has expired; sinsim does not use that file
    (the :class:`Timebase` uses Skyfield's built-in tables), so that warning is silenced here.
    """
    from skyfield.api import Loader
    from skyfield_data import get_skyfield_data_path

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The file finals2000A\.all", category=RuntimeWarning)
        path = get_skyfield_data_path()
    return Loader(path, verbose=False)("de421.bsp")


def sun_itrs_m(timebase: Timebase, times_s) -> tuple[np.ndarray, np.ndarray]:
    """Geocentric Sun position (m) and velocity (m/s) in the Earth-fixed frame, each ``(3, n)``.

    The geometric ``sun - earth`` vector of DE421 (what ``is_sunlit`` uses, no light time
    or aberration), rotated to ITRS by Skyfield.
    """
    from skyfield.framelib import itrs

    t = np.atleast_1d(np.asarray(times_s, dtype=float))
    eph = ephemeris()
    sun = (eph["sun"] - eph["earth"]).at(timebase.to_time(t))
    r, v = sun.frame_xyz_and_velocity(itrs)
    return np.asarray(r.m, dtype=float).reshape(3, -1), np.asarray(v.m_per_s, dtype=float).reshape(3, -1)


def shadow_metric_m(sat_pos, sat_vel, sun_pos, sun_vel):
    """The shadow metric ``g`` (m) and its rate ``dg/dt`` (m/s); sunlit exactly when ``g > 0``.

    ``g`` is the distance from the Earth's centre to the ray from the satellite towards the
    Sun, minus :data:`EARTH_SHADOW_RADIUS_M`; when the Earth's centre is behind the satellite
    (seen from the Sun's side) the ray cannot hit the Earth and the distance used is
    ``|s|``.  ``g`` is continuous everywhere and smooth near every shadow edge.  This is the
    test of Skyfield's ``is_sunlit`` (``far <= 0`` of ``intersect_line_and_sphere``).
    All arguments are component-major ``(3, ...)`` arrays that broadcast together.
    """
    s, v = np.asarray(sat_pos, dtype=float), np.asarray(sat_vel, dtype=float)
    sun, sun_v = np.asarray(sun_pos, dtype=float), np.asarray(sun_vel, dtype=float)
    d = sun - s  # satellite -> Sun
    dd = sun_v - v
    dn = np.sqrt((d * d).sum(axis=0))
    u = d / dn
    u_dot = (dd - u * (u * dd).sum(axis=0)) / dn
    p = (s * u).sum(axis=0)  # along-ray coordinate of the Earth's centre is -p
    p_dot = (v * u).sum(axis=0) + (s * u_dot).sum(axis=0)
    ss = (s * s).sum(axis=0)
    sv = (s * v).sum(axis=0)
    front = p < 0  # the Earth's centre is ahead on the ray towards the Sun
    pc = np.where(front, p, 0.0)
    dist = np.sqrt(np.maximum(ss - pc * pc, 0.0))
    rate = (sv - pc * np.where(front, p_dot, 0.0)) / np.maximum(dist, 1.0)
    return dist - EARTH_SHADOW_RADIUS_M, rate


def _check_satellites(satellites) -> list[Satellite]:
    sats = list(satellites)
    for s in sats:
        if not isinstance(s, Satellite):
            raise TypeError(f"sunlight is modelled for satellites only, not {s!r}")
    return sats


def sunlit_flags(satellites, timebase: Timebase, times_s) -> np.ndarray:
    """Whether each satellite is sunlit at each time: bool ``(n_satellites, n_times)``."""
    sats = _check_satellites(satellites)
    t = np.atleast_1d(np.asarray(times_s, dtype=float))
    pos, vel = states_itrs_components(sats, timebase, t)
    sp, sv = sun_itrs_m(timebase, t)
    g, _ = shadow_metric_m(pos, vel, sp[:, None, :], sv[:, None, :])
    return g > 0


def _grid(horizon_s: float, step_s: float) -> np.ndarray:
    n = max(1, int(math.ceil(horizon_s / step_s - 1e-9)))
    return np.linspace(0.0, horizon_s, n + 1)


class _SunTrack:
    """The Sun's Earth-fixed position and velocity between grid samples, by cubic Hermite
    interpolation of the sampled position and velocity (Skyfield's IAU 2000A nutation costs
    ~1 ms per call, too much for every refinement pass).  With 60 s samples the Sun turns
    0.25 deg between them and the interpolation error is below a metre at 1 AU."""

    def __init__(self, grid, pos, vel):
        self.grid, self.pos, self.vel = grid, pos, vel

    def __call__(self, t):
        grid = self.grid
        j = np.clip(np.searchsorted(grid, t, side="right") - 1, 0, grid.size - 2)
        h = grid[j + 1] - grid[j]
        s = (t - grid[j]) / h
        p0, p1 = self.pos[:, j], self.pos[:, j + 1]
        m0, m1 = self.vel[:, j] * h, self.vel[:, j + 1] * h
        s2, s3 = s * s, s * s * s
        pos = (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1
        vel = ((6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * m0 + (-6 * s2 + 6 * s) * p1
               + (3 * s2 - 2 * s) * m1) / h
        return pos, vel


class _Evaluator:
    """``g`` and ``dg/dt`` of satellite ``k`` at time ``t`` (re-propagating only there)."""

    def __init__(self, sats, timebase, sun: _SunTrack):
        self.sats, self.timebase, self.sun = sats, timebase, sun

    def __call__(self, k, t):
        k = np.asarray(k, dtype=np.intp)
        t = np.asarray(t, dtype=float)
        if not t.size:
            e = np.empty(0)
            return e, e, None, None
        pos, vel = states_itrs_at(self.sats, self.timebase, k, t)
        sp, sv = self.sun(t)
        g, gd = shadow_metric_m(pos.T, vel.T, sp, sv)
        return g, gd, None, None


def _minima(ev, k, a, b, da, db):
    """Refine the minimum of g in brackets where g' goes from - to +; returns (t, g, g') there."""
    k, a, b = np.array(k, dtype=np.intp), np.array(a, dtype=float), np.array(b, dtype=float)
    active = np.arange(k.size)
    t_min = 0.5 * (a + b)
    g_min = np.full(k.size, np.inf)
    d_min = np.zeros(k.size)
    while active.size:
        mid = 0.5 * (a[active] + b[active])
        g, gd, _, _ = ev(k[active], mid)
        t_min[active], g_min[active], d_min[active] = mid, g, gd
        # stop early once this minimum is in shadow (found) or the bracket is narrow
        go_left = gd > 0
        b[active] = np.where(go_left, mid, b[active])
        a[active] = np.where(go_left, a[active], mid)
        keep = (g > 0) & (b[active] - a[active] > _MIN_PROBE_S)
        active = active[keep]
    return t_min, g_min, d_min


def sunlit_windows(
    satellites,
    timebase: Timebase,
    horizon_s: float,
    step_s: float = ECLIPSE_GRID_STEP_S,
    tol_s: float = ECLIPSE_EDGE_TOLERANCE_S,
) -> list[np.ndarray]:
    """Sunlit intervals of each satellite over ``[0, horizon_s]``.

    Returns, per satellite (in order), a float ``(k, 2)`` array of sorted, disjoint
    ``[start_s, end_s)`` intervals in sim seconds; the rest of ``[0, horizon_s]`` is shadow.
    Edges are within ``tol_s`` of the model's (and so of Skyfield's ``is_sunlit``).

    Shadows shorter than a grid step are found around each minimum of the shadow metric
    (one per orbit), down to ~``0.5 s`` long; shorter grazes may be missed.
    """
    sats = _check_satellites(satellites)
    horizon_s = float(horizon_s)
    if not (math.isfinite(horizon_s) and horizon_s >= 0):
        raise ValueError(f"horizon_s must be finite and >= 0, got {horizon_s!r}")
    if not (step_s > 0 and tol_s > 0):
        raise ValueError("step_s and tol_s must be > 0")
    if not sats:
        return []
    if horizon_s == 0:
        return [np.zeros((0, 2)) for _ in sats]
    grid = _grid(horizon_s, step_s)
    pos, vel = states_itrs_components(sats, timebase, grid)
    sp, sv = sun_itrs_m(timebase, grid)
    g, gd = shadow_metric_m(pos, vel, sp[:, None, :], sv[:, None, :])  # (n_sat, n_t)
    ev = _Evaluator(sats, timebase, _SunTrack(grid, sp, sv))

    # brackets with a sign change
    lit = g > 0
    ks, js = np.nonzero(lit[:, :-1] != lit[:, 1:])
    # minima between two sunlit samples: a short shadow may hide there
    mk, mj = np.nonzero(lit[:, :-1] & lit[:, 1:] & (gd[:, :-1] < 0) & (gd[:, 1:] > 0))
    extra = []
    if mk.size:
        tm, gm, dm = _minima(ev, mk, grid[mj], grid[mj + 1], gd[mk, mj], gd[mk, mj + 1])
        hit = gm <= 0
        for kk, j, t_, g_, d_ in zip(mk[hit], mj[hit], tm[hit], gm[hit], dm[hit]):
            # split [grid j, grid j+1] at the shadowed probe into two edge brackets
            extra.append((kk, grid[j], t_, g[kk, j], g_, gd[kk, j], d_))
            extra.append((kk, t_, grid[j + 1], g_, g[kk, j + 1], d_, gd[kk, j + 1]))
    br = [
        (int(kk), grid[j], grid[j + 1], g[kk, j], g[kk, j + 1], gd[kk, j], gd[kk, j + 1])
        for kk, j in zip(ks, js)
    ] + extra
    if br:
        cols = list(zip(*br))
        edges = refine_roots(ev, *cols, tol_s=tol_s)
        edges = np.clip(edges, 0.0, horizon_s)
        bk = np.array(cols[0], dtype=np.intp)
        rising = np.array(cols[3]) <= 0  # shadow -> sunlit at this edge
    else:
        edges, bk, rising = np.empty(0), np.empty(0, dtype=np.intp), np.empty(0, dtype=bool)

    out = []
    for i in range(len(sats)):
        sel = bk == i
        e, r = edges[sel], rising[sel]
        order = np.argsort(e, kind="stable")
        e, r = e[order], r[order]
        starts = list(e[r])
        ends = list(e[~r])
        if lit[i, 0]:
            starts.insert(0, 0.0)
        if lit[i, -1]:
            ends.append(horizon_s)
        iv = np.column_stack([np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)])
        iv = iv.reshape(-1, 2)
        out.append(iv[iv[:, 1] > iv[:, 0]])
    return out


def shadow_windows(sunlit: np.ndarray, horizon_s: float) -> np.ndarray:
    """The complement of sorted sunlit intervals within ``[0, horizon_s]``: ``(k, 2)`` shadows."""
    iv = np.asarray(sunlit, dtype=float).reshape(-1, 2)
    bounds = np.concatenate([[0.0], iv.ravel(), [float(horizon_s)]]).reshape(-1, 2)
    return bounds[bounds[:, 1] > bounds[:, 0]]


def eclipse_fraction_circular(
    altitude_m: float, beta_deg: float, earth_radius_m: float = EARTH_SHADOW_RADIUS_M
) -> float:
    """Fraction of a circular orbit spent in the Earth's (cylindrical) shadow.

    ``(1/pi) arccos( sqrt(h^2 + 2 R h) / ((R + h) cos beta) )`` when ``|beta| < beta*``
    with ``beta* = arcsin(R / (R + h))``, else 0; ``beta`` is the Sun's elevation above the
    orbit plane (the "beta angle").  Standard result, e.g. Wertz & Larson, *Space Mission
    Analysis and Design*, 3rd ed., Sec. 5.1.
    """
    h, r = float(altitude_m), float(earth_radius_m)
    if not (h > 0 and r > 0 and math.isfinite(h) and math.isfinite(r)):
        raise ValueError("altitude_m and earth_radius_m must be finite and > 0")
    beta = math.radians(float(beta_deg))
    beta_star = math.asin(r / (r + h))
    if abs(beta) >= beta_star:
        return 0.0
    x = math.sqrt(h * h + 2.0 * r * h) / ((r + h) * math.cos(beta))
    return math.acos(min(1.0, x)) / math.pi


def beta_angle_deg(satellites, timebase: Timebase, times_s) -> np.ndarray:
    """The Sun's elevation above each satellite's instantaneous orbit plane (deg), ``(n_sat, n_t)``.

    The orbit normal is ``r x v`` with the inertial velocity (the Earth-fixed one plus
    ``omega x r``), all in the Earth-fixed frame where the Sun is taken.
    """
    from .constants import EARTH_ROTATION_RAD_PER_S

    sats = _check_satellites(satellites)
    t = np.atleast_1d(np.asarray(times_s, dtype=float))
    pos, vel = states_itrs_components(sats, timebase, t)
    w = EARTH_ROTATION_RAD_PER_S
    vin = vel.copy()
    vin[0] -= w * pos[1]
    vin[1] += w * pos[0]
    n = np.cross(pos, vin, axis=0)
    n /= np.sqrt((n * n).sum(axis=0))
    sp, _ = sun_itrs_m(timebase, t)
    su = sp / np.sqrt((sp * sp).sum(axis=0))
    return np.degrees(np.arcsin(np.clip((n * su[:, None, :]).sum(axis=0), -1.0, 1.0)))
