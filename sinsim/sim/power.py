"""A node's battery: solar charging in sunlight, idle drain, and the loads of computing and radio.

Pure model, no SimPy: the engine owns one :class:`Battery` per satellite and calls it in time
order.  Power is piecewise constant between the edges of the node's sunlit intervals (from
:func:`sinsim.space.eclipse.sunlit_windows`) and the starts/ends of loads, so the energy is
piecewise linear in time and every quantity here is computed exactly from closed forms over
those pieces (no time stepping):

* net power ``= solar_w * sunlit(t) - base_w - load_w`` (``base_w`` is ``idle_w``, plus
  ``isl_standby_w`` for a satellite with crosslinks; ``load_w`` on top of it: the
  ``compute_w``, ``tx_w``, ``rx_w`` of :class:`PowerParams`, summed over the loads that
  overlap, those registered ahead with :meth:`Battery.add_load` included);
* the stored energy is clamped to ``[0, capacity]`` (a full battery wastes the surplus; an
  empty one cannot go lower);
* a load may start only if it never takes the battery below ``min_soc`` of its capacity while
  it runs, sunlight during it included (:meth:`Battery.earliest_start`).

Outside the sunlit intervals (and after their horizon) the node is in shadow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PowerParams", "Battery", "SECONDS_PER_HOUR"]

SECONDS_PER_HOUR = 3600.0
_REL_EPS = 1e-9  # energies within this fraction of the capacity count as equal


@dataclass(frozen=True)
class PowerParams:
    """A node's battery and power budget (W, Wh, and state-of-charge fractions).

    ``compute_w``, ``tx_w`` and ``rx_w`` are drawn on top of ``idle_w`` while the node
    trains, transmits or receives.  ``min_soc``: the state-of-charge floor, a fraction of
    the capacity no load may take the battery below (0.7 allows a depth of discharge of
    30 %); ``initial_soc``: the charge at t = 0. ``isl_standby_w``: drawn all the time on top
    of ``idle_w`` by a satellite whose crosslink terminals are kept powered (a
    :class:`Battery` made with ``crosslinks=True``).
    """

    battery_wh: float
    solar_w: float
    idle_w: float
    compute_w: float
    tx_w: float
    rx_w: float
    min_soc: float
    initial_soc: float = 1.0
    isl_standby_w: float = 0.0

    def __post_init__(self):
        for name in ("battery_wh", "solar_w", "idle_w", "compute_w", "tx_w", "rx_w",
                     "min_soc", "initial_soc", "isl_standby_w"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
            if v < 0:
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        if self.battery_wh <= 0:
            raise ValueError(f"battery_wh must be > 0, got {self.battery_wh!r}")
        if not self.min_soc < 1:
            raise ValueError(f"min_soc must be in [0, 1), got {self.min_soc!r}")
        if not self.initial_soc <= 1:
            raise ValueError(f"initial_soc must be in [0, 1], got {self.initial_soc!r}")

    @property
    def capacity_j(self) -> float:
        return self.battery_wh * SECONDS_PER_HOUR

    @property
    def floor_j(self) -> float:
        """The energy below which no load may take the battery: ``min_soc * capacity``."""
        return self.min_soc * self.capacity_j


def _intervals(sunlit_s) -> np.ndarray:
    iv = np.asarray(sunlit_s, dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(iv)):
        raise ValueError("sunlit intervals must be finite")
    if np.any(iv[:, 1] < iv[:, 0]) or np.any(iv[1:, 0] < iv[:-1, 1]):
        raise ValueError("sunlit intervals must be sorted, disjoint [start_s, end_s) pairs")
    return iv[iv[:, 1] > iv[:, 0]]


class Battery:
    """The energy of one node's battery, advanced in time order.

    Parameters
    ----------
    params:
        :class:`PowerParams`.
    sunlit_s:
        ``(k, 2)`` sorted ``[start_s, end_s)`` sunlit intervals (one element of
        :func:`~sinsim.space.eclipse.sunlit_windows`); shadow elsewhere.
    horizon_s:
        :meth:`earliest_start` looks for a start no later than this (default: the end of the
        last sunlit interval, or ``t0_s``).
    t0_s:
        The time of the initial state (charge ``initial_soc``).
    crosslinks:
        The node keeps crosslink terminals powered: it draws ``isl_standby_w`` on top of
        ``idle_w`` all the time.

    State: ``t_s`` and ``energy_j``; ``lowest_soc`` (the lowest charge fraction reached
    since construction or :meth:`reset_lowest`), ``used_j`` (load energy by kind) and the
    loads registered ahead of ``t_s`` (:meth:`add_load`).
    """

    def __init__(self, params: PowerParams, sunlit_s, horizon_s: float | None = None,
                 t0_s: float = 0.0, crosslinks: bool = False):
        if not isinstance(params, PowerParams):
            raise TypeError(f"params must be a PowerParams, got {type(params).__name__}")
        self.params = params
        iv = _intervals(sunlit_s)
        self._starts, self._ends = iv[:, 0].copy(), iv[:, 1].copy()
        self._cum = np.concatenate([[0.0], np.cumsum(iv[:, 1] - iv[:, 0])])
        self._edges = np.unique(iv.ravel())
        self.capacity_j = params.capacity_j
        self.floor_j = params.floor_j
        self.t_s = float(t0_s)
        if horizon_s is None:
            horizon_s = max(self.t_s, float(self._ends[-1]) if self._ends.size else self.t_s)
        self.horizon_s = float(horizon_s)
        self.energy_j = params.initial_soc * self.capacity_j
        self.lowest_soc = params.initial_soc
        self.used_j: dict[str, float] = {}
        self._eps = _REL_EPS * self.capacity_j
        self.base_w = params.idle_w + (params.isl_standby_w if crosslinks else 0.0)
        self._loads: list[tuple[float, float, float]] = []  # (t0_s, t1_s, load_w) ahead

    def __repr__(self) -> str:
        return f"Battery(t_s={self.t_s:.3f}, soc={self.soc:.4f})"

    def state(self) -> dict[str, float | dict[str, float]]:
        """What changes as the battery is used (checkpoints): the rest comes from its
        parameters and sunlit intervals."""
        state = {"t_s": self.t_s, "energy_j": self.energy_j, "lowest_soc": self.lowest_soc,
                 "used_j": dict(self.used_j)}
        if self._loads:  # only between rounds' events; a checkpoint then has none
            state["loads"] = [list(x) for x in self._loads]
        return state

    def set_state(self, state: dict[str, float | dict[str, float]]) -> None:
        """Take back what :meth:`state` returned (numbers as they were: the same types)."""
        values = [state["t_s"], state["energy_j"], state["lowest_soc"],
                  *state["used_j"].values()]
        if not all(isinstance(v, (int, float, np.floating)) for v in values):
            raise TypeError("a battery state holds numbers")
        self.t_s, self.energy_j = state["t_s"], state["energy_j"]
        self.lowest_soc, self.used_j = state["lowest_soc"], dict(state["used_j"])
        self._loads = [tuple(float(v) for v in x) for x in state.get("loads", ())]

    # -- sunlight ---------------------------------------------------------
    @property
    def soc(self) -> float:
        return self.energy_j / self.capacity_j

    def sunlit(self, t_s) -> np.ndarray | bool:
        """Whether the node is sunlit at ``t_s`` (scalar or array)."""
        t = np.asarray(t_s, dtype=float)
        j = np.searchsorted(self._starts, t, side="right") - 1
        out = (j >= 0) & (t < self._ends[np.maximum(j, 0)] if self._ends.size else False)
        return bool(out) if out.ndim == 0 else out

    def sunlit_seconds(self, t_s) -> np.ndarray:
        """Sunlit seconds in ``[-inf, t_s]`` (piecewise linear in ``t_s``)."""
        t = np.asarray(t_s, dtype=float)
        if not self._starts.size:
            return np.zeros_like(t)
        j = np.searchsorted(self._starts, t, side="right") - 1
        jj = np.maximum(j, 0)
        part = np.clip(t - self._starts[jj], 0.0, self._ends[jj] - self._starts[jj])
        return np.where(j >= 0, self._cum[jj] + part, 0.0)

    # -- exact integration ------------------------------------------------
    def _all_edges(self) -> np.ndarray:
        """The sunlit/shadow edges and the edges of the loads registered ahead."""
        if not self._loads:
            return self._edges
        return np.unique(np.concatenate([self._edges, np.array(self._loads)[:, :2].ravel()]))

    def _ahead_w(self, t_s: np.ndarray) -> np.ndarray:
        """The power of the loads registered ahead at each of ``t_s`` (W)."""
        out = np.zeros_like(t_s)
        for a, b, w in self._loads:
            out += np.where((t_s >= a) & (t_s < b), w, 0.0)
        return out

    def _ahead_j(self, t_s) -> np.ndarray:
        """The energy of the loads registered ahead up to each of ``t_s`` (J)."""
        t = np.asarray(t_s, dtype=float)
        out = np.zeros_like(t)
        for a, b, w in self._loads:
            out += w * np.clip(t - a, 0.0, b - a)
        return out

    def _segments(self, t0: float, t1: float):
        """``(a, b, sunlit, ahead_w)`` pieces of ``[t0, t1]`` between sunlit/shadow edges and
        the edges of the loads registered ahead."""
        edges = self._all_edges()
        inner = edges[(edges > t0) & (edges < t1)]
        cuts = np.concatenate([[t0], inner, [t1]])
        mids = 0.5 * (cuts[:-1] + cuts[1:])
        return zip(cuts[:-1], cuts[1:], np.atleast_1d(self.sunlit(mids)), self._ahead_w(mids))

    def _run(self, t0: float, e0: float, t1: float, load_w: float, vertices=None):
        """Energy at ``t1`` from ``e0`` at ``t0`` under ``load_w``, and the lowest energy on the way.

        With ``vertices`` (a list) the ``(t, E)`` corners of the trajectory are appended,
        clamp starts included.
        """
        p = self.params
        e, low, cap = e0, e0, self.capacity_j
        if vertices is not None:
            vertices.append((t0, e0))
        for a, b, lit, ahead_w in self._segments(t0, t1):
            power = (p.solar_w if lit else 0.0) - self.base_w - load_w - ahead_w
            dt = b - a
            target = e + power * dt
            if power > 0 and target > cap:
                if vertices is not None and e < cap:
                    vertices.append((a + (cap - e) / power, cap))
                e = cap
            elif power < 0 and target < 0:
                if vertices is not None and e > 0:
                    vertices.append((a - e / power, 0.0))
                e = 0.0
            else:
                e = target
            low = min(low, e)
            if vertices is not None:
                vertices.append((b, e))
        return e, low

    def _check_time(self, t_s: float, what: str) -> float:
        t_s = float(t_s)
        if not math.isfinite(t_s):
            raise ValueError(f"{what} must be finite, got {t_s!r}")
        if t_s < self.t_s - 1e-9:
            raise ValueError(f"{what}={t_s} is before the battery's time {self.t_s} "
                             "(calls must come in time order)")
        return max(t_s, self.t_s)

    def energy_at(self, t_s: float) -> float:
        """The energy (J) at ``t_s >= t_s(now)`` if the node only idles (and runs the loads
        registered ahead) until then (no change)."""
        t_s = self._check_time(t_s, "t_s")
        return self._run(self.t_s, self.energy_j, t_s, 0.0)[0]

    def advance(self, t_s: float) -> float:
        """Idle (and run the loads registered ahead) until ``t_s``; returns the energy (J)
        then."""
        t_s = self._check_time(t_s, "t_s")
        self.energy_j, low = self._run(self.t_s, self.energy_j, t_s, 0.0)
        self.t_s = t_s
        self.lowest_soc = min(self.lowest_soc, low / self.capacity_j)
        self._loads = [x for x in self._loads if x[1] > t_s]
        return self.energy_j

    def _check_load(self, t0_s: float, t1_s: float, load_w: float) -> tuple[float, float]:
        """``(t0_s, t1_s)`` as floats, if they and ``load_w`` make a load; else ValueError."""
        t0_s = self._check_time(t0_s, "t0_s")
        t1_s = float(t1_s)
        if not (math.isfinite(t1_s) and t1_s >= t0_s):
            raise ValueError(f"t1_s={t1_s!r} must be finite and >= t0_s={t0_s}")
        if not (math.isfinite(load_w) and load_w >= 0):
            raise ValueError(f"load_w must be finite and >= 0, got {load_w!r}")
        return t0_s, t1_s

    def add_load(self, t0_s: float, t1_s: float, load_w: float, kind: str | None = None) -> float:
        """Register ``load_w`` (on top of idle) over ``[t0_s, t1_s]`` with ``t0_s`` not before
        the battery's time, without advancing it: loads that overlap (a relay receiving one
        payload while it sends another) add up. Returns the load's energy ``load_w * (t1_s -
        t0_s)`` (J), added to ``used_j[kind]`` at once when ``kind`` is given. It does not
        check ``min_soc``: ask :meth:`earliest_start` first."""
        t0_s, t1_s = self._check_load(t0_s, t1_s, load_w)
        if t1_s > t0_s and load_w > 0:
            self._loads.append((t0_s, t1_s, float(load_w)))
        used = float(load_w) * (t1_s - t0_s)
        if kind is not None:
            self.used_j[kind] = self.used_j.get(kind, 0.0) + used
        return used

    def consume(self, t0_s: float, t1_s: float, load_w: float, kind: str | None = None) -> float:
        """Idle until ``t0_s``, then run ``load_w`` (on top of idle) until ``t1_s``.

        Returns the load's energy ``load_w * (t1_s - t0_s)`` (J), also added to
        ``used_j[kind]`` when ``kind`` is given.  It does not check ``min_soc``: ask
        :meth:`earliest_start` first.
        """
        t0_s, t1_s = self._check_load(t0_s, t1_s, load_w)
        self.advance(t0_s)
        self.energy_j, low = self._run(t0_s, self.energy_j, t1_s, float(load_w))
        self.t_s = t1_s
        self.lowest_soc = min(self.lowest_soc, low / self.capacity_j)
        self._loads = [x for x in self._loads if x[1] > t1_s]
        used = float(load_w) * (t1_s - t0_s)
        if kind is not None:
            self.used_j[kind] = self.used_j.get(kind, 0.0) + used
        return used

    def reset_lowest(self) -> float:
        """The lowest charge fraction since the last reset; restarts it from the current one."""
        low, self.lowest_soc = self.lowest_soc, self.soc
        return low

    def can_run(self, t_s: float, duration_s: float, load_w: float) -> bool:
        """Whether ``load_w`` started at ``t_s`` (idling until then) keeps the charge >= min_soc."""
        t_s = self._check_time(t_s, "t_s")
        e0 = self._run(self.t_s, self.energy_j, t_s, 0.0)[0]
        return self._run(t_s, e0, t_s + duration_s, load_w)[1] >= self.floor_j - self._eps

    # -- scheduling -------------------------------------------------------
    def earliest_start(self, t_s: float, duration_s: float, load_w: float) -> float:
        """The earliest ``tau >= t_s`` (and ``<= horizon_s``) at which running ``load_w`` for
        ``duration_s`` never takes the battery below ``min_soc``; ``inf`` if there is none.

        The node idles until ``tau`` (and runs the loads registered ahead, before and during
        the new one: they are part of the net power below, and their edges breakpoints).  Exact: with ``Q(t)`` the integral of the net power under
        the load, a start ``tau`` is feasible iff (A) ``E_idle(tau) - floor >= Q(tau) - Q(s)``
        for every ``s`` in the window and (B) the window's largest drawdown
        ``max_{t <= s} Q(t) - Q(s)`` is at most ``capacity - floor`` (a full battery clamps,
        so energy gained before a dip cannot exceed it).  Between consecutive breakpoints
        (sunlit edges ``e``, ``e - duration_s``, and the corners of the idle trajectory)
        every term is linear in ``tau``, so the feasible set of each piece is an interval
        computed in closed form; the first non-empty one gives the answer.
        """
        t_s = self._check_time(t_s, "t_s")
        d = float(duration_s)
        load = float(load_w)
        if not (math.isfinite(d) and d >= 0):
            raise ValueError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        if not (math.isfinite(load) and load >= 0):
            raise ValueError(f"load_w must be finite and >= 0, got {load_w!r}")
        end = self.horizon_s
        if t_s > end:
            return math.inf
        verts: list = []
        self._run(self.t_s, self.energy_j, end, 0.0, verts)
        vt = np.array([v[0] for v in verts])
        ve = np.array([v[1] for v in verts])
        p = self.params
        rate = self.base_w + load
        edges = self._all_edges()

        def q(t):
            return (p.solar_w * self.sunlit_seconds(t) - rate * np.asarray(t, dtype=float)
                    - self._ahead_j(t))

        def e_idle(t):
            return np.interp(t, vt, ve)

        bps = np.concatenate([[t_s, end], edges, edges - d, vt])
        bps = np.unique(bps[(bps >= t_s) & (bps <= end)])
        room = self.capacity_j - self.floor_j
        eps = self._eps
        pieces = zip(bps[:-1], bps[1:]) if bps.size > 1 else [(bps[0], bps[0])]
        for ta, tb in pieces:
            taus = np.array([ta, tb])
            qt, qe = q(taus), q(taus + d)
            inner = edges[(edges >= tb) & (edges <= ta + d)]
            qj = np.broadcast_to(q(inner)[:, None], (inner.size, 2))
            pts = np.vstack([qt[None], qj, qe[None]])  # window points in time order, (n, 2)
            slack_a = (e_idle(taus) - self.floor_j - qt)[None] + pts
            i, j = np.triu_indices(pts.shape[0], 1)
            slack_b = room - (pts[i] - pts[j])
            terms = np.vstack([slack_a, slack_b])
            v0, v1 = terms[:, 0], terms[:, 1]
            ok0, ok1 = v0 >= -eps, v1 >= -eps  # within eps of 0 counts as satisfied
            if np.any(~ok0 & ~ok1):
                continue
            if tb <= ta:
                return float(ta)
            lo, hi = 0.0, 1.0
            rising, falling = ~ok0 & ok1, ok0 & ~ok1  # each term's root splits the piece
            if rising.any():
                lo = float(np.max(v0[rising] / (v0[rising] - v1[rising])).clip(0.0, 1.0))
            if falling.any():
                hi = float(np.min(v0[falling] / (v0[falling] - v1[falling])).clip(0.0, 1.0))
            if lo <= hi + 1e-12:
                return float(ta + lo * (tb - ta))
        return math.inf
