"""Federated-learning algorithms as small strategy objects (data in, data out).

A strategy says whom to pick, how the global model and the updates are encoded on the wire,
what a client computes, and how the server combines what arrived. The event loop lives in
``sinsim.sim.engine``, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sinsim._rng import rng_for
from sinsim.learn import alq
from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.codecs import CODECS, ALQCodec, ModelSpec
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
    # what the strategy keeps for this client until its next round (None: nothing). A strategy
    # never changes itself in ``client_update``; the engine commits this with
    # ``set_client_state`` when the client has trained, so training may run in another process.
    state: Any = None


def select_uniform(ctx: RoundContext) -> list[int]:
    """``clients_per_round`` of the candidates drawn uniformly without replacement (seeded by
    round); all of them when there are fewer."""
    rng = rng_for(ctx.seed, "select", ctx.round)
    k = min(ctx.clients_per_round, len(ctx.candidates))
    return sorted(int(c) for c in rng.choice(np.asarray(ctx.candidates), k, replace=False))


class FedAvg:
    """FedAvg (McMahan et al., 2017): fp32 weights both ways, sample-weighted mean of the
    updates that arrived before the round deadline (partial averaging over survivors).

    ``local_epochs`` overrides the scenario's (e.g. FedAvg with SpaceDML's compute);
    ``codec`` ``float16`` or ``int8`` sends lossy weights both ways instead of fp32.
    """

    name = "fedavg"

    def __init__(self, spec: ModelSpec, model_name: str | None = None, *,
                 local_epochs: int | None = None, codec: str = "float32"):
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        self.codec = CODECS[codec](spec)
        self.local_epochs = local_epochs

    select = staticmethod(select_uniform)

    def client_state(self, client: int) -> Any:
        return None

    def set_client_state(self, client: int, state: Any) -> None:
        pass

    def encode_global(self, state: dict[str, torch.Tensor]) -> bytes:
        return self.codec.encode(state)

    def decode_global(self, payload: bytes) -> dict[str, torch.Tensor]:
        return self.codec.decode(payload)

    def client_update(self, trainer: LocalTrainer, global_state: dict[str, torch.Tensor],
                      client: int, rng: np.random.Generator) -> ClientUpdate:
        result = trainer.train(global_state, client, rng, self.local_epochs)
        return ClientUpdate(self.codec.encode(result.state), result.n_samples, result.flops)

    def client_updates_batched(self, trainer: LocalTrainer,
                               global_state: dict[str, torch.Tensor], clients: list[int],
                               rngs: list[np.random.Generator]) -> list[ClientUpdate]:
        """``client_update`` of several clients in one vectorised training
        (``LocalTrainer.train_batched``; equal up to floating-point summation order)."""
        results = trainer.train_batched(global_state, clients, rngs, self.local_epochs)
        return [ClientUpdate(self.codec.encode(r.state), r.n_samples, r.flops) for r in results]

    def new_aggregator(self) -> _DecodingMean:
        return _DecodingMean(self.codec.decode)


class _DecodingMean:
    """Decodes each arriving payload and folds it into a running weighted mean."""

    def __init__(self, decode: Callable[[bytes], dict[str, torch.Tensor]]):
        self.decode = decode
        self.mean = WeightedMean()

    def add(self, payload: bytes, n_samples: int) -> None:
        self.mean.add(self.decode(payload), float(n_samples))

    @property
    def count(self) -> int:
        return self.mean.count

    def result(self, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.mean.result(global_state)


class SpaceDML:
    """SpaceDML (Guo et al., IEEE Network 2021): clients train with ALQ and upload binary bases
    and coordinates; the server averages the reconstructed weights of the clients that made it
    back, re-quantizes the average without data and broadcasts it with the same codec.

    A client's round (docs/alq.md): rebuild the received model; in its first round only,
    ``pretrain_epochs`` of fp32 SGD then a sketch at ``i_max`` bits; ``warmup_batches`` of
    moment warm-up; ``prune_epochs`` of alpha-domain pruning (each epoch its own phase, or one
    ``single`` phase); ``basis_epochs``, ``coordinate_epochs``, ``ste_epochs``; encode.
    AMSGrad moments start afresh every round (nothing per client is kept but whether it has
    pre-trained), so memory does not grow with the number of clients.

    ``server_bits``: the server's bit-width per group: ``imax`` everywhere, or the max / the
    rounded sample-weighted mean of the arrived clients' widths (bits then only go down).
    """

    name = "spacedml"

    def __init__(self, spec: ModelSpec, model_name: str | None = None, *,
                 pruning_ratio: float = 0.8, i_max: int = 6, alpha_dtype: str = "float32",
                 pretrain_epochs: int = 1, prune_epochs: int = 3, prune_phases: str = "per_epoch",
                 basis_epochs: int = 1, coordinate_epochs: int = 1, ste_epochs: int = 1,
                 lr: float = 1e-3, prune_lr: float = 1.2e-6, top_k: float = 0.005,
                 warmup_batches: int = 10, server_bits: str = "imax",
                 server_refine_passes: int = 5):
        if prune_phases not in ("per_epoch", "single"):
            raise ValueError(f"prune_phases must be per_epoch or single, got {prune_phases!r}")
        if server_bits not in ("imax", "client_max", "client_mean"):
            raise ValueError(f"unknown server_bits {server_bits!r}")
        self.spec = spec
        self.layout = alq.model_layout(dict(zip(spec.names, spec.shapes)), model_name)
        self.codec = ALQCodec(spec, self.layout, i_max, alpha_dtype)
        self.cfg = alq.ALQConfig(i_max=i_max, lr=lr, prune_lr=prune_lr, top_k=top_k)
        self.pruning_ratio, self.alpha_dtype = pruning_ratio, alpha_dtype
        self.epochs = {"pretrain": pretrain_epochs, "prune": prune_epochs, "basis": basis_epochs,
                       "coordinate": coordinate_epochs, "ste": ste_epochs}
        self.prune_phases, self.warmup_batches = prune_phases, warmup_batches
        self.server_bits, self.server_refine_passes = server_bits, server_refine_passes
        self.pretrained: set[int] = set()  # per-client state: whether it has pre-trained
        self._global: tuple[dict[str, torch.Tensor], alq.QuantizedModel] | None = None

    select = staticmethod(select_uniform)

    def client_state(self, client: int) -> Any:
        return client in self.pretrained

    def set_client_state(self, client: int, state: Any) -> None:
        if state:
            self.pretrained.add(client)

    # -- server ----------------------------------------------------------------------------
    def quantize_global(self, state: dict[str, torch.Tensor],
                        bits: dict[str, torch.Tensor] | None = None) -> alq.QuantizedModel:
        """The data-free sketch of a full-precision global model (greedy + refinement)."""
        q = alq.sketch_model(state, self.layout, self.cfg.i_max, bits, self.server_refine_passes)
        return self._wire_alpha(q)

    def encode_global(self, state: dict[str, torch.Tensor]) -> bytes:
        if self._global is not None and self._global[0] is state:
            q = self._global[1]  # the server's model is already in quantized form
        else:  # the initial model (or one given from outside)
            q = self.quantize_global(state)
        return self.codec.encode(q)

    def decode_global(self, payload: bytes) -> alq.QuantizedModel:
        return self.codec.decode(payload)

    def new_aggregator(self) -> _ALQMean:
        return _ALQMean(self)

    # -- client ----------------------------------------------------------------------------
    def client_update(self, trainer: LocalTrainer, received: alq.QuantizedModel, client: int,
                      rng: np.random.Generator) -> ClientUpdate:
        model, ep, n_seen = trainer.model, self.epochs, 0
        q, pretrained = received, self.client_state(client)
        if ep["pretrain"] and not pretrained:
            model.load_state_dict(q.state_dict(self.spec.names))
            n_seen += trainer.sgd(trainer.batches(client, rng, ep["pretrain"]))
            q = alq.sketch_model(model.state_dict(), self.layout, self.cfg.i_max)
            pretrained = True
        run = alq.ALQTrainer(model, q, self.cfg)
        if self.warmup_batches:
            n_seen += run.warmup(trainer.tensors(trainer.epoch(client, rng)[:self.warmup_batches]))
        n_seen += self._prune(run, trainer, client, rng)
        for phase, step in (("basis", run.basis_epoch), ("coordinate", run.coordinate_epoch),
                            ("ste", run.ste_epoch)):
            for _ in range(ep[phase]):
                n_seen += step(trainer.tensors(trainer.epoch(client, rng)))
        out = self._wire_alpha(run.result())
        return ClientUpdate(self.codec.encode(out), len(trainer.shards[client]),
                            float(n_seen) * trainer.flops_per_sample, out.avg_bits(),
                            state=pretrained)

    def _prune(self, run: alq.ALQTrainer, trainer: LocalTrainer, client: int,
               rng: np.random.Generator) -> int:
        n_epochs = self.epochs["prune"]
        if not n_epochs:
            return 0
        epochs = [trainer.tensors(trainer.epoch(client, rng)) for _ in range(n_epochs)]
        phases = epochs if self.prune_phases == "per_epoch" else [sum(epochs, [])]
        n_seen = 0
        for batches in phases:
            n_seen += run.prune_phase(batches, self.pruning_ratio,
                                      self.effective_top_k(len(batches)), rng)
        return n_seen

    def effective_top_k(self, steps: int) -> float:
        """top_k, raised to 2 pruning_ratio / steps where a phase has too few steps: pruning
        needs top_k * steps >= pruning_ratio or it silently stalls (docs/alq.md)."""
        return min(1.0, max(self.cfg.top_k, 2 * self.pruning_ratio / max(steps, 1)))

    def _wire_alpha(self, q: alq.QuantizedModel) -> alq.QuantizedModel:
        """With fp16 coordinates on the wire, round them here so that what a node runs is
        exactly what the other end decodes."""
        if self.alpha_dtype == "float16":
            for layer in q.layers.values():
                layer.alpha = layer.alpha.half().float()
        return q


class _ALQMean:
    """The SpaceDML server: decodes each upload (w = B alpha), keeps the sample-weighted mean
    and the clients' bit-widths, and turns the mean into the next quantized global model."""

    def __init__(self, strategy: SpaceDML):
        self.strategy = strategy
        self.mean = WeightedMean()
        self.width_max: dict[str, torch.Tensor] = {}
        self.width_sum: dict[str, torch.Tensor] = {}

    def add(self, payload: bytes, n_samples: int) -> None:
        s = self.strategy
        q = s.codec.decode(payload)
        self.mean.add(q.state_dict(s.spec.names), float(n_samples))
        for name, layer in q.layers.items():
            w = layer.widths
            if name in self.width_max:
                self.width_max[name] = torch.maximum(self.width_max[name], w)
                self.width_sum[name] += w.double() * n_samples
            else:
                self.width_max[name], self.width_sum[name] = w, w.double() * n_samples

    @property
    def count(self) -> int:
        return self.mean.count

    def result(self, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The re-quantized average (the server keeps only B and alpha); the global state
        unchanged when nobody made it back."""
        s = self.strategy
        if self.count == 0:
            return global_state
        mean = self.mean.result(global_state)
        bits = None
        if s.server_bits == "client_max":
            bits = self.width_max
        elif s.server_bits == "client_mean":
            bits = {k: torch.round(v / self.mean.total_weight).long()
                    for k, v in self.width_sum.items()}
        q = s.quantize_global(mean, bits)
        state = q.state_dict(s.spec.names)
        s._global = (state, q)
        return state


STRATEGIES = {"fedavg": FedAvg, "spacedml": SpaceDML}


def build_strategy(name: str, spec: ModelSpec, params: dict[str, Any],
                   model_name: str | None = None) -> FedAvg | SpaceDML:
    if name not in STRATEGIES:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](spec, model_name, **params)
