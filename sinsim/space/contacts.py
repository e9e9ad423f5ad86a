"""Contact windows between clients and servers, and the contact plan built from them.

Algorithm (see docs/space.md):

1. One :func:`~sinsim.space.orbits.states_itrs` call propagates every node on
   a coarse grid (``step_s``, plus the horizon itself); the visibility metric
   ``f`` of :mod:`~sinsim.space.visibility` and ``df/dt`` are computed for all
   pairs on that grid.
2. Grid intervals where ``f`` changes sign hold a window edge.  Intervals whose
   ends are both invisible but whose ``f'`` goes from + to - hold a local
   maximum that may poke above the mask between samples (a *near miss*); the
   cubic Hermite model (+ an error margin) decides which ones to refine, and
   refinement re-propagates only the pairs concerned at the probe times.
   Symmetrically, dips inside visible intervals are searched.
3. All edges are refined together (vectorised) to brackets ``<= edge_tolerance_s``.
4. ``max_elevation_deg`` comes from refining the maxima inside each window.

Passes whose whole duration is shorter than about ``edge_tolerance_s`` can be
missed; every pass longer than the grid step contains a grid sample and is
never missed.

Memory: the grid states of step 1 take ~50 B per node and sample (more while
they are computed), so the pairs are processed in chunks (in their order: for
:func:`contact_windows` some clients with every server) whose nodes fit in
``memory_mb`` (:data:`BYTES_PER_NODE_SAMPLE` per node and sample).  Each pair's
windows depend on that pair only, so the chunks give exactly the windows of one
chunk.  The horizon is not split: one node over a year at 30 s takes ~200 MB.
"""

from __future__ import annotations

import inspect
import math
import numbers
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import EARTH_RADIUS_M
from .gridscan import _grid_phase, _near_misses, _time_grid
from .orbits import UAV, GroundStation, Satellite, states_itrs_components
from .plan import CSV_COLUMNS, ContactPlan
from .plancache import WINDOW_COLUMNS, cache_key, empty_windows, load_windows, save_windows
from .refine import refine_peaks, refine_roots
from .timebase import Timebase
from .visibility import (
    Evaluator,
    PairSet,
)

__all__ = [
    "contact_windows",
    "pair_windows",
    "ContactPlan",
    "compute_contact_plan",
    "WINDOW_COLUMNS",
    "CSV_COLUMNS",
    "CONTACTS_CODE_VERSION",
    "plan_cache_key",
]

CONTACTS_CODE_VERSION = "contacts-1"  # bump when results of contact_windows change
DEFAULT_MEMORY_MB = 512.0  # budget for the node states of one chunk of pairs (see _pair_chunks)
# bytes held per node and grid sample while a chunk is scanned: positions and velocities
# (48 B), SGP4's TEME output and the rotation's temporaries, the per-node reductions of
# _grid_phase; measured peak of states_itrs_components + _grid_phase, with some slack
BYTES_PER_NODE_SAMPLE = 200


def _unique_nodes(clients, servers):
    nodes, index = [], {}
    for group_name, group in (("clients", clients), ("servers", servers)):
        seen = set()
        for n in group:
            if not isinstance(n, (Satellite, GroundStation, UAV)):
                raise TypeError(f"{group_name}: not a node: {n!r}")
            if n.id in seen:
                raise ValueError(f"{group_name}: duplicate node id {n.id!r}")
            seen.add(n.id)
            if n.id in index:
                if nodes[index[n.id]] is not n and nodes[index[n.id]] != n:
                    raise ValueError(f"node id {n.id!r} names two different nodes")
                continue
            index[n.id] = len(nodes)
            nodes.append(n)
    return nodes, [index[n.id] for n in clients], [index[n.id] for n in servers]




def contact_windows(
    clients,
    servers,
    timebase: Timebase,
    horizon_s: float,
    *,
    step_s: float = 30.0,
    max_range_m: float = math.inf,
    grazing_altitude_m: float = 80e3,
    edge_tolerance_s: float = 1.0,
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> pd.DataFrame:
    """Contact windows of every client/server pair over ``[0, horizon_s]``.

    Returns a DataFrame with columns ``client, server, start_s, end_s,
    duration_s, max_elevation_deg`` sorted by client, server, start_s.
    Pairs with a ground station on either side are visible while the other
    node is above that station's ``min_elevation_deg`` (the server's when both
    are stations); other pairs while their line of sight clears a sphere of
    radius ``EARTH_RADIUS_M + grazing_altitude_m`` and the range is
    ``<= max_range_m``.  ``max_elevation_deg`` is NaN unless the server is a
    ground station.  Windows open at 0 or at the horizon are clipped there.

    ``memory_mb`` bounds the node states held at once: the clients are processed in chunks
    (each with every server) whose states over the grid fit in it.  Every pair's windows are
    computed independently of the others, so the result does not depend on it.
    """
    for name, v in (
        ("horizon_s", horizon_s),
        ("step_s", step_s),
        ("edge_tolerance_s", edge_tolerance_s),
    ):
        if not (
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        ):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if not (max_range_m > 0):
        raise ValueError(f"max_range_m must be > 0, got {max_range_m!r}")
    if not (math.isfinite(grazing_altitude_m) and grazing_altitude_m > -EARTH_RADIUS_M / 2):
        raise ValueError(f"grazing_altitude_m must be finite, got {grazing_altitude_m!r}")
    if not isinstance(timebase, Timebase):
        raise TypeError("timebase must be a sinsim.space.timebase.Timebase")
    clients, servers = list(clients), list(servers)
    nodes, c_idx, s_idx = _unique_nodes(clients, servers)
    pairs = [(c, s) for c in c_idx for s in s_idx if c != s]
    return _pair_windows(nodes, pairs, timebase, horizon_s, step_s=step_s,
                         max_range_m=max_range_m, grazing_altitude_m=grazing_altitude_m,
                         edge_tolerance_s=edge_tolerance_s, memory_mb=memory_mb)


def pair_windows(nodes, pairs, timebase: Timebase, horizon_s: float, *, step_s: float = 30.0,
                 max_range_m: float = math.inf, grazing_altitude_m: float = 80e3,
                 edge_tolerance_s: float = 1.0,
                 memory_mb: float = DEFAULT_MEMORY_MB) -> pd.DataFrame:
    """Windows of chosen pairs ``(i, j)`` of ``nodes`` (indices; unique node ids), e.g. the
    inter-satellite links of a constellation: the same algorithm and columns as
    :func:`contact_windows`, with ``client`` = ``nodes[i]`` and ``server`` = ``nodes[j]``.
    The pairs are processed in chunks (in their order) whose nodes' states fit in
    ``memory_mb``; the result does not depend on it."""
    nodes = list(nodes)
    ids = [n.id for n in nodes]
    if len(set(ids)) != len(ids):
        raise ValueError("node ids must be unique")
    pairs = [(int(i), int(j)) for i, j in pairs]
    if any(i == j or not (0 <= i < len(nodes) and 0 <= j < len(nodes)) for i, j in pairs):
        raise ValueError("pairs must join two different nodes by index")
    return _pair_windows(nodes, pairs, timebase, float(horizon_s), step_s=step_s,
                         max_range_m=max_range_m, grazing_altitude_m=grazing_altitude_m,
                         edge_tolerance_s=edge_tolerance_s, memory_mb=memory_mb)


def max_chunk_nodes(memory_mb: float, n_samples: int) -> int:
    """How many nodes' states over ``n_samples`` grid samples fit in ``memory_mb`` (>= 2)."""
    return max(2, int(memory_mb * 2**20 // (BYTES_PER_NODE_SAMPLE * max(1, n_samples))))


def _pair_chunks(pairs, max_nodes: int):
    """Split ``pairs`` (in order) into consecutive runs touching at most ``max_nodes`` nodes
    (a run always holds at least one pair)."""
    chunks, start, seen = [], 0, set()
    for n, (i, j) in enumerate(pairs):
        new = (i not in seen) + (j not in seen)
        if seen and len(seen) + new > max_nodes:
            chunks.append((start, n))
            start, seen = n, set()
        seen.add(i)
        seen.add(j)
    if start < len(pairs):
        chunks.append((start, len(pairs)))
    return chunks


def _pair_windows(nodes, pairs, timebase, horizon_s, *, step_s, max_range_m,
                  grazing_altitude_m, edge_tolerance_s, memory_mb) -> pd.DataFrame:
    if not (isinstance(memory_mb, numbers.Real) and not isinstance(memory_mb, bool)
            and math.isfinite(memory_mb) and memory_mb > 0):
        raise ValueError(f"memory_mb must be a finite number > 0, got {memory_mb!r}")
    if not pairs:
        return empty_windows()
    kw = dict(step_s=step_s, max_range_m=max_range_m, grazing_altitude_m=grazing_altitude_m,
              edge_tolerance_s=edge_tolerance_s)
    n_samples = _time_grid(float(horizon_s), float(step_s)).size
    max_nodes = max_chunk_nodes(memory_mb, n_samples)
    chunks = [(0, len(pairs))] if len(nodes) <= max_nodes else _pair_chunks(pairs, max_nodes)
    parts, evals = [], {"grid_samples": n_samples, "probe_calls": 0, "probe_points": 0}
    for lo, hi in chunks:
        if (lo, hi) == (0, len(pairs)):
            sub_nodes, sub = nodes, pairs
        else:
            used = sorted({i for p in pairs[lo:hi] for i in p})
            local = {g: n for n, g in enumerate(used)}
            sub_nodes, sub = [nodes[g] for g in used], [(local[i], local[j]) for i, j in pairs[lo:hi]]
        cols, ev = _chunk_windows(sub_nodes, sub, timebase, horizon_s, **kw)
        evals["probe_calls"] += ev.calls
        evals["probe_points"] += ev.points
        parts.append(cols)
        del cols, ev
    # each chunk's rows are in (pair, start) order and the chunks follow the pairs' order, so the
    # concatenation is exactly the rows of one chunk over all pairs, before the sort
    df = pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in WINDOW_COLUMNS})
    del parts
    df = df.sort_values(["client", "server", "start_s"], kind="stable").reset_index(drop=True)
    df.attrs["evaluations"] = evals
    return df


def _chunk_windows(nodes, pairs, timebase, horizon_s, *, step_s, max_range_m,
                   grazing_altitude_m, edge_tolerance_s):
    """The windows of ``pairs`` as columns (in pair, start order) and the Evaluator used."""
    ps = PairSet.build(
        nodes,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        max_range_m=max_range_m,
        graze_radius_m=EARTH_RADIUS_M + grazing_altitude_m,
    )
    horizon_s = float(horizon_s)
    tol = min(float(edge_tolerance_s), float(step_s))
    grid = _time_grid(horizon_s, float(step_s))
    pos, vel = states_itrs_components(nodes, timebase, grid)
    need_peak = np.array([isinstance(nodes[s], GroundStation) for s in ps.server], dtype=bool)
    f_first, f_last, br = _grid_phase(ps, pos, vel, grid, need_peak)
    del pos, vel
    ev = Evaluator(ps, timebase)

    bump_edges, bump_peaks = _near_misses(ev, br["bump"], +1, tol)
    dip_edges, _ = _near_misses(ev, br["dip"], -1, tol)
    edges = {
        n: np.concatenate([br["edge"][n], bump_edges[n], dip_edges[n]])
        for n in ("k", "a", "b", "fa", "fb", "da", "db")
    }
    roots = refine_roots(
        ev,
        edges["k"],
        edges["a"],
        edges["b"],
        edges["fa"],
        edges["fb"],
        edges["da"],
        edges["db"],
        tol,
    )

    # Assemble windows: each root toggles visibility; prepend 0 / append horizon for open windows.
    vis0 = f_first >= 0
    n_cross = np.bincount(edges["k"], minlength=len(ps))
    vis_end = vis0 ^ (n_cross % 2 == 1)
    k_all = np.concatenate([np.flatnonzero(vis0), edges["k"], np.flatnonzero(vis_end)])
    t_all = np.concatenate([np.zeros(vis0.sum()), roots, np.full(vis_end.sum(), horizon_s)])
    rank = np.concatenate([np.zeros(vis0.sum()), np.ones(roots.size), np.full(vis_end.sum(), 2.0)])
    o = np.lexsort((rank, t_all, k_all))
    k_all, t_all = k_all[o], np.clip(t_all[o], 0.0, horizon_s)
    wk, start, end = k_all[0::2], t_all[0::2], t_all[1::2]
    good = end > start
    wk, start, end = wk[good], start[good], end[good]

    # Maximum elevation (server = ground station): refined maxima inside each window.
    f_max = np.where(start <= 0.0, f_first[wk], 0.0)
    f_max = np.maximum(f_max, np.where(end >= horizon_s, f_last[wk], 0.0))
    pk = br["peak"]
    t_ext, f_ext = refine_peaks(
        ev, pk["k"], pk["a"], pk["b"], pk["fa"], pk["fb"], pk["da"], pk["db"]
    )
    peak_k = np.concatenate([pk["k"], bump_peaks[0]])
    peak_t = np.concatenate([t_ext, bump_peaks[1]])
    peak_f = np.concatenate([f_ext, bump_peaks[2]])
    if peak_k.size and wk.size:
        # each peak belongs to the last window of its pair starting at or before it (exact merge)
        n_w = wk.size
        kk = np.concatenate([wk, peak_k])
        tt = np.concatenate([start, peak_t])
        kind = np.concatenate([np.zeros(n_w), np.ones(peak_k.size)])
        order = np.lexsort((kind, tt, kk))
        win_idx = np.concatenate([np.arange(n_w), np.full(peak_k.size, -1)])[order]
        last = np.maximum.accumulate(win_idx)
        pos_in = np.empty(peak_k.size, dtype=np.intp)
        pos_in[order[order >= n_w] - n_w] = last[order >= n_w]
        safe = np.maximum(pos_in, 0)
        ok = (pos_in >= 0) & (wk[safe] == peak_k) & (peak_t <= end[safe] + 1e-6)
        np.maximum.at(f_max, pos_in[ok], peak_f[ok])
    srv_gs = need_peak[wk]
    el = np.degrees(np.arcsin(np.clip(f_max + ps.sin_mask[wk], -1.0, 1.0)))
    max_el = np.where(srv_gs, el, np.nan)

    ids = np.array([n.id for n in nodes], dtype=object)
    cols = {
        "client": ids[ps.client[wk]],
        "server": ids[ps.server[wk]],
        "start_s": start,
        "end_s": end,
        "duration_s": end - start,
        "max_elevation_deg": max_el,
    }
    return cols, ev


# --------------------------------------------------------------------------- cache
_WINDOWS_SIGNATURE = inspect.signature(contact_windows)


def plan_cache_key(clients, servers, timebase: Timebase, horizon_s: float, **kw) -> str:
    """SHA-256 over everything a plan depends on (nodes, start, horizon, options, code version)."""
    bound = _WINDOWS_SIGNATURE.bind(clients, servers, timebase, horizon_s, **kw)
    bound.apply_defaults()
    options = {  # memory_mb changes how, not what: not in the key
        k: v
        for k, v in bound.arguments.items()
        if k not in ("clients", "servers", "timebase", "memory_mb")
    }
    return cache_key(
        clients, servers, timebase.start_utc.isoformat(), options, CONTACTS_CODE_VERSION
    )


def compute_contact_plan(
    clients, servers, timebase: Timebase, horizon_s: float, *, cache_dir=None, **kw
) -> ContactPlan:
    """:func:`contact_windows` wrapped in a :class:`ContactPlan`, with an optional disk cache.

    The cache entry ``<cache_dir>/contacts-<sha256>.npz`` is keyed by
    :func:`plan_cache_key`; missing or corrupt entries are recomputed.
    """
    clients, servers = list(clients), list(servers)
    if cache_dir is None:
        df = contact_windows(clients, servers, timebase, horizon_s, **kw)
        return ContactPlan(df, clients, servers, timebase, horizon_s)
    key = plan_cache_key(clients, servers, timebase, horizon_s, **kw)
    path = Path(cache_dir) / f"contacts-{key}.npz"
    df = load_windows(path, key) if path.exists() else None
    if df is not None:
        return ContactPlan(df, clients, servers, timebase, horizon_s, from_cache=True)
    df = contact_windows(clients, servers, timebase, horizon_s, **kw)
    save_windows(path, key, df)
    return ContactPlan(df, clients, servers, timebase, horizon_s)
