"""Federated-learning algorithms as small strategy objects (data in, data out).

A strategy says whom to pick, how the global model and the updates are encoded on the wire,
what a client computes, and how the server combines what arrived. The event loop lives in
``sinsim.sim.engine``, never here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sinsim._rng import rng_for
from sinsim.learn import alq
from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.codecs import CODECS, ALQCodec, ModelSpec
from sinsim.learn.schedule import parse_schedule
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


@dataclass(frozen=True)
class _ClientMemory:
    """What SpaceDML keeps for a client between its rounds."""

    pretrained: bool = False
    moments: dict[str, Any] | None = None  # ALQTrainer.moments() with ``moments: persistent``


class SpaceDML:
    """SpaceDML (Guo et al., IEEE Network 2021): clients train with ALQ and upload binary bases
    and coordinates; the server averages the reconstructed weights of the clients that made it
    back, re-quantizes the average without data and broadcasts it with the same codec.

    A client's round (docs/alq.md, docs/fidelity.md):

    1. where it starts: with ``pretrain`` (``first_round``: the client's first round only;
       ``every_round``; ``never``), ``pretrain_epochs`` of fp32 SGD from the decoded global
       model, then a sketch at ``i_max`` bits; otherwise (``start``) the received quantized
       model as it is (``server``) or a sketch at ``i_max`` of its decoded weights
       (``resketch``);
    2. its moments: ``fresh`` AMSGrad moments plus ``warmup_batches`` of warm-up, or
       ``persistent`` (the client's own from its last round; 5.2 MB per client for LeNet-5);
    3. the ALQ phases of ``schedule`` (`sinsim.learn.schedule`: a preset name or a list); with
       ``prune_to: bits`` the j-th pruning phase of the round ends at ``i_max e^(-j pr)`` mean
       bits, with ``survival`` it keeps about e^-pr of the slots it starts with (the ALQ
       reference code); ``pool_factor`` sets how many candidates short phases pool;
    4. the canonical (B, alpha) upload.

    ``server_bits``: the server's bit-width per group: ``imax`` everywhere, or the max / the
    rounded sample-weighted mean of the arrived clients' widths (bits then only go down).
    """

    name = "spacedml"

    def __init__(self, spec: ModelSpec, model_name: str | None = None, *,
                 pruning_ratio: float = 0.8, i_max: int = 6, alpha_dtype: str = "float32",
                 schedule: Any = "interleaved", pretrain: str = "every_round",
                 pretrain_epochs: int = 1, start: str = "server", moments: str = "fresh",
                 lr: float = 1e-3, prune_lr: float = 1.2e-6, top_k: float = 0.005,
                 pool_factor: float = 2.0, prune_to: str = "bits",
                 warmup_batches: int = 10, server_bits: str = "imax",
                 server_refine_passes: int = 5):
        for key, value, choices in (
                ("pretrain", pretrain, PRETRAIN), ("start", start, STARTS),
                ("moments", moments, MOMENTS), ("server_bits", server_bits, SERVER_BITS)):
            if value not in choices:
                raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        self.spec = spec
        self.layout = alq.model_layout(dict(zip(spec.names, spec.shapes)), model_name)
        self.codec = ALQCodec(spec, self.layout, i_max, alpha_dtype)
        self.cfg = alq.ALQConfig(i_max=i_max, lr=lr, prune_lr=prune_lr, top_k=top_k)
        self.pruning_ratio, self.alpha_dtype = pruning_ratio, alpha_dtype
        self.pool_factor = pool_factor
        if prune_to not in PRUNE_TO:
            raise ValueError(f"prune_to must be one of {', '.join(PRUNE_TO)}, got {prune_to!r}")
        self.prune_to = prune_to
        self.schedule = parse_schedule(schedule)
        self.pretrain, self.pretrain_epochs = pretrain, pretrain_epochs
        self.start, self.moments = start, moments
        self.warmup_batches = warmup_batches
        self.server_bits, self.server_refine_passes = server_bits, server_refine_passes
        self.memory: dict[int, _ClientMemory] = {}  # per client, kept between its rounds
        self._global: tuple[dict[str, torch.Tensor], alq.QuantizedModel] | None = None

    select = staticmethod(select_uniform)

    def client_state(self, client: int) -> _ClientMemory:
        return self.memory.get(client, _ClientMemory())

    def __getstate__(self) -> dict[str, Any]:
        """What a training process needs: not the clients' memory (each job brings its
        client's, up to 5.2 MB with persistent moments) nor the server's quantized model."""
        state = dict(self.__dict__)
        state["memory"], state["_global"] = {}, None
        return state

    def set_client_state(self, client: int, state: _ClientMemory | None) -> None:
        if state is not None and state != _ClientMemory():
            self.memory[client] = state

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
        model, n_seen = trainer.model, 0
        memory = self.client_state(client)
        pretrain = self.pretrain_epochs > 0 and (
            self.pretrain == "every_round"
            or (self.pretrain == "first_round" and not memory.pretrained))
        if pretrain:
            model.load_state_dict(received.state_dict(self.spec.names))
            n_seen += trainer.sgd(trainer.batches(client, rng, self.pretrain_epochs))
            q = alq.sketch_model(model.state_dict(), self.layout, self.cfg.i_max)
        elif self.start == "resketch":
            q = alq.sketch_model(received.state_dict(self.spec.names), self.layout,
                                 self.cfg.i_max, refine_passes=self.server_refine_passes)
        else:
            q = received
        run = alq.ALQTrainer(model, q, self.cfg)
        if self.moments == "persistent" and memory.moments is not None:
            run.load_moments(memory.moments)
        elif self.warmup_batches:
            n_seen += run.warmup(trainer.tensors(trainer.epoch(client, rng)[:self.warmup_batches]))
        steps = {"basis": run.basis_epoch, "coordinate": run.coordinate_epoch,
                 "ste": run.ste_epoch}
        n_prune = 0
        for phase, epochs in self.schedule:
            if phase == "prune":  # one phase over ``epochs`` epochs
                batches = [b for _ in range(epochs)
                           for b in trainer.tensors(trainer.epoch(client, rng))]
                n_prune += 1
                target = (self.cfg.i_max * math.exp(-n_prune * self.pruning_ratio)
                          if self.prune_to == "bits" else None)
                n_seen += run.prune_phase(batches, self.pruning_ratio,
                                          self.effective_top_k(len(batches)), rng, target)
            else:
                for _ in range(epochs):
                    n_seen += steps[phase](trainer.tensors(trainer.epoch(client, rng)))
        out = self._wire_alpha(run.result())
        kept = _ClientMemory(memory.pretrained or pretrain,
                             run.moments() if self.moments == "persistent" else None)
        return ClientUpdate(self.codec.encode(out), len(trainer.shards[client]),
                            float(n_seen) * trainer.flops_per_sample, out.avg_bits(),
                            state=kept)

    def effective_top_k(self, steps: int) -> float:
        """top_k, raised to pool_factor * pruning_ratio / steps where a phase has too few steps:
        pruning needs top_k * steps >= pruning_ratio or it silently stalls (docs/alq.md). The
        pool of candidates is then ``pool_factor`` times what a step prunes: at 1 every
        layer loses its own share (each keeps e^-pruning_ratio of its slots per phase), above 1
        the layers compete for it by the loss estimate (the ALQ reference's LeNet-5 setting is
        about 2.4)."""
        return min(1.0, max(self.cfg.top_k, self.pool_factor * self.pruning_ratio
                            / max(steps, 1)))

    def _wire_alpha(self, q: alq.QuantizedModel) -> alq.QuantizedModel:
        """With fp16 coordinates on the wire, round them here so that what a node runs is
        exactly what the other end decodes."""
        if self.alpha_dtype == "float16":
            for layer in q.layers.values():
                layer.alpha = layer.alpha.half().float()
        return q


PRETRAIN = ("first_round", "every_round", "never")
PRUNE_TO = ("survival", "bits")
STARTS = ("server", "resketch")
MOMENTS = ("fresh", "persistent")
SERVER_BITS = ("imax", "client_max", "client_mean")


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
