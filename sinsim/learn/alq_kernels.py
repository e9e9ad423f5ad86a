"""The per-element passes of ALQ's training steps over the compact code form of the bases.

A quantized group with ``I`` slots stores, per weight, one pattern *code* (uint8, bit i set
<=> beta_i = +1) instead of ``I`` int8 signs. With the group's ``K = 2^I`` levels
``L[c] = sum_i mu_i alpha_i s_i(c)`` every per-step quantity becomes one pass over the weights
plus work on ``[G, K]`` tables:

- the weights: ``w_hat[g, j] = L[g, code[g, j]]`` (`expand`);
- the chain rule into alpha: ``B^T x = H(x) S`` with the per-group histogram
  ``H(x)[g, c] = sum_{j: code = c} x[g, j]`` (`histogram`) and the sign matrix ``S [K, I]``;
- the weighted normal equations ``B D B^T = H(D) (S (x) S)`` and ``B D t = H(D t) S``;
- the nearest level of every element (`nearest_codes`): a search among the sorted levels'
  midpoints, fused with the three histograms a basis step needs.

Two implementations with the same results: numba kernels on the CPU (a branch-free binary
search: the level search is ~8x faster than ``torch.searchsorted`` there), and torch
operations for other devices or when numba is not installed.
"""

from __future__ import annotations

import math

import torch

from sinsim.paths import point_numba_cache

point_numba_cache()  # numba's cache in sinsim's cache directory, never the package's

try:  # the CPU fast path; everything also works (slower) without it
    import numba
    import numpy as np
except ImportError:  # pragma: no cover - numba is a dependency, the fallback is for odd installs
    numba = None


def use_numba(t: torch.Tensor) -> bool:
    return numba is not None and t.device.type == "cpu"


# --------------------------------------------------------------------------------------------
# torch versions (any device; the reference the kernels are tested against)
# --------------------------------------------------------------------------------------------

def _flat_index(codes: torch.Tensor, K: int) -> torch.Tensor:
    G = codes.shape[0]
    return (codes.long() + torch.arange(G, device=codes.device).unsqueeze(1) * K).flatten()


def histogram_torch(codes: torch.Tensor, x: torch.Tensor, K: int) -> torch.Tensor:
    G = codes.shape[0]
    out = torch.zeros(G * K, dtype=torch.float64, device=codes.device)
    out.index_add_(0, _flat_index(codes, K), x.flatten().to(torch.float64))
    return out.view(G, K)


def nearest_codes_torch(target: torch.Tensor, mid: torch.Tensor, perm: torch.Tensor
                        ) -> torch.Tensor:
    """``perm[g, i]``: the code of the i-th smallest level; ``mid [G, K]``: the midpoints of
    consecutive sorted levels, padded with +inf (a tie goes to the lower level)."""
    pos = torch.searchsorted(mid[:, :-1].contiguous(), target.contiguous())
    return perm.gather(1, pos).to(torch.uint8)


# --------------------------------------------------------------------------------------------
# numba kernels (CPU)
# --------------------------------------------------------------------------------------------

if numba is not None:

    @numba.njit(cache=True, nogil=True)
    def _nearest(target, mid, perm, codes):  # pragma: no cover
        # Branch-free binary search over 256 midpoints (padded with +inf; I_max <= 8), written
        # out so that the compiler emits conditional moves: a loop over the steps compiles to
        # branches that mispredict on every other element and runs 5x slower.
        G, n = target.shape
        for g in range(G):
            m = mid[g]
            for j in range(n):
                t = target[g, j]
                i = 128 * (m[127] < t)
                i += 64 * (m[i + 63] < t)
                i += 32 * (m[i + 31] < t)
                i += 16 * (m[i + 15] < t)
                i += 8 * (m[i + 7] < t)
                i += 4 * (m[i + 3] < t)
                i += 2 * (m[i + 1] < t)
                i += m[i] < t
                codes[g, j] = perm[g, i]

    @numba.njit(cache=True, nogil=True)
    def _search_tables(alpha, mask, mid, perm):  # pragma: no cover
        # The sorted levels of each group's valid patterns built slot by slot: the levels so
        # far, split by -alpha_i and +alpha_i, are two sorted lists merged in linear time (a
        # tie takes -alpha_i first). Then the midpoints (+inf past the last level).
        G, n_slots = alpha.shape
        lev = np.empty(256, dtype=np.float64)
        code = np.empty(256, dtype=np.uint8)
        new_lev = np.empty(256, dtype=np.float64)
        new_code = np.empty(256, dtype=np.uint8)
        for g in range(G):
            lev[0] = 0.0
            code[0] = 0
            n = 1
            for i in range(n_slots):
                if not mask[g, i]:
                    continue
                a = alpha[g, i]
                bit = np.uint8(1 << i)
                p = 0
                q = 0
                k = 0
                while p < n or q < n:
                    if q >= n or (p < n and lev[p] - a <= lev[q] + a):
                        new_lev[k] = lev[p] - a
                        new_code[k] = code[p]
                        p += 1
                    else:
                        new_lev[k] = lev[q] + a
                        new_code[k] = code[q] | bit
                        q += 1
                    k += 1
                n = k
                lev[:n] = new_lev[:n]
                code[:n] = new_code[:n]
            for k in range(n - 1):
                mid[g, k] = np.float32((lev[k] + lev[k + 1]) / 2)
            for k in range(n - 1, 256):
                mid[g, k] = np.inf
            for k in range(n):
                perm[g, k] = code[k]
            for k in range(n, 256):
                perm[g, k] = code[n - 1]

    @numba.njit(cache=True, nogil=True)
    def cholesky_group(M, rhs, idx, k, dependent, L, y, out):  # pragma: no cover
        # One group: Cholesky on the block of M [I, I] at the k valid slots ``idx[:k]``, then
        # M alpha = rhs into ``out`` [I] (0 elsewhere). Returns False where a pivot is below
        # ``dependent`` times its diagonal (a basis in the span of the others) or the solution
        # is not finite: the caller then takes the pseudo-inverse. ``L`` [I, I], ``y`` [I]:
        # scratch.
        for i in range(out.shape[0]):
            out[i] = 0.0
        for a in range(k):
            for b in range(a + 1):
                acc = M[idx[a], idx[b]]
                for c in range(b):
                    acc -= L[a, c] * L[b, c]
                if a == b:
                    if not (acc > dependent * M[idx[a], idx[a]]) or not (acc > 0.0):
                        return False
                    L[a, a] = np.sqrt(acc)
                else:
                    L[a, b] = acc / L[b, b]
        for a in range(k):  # L y = rhs, then L^T x = y
            acc = rhs[idx[a]]
            for c in range(a):
                acc -= L[a, c] * y[c]
            y[a] = acc / L[a, a]
        for a in range(k - 1, -1, -1):
            acc = y[a]
            for c in range(a + 1, k):
                acc -= L[c, a] * out[idx[c]]
            out[idx[a]] = acc / L[a, a]
        for a in range(k):  # noqa: SIM110 - numba compiles loops, not generators
            if not np.isfinite(out[idx[a]]):
                return False
        return True

    @numba.njit(cache=True, nogil=True)
    def _cholesky_solve(M, rhs, mask, dependent, out, bad):  # pragma: no cover
        # Per group, `cholesky_group` on the valid slots; ``bad`` flags the groups it refuses.
        G, n_slots = mask.shape
        L = np.zeros((n_slots, n_slots))
        idx = np.empty(n_slots, dtype=np.int64)
        y = np.empty(n_slots)
        for g in range(G):
            k = 0
            for i in range(n_slots):
                if mask[g, i]:
                    idx[k] = i
                    k += 1
            bad[g] = not cholesky_group(M[g], rhs[g], idx, k, dependent, L, y, out[g])

    @numba.njit(cache=True, nogil=True)
    def _histograms3(codes, D, target, m, hD, hDt, hm):  # pragma: no cover
        G, n = codes.shape
        for g in range(G):
            for j in range(n):
                c = codes[g, j]
                d = D[g, j]
                hD[g, c] += d
                hDt[g, c] += d * target[g, j]
                hm[g, c] += m[g, j]

    @numba.njit(cache=True, nogil=True)
    def _histogram(codes, x, out):  # pragma: no cover
        G, n = codes.shape
        for g in range(G):
            for j in range(n):
                out[g, codes[g, j]] += x[g, j]

    @numba.njit(cache=True, nogil=True)
    def _expand(levels, codes, out):  # pragma: no cover
        G, n = codes.shape
        for g in range(G):
            for j in range(n):
                out[g, j] = levels[g, codes[g, j]]


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


# --------------------------------------------------------------------------------------------
# the entry points
# --------------------------------------------------------------------------------------------

def cholesky_solve(M: torch.Tensor, rhs: torch.Tensor, mask: torch.Tensor, dependent: float
                   ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per group, the solution of ``M alpha = rhs`` on the valid slots (float64 [G, I], 0 in
    invalid slots) by Cholesky, and which groups need the pseudo-inverse instead (bool [G]);
    None where the kernels do not apply (the caller solves with torch)."""
    if not use_numba(M):
        return None
    G, n_slots = mask.shape
    out = np.empty((G, n_slots), dtype=np.float64)
    bad = np.empty(G, dtype=np.bool_)
    _cholesky_solve(_np(M), _np(rhs.reshape(G, n_slots)), _np(mask), dependent, out, bad)
    return torch.from_numpy(out), torch.from_numpy(bad)


def histogram(codes: torch.Tensor, x: torch.Tensor, K: int) -> torch.Tensor:
    """``H[g, c] = sum of x[g, j] over the elements j whose code is c``, float64 [G, K]."""
    if not use_numba(codes):
        return histogram_torch(codes, x, K)
    out = np.zeros((codes.shape[0], K), dtype=np.float64)
    _histogram(_np(codes), _np(x), out)
    return torch.from_numpy(out)


def expand(levels: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """``w[g, j] = levels[g, codes[g, j]]``, in the levels' dtype [G, n]."""
    if not use_numba(codes):
        return levels.gather(1, codes.long())
    out = np.empty(tuple(codes.shape), dtype=_np(levels).dtype)
    _expand(_np(levels), _np(codes), out)
    return torch.from_numpy(out)


def search_tables_torch(alpha: torch.Tensor, mask: torch.Tensor, S: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The midpoints between each group's sorted valid levels (float32 [G, K], +inf past the
    last) and the code of each sorted level (int64 [G, K]); ``S`` float64 [K, n_slots] signs."""
    n_slots = mask.shape[1]
    K = 1 << n_slots
    shifts = torch.arange(n_slots, device=mask.device)
    invalid = ((~mask).to(torch.long) << shifts).sum(1, keepdim=True)
    usable = (torch.arange(K, device=mask.device) & invalid) == 0
    a = torch.where(mask, alpha, torch.zeros_like(alpha)).to(torch.float64)
    lv = torch.where(usable, a @ S.T, torch.full((), math.inf, dtype=torch.float64))
    lv, perm = torch.sort(lv, dim=1, stable=True)
    mid = torch.cat([(lv[:, 1:] + lv[:, :-1]) / 2, torch.full_like(lv[:, :1], math.inf)], 1)
    return mid.to(torch.float32), perm


def nearest_codes(target: torch.Tensor, D: torch.Tensor, m: torch.Tensor, alpha: torch.Tensor,
                  mask: torch.Tensor, S: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The code of the level nearest to every ``target`` element among the group's valid
    patterns (a tie goes to the lower level), and the histograms of ``D``, ``D * target`` and
    ``m`` by those codes (float64 [G, K] each)."""
    K = S.shape[0]
    if not use_numba(target):
        mid, perm = search_tables_torch(alpha, mask, S)
        codes = nearest_codes_torch(target, mid, perm)
        return (codes, histogram_torch(codes, D, K), histogram_torch(codes, D * target, K),
                histogram_torch(codes, m, K))
    G, n = target.shape
    mid = np.empty((G, _SEARCH), dtype=np.float32)
    perm = np.empty((G, _SEARCH), dtype=np.uint8)
    _search_tables(_np(alpha.to(torch.float64)), _np(mask), mid, perm)
    codes = np.empty((G, n), dtype=np.uint8)
    t = _np(target)
    _nearest(t, mid, perm, codes)
    hists = [np.zeros((G, K), dtype=np.float64) for _ in range(3)]
    _histograms3(codes, _np(D), t, _np(m), *hists)
    return (torch.from_numpy(codes), *(torch.from_numpy(h) for h in hists))


_SEARCH = 256  # the kernel's search width: 2^I_max for I_max <= 8
