"""The fused CPU steps of ALQ (`sinsim.learn.alq_fused`) against the dense formulas of
``docs/alq.md``: the bases B exactly, the coordinates alpha and w_hat to float32 rounding."""

from __future__ import annotations

import copy

import pytest
import torch

from sinsim.learn import alq, alq_fused, alq_train

pytestmark = pytest.mark.skipif(not alq_fused.available(torch.zeros(1)),
                                reason="numba is not installed")

LR = 1e-3


def make_layer(shape, structure, slices=1, *, seed=0, narrow_every=7):
    gen = torch.Generator().manual_seed(seed)
    gs = alq.GroupSpec("w", shape, structure, slices)
    w = torch.randn(gs.n_groups, gs.group_size, generator=gen) * 0.1
    q = alq.sketch(w, 6)
    q.mask[::narrow_every, 0] = False  # some groups a bit narrower, one fully pruned
    q.mask[3] = False
    q.alpha[~q.mask] = 0
    q.B[~q.mask] = 0
    param = torch.nn.Parameter(torch.zeros(shape))
    layer = alq_train._Layer(gs, param, q, alq.ALQConfig())
    layer.ams_w.update(torch.randn(gs.n_groups, gs.group_size, generator=gen) * 0.01)
    return layer, gen


def dense_step(layer, g, target_of):
    """The spec's basis / STE step on copies: AMSGrad, the target, nearest bases, D-weighted
    LS coordinates, sign fix. Returns B, alpha, w_hat [G, n]."""
    ams = copy.deepcopy(layer.ams_w)
    P, D = ams.step(g, LR)
    target = target_of(P, D)
    B = alq.nearest_bases(layer.alpha, layer.mask, target)
    alpha = alq.refit_alpha(B, layer.mask, target, D)
    alpha, B = alq.sign_fix(alpha, B)
    return B, alpha, alq.reconstruct(B, alpha, layer.mask), ams


@pytest.mark.parametrize("shape,structure,slices", [
    ((40, 1, 5, 5), "kernelwise", 1),
    ((30, 120), "subchannel", 2),
    ((12, 8, 3, 3), "pixelwise", 1),  # [G, n] is a copy: w_hat goes back through a buffer
])
def test_fused_basis_steps_are_the_dense_basis_steps(shape, structure, slices):
    """(The dense refit forms B D B^T in float32, the fused one in float64: with 6 slots on
    groups of 8 weights the coordinates are ill-conditioned, hence atol 1e-6 on alpha, a
    few float32 ulps of w_hat.)"""
    layer, gen = make_layer(shape, structure, slices)
    assert layer.fused
    for _ in range(4):  # later steps start from the kept level order (the search cache)
        g = torch.randn(layer.gs.n_groups, layer.gs.group_size, generator=gen) * 0.01
        w_hat = layer.gs.to_groups(layer.param.detach()).clone()
        B, alpha, w_ref, ams = dense_step(layer, g, lambda P, D, w=w_hat: w - P / D)
        layer.step_requantize(g, LR)
        assert torch.equal(layer.B, B)
        torch.testing.assert_close(layer.alpha, alpha, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(layer.gs.to_groups(layer.param.detach()), w_ref,
                                   rtol=1e-5, atol=1e-6)
        for name in ("m", "v", "vbar"):
            torch.testing.assert_close(getattr(layer.ams_w, name), getattr(ams, name),
                                       rtol=1e-6, atol=1e-10)  # m cancels near 0
        assert layer.ams_w.t == ams.t


def test_fused_ste_steps_move_the_latent_copy_and_requantize_it():
    layer, gen = make_layer((40, 1, 5, 5), "kernelwise")
    latent = layer.gs.to_groups(layer.param.detach()).clone()
    for _ in range(3):
        g = torch.randn(40, 25, generator=gen) * 0.01
        expected_latent = latent.clone()
        B, alpha, w_ref, _ = dense_step(layer, g,
                                        lambda P, D, x=expected_latent: x.sub_(P / D))
        layer.step_requantize(g, LR, latent)
        torch.testing.assert_close(latent, expected_latent, rtol=1e-6, atol=1e-9)
        assert torch.equal(layer.B, B)
        torch.testing.assert_close(layer.alpha, alpha, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(layer.gs.to_groups(layer.param.detach()), w_ref,
                                   rtol=1e-5, atol=1e-7)


def test_alpha_moments_rebuilt_when_used_equal_the_eager_rebuild():
    fused, gen = make_layer((30, 120), "subchannel", 2)
    eager, _ = make_layer((30, 120), "subchannel", 2)
    eager.fused = False  # the torch path rebuilds the alpha moments at every basis step
    for _ in range(3):
        g = torch.randn(60, 60, generator=gen) * 0.01
        fused.step_requantize(g, LR)
        eager.step_requantize(g, LR)
    assert fused.ams_a.t == 0  # not rebuilt yet: nothing read them
    g = torch.randn(60, 60, generator=gen) * 0.01
    torch.testing.assert_close(fused.update_grad_alpha(g), eager.update_grad_alpha(g),
                               rtol=1e-5, atol=1e-9)
    assert fused.ams_a.t == eager.ams_a.t == 3
    for name in ("m", "v", "vbar"):
        torch.testing.assert_close(getattr(fused.ams_a, name), getattr(eager.ams_a, name),
                                   rtol=1e-5, atol=1e-9)


def test_dependent_bases_take_the_pseudo_inverse():
    """Groups of one weight with two slots: B is 1 x 2, B D B^T is singular, and the fused
    step hands the group to the pseudo-inverse (the least-squares optimum with the smallest
    coordinates), as the dense refit does."""
    gs = alq.GroupSpec("w", (6, 4), "subchannel", 4)  # 24 groups of 1 weight
    G = gs.n_groups
    gen = torch.Generator().manual_seed(3)
    B = torch.zeros(G, 6, 1, dtype=torch.int8)
    B[:, :2] = torch.where(torch.rand(G, 2, 1, generator=gen) < 0.5, -1, 1).to(torch.int8)
    alpha = torch.zeros(G, 6)
    alpha[:, :2] = torch.rand(G, 2, generator=gen) * 0.1 + 0.01
    mask = alpha > 0
    q = alq.QLayer(B, alpha, mask)
    layer = alq_train._Layer(gs, torch.nn.Parameter(torch.zeros(6, 4)), q, alq.ALQConfig())
    g = torch.randn(G, 1, generator=gen) * 0.01
    w_hat = layer.gs.to_groups(layer.param.detach()).clone()
    B_ref, alpha_ref, w_ref, _ = dense_step(layer, g, lambda P, D: w_hat - P / D)
    layer.step_requantize(g, LR)
    assert torch.equal(layer.B, B_ref)
    torch.testing.assert_close(layer.alpha, alpha_ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(layer.gs.to_groups(layer.param.detach()), w_ref,
                               rtol=1e-5, atol=1e-7)


def test_equal_coordinates_keep_the_merge_tie_rule():
    """Equal alphas make equal levels (+a -a = -a +a), between which the nearest pattern is a
    matter of rule: the kept order is not trusted then, and the pattern is the one the sorted
    merge puts first, as in the unfused step's search (`alq_kernels.nearest_codes`; the dense
    `torch.sort` orders ties arbitrarily). w_hat is the same either way."""
    fused, gen = make_layer((20, 1, 5, 5), "kernelwise", narrow_every=100)
    unfused, _ = make_layer((20, 1, 5, 5), "kernelwise", narrow_every=100)
    unfused.fused = False
    for layer in (fused, unfused):
        layer.alpha[:, 1] = layer.alpha[:, 0]
        layer.alpha[~layer.mask] = 0
        layer.write()
    for _ in range(3):
        g = torch.randn(20, 25, generator=gen) * 0.01
        fused.step_requantize(g, LR)
        unfused.step_requantize(g, LR)
        assert torch.equal(fused.B, unfused.B)
        torch.testing.assert_close(fused.alpha, unfused.alpha, rtol=1e-5, atol=1e-7)
