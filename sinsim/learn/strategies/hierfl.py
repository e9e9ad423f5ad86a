"""Hierarchical FL in orbit (``hierfl``): planes aggregate over their inter-satellite ring, and
one satellite a plane uploads the plane's model (FedISL / FedLEO-style; Razmi et al. 2022,
Elmahallawy & Luo 2022).

Hierarchical both ways: one copy of the global model goes down a plane and round its ring. The
client side is FedAvg's (``local_epochs``, ``codec``): each selected satellite trains from the
model and sends its weights, not to the server but over its plane's ring to the plane's *sink*,
the satellite of the plane that sees a ground station soonest. The sink averages the updates of
its plane (sample-weighted; ``plane_rounds`` times, HierFAVG's κ₁, Liu et al. 2020), sends that
one model to the server, and the server averages the plane models weighted by their samples:
with every update delivered and κ₁ = 1, the FedAvg mean, up to float rounding.
``sinsim.sim.hier_server`` runs the rounds (when the sink sends, what happens to late
updates).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from sinsim.learn.strategies.fedavg import DecodingMean, FedAvg, FedAvgParams
from sinsim.params import Int


class HierFLParams(FedAvgParams):
    """``hierfl``: FedAvg's parameters (updates are weights: ``update`` is not supported, a
    plane's mean of compressed updates would be re-encoded at the sink), and ``plane_rounds``
    (HierFAVG's κ₁): plane averages a global round, the members training again from each."""

    plane_rounds: Int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _weights_only(self) -> HierFLParams:
        if self.update is not None:
            raise ValueError("hierfl sends weights: update is not supported")
        return self


class HierFL(FedAvg):
    name = "hierfl"
    Params = HierFLParams
    hierarchical = True  # sinsim.sim.hier_server runs it

    def plane_aggregator(self) -> DecodingMean:
        """A fresh aggregate of one plane's updates at its sink."""
        return DecodingMean(self.codec.decode)

    def encode_plane(self, state) -> bytes:
        """The plane model the sink uploads: the codec's encoding, as a client's."""
        return self.codec.encode(state)
