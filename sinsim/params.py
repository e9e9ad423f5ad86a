"""Parameters as every room declares them: the pydantic base of a section (frozen, unknown keys
rejected) and the value types of scenario files (durations, finite numbers that are not booleans,
float32 values, UTC datetimes).

It sits below ``scenario``, ``learn``, ``space`` and ``sim``, so each strategy, codec or loss kind
declares its own parameters as one section, next to the code that uses them, and the scenario
schema is assembled from them (``sinsim.registry``)."""

from __future__ import annotations

import difflib
import math
import re
import struct
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field

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
        return _finite_duration(value, value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            number, unit = m.groups()
            unit = unit.lower() or "s"
            if unit in _DURATION_UNITS_S:
                return _finite_duration(float(number) * _DURATION_UNITS_S[unit], value)
            raise ValueError(
                f"unknown duration unit {unit!r} in {value!r}; "
                f"use one of {', '.join(sorted(set(_DURATION_UNITS_S)))}"
            )
    raise ValueError(f"expected a duration such as 90s, 10min or 3d, got {value!r}")


def _finite_duration(seconds: float, value: Any) -> float:
    try:
        seconds = float(seconds)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {_show(value)}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration_s)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration_s), Field(gt=0)]


def _show(value: Any) -> str:
    """``value`` for a message: its repr, or its size when it is an integer too long to print."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {int(math.log10(abs(value))) + 1} digits"
    return repr(value)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return value


def _finite(value: Any) -> Any:
    """Numbers that are not booleans, NaN or infinite (text such as ``"inf"`` is refused by
    the float validator itself: ``AllowInfNan(False)``)."""
    _not_bool(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    if isinstance(value, int) and abs(value) > _FLOAT64_MAX:
        raise ValueError(f"must be a finite number, got {_show(value)}")
    return value


_FLOAT64_MAX = 1.7976931348623157e308
# the largest float32 (torch refuses a larger Python float as an optimiser's step size, and
# a float32 tensor times a larger scalar is inf) and the smallest above 0 (a subnormal)
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.401298464324817e-45


def _float32(value: float) -> float:
    """A float that keeps its meaning as a float32: within +-FLOAT32_MAX and, when not 0, not
    rounded to 0 (torch takes learning rates and momenta into float32 arithmetic)."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{value:g} cannot be represented as a float32 "
                         f"(largest {FLOAT32_MAX:.2g})")
    if value != 0 and struct.unpack("f", struct.pack("f", value))[0] == 0:
        raise ValueError(f"{value:g} rounds to 0 as a float32 (smallest {FLOAT32_TINY:.2g})")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
# every scenario float is finite: no key means anything by NaN or infinity
Float = Annotated[float, BeforeValidator(_finite), AllowInfNan(False)]
# a float that torch uses as a float32 (learning rates, momentum): a Float that float32 holds
Float32 = Annotated[float, BeforeValidator(_finite), AllowInfNan(False), AfterValidator(_float32)]


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
