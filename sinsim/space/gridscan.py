"""The grid phase of the contact search (steps 1-2 of :mod:`sinsim.space.contacts`): the
time grid, the brackets of window edges and near misses found on it, and their refinement.

Split out of ``contacts.py`` to keep modules small; pure numpy, no state.
"""

from __future__ import annotations

import math

import numpy as np

from .refine import refine_extrema
from .visibility import (
    SPEED_SLACK,
    PairSet,
    hermite_coeffs,
    hermite_extremum,
    hermite_margin,
    metric,
)

GRID_CHUNK_ELEMENTS = 1_000_000  # pair x time samples per vectorised chunk (bounds memory)


def _time_grid(horizon_s: float, step_s: float) -> np.ndarray:
    n = int(math.floor(horizon_s / step_s))
    grid = np.arange(n + 1) * step_s
    if horizon_s - grid[-1] > 1e-9 * max(1.0, horizon_s):
        grid = np.append(grid, horizon_s)
    else:
        grid[-1] = horizon_s
    return grid


_BRACKET_FIELDS = ("k", "a", "b", "fa", "fb", "da", "db", "sca", "scb", "spa", "spb")


def _grid_phase(ps: PairSet, pos, vel, grid, need_peak):
    """Scan the grid; return f at both ends of the horizon and the brackets to refine.

    ``f`` is computed for every pair and sample; ``f'`` only at the ends of
    intervals that can matter: those touching visibility, and near misses
    allowed by a Lipschitz bound (a station pair's ``|f'|`` is at most
    ``v / range`` and the range exceeds the mask range while ``f < 0``; for
    other pairs ``|f'| <= v_a + v_b``).
    """
    n_t = grid.size
    dt = np.diff(grid)
    X, Y, Z = pos
    speed = np.sqrt(vel[0] ** 2 + vel[1] ** 2 + vel[2] ** 2).max(axis=1) * SPEED_SLACK
    ps.set_geometry(np.sqrt(X * X + Y * Y + Z * Z).min(axis=1))
    rate_bound = np.where(
        ps.station, speed[ps.tgt] / np.maximum(ps.d_mask, 1.0), speed[ps.obs] + speed[ps.tgt]
    )
    moving = ps.moving()
    out = {key: [] for key in ("edge", "bump", "dip", "peak")}
    f_first = np.empty(len(ps))
    f_last = np.empty(len(ps))
    order = np.lexsort((ps.obs, ~ps.station))
    chunk = max(1, GRID_CHUNK_ELEMENTS // n_t)
    for lo in range(0, len(ps), chunk):
        ks = order[lo : lo + chunk]
        o, g = ps.obs[ks], ps.tgt[ks]
        if np.all(ps.station[ks]) and not np.any(moving[o]):
            up = ps.up[ks]
            dx, dy, dz = X[g] - X[o, :1], Y[g] - Y[o, :1], Z[g] - Z[o, :1]
            f = dx * up[:, 0:1]
            f += dy * up[:, 1:2]
            f += dz * up[:, 2:3]
            dx *= dx
            dy *= dy
            dx += dy
            dz *= dz
            dx += dz
            f /= np.sqrt(dx, out=dx)
            f -= ps.sin_mask[ks][:, None]
            del dx, dy, dz
        else:
            pa, va = np.moveaxis(pos[:, o], 0, -1), np.moveaxis(vel[:, o], 0, -1)
            pb, vb = np.moveaxis(pos[:, g], 0, -1), np.moveaxis(vel[:, g], 0, -1)
            f = metric(ps, ks[:, None], pa, va, pb, vb)[0]
        f_first[ks], f_last[ks] = f[:, 0], f[:, -1]
        vis = f >= 0
        va_, vb_ = vis[:, :-1], vis[:, 1:]
        cand = va_ | vb_ | (f[:, :-1] + f[:, 1:] + dt[None, :] * rate_bound[ks][:, None] >= 0)
        i, j = np.nonzero(cand)
        if not i.size:
            continue
        # f' (and range, relative speed) at both ends of the candidate intervals only
        kk = np.concatenate([ks[i], ks[i]])
        jj = np.concatenate([j, j + 1])
        ii = np.concatenate([i, i])
        oo, gg = o[ii], g[ii]
        fv, fdv, scv, spv = metric(
            ps, kk, pos[:, oo, jj].T, vel[:, oo, jj].T, pos[:, gg, jj].T, vel[:, gg, jj].T
        )
        m = i.size
        item = dict(
            k=ks[i],
            a=grid[j],
            b=grid[j + 1],
            fa=f[i, j],
            fb=f[i, j + 1],
            da=fdv[:m],
            db=fdv[m:],
            sca=scv[:m],
            scb=scv[m:],
            spa=spv[:m],
            spb=spv[m:],
        )
        vis_a, vis_b = item["fa"] >= 0, item["fb"] >= 0
        rise = (item["da"] > 0) & (item["db"] <= 0)
        fall = (item["da"] < 0) & (item["db"] >= 0)
        masks = {
            "edge": vis_a != vis_b,
            "bump": ~vis_a & ~vis_b & rise,
            "dip": vis_a & vis_b & fall,
            "peak": (vis_a | vis_b) & rise & need_peak[item["k"]],
        }
        for key, mask in masks.items():
            sel = {name: v[mask] for name, v in item.items()}
            if key in ("bump", "dip") and sel["k"].size:
                # keep only the near misses the Hermite model (+ margin) cannot rule out
                sense = 1 if key == "bump" else -1
                w = sel["b"] - sel["a"]
                _, p_ext = hermite_extremum(
                    hermite_coeffs(w, sel["fa"], sel["fb"], sel["da"], sel["db"]), sense
                )
                marg = hermite_margin(
                    ps, sel["k"], w, sel["sca"], sel["scb"], sel["spa"], sel["spb"]
                )
                keep = sense * p_ext + marg >= 0
                sel = {name: v[keep] for name, v in sel.items()}
            out[key].append(sel)
    merged = {}
    for key, items in out.items():
        merged[key] = {
            name: (
                np.concatenate([it[name] for it in items])
                if items
                else np.zeros(0, dtype=np.intp if name == "k" else float)
            )
            for name in _BRACKET_FIELDS
        }
    return f_first, f_last, merged


def _near_misses(ev, br, sense, tol_s):
    """Refine near-miss brackets; return (edge brackets, found peaks (k, t, f))."""
    args = [br[n] for n in _BRACKET_FIELDS]
    t_ext, f_ext, t_sp, f_sp, d_sp = refine_extrema(
        ev, *args, sense=sense, tol_s=tol_s, need_cross=True
    )
    hit = ~np.isnan(t_sp)
    k, a, b = br["k"][hit], br["a"][hit], br["b"][hit]
    edges = dict(
        k=np.concatenate([k, k]),
        a=np.concatenate([a, t_sp[hit]]),
        b=np.concatenate([t_sp[hit], b]),
        fa=np.concatenate([br["fa"][hit], f_sp[hit]]),
        fb=np.concatenate([f_sp[hit], br["fb"][hit]]),
        da=np.concatenate([br["da"][hit], d_sp[hit]]),
        db=np.concatenate([d_sp[hit], br["db"][hit]]),
    )
    return edges, (k, t_ext[hit], f_ext[hit])
