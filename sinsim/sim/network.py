"""The SIN as the engine sees it: one up- and one down-channel per client, and loss draws."""

from __future__ import annotations

from dataclasses import dataclass

from sinsim._rng import rng_for
from sinsim.scenario import Scenario
from sinsim.sim.channel import Channel, fixed_channel

UP, DOWN = 0, 1


@dataclass(frozen=True)
class Network:
    client_ids: tuple[str, ...]
    up: tuple[Channel, ...]
    down: tuple[Channel, ...]
    loss_p: float
    seed: int

    def lost(self, round_: int, client: int, direction: int) -> bool:
        """Is this transfer lost? Keyed by (round, client, direction), so every algorithm of a
        run sees the same draw for the same transfer."""
        if self.loss_p <= 0:
            return False
        return bool(rng_for(self.seed, "loss", round_, client, direction).random() < self.loss_p)


def build_network(scenario: Scenario) -> Network:
    """Fixed-rate links to clients that are always in view."""
    links = scenario.links
    n = scenario.n_clients
    width = max(4, len(str(n - 1)))
    up = fixed_channel(links.uplink.rate_bps, links.uplink.propagation_delay_s)
    down = fixed_channel(links.downlink.rate_bps, links.downlink.propagation_delay_s)
    loss_p = links.loss.p if links.loss.kind == "bernoulli" else 0.0
    return Network(tuple(f"client{i:0{width}d}" for i in range(n)), (up,) * n, (down,) * n,
                   loss_p, scenario.seed)
