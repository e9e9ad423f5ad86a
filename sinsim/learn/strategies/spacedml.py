"""SpaceDML (Guo et al., IEEE Network 2021): ALQ-quantized models both ways, partial weight
averaging over the clients that made it back (docs/alq.md, docs/fidelity.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from sinsim.learn import alq
from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.alq_codec import ALQCodec
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.schedule import parse_schedule
from sinsim.learn.strategies.base import ClientUpdate, State, Strategy
from sinsim.learn.training import LocalTrainer
from sinsim.params import Float, Float32, Int, Section


class SpaceDMLParams(Section):
    """``spacedml``: ALQ-quantized uplink and downlink with partial weight averaging (Guo et
    al. 2021). Defaults: chosen by the ablation of docs/fidelity.md and the ALQ authors'
    LeNet-5 settings; docs/alq.md says what each one means and how it was calibrated."""

    pruning_ratio: Float = Field(default=0.8, gt=0, le=5)
    i_max: Int = Field(default=6, ge=1, le=8)
    alpha_dtype: Literal["float32", "float16"] = "float32"
    # the client round (docs/fidelity.md): a preset name or a list of phases (learn/schedule.py)
    schedule: Any = "interleaved"
    pretrain: Literal["first_round", "every_round", "never"] = "every_round"
    pretrain_epochs: Int = Field(default=1, ge=0)      # fp32 SGD before the sketch at i_max
    start: Literal["server", "resketch"] = "server"    # when the client does not pre-train
    moments: Literal["fresh", "persistent"] = "fresh"
    lr: Float32 = Field(default=1e-3, gt=0)            # float32 steps (AMSGrad, Adam)
    prune_lr: Float32 = Field(default=1.2e-6, gt=0)
    top_k: Float = Field(default=0.005, gt=0, le=1)
    pool_factor: Float = Field(default=2.0, ge=1)  # pruning candidates / pruned, short phases
    # survival: a phase keeps ~e^-pr of the slots it starts with (the ALQ reference code);
    # bits: the j-th phase of a round ends at i_max e^(-j pr) mean bits (docs/fidelity.md)
    prune_to: Literal["survival", "bits"] = "bits"
    warmup_batches: Int = Field(default=10, ge=0)
    server_bits: Literal["imax", "client_max", "client_mean"] = "imax"
    server_refine_passes: Int = Field(default=5, ge=0)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Any) -> Any:
        parse_schedule(v)  # raises with the item that is wrong
        return v


@dataclass(frozen=True)
class _ClientMemory:
    """What SpaceDML keeps for a client between its rounds."""

    pretrained: bool = False
    moments: dict[str, Any] | None = None  # ALQTrainer.moments() with ``moments: persistent``


class SpaceDML(Strategy):
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
    Params = SpaceDMLParams

    def __init__(self, spec: ModelSpec, model_name: str | None = None, **params: Any):
        super().__init__(spec, model_name, **params)
        p = self.params
        self.layout = alq.model_layout(dict(zip(spec.names, spec.shapes)), model_name)
        self.codec = ALQCodec(spec, self.layout, p.i_max, p.alpha_dtype)
        self.cfg = alq.ALQConfig(i_max=p.i_max, lr=p.lr, prune_lr=p.prune_lr, top_k=p.top_k)
        self.pruning_ratio, self.alpha_dtype = p.pruning_ratio, p.alpha_dtype
        self.pool_factor, self.prune_to = p.pool_factor, p.prune_to
        self.schedule = parse_schedule(p.schedule)
        self.pretrain, self.pretrain_epochs = p.pretrain, p.pretrain_epochs
        self.start, self.moments = p.start, p.moments
        self.warmup_batches = p.warmup_batches
        self.server_bits, self.server_refine_passes = p.server_bits, p.server_refine_passes
        self.memory: dict[int, _ClientMemory] = {}  # per client, kept between its rounds
        self._global: tuple[State, alq.QuantizedModel] | None = None

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

    def checkpoint(self) -> dict[str, Any]:
        """The clients' memory and the server's quantized global model, as data (dicts,
        tensors, numbers): ``global.state`` is the engine's global model itself, which the
        checkpoint stores once and gives back as one object."""
        memory = {c: {"pretrained": m.pretrained, "moments": m.moments}
                  for c, m in self.memory.items()}
        if self._global is None:
            return {"memory": memory, "global": None}
        state, q = self._global
        layers = {k: {"B": v.B, "alpha": v.alpha, "mask": v.mask} for k, v in q.layers.items()}
        return {"memory": memory,
                "global": {"state": state, "layers": layers, "others": dict(q.others)}}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what ``checkpoint`` returned (a ``TypeError``/``KeyError``/``ValueError``
        for anything else)."""
        memory = {}
        for c, m in state["memory"].items():
            if not isinstance(c, (int, np.integer)) or type(m["pretrained"]) is not bool:
                raise TypeError(f"client {c!r}: not a client's memory")
            memory[c] = _ClientMemory(m["pretrained"], m["moments"])
        g = state["global"]
        self._global = None
        if g is not None:
            names = {gs.name for gs in self.layout}
            if set(g["layers"]) != names:
                raise ValueError(f"quantized layers {sorted(g['layers'])}, not {sorted(names)}")
            layers = {k: alq.QLayer(v["B"], v["alpha"], v["mask"])
                      for k, v in g["layers"].items()}
            if not all(isinstance(t, torch.Tensor) for v in layers.values()
                       for t in (v.B, v.alpha, v.mask)):
                raise TypeError("quantized layers of tensors")
            self._global = (g["state"], alq.QuantizedModel(self.layout, layers, dict(g["others"])))
        self.memory = memory

    # -- server ----------------------------------------------------------------------------
    def quantize_global(self, state: State,
                        bits: State | None = None) -> alq.QuantizedModel:
        """The data-free sketch of a full-precision global model (greedy + refinement)."""
        q = alq.sketch_model(state, self.layout, self.cfg.i_max, bits, self.server_refine_passes)
        return self._wire_alpha(q)

    def encode_global(self, state: State) -> bytes:
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

    def result(self, global_state: State) -> State:
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
