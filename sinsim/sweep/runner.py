"""Running a planned sweep: skip the runs that finished, hand the others to an executor, then
write the combined table, the index and the description."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinsim.sweep.executors import RunFn, cores, run_dask, run_local, run_one
from sinsim.sweep.plan import RunSpec, SweepPlan
from sinsim.sweep.table import build_table, run_state, write_description, write_index, write_table

__all__ = ["SweepResult", "run_sweep"]


@dataclass
class SweepResult:
    out_dir: Path
    done: list[str]  # run ids run now that completed
    skipped: list[str]  # already finished before this call
    failed: dict[str, str]  # run id -> error
    rerun_changed: list[str]  # completed before, but with another scenario: rerun
    table_rows: int
    table_paths: list[Path]
    workers: int
    executor: str
    wall_s: float


def run_sweep(plan: SweepPlan, out_dir: str | Path, *, progress: bool | None = None,
              run_fn: RunFn = run_one) -> SweepResult:
    """Run every run of ``plan`` that has not finished yet, then write the combined table.

    ``progress``: True/False shows/hides a progress bar over runs; None shows it on a terminal.
    ``run_fn`` must be a module-level function (it is pickled to the worker processes).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    out = Path(out_dir)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    write_description(plan, out)
    skipped, todo, changed = [], [], []
    for run in plan.runs:
        state = run_state(runs_dir / run.run_id, run.resolved)
        if state == "complete":
            skipped.append(run.run_id)
        else:
            todo.append(run)
            if state == "changed":
                changed.append(run.run_id)
    ex = plan.executor
    workers = ex.workers or cores()
    done: list[str] = []
    failed: dict[str, str] = {}
    disable = None if progress is None else not progress
    with tqdm(total=len(plan.runs), initial=len(skipped), unit="run", disable=disable,
              dynamic_ncols=True, desc=plan.name) as bar:

        def finished(run: RunSpec, result: dict[str, Any]) -> None:
            if result["status"] == "complete":
                done.append(run.run_id)
            else:
                failed[run.run_id] = result["error"]
            bar.set_postfix_str(f"{len(failed)} failed" if failed else run.run_id)
            bar.update(1)

        # absolute paths: a worker may run elsewhere (a Dask cluster on a shared filesystem)
        tasks = [(run, (plan.scenario_path, list(run.overrides),
                        str((runs_dir / run.run_id).absolute()))) for run in todo]
        if tasks and ex.kind == "dask":
            workers = run_dask(tasks, ex, workers, run_fn, finished, plan.file)
        elif tasks:
            workers = min(workers, len(tasks))
            run_local(tasks, workers, run_fn, finished)
    table = build_table(plan, out)
    paths = write_table(table, out)
    write_index(plan, out, failed)
    order = {r.run_id: i for i, r in enumerate(plan.runs)}
    return SweepResult(out, sorted(done, key=order.get), skipped,
                       dict(sorted(failed.items(), key=lambda kv: order[kv[0]])), changed,
                       len(table), paths, workers, ex.kind, time.perf_counter() - t0)
