"""Run ``routing.send`` jobs in one SimPy environment (shared by the routing, antenna and
broadcast tests)."""

from __future__ import annotations

import math

import simpy

from sinsim.sim.network import Network
from sinsim.sim.routing import send


def run_sends(net: Network, jobs, deadline_s=math.inf):
    """Start every (client, direction, n_bytes, start_s) of ``jobs`` in one environment."""
    env = simpy.Environment()

    def job(c, d, n, t0):
        yield env.timeout(t0)
        return (yield from send(env, net, c, d, n, deadline_s, round_=1))

    procs = [env.process(job(*j)) for j in jobs]
    env.run()
    return [p.value for p in procs]
