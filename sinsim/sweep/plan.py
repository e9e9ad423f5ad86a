"""A sweep file, validated and expanded into runs.

Keys are scenario key paths as in ``--set``; values are YAML values (scalars, mappings or lists,
e.g. a whole ``algorithms`` list). Runs are the product grid x zip rows x seeds. Every run's
scenario is validated before anything runs; errors name the sweep file and the key
(``sweeps/x.yaml: grid.training.lr: must be > 0, got -1``).
"""

from __future__ import annotations

import difflib
import importlib.util
import itertools
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

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
from sinsim.scenario.loading import key_text, read_yaml_mapping
from sinsim.sweep import ids

__all__ = ["ExecutorSpec", "Sweep", "RunSpec", "SweepPlan", "plan_sweep", "DASK_HINT"]

DASK_HINT = "executor.kind=dask needs `pip install sinsim[dask]`"


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


def plan_sweep(path: str | Path, *, executor: str | None = None, workers: int | None = None,
               address: str | None = None) -> SweepPlan:
    """Read and validate a sweep file, expand it into runs and validate every run's scenario.

    ``executor``, ``workers`` and ``address`` override the file's ``executor.kind`` /
    ``executor.workers`` / ``executor.address`` (an ``address`` alone means ``dask``).
    Raises :class:`ConfigError` (naming the sweep file and the key) on bad input.
    """
    file = str(path)
    raw = read_yaml_mapping(Path(path), "sweep", "`scenario` and `grid`")
    raw.setdefault("name", Path(path).stem)
    _check_keys(raw, _SWEEP_KEYS, "", file)
    if isinstance(raw.get("executor"), Mapping):
        _check_keys(raw["executor"], _EXECUTOR_KEYS, "executor.", file)
    try:
        sweep = Sweep.model_validate(raw)
    except ValidationError as e:
        raise _validation_error(e, file) from None
    sweep = _override_executor(sweep, file, executor, workers, address)
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
    key_labels = ids.labels(swept)
    runs: list[RunSpec] = []
    absolute = os.path.abspath(scenario_path)
    for values in _combinations(sweep):
        swept_overrides = tuple(
            _override(k, v, file, f"{_section(sweep, k)}.{k}") for k, v in values.items())
        for seed in seeds:
            run_id = ids.run_id(values, key_labels, seed)
            overrides = (*fixed, *swept_overrides, f"seed={seed}")
            try:
                scenario = load_scenario(absolute, overrides)
            except ConfigError as e:
                sections = {k: _section(sweep, k) for k in values}
                raise _blame(e, file, "grid" if sweep.grid else "zip", values,
                             sections=sections, run_id=run_id) from None
            runs.append(RunSpec(run_id, seed, values, overrides, scenario.resolved()))
    return SweepPlan(file, sweep, absolute, tuple(swept), tuple(ids.unique_ids(runs)))


def _override_executor(sweep: Sweep, file: str, executor: str | None, workers: int | None,
                       address: str | None) -> Sweep:
    """The sweep with the command line's executor options applied."""
    if executor is None and workers is None and address is None:
        return sweep
    ex = sweep.executor.model_dump()
    if address is not None:
        ex["address"], ex["kind"] = address, executor or "dask"
    elif executor is not None:
        ex["kind"] = executor
        if executor != "dask":
            ex["address"] = None
    if workers is not None:
        ex["workers"] = workers
    try:
        return sweep.model_copy(update={"executor": ExecutorSpec.model_validate(ex)})
    except ValidationError as e:
        raise _validation_error(e, file, prefix=("executor",)) from None


def _check_keys(raw: Mapping[str, Any], valid: Sequence[str], prefix: str, file: str) -> None:
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key{hint} (valid keys here: {', '.join(valid)})",
                              file=file, key=f"{prefix}{key_text(key)}")


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
