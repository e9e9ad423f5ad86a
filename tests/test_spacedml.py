"""SpaceDML through the engine on generated data: bytes, bits, partial averaging, determinism,
and the server's data-free re-quantization."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from sinsim.learn import alq
from sinsim.learn.alq_codec import ALQCodec
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.models import build_model
from sinsim.learn.strategies import SpaceDML, build_strategy
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario
from tests.invariants import check_run_invariants, load_tables

FAST = {"schedule": ["prune", "basis", "coordinate", "ste"], "warmup_batches": 2}  # short


def _scenario(algorithms, **training):
    return validate_scenario({
        "name": "spacedml_test", "seed": 5,
        "clients": {"count": 60},
        "links": {"uplink": {"rate_bps": 2e6, "propagation_delay_s": 0.01},
                  "downlink": {"rate_bps": 20e6, "propagation_delay_s": 0.01},
                  "loss": {"kind": "bernoulli", "p": 0.2}},
        "training": {"dataset": "synthetic", "rounds": 2, "clients_per_round": 3,
                     "batch_size": 20, "lr": 0.05, "round_deadline": "10min", **training},
        "compute": {"flops_per_s": 1e9},
        "algorithms": algorithms,
    })


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("spacedml")
    sc = _scenario(["fedavg", {"spacedml": {"label": "sdml", "pruning_ratio": 0.9, **FAST}}])
    return out, run_scenario(sc, out)


def test_spacedml_run_satisfies_invariants_and_logs_bits(paired_run):
    out, summary = paired_run
    rounds, transfers, clients = load_tables(out)
    check_run_invariants(out)
    sd = rounds[rounds.algorithm == "sdml"]
    fa = rounds[rounds.algorithm == "fedavg"]
    # Assert: bits logged for SpaceDML only, and its payloads are a small fraction of fp32
    assert sd.avg_bits.notna().all() and fa.avg_bits.isna().all()
    assert (sd.avg_bits < 6).all()
    up = transfers[transfers.direction == "up"]
    assert up[up.algorithm == "sdml"].bytes.max() < 0.2 * up[up.algorithm == "fedavg"].bytes.min()
    assert set(summary["algorithms"]) == {"fedavg", "sdml"}


def test_spacedml_sees_the_same_network_as_fedavg(paired_run):
    out, _ = paired_run
    _, transfers, _ = load_tables(out)
    # the same clients are picked and the same transfers lose: statuses agree in round 1
    key = ["round", "client", "direction"]
    r1 = transfers[transfers["round"] == 1]
    fa = r1[r1.algorithm == "fedavg"].set_index(key).status.sort_index()
    sd = r1[r1.algorithm == "sdml"].set_index(key).status.sort_index()
    assert list(fa.index[fa.index.get_level_values("direction") == "down"]) == \
        list(sd.index[sd.index.get_level_values("direction") == "down"])


def test_spacedml_is_deterministic(paired_run, tmp_path):
    out, _ = paired_run
    sc = _scenario(["fedavg", {"spacedml": {"label": "sdml", "pruning_ratio": 0.9, **FAST}}])
    run_scenario(sc, tmp_path)
    for name in ("rounds.csv", "transfers.csv"):
        a, b = pd.read_csv(out / name), pd.read_csv(tmp_path / name)
        pd.testing.assert_frame_equal(a.drop(columns="host_wall_s", errors="ignore"),
                                      b.drop(columns="host_wall_s", errors="ignore"))


def test_logged_bytes_are_payload_lengths(paired_run):
    out, summary = paired_run
    _, transfers, _ = load_tables(out)
    # round 1's broadcast is the initial model sketched at 6 bits: 8 + 323,637 + 48,720 + 2,320
    down1 = transfers[(transfers.algorithm == "sdml") & (transfers["round"] == 1)
                      & (transfers.direction == "down")]
    assert (down1.bytes == 374_685).all()
    # an upload's logged size is the length of the payload the strategy builds
    spec = ModelSpec.of(build_model("lenet5", 0).state_dict())
    strategy = build_strategy("spacedml", spec, {}, "lenet5")
    assert len(strategy.encode_global(build_model("lenet5", 0).state_dict())) == 374_685
    resolved = json.loads((out / "summary.json").read_text())["resolved_scenario"]
    assert resolved["algorithms"][1]["params"]["pruning_ratio"] == 0.9


@pytest.mark.parametrize("policy", ["client_max", "client_mean"])
def test_server_bits_from_clients_never_exceed_the_clients(policy):
    spec = ModelSpec.of(build_model("lenet5", 0).state_dict())
    s = SpaceDML(spec, "lenet5", server_bits=policy, server_refine_passes=1)
    state = build_model("lenet5", 1).state_dict()
    q = alq.sketch_model(state, s.layout, 6, {gs.name: torch.randint(0, 4, (gs.n_groups,))
                                              for gs in s.layout})
    agg = s.new_aggregator()
    agg.add(s.codec.encode(q), 10)
    # Act
    agg.result(state)
    _, server_q = s._global
    # Assert
    for name, layer in server_q.layers.items():
        assert (layer.widths <= q.layers[name].widths).all()


def test_server_requantizes_the_mean_of_the_decoded_uploads():
    spec = ModelSpec.of(build_model("lenet5", 0).state_dict())
    s = SpaceDML(spec, "lenet5", server_refine_passes=2)
    codec = ALQCodec(spec, s.layout, 6)
    q1 = alq.sketch_model(build_model("lenet5", 1).state_dict(), s.layout, 6, 2)
    q2 = alq.sketch_model(build_model("lenet5", 2).state_dict(), s.layout, 6, 2)
    agg = s.new_aggregator()
    agg.add(codec.encode(q1), 30)
    agg.add(codec.encode(q2), 10)
    # Act
    new = agg.result(build_model("lenet5", 0).state_dict())
    # Assert: close to the weighted mean, and exactly what the next broadcast decodes to
    names = spec.names
    mean = {k: 0.75 * q1.state_dict(names)[k] + 0.25 * q2.state_dict(names)[k] for k in names}
    for k in names:
        err = float(((new[k] - mean[k]) ** 2).sum() / (mean[k] ** 2).sum())
        assert err < 0.02, k
    broadcast = s.decode_global(s.encode_global(new)).state_dict(names)
    for k in names:
        assert torch.equal(broadcast[k], new[k])


def test_nobody_back_keeps_the_global_model():
    spec = ModelSpec.of(build_model("lenet5", 0).state_dict())
    s = SpaceDML(spec, "lenet5")
    state = build_model("lenet5", 0).state_dict()
    # Assert
    assert s.new_aggregator().result(state) is state


def test_top_k_is_raised_for_short_phases():
    spec = ModelSpec.of(build_model("lenet5", 0).state_dict())
    s = SpaceDML(spec, "lenet5", pruning_ratio=0.8, top_k=0.005)
    # Assert: top_k * steps >= pruning ratio (with a factor 2 of headroom)
    assert s.effective_top_k(8) * 8 == pytest.approx(1.6)
    assert s.effective_top_k(10_000) == 0.005


def test_fp16_coordinates_shrink_the_payload_and_round_trip_exactly():
    spec = ModelSpec.of(build_model("lenet5", 0).state_dict())
    s32 = SpaceDML(spec, "lenet5")
    s16 = SpaceDML(spec, "lenet5", alpha_dtype="float16")
    state = build_model("lenet5", 3).state_dict()
    p32, p16 = s32.encode_global(state), s16.encode_global(state)
    # Assert
    assert len(p32) - len(p16) == 2 * 12_180
    q = s16.quantize_global(state)
    assert torch.equal(s16.decode_global(s16.codec.encode(q)).state_dict(spec.names)["fc1.weight"],
                       q.state_dict(spec.names)["fc1.weight"])


def test_equal_compute_fedavg_spends_more_epochs(tmp_path):
    sc = _scenario(["fedavg", {"fedavg": {"label": "fedavg-3", "local_epochs": 3}}], rounds=1)
    run_scenario(sc, tmp_path)
    clients = pd.read_csv(tmp_path / "clients.csv")
    c = clients.dropna(subset=["compute_s"]).groupby("algorithm").compute_s.mean()
    assert c["fedavg-3"] == pytest.approx(3 * c["fedavg"])


def test_lossy_fedavg_codecs_cut_the_bytes(tmp_path):
    sc = _scenario(["fedavg", {"fedavg": {"label": "fp16", "codec": "float16"}},
                    {"fedavg": {"label": "int8", "codec": "int8"}}], rounds=1,
                   clients_per_round=2)
    run_scenario(sc, tmp_path)
    rounds = pd.read_csv(tmp_path / "rounds.csv").set_index("algorithm")
    per_down = rounds.bytes_down / rounds.selected
    assert per_down["fedavg"] == 1_724_328
    assert per_down["fp16"] == 862_168
    assert per_down["int8"] == 431_152
    assert rounds.test_accuracy["int8"] > 0.5


# -- the client round: where it starts, what it keeps ----------------------------------------

@pytest.fixture(scope="module")
def prep():
    from sinsim.sim.engine import prepare
    return prepare(_scenario(["fedavg"]))


def _received_with_dead_groups(s: SpaceDML, prep) -> tuple[alq.QuantizedModel, list[int]]:
    """The initial model sketched at 6 bits with conv2's kernels on input channel 0 pruned away
    (not whole filters: a filter with no weights left outputs a constant that ReLU may zero,
    and then no gradient ever reaches it)."""
    q = s.quantize_global(prep.init_state)
    layer = q.layers["conv2.weight"]
    dead = [o * 20 for o in range(50)]  # kernel (o, 0) of conv2 [50, 20, 5, 5]
    layer.mask[dead] = False
    layer.alpha[dead] = 0
    layer.B[dead] = 0
    return s.decode_global(s.codec.encode(q)), dead


def _update(s: SpaceDML, prep, received, client: int = 0):
    import numpy as np
    return s.client_update(prep.trainer, received, client, np.random.default_rng(0))


@pytest.mark.parametrize("pretrain, comes_back", [("every_round", True), ("never", False)])
def test_a_pruned_away_group_comes_back_when_the_client_resketches_after_fp32_steps(
        prep, pretrain, comes_back):
    spec = prep.spec
    s = SpaceDML(spec, "lenet5", schedule=["coordinate"], pretrain=pretrain, start="resketch",
                 warmup_batches=1)
    received, dead = _received_with_dead_groups(s, prep)
    assert int(received.layers["conv2.weight"].widths[dead].sum()) == 0
    # Act
    update = _update(s, prep, received)
    # Assert: an fp32 epoch gives the dead kernels weights again, the sketch at i_max slots;
    # re-sketching the received weights alone has nothing to sketch there
    widths = s.decode_global(update.payload).layers["conv2.weight"].widths[dead]
    back = float((widths > 0).float().mean())
    if comes_back:  # (a kernel whose input or output ReLU is dead gets no gradient)
        assert back >= 0.9 and int(widths.max()) == 6
    else:
        assert back == 0


def test_pretraining_first_round_only_is_remembered_per_client(prep):
    s = SpaceDML(prep.spec, "lenet5", schedule=["coordinate"], pretrain="first_round",
                 warmup_batches=1)
    received = s.decode_global(s.encode_global(prep.init_state))
    first = _update(s, prep, received, client=4)
    # Assert: the strategy is unchanged until the engine commits the returned state
    assert not s.client_state(4).pretrained
    s.set_client_state(4, first.state)
    second = _update(s, prep, received, client=4)
    assert s.client_state(4).pretrained and not s.client_state(5).pretrained
    assert second.flops < first.flops  # no fp32 epoch in the second round


def test_persistent_moments_are_kept_per_client_and_fresh_ones_are_not(prep):
    fresh = SpaceDML(prep.spec, "lenet5", schedule=["basis"], moments="fresh", warmup_batches=1)
    kept = SpaceDML(prep.spec, "lenet5", schedule=["basis"], moments="persistent",
                    warmup_batches=1)
    received = fresh.decode_global(fresh.encode_global(prep.init_state))
    a, b = _update(fresh, prep, received), _update(kept, prep, received)
    assert a.state.moments is None
    w = b.state.moments["w"]
    # Assert: 3 fp32 tensors per quantized weight (430,500 of them) = 5.2 MB
    n_bytes = sum(t.numel() * t.element_size() for m, v, vbar, _ in w for t in (m, v, vbar))
    assert n_bytes == 3 * 4 * 430_500
    # the second round continues the counters (no warm-up batches, t goes on)
    kept.set_client_state(0, b.state)
    c = _update(kept, prep, received)
    assert c.state.moments["w"][0][3] > w[0][3]
    assert c.flops < b.flops  # the warm-up batches are skipped


def test_the_strategy_a_training_process_gets_leaves_the_clients_memory_behind(prep):
    import pickle
    s = SpaceDML(prep.spec, "lenet5", schedule=["coordinate"], moments="persistent",
                 warmup_batches=1)
    received = s.decode_global(s.encode_global(prep.init_state))
    s.set_client_state(0, _update(s, prep, received).state)
    # Act
    copy = pickle.loads(pickle.dumps(s))
    # Assert: the 5.2 MB of moments stay with the run (jobs carry their client's state)
    assert s.client_state(0).moments is not None
    assert copy.memory == {} and copy._global is None
    assert len(pickle.dumps(s)) < 1_000_000
