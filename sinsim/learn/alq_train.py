"""ALQ's training: AMSGrad moments and the client phases (spec sections 0, 2-5 of
``docs/alq.md``): alpha-domain pruning, the basis step, coordinate steps and STE post-training,
run by `ALQTrainer` on one network instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sinsim.learn import alq_fused, alq_kernels
from sinsim.learn.alq_layout import GroupSpec, QLayer, QuantizedModel, canonical
from sinsim.learn.alq_sketch import (
    _DEPENDENT,
    _bases_of,
    _codes_of,
    _sign_tables,
    _solve_normal,
)

__all__ = ["AMSGrad", "ALQConfig", "ALQTrainer"]


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
        self.codes = _codes_of(q.B.to(dev)).contiguous()
        self.fused = alq_fused.available(self.codes)  # one pass a step (CPU), else torch ops
        self._stale_alpha_moments = 0  # basis steps since the alpha moments were rebuilt
        if self.fused:
            self._search = alq_fused.SearchCache(*self.alpha.shape)
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

    def write(self, flip: torch.Tensor | None = None) -> None:
        """Put w_hat into the network (the network always runs the quantized weights), after
        ``codes ^= flip[:, None]`` (the sign fix of a basis step; uint8 [G])."""
        if self.fused:
            flip = torch.zeros(self.codes.shape[0], dtype=torch.uint8) if flip is None else flip
            w = self.gs.to_groups(self.param.detach())
            view = w.data_ptr() == self.param.data_ptr() and w.is_contiguous()
            out = w if view else torch.empty(w.shape, dtype=torch.float32)
            alq_fused.flip_expand(self.codes, flip, self.levels(), out)
            if not view:
                with torch.no_grad():
                    self.param.copy_(self.gs.from_groups(out))
            return
        if flip is not None:
            self.codes = self.codes ^ flip.to(self.codes.device).unsqueeze(1)
        w = alq_kernels.expand(self.levels(), self.codes)
        with torch.no_grad():
            self.param.copy_(self.gs.from_groups(w.to(self.param.device)))

    def grad_w(self) -> torch.Tensor:
        return self.gs.to_groups(self.param.grad)

    def grad_alpha(self, g_w: torch.Tensor) -> torch.Tensor:
        """Chain rule into alpha: mu_gi beta_gi^T g_w,g."""
        return self._bt(alq_kernels.histogram(self.codes, g_w, self.K))

    def update_grad_alpha(self, g_w: torch.Tensor) -> torch.Tensor:
        """The w-domain moment update with ``g_w`` and the chain rule into alpha (the first
        half of a pruning or coordinate step): one pass over the weights when fused."""
        self.refresh_alpha_moments()
        if self.fused:
            return self._bt(alq_fused.ams_histogram(self.ams_w, g_w, self.codes, self.K))
        self.ams_w.update(g_w)
        return self.grad_alpha(g_w)

    def step_requantize(self, g_w: torch.Tensor, lr: float,
                        latent: torch.Tensor | None = None) -> None:
        """A basis step (``latent`` None: the target is w* = w_hat - P/D, spec section 3) or
        an STE step (the fp32 ``latent`` [G, n] takes the step P/D in place and is the
        target, spec section 5): the w-domain AMSGrad step, then `requantize`.

        Fused, the alpha-domain moments that a basis step rebuilds (section 3 step 6) are
        rebuilt when next used (`refresh_alpha_moments`): basis and STE steps never read them,
        so an epoch of them rebuilds once instead of every step, with the same values."""
        if not self.fused:
            P, D = self.ams_w.step(g_w, lr)
            if latent is None:
                target = self.gs.to_groups(self.param) - P / D
            else:
                target = latent.sub_(P / D)
            self.requantize(target, D)
            return
        w = self.gs.to_groups(self.param.detach())
        view = w.data_ptr() == self.param.data_ptr() and w.is_contiguous()
        out = w if view else torch.empty(w.shape, dtype=torch.float32)
        bad = alq_fused.basis_step(self.ams_w, g_w, w if latent is None else latent, lr,
                                   latent is not None, self.alpha, self.mask, self.codes, out,
                                   _DEPENDENT, self._search)
        if bad is not None:
            self._dependent_groups(*bad, out)
        if not view:
            with torch.no_grad():
                self.param.copy_(self.gs.from_groups(out))
        self._stale_alpha_moments += 1

    def _dependent_groups(self, bad: torch.Tensor, M: torch.Tensor, rhs: torch.Tensor,
                          out: torch.Tensor) -> None:
        """The groups `alq_fused.basis_step` left to the pseudo-inverse: their coordinates,
        sign fix and w_hat (as `_refit` does for every group)."""
        mask = self.mask[bad]
        alpha = _solve_normal(M, rhs.unsqueeze(-1), mask).to(torch.float32)
        neg = alpha < 0
        flip = (neg.to(torch.long) << torch.arange(neg.shape[1])).sum(1).to(torch.uint8)
        self.alpha[bad] = alpha.abs()
        codes = self.codes[bad] ^ flip.unsqueeze(1)
        self.codes[bad] = codes
        a = torch.where(mask, self.alpha[bad], torch.zeros_like(alpha)).to(torch.float64)
        out[bad] = alq_kernels.expand((a @ self.S.T).to(torch.float32), codes)

    def refresh_alpha_moments(self) -> None:
        """The alpha-domain moments from the w-domain ones, as after the last basis step
        (spec section 3 step 6: m_a = mu B^T m_w, v_a = mu sum_j v_w, likewise v-bar, t_a
        counting every basis step), where fused basis steps left them to be rebuilt."""
        n, self._stale_alpha_moments = self._stale_alpha_moments, 0
        if n:
            a_ = self.ams_a
            a_.m = self.grad_alpha(self.ams_w.m)
            a_.v = self.ams_w.v.sum(1, keepdim=True) * self.mask
            a_.vbar = self.ams_w.vbar.sum(1, keepdim=True) * self.mask
            a_.t += n

    def _bt(self, hist: torch.Tensor) -> torch.Tensor:
        """B^T x over valid slots from the code histogram of x, float32 [G, I_max]."""
        return (hist.to(self.S.device) @ self.S).to(torch.float32) * self.mask

    def requantize(self, target: torch.Tensor, D: torch.Tensor) -> None:
        """Nearest-level bases for ``target``, the D-weighted LS coordinates, the sign fix;
        then the alpha moments rebuilt from the w moments (spec section 3 steps 3-6)."""
        codes, hD, hDt, hm = alq_kernels.nearest_codes(target, D, self.ams_w.m, self.alpha,
                                                       self.mask, self.S)
        self._refit(codes, hD, hDt, hm, self.ams_w.v.sum(1), self.ams_w.vbar.sum(1))

    def _refit(self, codes: torch.Tensor, hD: torch.Tensor, hDt: torch.Tensor,
               hm: torch.Tensor, vsum: torch.Tensor, vbarsum: torch.Tensor) -> None:
        """The rest of a basis step from the new codes and their histograms: the D-weighted LS
        coordinates, the sign fix, the alpha moments from the w moments (``vsum``/``vbarsum``:
        the row sums of v and v-bar), the write-back."""
        # D-weighted normal equations from the histograms: B D B^T = H(D) (S x S)
        M = (hD @ self.SS).view(-1, self.mask.shape[1], self.mask.shape[1])
        alpha = _solve_normal(M, (hDt @ self.S).unsqueeze(-1), self.mask).to(torch.float32)
        neg = alpha < 0
        flip = (neg.to(torch.long) << torch.arange(neg.shape[1], device=neg.device)).sum(1)
        self.codes = codes.to(self.alpha.device)
        self.alpha = alpha.abs()
        a_ = self.ams_a
        a_.m = self._bt(hm) * torch.where(neg, -1.0, 1.0)
        a_.v = vsum.unsqueeze(1) * self.mask
        a_.vbar = vbarsum.unsqueeze(1) * self.mask
        a_.t += 1
        self.write(flip.to(torch.uint8))

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
        self.codes, self.alpha, self.mask = _codes_of(q.B).contiguous(), q.alpha, q.mask
        self.write()


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
            L.ams_a.update(L.update_grad_alpha(g))

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
            P, D = L.ams_a.step(L.update_grad_alpha(g), lr)
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
            L.step_requantize(g, lr)

        return self._each(batches, fn, lr)

    def coordinate_epoch(self, batches) -> int:
        """A masked AMSGrad step on the coordinates, bases fixed (spec section 4)."""
        lr = self.cfg.lr

        def fn(L: _Layer, g: torch.Tensor) -> None:
            P, D = L.ams_a.step(L.update_grad_alpha(g), lr)
            L.alpha = (L.alpha - P / D) * L.mask
            L.write()

        return self._each(batches, fn, lr)

    def ste_epoch(self, batches) -> int:
        """Post-training with the straight-through estimator: a latent fp32 copy takes the
        Adam step and is requantised with the bit-widths fixed (spec section 5)."""
        lr = self.cfg.lr
        latent = {id(L): L.gs.to_groups(L.param.detach()).clone() for L in self.layers}

        def fn(L: _Layer, g: torch.Tensor) -> None:
            L.step_requantize(g, lr, latent[id(L)])

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
            L._stale_alpha_moments = 0
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
