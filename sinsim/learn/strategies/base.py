"""The protocol every federated-learning algorithm implements, and what it is given and returns.

A :class:`Strategy` is data in, data out: it says whom to pick, how the global model and the
updates are encoded on the wire, what a client computes, and how the server combines what
arrived. The event loop (``sinsim.sim.engine``) decides *when* each of these happens and whether
a transfer made it; a strategy never sees the clock except through :class:`RoundContext`.

The lifecycle of one synchronous round, as the engine drives it (compare Flower's ``Strategy``:
``configure_fit`` / ``aggregate_fit``)::

    selected = strategy.select(ctx)                       # whom to train this round
    payload = strategy.encode_global(global_state)        # the broadcast, bytes on the wire
    received = strategy.decode_global(payload)            # what every client decodes
    aggregator = strategy.new_aggregator()
    # for each selected client whose download arrived (possibly in another process):
    update = strategy.client_update(trainer, received, client, rng)
    strategy.set_client_state(client, update.state)       # what it keeps until its next round
    # for each upload that arrived before the deadline:
    aggregator.add(update.payload, update.n_samples)
    global_state = aggregator.result(global_state)        # the next global model

An asynchronous server (``synchronous = False``) folds each update in as it arrives instead,
with :meth:`Strategy.on_arrival` and the update's staleness (server versions since the client
downloaded the model it trained).

A strategy declares its parameters once, as a :class:`sinsim.params.Section` named ``Params``;
the scenario schema takes them from the registry (``sinsim.learn.strategies.STRATEGIES``), so
the defaults live only there. Adding an algorithm is one file and one registry line
(``docs/design.md``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from sinsim._rng import rng_for
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.training import LocalTrainer
from sinsim.params import Section

State = dict[str, torch.Tensor]


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
    # what it keeps instead when its upload is never sent or does not finish (error feedback:
    # the whole update, residual included; None: ``state`` either way)
    unsent_state: Any = None


class Aggregator(Protocol):
    """The server's side of one round: updates are added one at a time as they arrive."""

    def add(self, payload: bytes, n_samples: int) -> None: ...

    @property
    def count(self) -> int: ...  # updates added so far

    def result(self, global_state: State) -> State: ...  # ``global_state`` if none arrived


def select_uniform(ctx: RoundContext) -> list[int]:
    """``clients_per_round`` of the candidates drawn uniformly without replacement (seeded by
    round); all of them when there are fewer."""
    rng = rng_for(ctx.seed, "select", ctx.round)
    k = min(ctx.clients_per_round, len(ctx.candidates))
    return sorted(int(c) for c in rng.choice(np.asarray(ctx.candidates), k, replace=False))


class Strategy(ABC):
    """A federated-learning algorithm.

    Subclasses set ``name`` and ``Params`` and implement the abstract methods. The constructor
    validates the keyword parameters against ``Params`` (defaults filled in) into
    ``self.params``. Optional capability: ``client_updates_batched(trainer, received, clients,
    rngs) -> list[ClientUpdate]`` trains several clients in one vectorised step
    (``training.batched``).
    """

    name: ClassVar[str]
    Params: ClassVar[type[Section]]
    synchronous: ClassVar[bool] = True  # False: the server takes updates with ``on_arrival``
    hierarchical: ClassVar[bool] = False  # True: planes aggregate first (sim.hier_server)

    def __init__(self, spec: ModelSpec, model_name: str | None = None, **params: Any):
        self.spec = spec
        self.model_name = model_name
        self.params = self.Params.model_validate(params)

    # -- whom ------------------------------------------------------------------------------
    def select(self, ctx: RoundContext) -> list[int]:
        """The clients of this round (indices into the network's clients): by default
        ``clients_per_round`` of the candidates, uniformly at random (seeded by round)."""
        return select_uniform(ctx)

    # -- the broadcast ---------------------------------------------------------------------
    @abstractmethod
    def encode_global(self, state: State) -> bytes:
        """The global model as the bytes the server sends."""

    @abstractmethod
    def decode_global(self, payload: bytes) -> Any:
        """What a client makes of those bytes (passed to ``client_update`` as ``received``)."""

    # -- a client --------------------------------------------------------------------------
    @abstractmethod
    def client_update(self, trainer: LocalTrainer, received: Any, client: int,
                      rng: np.random.Generator) -> ClientUpdate:
        """Train ``client`` from the received model; must not change ``self`` (it may run in
        another process): what the client keeps goes in ``ClientUpdate.state``."""

    def client_state(self, client: int) -> Any:
        """What this strategy keeps for ``client`` between its rounds (None: nothing)."""
        return None

    def set_client_state(self, client: int, state: Any) -> None:  # noqa: B027 - optional
        """Commit what ``client_update`` returned in ``ClientUpdate.state`` (by default the
        strategy keeps nothing)."""

    # -- between rounds --------------------------------------------------------------------
    def checkpoint(self) -> Any:
        """What this strategy holds between rounds that a resumed run needs (``--resume``):
        e.g. the clients' states. None: nothing (the default). Data only, for a checkpoint
        that cannot run code (``sinsim.sim.checkpoint``): dicts, lists, tuples, numbers,
        strings, numpy scalars, tensors and arrays; ``restore`` rebuilds any objects."""
        return None

    def restore(self, state: Any) -> None:  # noqa: B027 - optional
        """Take back what ``checkpoint`` returned; anything else (a damaged or crafted
        checkpoint) raises ``KeyError``, ``TypeError`` or ``ValueError``."""

    # -- the server ------------------------------------------------------------------------
    @abstractmethod
    def new_aggregator(self) -> Aggregator:
        """A fresh aggregate for one synchronous round."""

    def on_arrival(self, global_state: State, payload: bytes, n_samples: int,
                   staleness: int) -> State:
        """Asynchronous servers: the global model after one update arrives at any time;
        ``staleness`` counts the server versions since the client downloaded the model it
        trained. A new object is a new server version (a ``rounds.csv`` row); ``global_state``
        itself means no new version yet (a strategy that buffers, FedBuff). Their ``Params``
        also have ``concurrency`` (``asynchronous.AsyncParams``). Synchronous strategies
        (``synchronous = True``) aggregate per round instead."""
        raise NotImplementedError(f"{self.name} is synchronous: it aggregates per round "
                                  f"(new_aggregator), not per arrival")
