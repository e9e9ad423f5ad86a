"""Parameters as every room declares them: the pydantic base of a section (frozen, unknown keys
rejected) and the value types of scenario files (durations, numbers that are not booleans, UTC
datetimes).

It sits below ``scenario``, ``learn``, ``space`` and ``sim``, so each strategy, codec or loss kind
declares its own parameters as one section, next to the code that uses them, and the scenario
schema is assembled from them (``sinsim.registry``)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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


class Section(BaseModel):
    """A block of parameters: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def one_of(value: str, choices: Sequence[str], what: str) -> str:
    if value in choices:
        return value
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown {what} {value!r}{hint}; choose one of {', '.join(choices)}")
