"""ALQ: adaptive loss-aware multi-bit quantization (Qu et al., CVPR 2020), in pure PyTorch.

A quantized weight tensor is split into groups (rows of a ``[G, n]`` view, see `GroupSpec`).
Each group g has ``I_max`` slots; slot i has a validity flag mu_gi, a binary basis
beta_gi in {-1,+1}^n and a coordinate alpha_gi, and the group's weights are

    w_hat_g = sum_i mu_gi * alpha_gi * beta_gi          (its bit-width I_g = sum_i mu_gi)

This module holds the math only (no clock, no wire format): the group layouts, the greedy
"structured sketching" initialisation with least-squares refits, the nearest-level basis step,
the (weighted) least-squares coordinate refit, AMSGrad moments in the w and alpha domains, and
the client phases (alpha-domain pruning, basis, coordinates, STE post-training). The exact spec
it follows is ``docs/alq.md`` (from ``shared/design/alq.md``), including the fixes of the
reference code's bugs listed there.

Tensors: ``B`` int8 ``[G, I_max, n]`` (+-1 in valid slots, 0 elsewhere), ``alpha`` float32
``[G, I_max]`` (0 in invalid slots), ``mask`` bool ``[G, I_max]``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch

from sinsim.learn import alq_kernels

STRUCTURES = ("kernelwise", "pixelwise", "channelwise", "subchannel")


# --------------------------------------------------------------------------------------------
# group layouts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupSpec:
    """How one weight tensor is cut into groups.

    ``kernelwise`` (conv): one k x k kernel per group, ``C_out * C_in`` groups of ``k_h * k_w``.
    ``pixelwise`` (conv): one spatial tap across the input channels, ``C_out * k_h * k_w``
    groups of ``C_in``. ``channelwise`` (conv): one output filter per group. ``subchannel``
    (fc, ``s`` slices): a contiguous 1/s slice of an output row, ``out * s`` groups of ``in / s``.
    """

    name: str
    shape: tuple[int, ...]
    structure: str
    slices: int = 1  # s of the subchannel structure

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"{self.name}: unknown group structure {self.structure!r}")
        if self.structure == "subchannel":
            if len(self.shape) != 2 or self.shape[1] % self.slices:
                raise ValueError(f"{self.name}: subchannel({self.slices}) needs a 2-D weight "
                                 f"whose input size divides by {self.slices}, got {self.shape}")
        elif len(self.shape) != 4:
            raise ValueError(f"{self.name}: {self.structure} needs a 4-D conv weight")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def group_size(self) -> int:
        s = self.shape
        return {"kernelwise": lambda: s[2] * s[3], "pixelwise": lambda: s[1],
                "channelwise": lambda: s[1] * s[2] * s[3],
                "subchannel": lambda: s[1] // self.slices}[self.structure]()

    @property
    def n_groups(self) -> int:
        return self.numel // self.group_size

    def to_groups(self, w: torch.Tensor) -> torch.Tensor:
        """``[G, n]`` view (a copy for ``pixelwise``) of a weight tensor."""
        if self.structure == "pixelwise":  # [O, I, kh, kw] -> [O, kh, kw, I]
            return w.permute(0, 2, 3, 1).reshape(self.n_groups, self.group_size)
        return w.reshape(self.n_groups, self.group_size)

    def from_groups(self, g: torch.Tensor) -> torch.Tensor:
        if self.structure == "pixelwise":
            o, i, kh, kw = self.shape
            return g.reshape(o, kh, kw, i).permute(0, 3, 1, 2).contiguous()
        return g.reshape(self.shape)


# Per model: the group structure of each quantized weight (from the ALQ authors' lenet5.py).
MODEL_STRUCTURES: dict[str, dict[str, tuple[str, int]]] = {
    "lenet5": {"conv1.weight": ("kernelwise", 1), "conv2.weight": ("kernelwise", 1),
               "fc1.weight": ("subchannel", 2), "fc2.weight": ("subchannel", 1)},
}


def model_layout(shapes: dict[str, tuple[int, ...]], model: str | None = None
                 ) -> tuple[GroupSpec, ...]:
    """The quantized tensors of a model, in state-dict order.

    Every parameter whose name contains ``weight`` and that has >= 2 dimensions is quantized
    (first conv and last fc included); biases stay fp32. Structures come from
    `MODEL_STRUCTURES` when the model is known, else: names with ``fc``/``classifier`` ->
    ``subchannel(1)``, other 2-D -> ``subchannel(1)``, 4-D -> ``kernelwise``.
    """
    known = MODEL_STRUCTURES.get(model or "", {})
    out = []
    for name, shape in shapes.items():
        if "weight" not in name or len(shape) < 2:
            continue
        structure, s = known.get(name, ("kernelwise", 1) if len(shape) == 4 else ("subchannel", 1))
        out.append(GroupSpec(name, tuple(shape), structure, s))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# quantized tensors
# --------------------------------------------------------------------------------------------

@dataclass
class QLayer:
    """One quantized weight tensor: ``B`` int8 [G, I_max, n], ``alpha`` float32 [G, I_max],
    ``mask`` bool [G, I_max]."""

    B: torch.Tensor
    alpha: torch.Tensor
    mask: torch.Tensor

    @property
    def widths(self) -> torch.Tensor:
        """Bit-width I_g of every group, int64 [G]."""
        return self.mask.sum(1)

    @property
    def i_max(self) -> int:
        return self.alpha.shape[1]

    def weights(self) -> torch.Tensor:
        """w_hat = B alpha per group, float32 [G, n]."""
        return reconstruct(self.B, self.alpha, self.mask)

    def clone(self) -> QLayer:
        return QLayer(self.B.clone(), self.alpha.clone(), self.mask.clone())


@dataclass
class QuantizedModel:
    """A model as it crosses a link: quantized layers by name, the rest fp32, in the order of
    the model spec."""

    layout: tuple[GroupSpec, ...]
    layers: dict[str, QLayer]
    others: dict[str, torch.Tensor]  # unquantized tensors (biases), fp32

    def avg_bits(self) -> float:
        """Sum_g n_g I_g / Sum_g n_g over every quantized group (the ALQ paper's bit-width:
        the binary bases only)."""
        num = sum(gs.group_size * int(self.layers[gs.name].widths.sum()) for gs in self.layout)
        return num / sum(gs.numel for gs in self.layout)

    def n_slots(self) -> int:
        return sum(int(q.mask.sum()) for q in self.layers.values())

    def state_dict(self, names: tuple[str, ...]) -> OrderedDict[str, torch.Tensor]:
        """The weights the network runs with, in state-dict order ``names``."""
        quant = {gs.name: gs.from_groups(self.layers[gs.name].weights()) for gs in self.layout}
        return OrderedDict((k, quant[k] if k in quant else self.others[k]) for k in names)


def reconstruct(B: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over valid slots of alpha_i beta_i, float32 [G, n]. Invalid slots hold alpha = 0 and
    B = 0, and are masked anyway, so they add exact zeros."""
    a = torch.where(mask, alpha, torch.zeros_like(alpha))
    return torch.bmm(a.unsqueeze(1), B.to(a.dtype)).squeeze(1)


def canonical(q: QLayer) -> QLayer:
    """The wire form of a layer: alpha >= 0 (a negative coordinate flips with its basis, which
    leaves the weights unchanged), zero coordinates dropped, valid slots first in ascending
    alpha. The weights of the result are equal to ``q``'s up to float summation order."""
    alpha, B = sign_fix(q.alpha, q.B)
    mask = q.mask & (alpha != 0)
    key = torch.where(mask, alpha, torch.full_like(alpha, math.inf))
    order = torch.sort(key, dim=1, stable=True).indices
    mask = mask.gather(1, order)
    alpha = torch.where(mask, alpha.gather(1, order), torch.zeros_like(alpha))
    B = B.gather(1, order.unsqueeze(-1).expand_as(B)) * mask.unsqueeze(-1).to(B.dtype)
    return QLayer(B.contiguous(), alpha.contiguous(), mask.contiguous())


def sign_fix(alpha: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Negate every negative coordinate together with its basis (both, unlike the reference
    code's lost flip of beta: spec section 10.2)."""
    neg = alpha < 0
    return alpha.abs(), torch.where(neg.unsqueeze(-1), -B, B)


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
    # in code form (one pattern code per weight, see `_Layer`): the LS refit of slots so far
    # comes from the histograms of 1 and of w by code, the residual from the levels
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
# training: AMSGrad moments and the client phases
# --------------------------------------------------------------------------------------------

class AMSGrad:
    """AMSGrad moments (spec section 0). ``step`` returns the pseudo-gradient
    P = lr m / (1 - b1^t) and the pseudo-Hessian D = (sqrt(vbar) + eps) / sqrt(1 - b2^t), so
    that P / D is the Adam step and D / lr acts as a diagonal Hessian."""

    def __init__(self, like: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.betas, self.eps = betas, eps
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.vbar = torch.zeros_like(like)
        self.t = 0

    def step(self, grad: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        self.update(grad)
        return self.moments(lr)

    def update(self, grad: torch.Tensor) -> None:
        """The moment updates of a step, without P and D (where they would go unused)."""
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        torch.maximum(self.vbar, self.v, out=self.vbar)

    def moments(self, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        b1, b2 = self.betas
        P = self.m * (lr / (1 - b1 ** self.t))
        D = (self.vbar.sqrt() + self.eps) / math.sqrt(1 - b2 ** self.t)
        return P, D


@dataclass(frozen=True)
class ALQConfig:
    """Hyper-parameters of the ALQ phases (defaults: the ALQ authors' LeNet-5 settings)."""

    i_max: int = 6
    lr: float = 1e-3              # basis, coordinate and STE steps (and the fp32 parameters)
    prune_lr: float = 1.2e-6      # lr of the pruning steps (the reference code's decayed lr)
    top_k: float = 0.005          # per-layer candidate fraction per pruning step
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class _Layer:
    """A quantized layer being trained: its slots in code form, and its w- and alpha-domain
    moments.

    The bases are kept as one pattern code per weight (``codes`` uint8 [G, n], bit i set <=>
    beta_i = +1; bits of invalid slots carry no meaning) rather than int8 B [G, I_max, n]:
    every step is then one pass over the weights plus work on the group's 2^I_max levels
    (`sinsim.learn.alq_kernels`). `B` gives the dense form."""

    def __init__(self, gs: GroupSpec, param: torch.nn.Parameter, q: QLayer, cfg: ALQConfig):
        self.gs, self.param = gs, param
        dev = param.device
        # own copies: the phases change them in place, the caller's model stays as it was
        self.alpha, self.mask = (t.to(dev, copy=True) for t in (q.alpha, q.mask))
        self.codes = _codes_of(q.B.to(dev))
        i_max = self.alpha.shape[1]
        self.S, self.SS = _sign_tables(i_max, dev)                     # [K, I], [K, I*I]
        self.ams_w = AMSGrad(self.gs.to_groups(param.detach()), cfg.betas, cfg.eps)
        self.ams_a = AMSGrad(self.alpha, cfg.betas, cfg.eps)
        self.write()

    @property
    def K(self) -> int:
        return self.S.shape[0]

    @property
    def B(self) -> torch.Tensor:
        """The dense bases, int8 [G, I_max, n] (0 in invalid slots)."""
        return _bases_of(self.codes, self.mask)

    def levels(self) -> torch.Tensor:
        """Every code's level sum_i mu_i alpha_i s_i(c), float32 [G, K]."""
        a = torch.where(self.mask, self.alpha, torch.zeros_like(self.alpha))
        return (a.to(torch.float64) @ self.S.T).to(torch.float32)

    def write(self) -> None:
        """Put w_hat into the network (the network always runs the quantized weights)."""
        w = alq_kernels.expand(self.levels(), self.codes)
        with torch.no_grad():
            self.param.copy_(self.gs.from_groups(w.to(self.param.device)))

    def grad_w(self) -> torch.Tensor:
        return self.gs.to_groups(self.param.grad)

    def grad_alpha(self, g_w: torch.Tensor) -> torch.Tensor:
        """Chain rule into alpha: mu_gi beta_gi^T g_w,g."""
        return self._bt(alq_kernels.histogram(self.codes, g_w, self.K))

    def _bt(self, hist: torch.Tensor) -> torch.Tensor:
        """B^T x over valid slots from the code histogram of x, float32 [G, I_max]."""
        return (hist.to(self.S.device) @ self.S).to(torch.float32) * self.mask

    def requantize(self, target: torch.Tensor, D: torch.Tensor) -> None:
        """Nearest-level bases for ``target``, the D-weighted LS coordinates, the sign fix;
        then the alpha moments rebuilt from the w moments (spec section 3 steps 3-6)."""
        codes, hD, hDt, hm = alq_kernels.nearest_codes(target, D, self.ams_w.m, self.alpha,
                                                       self.mask, self.S)
        # D-weighted normal equations from the histograms: B D B^T = H(D) (S x S)
        M = (hD @ self.SS).view(-1, self.mask.shape[1], self.mask.shape[1])
        alpha = _solve_normal(M, (hDt @ self.S).unsqueeze(-1), self.mask).to(torch.float32)
        neg = alpha < 0
        flip = (neg.to(torch.long) << torch.arange(neg.shape[1], device=neg.device)).sum(1)
        self.codes = codes ^ flip.to(torch.uint8).unsqueeze(1).to(codes.device)
        self.alpha = alpha.abs()
        a_ = self.ams_a
        a_.m = self._bt(hm) * torch.where(neg, -1.0, 1.0)
        a_.v = self.ams_w.v.sum(1, keepdim=True) * self.mask
        a_.vbar = self.ams_w.vbar.sum(1, keepdim=True) * self.mask
        a_.t += 1
        self.write()

    def prune(self, flat_slots: torch.Tensor) -> None:
        g, i = flat_slots // self.gs_i_max, flat_slots % self.gs_i_max
        self.mask[g, i] = False
        self.alpha[g, i] = 0.0
        for t in (self.ams_a.m, self.ams_a.v, self.ams_a.vbar):  # spec section 10.3
            t[g, i] = 0.0
        self.write()

    @property
    def gs_i_max(self) -> int:
        return self.alpha.shape[1]

    def result(self) -> QLayer:
        return canonical(QLayer(self.B, self.alpha, self.mask))

    def set(self, q: QLayer) -> None:
        """Take the slots of ``q`` (the moments stay as they are)."""
        self.codes, self.alpha, self.mask = _codes_of(q.B), q.alpha, q.mask
        self.write()


def _codes_of(B: torch.Tensor) -> torch.Tensor:
    """Pattern codes uint8 [G, n] of dense bases int8 [G, I, n] (bit i <=> B[:, i] = +1)."""
    shifts = torch.arange(B.shape[1], device=B.device, dtype=torch.uint8).view(1, -1, 1)
    return ((B > 0).to(torch.uint8) << shifts).sum(1, dtype=torch.uint8)


def _bases_of(codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    shifts = torch.arange(mask.shape[1], device=codes.device, dtype=torch.uint8).view(1, -1, 1)
    signs = ((codes.unsqueeze(1) >> shifts) & 1).to(torch.int8) * 2 - 1
    return signs * mask.unsqueeze(-1).to(torch.int8)


Batches = "list[tuple[torch.Tensor, torch.Tensor]]"


class ALQTrainer:
    """Runs the ALQ phases on one network instance (spec sections 2-5).

    The network's quantized weights always equal w_hat; biases and other fp32 parameters take
    plain Adam steps at the phase's lr. Every phase is one pass over the given batches and
    returns the number of samples it processed (for the compute model).
    """

    def __init__(self, model: torch.nn.Module, q: QuantizedModel, cfg: ALQConfig):
        self.model, self.cfg = model, cfg
        params = dict(model.named_parameters())
        names = {gs.name for gs in q.layout}
        with torch.no_grad():
            for k, v in q.others.items():
                params[k].copy_(v)
        self.layers = [_Layer(gs, params[gs.name], q.layers[gs.name], cfg) for gs in q.layout]
        self.layout = q.layout
        self.other_params = [p for k, p in params.items() if k not in names]
        self.other_names = [k for k in params if k not in names]
        self.adam = torch.optim.Adam(self.other_params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        model.train()

    def _backward(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(self.model(x), y).backward()

    def _step_others(self, lr: float) -> None:
        for group in self.adam.param_groups:
            group["lr"] = lr
        self.adam.step()

    @torch.no_grad()
    def _each(self, batches, fn, lr: float, step_others: bool = True) -> int:
        """Per batch: the loss gradient at w_hat, ``fn(layer, g_w)`` on every quantized layer,
        then (``step_others``) an Adam step of the fp32 parameters; returns samples seen."""
        n = 0
        for x, y in batches:
            with torch.enable_grad():
                self._backward(x, y)
            for L in self.layers:
                fn(L, L.grad_w())
            if step_others:
                self._step_others(lr)
            n += len(y)
        return n

    def warmup(self, batches) -> int:
        """Accumulate the w- and alpha-domain moments without changing any weight (fresh
        moments would otherwise rank the first pruning steps by |g| of one batch)."""
        lr = self.cfg.prune_lr

        def fn(L: _Layer, g: torch.Tensor) -> None:
            L.ams_w.update(g)
            L.ams_a.update(L.grad_alpha(g))

        return self._each(batches, fn, lr, step_others=False)

    def avg_bits(self) -> float:
        """The mean bits per quantized weight now (Sum_g n_g I_g / Sum_g n_g)."""
        num = sum(L.gs.group_size * int(L.mask.sum()) for L in self.layers)
        return num / sum(L.gs.numel for L in self.layers)

    def prune_phase(self, batches, pruning_ratio: float, top_k: float, rng,
                    target_bits: float | None = None) -> int:
        """One pruning phase in the alpha domain (spec section 2): per step, the Taylor
        estimate dl = -P alpha + D alpha^2 / 2 of removing each valid slot; per layer the
        stochastic_round(top_k N_l) lowest are candidates; of the pooled candidates the
        floor(|pool| rho) lowest are pruned, rho = pruning_ratio / (top_k T) with T the
        phase's steps. About e^-pruning_ratio of the slots survive a phase.

        With ``target_bits`` the phase instead ends at that mean bit-width: each step prunes
        the lowest pooled candidates until the bits have come down by an even share of what
        is left to go (nothing when the bits are already at or below the target)."""
        T = len(batches)
        total = sum(L.gs.numel for L in self.layers)
        rho = pruning_ratio / (top_k * T) if T else 0.0
        lr = self.cfg.prune_lr

        def fn(L: _Layer, g: torch.Tensor) -> None:
            L.ams_w.update(g)
            P, D = L.ams_a.step(L.grad_alpha(g), lr)
            L._dl = -P * L.alpha + 0.5 * D * L.alpha * L.alpha

        n = 0
        for step, (x, y) in enumerate(batches):
            n += self._each([(x, y)], fn, lr)
            values, owners, slots = [], [], []
            for li, L in enumerate(self.layers):
                valid = L.mask.flatten().nonzero().squeeze(1)
                k = _stochastic_round(top_k * len(valid), rng)
                if k == 0:
                    continue
                top = torch.topk(L._dl.flatten()[valid], k, largest=False, sorted=True)
                values.append(top.values)
                owners.append(torch.full((k,), li, dtype=torch.long))
                slots.append(valid[top.indices].cpu())
            if not values:
                continue
            pool = torch.cat(values)
            order = torch.sort(pool.cpu(), stable=True).indices
            if target_bits is None:
                m = math.floor(len(pool) * min(rho, 1.0))
            else:  # the bits each candidate's removal takes off, in the pruning order
                owner_all = torch.cat(owners)[order]
                sizes = torch.tensor([L.gs.group_size for L in self.layers])[owner_all]
                quota = (self.avg_bits() - target_bits) / (T - step) * total
                m = 0 if quota <= 0 else int(torch.searchsorted(
                    torch.cumsum(sizes, 0).double(), torch.tensor([quota]).double()).item()) + 1
                m = min(m, len(pool))
            if m == 0:
                continue
            chosen = order[:m]
            owner, slot = torch.cat(owners)[chosen], torch.cat(slots)[chosen]
            for li in torch.unique(owner).tolist():
                self.layers[li].prune(slot[owner == li].to(self.layers[li].alpha.device))
        return n

    def basis_epoch(self, batches) -> int:
        """Bases to the nearest levels of the Adam target w* = w_hat - P/D, then the
        D-weighted LS coordinates (spec section 3)."""
        lr = self.cfg.lr

        def fn(L: _Layer, g: torch.Tensor) -> None:
            P, D = L.ams_w.step(g, lr)
            L.requantize(L.gs.to_groups(L.param) - P / D, D)

        return self._each(batches, fn, lr)

    def coordinate_epoch(self, batches) -> int:
        """A masked AMSGrad step on the coordinates, bases fixed (spec section 4)."""
        lr = self.cfg.lr

        def fn(L: _Layer, g: torch.Tensor) -> None:
            L.ams_w.update(g)
            P, D = L.ams_a.step(L.grad_alpha(g), lr)
            L.alpha = (L.alpha - P / D) * L.mask
            L.write()

        return self._each(batches, fn, lr)

    def ste_epoch(self, batches) -> int:
        """Post-training with the straight-through estimator: a latent fp32 copy takes the
        Adam step and is requantised with the bit-widths fixed (spec section 5)."""
        lr = self.cfg.lr
        latent = {id(L): L.gs.to_groups(L.param).clone() for L in self.layers}

        def fn(L: _Layer, g: torch.Tensor) -> None:
            P, D = L.ams_w.step(g, lr)
            w_fp = latent[id(L)]
            w_fp.sub_(P / D)
            L.requantize(w_fp, D)

        return self._each(batches, fn, lr)

    def moments(self) -> dict[str, object]:
        """The optimiser state a client can keep between its rounds: the w-domain AMSGrad
        moments of every quantized layer (the alpha-domain ones are rebuilt from them, since
        the slots change between rounds) and the Adam state of the fp32 parameters. About
        3 x 4 bytes per quantized weight (5.2 MB for LeNet-5)."""
        return {"w": [(L.ams_w.m.clone(), L.ams_w.v.clone(), L.ams_w.vbar.clone(), L.ams_w.t)
                      for L in self.layers],
                "adam": {k: {n: (v.clone() if torch.is_tensor(v) else v) for n, v in st.items()}
                         for k, st in zip(self.other_names,
                                          (self.adam.state[p] for p in self.other_params))
                         if st}}

    def load_moments(self, saved: dict[str, object]) -> None:
        """Continue from `moments` of an earlier round: the w-domain moments as they were, the
        alpha-domain ones rebuilt for the current slots (as after a basis step)."""
        for L, (m, v, vbar, t) in zip(self.layers, saved["w"]):
            L.ams_w.m, L.ams_w.v, L.ams_w.vbar, L.ams_w.t = m.clone(), v.clone(), vbar.clone(), t
            L.ams_a.m = L.grad_alpha(L.ams_w.m)
            L.ams_a.v = L.ams_w.v.sum(1, keepdim=True) * L.mask
            L.ams_a.vbar = L.ams_w.vbar.sum(1, keepdim=True) * L.mask
            L.ams_a.t = t
        params = dict(zip(self.other_names, self.other_params))
        for k, st in saved["adam"].items():
            self.adam.state[params[k]] = {n: (v.clone() if torch.is_tensor(v) else v)
                                          for n, v in st.items()}

    def result(self) -> QuantizedModel:
        """The trained model in canonical (wire) form; the network is set to exactly its
        weights, so what the client evaluates is what the server decodes."""
        layers = {}
        for L in self.layers:
            q = L.result()
            L.set(q)
            with torch.no_grad():  # exactly as the decoder rebuilds them (reconstruct)
                L.param.copy_(L.gs.from_groups(q.weights().to(L.param.device)))
            layers[L.gs.name] = QLayer(q.B.cpu(), q.alpha.cpu(), q.mask.cpu())
        params = dict(self.model.named_parameters())
        others = {k: params[k].detach().float().cpu().clone() for k in self.other_names}
        return QuantizedModel(self.layout, layers, others)


def _stochastic_round(x: float, rng) -> int:
    """floor(x), plus 1 with probability frac(x) (seeded numpy Generator)."""
    base = math.floor(x)
    return base + int(rng.random() < x - base)
