"""Who pays for what: the batteries of a run's satellites, charged as things happen.

Pure bookkeeping over :class:`sinsim.sim.power.Battery` (no SimPy): the engine's processes call
it at the simulated instant a load starts, in time order, so each battery only ever registers
loads from its own present on (overlapping ones add up).

* :class:`NodePower` is one node's share of one round (or one asynchronous delivery): it gates
  and charges the node's loads and gives its ``power.csv`` row.
* :class:`Ledger` holds the :class:`NodePower` of every node a round touched, made on first use:
  the round's clients, and the satellites that relay its payloads.
* :class:`HopPower` is one hop's view of a ledger, handed to the transfer of that hop
  (:func:`sinsim.sim.transfer.transfer`): before each segment goes on the air the
  transmitting node's battery must afford it (``tx_w`` for that segment's airtime), and then
  the sender pays ``tx_w`` and the receiver ``rx_w`` for the segment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sinsim.sim.power import Battery

__all__ = ["NodePower", "Ledger", "HopPower"]


class NodePower:
    """One satellite's battery during one round: gates its loads (waiting for charge) and
    charges them: ``compute_w`` while training, ``tx_w``/``rx_w`` while the segments of the hops
    it sends or receives are on the air (its own transfers' and those it relays)."""

    def __init__(self, battery: Battery, now_s: float):
        self.battery, self.params = battery, battery.params
        battery.advance(max(battery.t_s, now_s))
        battery.reset_lowest()
        self.used_j = {"compute": 0.0, "tx": 0.0, "rx": 0.0}
        self.waited_s = 0.0
        self.loads = {"compute": self.params.compute_w, "tx": self.params.tx_w,
                      "rx": self.params.rx_w}

    def earliest_start(self, t_s: float, duration_s: float, kind: str,
                       deadline_s: float) -> float:
        """When the load can start (inf: never); the wait, up to ``deadline_s``, is counted."""
        self.battery.advance(max(self.battery.t_s, t_s))
        start = self.battery.earliest_start(t_s, duration_s, self.loads[kind])
        self.waited_s += max(0.0, min(start, deadline_s) - t_s)
        return start

    def run(self, t_s: float, duration_s: float, kind: str) -> None:
        """Charge ``kind``'s load over ``[t_s, t_s + duration_s]`` (``t_s``: now)."""
        self.battery.advance(max(self.battery.t_s, t_s))
        self.used_j[kind] += self.battery.add_load(t_s, t_s + duration_s, self.loads[kind],
                                                   kind)

    def row(self, now_s: float) -> dict[str, Any]:
        """The node's ``power.csv`` columns for the round so far (it may be asked again, later):
        the loads it charged, the lowest charge since it was made (or since a later share of
        the same battery was: asynchronous deliveries that overlap) until ``now_s``, the wait."""
        self.battery.advance(max(self.battery.t_s, now_s))
        return {"energy_compute_j": self.used_j["compute"], "energy_tx_j": self.used_j["tx"],
                "energy_rx_j": self.used_j["rx"], "min_soc": float(self.battery.lowest_soc),
                "waited_for_power_s": self.waited_s}


class Ledger:
    """The :class:`NodePower` of each node (by id) a round touches; ``batteries`` maps the
    nodes that have one (satellites) to it."""

    def __init__(self, batteries: Mapping[str, Battery]):
        self.batteries = batteries
        self.nodes: dict[str, NodePower] = {}

    def node(self, node: str, now_s: float) -> NodePower | None:
        """``node``'s share of this round (made now on first use); None: it has no battery."""
        if node not in self.nodes:
            battery = self.batteries.get(node)
            if battery is None:
                return None
            self.nodes[node] = NodePower(battery, now_s)
        return self.nodes[node]

    def hop(self, src: str, dst: str, deadline_s: float) -> HopPower | None:
        """The power of a hop ``src`` -> ``dst`` (None: neither end has a battery)."""
        if src not in self.batteries and dst not in self.batteries:
            return None
        return HopPower(self, src, dst, deadline_s)

    def rows(self, now_s: float) -> list[dict[str, Any]]:
        """The ``power.csv`` rows (``node`` and its columns) of every node touched so far, by
        id, until ``now_s``."""
        return [{"node": node, **self.nodes[node].row(now_s)} for node in sorted(self.nodes)]


class HopPower:
    """The batteries at the two ends of one hop: the sender's gates each segment (``tx``)."""

    def __init__(self, ledger: Ledger, src: str, dst: str, deadline_s: float):
        self.ledger, self.src, self.dst, self.deadline_s = ledger, src, dst, deadline_s

    def earliest_start(self, t_s: float, duration_s: float) -> float:
        """The earliest time ``>= t_s`` the sender can transmit for ``duration_s`` without
        going below ``min_soc`` (``t_s`` when it has no battery; inf: never)."""
        sender = self.ledger.node(self.src, t_s)
        if sender is None:
            return t_s
        start = sender.earliest_start(t_s, duration_s, "tx", self.deadline_s)
        return start if math.isfinite(start) else math.inf

    def on_air(self, start_s: float, end_s: float) -> None:
        """A segment goes on the air now (``start_s``) until ``end_s``: the ends pay."""
        for node, kind in ((self.src, "tx"), (self.dst, "rx")):
            share = self.ledger.node(node, start_s)
            if share is not None:
                share.run(start_s, end_s - start_s, kind)
