"""The strategy protocol and its registry: every algorithm is a Strategy with its own Params, and
a new one is one class plus one registry line (docs/design.md shows this example)."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import torch
from pydantic import Field

from sinsim.learn.codecs import CODECS
from sinsim.learn.strategies import STRATEGIES, FedAvg, Strategy, build_strategy
from sinsim.learn.strategies.fedavg import DecodingMean
from sinsim.learn.strategies.fedavg import FedAvgParams as _FedAvgParams
from sinsim.params import Float, Section
from sinsim.registry import Registry, UnknownName
from sinsim.scenario import LinkDirection, validate_scenario
from sinsim.scenario.model import BUDGET_KEYS
from sinsim.space.radios import RadioProfile

# ---------------------------------------------------------------------------------------------
# the worked example of docs/design.md: FedAvg with a server learning rate (Reddi et al. 2021,
# "Adaptive Federated Optimization", FedAvg's server step: w <- w + server_lr (mean - w))


class ServerLRParams(_FedAvgParams):
    server_lr: Float = Field(default=1.0, gt=0, le=1)


class FedAvgServerLR(FedAvg):
    name = "fedavg_server_lr"
    Params = ServerLRParams

    def new_aggregator(self):
        return _ServerStep(self.codec.decode, self.params.server_lr)


class _ServerStep(DecodingMean):
    def __init__(self, decode, server_lr: float):
        super().__init__(decode)
        self.server_lr = server_lr

    def result(self, global_state):
        mean = super().result(global_state)
        return {k: global_state[k] + self.server_lr * (mean[k] - global_state[k])
                for k in global_state}


@pytest.fixture
def registered(monkeypatch):
    """The one registry line, undone after the test."""
    monkeypatch.setitem(STRATEGIES._entries, FedAvgServerLR.name, FedAvgServerLR)


def _scenario(server_lr: float | None):
    algorithms = ["fedavg"]
    if server_lr is not None:
        algorithms.append({"fedavg_server_lr": {"server_lr": server_lr}})
    return validate_scenario({
        "name": "protocol", "clients": {"count": 6},
        "training": {"dataset": "synthetic", "rounds": 2, "clients_per_round": 3,
                     "workers": 1},
        "algorithms": algorithms})


@pytest.mark.slow  # an engine run: CI's slow suite
def test_a_new_strategy_is_one_class_and_one_registry_line(registered, tmp_path):
    from sinsim.sim.engine import run_scenario

    # Execute: server_lr 1 is FedAvg itself; server_lr 0.5 moves half way
    run_scenario(_scenario(1.0), tmp_path / "one")
    run_scenario(_scenario(0.5), tmp_path / "half")

    # Assert
    one = pd.read_csv(tmp_path / "one" / "rounds.csv").drop(columns="host_wall_s")
    by_alg = {a: t.drop(columns="algorithm").reset_index(drop=True)
              for a, t in one.groupby("algorithm")}
    # g + 1.0 * (mean - g) is the mean up to a rounding of the step: round 1's model to a few
    # ulps; later rounds train on from the two models, which carries that forward by an amount
    # that depends on the processor, so only round 1's accuracy and loss are compared
    trained = ["test_accuracy", "test_loss"]
    pd.testing.assert_frame_equal(by_alg["fedavg"].drop(columns=trained),
                                  by_alg["fedavg_server_lr"].drop(columns=trained),
                                  check_exact=True)
    a, b = by_alg["fedavg"].loc[0], by_alg["fedavg_server_lr"].loc[0]
    assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=1.5 / 2000)  # synthetic: 2000
    assert a.test_loss == pytest.approx(b.test_loss, rel=1e-5)
    half = pd.read_csv(tmp_path / "half" / "rounds.csv").set_index(["algorithm", "round"])
    assert half.loc[("fedavg_server_lr", 1), "test_loss"] != half.loc[("fedavg", 1), "test_loss"]


def test_a_new_strategys_parameters_are_checked_by_the_scenario(registered):
    with pytest.raises(Exception, match="server_lr"):
        _scenario(2.0)
    resolved = _scenario(0.5).resolved()["algorithms"][1]
    assert resolved["params"] == {"label": None, "local_epochs": None,
                                  "codec": {"kind": "float32"}, "update": None,
                                  "server_lr": 0.5}


def test_server_step_of_the_example_is_the_interpolation(lenet_state):
    # Prepare
    spec_codec = CODECS["float32"]
    from sinsim.learn.codecs import ModelSpec

    spec = ModelSpec.of(lenet_state)
    codec = spec_codec(spec)
    zeros = {k: torch.zeros_like(v) for k, v in lenet_state.items()}
    agg = _ServerStep(codec.decode, 0.25)

    # Execute
    agg.add(codec.encode(lenet_state), 10)
    out = agg.result(zeros)

    # Assert
    for k in lenet_state:
        torch.testing.assert_close(out[k], 0.25 * lenet_state[k])


@pytest.fixture
def lenet_state():
    from sinsim.learn.models import build_model

    return {k: v.detach().clone() for k, v in build_model("lenet5", 0).state_dict().items()}


# ---------------------------------------------------------------------------------------------
# the registry


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_registered_strategy_is_a_strategy_with_its_params(name, lenet_state):
    from sinsim.learn.codecs import ModelSpec

    cls = STRATEGIES[name]
    assert issubclass(cls, Strategy) and cls.name == name
    assert issubclass(cls.Params, Section)
    strategy = build_strategy(name, ModelSpec.of(lenet_state), {}, "lenet5")
    assert strategy.params == cls.Params()  # the defaults are the Params' own
    # it travels to training processes with its parameters (tagged-union members included)
    assert pickle.loads(pickle.dumps(strategy)).params == strategy.params


def test_the_scenario_defaults_are_the_strategys_defaults():
    walker = {"walker": {"inclination_deg": 53, "total": 20, "planes": 4, "phasing": 1,
                         "altitude_km": 550}}
    for name, cls in STRATEGIES.items():
        where = ({"clients": walker, "links": {"isl": {}},  # hierfl: planes and crosslinks
                  "server": {"ground_stations": [{"id": "g", "lat_deg": 0, "lon_deg": 0}]}}
                 if cls.hierarchical else {"clients": {"count": 4}})
        s = validate_scenario({"name": "d", **where, "training": {"clients_per_round": 2},
                               "algorithms": [name]})
        params = dict(s.algorithms[0].params)
        assert params.pop("label") is None
        assert params == cls.Params().model_dump()


def test_a_registry_names_the_closest_entry():
    r = Registry("codec", {"float32": 1, "float16": 2})
    with pytest.raises(UnknownName, match="did you mean 'float16'"):
        r["float61"]
    assert "float32" in r and "int8" not in r and r.get("int8") is None
    with pytest.raises(ValueError, match="registered twice"):
        r.register("float32", 3)


class _TopK:
    """A codec with a parameter, as a top-k sparsifier would declare it."""

    class Params(Section):
        fraction: Float = Field(default=0.01, gt=0, le=1)

    def __init__(self, spec, *, fraction: float):
        self.spec, self.fraction = spec, fraction


def test_a_codec_declares_its_parameters_and_a_strategy_chooses_it_by_kind():
    from pydantic import BaseModel, ValidationError

    from sinsim.registry import build_entry, tagged_union

    codecs = Registry("test codec", {"float32": CODECS["float32"], "topk": _TopK})

    class Choice(BaseModel):
        codec: tagged_union(codecs)

    assert build_entry(codecs, Choice(codec="topk").codec, "spec").fraction == 0.01
    chosen = Choice(codec={"kind": "topk", "fraction": 0.1}).codec
    assert build_entry(codecs, chosen, "spec").fraction == 0.1
    assert type(build_entry(codecs, Choice(codec="float32").codec, None)) is CODECS["float32"]
    with pytest.raises(ValidationError, match="fraction"):
        Choice(codec={"kind": "topk", "fraction": 2})
    with pytest.raises(ValidationError, match="give its kind"):
        Choice(codec={"fraction": 0.1})


def test_every_budget_parameter_is_a_key_of_a_link_direction():
    assert tuple(RadioProfile.__dataclass_fields__) == ("name", "description") + BUDGET_KEYS
    assert set(BUDGET_KEYS) <= set(LinkDirection.model_fields)
