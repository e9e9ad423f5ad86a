"""The scenario reference of the documentation, generated from the schema (``model.py``) so that
it cannot drift: every section and key, its type, default, bounds and the words the code gives
it (the section's docstring, the comment on the key's line).

``python -m sinsim.scenario.reference`` prints it; the docs build inserts it into
``docs/scenario-reference.md`` (``docs/hooks.py``).
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sinsim.params import parse_duration_s
from sinsim.scenario.model import Scenario

_BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
_COMMENT = re.compile(r"^\s{4}(\w+)\s*:[^#]*#\s*(.+)$")


def _comments(cls: type) -> dict[str, str]:
    """The comment on each field's line of ``cls``'s source (empty when there is none)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for line in lines if (m := _COMMENT.match(line))}


def _sections(annotation: Any) -> list[type[BaseModel]]:
    """The schema sections an annotation can hold (unwrapping Annotated, unions, lists)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _sections(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, dict):
        return [s for arg in typing.get_args(annotation) for s in _sections(arg)]
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "null"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return f"section `{annotation.__name__}`"
    name = getattr(annotation, "__name__", str(annotation))
    return {"float": "number", "int": "integer", "str": "text", "bool": "true/false",
            "datetime": "UTC time"}.get(name, name)


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(the section's defaults)"
    if value is None:
        return "none"
    return f"`{value}`"


def _bounds(field) -> str:
    out = []
    for meta in field.metadata:
        for attr, sign in _BOUNDS.items():
            if getattr(meta, attr, None) is not None:
                out.append(f"{sign} {getattr(meta, attr)}")
    return ", ".join(out)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def markdown(root: type[BaseModel] = Scenario) -> str:
    """The reference of ``root`` and every section under it, as markdown: a table per section,
    headed by its key path."""
    out: list[str] = []
    seen: set[tuple[str, type]] = set()

    def section(path: str, cls: type[BaseModel]) -> None:
        if (path, cls) in seen:
            return
        seen.add((path, cls))
        title = f"`{path}`" if path else "top level"
        kind = cls.model_fields.get("kind")
        if kind is not None and typing.get_origin(kind.annotation) is typing.Literal:
            title += f" (kind: `{typing.get_args(kind.annotation)[0]}`)"
        out.append(f"### {title}\n")
        if cls.__doc__ and cls.__doc__ is not BaseModel.__doc__ and "A block of" not in cls.__doc__:
            out.append(" ".join(inspect.cleandoc(cls.__doc__).split()) + "\n")
        notes = _comments(cls)
        out.append("| key | type | default | bounds | notes |\n|---|---|---|---|---|")
        nested = []
        for name, field in cls.model_fields.items():
            kind = _type_name(field.annotation)
            if any(getattr(m, "func", None) is parse_duration_s for m in field.metadata):
                kind = "duration (s, or `90s`, `10min`, `1.5h`, `3d`)"
            out.append(f"| `{name}` | {_cell(kind)} | "
                       f"{_cell(_default(field))} | {_bounds(field)} | "
                       f"{_cell(notes.get(name, ''))} |")
            nested += [(f"{path}.{name}" if path else name, s)
                       for s in _sections(field.annotation)]
        out.append("")
        for sub_path, sub in nested:
            section(sub_path, sub)

    section("", root)
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(markdown())
