"""The ``flower`` algorithm: Flower's Message-API strategies over the SIN (docs/flower.md).

Equivalence (the slow tests on ``scenarios/tiny.yaml``): Flower's FedAvg through the adapter
gives sinsim's ``fedavg`` tables (bytes and times identical, accuracy per round within float
tolerance: Flower averages in float32 numpy, sinsim in float64 torch), FedProx with
``proximal_mu: 0`` equals FedAvg, and FedAdam / FedYogi / FedAvgM / Krum / FedMedian / QFedAvg learn.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("flwr")

from flwr.serverapp.strategy import FedAvg as FlwrFedAvg  # noqa: E402

from sinsim._rng import rng_for  # noqa: E402
from sinsim.errors import ConfigError  # noqa: E402
from sinsim.learn.codecs import ModelSpec  # noqa: E402
from sinsim.learn.strategies import RoundContext, build_strategy  # noqa: E402
from sinsim.learn.strategies.flower import _digest  # noqa: E402
from sinsim.learn.strategies.flower_api import ClientConfig, client_config  # noqa: E402
from sinsim.learn.training import LocalTrainer, TrainConfig  # noqa: E402
from sinsim.scenario import load_scenario, validate_scenario  # noqa: E402
from sinsim.sim.engine import run_scenario  # noqa: E402
from tests.test_resume import _assert_same_tables, _Stop, _stop_after  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "scenarios" / "tiny.yaml"


class ConfiguringFedAvg(FlwrFedAvg):
    """A user's strategy (``tests.test_flower:ConfiguringFedAvg``): FedAvg that sends each
    client its own learning rate and an extra key no sinsim client knows."""

    def configure_train(self, server_round, arrays, config, grid):
        from flwr.app import ConfigRecord, RecordDict

        msgs = list(super().configure_train(server_round, arrays, config, grid))
        for m in msgs:
            cfg = ConfigRecord({"lr": 0.01 * (1 + m.metadata.dst_node_id % 2),
                                "local-epochs": 1, "colour": "blue"})
            m.content = RecordDict({"arrays": arrays, "config": cfg})
        return msgs


def _raw(algorithms, **training):
    return {"name": "flower_test", "seed": 1, "clients": {"count": 4},
            "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2,
                         "workers": 1, **training},
            "algorithms": algorithms}


def _error(write_yaml, entry) -> str:
    with pytest.raises(ConfigError) as e:
        load_scenario(write_yaml(_raw(["fedavg", {"flower": entry}])))
    return str(e.value)


# -- the trainer's per-call config ----------------------------------------------------------

@pytest.fixture(scope="module")
def trainer():
    from sinsim.learn.datasets import load_dataset
    from sinsim.learn.models import build_model, training_flops_per_sample

    ds = load_dataset("synthetic", None, download=False)
    model = build_model("lenet5", 0, ds.input_shape)
    shards = [np.arange(i * 30, (i + 1) * 30) for i in range(3)]
    tr = LocalTrainer(model, ds, shards, TrainConfig(1, 10, 0.05),
                      training_flops_per_sample(model, ds.input_shape), torch.device("cpu"))
    return tr, {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_train_with_default_overrides_is_bit_identical(trainer):
    tr, w0 = trainer
    plain = tr.train(w0, 0, rng_for(0, "train", 1, 0))
    given = tr.train(w0, 0, rng_for(0, "train", 1, 0), 1, lr=0.05, batch_size=10,
                     proximal_mu=0.0)
    assert _same(plain.state, given.state) and plain.n_steps == given.n_steps == 3


def test_lr_and_batch_size_overrides_change_the_training(trainer):
    tr, w0 = trainer
    base = tr.train(w0, 0, rng_for(0, "train", 1, 0))
    slower = tr.train(w0, 0, rng_for(0, "train", 1, 0), lr=0.01)
    bigger = tr.train(w0, 0, rng_for(0, "train", 1, 0), 2, batch_size=15)
    assert not _same(base.state, slower.state)
    assert (base.n_steps, bigger.n_steps) == (3, 4)
    assert bigger.flops == 2 * base.flops


def _dist(a, b):
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)


def test_the_proximal_term_keeps_the_client_near_the_model_it_received(trainer):
    tr, w0 = trainer
    free = tr.train(w0, 1, rng_for(0, "train", 1, 1), lr=0.1)
    held = tr.train(w0, 1, rng_for(0, "train", 1, 1), lr=0.1, proximal_mu=5.0)
    assert _dist(held.state, w0) < 0.8 * _dist(free.state, w0)
    with pytest.raises(ValueError, match="proximal_mu"):
        tr.train(w0, 1, rng_for(0, "train", 1, 1), proximal_mu=-1.0)


def test_train_batched_with_another_config_trains_each_client_alone(trainer):
    tr, w0 = trainer
    rngs = [rng_for(0, "train", 1, c) for c in (0, 1)]
    batched = tr.train_batched(w0, [0, 1], rngs, lr=0.02, proximal_mu=0.5)
    alone = [tr.train(w0, c, rng_for(0, "train", 1, c), lr=0.02, proximal_mu=0.5)
             for c in (0, 1)]
    assert all(_same(a.state, b.state) for a, b in zip(batched, alone))


# -- the client config a strategy sends -----------------------------------------------------

def test_client_config_reads_flowers_keys_and_collects_unknown_ones():
    unknown: set[str] = set()
    cfg = client_config({"lr": 0.02, "local-epochs": 2, "batch-size": 32, "proximal-mu": 0.1,
                         "server-round": 3, "colour": "blue"}, unknown)
    assert cfg == ClientConfig(0.02, 2, 32, 0.1) and unknown == {"colour"}
    assert client_config({}, set()) == ClientConfig()
    for bad in ({"lr": 0}, {"local-epochs": 1.5}, {"batch-size": True}, {"proximal-mu": -1}):
        with pytest.raises(ValueError, match="must be"):
            client_config(bad, set())


def _round(strategy, state, r, candidates=(0, 1, 2, 3)):
    strategy.select(RoundContext(r, 0.0, tuple(candidates), 2, 1))
    return strategy.encode_global(state)


def test_the_strategys_config_reaches_each_client_and_unknown_keys_are_told_once(caplog):
    state = {"w": torch.ones(3)}
    s = build_strategy("flower", ModelSpec.of(state),
                       {"strategy": "tests.test_flower:ConfiguringFedAvg"})
    with caplog.at_level(logging.WARNING, logger="sinsim.flower"):
        for r in (1, 2, 3):
            _round(s, state, r)
    assert {c: cfg.lr for c, cfg in s.configs.items()} == {
        c: 0.01 * (1 + (100 + c) % 2) for c in s.configs}
    told = [r for r in caplog.records if "colour" in r.getMessage()]
    assert len(told) == 1


def test_flowers_choice_of_nodes_is_seeded_and_within_the_offer():
    state = {"w": torch.ones(3)}
    spec = ModelSpec.of(state)
    picks = []
    for _ in range(2):
        s = build_strategy("flower", spec, {"strategy": "FedAvg", "offer": "candidates",
                                            "params": {"fraction_train": 0.5}})
        picks.append([s.select(RoundContext(r, 0.0, tuple(range(8)), 2, 7))
                      for r in (1, 2, 3)])
    assert picks[0] == picks[1]
    assert all(len(p) == 4 and set(p) <= set(range(8)) for p in picks[0])
    assert len({tuple(p) for p in picks[0]}) > 1


def test_a_strategy_that_waits_for_more_nodes_stops_with_what_to_change():
    state = {"w": torch.ones(3)}
    s = build_strategy("flower", ModelSpec.of(state),
                       {"strategy": "FedAvg", "params": {"min_available_nodes": 5}})
    with pytest.raises(RuntimeError, match="clients_per_round"):
        _round(s, state, 1)


# -- errors a user can act on -----------------------------------------------------------------

def test_the_yaml_of_the_issue_loads(write_yaml):
    sc = load_scenario(write_yaml(_raw([
        "fedavg",
        {"flower": {"label": "fedadam", "strategy": "FedAdam",
                    "params": {"eta": 0.01, "eta_l": 0.05}}},
        {"flower": {"label": "krum", "strategy": "Krum", "params": {"num_malicious_nodes": 1}}},
        {"flower": {"label": "mine", "strategy": "tests.test_flower:ConfiguringFedAvg"}},
    ])))
    assert [a.label for a in sc.algorithms] == ["fedavg", "fedadam", "krum", "mine"]


def test_an_unknown_strategy_gets_a_did_you_mean(write_yaml):
    msg = _error(write_yaml, {"strategy": "FedAdamm"})
    assert "algorithms.1.flower.strategy: unknown Flower strategy 'FedAdamm'; did you mean " \
           "'FedAdam'?" in msg


def test_bad_params_name_the_key_with_flowers_message(write_yaml):
    assert "algorithms.1.flower.params.etaa: no such parameter of FedAdam; did you mean " \
           "'eta'?" in _error(write_yaml, {"strategy": "FedAdam", "params": {"etaa": 0.1}})
    assert "algorithms.1.flower.params.num_malicious_nodes: input should be a valid integer" \
        in _error(write_yaml, {"strategy": "Krum", "params": {"num_malicious_nodes": "one"}})
    # what Flower's constructor itself raises, in its own words
    assert "algorithms.1.flower.params.clipping_norm:" in _error(write_yaml, {
        "strategy": "tests.test_flower:ClippedFedAvg", "params": {"clipping_norm": -1.0}})
    assert "algorithms.1.flower.config: config 'lr' must be a float > 0" in _error(
        write_yaml, {"strategy": "FedAvg", "config": {"lr": -1}})


class ClippedFedAvg(FlwrFedAvg):
    """A strategy whose constructor checks a parameter (as Flower's DP wrappers do)."""

    def __init__(self, clipping_norm: float = 1.0, **kw):
        from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping as DP

        DP(FlwrFedAvg(), noise_multiplier=1.0, clipping_norm=clipping_norm,
           num_sampled_clients=2)
        super().__init__(**kw)


def test_the_older_flower_api_is_refused_with_its_current_counterpart(write_yaml):
    msg = _error(write_yaml, {"strategy": "flwr.server.strategy:FedAvg"})
    assert "older strategy API" in msg and "flwr.serverapp.strategy.FedAvg" in msg


def test_flower_missing_names_the_extra(write_yaml, monkeypatch):
    monkeypatch.setitem(sys.modules, "flwr.serverapp.strategy", None)
    msg = _error(write_yaml, {"strategy": "FedAvg"})
    assert "algorithms.1.flower.strategy: the flwr package (Flower) is not installed: pip " \
           "install 'sinsim[flower]'" in msg


@pytest.mark.slow  # a fresh interpreter imports torch and sinsim (~5 s)
def test_flower_missing_exits_2_from_the_command_line(write_yaml, tmp_path):
    import subprocess

    path = write_yaml(_raw(["fedavg", {"flower": {"strategy": "FedAvg"}}]))
    code = ("import sys; sys.modules['flwr.serverapp.strategy'] = None; "
            "from sinsim.cli import main; sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", code, str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'sinsim[flower]'" in proc.stderr and "Traceback" not in proc.stderr


# -- runs -----------------------------------------------------------------------------------

@pytest.mark.slow  # three runs of two rounds (~5 s)
def test_a_stopped_flower_run_resumes_to_the_uninterrupted_tables(tmp_path, small_synthetic):
    """FedAdam's moments and its last model are in the checkpoint: the resumed run's second
    round equals the uninterrupted one's."""
    algs = [{"flower": {"label": "fedadam", "strategy": "FedAdam",
                        "params": {"eta": 0.01, "eta_l": 0.05}}}]
    sc = validate_scenario(_raw(algs, dataset=small_synthetic, rounds=2))
    run_scenario(sc, tmp_path / "full")
    with pytest.raises(_Stop):
        run_scenario(sc, tmp_path / "part", on_round_end=_stop_after(1))
    run_scenario(sc, tmp_path / "part", resume=True)
    _assert_same_tables(tmp_path / "full", tmp_path / "part")


def _tiny(algorithms: list, rounds: int = 2):
    return load_scenario(TINY, [f"training.rounds={rounds}", "training.portable=false",
                                "training.workers=1", f"algorithms={algorithms!r}"])


@pytest.mark.slow  # three algorithms on tiny.yaml, two rounds (~15 s)
def test_flowers_fedavg_and_fedprox_mu0_give_sinsims_fedavg_tables_on_tiny(tmp_path):
    algs = ["fedavg", {"flower": {"label": "flwr_fedavg", "strategy": "FedAvg"}},
            {"flower": {"label": "fedprox0", "strategy": "FedProx",
                        "params": {"proximal_mu": 0.0}}}]
    run_scenario(_tiny(algs), tmp_path)
    for table in ("rounds.csv", "transfers.csv", "clients.csv"):
        t = pd.read_csv(tmp_path / table).drop(columns="host_wall_s", errors="ignore")
        ref = t[t.algorithm == "fedavg"].drop(columns="algorithm").reset_index(drop=True)
        for label in ("flwr_fedavg", "fedprox0"):
            got = t[t.algorithm == label].drop(columns="algorithm").reset_index(drop=True)
            exact = [c for c in got if c not in ("test_accuracy", "test_loss")]
            pd.testing.assert_frame_equal(got[exact], ref[exact], check_exact=True)
            if table == "rounds.csv":
                assert len(got) == 2
                np.testing.assert_allclose(got.test_accuracy, ref.test_accuracy, atol=1e-3)
                np.testing.assert_allclose(got.test_loss, ref.test_loss, rtol=1e-4)


LEARNERS = {
    "fedadam": {"strategy": "FedAdam", "params": {"eta": 0.01, "eta_l": 0.05}},
    "fedyogi": {"strategy": "FedYogi", "params": {"eta": 0.01, "eta_l": 0.05}},
    "fedavgm": {"strategy": "FedAvgM", "params": {"server_momentum": 0.5}},
    "krum": {"strategy": "Krum", "params": {"num_malicious_nodes": 1}},
    "fedmedian": {"strategy": "FedMedian"},
    # q-FFL weighs clients by their loss: the clients report it (the received model's loss
    # on their shard)
    "qfedavg": {"strategy": "QFedAvg", "params": {"client_learning_rate": 0.05}},
}


@pytest.mark.slow  # six strategies on tiny.yaml, two rounds each (~30 s)
def test_flowers_strategies_learn_on_tiny(tmp_path):
    algs = [{"flower": {"label": k, **v}} for k, v in LEARNERS.items()]
    run_scenario(_tiny(algs), tmp_path)
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    last = rounds[rounds["round"] == 2].set_index("algorithm").test_accuracy
    assert set(last.index) == set(LEARNERS)
    for label, acc in last.items():
        assert acc > 0.5, f"{label} reached only {acc:.3f} after two rounds of tiny"


def test_a_wrapper_takes_the_strategy_it_wraps_by_name_and_aggregates_what_arrived():
    """Flower's DP wrapper around FedAvg, given in YAML terms; the server aggregates the
    replies that arrived (clipped, with seeded noise: the same twice)."""
    state = {"w": torch.zeros(4)}
    params = {"strategy": "DifferentialPrivacyServerSideFixedClipping",
              "params": {"strategy": {"strategy": "FedAvg"}, "noise_multiplier": 0.1,
                         "clipping_norm": 1.0, "num_sampled_clients": 2}}
    out = []
    for _ in range(2):
        s = build_strategy("flower", ModelSpec.of(state), params)
        _round(s, state, 1)
        agg = s.new_aggregator()
        for c, v in zip(sorted(s.configs), (3.0, -1.0)):
            update = {"w": torch.full((4,), v)}
            payload = s.codec.encode(update)
            s.set_client_state(c, (_digest(payload), None))
            agg.add(payload, 10)
        out.append(agg.result(state)["w"])
    assert torch.equal(out[0], out[1])
    assert float(out[0].norm()) < 2.0  # each update clipped to norm 1 before averaging
    with pytest.raises(ConfigError, match=r"flower\.params\.strategy\.strategy: unknown"):
        validate_scenario(_raw(["fedavg", {"flower": {
            "strategy": "DifferentialPrivacyServerSideFixedClipping",
            "params": {"strategy": {"strategy": "FedAvgg"}, "noise_multiplier": 0.1,
                       "clipping_norm": 1.0, "num_sampled_clients": 2}}}]))
