"""What a sweep writes besides its runs: the combined table ``runs.csv`` (and ``runs.parquet``
when pyarrow imports), ``runs_index.csv`` and ``sweep.json``; and whether a run has finished.

The combined table has one row per (finished run, algorithm, round): the run's ``rounds.csv``
with ``run_id``, ``seed`` and one column per swept key (named by its key path) in front.
:func:`sinsim.studies.tables.load_sweep` reads it back.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sinsim.sweep.plan import SweepPlan

__all__ = ["ID_COLUMNS", "run_state", "build_table", "write_table", "write_description",
           "write_index"]

ID_COLUMNS = ("run_id", "seed")


def run_state(run_dir: Path, resolved: Mapping[str, Any] | None = None) -> str:
    """``complete`` (summary.json says so, for ``resolved`` when given), ``changed`` (complete
    but for another scenario), ``failed``, ``running`` (or killed) or ``missing``."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "missing"
    status = summary.get("status")
    if status != "complete":
        return status if status in ("failed", "running") else "missing"
    if resolved is not None and summary.get("resolved_scenario") != _jsonable(resolved):
        return "changed"
    return "complete"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def build_table(plan: SweepPlan, out_dir: str | Path) -> pd.DataFrame:
    """One row per (finished run, algorithm, round): the run's ``rounds.csv`` with ``run_id``,
    ``seed`` and one column per swept key (named by its key path) in front."""
    runs_dir = Path(out_dir) / "runs"
    front = [*ID_COLUMNS, *plan.swept_keys]
    cells = {k: _column_cells([r.values[k] for r in plan.runs]) for k in plan.swept_keys}
    frames = []
    for i, run in enumerate(plan.runs):
        d = runs_dir / run.run_id
        if run_state(d, run.resolved) != "complete":
            continue
        rounds = pd.read_csv(d / "rounds.csv")
        ids = {"run_id": run.run_id, "seed": run.seed, **{k: cells[k][i] for k in cells}}
        for pos, (col, value) in enumerate(ids.items()):
            rounds.insert(pos, col, [value] * len(rounds))
        frames.append(rounds)
    if not frames:
        return pd.DataFrame(columns=front)
    return pd.concat(frames, ignore_index=True)


def _column_cells(values: list[Any]) -> list[Any]:
    """Swept values as table cells: scalars of one kind stay as they are; mappings, lists and
    mixed kinds become JSON text (so CSV and Parquet hold the same thing)."""
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        return "str" if isinstance(v, str) else "other"

    kinds = {kind(v) for v in values}
    if len(kinds) == 1 and kinds != {"other"}:
        return values
    if kinds <= {"str", "number", "bool"}:
        return [v if isinstance(v, str) else json.dumps(v) for v in values]
    return [json.dumps(v, sort_keys=True, default=str) for v in values]


def write_table(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """``runs.csv``, and ``runs.parquet`` when pyarrow imports; returns the paths written."""
    out = Path(out_dir)
    paths = [out / "runs.csv"]
    table.to_csv(paths[0], index=False)
    parquet = out / "runs.parquet"
    if importlib.util.find_spec("pyarrow") is not None:
        table.to_parquet(parquet, index=False)
        paths.append(parquet)
    else:
        parquet.unlink(missing_ok=True)  # do not leave an outdated one next to runs.csv
    return paths


def write_description(plan: SweepPlan, out_dir: str | Path) -> Path:
    """``sweep.json``: the sweep as run (file, scenario, the swept ``keys`` in column order, the
    fixed overrides, grid, zip and seeds), for readers of the table such as the plots."""
    sweep = plan.sweep
    data = {"name": plan.name, "file": plan.file, "scenario": plan.scenario_path,
            "keys": list(plan.swept_keys), "set": sweep.fixed, "grid": sweep.grid,
            "zip": sweep.zipped, "seeds": sorted({r.seed for r in plan.runs}),
            "runs": len(plan.runs)}
    path = Path(out_dir) / "sweep.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_index(plan: SweepPlan, out_dir: str | Path, errors: Mapping[str, str]) -> Path:
    """``runs_index.csv``: every run of the plan with its seed, swept values, status, error."""
    out = Path(out_dir)
    cells = {k: _column_cells([r.values[k] for r in plan.runs]) for k in plan.swept_keys}
    rows = []
    for i, run in enumerate(plan.runs):
        d = out / "runs" / run.run_id
        rows.append({"run_id": run.run_id, "seed": run.seed,
                     **{k: cells[k][i] for k in cells},
                     "status": run_state(d, run.resolved), "error": errors.get(run.run_id, ""),
                     "dir": f"runs/{run.run_id}"})
    path = out / "runs_index.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
