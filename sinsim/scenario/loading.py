"""Reading scenario files: YAML, ``--set`` overrides, validation, errors that name the key."""

from __future__ import annotations

import csv
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from sinsim.errors import ConfigError
from sinsim.learn.strategies import STRATEGIES
from sinsim.scenario.model import Algorithm, Scenario
from sinsim.scenario.nodes import GroundStationSpec


def read_yaml_mapping(path: Path, what: str, needs: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file (a ``what`` file that ``needs`` some keys); any
    problem reading or parsing it is a :class:`ConfigError` naming the file, and so are a key
    given twice in a mapping and aliases that expand past :data:`MAX_YAML_NODES` (see
    :func:`parse_yaml`)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no such {what} file", file=file) from None
    except IsADirectoryError:
        raise ConfigError(f"is a directory, not a {what} file", file=file) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the file: {e}", file=file) from None
    try:
        raw = parse_yaml(text, file=file)
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML{_where(e)}: {_problem(e)}", file=file) from None
    if raw is None:
        raise ConfigError(f"the file is empty; a {what} needs at least {needs}", file=file)
    if not isinstance(raw, dict):
        raise ConfigError(f"a {what} must be a mapping of keys, got a {type(raw).__name__}",
                          file=file)
    return raw


def _where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


def _problem(e: yaml.YAMLError) -> str:
    return getattr(e, "problem", None) or str(e).splitlines()[0]


# ----------------------------------------------------------------------------- strict YAML
# YAML nodes (keys and values) a document may hold with its aliases expanded: the largest
# bundled file, scenarios/uav_swarm.yaml, has 267 (scenarios/tiny.yaml 63, the largest sweep
# 120), so no real file is near it; a "billion laughs" file (9 levels of 10 aliases: 10**9
# strings from under 1 kB) is stopped after this many steps (0.06 s) instead of filling memory.
MAX_YAML_NODES = 100_000
# mappings and lists inside each other (a scenario nests about 6 deep): a deeper document,
# or an alias inside the node it names, is refused before Python's recursion limit
MAX_YAML_DEPTH = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"


def parse_yaml(text: str, *, file: str | None = None, key: str | None = None) -> Any:
    """``yaml.safe_load(text)``, strictly: a key given twice in a mapping, aliases that
    expand past :data:`MAX_YAML_NODES` nodes, nesting past :data:`MAX_YAML_DEPTH` and a
    value that cannot be read (a date such as 2026-13-01, an integer of 5,000 digits) are
    :class:`ConfigError` naming ``file`` and the key path (below ``key`` when the text is a
    ``--set`` value); text that is not YAML raises :class:`yaml.YAMLError` as ``safe_load``
    does."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"nested more than {MAX_YAML_DEPTH} levels deep", file=file,
                              key=key) from None
        if node is None:
            return None
        _StrictWalk(loader, file, key).visit(node, (), 0)
        return loader.construct_document(node)
    finally:
        loader.dispose()


class _StrictWalk:
    """One pass over a composed YAML document with its aliases expanded: counts the nodes,
    keeps the key path, finds keys given twice and constructs every scalar (the constructor
    caches them, so the document is then built without reading them again)."""

    def __init__(self, loader: yaml.SafeLoader, file: str | None, key: str | None):
        self.loader, self.file, self.key = loader, file, key
        self.nodes = 0
        self.open: set[int] = set()  # the collections being walked (an alias to one is a loop)

    def error(self, message: str, path: tuple[str, ...]) -> ConfigError:
        key = ".".join(p for p in (self.key, *path) if p) or None
        return ConfigError(message, file=self.file, key=key)

    def visit(self, node: yaml.Node, path: tuple[str, ...], depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise self.error(f"more than {MAX_YAML_NODES:,} YAML values with the aliases "
                             f"expanded (an alias repeats the whole node it names); "
                             f"no scenario or sweep needs that many", path[:1])
        if depth > MAX_YAML_DEPTH:
            raise self.error(f"nested more than {MAX_YAML_DEPTH} levels deep", path[:1])
        if isinstance(node, yaml.ScalarNode):
            self.scalar(node, path)
            return
        if id(node) in self.open:
            raise self.error(f"an alias names a node that contains it (the node of line "
                             f"{node.start_mark.line + 1}); it would repeat without end", path)
        self.open.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.visit(item, (*path, str(i)), depth + 1)
        elif isinstance(node, yaml.MappingNode):
            self.mapping(node, path, depth)
        self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: tuple[str, ...], depth: int) -> None:
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base`: keys given here override those
                self.visit(value_node, path, depth + 1)
                continue
            self.visit(key_node, path, depth + 1)
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            here = (*path, name)
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode):
                key = self.loader.construct_object(key_node)
                if key in lines:  # as the mapping sees it: `1` and `0x1` are one key
                    where = (f"line {line}" if lines[key] == line else
                             f"lines {lines[key]} and {line}")
                    raise self.error(f"key given twice ({where})", here)
                lines[key] = line
            self.visit(value_node, here, depth + 1)

    def scalar(self, node: yaml.ScalarNode, path: tuple[str, ...]) -> None:
        try:
            self.loader.construct_object(node)
        except (ValueError, TypeError, OverflowError) as e:
            why = str(e)
            if "integer string conversion" in why:  # Python's own limit on digits
                why = f"an integer of {len(node.value)} characters is too long to read"
            text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise self.error(f"cannot read {text!r} (line {node.start_mark.line + 1}): {why}",
                             path) from None


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file. Raises :class:`ConfigError`."""
    path = Path(path)
    file = str(path)
    raw = read_yaml_mapping(path, "scenario", "`name` and `clients`")
    raw.setdefault("name", path.stem)
    for item in overrides:
        apply_override(raw, item, file=file)
    _resolve_relative_paths(raw, path.parent)
    return validate_scenario(raw, file=file)


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    """File paths inside a scenario (``tle``/``omm`` of the clients and of a satellite server,
    ``server.ground_stations.csv``) are relative to the scenario file's folder."""
    server = raw.get("server")
    stations = server.get("ground_stations") if isinstance(server, dict) else None
    if isinstance(stations, dict) and isinstance(stations.get("csv"), str):
        p = Path(stations["csv"]).expanduser()
        if not p.is_absolute():
            stations["csv"] = os.path.normpath(base / p)
    sat = server.get("satellite") if isinstance(server, dict) else None
    for section in (raw.get("clients"), sat):
        for kind in ("tle", "omm"):
            source = section.get(kind) if isinstance(section, dict) else None
            if isinstance(source, dict) and isinstance(source.get("path"), str):
                p = Path(source["path"]).expanduser()
                if not p.is_absolute():
                    source["path"] = os.path.normpath(base / p)


# sections whose value may be written as a bare kind name (`partition: iid`)
_SHORTHAND_SECTIONS = ("partition", "selection")


def apply_override(raw: dict[str, Any], item: str, *, file: str | None = None) -> None:
    """Apply one ``key.path=value`` override (the value is parsed as YAML) in place."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key.path=value, got {item!r}", file=file)
    try:
        value = parse_yaml(text, file=file, key=key) if text.strip() else None
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


STATION_COLUMNS = ("id", "lat_deg", "lon_deg", "altitude_m", "min_elevation_deg", "antennas")
_STATION_KEY = "server.ground_stations.csv"


def read_ground_stations_csv(path: str | Path) -> list[dict[str, Any]]:
    """The ground stations of a CSV file with a header of :data:`STATION_COLUMNS` (``id``,
    ``lat_deg`` and ``lon_deg`` required; an empty ``altitude_m``/``min_elevation_deg``/``antennas``
    takes the default), validated like inline ones. A problem is a ConfigError naming the file,
    the key ``server.ground_stations.csv`` and the line."""
    file = str(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise ConfigError(f"no such ground-station CSV file {file}", key=_STATION_KEY) from None
    except IsADirectoryError:
        raise ConfigError(f"{file} is a directory, not a CSV file", key=_STATION_KEY) from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read {file}: {e}", key=_STATION_KEY) from None
    lines = [(n, r) for n, r in enumerate(rows, start=1) if any(c.strip() for c in r)]
    if not lines:
        raise ConfigError("empty file; the header is " + ",".join(STATION_COLUMNS), file=file,
                          key=_STATION_KEY)
    (_, header), body = lines[0], lines[1:]
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in STATION_COLUMNS]
    missing = [h for h in STATION_COLUMNS[:3] if h not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise ConfigError(f"line 1: the header must name columns of {', '.join(STATION_COLUMNS)} "
                          f"(id, lat_deg, lon_deg required) once each, got {', '.join(header)}",
                          file=file, key=_STATION_KEY)
    if not body:
        raise ConfigError("no stations (only a header)", file=file, key=_STATION_KEY)
    out, seen = [], {}
    for n, row in body:
        if len(row) != len(header):
            raise ConfigError(f"line {n}: {len(row)} fields, the header has {len(header)}",
                              file=file, key=_STATION_KEY)
        spec = {h: v.strip() for h, v in zip(header, row) if v.strip() or h == "id"}
        try:
            station = GroundStationSpec.model_validate(spec)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            where = ".".join(str(x) for x in err["loc"])
            raise ConfigError(f"line {n}: {where}: {err['msg']}, got {err.get('input')!r}",
                              file=file, key=_STATION_KEY) from None
        if station.id in seen:
            raise ConfigError(f"line {n}: station id {station.id!r} repeats line {seen[station.id]}",
                              file=file, key=_STATION_KEY)
        seen[station.id] = n
        out.append(station.model_dump())
    return out


def _expand_station_csv(raw: Mapping[str, Any], file: str | None) -> Mapping[str, Any]:
    """``server.ground_stations: {csv: FILE}`` becomes the stations the file lists (so the
    resolved scenario records each station)."""
    server = raw.get("server")
    stations = server.get("ground_stations") if isinstance(server, Mapping) else None
    if not isinstance(stations, Mapping):
        return raw
    if set(stations) != {"csv"} or not isinstance(stations["csv"], str):
        raise ConfigError("give a list of stations, or {csv: FILE} (a path to a CSV file)",
                          file=file, key="server.ground_stations")
    try:
        listed = read_ground_stations_csv(stations["csv"])
    except ConfigError as e:
        if e.file is not None:  # a problem inside the CSV file: it names that file and line
            raise
        # the file named in the scenario cannot be read: the scenario's key is the problem
        raise ConfigError(e.detail, file=file, key=e.key) from None
    return {**raw, "server": {**server, "ground_stations": listed}}


def validate_scenario(raw: Mapping[str, Any], *, file: str | None = None) -> Scenario:
    """Validate a raw mapping; errors name ``file`` and the key path. Ground stations from a CSV
    file (``server.ground_stations: {csv: FILE}``) are read here."""
    raw = _expand_station_csv(raw, file)
    _check_unknown_keys(raw, Scenario, (), file)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        raise _config_error(e, file, raw) from None


def _check_unknown_keys(raw: Any, model: type[BaseModel], path: tuple, file: str | None) -> None:
    """Walk the raw mapping along the model and reject unknown keys with a did-you-mean."""
    if not isinstance(raw, Mapping):
        return
    fields = model.model_fields
    for key, value in raw.items():
        here = (*path, key_text(key))
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown key{hint} (valid keys here: {', '.join(fields)})",
                file=file,
                key=".".join(here),
            )
        if model is Scenario and key == "algorithms" and isinstance(value, list):
            _check_algorithm_keys(value, file)
            continue
        for sub in _by_kind(_models_in(fields[key].annotation), value):
            if isinstance(value, Mapping):
                _check_unknown_keys(value, sub, here, file)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    _check_unknown_keys(item, sub, (*here, str(i)), file)


def key_text(key: Any) -> str:
    """A key as the key path shows it: quoted where it would otherwise be invisible or
    ambiguous (empty, surrounding blanks)."""
    text = str(key)
    return text if text and text == text.strip() else repr(text)


def _check_algorithm_keys(entries: list, file: str | None) -> None:
    """``- spacedml: {pruning_ratio: 0.7}``: check the parameters against the algorithm's own
    section, so a misspelt parameter gets a did-you-mean too."""
    for i, entry in enumerate(entries):
        if isinstance(entry, Mapping) and len(entry) == 1 and "name" not in entry:
            ((name, params),) = entry.items()
            if name in STRATEGIES and isinstance(params, Mapping):
                params = {k: v for k, v in params.items() if k != "label"}  # the entry's own
                _check_unknown_keys(params, STRATEGIES[name].Params,
                                    ("algorithms", str(i), str(name)), file)


def _by_kind(models: list[type[BaseModel]], value: Any) -> list[type[BaseModel]]:
    """Of the sections of a tagged union (each with a ``kind`` literal), the one ``value``
    names; none when it names none of them (validation then says which kinds there are)."""
    if len(models) < 2 or not all("kind" in m.model_fields for m in models):
        return models
    kind = value.get("kind") if isinstance(value, Mapping) else None
    return [m for m in models if kind in typing.get_args(m.model_fields["kind"].annotation)]


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


def _without_tags(loc: tuple, raw: Any) -> list[str]:
    """The key path of an error: pydantic puts the chosen kind of a tagged union into the
    location (``links.loss.bernoulli.p``); the file has no such key (``links.loss.p``)."""
    out, node = [], raw
    for part in loc:
        part = str(part)
        if part.startswith("function-"):
            continue
        if isinstance(node, Mapping) and part not in node and node.get("kind") == part:
            continue
        out.append(part)
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            node = None
    return out


def _config_error(error: ValidationError, file: str | None, raw: Any = None) -> ConfigError:
    first = error.errors(include_url=False)[0]
    loc = _without_tags(first["loc"], raw)
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
    elif kind == "finite_number":  # text such as "inf" or "nan" for a number
        msg = f"must be a finite number, got {value!r}"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ctx.get("expected_tags", "")
        msg = (f"unknown kind {ctx.get('tag')!r}; choose one of {tags}" if kind ==
               "union_tag_invalid" else f"give its kind: one of {tags}" if tags else
               "give its kind")
        loc = [*loc, "kind"] if kind == "union_tag_invalid" else loc
    elif kind.startswith("value_error"):
        msg = msg.removeprefix("Value error, ")
    elif kind == "literal_error" or kind.endswith("_type") or kind.endswith("_parsing"):
        msg = f"{msg}, got {value!r}"
    msg = msg[:1].lower() + msg[1:]
    key = ".".join(loc) or None
    if key and len(loc) == 2 and loc[0] == "algorithms" and kind.startswith("value_error"):
        key = "algorithms"  # about the entry as a whole (its name, a duplicate label)
    return ConfigError(msg, file=file, key=key)
