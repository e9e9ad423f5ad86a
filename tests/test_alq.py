"""ALQ math (sinsim.learn.alq): sketching, the basis step, coordinates, pruning, STE, and the
client phases end to end on a small model. Oracle: brute force over all sign patterns."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from sinsim.learn import alq
from sinsim.learn.alq_codec import ALQCodec
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.models import build_model


@pytest.fixture(scope="module")
def lenet():
    model = build_model("lenet5", 0)
    state = model.state_dict()
    layout = alq.model_layout({k: tuple(v.shape) for k, v in state.items()}, "lenet5")
    return model, state, layout


def _rel_err(w: torch.Tensor, q: alq.QLayer) -> float:
    return float(((w - q.weights()) ** 2).sum() / (w ** 2).sum())


# -- layouts and sketching -------------------------------------------------------------------

def test_lenet5_layout_has_2030_groups_and_430500_weights(lenet):
    _, _, layout = lenet
    # Assert
    assert [(g.name, g.n_groups, g.group_size) for g in layout] == [
        ("conv1.weight", 20, 25), ("conv2.weight", 1000, 25),
        ("fc1.weight", 1000, 400), ("fc2.weight", 10, 500)]
    assert sum(g.n_groups for g in layout) == 2030
    assert sum(g.numel for g in layout) == 430_500


@pytest.mark.parametrize("structure,shape,slices", [
    ("kernelwise", (3, 2, 3, 3), 1), ("pixelwise", (3, 2, 3, 3), 1),
    ("channelwise", (3, 2, 3, 3), 1), ("subchannel", (4, 6), 3)])
def test_group_views_round_trip(structure, shape, slices):
    gs = alq.GroupSpec("w", shape, structure, slices)
    w = torch.randn(shape)
    # Act
    g = gs.to_groups(w)
    # Assert
    assert g.shape == (gs.n_groups, gs.group_size)
    assert torch.equal(gs.from_groups(g), w)


def test_pixelwise_group_is_one_tap_across_input_channels():
    gs = alq.GroupSpec("w", (2, 3, 2, 2), "pixelwise")
    w = torch.randn(2, 3, 2, 2)
    # Assert: group (o=1, y=0, x=1) holds W[1, :, 0, 1]
    assert torch.equal(gs.to_groups(w)[1 * 4 + 0 * 2 + 1], w[1, :, 0, 1])


def test_lenet5_sketch_at_6_bits_has_12180_slots(lenet):
    _, state, layout = lenet
    # Act
    q = alq.sketch_model(state, layout, 6)
    # Assert
    assert q.n_slots() == 12_180
    assert q.avg_bits() == pytest.approx(6.0)
    for layer in q.layers.values():  # canonical: alpha > 0 ascending, +-1 bases
        a = torch.where(layer.mask, layer.alpha, torch.inf)
        assert (layer.alpha[layer.mask] > 0).all()
        assert (a[:, 1:] >= a[:, :-1]).all()
        assert set(layer.B[layer.mask].unique().tolist()) == {-1, 1}
        assert (layer.B[~layer.mask] == 0).all()


def test_sketch_error_falls_with_bits_and_refinement_never_raises_it():
    torch.manual_seed(0)
    w = torch.randn(64, 400)
    errors = [_rel_err(w, alq.sketch(w, 6, bits)) for bits in range(1, 7)]
    # Assert
    assert all(b < a for a, b in zip(errors, errors[1:]))
    for bits in (1, 2, 4, 6):
        q = alq.sketch(w, 6, bits)
        e = _rel_err(w, q)
        for _ in range(5):
            q = alq.refine(q, w)
            e_next = _rel_err(w, q)
            assert e_next <= e * (1 + 1e-5)
            e = e_next


def test_sketch_matches_the_spec_table_on_gaussian_groups():
    # alq.md section 9: 400x2 0.124 -> 0.117; 400x6 0.0073 -> 0.0031; 25x6 0.0020 -> 0.0004
    torch.manual_seed(1)
    for n, bits, greedy, refined in [(400, 2, 0.124, 0.117), (400, 6, 0.0073, 0.0031),
                                     (25, 6, 0.0020, 0.0004)]:
        w = torch.randn(300, n)
        assert _rel_err(w, alq.sketch(w, 6, bits)) == pytest.approx(greedy, rel=0.15)
        assert _rel_err(w, alq.sketch(w, 6, bits, refine_passes=5)) == pytest.approx(
            refined, rel=0.3)


def test_one_bit_sketch_is_mean_abs_times_sign():
    w = torch.randn(10, 50)
    q = alq.sketch(w, 6, 1)
    expected = w.abs().mean(1, keepdim=True) * torch.where(w >= 0, 1.0, -1.0)
    # Assert
    torch.testing.assert_close(q.weights(), expected)


def test_sketch_caps_bits_per_group_and_zero_bits_give_zeros():
    w = torch.randn(4, 30)
    q = alq.sketch(w, 6, torch.tensor([0, 1, 3, 6]))
    # Assert
    assert q.widths.tolist() == [0, 1, 3, 6]
    assert torch.equal(q.weights()[0], torch.zeros(30))


def test_exact_group_stops_early():
    w = torch.tensor([[0.5, -0.5, 0.5, 0.5]])  # one bit is exact
    # Assert
    assert alq.sketch(w, 6).widths.tolist() == [1]


# -- the basis step --------------------------------------------------------------------------

def test_nearest_levels_equal_brute_force_over_sign_patterns():
    gen = torch.Generator().manual_seed(3)
    G, i_max, n = 40, 4, 17
    alpha = torch.rand(G, i_max, generator=gen) + 0.01
    mask = torch.rand(G, i_max, generator=gen) < 0.7
    alpha = alpha * mask
    target = torch.randn(G, n, generator=gen)
    # Act
    B = alq.nearest_bases(alpha, mask, target)
    got = alq.reconstruct(B, alpha, mask)
    # Assert: no other sign pattern is closer, element by element
    for g in range(G):
        slots = mask[g].nonzero().squeeze(1).tolist()
        levels = torch.tensor([sum(s * float(alpha[g, i]) for s, i in zip(signs, slots))
                               for signs in itertools.product((-1, 1), repeat=len(slots))])
        best = (levels.unsqueeze(1) - target[g]).abs().min(0).values
        torch.testing.assert_close((got[g] - target[g]).abs(), best, atol=1e-6, rtol=0)
        assert (B[g][~mask[g]] == 0).all()
        assert set(B[g][mask[g]].unique().tolist()) <= {-1, 1}


def test_weighted_refit_is_the_least_squares_optimum():
    gen = torch.Generator().manual_seed(4)
    G, i_max, n = 5, 3, 30
    B = (torch.randint(0, 2, (G, i_max, n), generator=gen) * 2 - 1).to(torch.int8)
    mask = torch.ones(G, i_max, dtype=torch.bool)
    mask[0, 2] = False
    B[0, 2] = 0
    target, D = torch.randn(G, n, generator=gen), torch.rand(G, n, generator=gen) + 0.1
    # Act
    alpha = alq.refit_alpha(B, mask, target, D)
    # Assert: gradient of the weighted objective vanishes on the valid slots
    resid = alq.reconstruct(B, alpha, mask) - target
    grad = (B.float() * (D * resid).unsqueeze(1)).sum(-1) * mask
    assert grad.abs().max() < 1e-4
    assert alpha[0, 2] == 0


def test_refit_with_dependent_bases_falls_back_to_the_pseudo_inverse():
    B = torch.ones(1, 2, 8, dtype=torch.int8)  # two equal columns
    alpha = alq.refit_alpha(B, torch.ones(1, 2, dtype=torch.bool), torch.full((1, 8), 0.6))
    # Assert
    assert torch.isfinite(alpha).all()
    torch.testing.assert_close(alpha.sum(), torch.tensor(0.6))


def test_canonical_flips_negative_coordinates_with_their_bases():
    B = torch.tensor([[[1, -1, 1], [1, 1, -1]]], dtype=torch.int8)
    q = alq.QLayer(B, torch.tensor([[0.5, -0.25]]), torch.ones(1, 2, dtype=torch.bool))
    # Act
    c = alq.canonical(q)
    # Assert
    assert (c.alpha >= 0).all()
    assert c.alpha.tolist() == [[0.25, 0.5]]
    torch.testing.assert_close(c.weights(), q.weights())


# -- the client phases -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_small():
    """A LeNet-5 sketched at 6 bits and a few batches of learnable data."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(240, 1, 28, 28, generator=gen)
    y = (x.mean((1, 2, 3)) > 0).long() + 2 * (x[:, 0, :14].mean((1, 2)) > 0).long()
    batches = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 240, 20)]
    model = build_model("lenet5", 0)
    state = model.state_dict()
    layout = alq.model_layout({k: tuple(v.shape) for k, v in state.items()}, "lenet5")
    return model, alq.sketch_model(state, layout, 6), batches


def _slots(run: alq.ALQTrainer) -> list[torch.Tensor]:
    return [L.mask.clone() for L in run.layers]


def survival_bounds(n0: list[int], pruning_ratio: float, top_k: float, steps: int
                    ) -> tuple[float, float]:
    """Bounds on the slots left after one phase under the spec's rule: per step, each layer
    offers stochastic_round(top_k N_l) in [floor, floor + 1] candidates and floor(|pool| rho)
    of them go, rho = pruning_ratio / (top_k steps)."""
    rho = pruning_ratio / (top_k * steps)
    lo = hi = float(sum(n0))
    layers = len(n0)
    for _ in range(steps):
        lo = max(0.0, lo - rho * (top_k * lo + layers))
        hi = hi - max(0.0, rho * (top_k * hi - layers) - 1)
    return lo, hi


def test_pruning_follows_the_survival_rule_and_slots_never_come_back(trained_small):
    model, q, batches = trained_small
    run = alq.ALQTrainer(model, q, alq.ALQConfig())
    rng = np.random.default_rng(0)
    before = _slots(run)
    n0 = [int(m.sum()) for m in before]
    top_k = 2 * 0.8 / len(batches)
    # Act
    run.prune_phase(batches, 0.8, top_k, rng)
    after = _slots(run)
    # Assert
    left = sum(int(m.sum()) for m in after)
    lo, hi = survival_bounds(n0, 0.8, top_k, len(batches))
    assert lo <= left <= hi
    assert left / sum(n0) == pytest.approx(math.exp(-0.8), abs=0.08)
    for b, a, L in zip(before, after, run.layers):
        assert not (a & ~b).any()                       # only removals
        assert (L.alpha[~a] == 0).all() and (L.B[~a] == 0).all()
    # a basis, a coordinate and an STE epoch never bring a slot back nor change a width
    run.basis_epoch(batches[:3])
    run.coordinate_epoch(batches[:3])
    widths = [L.mask.sum(1) for L in run.layers]
    run.ste_epoch(batches[:3])
    for m, L, w in zip(after, run.layers, widths):
        assert torch.equal(L.mask, m)
        assert torch.equal(L.mask.sum(1), w)
        g0 = L.mask.sum(1) == 0
        assert (L.gs.to_groups(L.param.detach())[g0] == 0).all()


def test_network_always_runs_the_quantized_weights(trained_small):
    model, q, batches = trained_small
    run = alq.ALQTrainer(model, q, alq.ALQConfig())
    run.basis_epoch(batches[:2])
    # Assert: the levels are summed in float64 and rounded once, the dense reconstruction sums
    # in float32, so the two agree to float32 rounding
    for L in run.layers:
        torch.testing.assert_close(L.gs.to_groups(L.param.detach()),
                                   alq.reconstruct(L.B, L.alpha, L.mask), rtol=2e-6, atol=1e-7)


def test_basis_and_ste_steps_lower_the_training_loss(trained_small):
    model, q, batches = trained_small

    def loss() -> float:
        with torch.no_grad():
            return float(sum(torch.nn.functional.cross_entropy(model(x), y) for x, y in batches))

    run = alq.ALQTrainer(model, q, alq.ALQConfig(lr=1e-3))
    start = loss()
    # Act
    for _ in range(3):
        run.basis_epoch(batches)
        run.ste_epoch(batches)
    # Assert
    assert loss() < 0.8 * start


def test_result_decodes_to_exactly_the_weights_the_client_ran(trained_small):
    model, q, batches = trained_small
    run = alq.ALQTrainer(model, q, alq.ALQConfig())
    run.prune_phase(batches, 0.9, 0.2, np.random.default_rng(1))
    run.coordinate_epoch(batches[:2])  # may leave alpha < 0: canonicalised on the way out
    # Act
    out = run.result()
    spec = ModelSpec.of(model.state_dict())
    codec = ALQCodec(spec, out.layout, 6)
    decoded = codec.decode_state(codec.encode(out))
    # Assert
    for name, value in model.state_dict().items():
        assert torch.equal(decoded[name], value), name
    assert 0 < out.avg_bits() < 6


def test_amsgrad_step_is_the_adam_step_with_max_second_moment():
    g1, g2 = torch.tensor([1.0, -2.0]), torch.tensor([0.1, -0.1])
    ams = alq.AMSGrad(g1)
    ams.step(g1, 0.1)
    P, D = ams.step(g2, 0.1)
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v1, v2 = 0.001 * g1 ** 2, 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    vbar = torch.maximum(v1, v2)
    # Assert
    torch.testing.assert_close(P, 0.1 * m / (1 - 0.9 ** 2))
    torch.testing.assert_close(D, (vbar.sqrt() + 1e-8) / math.sqrt(1 - 0.999 ** 2))


def test_refinement_stays_stable_when_levels_go_unused():
    # The mean of two 2-bit models has few distinct values per group: after a basis step some
    # bases are (nearly) dependent, which must not blow the coordinates up.
    gen = torch.Generator().manual_seed(5)
    w1 = alq.sketch(torch.randn(300, 25, generator=gen), 6, 2).weights()
    w2 = alq.sketch(torch.randn(300, 25, generator=gen), 6, 2).weights()
    w = 0.75 * w1 + 0.25 * w2
    q = alq.sketch(w, 6)
    e = _rel_err(w, q)
    for _ in range(3):
        q = alq.refine(q, w)
        assert _rel_err(w, q) <= e * (1 + 1e-5)
        assert float(q.alpha.max()) < 10 * float(w.abs().max())


def test_pruning_to_a_bit_target_ends_at_it_and_never_below(trained_small):
    model, q, batches = trained_small
    run = alq.ALQTrainer(model, q, alq.ALQConfig())
    rng = np.random.default_rng(0)
    top_k = 2 * 0.8 / len(batches)
    # Act: two phases of a round at pr 0.8, each to its target 6 e^(-j 0.8)
    run.prune_phase(batches, 0.8, top_k, rng, target_bits=6 * math.exp(-0.8))
    first = run.avg_bits()
    run.prune_phase(batches, 0.8, top_k, rng, target_bits=6 * math.exp(-1.6))
    second = run.avg_bits()
    # Assert: within one slot of the largest group (fc2: 500 of 430,500 weights) of the target
    slot = 500 / 430_500
    assert 6 * math.exp(-0.8) - slot <= first <= 6 * math.exp(-0.8) + 1e-9
    assert 6 * math.exp(-1.6) - slot <= second <= 6 * math.exp(-1.6) + 1e-9
    # a phase whose target is above the bits prunes nothing
    masks = _slots(run)
    run.prune_phase(batches[:2], 0.8, top_k, rng, target_bits=5.0)
    assert all(torch.equal(a, b) for a, b in zip(masks, _slots(run)))
