"""Vectorised refinement of window edges, near misses and elevation maxima.

Every loop works on arrays of brackets at once and re-propagates only the
pairs concerned at the probe times (through :class:`~sinsim.space.visibility.Evaluator`).
"""

from __future__ import annotations

import numpy as np

from .visibility import Evaluator, hermite_coeffs, hermite_extremum, hermite_margin, hermite_root

POOR_PROGRESS = 0.75  # a pass keeping more than this fraction of its bracket forces a bisection
MAX_PASSES = 64  # safety stop; brackets shrink geometrically, so this is never reached in practice


# --------------------------------------------------------------------------- refinement loops
def refine_roots(ev: Evaluator, k, a, b, fa, fb, da, db, tol_s: float):
    """Roots of f in brackets [a, b] (f(a), f(b) on opposite sides of 0) to within ``tol_s``.

    Each pass evaluates f at the Hermite-predicted root +/- tol/2 (at the
    midpoint instead when the previous pass kept more than ``POOR_PROGRESS``
    of its bracket), keeps the sub-bracket with the sign change, and stops
    once it is ``<= tol_s`` wide.
    The returned root is the Hermite root of the final bracket.
    """
    k, a, b, fa, fb, da, db = (
        np.array(x, dtype=float if i else np.intp) for i, x in enumerate((k, a, b, fa, fb, da, db))
    )
    force_mid = np.zeros(k.size, dtype=bool)
    active = np.flatnonzero(b - a > tol_s)
    for _ in range(MAX_PASSES):
        if not active.size:
            break
        ka, aa, bb = k[active], a[active], b[active]
        w = bb - aa
        c = hermite_coeffs(w, fa[active], fb[active], da[active], db[active])
        guess = np.where(force_mid[active], 0.5, hermite_root(c))
        r = aa + guess * w
        half = 0.5 * tol_s
        r = np.clip(r, aa + half, bb - half)
        p1, p2 = r - half, r + half
        f, fd, _, _ = ev(np.concatenate([ka, ka]), np.concatenate([p1, p2]))
        n = active.size
        f1, f2, d1, d2 = f[:n], f[n:], fd[:n], fd[n:]
        va, v1, v2 = fa[active] >= 0, f1 >= 0, f2 >= 0
        in_left = va != v1
        in_mid = ~in_left & (v1 != v2)
        new_a = np.where(in_left, aa, np.where(in_mid, p1, p2))
        new_b = np.where(in_left, p1, np.where(in_mid, p2, bb))
        fa[active] = np.where(in_left, fa[active], np.where(in_mid, f1, f2))
        da[active] = np.where(in_left, da[active], np.where(in_mid, d1, d2))
        fb[active] = np.where(in_left, f1, np.where(in_mid, f2, fb[active]))
        db[active] = np.where(in_left, d1, np.where(in_mid, d2, db[active]))
        force_mid[active] = (new_b - new_a) > POOR_PROGRESS * w
        a[active], b[active] = new_a, new_b
        active = active[(new_b - new_a) > tol_s]
    c = hermite_coeffs(b - a, fa, fb, da, db)
    return a + hermite_root(c) * (b - a)


def refine_extrema(
    ev: Evaluator,
    k,
    a,
    b,
    fa,
    fb,
    da,
    db,
    sc_a,
    sc_b,
    sp_a,
    sp_b,
    sense: int,
    tol_s: float,
    need_cross: bool,
):
    """Extremum (max for ``sense=+1``, min for ``-1``) of f in brackets where f' changes sign.

    Each pass evaluates f at the Hermite-predicted extremum +/- tol/2 (or the
    midpoint after a pass with poor progress) and keeps the sub-bracket where
    f' changes sign, until it is ``<= tol_s`` wide.

    With ``need_cross`` (near-miss search) an item is dropped as soon as the
    Hermite model plus its error margin shows that f cannot reach the other
    side of zero (``f >= 0`` for a maximum, ``f < 0`` for a minimum).

    Returns ``(t_ext, f_ext, t_split, f_split, d_split)``: the extremum
    estimate, and the best evaluated point with its f and f' (NaN unless
    ``need_cross`` and a point on the other side of zero was found).
    """
    k = np.array(k, dtype=np.intp)
    a, b, fa, fb, da, db, sc_a, sc_b, sp_a, sp_b = (
        np.array(x, dtype=float) for x in (a, b, fa, fb, da, db, sc_a, sc_b, sp_a, sp_b)
    )
    n = k.size
    t_split = np.full(n, np.nan)
    f_split = np.full(n, np.nan)
    d_split = np.full(n, np.nan)
    reached = np.zeros(n, dtype=bool)
    force_mid = np.zeros(n, dtype=bool)
    half = 0.5 * tol_s
    active = np.arange(n)
    for _ in range(MAX_PASSES):
        if need_cross and active.size:
            w = b[active] - a[active]
            c = hermite_coeffs(w, fa[active], fb[active], da[active], db[active])
            _, p_ext = hermite_extremum(c, sense)
            marg = hermite_margin(
                ev.ps, k[active], w, sc_a[active], sc_b[active], sp_a[active], sp_b[active]
            )
            hopeless = ~reached[active] & (sense * p_ext + marg < 0)
            active = active[~hopeless]
        active = active[(b[active] - a[active]) > tol_s]
        if not active.size:
            break
        ka, aa, bb = k[active], a[active], b[active]
        w = bb - aa
        c = hermite_coeffs(w, fa[active], fb[active], da[active], db[active])
        s, _ = hermite_extremum(c, sense)
        r = np.clip(aa + np.where(force_mid[active], 0.5, s) * w, aa + half, bb - half)
        p1, p2 = r - half, r + half
        f, fd, sc, sp = ev(np.concatenate([ka, ka]), np.concatenate([p1, p2]))
        m = active.size
        f1, f2, d1, d2 = f[:m], f[m:], fd[:m], fd[m:]
        for p, fp, dp in ((p1, f1, d1), (p2, f2, d2)):
            better = np.isnan(f_split[active]) | (sense * fp > sense * f_split[active])
            t_split[active] = np.where(better, p, t_split[active])
            f_split[active] = np.where(better, fp, f_split[active])
            d_split[active] = np.where(better, dp, d_split[active])
        reached[active] = (f_split[active] >= 0) if sense > 0 else (f_split[active] < 0)
        up1, up2 = sense * d1 > 0, sense * d2 > 0  # still heading towards the extremum
        in_left = ~up1
        in_mid = up1 & ~up2
        for arr_a, arr_b, v1, v2 in (
            (a, b, p1, p2),
            (fa, fb, f1, f2),
            (da, db, d1, d2),
            (sc_a, sc_b, sc[:m], sc[m:]),
            (sp_a, sp_b, sp[:m], sp[m:]),
        ):
            old_a, old_b = arr_a[active], arr_b[active]
            arr_a[active] = np.where(in_left, old_a, np.where(in_mid, v1, v2))
            arr_b[active] = np.where(in_left, v1, np.where(in_mid, v2, old_b))
        force_mid[active] = (b[active] - a[active]) > POOR_PROGRESS * w
    w = b - a
    c = hermite_coeffs(w, fa, fb, da, db)
    s, p_ext = hermite_extremum(c, sense)
    t_ext = a + s * w
    best_end = np.where(sense * fa >= sense * fb, fa, fb)
    f_ext = np.where(sense * p_ext >= sense * best_end, p_ext, best_end)
    if need_cross:
        t_split[~reached] = np.nan
        f_split[~reached] = np.nan
        d_split[~reached] = np.nan
    return t_ext, f_ext, t_split, f_split, d_split


def refine_peaks(ev: Evaluator, k, a, b, fa, fb, da, db, tol_f: float = 1e-6, max_iter: int = 8):
    """Maximum value of f in brackets where f' goes from + to - (Newton-like, one probe per pass).

    Each pass probes the Hermite-predicted maximum, keeps the sub-bracket where
    f' changes sign, and stops once the Hermite model of the new bracket
    predicts less than ``tol_f`` above the best probed value.  Returns
    ``(t_peak, f_peak)``.
    """
    k = np.array(k, dtype=np.intp)
    a, b, fa, fb, da, db = (np.array(x, dtype=float) for x in (a, b, fa, fb, da, db))
    best_t = np.where(fa >= fb, a, b)
    best_f = np.maximum(fa, fb)
    pred_t, pred_f = best_t.copy(), best_f.copy()
    active = np.arange(k.size)
    for it in range(max_iter):
        if not active.size:
            break
        aa, bb = a[active], b[active]
        w = bb - aa
        c = hermite_coeffs(w, fa[active], fb[active], da[active], db[active])
        s, _ = hermite_extremum(c, 1)
        s = np.clip(s, 1e-3, 1 - 1e-3) if it < max_iter // 2 else np.full(s.shape, 0.5)
        r = aa + s * w
        f, fd, _, _ = ev(k[active], r)
        better = f > best_f[active]
        best_t[active] = np.where(better, r, best_t[active])
        best_f[active] = np.where(better, f, best_f[active])
        left = fd <= 0  # maximum in [a, r]
        b[active] = np.where(left, r, bb)
        fb[active] = np.where(left, f, fb[active])
        db[active] = np.where(left, fd, db[active])
        a[active] = np.where(left, aa, r)
        fa[active] = np.where(left, fa[active], f)
        da[active] = np.where(left, da[active], fd)
        w = b[active] - a[active]
        s2, p2 = hermite_extremum(
            hermite_coeffs(w, fa[active], fb[active], da[active], db[active]), 1
        )
        pred_t[active] = a[active] + s2 * w
        pred_f[active] = np.maximum(p2, best_f[active])
        active = active[(p2 - best_f[active] > tol_f) & (w > 1e-3)]
    use_pred = pred_f > best_f
    return np.where(use_pred, pred_t, best_t), np.maximum(pred_f, best_f)
