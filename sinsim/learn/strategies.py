"""Federated-learning algorithms as small strategy objects (data in, data out).

A strategy says whom to pick, how the global model and the updates are encoded on the wire,
what a client computes, and how the server combines what arrived. The event loop lives in
``sinsim.sim.engine``, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sinsim._rng import rng_for
from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.codecs import Float32Codec, ModelSpec
from sinsim.learn.training import LocalTrainer


@dataclass(frozen=True)
class RoundContext:
    """What a strategy may know when a round starts (read-only)."""

    round: int
    now_s: float
    candidates: tuple[int, ...]  # the clients this round may pick (all, or those in view)
    clients_per_round: int
    seed: int


@dataclass(frozen=True)
class ClientUpdate:
    payload: bytes
    n_samples: int
    flops: float
    avg_bits: float | None = None  # mean bits per quantized weight; None for fp32


class FedAvg:
    """FedAvg (McMahan et al., 2017): fp32 weights both ways, sample-weighted mean of the
    updates that arrived before the round deadline (partial averaging over survivors)."""

    name = "fedavg"

    def __init__(self, spec: ModelSpec, **params: Any):
        if params:
            raise ValueError(f"fedavg takes no parameters, got {', '.join(params)}")
        self.codec = Float32Codec(spec)

    def select(self, ctx: RoundContext) -> list[int]:
        """``clients_per_round`` of the candidates drawn uniformly without replacement (seeded
        by round); all of them when there are fewer."""
        rng = rng_for(ctx.seed, "select", ctx.round)
        k = min(ctx.clients_per_round, len(ctx.candidates))
        return sorted(int(c) for c in rng.choice(np.asarray(ctx.candidates), k, replace=False))

    def encode_global(self, state: dict[str, torch.Tensor]) -> bytes:
        return self.codec.encode(state)

    def decode_global(self, payload: bytes) -> dict[str, torch.Tensor]:
        return self.codec.decode(payload)

    def client_update(self, trainer: LocalTrainer, global_state: dict[str, torch.Tensor],
                      client: int, rng: np.random.Generator) -> ClientUpdate:
        result = trainer.train(global_state, client, rng)
        return ClientUpdate(self.codec.encode(result.state), result.n_samples, result.flops)

    def new_aggregator(self) -> _DecodingMean:
        return _DecodingMean(self.codec)


class _DecodingMean:
    """Decodes each arriving payload and folds it into a running weighted mean."""

    def __init__(self, codec: Float32Codec):
        self.codec = codec
        self.mean = WeightedMean()

    def add(self, payload: bytes, n_samples: int) -> None:
        self.mean.add(self.codec.decode(payload), float(n_samples))

    @property
    def count(self) -> int:
        return self.mean.count

    def result(self, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.mean.result(global_state)


STRATEGIES = {"fedavg": FedAvg}


def build_strategy(name: str, spec: ModelSpec, params: dict[str, Any]) -> FedAvg:
    if name not in STRATEGIES:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](spec, **params)
