"""Federated-learning algorithms, one file each, behind one protocol (:class:`Strategy`).

``STRATEGIES`` is the registry the scenario schema is built from: an algorithm named in a
scenario's ``algorithms:`` list is looked up here, and its parameters are checked against its
``Params``. A new algorithm is one new file and one line below (docs/design.md).
"""

from __future__ import annotations

from typing import Any

from sinsim.learn.codecs import ModelSpec
from sinsim.learn.strategies.base import (
    Aggregator,
    ClientUpdate,
    RoundContext,
    Strategy,
    select_uniform,
)
from sinsim.learn.strategies.fedasync import FedAsync
from sinsim.learn.strategies.fedavg import FedAvg
from sinsim.learn.strategies.fedbuff import FedBuff
from sinsim.learn.strategies.flower import Flower
from sinsim.learn.strategies.hierfl import HierFL
from sinsim.learn.strategies.spacedml import SpaceDML
from sinsim.registry import Registry

STRATEGIES: Registry[type[Strategy]] = Registry("algorithm", {
    "fedavg": FedAvg,
    "spacedml": SpaceDML,
    "fedasync": FedAsync,  # asynchronous (synchronous = False): sinsim.sim.async_server
    "fedbuff": FedBuff,
    "hierfl": HierFL,  # planes aggregate over their ISL ring: sinsim.sim.hier_server
    "flower": Flower,  # a Flower strategy (flwr.serverapp.strategy), optional: sinsim[flower]
})


def build_strategy(name: str, spec: ModelSpec, params: dict[str, Any],
                   model_name: str | None = None) -> Strategy:
    """The strategy ``name`` for a model of ``spec``; ``params`` are checked against its
    ``Params`` (a ``ValueError`` names what is wrong)."""
    return STRATEGIES[name](spec, model_name, **params)


__all__ = ["STRATEGIES", "Aggregator", "ClientUpdate", "FedAsync", "FedAvg", "FedBuff", "Flower",
           "HierFL", "RoundContext", "SpaceDML", "Strategy", "build_strategy", "select_uniform"]
