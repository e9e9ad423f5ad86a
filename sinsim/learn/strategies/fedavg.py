"""FedAvg (McMahan et al., 2017): the baseline every run carries beside SpaceDML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pydantic import Field

from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.codecs import CODECS, ModelSpec, _flatten
from sinsim.learn.strategies.base import ClientUpdate, State, Strategy
from sinsim.learn.training import LocalTrainer, TrainResult
from sinsim.learn.update_codecs import UPDATE_CODECS
from sinsim.params import Int, Section
from sinsim.registry import build_entry, kind_sections, tagged_union


class FedAvgParams(Section):
    """``fedavg``: fp32 weights both ways (McMahan et al.), or a lossy codec for comparison."""

    local_epochs: Int | None = Field(default=None, gt=0)  # None: training.local_epochs
    # the codec both ways: a name (``float16``) or ``{kind: NAME, ...its parameters}``
    codec: tagged_union(CODECS) = kind_sections(CODECS)["float32"]()  # type: ignore[valid-type]
    # None: the uplink carries the trained weights with ``codec``; else the update (trained -
    # received weights) with an update codec: ``{kind: topk, fraction: F}``, ``{kind: qsgd,
    # levels: S}`` (sinsim.learn.update_codecs); the downlink stays ``codec``
    update: tagged_union(UPDATE_CODECS) | None = None  # type: ignore[valid-type]


class FedAvg(Strategy):
    """fp32 weights both ways, sample-weighted mean of the updates that arrived before the
    round deadline (partial averaging over survivors).

    ``local_epochs`` overrides the scenario's (e.g. FedAvg with SpaceDML's compute);
    ``codec`` ``float16`` or ``int8`` sends lossy weights both ways instead of fp32.

    ``update`` (an update codec, `sinsim.learn.update_codecs`): each client sends its update,
    trained - received weights, encoded with it (randomness from a child of the client's
    training stream, spawned after training, so the batches are those of the fp32 run); the
    server adds the sample-weighted mean of the decoded updates to the global model it
    broadcast. With error feedback (top-k) a client adds its residual to its update before
    encoding and keeps what was not sent (all of it when its upload is never sent, or times
    out before it is: the client knows; a transfer lost on the way it takes as sent): one fp32 copy of the model per client that has
    trained (1.72 MB for LeNet-5), its ``client_state``, in checkpoints.
    """

    name = "fedavg"
    Params = FedAvgParams

    def __init__(self, spec: ModelSpec, model_name: str | None = None, **params):
        super().__init__(spec, model_name, **params)
        self.codec = build_entry(CODECS, self.params.codec, spec)
        self.local_epochs = self.params.local_epochs
        self.update = (None if self.params.update is None
                       else build_entry(UPDATE_CODECS, self.params.update, spec))
        self.residuals: dict[int, np.ndarray] = {}  # error feedback: per client, flat float32

    def __getstate__(self) -> dict[str, Any]:
        """What a training process needs: not the residuals (each job brings its client's)."""
        state = dict(self.__dict__)
        state["residuals"] = {}
        return state

    def client_state(self, client: int) -> np.ndarray | None:
        return self.residuals.get(client)

    def set_client_state(self, client: int, state: np.ndarray | None) -> None:
        if state is None:
            self.residuals.pop(client, None)
        else:
            self.residuals[client] = state

    def checkpoint(self) -> dict[str, Any] | None:
        """The clients' error-feedback residuals (None without them)."""
        return {"residuals": dict(self.residuals)} if self.residuals else None

    def restore(self, state: dict[str, Any] | None) -> None:
        residuals = dict(state["residuals"]) if state else {}
        if not all(isinstance(r, np.ndarray) and r.shape == (self.spec.numel,)
                   for r in residuals.values()):
            raise ValueError("residuals that are not flat arrays of the model's size")
        self.residuals = residuals

    def encode_global(self, state: State) -> bytes:
        return self.codec.encode(state)

    def decode_global(self, payload: bytes) -> State:
        return self.codec.decode(payload)

    def client_update(self, trainer: LocalTrainer, global_state: State, client: int,
                      rng: np.random.Generator) -> ClientUpdate:
        result = trainer.train(global_state, client, rng, self.local_epochs)
        return self._upload(result, global_state, client, rng)

    def _upload(self, result: TrainResult, received: State, client: int,
                rng: np.random.Generator) -> ClientUpdate:
        """The client's uplink after training: its weights with ``codec``, or its update with
        the update codec (plus its new residual under error feedback)."""
        if self.update is None:
            return ClientUpdate(self.codec.encode(result.state), result.n_samples, result.flops)
        spec = self.spec
        delta = _flatten(result.state, spec) - _flatten(received, spec)
        residual = self.client_state(client)
        if self.update.error_feedback and residual is not None:
            delta = delta + residual
        payload = self.update.encode_flat(delta, rng.spawn(1)[0])
        if not self.update.error_feedback:
            return ClientUpdate(payload, result.n_samples, result.flops)
        return ClientUpdate(payload, result.n_samples, result.flops,
                            state=delta - self.update.decode_flat(payload), unsent_state=delta)

    def client_updates_batched(self, trainer: LocalTrainer, global_state: State,
                               clients: list[int],
                               rngs: list[np.random.Generator]) -> list[ClientUpdate]:
        """``client_update`` of several clients in one vectorised training
        (``LocalTrainer.train_batched``; equal up to floating-point summation order)."""
        results = trainer.train_batched(global_state, clients, rngs, self.local_epochs)
        return [self._upload(r, global_state, c, g) for r, c, g in zip(results, clients, rngs)]

    def new_aggregator(self) -> DecodingMean:
        if self.update is not None:
            return UpdateMean(self.update.decode)
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


class UpdateMean(DecodingMean):
    """Decodes each arriving update (trained - received weights) into a running weighted mean
    (float64); the round's model is the broadcast global model plus that mean, rounded once."""

    def result(self, global_state: State) -> State:
        if self.count == 0:
            return global_state
        mean = self.mean.result({k: v.to(torch.float64) for k, v in global_state.items()})
        return {k: (w.to(torch.float64) + mean[k]).to(w.dtype) for k, w in global_state.items()}
