"""The compact (code-form) ALQ steps against the dense formulas, and the numba kernels against
their torch versions (the path other devices take)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sinsim.learn import alq, alq_kernels, alq_sketch, alq_train

pytestmark = pytest.mark.skipif(alq_kernels.numba is None, reason="numba not installed")


def _random_layer(G: int, n: int, i_max: int, seed: int, prune: float = 0.3):
    """Random alpha > 0 with some slots invalid (whole groups too), random targets and D."""
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(G, i_max, generator=gen) * 0.2 + 0.01
    mask = torch.rand(G, i_max, generator=gen) > prune
    mask[:3] = False  # fully pruned groups
    alpha = torch.where(mask, alpha, torch.zeros_like(alpha))
    target = torch.randn(G, n, generator=gen) * 0.3
    D = torch.rand(G, n, generator=gen) + 0.1
    m = torch.randn(G, n, generator=gen)
    return alpha, mask, target, D, m


@pytest.mark.parametrize("i_max", [1, 3, 6, 8])
def test_nearest_codes_kernel_equals_the_torch_search(i_max):
    alpha, mask, target, D, m = _random_layer(200, 37, i_max, seed=i_max)
    S = alq_sketch._sign_patterns(i_max, torch.device("cpu"))
    # Act
    fast = alq_kernels.nearest_codes(target, D, m, alpha, mask, S)
    mid, perm = alq_kernels.search_tables_torch(alpha, mask, S)
    codes = alq_kernels.nearest_codes_torch(target, mid, perm)
    # Assert
    assert torch.equal(fast[0], codes)
    K = 1 << i_max
    for h, x in zip(fast[1:], (D, D * target, m)):
        torch.testing.assert_close(h, alq_kernels.histogram_torch(codes, x, K))


def test_codes_are_the_dense_nearest_bases():
    alpha, mask, target, D, m = _random_layer(300, 25, 6, seed=1)
    S = alq_sketch._sign_patterns(6, torch.device("cpu"))
    codes = alq_kernels.nearest_codes(target, D, m, alpha, mask, S)[0]
    # Act
    dense = alq.nearest_bases(alpha, mask, target)
    # Assert: same bases wherever the nearest level is unique (random alphas: everywhere)
    assert torch.equal(alq_sketch._bases_of(codes, mask), dense)
    assert torch.equal(alq_sketch._codes_of(dense), codes & _valid_bits(mask))


def _valid_bits(mask: torch.Tensor) -> torch.Tensor:
    return (mask.to(torch.long) << torch.arange(mask.shape[1])).sum(1, keepdim=True).to(
        torch.uint8)


def test_histograms_give_the_dense_chain_rule_and_normal_equations():
    alpha, mask, target, D, m = _random_layer(150, 40, 6, seed=2)
    S = alq_sketch._sign_patterns(6, torch.device("cpu"))
    codes, hD, hDt, hm = alq_kernels.nearest_codes(target, D, m, alpha, mask, S)
    B = alq_sketch._bases_of(codes, mask).to(torch.float64)
    SS = (S.unsqueeze(2) * S.unsqueeze(1)).flatten(1)
    keep = mask.to(torch.float64)
    # Act / Assert: B^T m, B D B^T, B D t from the histograms
    torch.testing.assert_close((hm @ S) * keep, (B @ m.double().unsqueeze(-1)).squeeze(-1))
    M = (hD @ SS).view(-1, 6, 6) * keep.unsqueeze(1) * keep.unsqueeze(2)
    torch.testing.assert_close(M, (B * D.double().unsqueeze(1)) @ B.transpose(1, 2))
    torch.testing.assert_close((hDt @ S) * keep,
                               (B @ (D.double() * target.double()).unsqueeze(-1)).squeeze(-1))


def test_cholesky_kernel_equals_torch_and_flags_dependent_bases():
    gen = torch.Generator().manual_seed(3)
    G, n_slots = 64, 6
    A = torch.randn(G, n_slots, 10, generator=gen, dtype=torch.float64)
    M = A @ A.transpose(1, 2)
    M[5, :, 1] = M[5, :, 0]  # group 5: slot 1 a copy of slot 0 (dependent)
    M[5, 1, :] = M[5, 0, :]
    rhs = torch.randn(G, n_slots, 1, generator=gen, dtype=torch.float64)
    mask = torch.rand(G, n_slots, generator=gen) > 0.2
    mask[5, :2] = True
    # Act
    alpha, bad = alq_kernels.cholesky_solve(M, rhs, mask, alq_sketch._DEPENDENT)
    # Assert
    assert bool(bad[5])
    keep = mask.double()
    Mm = M * keep.unsqueeze(1) * keep.unsqueeze(2) + torch.diag_embed(1 - keep)
    ref = torch.linalg.solve(Mm, rhs * keep.unsqueeze(-1)).squeeze(-1)
    ok = ~bad
    torch.testing.assert_close(alpha[ok], ref[ok])
    assert (alpha[~mask & ok.unsqueeze(1)] == 0).all()
    # the solver the layers use takes the pseudo-inverse there: a least-squares optimum
    full = alq_sketch._solve_normal(M, rhs, mask)
    assert torch.isfinite(full).all()
    torch.testing.assert_close(full[ok], ref[ok])


def test_requantize_matches_the_dense_basis_step():
    """One basis step of a trained layer in code form equals the dense formulas: the nearest
    bases, the D-weighted LS refit, the sign fix, the rebuilt alpha moments."""
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(120, 25, generator=gen) * 0.2
    q = alq.sketch(w, 6)
    q.mask[::7, -1] = False  # some groups a bit narrower
    q.alpha[~q.mask] = 0
    q.B[~q.mask] = 0
    gs = alq.GroupSpec("w", (120, 1, 5, 5), "kernelwise")
    param = torch.nn.Parameter(torch.zeros(120, 1, 5, 5))
    L = alq_train._Layer(gs, param, q, alq.ALQConfig())
    L.ams_w.update(torch.randn(120, 25, generator=gen) * 0.01)
    target = L.gs.to_groups(param.detach()) + torch.randn(120, 25, generator=gen) * 0.02
    D = torch.rand(120, 25, generator=gen) + 0.5
    alpha0, mask = L.alpha.clone(), L.mask.clone()
    # Act
    L.requantize(target, D)
    # Assert
    B = alq.nearest_bases(alpha0, mask, target)
    alpha = alq.refit_alpha(B, mask, target, D)
    alpha, B = alq.sign_fix(alpha, B)
    assert torch.equal(L.B, B)
    torch.testing.assert_close(L.alpha, alpha, rtol=1e-5, atol=1e-7)
    m_alpha = (B.double() @ L.ams_w.m.double().unsqueeze(-1)).squeeze(-1).float()
    torch.testing.assert_close(L.ams_a.m, m_alpha, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(L.gs.to_groups(param.detach()), alq.reconstruct(B, alpha, mask),
                               rtol=1e-5, atol=1e-7)


def test_expand_and_histogram_kernels_equal_torch():
    gen = torch.Generator().manual_seed(6)
    codes = torch.randint(0, 64, (50, 33), generator=gen, dtype=torch.uint8)
    levels = torch.randn(50, 64, generator=gen)
    x = torch.randn(50, 33, generator=gen)
    assert torch.equal(alq_kernels.expand(levels, codes), levels.gather(1, codes.long()))
    torch.testing.assert_close(alq_kernels.histogram(codes, x, 64),
                               alq_kernels.histogram_torch(codes, x, 64))
    assert np.isfinite(alq_kernels.histogram(codes, x, 64).numpy()).all()
