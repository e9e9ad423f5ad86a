"""ALQ's data-free pieces: structured sketching, the nearest-level basis step and the
least-squares coordinate refit (spec sections 1, 3 and 9 of ``docs/alq.md``).

Besides the dense ``B`` int8 ``[G, I_max, n]`` of `sinsim.learn.alq_layout`, bases are also held
in code form: one pattern code per weight (uint8 ``[G, n]``, bit i set <=> beta_i = +1), with the
tables `_sign_tables` of all sign patterns. The trainer (`sinsim.learn.alq_train`) shares these
helpers and the normal-equations solver `_solve_normal`.
"""

from __future__ import annotations

import torch

from sinsim.learn import alq_kernels
from sinsim.learn.alq_layout import GroupSpec, QLayer, QuantizedModel, canonical

__all__ = ["sketch", "refine", "nearest_bases", "refit_alpha", "sketch_model"]


# --------------------------------------------------------------------------------------------
# data-free pieces: sketching, the basis step, the coordinate refit
# --------------------------------------------------------------------------------------------

def sketch(w: torch.Tensor, i_max: int, bits: torch.Tensor | int | None = None,
           refine_passes: int = 0, stop_rel: float = 1e-6) -> QLayer:
    """Greedy residual binarization of every row of ``w`` [G, n] with a least-squares refit of
    all coordinates after each new basis ("structured sketching", spec section 1), then
    ``refine_passes`` alternating passes (nearest-level bases, LS coordinates; spec section 9),
    which never increase ||w - B alpha||^2.

    ``bits`` caps the slots per group (an int or an int tensor [G]; default ``i_max``); a group
    stops early once its residual is below ``stop_rel * ||w_g||^2``. The result is canonical.
    """
    G, n = w.shape
    dev = w.device
    cap = torch.full((G,), i_max, dtype=torch.long, device=dev) if bits is None else (
        torch.as_tensor(bits, dtype=torch.long, device=dev).expand(G).clamp(0, i_max))
    # in code form (one pattern code per weight, see the module docstring): the LS refit of
    # the slots so far comes from the histograms of 1 and of w by code, the residual from the
    # levels
    w64 = w.detach().to(torch.float64).contiguous()
    S, SS = _sign_tables(i_max, dev)
    ones = torch.ones_like(w64)
    codes = torch.zeros(G, n, dtype=torch.uint8, device=dev)
    alpha = torch.zeros(G, i_max, dtype=torch.float64, device=dev)
    mask = torch.zeros(G, i_max, dtype=torch.bool, device=dev)
    resid = w64.clone()
    norm2 = (w64 * w64).sum(1)
    for i in range(min(i_max, n)):
        active = (cap > i) & ((resid * resid).sum(1) >= stop_rel * norm2) & (norm2 > 0)
        if not bool(active.any()):
            break
        bit = ((resid >= 0).to(torch.uint8) << i) * active.unsqueeze(1).to(torch.uint8)
        codes = codes | bit
        mask[:, i] = active
        K = S.shape[0]
        M = (alq_kernels.histogram(codes, ones, K).to(dev) @ SS).view(G, i_max, i_max)
        rhs = (alq_kernels.histogram(codes, w64, K).to(dev) @ S).unsqueeze(-1)
        alpha = torch.where(active.unsqueeze(1), _solve_normal(M, rhs, mask), alpha)
        levels = torch.where(mask, alpha, torch.zeros_like(alpha)) @ S.T
        resid = w64 - alq_kernels.expand(levels, codes).to(dev)
    q = canonical(QLayer(_bases_of(codes, mask), alpha.to(torch.float32), mask))
    for _ in range(refine_passes):
        q = refine(q, w)
    return q


def refine(q: QLayer, w: torch.Tensor) -> QLayer:
    """One alternating pass on ||w - B alpha||^2: the optimal bases for the coordinates, then
    the optimal coordinates for those bases (each step can only lower the error)."""
    i_max = q.alpha.shape[1]
    S, SS = _sign_tables(i_max, w.device)
    w = w.detach().contiguous()
    ones = torch.ones_like(w)
    codes, counts, hw, _ = alq_kernels.nearest_codes(w, ones, ones, q.alpha, q.mask, S)
    M = (counts.to(w.device) @ SS).view(-1, i_max, i_max)
    alpha = _solve_normal(M, (hw.to(w.device) @ S).unsqueeze(-1), q.mask).to(torch.float32)
    return canonical(QLayer(_bases_of(codes.to(w.device), q.mask), alpha, q.mask))


def nearest_bases(alpha: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """For every element of every group, the sign pattern over the group's valid slots whose
    level sum_i s_i alpha_i is nearest to ``target`` (spec section 3: the problem separates by
    element). Only the 2^I_g valid patterns are enumerated; the levels are sorted and each
    element is placed by one binary search among the midpoints of consecutive levels (a tie
    goes to the lower level). Returns B int8 [G, I_max, n] (0 in invalid slots)."""
    G, i_max = alpha.shape
    n = target.shape[1]
    B = torch.zeros(G, i_max, n, dtype=torch.int8, device=alpha.device)
    widths = mask.sum(1)
    # valid slots first, in slot order
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    for k in torch.unique(widths).tolist():
        if k == 0:
            continue
        sel = widths == k
        every = bool(sel.all())  # one width for the whole layer: no gather / scatter of groups
        g = None if every else sel.nonzero().squeeze(1)
        slots = order[:, :k] if every else order[g, :k]                 # [Gk, k]
        a = (alpha if every else alpha[g]).gather(1, slots).to(torch.float64)
        levels, perm = torch.sort(a @ _sign_patterns(k, alpha.device).T, dim=1)  # [Gk, 2^k]
        mid = ((levels[:, 1:] + levels[:, :-1]) / 2).to(target.dtype).contiguous()
        t = target.contiguous() if every else target[g].contiguous()
        # bit j of the pattern index: the sign of slot j (k <= 8, so a byte holds it)
        pattern = perm.gather(1, torch.searchsorted(mid, t)).to(torch.uint8)
        shifts = torch.arange(k, dtype=torch.uint8, device=alpha.device).view(1, k, 1)
        signs = ((pattern.unsqueeze(1) >> shifts) & 1).to(torch.int8) * 2 - 1  # [Gk, k, n]
        index = slots.unsqueeze(-1).expand(-1, -1, n)
        if every:
            B.scatter_(1, index, signs)
        else:
            B[g] = torch.zeros(len(g), i_max, n, dtype=torch.int8,
                               device=alpha.device).scatter_(1, index, signs)
    return B


def refit_alpha(B: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                D: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinates minimising (B alpha - target)^T diag(D) (B alpha - target) per group over
    its valid slots (``D`` None: unweighted), float32 [G, I_max], 0 in invalid slots.

    The normal equations are formed in the target's precision and solved in float64 by
    Cholesky; groups whose bases became linearly dependent after a basis step fall back to
    the pseudo-inverse, which still gives the least-squares optimum."""
    return _lstsq_alpha(B, mask, target, D).to(torch.float32)


def _lstsq_alpha(B: torch.Tensor, mask: torch.Tensor, w: torch.Tensor,
                 D: torch.Tensor | None = None) -> torch.Tensor:
    Bf = B.to(w.dtype) * mask.unsqueeze(-1)
    BD = Bf if D is None else Bf * D.to(w.dtype).unsqueeze(1)
    M = (BD @ Bf.transpose(1, 2)).to(torch.float64)                    # [G, I, I]
    rhs = (BD @ w.unsqueeze(-1)).to(torch.float64)                      # [G, I, 1]
    return _solve_normal(M, rhs, mask)


def _solve_normal(M: torch.Tensor, rhs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """alpha from the normal equations M alpha = rhs (float64 [G, I, I] and [G, I, 1]) over
    each group's valid slots; float64 [G, I], 0 in invalid slots.

    Solved by Cholesky; a basis (nearly) in the span of the others leaves a pivot that is tiny
    against its own diagonal, and Cholesky then returns huge cancelling coordinates. Those
    groups, and failed factorisations, take the truncated pseudo-inverse: the least-squares
    optimum with the smallest coordinates."""
    keep = mask.to(torch.float64)
    fast = alq_kernels.cholesky_solve(M, rhs, mask, _DEPENDENT)
    if fast is not None:
        alpha, bad = fast
    else:
        M = M * keep.unsqueeze(1) * keep.unsqueeze(2) + torch.diag_embed(1 - keep)
        L, info = torch.linalg.cholesky_ex(M)
        alpha = torch.cholesky_solve(rhs * keep.unsqueeze(-1), L).squeeze(-1)
        pivot2 = torch.diagonal(L, dim1=1, dim2=2) ** 2
        diag = torch.diagonal(M, dim1=1, dim2=2)
        bad = (info != 0) | (pivot2 < _DEPENDENT * diag).any(1) | ~torch.isfinite(alpha).all(1)
    if bool(bad.any()):
        k = keep[bad]
        Mb = M[bad] * k.unsqueeze(1) * k.unsqueeze(2) + torch.diag_embed(1 - k)
        alpha[bad] = (torch.linalg.pinv(Mb, rtol=_DEPENDENT, hermitian=True)
                      @ (rhs[bad] * k.unsqueeze(-1))).squeeze(-1)
    return torch.where(mask, alpha, torch.zeros_like(alpha))


_DEPENDENT = 1e-9  # relative size of a pivot below which a basis counts as dependent


_PATTERNS: dict[tuple[int, str], torch.Tensor] = {}


def _sign_patterns(k: int, device: torch.device) -> torch.Tensor:
    """All 2^k sign patterns over k slots, float64 [2^k, k] (bit j of the index -> slot j)."""
    key = (k, str(device))
    if key not in _PATTERNS:
        s = torch.arange(2 ** k, device=device).unsqueeze(1)
        bits = (s >> torch.arange(k, device=device)) & 1
        _PATTERNS[key] = (2 * bits - 1).to(torch.float64)
    return _PATTERNS[key]


def _sign_tables(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The sign patterns S [2^k, k] and their pairwise products S (x) S [2^k, k*k] (float64):
    with the code histograms H, B^T x = H(x) S and B D B^T = H(D) (S (x) S)."""
    S = _sign_patterns(k, device)
    key = (-k, str(device))
    if key not in _PATTERNS:
        _PATTERNS[key] = (S.unsqueeze(2) * S.unsqueeze(1)).flatten(1)
    return S, _PATTERNS[key]


def sketch_model(state: dict[str, torch.Tensor], layout: tuple[GroupSpec, ...], i_max: int,
                 bits: dict[str, torch.Tensor] | int | None = None, refine_passes: int = 0
                 ) -> QuantizedModel:
    """Quantize every layout tensor of a full-precision state dict without data (spec section
    9); ``bits`` optionally caps the bit-width: one int for every group, or per layer a tensor
    of per-group caps."""
    names = {gs.name for gs in layout}
    layers = {gs.name: sketch(gs.to_groups(state[gs.name].detach().float()), i_max,
                              bits[gs.name] if isinstance(bits, dict) else bits, refine_passes)
              for gs in layout}
    others = {k: v.detach().float().clone() for k, v in state.items() if k not in names}
    return QuantizedModel(layout, layers, others)


# --------------------------------------------------------------------------------------------
# code form: one sign-pattern code per weight
# --------------------------------------------------------------------------------------------

def _codes_of(B: torch.Tensor) -> torch.Tensor:
    """Pattern codes uint8 [G, n] of dense bases int8 [G, I, n] (bit i <=> B[:, i] = +1)."""
    shifts = torch.arange(B.shape[1], device=B.device, dtype=torch.uint8).view(1, -1, 1)
    return ((B > 0).to(torch.uint8) << shifts).sum(1, dtype=torch.uint8)


def _bases_of(codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    shifts = torch.arange(mask.shape[1], device=codes.device, dtype=torch.uint8).view(1, -1, 1)
    signs = ((codes.unsqueeze(1) >> shifts) & 1).to(torch.int8) * 2 - 1
    return signs * mask.unsqueeze(-1).to(torch.int8)
