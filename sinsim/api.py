"""sinsim's Python API, for notebooks and scripts: the command line's work without it.

>>> import sinsim
>>> sc = sinsim.load_scenario("tiny", overrides={"training.rounds": 1})   # doctest: +SKIP
>>> run = sinsim.run(sc)                                                  # doctest: +SKIP
>>> run.rounds[["algorithm", "round", "test_accuracy", "bytes_up"]]       # doctest: +SKIP

Scenarios and sweeps are files or the names of bundled ones (``sinsim scenarios`` lists them).
Errors are those of the command line: :class:`sinsim.errors.ConfigError` (bad input, naming
the file and the key) and :class:`sinsim.errors.DatasetUnavailable` (``sinsim data fetch``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sinsim.bundled import resolve
from sinsim.errors import ConfigError

TABLES = ("rounds", "transfers", "contacts", "clients", "links", "hops", "power", "nodes")

__all__ = ["Run", "load_run", "load_scenario", "run", "sweep"]


@dataclass
class Run:
    """A finished run: ``summary`` (``summary.json`` as a dict) and its tables as DataFrames
    (``tables["rounds"]``, also ``run.rounds``, ``run.transfers``, ...: those the run wrote).
    ``out_dir`` is where they are on disk, None when the run was not kept."""

    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    out_dir: Path | None = None

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"this run has no table {name!r} (it has: {', '.join(tables)})")

    @property
    def accuracy(self) -> dict[str, float]:
        """Final test accuracy per algorithm."""
        return {a: s["final_accuracy"] for a, s in self.summary["algorithms"].items()}


def load_scenario(path_or_name: str | Path, overrides: Mapping[str, Any] | None = None):
    """A validated :class:`sinsim.scenario.Scenario` from a file or a bundled scenario's name,
    with ``overrides`` (``{"training.rounds": 3}``: key paths as ``--set`` takes them, values
    as Python objects) applied before validation."""
    from sinsim.scenario import load_scenario as load

    items = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...')}"
             .strip() for k, v in (overrides or {}).items()]
    return load(resolve(path_or_name, "scenarios"), items)


def run(scenario, out_dir: str | Path | None = None, *, resume: bool = False) -> Run:
    """Run every algorithm of ``scenario`` (a Scenario, a file or a bundled name) on the same
    network and seed, and return its tables. ``out_dir``: write the results directory there as
    ``sinsim run --out`` does; None: run in a temporary directory and keep only the returned
    tables. A portable scenario (``training.portable``) pins this process's torch kernels
    (``sinsim.learn.portable``); where torch already ran kernels in this process that cannot
    hold, and the error says so (run with ``overrides={"training.portable": False}``, or start
    the notebook's kernel under ``python -m sinsim.learn.portable``)."""
    from sinsim.sim.engine import run_scenario

    if not hasattr(scenario, "training"):
        scenario = load_scenario(scenario)
    if scenario.training.portable:
        _pin_portable()
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        run_scenario(scenario, out, resume=resume)
        return load_run(out)
    with tempfile.TemporaryDirectory(prefix="sinsim-run-") as tmp:
        run_scenario(scenario, Path(tmp))
        result = load_run(tmp)
    result.out_dir = None
    return result


def _pin_portable() -> None:
    from sinsim.learn import portable

    if portable.pinned():
        return
    portable.pin_this_process()
    if off := portable.departures(settings=False):
        raise ConfigError(f"portable mode cannot take hold in this process ({'; '.join(off)}): "
                          "torch ran kernels before it; use overrides={'training.portable': "
                          "False}, or start the process under `python -m sinsim.learn.portable`",
                          key="training.portable")


def load_run(out_dir: str | Path) -> Run:
    """The run in a results directory (``summary.json`` and every table it holds)."""
    out = Path(out_dir)
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{out}: no summary.json (not a results directory)")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    tables = {name: pd.read_csv(out / f"{name}.csv") for name in TABLES
              if (out / f"{name}.csv").is_file()}
    return Run(summary, tables, out)


def sweep(path_or_name: str | Path, out_dir: str | Path, *, workers: int | None = None,
          executor: str | None = None, address: str | None = None,
          progress: bool | None = False) -> pd.DataFrame:
    """Run a sweep (a file or a bundled sweep's name) into ``out_dir`` as ``sinsim sweep``
    does (finished runs are skipped) and return its combined table (``runs.csv``: one row per
    run, algorithm and round, with the swept keys as columns). Raises RuntimeError naming the
    failed runs when any failed."""
    from sinsim.sweep.plan import plan_sweep
    from sinsim.sweep.runner import run_sweep

    plan_path = resolve(path_or_name, "sweeps")
    plan = plan_sweep(plan_path, executor=executor, workers=workers, address=address)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    portable = {r.resolved["training"]["portable"] for r in plan.runs}
    if len(portable) > 1:
        raise ConfigError("the runs of a sweep share their workers' environment: make every "
                          "run portable or none", file=str(plan_path), key="training.portable")
    before = dict(os.environ)
    if True in portable:  # the worker processes started from here inherit the pins
        from sinsim.learn.portable import PINS

        os.environ.update(PINS)
    try:
        result = run_sweep(plan, out, progress=progress)
    finally:
        os.environ.clear()
        os.environ.update(before)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} run(s) failed: "
                           + "; ".join(f"{k}: {v}" for k, v in result.failed.items()))
    return pd.read_csv(out / "runs.csv")
