"""ALQ's per-step work on a layer's weights as one pass on the CPU (numba).

A training step of the ALQ phases touches every weight of a quantized layer several times: the
AMSGrad moments (m, v, v-bar), the Adam target ``w* = w - P/D``, the nearest level of every
element, three histograms for the normal equations, the sign fix and the write-back of w-hat.
As separate torch operations that is ~25 calls and a dozen passes over the layer a step, which
at the seed's batch of 10 cost more than the forward and backward pass themselves
(``bench/alq_epoch.py``). Here each of those becomes one loop over a group's weights while
they sit in cache:

- `ams_requantize` (basis and STE steps, spec sections 3 and 5): the moment update, the
  target, the nearest level among the group's sorted valid levels (a branch-free binary search
  of depth I_g: the group's own width, not I_max), and the histograms ``H(D)``, ``H(D w*)``,
  ``H(m)`` by the new codes, plus the row sums of v and v-bar (the alpha moments);
- `ams_histogram` (pruning and coordinate steps, spec sections 2 and 4): the moment update and
  the histogram ``H(g)`` of the gradient by the current codes (the chain rule into alpha);
- `flip_expand`: the sign fix (``code ^= flip``) and ``w_hat = L[code]`` written straight into
  the parameter's memory.

The arithmetic is the spec's, elementwise in float32 as torch does it and the histograms in
float64 in element order as `sinsim.learn.alq_kernels` does; the small per-group algebra
(normal equations, Cholesky, moments of alpha) stays where it was (`alq_train._Layer`). Results
equal the torch formulas up to float32 rounding of the moment arithmetic
(``tests/test_alq_fused.py`` checks them against the dense formulas of ``docs/alq.md``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sinsim.learn.alq_kernels import numba, use_numba

if numba is not None:
    from sinsim.learn.alq_kernels import cholesky_group

__all__ = ["available", "SearchCache", "basis_step", "ams_histogram", "flip_expand"]


def available(t: torch.Tensor) -> bool:
    """Whether the fused kernels run for tensors like ``t`` (numba and the CPU)."""
    return use_numba(t)


if numba is not None:

    @numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
    def _ams(g, m, v, vbar, j, b1, ob1, b2, ob2):  # pragma: no cover
        # AMSGrad moment update of one element (spec section 0), float32 as torch: m*b1 +
        # g*(1-b1); v*b2 + g*g*(1-b2); v-bar = max(v-bar, v)
        mj = m[j] * b1 + g * ob1
        vj = v[j] * b2 + g * g * ob2
        vb = vbar[j]
        if vj > vb:
            vb = vj
        m[j] = mj
        v[j] = vj
        vbar[j] = vb
        return mj, vj, vb

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _group_levels(alpha, mask, lev, code, lev2, code2):  # pragma: no cover
        # The sorted levels of a group's valid patterns, built slot by slot: the levels so far
        # split by -alpha_i and +alpha_i are two sorted lists, merged in linear time (a tie
        # takes -alpha_i first, as `alq_kernels._search_tables`), without branches: each list
        # ends in +inf. The two buffer pairs take turns; returns the number of levels and
        # which pair holds them (0: lev/code, 1: lev2/code2). Buffers: 2^I_max + 1 long.
        lev[0] = 0.0
        lev[1] = np.inf
        code[0] = 0
        n = 1
        turn = 0
        for i in range(alpha.shape[0]):
            if not mask[i]:
                continue
            a = alpha[i]
            bit = np.uint8(1 << i)
            src, src_c, dst, dst_c = (lev, code, lev2, code2) if turn == 0 else \
                (lev2, code2, lev, code)
            p = 0
            q = 0
            for k in range(2 * n):
                lo = src[p] - a
                hi = src[q] + a
                take = lo <= hi
                dst[k] = lo if take else hi
                dst_c[k] = src_c[p] if take else src_c[q] | bit
                p += take
                q += 1 - take
            n *= 2
            dst[n] = np.inf
            turn = 1 - turn
        return n, turn

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _levels_by_code(alpha, idx, k, T, sub):  # pragma: no cover
        # T[c] = the level of every code c over the k valid slots idx[:k], computed as the
        # merge of `_group_levels` computes it (+-alpha_i added slot by slot from 0, so the
        # same float64 values); sub[:2^k] lists the codes.
        T[0] = 0.0
        sub[0] = 0
        size = 1
        for a in range(k):
            i = idx[a]
            bit = np.uint8(1 << i)
            al = alpha[i]
            for r in range(size):
                c = sub[r]
                T[c | bit] = T[c] + al
                T[c] = T[c] - al
                sub[size + r] = c | bit
            size *= 2
        return size

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _fwht(h, bits):  # pragma: no cover
        # In place on both columns of h [2^I, 2], over the bit positions set in ``bits`` only:
        # h[u] <- sum_c h[c] (-1)^popcount(c & u) for every u within ``bits``, given h[c] = 0
        # for codes c outside them (a stage over an unused bit would only copy).
        W = h.shape[0]
        step = 1
        while step < W:
            if bits & step:
                for j in range(W):
                    if not j & step:
                        x0, x1 = h[j, 0], h[j, 1]
                        y0, y1 = h[j + step, 0], h[j + step, 1]
                        h[j, 0] = x0 + y0
                        h[j, 1] = x1 + y1
                        h[j + step, 0] = x0 - y0
                        h[j + step, 1] = x1 - y1
            step *= 2

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _basis_step(grad, w, m, v, vbar, b1, ob1, b2, ob2, c1, c2, eps, latent, alpha, mask,
                    codes, out, dependent, bad, M_bad, rhs_bad, order, order_bits, rank
                    ):  # pragma: no cover
        G, n = grad.shape
        n_slots = alpha.shape[1]
        W = 1 << n_slots  # every pattern of I_max slots
        lev = np.empty(W + 1, dtype=np.float64)
        code = np.empty(W + 1, dtype=np.uint8)
        lev2 = np.empty(W + 1, dtype=np.float64)
        code2 = np.empty(W + 1, dtype=np.uint8)
        T = np.empty(W, dtype=np.float64)
        sub = np.empty(W, dtype=np.uint8)
        mid = np.empty(W, dtype=np.float32)
        h = np.zeros((W, 2), dtype=np.float64)  # the histograms H(D), H(D w*) by code
        level32 = np.empty(W, dtype=np.float32)
        t_buf = np.empty(n, dtype=np.float32)
        d_buf = np.empty(n, dtype=np.float32)
        M = np.zeros((n_slots, n_slots))
        rhs = np.zeros(n_slots)
        sol = np.zeros(n_slots)
        L = np.zeros((n_slots, n_slots))
        y = np.zeros(n_slots)
        idx = np.empty(n_slots, dtype=np.int64)
        for g in range(G):
            valid = 0
            k = 0
            for i in range(n_slots):
                if mask[g, i]:
                    valid |= 1 << i
                    idx[k] = i
                    k += 1
            # 1. the sorted valid levels of the group's slots, their midpoints (+inf past the
            # last) and each code's rank among them. The order of the last step (``order``,
            # kept by the caller) is usually nearly right: an insertion sort of it by the new
            # levels costs a few swaps where the merge costs 2^(k+1) branch-free steps. Equal
            # levels (where the merge's tie rule decides the order) take the merge.
            n_lev = _levels_by_code(alpha[g], idx, k, T, sub)
            cd, rk = order[g], rank[g]
            ordered = order_bits[g] == valid
            if ordered:
                for r in range(1, n_lev):
                    c = cd[r]
                    x = T[c]
                    q = r - 1
                    while q >= 0 and T[cd[q]] > x:
                        cd[q + 1] = cd[q]
                        q -= 1
                    cd[q + 1] = c
                    if q >= 0 and T[cd[q]] == x:
                        ordered = False
                        break
            if ordered:
                for r in range(n_lev - 1):
                    mid[r] = np.float32((T[cd[r]] + T[cd[r + 1]]) / 2)
                for r in range(n_lev):
                    rk[cd[r]] = r
            if not ordered:
                n_lev, turn = _group_levels(alpha[g], mask[g], lev, code, lev2, code2)
                lv, cs = (lev, code) if turn == 0 else (lev2, code2)
                for r in range(n_lev - 1):
                    mid[r] = np.float32((lv[r] + lv[r + 1]) / 2)
                for r in range(n_lev):
                    cd[r] = cs[r]
                    rk[cs[r]] = r
                order_bits[g] = valid
            mid[n_lev - 1] = np.inf
            # 2. the w-domain AMSGrad step and the target w* (a loop the compiler vectorises)
            gg, wg, mg, vg, vbg, cg = grad[g], w[g], m[g], v[g], vbar[g], codes[g]
            for j in range(n):
                x = gg[j]
                mj = mg[j] * b1 + x * ob1
                vj = vg[j] * b2 + x * x * ob2
                vb = max(vbg[j], vj)
                mg[j] = mj
                vg[j] = vj
                vbg[j] = vb
                d = (np.sqrt(vb) + eps) / c2
                d_buf[j] = d
                t_buf[j] = wg[j] - (mj * c1) / d
            if latent:
                for j in range(n):
                    wg[j] = t_buf[j]
            # 3. the nearest level of every target: the number of midpoints below it, found by
            # walking from the element's level now (w_hat = L[code], which a step rarely moves
            # far): the binary search's answer (the midpoints are sorted) in ~2 compares. With
            # the histograms H(D) and H(D w*) of the new codes.
            for r in range(n_lev):
                h[cd[r], 0] = 0.0
                h[cd[r], 1] = 0.0
            for j in range(n):
                t = t_buf[j]
                i = rk[cg[j] & valid]
                while mid[i] < t:
                    i += 1
                while i > 0 and not mid[i - 1] < t:
                    i -= 1
                c = cd[i]
                cg[j] = c
                d = d_buf[j]
                h[c, 0] += d
                h[c, 1] += d * t
            # 4. the D-weighted normal equations B D B^T alpha = B D w* on the valid slots:
            # with S_ci = +-1, (B D B^T)_ab = sum_c H(D)_c s_a(c) s_b(c), a Walsh-Hadamard
            # coefficient of H(D), and (B D w*)_a = -(WHT of H(D w*)) at the single bit a
            _fwht(h, valid)
            for a in range(k):
                ba = 1 << idx[a]
                rhs[idx[a]] = -h[ba, 1]
                M[idx[a], idx[a]] = h[0, 0]
                for b in range(a):
                    M[idx[a], idx[b]] = M[idx[b], idx[a]] = h[ba | (1 << idx[b]), 0]
            if not cholesky_group(M, rhs, idx, k, dependent, L, y, sol):
                bad[g] = True  # the caller takes the pseudo-inverse, flips and writes
                for a in range(n_slots):
                    rhs_bad[g, a] = rhs[a]
                    for b in range(n_slots):
                        M_bad[g, a, b] = M[a, b]
                continue
            # 5. the sign fix (alpha >= 0, the flipped slots' bases negated) and w_hat
            flip = 0
            for a in range(k):
                i = idx[a]
                a32 = np.float32(sol[i])
                if a32 < 0:
                    flip |= 1 << i
                alpha[g, i] = abs(a32)
            # every valid code's level with the new coordinates
            _levels_by_code(alpha[g], idx, k, T, sub)
            for r in range(n_lev):
                level32[sub[r]] = np.float32(T[sub[r]])
            og = out[g]
            for j in range(n):
                c = cg[j] ^ flip
                cg[j] = c
                og[j] = level32[c]

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _ams_histogram(grad, m, v, vbar, b1, ob1, b2, ob2, codes, hg):  # pragma: no cover
        G, n = grad.shape
        for g in range(G):
            gg, mg, vg, vbg, cg, hgg = grad[g], m[g], v[g], vbar[g], codes[g], hg[g]
            for j in range(n):
                x = gg[j]
                _ams(x, mg, vg, vbg, j, b1, ob1, b2, ob2)
                hgg[cg[j]] += x

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _flip_expand(codes, flip, levels, out):  # pragma: no cover
        G, n = codes.shape
        for g in range(G):
            f = flip[g]
            cg, lg, og = codes[g], levels[g], out[g]
            if f == 0:
                for j in range(n):
                    og[j] = lg[cg[j]]
            else:
                for j in range(n):
                    c = cg[j] ^ f
                    cg[j] = c
                    og[j] = lg[c]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _consts(ams, lr: float) -> tuple:
    """The scalars of an AMSGrad step at the state's next t, float32 as the tensors."""
    b1, b2 = ams.betas
    t = ams.t + 1
    f = np.float32
    return (f(b1), f(1 - b1), f(b2), f(1 - b2), f(lr / (1 - b1 ** t)),
            f(math.sqrt(1 - b2 ** t)), f(ams.eps))


class SearchCache:
    """A layer's sorted level order between basis steps (per group: the codes in ascending
    level order, each code's rank, and the valid slots they were built for; -1: none yet)."""

    def __init__(self, n_groups: int, i_max: int):
        self.order = np.zeros((n_groups, 1 << i_max), dtype=np.uint8)
        self.rank = np.zeros((n_groups, 1 << i_max), dtype=np.uint8)
        self.order_bits = np.full(n_groups, -1, dtype=np.int64)


def basis_step(ams, grad: torch.Tensor, w: torch.Tensor, lr: float, latent: bool,
               alpha: torch.Tensor, mask: torch.Tensor, codes: torch.Tensor, out: torch.Tensor,
               dependent: float, cache: SearchCache
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """A basis step (spec section 3) or, with ``latent``, an STE step (section 5) of one
    layer, in place, on [G, n] views: the w-domain AMSGrad step of ``ams`` with ``grad`` (its
    moments and ``t``), the target ``w* = w - P/D`` (``latent``: ``w`` is the fp32 latent copy
    and takes the step), the nearest valid level of every target element (``codes``: the codes
    of w_hat now, where the search starts; then the new ones), the D-weighted least-squares
    coordinates (``alpha``, float32 [G, I]), the sign fix, and w_hat into ``out`` (float32,
    e.g. the parameter's memory; may be ``w`` itself).

    Groups whose bases came out (nearly) linearly dependent (a Cholesky pivot below
    ``dependent`` times its diagonal) are left with their old ``alpha`` and their new unflipped
    codes, and ``out`` unwritten: returns their mask (bool [G]) and normal equations M [G, I, I]
    and rhs [G, I] for the caller's pseudo-inverse, or None when there are none."""
    b1, ob1, b2, ob2, c1, c2, eps = _consts(ams, lr)
    G, n_slots = alpha.shape
    bad = np.zeros(G, dtype=np.bool_)
    M_bad, rhs_bad = np.zeros((G, n_slots, n_slots)), np.zeros((G, n_slots))
    _basis_step(_np(grad.contiguous()), _np(w), _np(ams.m), _np(ams.v), _np(ams.vbar),
                b1, ob1, b2, ob2, c1, c2, eps, latent, _np(alpha), _np(mask), _np(codes),
                _np(out), dependent, bad, M_bad, rhs_bad, cache.order, cache.order_bits,
                cache.rank)
    ams.t += 1
    if not bad.any():
        return None
    return torch.from_numpy(bad), torch.from_numpy(M_bad[bad]), torch.from_numpy(rhs_bad[bad])


def ams_histogram(ams, grad: torch.Tensor, codes: torch.Tensor, K: int) -> torch.Tensor:
    """The moment update of ``ams`` with ``grad`` [G, n] (as `AMSGrad.update`) and the
    histogram ``H(grad)`` by ``codes`` (float64 [G, K])."""
    b1, ob1, b2, ob2, *_ = _consts(ams, 0.0)
    hg = np.zeros((grad.shape[0], K), dtype=np.float64)
    _ams_histogram(_np(grad.contiguous()), _np(ams.m), _np(ams.v), _np(ams.vbar),
                   b1, ob1, b2, ob2, _np(codes), hg)
    ams.t += 1
    return torch.from_numpy(hg)


def flip_expand(codes: torch.Tensor, flip: torch.Tensor, levels: torch.Tensor,
                out: torch.Tensor) -> None:
    """In place: ``codes ^= flip[:, None]`` (uint8 [G, n], ``flip`` uint8 [G]) and
    ``out[g, j] = levels[g, codes[g, j]]`` (``out`` float32 [G, n], e.g. a view of the
    parameter)."""
    _flip_expand(_np(codes), _np(flip.contiguous()), _np(levels.contiguous()), _np(out))
