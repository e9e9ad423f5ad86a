"""Scenario files: YAML -> a frozen, validated :class:`Scenario`.

Every key is checked at load time. Unknown keys are errors with a did-you-mean, types and ranges
are checked, and every message names the file and the key path::

    scenarios/x.yaml: links.uplink.rate_bps: must be > 0, got -5

Durations accept a number of seconds or a string with a unit (``90s``, ``10min``, ``1.5h``,
``3d``); they are stored as float seconds. ``--set key.path=value`` overrides (parsed as YAML
scalars) are applied to the raw mapping before validation, so they are checked like the file.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sinsim.errors import ConfigError

# --------------------------------------------------------------------------------------------
# durations

_DURATION_UNITS_S = {
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "m": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration_s(value: Any) -> float:
    """Parse a duration into seconds.

    >>> parse_duration_s("90s"), parse_duration_s("10min"), parse_duration_s("3d")
    (90.0, 600.0, 259200.0)
    >>> parse_duration_s(1.5)
    1.5
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, 10min or 3d, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            number, unit = m.groups()
            unit = unit.lower() or "s"
            if unit in _DURATION_UNITS_S:
                return float(number) * _DURATION_UNITS_S[unit]
            raise ValueError(
                f"unknown duration unit {unit!r} in {value!r}; "
                f"use one of {', '.join(sorted(set(_DURATION_UNITS_S)))}"
            )
    raise ValueError(f"expected a duration such as 90s, 10min or 3d, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration_s)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration_s), Field(gt=0)]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


def _utc(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]


# --------------------------------------------------------------------------------------------
# sections


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Clients(_Section):
    """Who trains. ``count`` abstract clients that are always in view of the server."""

    count: Int = Field(gt=0, le=1_000_000)


class Server(_Section):
    """Who aggregates. Without orbital nodes the server is an abstract node always in view."""

    name: str = "server"


class LinkDirection(_Section):
    rate_bps: Float = Field(gt=0)
    propagation_delay_s: Float = Field(default=0.0, ge=0)


class Loss(_Section):
    kind: Literal["none", "bernoulli"] = "none"
    p: Float = Field(default=0.0, ge=0, le=1)


class Links(_Section):
    """Client-to-server links. ``uplink`` is client -> server (an update), ``downlink`` is
    server -> client (the global model)."""

    model: Literal["fixed"] = "fixed"
    uplink: LinkDirection = LinkDirection(rate_bps=10e6)
    downlink: LinkDirection = LinkDirection(rate_bps=50e6)
    loss: Loss = Loss()
    on_loss_of_signal: Literal["resume", "restart"] = "resume"


class Partition(_Section):
    kind: Literal["iid", "dirichlet"] = "iid"
    alpha: Float = Field(default=0.5, gt=0)


def _partition(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


DATASETS = ("mnist", "fashion_mnist", "synthetic")
MODELS = ("lenet5",)


class Training(_Section):
    dataset: str = "mnist"
    data_dir: str | None = None
    download: bool = True
    partition: Annotated[Partition, BeforeValidator(_partition)] = Partition()
    model: str = "lenet5"
    rounds: Int = Field(default=10, gt=0)
    clients_per_round: Int = Field(default=10, gt=0)
    local_epochs: Int = Field(default=1, gt=0)
    batch_size: Int = Field(default=10, gt=0)
    lr: Float = Field(default=0.01, gt=0)
    momentum: Float = Field(default=0.0, ge=0, lt=1)
    eval_batch_size: Int = Field(default=1000, gt=0)
    round_deadline: PositiveDuration = 3600.0
    target_accuracy: Float | None = Field(default=None, gt=0, le=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        return _one_of(v, DATASETS, "dataset")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        return _one_of(v, MODELS, "model")


class Compute(_Section):
    """On-board compute: simulated training time = training FLOPs / ``flops_per_s``."""

    flops_per_s: Float = Field(default=1e12, gt=0)


class Algorithm(_Section):
    name: str
    params: dict[str, Any] = {}


ALGORITHMS = ("fedavg",)


def _algorithm(value: Any) -> Any:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and len(value) == 1 and "name" not in value:
        ((name, params),) = value.items()
        return {"name": name, "params": params or {}}
    return value


class Scenario(_Section):
    name: str = Field(min_length=1)
    seed: Int = Field(default=0, ge=0)
    start: UtcDatetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    horizon: PositiveDuration = 86400.0
    clients: Clients
    server: Server = Server()
    links: Links = Links()
    training: Training = Training()
    compute: Compute = Compute()
    algorithms: list[Annotated[Algorithm, BeforeValidator(_algorithm)]] = Field(
        default_factory=lambda: [Algorithm(name="fedavg")], min_length=1
    )

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, v: list[Algorithm]) -> list[Algorithm]:
        names = [_one_of(a.name, ALGORITHMS, "algorithm") for a in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"algorithm listed twice: {', '.join(sorted(dup))}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        if self.training.clients_per_round > self.clients.count:
            raise ValueError(
                f"training.clients_per_round ({self.training.clients_per_round}) is larger than "
                f"the number of clients ({self.clients.count})"
            )
        return self

    @property
    def n_clients(self) -> int:
        return self.clients.count

    def resolved(self) -> dict[str, Any]:
        """The fully resolved scenario as plain JSON-able data (what ``summary.json`` records)."""
        return self.model_dump(mode="json")


def _one_of(value: str, choices: Sequence[str], what: str) -> str:
    if value in choices:
        return value
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown {what} {value!r}{hint}; choose one of {', '.join(choices)}")


# --------------------------------------------------------------------------------------------
# loading


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file. Raises :class:`ConfigError`."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such scenario file", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a scenario file", file=file) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the file: {e}", file=file) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"not valid YAML{where}: {problem}", file=file) from None
    if raw is None:
        raise ConfigError("the file is empty; a scenario needs at least `name` and `clients`", file=file)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"a scenario must be a mapping of keys, got a {type(raw).__name__}", file=file
        )
    raw.setdefault("name", path.stem)
    for item in overrides:
        apply_override(raw, item, file=file)
    return validate_scenario(raw, file=file)


def apply_override(raw: dict[str, Any], item: str, *, file: str | None = None) -> None:
    """Apply one ``key.path=value`` override (the value is parsed as YAML) in place."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key.path=value, got {item!r}", file=file)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, here, file)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set a key inside a {type(node).__name__}", file=file, key=here)
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key, file)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"cannot set a key inside a {type(node).__name__}", file=file, key=key)


def _list_index(node: list, part: str, key: str, file: str | None) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"no list item {part!r} (the list has {len(node)})", file=file, key=key)
    return int(part)


def validate_scenario(raw: Mapping[str, Any], *, file: str | None = None) -> Scenario:
    """Validate a raw mapping; errors name ``file`` and the key path."""
    _check_unknown_keys(raw, Scenario, (), file)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        raise _config_error(e, file) from None


def _check_unknown_keys(raw: Any, model: type[BaseModel], path: tuple, file: str | None) -> None:
    """Walk the raw mapping along the model and reject unknown keys with a did-you-mean."""
    if not isinstance(raw, Mapping):
        return
    fields = model.model_fields
    for key, value in raw.items():
        here = (*path, str(key))
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown key{hint} (valid keys here: {', '.join(fields)})",
                file=file,
                key=".".join(here),
            )
        for sub in _models_in(fields[key].annotation):
            if isinstance(value, Mapping):
                _check_unknown_keys(value, sub, here, file)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    _check_unknown_keys(item, sub, (*here, str(i)), file)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # sections that accept free-form parameters are checked by their own validators
        return [] if annotation is Algorithm else [annotation]
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple):
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    return []


def _config_error(error: ValidationError, file: str | None) -> ConfigError:
    first = error.errors(include_url=False)[0]
    loc = [str(p) for p in first["loc"] if not str(p).startswith("function-")]
    msg = first["msg"]
    kind = first["type"]
    value = first.get("input")
    ctx = first.get("ctx") or {}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        msg = f"must be {op} {bound}, got {value!r}"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind.startswith("value_error"):
        msg = msg.removeprefix("Value error, ")
    elif kind == "literal_error" or kind.endswith("_type") or kind.endswith("_parsing"):
        msg = f"{msg}, got {value!r}"
    msg = msg[:1].lower() + msg[1:]
    key = ".".join(loc) or None
    if key and key.startswith("algorithms.") and kind.startswith("value_error"):
        key = "algorithms"
    return ConfigError(msg, file=file, key=key)
