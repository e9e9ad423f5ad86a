"""Update codecs (top-k with error feedback, QSGD) and FedAvg's ``update`` parameter: sizes are
the documented formulas, top-k keeps exactly the k largest, error feedback loses nothing, QSGD is
unbiased, and top-k at fraction 1 through the engine gives FedAvg's rounds."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch

from sinsim.learn.codecs import CodecError, ModelSpec
from sinsim.learn.models import build_model
from sinsim.learn.strategies import FedAvg
from sinsim.learn.training import TrainResult
from sinsim.learn.update_codecs import QSGD, UPDATE_CODECS, QSGDFixed, TopK, TopKFixed
from sinsim.scenario import validate_scenario

SMALL = ModelSpec(("w", "b"), ((10, 20), (7,)))  # 207 values


@pytest.fixture(scope="module")
def lenet_spec() -> ModelSpec:
    return ModelSpec.of(build_model("lenet5", seed=0).state_dict())


def _state(spec: ModelSpec, flat: np.ndarray) -> OrderedDict[str, torch.Tensor]:
    out, offset = OrderedDict(), 0
    for name, shape in zip(spec.names, spec.shapes):
        size = math.prod(shape)
        out[name] = torch.from_numpy(flat[offset: offset + size].copy()).reshape(shape)
        offset += size
    return out


def _flat(state) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in state.values()]).numpy()


# ---------------------------------------------------------------------------------------------
# sizes

@pytest.mark.parametrize("fraction", [1e-6, 0.01, 0.05, 0.5, 1.0])
def test_top_k_fixed_size_is_12_plus_8k(lenet_spec, fraction):
    codec = TopKFixed(lenet_spec, fraction)
    k = max(1, math.ceil(fraction * 431_080 - 1e-6))
    payload = codec.encode_flat(np.random.default_rng(0).normal(size=431_080))
    assert codec.k == k and len(payload) == codec.size() == 12 + 8 * k
    assert TopKFixed(lenet_spec, 0.01).size() == 34_500  # the module docstring's number


@pytest.mark.parametrize("levels,bucket", [(1, 512), (4, 512), (8, 512), (255, 64),
                                           (2**20, 1000)])
def test_qsgd_fixed_size_is_the_documented_formula(lenet_spec, levels, bucket):
    codec = QSGDFixed(lenet_spec, levels, bucket)
    b = math.ceil(math.log2(levels + 1))
    m = sum(math.ceil(math.prod(s) / bucket) for s in lenet_spec.shapes)
    payload = codec.encode_flat(np.random.default_rng(0).normal(size=431_080),
                                np.random.default_rng(1))
    assert len(payload) == codec.size() == 16 + 4 * m + math.ceil(431_080 * (1 + b) / 8)


def test_the_docstrings_lenet_sizes(lenet_spec):
    assert QSGDFixed(lenet_spec, 4).size() == 218_940
    assert QSGDFixed(lenet_spec, 8).size() == 272_825


# ---------------------------------------------------------------------------------------------
# top-k

@pytest.mark.parametrize("cls", [TopK, TopKFixed])
def test_top_k_keeps_exactly_the_k_largest_ties_by_index(cls):
    spec = ModelSpec(("a", "b"), ((3, 2), (4,)))  # 10 values
    x = np.array([0.5, -3.0, 2.0, -2.0, 2.0, 0.0, 1.0, -0.5, 3.0, 0.25], np.float32)
    codec = cls(spec, 0.4)  # k = 4: |3| at 1 and 8, then the first two of the |2|s: 2 and 3
    assert codec.k == 4
    out = _flat(codec.decode(codec.encode(_state(spec, x), np.random.default_rng(0))))
    expected = np.zeros(10, np.float32)
    expected[[1, 2, 3, 8]] = x[[1, 2, 3, 8]]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("fraction", [0.01, 0.3, 1.0])
@pytest.mark.parametrize("cls", [TopK, TopKFixed])
def test_top_k_round_trip_on_random_updates(fraction, cls):
    x = np.random.default_rng(3).normal(size=SMALL.numel).astype(np.float32)
    codec = cls(SMALL, fraction)
    out = codec.decode_flat(codec.encode_flat(x))
    kept = np.flatnonzero(out)
    assert len(kept) == codec.k
    np.testing.assert_array_equal(out[kept], x[kept])
    assert np.abs(x[kept]).min() >= np.abs(np.delete(x, kept)).max(initial=0)
    if fraction == 1.0:
        np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("cls", [TopK, TopKFixed])
def test_top_k_refuses_a_payload_of_another_codec_and_non_finite_values(cls):
    codec = cls(SMALL, 0.1)
    with pytest.raises(CodecError, match="magic"):
        codec.decode_flat(b"XXXX" + codec.encode_flat(np.ones(SMALL.numel))[4:])
    with pytest.raises(CodecError, match="k="):
        codec.decode_flat(cls(SMALL, 0.2).encode_flat(np.ones(SMALL.numel)))
    with pytest.raises(CodecError, match="finite"):
        codec.encode_flat(np.full(SMALL.numel, np.nan))


# ---------------------------------------------------------------------------------------------
# QSGD

def _bucket_norms(x: np.ndarray, codec: QSGD) -> np.ndarray:
    """The float32 norm of each value's bucket, as the payload carries it."""
    m = codec.n_buckets
    payload = QSGDFixed(codec.spec, codec.levels, codec.bucket).encode_flat(
        x, np.random.default_rng(0))
    norms = np.frombuffer(payload, "<f4", m, 16).astype(np.float64)
    return np.repeat(norms, codec._lengths)


def test_qsgd_is_unbiased():
    """The mean of N decodes (independent draws) converges to the input. Each decode of a value
    lies in [l, l + 1] * norm / s, so by Hoeffding P(|mean - x_i| >= t) <= 2 exp(-2 N t^2 /
    (norm / s)^2): t = (norm / s) sqrt(ln(2 n / delta) / (2 N)) holds for all n values at once
    but with probability delta = 1e-6."""
    codec = QSGD(SMALL, levels=2, bucket=64)
    x = np.random.default_rng(5).standard_t(3, size=SMALL.numel).astype(np.float32)
    x[:5] = 0  # zeros stay zeros
    n_draws, delta = 4000, 1e-6
    total, sq_err = np.zeros(SMALL.numel), 0.0
    for i in range(n_draws):
        d = codec.decode_flat(codec.encode_flat(x, np.random.default_rng([7, i])))
        total += d
        sq_err += float(np.sum((d.astype(np.float64) - x) ** 2))
    norm = _bucket_norms(x, codec)
    step = norm / codec.levels
    tol = step * math.sqrt(math.log(2 * SMALL.numel / delta) / (2 * n_draws))
    assert np.all(tol < 0.1 * step)  # enough draws to see a biased rounding
    err = np.abs(total / n_draws - x)
    assert np.all(err <= tol), float(np.max(err / tol))
    assert np.all(total[:5] == 0)
    # and the variance bound of Alistarh et al. (Lemma 3.1), per bucket of d values, summed
    bound = sum(min(d / 4, math.sqrt(d) / 2) * float(np.sum(x[s: s + d].astype(np.float64) ** 2))
                for s, d in zip(codec._starts, codec._lengths))
    assert sq_err / n_draws <= 1.05 * bound


def test_qsgd_with_huge_levels_is_close_to_exact():
    x = np.random.default_rng(2).normal(size=SMALL.numel).astype(np.float32)
    codec = QSGD(SMALL, levels=2**20, bucket=512)
    out = codec.decode_flat(codec.encode_flat(x, np.random.default_rng(0)))
    norm = _bucket_norms(x, codec)
    # one level step at most, plus rounding the decoded value to float32
    assert np.all(np.abs(out - x) <= norm / 2**20 + np.spacing(np.abs(x)))
    assert np.all(np.sign(out) == np.sign(x))


@pytest.mark.parametrize("name,params", [("qsgd", {"levels": 4}), ("topk", {"fraction": 0.1})])
def test_same_rng_same_bytes(name, params):
    codec = UPDATE_CODECS[name](SMALL, **params)
    x = np.random.default_rng(1).normal(size=SMALL.numel).astype(np.float32)
    a = codec.encode_flat(x, np.random.default_rng([1, 2, 3]))
    assert a == codec.encode_flat(x, np.random.default_rng([1, 2, 3]))
    if name == "qsgd":
        assert a != codec.encode_flat(x, np.random.default_rng([1, 2, 4]))


def test_qsgd_refuses_a_payload_of_other_parameters():
    x = np.ones(SMALL.numel, np.float32)
    with pytest.raises(CodecError, match="levels"):
        QSGD(SMALL, 4).decode_flat(QSGD(SMALL, 3).encode_flat(x, np.random.default_rng(0)))


# ---------------------------------------------------------------------------------------------
# FedAvg with an update codec

class _FakeTrainer:
    """Adds a random step (from the client's stream) to the received weights."""

    def train(self, global_state, client, rng, epochs=None):
        state = {k: v + torch.from_numpy(rng.normal(size=tuple(v.shape)).astype(np.float32))
                 for k, v in global_state.items()}
        return TrainResult(state, 10 + client, 1, 1.0)


def _global(spec: ModelSpec, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    return _state(spec, np.random.default_rng(seed).normal(size=spec.numel).astype(np.float32))


def test_error_feedback_loses_nothing():
    """What was sent over the rounds plus the final residual is the sum of the updates."""
    fedavg = FedAvg(SMALL, update={"kind": "topk", "fraction": 0.05})
    trainer, sent, deltas = _FakeTrainer(), [], []
    for r in range(6):
        g = _global(SMALL, r)
        before = fedavg.client_state(3)
        update = fedavg.client_update(trainer, g, 3, np.random.default_rng([0, r]))
        delta = _flat(trainer.train(g, 3, np.random.default_rng([0, r])).state) - _flat(g)
        s = fedavg.update.decode_flat(update.payload)
        # each round exactly: sent + new residual = update + old residual
        acc = delta if before is None else delta + before
        np.testing.assert_array_equal(s + update.state, acc)
        fedavg.set_client_state(3, update.state)
        sent.append(s)
        deltas.append(delta)
    total_sent = np.sum(np.asarray(sent, np.float64), axis=0) + fedavg.client_state(3)
    scale = np.max(np.abs(np.asarray(deltas)), axis=0) * 6
    np.testing.assert_allclose(total_sent, np.sum(np.asarray(deltas, np.float64), axis=0),
                               rtol=0, atol=float(np.max(scale)) * 2**-22)


def test_residuals_are_checkpointed_and_not_pickled_to_training_processes():
    fedavg = FedAvg(SMALL, update={"kind": "topk", "fraction": 0.1})
    assert fedavg.checkpoint() is None
    g = _global(SMALL)
    u = fedavg.client_update(_FakeTrainer(), g, 1, np.random.default_rng(0))
    fedavg.set_client_state(1, u.state)
    assert pickle.loads(pickle.dumps(fedavg)).residuals == {}
    resumed = FedAvg(SMALL, update={"kind": "topk", "fraction": 0.1})
    resumed.restore(pickle.loads(pickle.dumps(fedavg.checkpoint())))
    a = fedavg.client_update(_FakeTrainer(), g, 1, np.random.default_rng(1))
    b = resumed.client_update(_FakeTrainer(), g, 1, np.random.default_rng(1))
    assert a.payload == b.payload
    np.testing.assert_array_equal(a.state, b.state)
    FedAvg(SMALL).restore(None)  # a checkpoint of plain FedAvg


def test_qsgd_keeps_no_state_and_its_draws_are_keyed_by_the_clients_stream():
    fedavg = FedAvg(SMALL, update={"kind": "qsgd", "levels": 4})
    g = _global(SMALL)
    a = fedavg.client_update(_FakeTrainer(), g, 2, np.random.default_rng([0, 4, 1, 2]))
    b = fedavg.client_update(_FakeTrainer(), g, 2, np.random.default_rng([0, 4, 1, 2]))
    assert a.state is None and a.avg_bits is None and a.payload == b.payload
    assert fedavg.encode_global(g) == FedAvg(SMALL).encode_global(g)  # the downlink is fp32


def test_the_server_adds_the_mean_update_to_the_model_it_broadcast():
    fedavg, plain = FedAvg(SMALL, update={"kind": "topk", "fraction": 1.0}), FedAvg(SMALL)
    g = _global(SMALL)
    agg, ref = fedavg.new_aggregator(), plain.new_aggregator()
    assert agg.result(g) is g
    for c in range(3):
        agg.add(fedavg.client_update(_FakeTrainer(), g, c, np.random.default_rng(c)).payload,
                10 + c)
        ref.add(plain.client_update(_FakeTrainer(), g, c, np.random.default_rng(c)).payload,
                10 + c)
    got, want = agg.result(g), ref.result(g)
    for k in g:  # equal up to rounding the update to float32
        torch.testing.assert_close(got[k], want[k], rtol=2**-22, atol=2**-22)


@pytest.mark.parametrize("update", [{"kind": "topk", "fraction": 0.02},
                                    {"kind": "qsgd", "levels": 8, "bucket": 128}])
def test_fedavg_with_an_update_codec_pickles_into_a_fresh_process(update):
    fedavg = FedAvg(SMALL, update=update)
    code = ("import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); "
            "print(s.update.name, s.params.update.kind, type(s.update).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(fedavg),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split() == [update["kind"], update["kind"],
                                            type(fedavg.update).__name__]


def test_scenarios_choose_an_update_codec_with_its_parameters():
    def algs(*entries):
        return validate_scenario({"name": "u", "clients": {"count": 4},
                                  "training": {"dataset": "synthetic", "rounds": 1,
                                               "clients_per_round": 2},
                                  "algorithms": list(entries)}).resolved()["algorithms"]

    got = algs({"fedavg": {"label": "topk-1pc", "update": {"kind": "topk", "fraction": 0.01}}},
               {"fedavg": {"label": "q", "update": "qsgd"}}, "fedavg")
    assert got[0]["params"]["update"] == {"kind": "topk", "fraction": 0.01,
                                          "error_feedback": True}
    assert got[1]["params"]["update"] == {"kind": "qsgd", "levels": 4, "bucket": 512}
    assert got[2]["params"]["update"] is None
    for bad in ({"kind": "topk", "fraction": 0}, {"kind": "topk", "fraction": 1.5},
                {"kind": "qsgd", "levels": 0}, {"kind": "topq"}):
        with pytest.raises(Exception, match="update"):
            algs({"fedavg": {"update": bad}})


# ---------------------------------------------------------------------------------------------
# through the engine

@pytest.mark.slow  # an engine run: CI's slow suite
def test_top_k_at_fraction_one_is_fedavg(tmp_path):
    """Same selection, same batches, the whole update on the wire: the same rounds (the model
    only up to rounding the update to float32, so round 1's loss to ~1e-7; later rounds train on
    from the two models, which carries that rounding forward by a processor-dependent amount,
    so their accuracy and loss are not compared); the values plus a bit an index up."""
    from sinsim.sim.engine import run_scenario

    scenario = validate_scenario({
        "name": "topk1", "clients": {"count": 4},
        "training": {"dataset": "synthetic", "rounds": 2, "clients_per_round": 2,
                     "workers": 1},
        "algorithms": ["fedavg", {"fedavg": {"label": "topk", "update": {
            "kind": "topk", "fraction": 1.0}}}]})
    run_scenario(scenario, tmp_path)
    rounds = pd.read_csv(tmp_path / "rounds.csv").set_index(["algorithm", "round"])
    fedavg, topk = rounds.loc["fedavg"], rounds.loc["topk"]
    n_test = 2000  # synthetic's test set: a near-tie may flip one prediction
    assert topk.test_accuracy[1] == pytest.approx(fedavg.test_accuracy[1], abs=1.5 / n_test)
    assert topk.test_loss[1] == pytest.approx(fedavg.test_loss[1], rel=1e-5)
    pd.testing.assert_series_equal(fedavg.completed, topk.completed)
    n = 431_080
    # every gap 0: Rice parameter 0, one bit an index
    assert (topk.bytes_up == topk.completed * (16 + 4 * n + math.ceil(n / 8))).all()
    assert (fedavg.bytes_up == fedavg.completed * (8 + 4 * n)).all()
    assert (topk.bytes_down == fedavg.bytes_down).all()


# ---------------------------------------------------------------------------------------------
# the coded layouts: the same values as the fixed ones, in the sizes their codes give

def test_elias_codes_on_the_wire():
    from sinsim.learn import bitcode

    # gamma(1) = 1, gamma(2) = 010, gamma(5) = 00101; Rice(9, k=2) = 00 1 01
    v, w = bitcode.gamma_fields(np.array([1, 2, 5]))
    assert bitcode.write_fields(v, w) == bytes([0b10100010, 0b10000000])
    assert bitcode.write_fields(*bitcode.rice_fields(np.array([9]), 2)) == bytes([0b00101000])
    reader = bitcode.BitReader(bitcode.write_fields(v, w))
    assert [reader.gamma() for _ in range(3)] == [1, 2, 5] and reader.padding_ok()
    x = np.random.default_rng(0).geometric(0.01, size=500).astype(np.uint64)
    assert list(bitcode.gamma_bits(x)) == [2 * int(a).bit_length() - 1 for a in x]
    k = bitcode.best_rice_k(x)
    reader = bitcode.BitReader(bitcode.write_fields(*bitcode.rice_fields(x, k)))
    assert [reader.rice(k) for _ in range(500)] == x.tolist()


def test_compiled_stream_readers_equal_the_code_by_code_reader():
    """read_rice / read_qsgd (compiled loops) give what BitReader gives code by code, and
    refuse a stream cut inside a code or followed by more than padding."""
    from sinsim.learn import bitcode

    rng = np.random.default_rng(3)
    for k in (0, 3, 9):
        x = rng.geometric(0.02, size=300).astype(np.uint64) - 1
        stream = bitcode.write_fields(*bitcode.rice_fields(x, k))
        reader = bitcode.BitReader(stream)
        assert bitcode.read_rice(b"xy" + stream, 2, 300, k).tolist() == [
            reader.rice(k) for _ in range(300)] == x.tolist()
        with pytest.raises(ValueError, match="ends inside"):
            bitcode.read_rice(stream, 0, 301, k)
        with pytest.raises(ValueError, match="bytes left"):
            bitcode.read_rice(stream + b"\x00", 0, 300, k)
    gaps = rng.geometric(0.1, size=200).astype(np.uint64)
    levels = rng.integers(1, 9, size=200).astype(np.uint64)
    signs = rng.integers(0, 2, size=200).astype(np.uint64)
    gv, gw = bitcode.gamma_fields(gaps)
    lv, lw = bitcode.gamma_fields(levels)
    values = np.stack([gv[0::2], gv[1::2], signs, lv[0::2], lv[1::2]], 1).reshape(-1)
    widths = np.stack([gw[0::2], gw[1::2], np.ones(200, np.int64), lw[0::2], lw[1::2]],
                      1).reshape(-1)
    stream = bitcode.write_fields(values, widths)
    idx, negative, level = bitcode.read_qsgd(stream, 0, 200)
    assert idx.tolist() == (np.cumsum(gaps.astype(np.int64)) - 1).tolist()
    assert negative.tolist() == signs.astype(bool).tolist() and level.tolist() == levels.tolist()
    with pytest.raises(ValueError, match="ends inside"):
        bitcode.read_qsgd(stream[:-3], 0, 200)


@pytest.mark.parametrize("levels,bucket", [(1, 512), (4, 512), (8, 512), (64, 100)])
def test_qsgd_coded_decodes_to_the_fixed_layouts_values_in_its_exact_size(lenet_spec, levels,
                                                                          bucket):
    x = np.random.default_rng(levels).standard_t(3, size=431_080).astype(np.float32)
    x[1000:3000] = 0
    coded, fixed = QSGD(lenet_spec, levels, bucket), QSGDFixed(lenet_spec, levels, bucket)
    payload = coded.encode_flat(x, np.random.default_rng(9))
    np.testing.assert_array_equal(coded.decode_flat(payload), fixed.decode_flat(
        fixed.encode_flat(x, np.random.default_rng(9))))  # the same draws, the same values
    _, level, _ = coded.quantize(x, np.random.default_rng(9))
    assert len(payload) == coded.coded_size(level)
    nz = np.flatnonzero(level)  # the size in closed form: Elias gamma of gaps and levels
    gamma = [2 * int(g).bit_length() - 1 for g in np.diff(nz, prepend=-1)]
    bits = sum(gamma) + len(nz) + sum(2 * int(v).bit_length() - 1 for v in level[nz])
    assert len(payload) == 20 + 4 * coded.n_buckets + math.ceil(bits / 8)
    if levels <= 8:  # the paper's point: far below the fixed width with few levels
        assert len(payload) < 0.5 * fixed.size()


@pytest.mark.parametrize("fraction", [1e-6, 0.01, 0.05, 1.0])
def test_top_k_coded_decodes_to_the_fixed_layouts_values_in_its_exact_size(lenet_spec,
                                                                            fraction):
    x = np.random.default_rng(4).normal(size=431_080).astype(np.float32)
    coded, fixed = TopK(lenet_spec, fraction), TopKFixed(lenet_spec, fraction)
    payload = coded.encode_flat(x)
    np.testing.assert_array_equal(coded.decode_flat(payload),
                                  fixed.decode_flat(fixed.encode_flat(x)))
    idx = coded.select(x)[1].astype(np.int64)
    gaps = np.diff(idx, prepend=-1) - 1
    rice = min(int(((gaps >> k) + 1 + k).sum()) for k in range(32))
    assert len(payload) == coded.coded_size(idx) == 16 + 4 * coded.k + math.ceil(rice / 8)
    if fraction >= 0.01:
        assert len(payload) < 0.7 * fixed.size()


@pytest.mark.parametrize("cls", [QSGD, TopK])
def test_coded_layouts_refuse_damaged_payloads(cls):
    codec = cls(SMALL, 4) if cls is QSGD else cls(SMALL, 0.2)
    x = np.random.default_rng(1).normal(size=SMALL.numel).astype(np.float32)
    payload = codec.encode_flat(x, np.random.default_rng(0))
    with pytest.raises(CodecError, match="magic"):
        codec.decode_flat(b"XXXX" + payload[4:])
    with pytest.raises(CodecError):
        codec.decode_flat(payload[:-1])  # a code cut short
    with pytest.raises(CodecError):
        codec.decode_flat(payload + b"\x80")  # bytes after the last code


def test_error_feedback_keeps_the_whole_update_when_the_upload_is_never_sent():
    spec = SMALL
    strategy = FedAvg(spec, update={"kind": "topk", "fraction": 0.1})
    g = np.random.default_rng(0)
    received = _state(spec, g.normal(size=spec.numel).astype(np.float32))
    trained = _state(spec, g.normal(size=spec.numel).astype(np.float32))
    update = strategy._upload(TrainResult(trained, 10, 1, 1.0), received, 0,
                              np.random.default_rng(1))
    delta = _flat(trained) - _flat(received)
    np.testing.assert_array_equal(update.unsent_state, delta)
    sent = strategy.update.decode_flat(update.payload)
    np.testing.assert_array_equal(update.state, delta - sent)
    assert QSGD(spec).error_feedback is False
