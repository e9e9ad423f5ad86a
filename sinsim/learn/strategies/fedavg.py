"""FedAvg (McMahan et al., 2017): the baseline every run carries beside SpaceDML."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field

from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.codecs import CODECS, ModelSpec
from sinsim.learn.strategies.base import ClientUpdate, State, Strategy
from sinsim.learn.training import LocalTrainer
from sinsim.params import Int, Section
from sinsim.registry import build_entry, kind_sections, tagged_union


class FedAvgParams(Section):
    """``fedavg``: fp32 weights both ways (McMahan et al.), or a lossy codec for comparison."""

    local_epochs: Int | None = Field(default=None, gt=0)  # None: training.local_epochs
    # the codec both ways: a name (``float16``) or ``{kind: NAME, ...its parameters}``
    codec: tagged_union(CODECS) = kind_sections(CODECS)["float32"]()  # type: ignore[valid-type]


class FedAvg(Strategy):
    """fp32 weights both ways, sample-weighted mean of the updates that arrived before the
    round deadline (partial averaging over survivors).

    ``local_epochs`` overrides the scenario's (e.g. FedAvg with SpaceDML's compute);
    ``codec`` ``float16`` or ``int8`` sends lossy weights both ways instead of fp32.
    """

    name = "fedavg"
    Params = FedAvgParams

    def __init__(self, spec: ModelSpec, model_name: str | None = None, **params):
        super().__init__(spec, model_name, **params)
        self.codec = build_entry(CODECS, self.params.codec, spec)
        self.local_epochs = self.params.local_epochs

    def encode_global(self, state: State) -> bytes:
        return self.codec.encode(state)

    def decode_global(self, payload: bytes) -> State:
        return self.codec.decode(payload)

    def client_update(self, trainer: LocalTrainer, global_state: State, client: int,
                      rng: np.random.Generator) -> ClientUpdate:
        result = trainer.train(global_state, client, rng, self.local_epochs)
        return ClientUpdate(self.codec.encode(result.state), result.n_samples, result.flops)

    def client_updates_batched(self, trainer: LocalTrainer, global_state: State,
                               clients: list[int],
                               rngs: list[np.random.Generator]) -> list[ClientUpdate]:
        """``client_update`` of several clients in one vectorised training
        (``LocalTrainer.train_batched``; equal up to floating-point summation order)."""
        results = trainer.train_batched(global_state, clients, rngs, self.local_epochs)
        return [ClientUpdate(self.codec.encode(r.state), r.n_samples, r.flops) for r in results]

    def new_aggregator(self) -> DecodingMean:
        return DecodingMean(self.codec.decode)


class DecodingMean:
    """Decodes each arriving payload and folds it into a running weighted mean."""

    def __init__(self, decode: Callable[[bytes], State]):
        self.decode = decode
        self.mean = WeightedMean()

    def add(self, payload: bytes, n_samples: int) -> None:
        self.mean.add(self.decode(payload), float(n_samples))

    @property
    def count(self) -> int:
        return self.mean.count

    def result(self, global_state: State) -> State:
        return self.mean.result(global_state)
