"""Parameter sweeps: a base scenario, a grid over scenario keys, repeats over seeds.

A sweep file::

    name: tiny_sweep
    scenario: ../scenarios/tiny.yaml        # relative to the sweep file
    set: {training.rounds: 2}               # fixed overrides of every run (optional)
    grid:                                   # the product over these keys
      training.clients_per_round: [2, 4]
      training.lr: [0.01, 0.05]
    zip: {}                                 # lists of equal length, varied together (optional)
    seeds: [0, 1]                           # repeats; each sets the scenario's `seed`
    executor: {kind: local, workers: null}  # or {kind: dask, address: null | "tcp://...", workers: n}

Keys are scenario key paths as in ``--set``; values are YAML values (scalars, mappings or lists,
e.g. a whole ``algorithms`` list). Runs are the product grid x zip rows x seeds. Every run's
scenario is validated before anything runs; errors name the sweep file and the key
(``sweeps/x.yaml: grid.training.lr: must be > 0, got -1``).

Each run writes ``OUT/runs/<run_id>/`` (a normal results directory) in a worker process with one
torch thread; the run id is readable and derived from the swept values and the seed
(``clients_per_round=2,lr=0.01,seed=0``). A run is finished when its ``summary.json`` says
``"status": "complete"`` for the same resolved scenario; running the sweep again skips those and
reruns the failed, missing or changed ones. Afterwards ``OUT/runs.csv`` (and ``runs.parquet``
when pyarrow imports) holds one row per (run, algorithm, round): the run's ``rounds.csv`` with
``run_id``, ``seed`` and one column per swept key in front; ``OUT/runs_index.csv`` lists every run
with its status, ``OUT/sweep.json`` the sweep as run. :func:`load_sweep` reads the table back.

Executors: a local process pool (``spawn``; ``workers`` defaults to the number of cores) or Dask
(``dask.distributed``: a ``LocalCluster`` with one thread per worker process, or the scheduler
at ``address``; install ``sinsim[dask]``). Runs are deterministic given scenario and seed, so
both give the same tables (except ``host_wall_s``).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import itertools
import json
import logging
import math
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sinsim.errors import ConfigError
from sinsim.scenario import Int, load_scenario
from sinsim.scenario.loading import read_yaml_mapping

DASK_HINT = "executor.kind=dask needs `pip install sinsim[dask]`"
ID_COLUMNS = ("run_id", "seed")


class ExecutorSpec(BaseModel):
    """Where the runs go: ``local`` (a process pool) or ``dask`` (dask.distributed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "dask"] = "local"
    workers: Int | None = Field(default=None, gt=0)  # None: one per core (local, LocalCluster)
    address: str | None = None  # dask only: a scheduler address; None starts a LocalCluster

    @model_validator(mode="after")
    def _address_only_for_dask(self) -> ExecutorSpec:
        if self.address is not None and self.kind != "dask":
            raise ValueError("executor.address is only for kind: dask")
        return self


class Sweep(BaseModel):
    """A sweep file, validated (the scenario itself is checked by :func:`plan_sweep`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict, alias="set")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    zipped: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, alias="zip")
    seeds: list[Annotated[Int, Field(ge=0)]] | None = Field(default=None, min_length=1)
    executor: Annotated[ExecutorSpec, BeforeValidator(
        lambda v: {"kind": v} if isinstance(v, str) else v)] = ExecutorSpec()  # `executor: dask`


_SWEEP_KEYS = ("name", "scenario", "set", "grid", "zip", "seeds", "executor")
_EXECUTOR_KEYS = tuple(ExecutorSpec.model_fields)


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its id, seed, swept values and the overrides that make it."""

    run_id: str
    seed: int
    values: dict[str, Any]  # swept key path -> value, in the sweep file's order
    overrides: tuple[str, ...]  # `key=value` strings for load_scenario (set, swept, seed)
    resolved: dict[str, Any] = field(repr=False, compare=False)  # Scenario.resolved()


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep, expanded into runs."""

    file: str
    sweep: Sweep
    scenario_path: str  # absolute
    swept_keys: tuple[str, ...]  # grid keys, then zip keys
    runs: tuple[RunSpec, ...]

    @property
    def name(self) -> str:
        return self.sweep.name

    @property
    def executor(self) -> ExecutorSpec:
        return self.sweep.executor


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


# --- reading and expanding a sweep file --------------------------------------------------------


def plan_sweep(path: str | Path, *, executor: str | None = None,
               workers: int | None = None) -> SweepPlan:
    """Read and validate a sweep file, expand it into runs and validate every run's scenario.

    ``executor`` and ``workers`` override the file's ``executor.kind`` / ``executor.workers``.
    Raises :class:`ConfigError` (naming the sweep file and the key) on bad input.
    """
    file = str(path)
    raw = _read_yaml(Path(path))
    raw.setdefault("name", Path(path).stem)
    _check_keys(raw, _SWEEP_KEYS, "", file)
    if isinstance(raw.get("executor"), Mapping):
        _check_keys(raw["executor"], _EXECUTOR_KEYS, "executor.", file)
    try:
        sweep = Sweep.model_validate(raw)
    except ValidationError as e:
        raise _validation_error(e, file) from None
    if executor is not None or workers is not None:
        ex = sweep.executor.model_dump()
        if executor is not None:
            ex["kind"] = executor
            if executor != "dask":
                ex["address"] = None
        if workers is not None:
            ex["workers"] = workers
        try:
            sweep = sweep.model_copy(update={"executor": ExecutorSpec.model_validate(ex)})
        except ValidationError as e:
            raise _validation_error(e, file, prefix=("executor",)) from None
    if sweep.executor.kind == "dask" and importlib.util.find_spec("distributed") is None:
        raise ConfigError(DASK_HINT, file=file)
    _check_swept_keys(sweep, file)

    scenario_path = os.path.normpath(Path(file).parent / sweep.scenario)
    fixed = tuple(_override(k, v, file, f"set.{k}") for k, v in sweep.fixed.items())
    try:
        base = load_scenario(scenario_path)
    except ConfigError as e:
        raise ConfigError(str(e), file=file, key="scenario") from None
    if fixed:
        try:
            base = load_scenario(scenario_path, fixed)
        except ConfigError as e:
            raise _blame(e, file, "set", sweep.fixed) from None
    seeds = list(sweep.seeds) if sweep.seeds is not None else [base.seed]
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ConfigError(f"seed {dup[0]} is listed twice", file=file, key="seeds")

    swept = (*sweep.grid, *sweep.zipped)
    labels = _labels(swept)
    runs: list[RunSpec] = []
    absolute = os.path.abspath(scenario_path)
    for values in _combinations(sweep):
        swept_overrides = tuple(
            _override(k, v, file, f"{_section(sweep, k)}.{k}") for k, v in values.items())
        for seed in seeds:
            run_id = _run_id(values, labels, seed)
            overrides = (*fixed, *swept_overrides, f"seed={seed}")
            try:
                scenario = load_scenario(absolute, overrides)
            except ConfigError as e:
                sections = {k: _section(sweep, k) for k in values}
                raise _blame(e, file, "grid" if sweep.grid else "zip", values,
                             sections=sections, run_id=run_id) from None
            runs.append(RunSpec(run_id, seed, values, overrides, scenario.resolved()))
    runs = _unique_ids(runs)
    return SweepPlan(file, sweep, absolute, tuple(swept), tuple(runs))


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, "sweep", "`scenario` and `grid`")


def _check_keys(raw: Mapping[str, Any], valid: Sequence[str], prefix: str, file: str) -> None:
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key{hint} (valid keys here: {', '.join(valid)})",
                              file=file, key=f"{prefix}{key}")


def _validation_error(error: ValidationError, file: str, prefix: tuple = ()) -> ConfigError:
    first = error.errors(include_url=False)[0]
    key = ".".join(str(p) for p in (*prefix, *first["loc"])) or None
    kind, msg, value = first["type"], first["msg"], first.get("input")
    if kind == "missing":
        msg = "required key is missing"
    elif kind == "list_type":
        msg = f"must be a list of values, got {value!r}"
    elif kind == "dict_type":
        msg = f"must be a mapping of scenario key paths to values, got {value!r}"
    elif kind == "too_short":
        msg = f"needs at least one value, got {value!r}"
    elif kind in ("greater_than", "greater_than_equal"):
        op = ">" if kind == "greater_than" else ">="
        bound = (first.get("ctx") or {}).get("gt", (first.get("ctx") or {}).get("ge"))
        msg = f"must be {op} {bound}, got {value!r}"
    elif kind.startswith("value_error"):
        msg = msg.removeprefix("Value error, ")
        key = None if msg.startswith("executor.") else key
    else:
        msg = f"{msg[:1].lower()}{msg[1:]}, got {value!r}"
    return ConfigError(msg, file=file, key=key)


def _check_swept_keys(sweep: Sweep, file: str) -> None:
    """Key paths are well formed, `seed` goes through `seeds`, no key is set twice, and the
    zipped lists have equal lengths."""
    seen: dict[str, str] = {}
    for section, keys in (("set", sweep.fixed), ("grid", sweep.grid), ("zip", sweep.zipped)):
        for key in keys:
            here = f"{section}.{key}"
            parts = key.split(".")
            if not key or "=" in key or any(not p or p != p.strip() or " " in p for p in parts):
                raise ConfigError("not a scenario key path (like training.lr)", file=file,
                                  key=here)
            if key == "seed" and section != "set":
                raise ConfigError("repeats over seeds go in `seeds: [...]`", file=file, key=here)
            for other, where in seen.items():
                if key == other or key.startswith(other + ".") or other.startswith(key + "."):
                    raise ConfigError(f"overlaps {where}; a key is either fixed, in the grid "
                                      "or zipped, once", file=file, key=here)
            seen[key] = here
    lengths = {k: len(v) for k, v in sweep.zipped.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        bad = next(k for k, n in lengths.items() if n != lengths[first])
        raise ConfigError(f"has {lengths[bad]} values but zip.{first} has {lengths[first]}; "
                          "zipped lists must have the same length", file=file, key=f"zip.{bad}")


def _section(sweep: Sweep, key: str) -> str:
    return "grid" if key in sweep.grid else "zip"


def _combinations(sweep: Sweep) -> Iterator[dict[str, Any]]:
    """The swept values of each run (without the seed): the grid's product (the first key
    varies slowest) times the zipped rows."""
    grid_keys, zip_keys = list(sweep.grid), list(sweep.zipped)
    zip_rows = list(zip(*sweep.zipped.values())) if zip_keys else [()]
    for combo in itertools.product(*sweep.grid.values()):
        for row in zip_rows:
            yield dict(zip([*grid_keys, *zip_keys], [*combo, *row]))


def _override(key: str, value: Any, file: str, where: str) -> str:
    """A ``key=value`` string for ``apply_override`` that parses back to exactly ``value``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    text = text.removesuffix("\n").removesuffix("\n...").strip()
    if yaml.safe_load(text) != value:
        raise ConfigError(f"cannot pass {value!r} to the scenario", file=file, key=where)
    return f"{key}={text}"


def _blame(e: ConfigError, file: str, section: str, values: Mapping[str, Any], *,
           sections: Mapping[str, str] | None = None, run_id: str | None = None) -> ConfigError:
    """Re-raise a scenario error against the sweep key that caused it."""
    sections = sections or dict.fromkeys(values, section)
    culprit = None
    if e.key:
        culprit = next((k for k in values if e.key == k or e.key.startswith(k + ".")
                        or k.startswith(e.key + ".")), None)
    else:  # a cross-check: blame the swept key it mentions
        culprit = next((k for k in values if k in e.detail), None)
    where = f"{e.key}: {e.detail}" if e.key else e.detail
    if culprit is not None:
        key = f"{sections[culprit]}.{culprit}"
        if e.key == culprit:  # the value alone is wrong (and the message shows it)
            where = e.detail
        elif run_id is not None and len(values) > 1:
            where = f"in run {run_id}: {where}"
        else:
            where = f"{_short(values[culprit])}: {where}"
        return ConfigError(where, file=file, key=key)
    if run_id is not None:
        where = f"in run {run_id}: {where}"
    return ConfigError(where, file=file, key=section)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# --- run ids -----------------------------------------------------------------------------------

_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")
_MAX_ID = 150


def _labels(keys: Sequence[str]) -> dict[str, str]:
    """Short names of swept keys in run ids: the last part of the path, or more of it where
    that is ambiguous or a list index."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            label = ".".join(parts[-n:])
            clash = any(o != key and (o == label or o.endswith("." + label)) for o in keys)
            if not clash and not parts[-n].isdigit() and label != "seed":
                break
        out[key] = re.sub(r"[^A-Za-z0-9._+-]", "_", label)  # run ids are directory names
    return out


def _digest(value: Any, n: int = 8) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _value_text(value: Any) -> str:
    """A value as it appears in a run id; values that are not short safe scalars are hashed."""
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (int, str)):
        text = str(value)
    else:
        text = ""
    return text if _SAFE.match(text) and len(text) <= 32 else f"h-{_digest(value)}"


def _run_id(values: Mapping[str, Any], labels: Mapping[str, str], seed: int) -> str:
    parts = [f"{labels[k]}={_value_text(v)}" for k, v in values.items()]
    run_id = ",".join([*parts, f"seed={seed}"])
    if len(run_id) > _MAX_ID:
        run_id = f"{run_id[:_MAX_ID - 9]}-{_digest(run_id)}"
    return run_id


def _unique_ids(runs: list[RunSpec]) -> list[RunSpec]:
    """Two runs whose values print alike (0.1 and "0.1") get a hash of their values appended."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.run_id] = counts.get(r.run_id, 0) + 1
    return [r if counts[r.run_id] == 1 else
            RunSpec(f"{r.run_id}-{_digest([r.values, r.seed])}", r.seed, r.values, r.overrides,
                    r.resolved) for r in runs]


# --- running -----------------------------------------------------------------------------------


def run_one(scenario_path: str, overrides: Sequence[str], out_dir: str) -> dict[str, Any]:
    """Run one scenario into ``out_dir`` (in a worker process, one torch thread). Never raises:
    returns ``{"status": "complete" | "failed", "error", "wall_s"}``; a failed run's traceback
    goes to ``out_dir/error.txt``."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    try:
        import torch

        from sinsim.sim.engine import run_scenario

        torch.set_num_threads(1)
        if out.exists():
            shutil.rmtree(out)  # a failed or outdated attempt: start clean
        scenario = load_scenario(scenario_path, overrides)
        run_scenario(scenario, out)
        return {"status": "complete", "error": None, "wall_s": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - reported by the sweep, the other runs go on
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        return {"status": "failed", "error": f"{type(e).__name__}: {e}",
                "wall_s": time.perf_counter() - t0}


RunFn = Callable[[str, Sequence[str], str], dict[str, Any]]


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
    workers = ex.workers or _cores()
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
            workers = _run_dask(tasks, ex, workers, run_fn, finished, plan.file)
        elif tasks:
            workers = min(workers, len(tasks))
            _run_local(tasks, workers, run_fn, finished)
    table = build_table(plan, out)
    paths = write_table(table, out)
    write_index(plan, out, failed)
    order = {r.run_id: i for i, r in enumerate(plan.runs)}
    return SweepResult(out, sorted(done, key=order.get), skipped,
                       dict(sorted(failed.items(), key=lambda kv: order[kv[0]])), changed,
                       len(table), paths, workers, ex.kind, time.perf_counter() - t0)


def _run_local(tasks, workers: int, run_fn: RunFn, finished) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: torch is not fork-safe once its thread pools exist
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(run_fn, *args): run for run, args in tasks}
        for fut in as_completed(futures):
            finished(futures[fut], _result(fut))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(tasks, ex: ExecutorSpec, workers: int, run_fn: RunFn, finished, file: str) -> int:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise ConfigError(f"{DASK_HINT} ({e})", file=file) from None
    cluster = None
    if ex.address:
        client = Client(ex.address)
        workers = len(client.nthreads()) or workers
    else:
        workers = min(workers, len(tasks))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures, runs = [], {}
        for run, args in tasks:
            fut = client.submit(run_fn, *args, pure=False,
                                key=f"sinsim-{run.run_id}-{os.urandom(4).hex()}")
            futures.append(fut)
            runs[fut.key] = run
        for fut in as_completed(futures):
            finished(runs[fut.key], _result(fut))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return workers


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _result(fut) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as e:  # noqa: BLE001 - a worker that died (out of memory, killed, ...)
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "wall_s": None}


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


# --- the combined table ------------------------------------------------------------------------


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


def load_sweep(out_dir: str | Path) -> pd.DataFrame:
    """The combined table of a sweep's results directory (``runs.parquet`` if it is there and
    pyarrow imports, else ``runs.csv``): one row per (run, algorithm, round)."""
    out = Path(out_dir)
    parquet = out / "runs.parquet"
    if parquet.exists() and importlib.util.find_spec("pyarrow") is not None:
        return pd.read_parquet(parquet)
    path = out / "runs.csv"
    if not path.exists():
        raise FileNotFoundError(f"{out}: no runs.csv; is this the output of `python -m sinsim "
                                "sweep`?")
    return pd.read_csv(path)
