"""``flower``: a Flower strategy (``flwr.serverapp.strategy``, Flower's Message API) run over
the SIN as a sinsim algorithm.

The strategy decides what Flower lets a strategy decide; sinsim decides what the network does::

    sinsim                                   the Flower strategy
    ------                                   -------------------
    the round's nodes (training.selection,   configure_train(round, arrays, config, grid):
      clients_per_round; ``offer``)   ---->    which of them train, the ConfigRecord each gets
    the broadcast (fp32, as fedavg), the
    clients train with that config (lr,
    local-epochs, batch-size, proximal-mu),
    uploads (fp32) over passes, losses,
    the deadline                     ---->   aggregate_train(round, replies that arrived)
    the test set, every round                (sinsim's evaluation stands for evaluate_fn)

A Flower node id is ``NODE_ID_BASE + client index``. Replies that do not arrive before the
deadline are absent from ``aggregate_train``, as in a Flower grid whose replies time out.
Bytes on the wire are the fp32 payloads of sinsim's ``fedavg`` (``sinsim.learn.codecs``), so
Flower's FedAvg through here moves the same bytes as ``fedavg``.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Literal

import numpy as np
import torch
from pydantic import ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from sinsim.learn.codecs import CODECS, ModelSpec
from sinsim.learn.strategies import flower_api as api
from sinsim.learn.strategies.base import ClientUpdate, RoundContext, State, Strategy
from sinsim.learn.training import LocalTrainer
from sinsim.params import Section


class FlowerParams(Section):
    """``flower``: ``strategy`` names a Flower strategy class (``FedAdam``; default
    ``FedAvg``) or any importable ``module:Class``; ``params`` are its keyword arguments; ``config`` is the ConfigRecord
    passed to ``configure_train`` every round (as Flower's ``start(train_config=...)``), whose
    keys ``lr``, ``local-epochs``, ``batch-size`` and ``proximal-mu`` the clients honour.
    ``offer``: the nodes the strategy's grid holds each round: ``selected`` (default) the
    ``clients_per_round`` sinsim draws as for any algorithm, so Flower's sampling with
    ``fraction_train: 1.0`` takes them all; ``candidates`` every client the round may pick
    (all, or those in view with ``training.selection: visible``), Flower's ``fraction_train``
    and ``min_train_nodes`` choosing among them."""

    strategy: str = "FedAvg"
    params: dict[str, Any] = {}
    config: dict[str, Any] = {}
    offer: Literal["selected", "candidates"] = "selected"

    @model_validator(mode="after")
    def _flower(self) -> FlowerParams:
        try:
            api.build(self.strategy, self.params)
            api.client_config(self.config, set())
        except api.FlowerParamError as e:
            raise _at(("flower", *e.where), str(e)) from None
        except ValueError as e:
            raise _at(("flower", "config"), str(e)) from None
        return self


def _at(loc: tuple[str, ...], message: str) -> ValidationError:
    """A validation error at ``loc`` under the algorithm's entry, so that the scenario's error
    names ``algorithms.N.flower.params.KEY``."""
    err = PydanticCustomError("value_error", "Value error, {m}", {"m": message})
    return ValidationError.from_exception_data(
        "flower", [InitErrorDetails(type=err, loc=loc, input=None)])


class Flower(Strategy):
    """A Flower strategy behind sinsim's :class:`Strategy` protocol (module docstring)."""

    name = "flower"
    Params = FlowerParams

    def __init__(self, spec: ModelSpec, model_name: str | None = None, **params: Any):
        super().__init__(spec, model_name, **params)
        p = self.params
        self.flwr = api.build(p.strategy, p.params)  # the Flower strategy: server side only
        self.codec = CODECS["float32"](spec)
        # the MetricRecord key of the clients' training loss, for a strategy that reads one
        # (QFedAvg's ``train_loss_key``); None: the clients report ``num-examples`` only
        self.loss_key: str | None = getattr(self.flwr, "train_loss_key", None)
        self.configs: dict[int, api.ClientConfig] = {}  # this round's, per client
        self.messages: dict[int, Any] = {}  # this round's instruction messages, per client
        self.arrived: dict[bytes, tuple[int, float | None]] = {}  # digest -> client, loss
        self.unknown_reported: set[str] = set()
        self.offered: list[int] = []
        self._global: State | None = None  # the last aggregated model (None: not yet known)
        self.round = 0
        self.seed = 0

    def __getstate__(self) -> dict[str, Any]:
        """What a training process needs: the round's client configs, not Flower's objects."""
        state = dict(self.__dict__)
        state.update(flwr=None, messages={}, arrived={}, _global=None)
        return state

    # -- whom: a dry run of configure_train on a copy (the real one needs the global model) --
    def select(self, ctx: RoundContext) -> list[int]:
        self.round, self.seed = ctx.round, ctx.seed
        offered = (super().select(ctx) if self.params.offer == "selected"
                   else list(ctx.candidates))
        self.offered = [int(c) for c in offered]
        arrays = self._arrays(self._global if self._global is not None else self._zeros())
        messages = self._configure(copy.deepcopy(self.flwr), arrays)
        return sorted(messages)

    def _zeros(self) -> State:
        return {n: torch.zeros(s) for n, s in zip(self.spec.names, self.spec.shapes)}

    def _arrays(self, state: State) -> Any:
        from flwr.app import ArrayRecord

        return ArrayRecord({k: v.detach().cpu() for k, v in state.items()})

    def _configure(self, strategy: Any, arrays: Any) -> dict[int, Any]:
        """``configure_train`` of ``strategy`` over the offered nodes: client -> message."""
        from flwr.app import ConfigRecord

        grid = api.sin_grid(api.NODE_ID_BASE + c for c in self.offered)
        try:
            with api.server_side(self.seed, self.round, 0):
                msgs = list(strategy.configure_train(self.round, arrays,
                                                     ConfigRecord(dict(self.params.config)),
                                                     grid))
        except api.NotEnoughNodes:
            raise RuntimeError(
                f"{self.params.strategy} waits for more connected nodes than the "
                f"{len(self.offered)} the round offers (its min_available_nodes / "
                f"min_train_nodes): raise training.clients_per_round, lower them in params, "
                f"or offer: candidates") from None
        out = {}
        for m in msgs:
            c = int(m.metadata.dst_node_id) - api.NODE_ID_BASE
            if c not in self.offered or c in out:
                raise RuntimeError(f"{self.params.strategy} addressed node "
                                   f"{m.metadata.dst_node_id}, not one node of the round once")
            out[c] = m
        return out

    # -- the broadcast: the real configure_train, with the model being sent -------------------
    def encode_global(self, state: State) -> bytes:
        arrays = self._arrays(state)
        self.messages = self._configure(self.flwr, arrays)
        self.arrived = {}
        self.configs = {}
        for c, m in self.messages.items():
            if m.content.array_records and any(r is not arrays
                                               for r in m.content.array_records.values()):
                raise RuntimeError(f"{self.params.strategy} sends client {c} arrays other "
                                   f"than the global model; sinsim broadcasts one model")
            config = {k: v for r in m.content.config_records.values() for k, v in r.items()}
            unknown: set[str] = set()
            self.configs[c] = api.client_config(config, unknown)
            for key in sorted(unknown - self.unknown_reported):
                api.LOG.warning("%s sends config key %r, which sinsim's clients do not use "
                                "(they honour %s)", self.params.strategy, key,
                                ", ".join(api.CLIENT_KEYS))
                self.unknown_reported.add(key)
        return self.codec.encode(state)

    def decode_global(self, payload: bytes) -> State:
        return self.codec.decode(payload)

    # -- a client -----------------------------------------------------------------------------
    def client_update(self, trainer: LocalTrainer, received: State, client: int,
                      rng: np.random.Generator) -> ClientUpdate:
        cfg = self.configs.get(client, api.ClientConfig())
        loss, flops = None, 0.0
        if self.loss_key is not None:  # QFedAvg: the received model's loss on the shard,
            loss = trainer.shard_loss(received, client)  # one forward pass (a third of a
            flops = trainer.flops_per_sample / 3 * len(trainer.shards[client])  # training step)
        result = trainer.train(received, client, rng, cfg.epochs, lr=cfg.lr,
                               batch_size=cfg.batch_size, proximal_mu=cfg.proximal_mu)
        payload = self.codec.encode(result.state)
        return ClientUpdate(payload, result.n_samples, result.flops + flops,
                            state=(_digest(payload), loss))

    def set_client_state(self, client: int, state: Any) -> None:
        """Remembers whose upload a payload is (its digest), to reply to that client's
        message, and the loss it reports (QFedAvg); nothing is kept across rounds."""
        if state is not None:
            digest, loss = state
            self.arrived[digest] = (client, loss)

    # -- the server ---------------------------------------------------------------------------
    def new_aggregator(self) -> FlowerAggregator:
        return FlowerAggregator(self)

    def aggregate(self, replies: list[tuple[tuple[int, float | None], bytes, int]],
                  global_state: State) -> State:
        """``aggregate_train`` over the replies that arrived, ((client, loss), payload,
        n_samples) in arrival order; ``global_state`` when the strategy returns no arrays."""
        from flwr.app import Message, MetricRecord, RecordDict

        weight_key = getattr(self.flwr, "weighted_by_key", "num-examples")
        array_key = getattr(self.flwr, "arrayrecord_key", "arrays")
        msgs = []
        with api.server_side(self.seed, self.round, 1):
            for (c, loss), payload, n in replies:
                metrics = {weight_key: n}
                if self.loss_key is not None and loss is not None:
                    metrics[self.loss_key] = loss
                content = RecordDict({array_key: self._arrays(self.codec.decode(payload)),
                                      "metrics": MetricRecord(metrics)})
                msgs.append(Message(content, reply_to=self.messages[c]))
            arrays, _metrics = self.flwr.aggregate_train(self.round, msgs)
        if arrays is None:
            new = global_state
        else:
            torch_state = arrays.to_torch_state_dict()
            new = {k: torch_state[k].to(v.dtype).to(v.device) for k, v in global_state.items()}
        self._global = new
        return new

    # -- between rounds: Flower's strategy state, as data -------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The Flower strategy's attributes that are data (arrays, numbers, ArrayRecords),
        and the last global model (the next round's dry run starts from it)."""
        data = {k: v for k, v in ((k, _as_data(v)) for k, v in vars(self.flwr).items())
                if v is not _SKIP}
        return {"flower": data, "unknown_reported": sorted(self.unknown_reported),
                "global": None if self._global is None else dict(self._global)}

    def restore(self, state: dict[str, Any]) -> None:
        for k, v in state["flower"].items():
            if not hasattr(self.flwr, k):
                raise KeyError(f"{self.params.strategy} has no attribute {k!r}")
            setattr(self.flwr, k, _from_data(v))
        self.unknown_reported = set(state["unknown_reported"])
        if state["global"] is not None:
            self._global = dict(state["global"])


class FlowerAggregator:
    """The round's replies as they arrive; Flower aggregates them all at the round's end."""

    def __init__(self, owner: Flower):
        self.owner = owner
        self.replies: list[tuple[tuple[int, float | None], bytes, int]] = []

    def add(self, payload: bytes, n_samples: int) -> None:
        self.replies.append((self.owner.arrived[_digest(payload)], payload, n_samples))

    @property
    def count(self) -> int:
        return len(self.replies)

    def result(self, global_state: State) -> State:
        return self.owner.aggregate(self.replies, global_state)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


_SKIP = object()
_ARRAYS = "__flwr_arrayrecord__"


def _as_data(value: Any) -> Any:
    """``value`` as checkpoint data, or ``_SKIP`` (callables, loggers: set by the
    constructor, never changed by a round)."""
    from flwr.app import ArrayRecord

    if value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.generic)):
        return value
    if isinstance(value, ArrayRecord):
        return {_ARRAYS: {k: a.numpy() for k, a in value.items()}}
    if isinstance(value, (list, tuple)) and all(isinstance(v, np.ndarray) for v in value):
        return list(value)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, np.ndarray)
                                       for k, v in value.items()):
        return dict(value)
    return _SKIP


def _from_data(value: Any) -> Any:
    from flwr.app import Array, ArrayRecord

    if isinstance(value, dict) and set(value) == {_ARRAYS}:
        return ArrayRecord({k: Array(np.asarray(v)) for k, v in value[_ARRAYS].items()})
    return value
