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
import os
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


class Walker(_Section):
    """A Walker constellation i:T/P/F at one altitude (``delta``: RAAN over 360 deg, ``star``:
    over 180 deg)."""

    inclination_deg: Float = Field(ge=0, le=180)
    total: Int = Field(gt=0, le=100_000)
    planes: Int = Field(gt=0)
    phasing: Int = Field(default=0, ge=0)
    altitude_km: Float = Field(gt=150, le=40_000)
    pattern: Literal["delta", "star"] = "delta"
    id_prefix: str = Field(default="sat", min_length=1)

    @model_validator(mode="after")
    def _walker(self) -> Walker:
        if self.total % self.planes:
            raise ValueError(f"total ({self.total}) must be a multiple of planes ({self.planes})")
        if self.phasing >= self.planes:
            raise ValueError(f"phasing must be < planes ({self.planes}), got {self.phasing}")
        return self


class TLESource(_Section):
    """Satellites from a TLE file (2- or 3-line); a relative path is relative to the scenario."""

    path: str = Field(min_length=1)
    name_pattern: str | None = None
    limit: Int | None = Field(default=None, gt=0)


class Loiter(_Section):
    lat_deg: Float = Field(ge=-90, le=90)
    lon_deg: Float = Field(ge=-180, le=360)
    radius_m: Float = Field(gt=0, le=500_000)


class UAVSpec(_Section):
    """A UAV or HAP: altitude plus a circular loiter or a closed waypoint path."""

    id: str = Field(min_length=1)
    altitude_m: Float = Field(ge=0, le=60_000)
    speed_mps: Float = Field(gt=0, le=1_000)
    loiter: Loiter | None = None
    waypoints: list[tuple[Float, Float]] | None = Field(default=None, min_length=2)

    @model_validator(mode="after")
    def _one_path(self) -> UAVSpec:
        if (self.loiter is None) == (self.waypoints is None):
            raise ValueError("give exactly one of loiter or waypoints")
        return self


class Clients(_Section):
    """Who trains: ``count`` abstract clients always in view, or orbital nodes (a Walker shell,
    a TLE file and/or UAVs; several may be combined)."""

    count: Int | None = Field(default=None, gt=0, le=1_000_000)
    walker: Walker | None = None
    tle: TLESource | None = None
    uavs: list[UAVSpec] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Clients:
        orbital = any(x is not None for x in (self.walker, self.tle, self.uavs))
        if self.count is None and not orbital:
            raise ValueError("give count, or orbital clients: walker, tle and/or uavs")
        if self.count is not None and orbital:
            raise ValueError("count (abstract clients) cannot be combined with walker/tle/uavs")
        return self

    @property
    def orbital(self) -> bool:
        return self.count is None


class GroundStationSpec(_Section):
    id: str = Field(default="gs0", min_length=1)
    lat_deg: Float = Field(ge=-90, le=90)
    lon_deg: Float = Field(ge=-180, le=360)
    altitude_m: Float = Field(default=0.0, ge=-500, le=9_000)
    min_elevation_deg: Float = Field(default=10.0, ge=0, lt=90)


class CircularOrbit(_Section):
    altitude_km: Float = Field(gt=150, le=40_000)
    inclination_deg: Float = Field(ge=0, le=180)
    raan_deg: Float = Field(default=0.0, ge=0, lt=360)
    arg_latitude_deg: Float = Field(default=0.0, ge=0, lt=360)


class ServerSatellite(_Section):
    """A satellite server: one of the client constellation (``client``: its node id, which then
    stops being a client) or its own circular ``orbit``."""

    client: str | None = None
    orbit: CircularOrbit | None = None
    id: str = "server_sat"

    @model_validator(mode="after")
    def _one(self) -> ServerSatellite:
        if (self.client is None) == (self.orbit is None):
            raise ValueError("give exactly one of client or orbit")
        return self


class Server(_Section):
    """Who aggregates: ground station(s) (a client reaches the server when it sees any of them),
    a satellite or a UAV. Abstract clients (``clients.count``) have an abstract server."""

    ground_stations: list[GroundStationSpec] | None = Field(default=None, min_length=1)
    satellite: ServerSatellite | None = None
    uav: UAVSpec | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Server:
        given = [k for k in ("ground_stations", "satellite", "uav") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one server kind, got {', '.join(given)}")
        ids = [g.id for g in self.ground_stations or []]
        if len(set(ids)) != len(ids):
            raise ValueError("ground station ids must be unique")
        return self

    @property
    def defined(self) -> bool:
        return any(getattr(self, k) is not None for k in ("ground_stations", "satellite", "uav"))


class Contacts(_Section):
    """How the contact plan is computed."""

    step: PositiveDuration = 30.0
    max_range_km: Float = Field(default=5_000.0, gt=0)
    grazing_altitude_km: Float = Field(default=80.0, ge=0)
    cache_dir: str | None = None
    rate_step: PositiveDuration = 10.0  # budget links: rate sampled along each pass


class LinkDirection(_Section):
    """One direction of the client-server link.

    ``fixed``: ``rate_bps`` (and ``propagation_delay_s`` for abstract clients; orbital links take
    the delay from the range). ``budget``: link-budget parameters; unset ones take the defaults
    documented in ``docs/space.md``.
    """

    rate_bps: Float | None = Field(default=None, gt=0)
    propagation_delay_s: Float = Field(default=0.0, ge=0)
    frequency_hz: Float | None = Field(default=None, gt=0)
    tx_power_dbw: Float | None = None
    tx_antenna_gain_dbi: Float | None = None
    rx_antenna_gain_dbi: Float | None = None
    system_noise_temp_k: Float | None = Field(default=None, gt=0)
    bandwidth_hz: Float | None = Field(default=None, gt=0)
    efficiency: Float | None = Field(default=None, gt=0, le=1)
    max_rate_bps: Float | None = Field(default=None, gt=0)
    misc_losses_db: Float | None = Field(default=None, ge=0)

    def budget_overrides(self) -> dict[str, float]:
        keys = ("frequency_hz", "tx_power_dbw", "tx_antenna_gain_dbi", "rx_antenna_gain_dbi",
                "system_noise_temp_k", "bandwidth_hz", "efficiency", "max_rate_bps",
                "misc_losses_db")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class Loss(_Section):
    """``bernoulli``: each transfer is lost with probability ``p``. ``gilbert_elliott``: each
    link alternates good/bad states (per ``step``: good->bad with ``p_good_to_bad``, bad->good
    with ``p_bad_to_good``); a transfer that is on the air during a bad state is lost with
    probability ``loss_bad``, otherwise with ``loss_good``."""

    kind: Literal["none", "bernoulli", "gilbert_elliott"] = "none"
    p: Float = Field(default=0.0, ge=0, le=1)
    p_good_to_bad: Float = Field(default=0.01, gt=0, le=1)
    p_bad_to_good: Float = Field(default=0.1, gt=0, le=1)
    loss_good: Float = Field(default=0.0, ge=0, le=1)
    loss_bad: Float = Field(default=1.0, ge=0, le=1)
    step: PositiveDuration = 1.0


class Failures(_Section):
    """Node failures: each client goes dark at the times of a Poisson process of
    ``rate_per_day`` and stays dark for ``duration``; nothing moves to or from it then."""

    rate_per_day: Float = Field(default=0.0, ge=0)
    duration: PositiveDuration = 3600.0


class Links(_Section):
    """Client-to-server links. ``uplink`` is client -> server (an update), ``downlink`` is
    server -> client (the global model)."""

    model: Literal["fixed", "budget"] = "fixed"
    uplink: LinkDirection = LinkDirection(rate_bps=10e6)
    downlink: LinkDirection = LinkDirection(rate_bps=50e6)
    loss: Loss = Loss()
    failures: Failures = Failures()
    on_loss_of_signal: Literal["resume", "restart"] = "resume"

    @model_validator(mode="after")
    def _fixed_needs_rates(self) -> Links:
        if self.model == "fixed":
            for name in ("uplink", "downlink"):
                if getattr(self, name).rate_bps is None:
                    raise ValueError(f"links.{name}.rate_bps is required when links.model is fixed")
        return self


class Selection(_Section):
    """``random``: uniform over all clients (the seed paper). ``visible``: uniform over the
    clients in view of the server now or within ``lookahead``."""

    kind: Literal["random", "visible"] = "random"
    lookahead: Duration = Field(default=0.0, ge=0)


def _selection(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


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
    selection: Annotated[Selection, BeforeValidator(_selection)] = Selection()
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
    contacts: Contacts = Contacts()
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
        n = self.n_clients_known
        if n is not None and self.training.clients_per_round > n:
            raise ValueError(
                f"training.clients_per_round ({self.training.clients_per_round}) is larger than "
                f"the number of clients ({n})"
            )
        if self.clients.orbital and not self.server.defined:
            raise ValueError("orbital clients need a server: server.ground_stations, "
                             "server.satellite or server.uav")
        if not self.clients.orbital and self.server.defined:
            raise ValueError("abstract clients (clients.count) have an abstract server; give "
                             "orbital clients (walker, tle, uavs) to use server nodes")
        if not self.clients.orbital and self.links.model == "budget":
            raise ValueError("links.model budget needs orbital clients and a server to "
                             "compute ranges")
        return self

    @property
    def n_clients_known(self) -> int | None:
        """The number of clients when known without reading files (None with a TLE file)."""
        c = self.clients
        if c.count is not None:
            return c.count
        if c.tle is not None:
            return None
        n = (c.walker.total if c.walker else 0) + len(c.uavs or [])
        if self.server.satellite is not None and self.server.satellite.client is not None:
            n -= 1
        return n

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
    _resolve_relative_paths(raw, path.parent)
    return validate_scenario(raw, file=file)


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    """File paths inside a scenario are relative to the scenario file's folder."""
    clients = raw.get("clients")
    tle = clients.get("tle") if isinstance(clients, dict) else None
    if isinstance(tle, dict) and isinstance(tle.get("path"), str):
        p = Path(tle["path"]).expanduser()
        if not p.is_absolute():
            tle["path"] = os.path.normpath(base / p)


# sections whose value may be written as a bare kind name (`partition: iid`)
_SHORTHAND_SECTIONS = ("partition", "selection")


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
        elif isinstance(node[part], str) and part in _SHORTHAND_SECTIONS:
            node[part] = {"kind": node[part]}  # `selection: random` = {kind: random}
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
