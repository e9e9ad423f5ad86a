"""WHEN things happen: the only room that imports SimPy."""

from sinsim.sim.engine import prepare, run_algorithm, run_scenario

__all__ = ["prepare", "run_algorithm", "run_scenario"]
