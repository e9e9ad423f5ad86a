"""FedBuff (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation"):
the server buffers the arriving updates and makes a new global model from every
``buffer_size`` of them.

A client sends its update d = trained - downloaded weights (with ``codec``, fp32 by default, or
with FedAvg's ``update`` codec). When the buffer holds K = ``buffer_size`` updates the server
steps

    x <- x + server_lr * sum_i n_i s(tau_i) d_i / sum_i n_i

(n_i: the client's samples, s: the staleness function, 1 / sqrt(1 + tau) by default as in
Nguyen et al.; they average uniformly, here the mean is sample-weighted as FedAvg's, so that a
buffer of fresh updates with ``server_lr`` 1 is FedAvg's round exactly) and empties the buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pydantic import Field

from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.strategies.asynchronous import AsyncParams, staleness_weight
from sinsim.learn.strategies.base import ClientUpdate, State
from sinsim.learn.strategies.fedavg import FedAvg, FedAvgParams
from sinsim.learn.training import TrainResult
from sinsim.params import Float, Int


class FedBuffParams(AsyncParams, FedAvgParams):
    """``fedbuff``: FedAvg's client parameters, the server's ``concurrency`` (None:
    ``training.clients_per_round``; Nguyen et al. run many more clients at once than K, which
    it may be set to), ``staleness`` and ``handover``, ``buffer_size`` K (10, as in Nguyen et
    al.) and ``server_lr`` eta_g (1: a buffer of fresh updates is FedAvg's step; the paper
    tunes it per task)."""

    buffer_size: Int = Field(default=10, gt=0)
    server_lr: Float = Field(default=1.0, gt=0)


def buffered_step(global_state: State, updates: Sequence[State], n_samples: Sequence[int],
                  weights: Sequence[float], server_lr: float = 1.0) -> State:
    """global + server_lr * sum_i n_i w_i u_i / sum_i n_i, in float64 (summed in the given
    order), rounded once to the global model's dtypes. With every weight 1 and server_lr 1 it is
    FedAvg's update mean (``UpdateMean``) to the bit."""
    if not updates:
        return global_state
    mean = WeightedMean()
    for u, n, w in zip(updates, n_samples, weights, strict=True):
        mean.add(u, float(n) * w)
    wide = {k: v.to(torch.float64) for k, v in global_state.items()}
    factor = server_lr * (mean.total_weight / float(sum(n_samples)))
    step = mean.result(wide)
    return {k: (wide[k] + factor * step[k]).to(w.dtype) for k, w in global_state.items()}


class FedBuff(FedAvg):
    """Buffered asynchronous aggregation: one new global model per ``buffer_size`` arrivals."""

    name = "fedbuff"
    Params = FedBuffParams
    synchronous = False

    def __init__(self, spec, model_name=None, **params):
        super().__init__(spec, model_name, **params)
        self.buffer: list[tuple[State, int, float]] = []  # (update, n_samples, s(tau))

    def __getstate__(self):
        state = super().__getstate__()
        state["buffer"] = []
        return state

    def new_aggregator(self):
        raise NotImplementedError(f"{self.name} is asynchronous: the server takes each update "
                                  f"with on_arrival")

    def _upload(self, result: TrainResult, received: State, client: int,
                rng: np.random.Generator) -> ClientUpdate:
        """The update (trained - received weights) with ``codec``, or with the update codec."""
        if self.update is not None:
            return super()._upload(result, received, client, rng)
        delta = {k: result.state[k] - received[k] for k in received}
        return ClientUpdate(self.codec.encode(delta), result.n_samples, result.flops)

    def decode_update(self, payload: bytes) -> State:
        return self.codec.decode(payload) if self.update is None else self.update.decode(payload)

    def on_arrival(self, global_state: State, payload: bytes, n_samples: int,
                   staleness: int) -> State:
        """Buffer the update; ``global_state`` itself (no new version) until the buffer holds
        ``buffer_size``, then the stepped model (a new version) and an empty buffer."""
        weight = staleness_weight(self.params.staleness, staleness)
        self.buffer.append((self.decode_update(payload), n_samples, weight))
        if len(self.buffer) < self.params.buffer_size:
            return global_state
        updates, ns, weights = zip(*self.buffer)
        self.buffer = []
        return buffered_step(global_state, updates, ns, weights, self.params.server_lr)
