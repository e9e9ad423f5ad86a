"""Codecs: Float16Codec, Int8Codec and ALQCodec (round trips, exact sizes, rejected payloads)."""

from __future__ import annotations

import math
import struct
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinsim.learn.alq import GroupSpec, QLayer, QuantizedModel, model_layout
from sinsim.learn.alq_codec import ALQCodec, alq_payload_bytes
from sinsim.learn.codecs import (
    CODECS,
    CodecError,
    Float16Codec,
    Int8Codec,
    ModelSpec,
    dequantize_uint8,
    quantize_uint8,
)
from sinsim.learn.models import build_model

LENET5_PARAMS = 431_080
LENET5_GROUPS = 2_030
LENET5_BIASES = 580

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def lenet_state() -> OrderedDict[str, torch.Tensor]:
    return build_model("lenet5", seed=0).state_dict()


@pytest.fixture(scope="module")
def lenet_layout(lenet_state) -> tuple[GroupSpec, ...]:
    return model_layout({k: tuple(v.shape) for k, v in lenet_state.items()}, "lenet5")


def expected_alq_bytes(n_groups: int, basis_bits: int, n_alpha: int, n_fp32: int, i_max: int,
                       alpha_bytes: int) -> int:
    """The documented formula, written out independently of the codec."""
    b_mu = math.ceil(math.log2(i_max + 1))
    return 8 + math.ceil((n_groups * b_mu + basis_bits) / 8) + n_alpha * alpha_bytes + 4 * n_fp32


# --------------------------------------------------------------------------------------------
# random quantized models


@st.composite
def group_specs(draw, index: int) -> GroupSpec:
    name = f"layer{index}.weight"
    dim = st.integers(1, 3)
    structure = draw(st.sampled_from(["kernelwise", "pixelwise", "channelwise", "subchannel"]))
    if structure == "subchannel":
        slices = draw(st.integers(1, 3))
        return GroupSpec(name, (draw(st.integers(1, 4)), slices * draw(dim)), structure, slices)
    return GroupSpec(name, (draw(dim), draw(dim), draw(dim), draw(dim)), structure)


@st.composite
def models(draw):
    """(spec, layout, i_max, seed): 1-3 quantized layers, each followed by a bias."""
    n_layers = draw(st.integers(1, 3))
    layout = tuple(draw(group_specs(i)) for i in range(n_layers))
    names, shapes = [], []
    for gs in layout:
        names += [gs.name, gs.name.replace("weight", "bias")]
        shapes += [gs.shape, (gs.shape[0],)]
    spec = ModelSpec(tuple(names), tuple(shapes))
    return spec, layout, draw(st.integers(1, 8)), draw(st.integers(0, 2**32 - 1))


def random_quantized(spec: ModelSpec, layout: tuple[GroupSpec, ...], i_max: int, seed: int, *,
                     compacted: bool, half_alpha: bool) -> QuantizedModel:
    """Random widths 0..i_max, signs and positive alpha; B = 0 and alpha = 0 in invalid slots."""
    rng = np.random.default_rng(seed)
    layers = {}
    for gs in layout:
        g, n = gs.n_groups, gs.group_size
        widths = rng.integers(0, i_max + 1, size=g)
        mask = np.arange(i_max) < widths[:, None]
        if not compacted:
            mask = rng.permuted(mask, axis=1)
        B = np.where(mask[:, :, None], rng.choice(np.array([-1, 1], np.int8), (g, i_max, n)), 0)
        alpha = rng.uniform(1e-3, 4.0, (g, i_max)).astype(np.float32)
        if half_alpha:
            alpha = alpha.astype(np.float16).astype(np.float32)
        alpha = np.where(mask, alpha, np.float32(0))
        layers[gs.name] = QLayer(torch.from_numpy(B.astype(np.int8)), torch.from_numpy(alpha),
                                 torch.from_numpy(mask))
    others = {name: torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
              for name, shape in zip(spec.names, spec.shapes) if "bias" in name}
    return QuantizedModel(layout, layers, others)


def basis_bits_and_slots(q: QuantizedModel) -> tuple[int, int]:
    bits = sum(gs.group_size * int(q.layers[gs.name].mask.sum()) for gs in q.layout)
    return bits, q.n_slots()


# --------------------------------------------------------------------------------------------
# ALQ codec: property tests


@PROPERTY
@given(model=models(), alpha_dtype=st.sampled_from(["float32", "float16"]))
def test_alq_round_trip_of_a_compacted_model_is_bit_exact(model, alpha_dtype):
    # Prepare
    spec, layout, i_max, seed = model
    q = random_quantized(spec, layout, i_max, seed, compacted=True,
                         half_alpha=alpha_dtype == "float16")
    codec = ALQCodec(spec, layout, i_max, alpha_dtype)
    alpha_bytes = 4 if alpha_dtype == "float32" else 2

    # Execute
    payload = codec.encode(q)
    decoded = codec.decode(payload)

    # Assert
    for gs in layout:
        got, want = decoded.layers[gs.name], q.layers[gs.name]
        assert got.B.dtype == torch.int8 and torch.equal(got.B, want.B), gs.name
        assert got.alpha.dtype == torch.float32 and torch.equal(got.alpha, want.alpha), gs.name
        assert got.mask.dtype == torch.bool and torch.equal(got.mask, want.mask), gs.name
    assert list(decoded.others) == [n for n in spec.names if "bias" in n]
    for name, tensor in q.others.items():
        assert torch.equal(decoded.others[name], tensor), name
    decoded_state = codec.decode_state(payload)
    for name, tensor in q.state_dict(spec.names).items():
        assert torch.equal(decoded_state[name], tensor), name
    basis_bits, n_slots = basis_bits_and_slots(q)
    n_fp32 = sum(gs.shape[0] for gs in layout)
    n_groups = sum(gs.n_groups for gs in layout)
    widths = [q.layers[gs.name].widths for gs in layout]
    assert len(payload) == alq_payload_bytes(layout, widths, n_fp32, i_max, alpha_bytes)
    assert len(payload) == expected_alq_bytes(n_groups, basis_bits, n_slots, n_fp32, i_max,
                                              alpha_bytes)
    assert len(payload) == codec.payload_bytes(q)


@PROPERTY
@given(model=models())
def test_alq_decodes_a_non_compacted_model_to_its_compacted_form(model):
    # Prepare
    spec, layout, i_max, seed = model
    q = random_quantized(spec, layout, i_max, seed, compacted=False, half_alpha=False)
    codec = ALQCodec(spec, layout, i_max)

    # Execute
    decoded = codec.decode(codec.encode(q))

    # Assert
    for gs in layout:
        got, want = decoded.layers[gs.name], q.layers[gs.name]
        assert torch.equal(got.widths, want.widths)
        assert torch.equal(got.mask, torch.arange(i_max) < want.widths[:, None])
        assert torch.equal(got.alpha[got.mask], want.alpha[want.mask])
        assert torch.equal(got.B[got.mask], want.B[want.mask])
        assert not got.B[~got.mask].any() and not got.alpha[~got.mask].any()
    want_state = q.state_dict(spec.names)
    for name, tensor in decoded.state_dict(spec.names).items():
        torch.testing.assert_close(tensor, want_state[name], rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# ALQ codec: LeNet-5 sizes


def lenet_quantized(layout, lenet_state, widths_of) -> QuantizedModel:
    """LeNet-5 at the per-layer widths ``widths_of(gs) -> int64 [G]`` (i_max 6, alpha 0.5)."""
    layers = {}
    for gs in layout:
        widths = widths_of(gs)
        mask = torch.arange(6) < widths[:, None]
        B = torch.where(mask[:, :, None], torch.ones(1, dtype=torch.int8),
                        torch.zeros(1, dtype=torch.int8)).expand(-1, -1, gs.group_size)
        layers[gs.name] = QLayer(B.contiguous(), torch.where(mask, 0.5, 0.0), mask)
    others = {k: v for k, v in lenet_state.items() if k.endswith("bias")}
    return QuantizedModel(layout, layers, others)


def test_lenet5_layout_has_2030_groups_and_580_fp32_values(lenet_state, lenet_layout):
    # Execute
    codec = ALQCodec(ModelSpec.of(lenet_state), lenet_layout, 6)

    # Assert
    assert sum(gs.n_groups for gs in lenet_layout) == LENET5_GROUPS
    assert sum(gs.numel for gs in lenet_layout) + codec.n_fp32 == LENET5_PARAMS
    assert codec.n_fp32 == LENET5_BIASES


@pytest.mark.parametrize(("alpha_dtype", "alpha_bytes", "total"),
                         [("float32", 4, 374_685), ("float16", 2, 350_325)])
def test_lenet5_at_6_bits(lenet_state, lenet_layout, alpha_dtype, alpha_bytes, total):
    # Prepare
    codec = ALQCodec(ModelSpec.of(lenet_state), lenet_layout, 6, alpha_dtype)
    q = lenet_quantized(lenet_layout, lenet_state, lambda gs: torch.full((gs.n_groups,), 6))

    # Execute
    payload = codec.encode(q)

    # Assert
    assert q.n_slots() == 12_180 and q.avg_bits() == 6.0
    assert len(payload) == expected_alq_bytes(LENET5_GROUPS, 6 * 430_500, 12_180, LENET5_BIASES,
                                              6, alpha_bytes) == total
    assert payload[:8] == b"SALQ" + bytes([1, 6, alpha_bytes, 0])
    decoded = codec.decode_state(payload)
    for name, tensor in q.state_dict(codec.spec.names).items():
        assert torch.equal(decoded[name], tensor), name


def test_lenet5_at_0_bits_sends_widths_and_biases_only(lenet_state, lenet_layout):
    # Prepare
    codec = ALQCodec(ModelSpec.of(lenet_state), lenet_layout, 6)
    q = lenet_quantized(lenet_layout, lenet_state,
                        lambda gs: torch.zeros(gs.n_groups, dtype=torch.int64))

    # Execute
    payload = codec.encode(q)

    # Assert
    assert len(payload) == 8 + math.ceil(LENET5_GROUPS * 3 / 8) + 4 * LENET5_BIASES == 3_090
    decoded = codec.decode_state(payload)
    assert not decoded["fc1.weight"].any()
    assert torch.equal(decoded["fc2.bias"], lenet_state["fc2.bias"])


def test_lenet5_at_0_4_bits_with_700_coordinates(lenet_state, lenet_layout):
    # Prepare: 292 conv slots (n 25) + 391 fc1 slots (n 400) + 17 fc2 slots (n 500), 1-2 bits
    ones = {"conv1.weight": 20, "conv2.weight": 272, "fc1.weight": 391}

    def widths_of(gs):
        w = torch.zeros(gs.n_groups, dtype=torch.int64)
        if gs.name == "fc2.weight":
            w[:7], w[7:] = 2, 1
        else:
            w[: ones[gs.name]] = 1
        return w

    q = lenet_quantized(lenet_layout, lenet_state, widths_of)
    codec = ALQCodec(ModelSpec.of(lenet_state), lenet_layout, 6)

    # Execute
    payload = codec.encode(q)

    # Assert
    assert q.n_slots() == 700 and q.avg_bits() == pytest.approx(0.4, abs=1e-15)
    assert len(payload) == 8 + 22_287 + 4 * 700 + 4 * LENET5_BIASES == 27_415
    assert len(payload) == expected_alq_bytes(LENET5_GROUPS, 172_200, 700, LENET5_BIASES, 6, 4)


# --------------------------------------------------------------------------------------------
# ALQ codec: rejected models and payloads


@pytest.fixture
def small_alq():
    """6 groups of 2 at widths (3, 1, 0, 2, 1, 0), i_max 3: 6*2 + 7*2 = 26 stream bits."""
    spec = ModelSpec(("w", "b"), ((3, 4), (3,)))
    layout = (GroupSpec("w", (3, 4), "subchannel", 2),)
    mask = torch.arange(3) < torch.tensor([3, 1, 0, 2, 1, 0])[:, None]
    B = torch.where(mask[:, :, None], torch.tensor([1, -1], dtype=torch.int8),
                    torch.zeros(1, dtype=torch.int8))
    alpha = torch.where(mask, torch.tensor([1.0, 0.5, 0.25]), 0.0)
    q = QuantizedModel(layout, {"w": QLayer(B, alpha, mask)}, {"b": torch.ones(3)})
    return ALQCodec(spec, layout, 3), q


def test_alq_encode_rejects_a_basis_entry_that_is_not_plus_or_minus_one(small_alq):
    # Prepare
    codec, q = small_alq
    q.layers["w"].B[0, 0, 0] = 0

    # Execute / Assert
    with pytest.raises(CodecError, match=r"\+-1"):
        codec.encode(q)


def test_alq_encode_rejects_a_layer_with_another_slot_count(small_alq):
    # Prepare
    codec, q = small_alq
    lay = q.layers["w"]
    q.layers["w"] = QLayer(lay.B[:, :2], lay.alpha[:, :2], lay.mask[:, :2])

    # Execute / Assert
    with pytest.raises(CodecError, match="expected"):
        codec.encode(q)


def test_alq_encode_rejects_another_layout(small_alq):
    # Prepare
    codec, q = small_alq
    q.layout = (GroupSpec("w", (3, 4), "subchannel", 1),)

    # Execute / Assert
    with pytest.raises(CodecError, match="layout"):
        codec.encode(q)


@pytest.mark.parametrize(("offset", "value", "message"),
                         [(0, b"X", "bad magic"), (4, b"\x02", "version"), (5, b"\x04", "i_max"),
                          (6, b"\x02", "coordinates"), (7, b"\x01", "reserved")])
def test_alq_decode_rejects_a_bad_header(small_alq, offset, value, message):
    # Prepare
    codec, q = small_alq
    payload = bytearray(codec.encode(q))
    payload[offset: offset + 1] = value

    # Execute / Assert
    with pytest.raises(CodecError, match=message):
        codec.decode(bytes(payload))


def test_alq_decode_rejects_truncated_and_padded_payloads(small_alq):
    # Prepare
    codec, q = small_alq
    payload = codec.encode(q)

    # Execute / Assert
    for keep in range(len(payload)):
        with pytest.raises(CodecError):
            codec.decode(payload[:keep])
    with pytest.raises(CodecError, match="bytes"):
        codec.decode(payload + b"\x00")


def test_alq_decode_rejects_non_zero_padding_bits(small_alq):
    # Prepare: the 26-bit stream ends in 6 padding bits of its 4th byte
    codec, q = small_alq
    payload = bytearray(codec.encode(q))
    payload[8 + 3] |= 1

    # Execute / Assert
    with pytest.raises(CodecError, match="padding"):
        codec.decode(bytes(payload))


def test_alq_codec_without_quantized_layers_sends_the_fp32_tensors():
    # Prepare
    state = OrderedDict(b=torch.tensor([1.0, -2.0]))
    codec = ALQCodec(ModelSpec.of(state), (), 6)
    q = QuantizedModel((), {}, dict(state))

    # Execute
    payload = codec.encode(q)

    # Assert
    assert len(payload) == 8 + 4 * 2
    assert torch.equal(codec.decode_state(payload)["b"], state["b"])


def test_alq_decode_rejects_a_width_above_i_max():
    # Prepare: i_max 2 -> 2 bits per width; write 3 into the single group's width
    spec = ModelSpec(("w",), ((1, 2),))
    codec = ALQCodec(spec, (GroupSpec("w", (1, 2), "subchannel"),), 2)
    payload = b"SALQ" + bytes([1, 2, 4, 0]) + bytes([0b1100_0000])

    # Execute / Assert
    with pytest.raises(CodecError, match="exceeds i_max"):
        codec.decode(payload)


def test_alq_bit_order_on_the_wire():
    # Prepare: i_max 6 (3-bit widths), one group of 3 at width 2: slots (+,-,+) and (-,-,+)
    spec = ModelSpec(("w",), ((1, 3),))
    layout = (GroupSpec("w", (1, 3), "subchannel"),)
    mask = torch.tensor([[True, True, False, False, False, False]])
    B = torch.zeros(1, 6, 3, dtype=torch.int8)
    B[0, 0], B[0, 1] = torch.tensor([1, -1, 1]), torch.tensor([-1, -1, 1])
    alpha = torch.tensor([[2.0, 0.5, 0, 0, 0, 0]])
    q = QuantizedModel(layout, {"w": QLayer(B, alpha, mask)}, {})

    # Execute
    payload = ALQCodec(spec, layout, 6).encode(q)

    # Assert: width 010, then 101, 001, then 0 padding -> 0101 0100 | 1000 0000
    assert payload[8:10] == bytes([0b0101_0100, 0b1000_0000])
    assert struct.unpack("<2f", payload[10:]) == (2.0, 0.5)


# --------------------------------------------------------------------------------------------
# Float16 and Int8 codecs


def test_codecs_registry_names_the_lossy_codecs():
    assert CODECS["float16"] is Float16Codec and CODECS["int8"] is Int8Codec


def test_float16_round_trip_is_the_half_rounding_within_2_pow_minus_11(lenet_state):
    # Prepare
    codec = Float16Codec(ModelSpec.of(lenet_state))

    # Execute
    payload = codec.encode(lenet_state)
    decoded = codec.decode(payload)

    # Assert
    assert len(payload) == 8 + 2 * LENET5_PARAMS == 862_168
    assert payload[:4] == b"SF16" and struct.unpack("<I", payload[4:8])[0] == LENET5_PARAMS
    assert list(decoded) == list(lenet_state)
    for name, x in lenet_state.items():
        assert decoded[name].dtype == torch.float32
        assert torch.equal(decoded[name], x.half().float()), name
        normal = x.abs() >= 2.0**-14
        err = (decoded[name] - x).abs()
        assert torch.all(err[normal] <= 2.0**-11 * x.abs()[normal]), name
        assert torch.all(err[~normal] <= 2.0**-25), name


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-65504, 65504, width=32), min_size=1, max_size=20))
def test_float16_matches_torch_half_rounding(values):
    # Prepare
    state = OrderedDict(x=torch.tensor(values, dtype=torch.float32))
    codec = Float16Codec(ModelSpec.of(state))

    # Execute
    decoded = codec.decode(codec.encode(state))

    # Assert
    assert torch.equal(decoded["x"], state["x"].half().float())


def test_float16_encode_rejects_values_beyond_the_half_range():
    # Prepare
    state = OrderedDict(x=torch.tensor([1.0, 70_000.0]))

    # Execute / Assert
    with pytest.raises(CodecError, match="float16"):
        Float16Codec(ModelSpec.of(state)).encode(state)


def test_int8_round_trip_and_size_for_lenet5(lenet_state):
    # Prepare
    codec = Int8Codec(ModelSpec.of(lenet_state))

    # Execute
    payload = codec.encode(lenet_state)
    decoded = codec.decode(payload)

    # Assert
    assert len(payload) == 8 + 8 * 8 + LENET5_PARAMS == 431_152
    assert payload[:4] == b"SQ08"
    offset = 8
    for name, x in lenet_state.items():
        lo, scale = struct.unpack_from("<ff", payload, offset)
        assert lo == x.min().item()
        assert decoded[name].dtype == torch.float32
        assert torch.all((decoded[name] - x).abs() <= scale / 2 + 1e-7 * x.abs().max()), name
        offset += 8 + x.numel()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1,
                max_size=30))
def test_int8_round_trip_is_on_the_grid_within_half_a_step(values):
    # Prepare
    x = np.array(values, dtype=np.float32)
    state = OrderedDict(x=torch.from_numpy(x.copy()))
    codec = Int8Codec(ModelSpec.of(state))

    # Execute
    decoded = codec.decode(codec.encode(state))["x"].numpy()

    # Assert
    lo, scale, codes = quantize_uint8(x)
    assert np.array_equal(decoded, dequantize_uint8(lo, scale, codes))
    exact_scale = (np.float64(x.max()) - np.float64(lo)) / 255
    assert lo == x.min()
    if exact_scale == 0:
        assert scale == 0
    else:  # the float32 just above (max - min) / 255
        assert scale >= exact_scale * (1 - 1e-15) > np.nextafter(scale, np.float32(0))
    assert np.all(np.isfinite(decoded)) and np.all(decoded >= x.min())
    err = np.abs(decoded.astype(np.float64) - x.astype(np.float64))
    half_ulp = 2.0**-24 * np.abs(decoded.astype(np.float64)) + 2.0**-150
    assert np.all(err <= np.float64(scale) * (0.5 + 1e-12) + half_ulp)


def test_int8_of_a_constant_tensor_has_scale_0_and_decodes_to_it():
    # Prepare
    state = OrderedDict(x=torch.full((5,), -1.25))
    codec = Int8Codec(ModelSpec.of(state))

    # Execute
    payload = codec.encode(state)

    # Assert
    assert struct.unpack_from("<ff", payload, 8) == (-1.25, 0.0)
    assert torch.equal(codec.decode(payload)["x"], state["x"])


def test_int8_encode_rejects_non_finite_values():
    # Prepare
    state = OrderedDict(x=torch.tensor([0.0, float("inf")]))

    # Execute / Assert
    with pytest.raises(CodecError, match="finite"):
        Int8Codec(ModelSpec.of(state)).encode(state)


@pytest.mark.parametrize("codec_cls", [Float16Codec, Int8Codec])
def test_lossy_codecs_reject_bad_magic_and_truncated_payloads(lenet_state, codec_cls):
    # Prepare
    codec = codec_cls(ModelSpec.of(lenet_state))
    payload = codec.encode(lenet_state)

    # Execute / Assert
    with pytest.raises(CodecError, match="bad magic"):
        codec.decode(b"XXXX" + payload[4:])
    for keep in (0, 7, 8, 12, len(payload) - 1):
        with pytest.raises(CodecError):
            codec.decode(payload[:keep])
    with pytest.raises(CodecError):
        codec.decode(payload + b"\x00")
