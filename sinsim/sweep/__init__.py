"""The ``sweep`` room: many runs of one scenario. A base scenario, a grid over scenario keys,
repeats over seeds; a plan (:mod:`.plan`, run ids in :mod:`.ids`), executors (:mod:`.executors`:
a local process pool or Dask) and the combined table (:mod:`.table`). This room runs the engine;
``sinsim.studies`` reads what it writes.

A sweep file::

    name: tiny_sweep
    scenario: ../scenarios/tiny.yaml        # relative to the sweep file
    set: {training.rounds: 2}               # fixed overrides of every run (optional)
    grid:                                   # the product over these keys
      training.clients_per_round: [2, 4]
      training.lr: [0.01, 0.05]
    zip: {}                                 # lists of equal length, varied together (optional)
    seeds: [0, 1]                           # repeats; each sets the scenario's `seed`
    executor: {kind: local, workers: null}  # or {kind: dask, address: "tcp://...", workers: n}

Each run writes ``OUT/runs/<run_id>/`` (a normal results directory) in a worker process with one
torch thread; the run id is readable and derived from the swept values and the seed
(``clients_per_round=2,lr=0.01,seed=0``). A run is finished when its ``summary.json`` says
``"status": "complete"`` for the same resolved scenario; running the sweep again skips those and
reruns the failed, missing or changed ones. Afterwards ``OUT/runs.csv`` (and ``runs.parquet``
when pyarrow imports) holds one row per (run, algorithm, round); ``OUT/runs_index.csv`` lists
every run with its status, ``OUT/sweep.json`` the sweep as run.
"""

import sys as _sys
import types as _types

from sinsim.sweep.executors import run_one
from sinsim.sweep.plan import ExecutorSpec, RunSpec, Sweep, SweepPlan, plan_sweep
from sinsim.sweep.runner import SweepResult, run_sweep
from sinsim.sweep.table import build_table, run_state, write_table

__all__ = ["plan_sweep", "run_sweep", "run_one", "SweepPlan", "RunSpec", "Sweep",
           "ExecutorSpec", "SweepResult", "build_table", "write_table", "run_state"]


# ``sinsim.sweep(...)`` is the Python API's sweep (sinsim.api.sweep), and ``sinsim.sweep`` is also
# this package once it is imported (Python then sets the package as the attribute): so the
# package calls through to the API function, and both readings work.
class _CallablePackage(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        from sinsim.api import sweep

        return sweep(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
