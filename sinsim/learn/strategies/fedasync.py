"""FedAsync (Xie et al. 2019, "Asynchronous Federated Optimization"): the server mixes every
update into the global model the moment it arrives, with a weight that shrinks with staleness.

Each arrival makes a new server version: x <- (1 - alpha_t) x + alpha_t x_client with
alpha_t = ``mixing`` * s(tau) (``sinsim.learn.strategies.asynchronous``). The client side is
FedAvg's (codec, ``update``, ``local_epochs``, error feedback). With an update codec the client
sends its update d = x_client - x_downloaded, and the server takes x + alpha_t d (the same as
mixing when the update is fresh; for a stale one it applies the update to the current model).
"""

from __future__ import annotations

import torch
from pydantic import Field

from sinsim.learn.strategies.asynchronous import AsyncParams, staleness_weight
from sinsim.learn.strategies.base import State
from sinsim.learn.strategies.fedavg import FedAvg, FedAvgParams
from sinsim.params import Float


class FedAsyncParams(AsyncParams, FedAvgParams):
    """``fedasync``: FedAvg's client parameters, the server's ``concurrency``, ``staleness``
    and ``handover``, ``mixing`` alpha in (0, 1] (0.6, as in Xie et al.'s experiments), and
    ``rho`` >= 0, the weight of the clients' proximal term (rho / 2) ||x - x_tau||^2 (Xie et
    al.'s regularized local objective; 0, the default, leaves it out: FedAvg's client)."""

    mixing: Float = Field(default=0.6, gt=0, le=1)
    rho: Float = Field(default=0.0, ge=0)


def mix(global_state: State, client_state: State, alpha: float) -> State:
    """(1 - alpha) global + alpha client, per tensor in float64, rounded once to the global
    model's dtype (alpha = 1 gives the client's model exactly)."""
    return {k: ((1.0 - alpha) * w.to(torch.float64)
                + alpha * client_state[k].to(torch.float64)).to(w.dtype)
            for k, w in global_state.items()}


def add_scaled(global_state: State, update: State, alpha: float) -> State:
    """global + alpha update, per tensor in float64, rounded once."""
    return {k: (w.to(torch.float64) + alpha * update[k].to(torch.float64)).to(w.dtype)
            for k, w in global_state.items()}


class FedAsync(FedAvg):
    """One new global model per arriving update, mixed in with weight mixing * s(staleness)."""

    name = "fedasync"
    Params = FedAsyncParams
    synchronous = False

    def new_aggregator(self):
        raise NotImplementedError(f"{self.name} is asynchronous: the server takes each update "
                                  f"with on_arrival")

    def client_update(self, trainer, global_state, client, rng):
        """FedAvg's client, its loss with the proximal term rho / 2 ||x - x_tau||^2 (x_tau:
        the model it downloaded)."""
        if not self.params.rho:
            return super().client_update(trainer, global_state, client, rng)
        result = trainer.train(global_state, client, rng, self.local_epochs,
                               proximal_mu=self.params.rho)
        return self._upload(result, global_state, client, rng)

    def mixing_weight(self, staleness: int) -> float:
        """alpha_t = mixing * s(staleness)."""
        return self.params.mixing * staleness_weight(self.params.staleness, staleness)

    def on_arrival(self, global_state: State, payload: bytes, n_samples: int,
                   staleness: int) -> State:
        alpha = self.mixing_weight(staleness)
        if self.update is None:
            return mix(global_state, self.codec.decode(payload), alpha)
        return add_scaled(global_state, self.update.decode(payload), alpha)

