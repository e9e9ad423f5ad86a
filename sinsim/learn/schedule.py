"""A SpaceDML client round as a schedule of ALQ phases (pure data, no torch).

A schedule is a list whose items are

- a phase name, one epoch of it: ``prune``, ``basis``, ``coordinate``, ``ste``;
- ``{phase: N}``: N epochs of it (``{prune: N}`` is *one* pruning phase spread over N epochs,
  so it removes as much as a one-epoch phase; write ``prune`` N times for N phases);
- ``{repeat: N, do: [items...]}``: the items N times over;

or the name of a preset (`PRESETS`). `parse_schedule` turns any of these into a flat tuple of
``(phase, epochs)`` steps and raises `ValueError` naming the item that is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

PHASES = ("prune", "basis", "coordinate", "ste")

Step = tuple[str, int]

PRESETS: dict[str, list[Any]] = {
    # the reading sinsim used before: every pruning phase back to back, then one epoch each of
    # basis, coordinates and STE (keeps e^(-3 pr) of the slots in 3 phases with no recovery)
    "sequential": ["prune", "prune", "prune", "basis", "coordinate", "ste"],
    # the ALQ reference's order: every pruning phase is followed by basis and coordinate
    # optimisation before the next one, and STE post-training ends the round
    "interleaved": [{"repeat": 3, "do": ["prune", "basis", "coordinate"]}, "ste"],
}


def parse_schedule(value: Any) -> tuple[Step, ...]:
    """The flat ``(phase, epochs)`` steps of a schedule (a preset name or a list)."""
    if isinstance(value, str):
        if value in PRESETS:
            return parse_schedule(PRESETS[value])
        raise ValueError(_unknown(value, tuple(PRESETS), "schedule preset")
                         + " (or give a list of phases)")
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise ValueError(f"a schedule is a preset name or a list of phases, got {value!r}")
    steps = tuple(_items(value, "item"))
    if not steps:
        raise ValueError("the schedule is empty")
    return steps


def _items(items: Sequence[Any], where: str) -> list[Step]:
    out: list[Step] = []
    for i, item in enumerate(items):
        here = f"{where} {i}"
        if isinstance(item, str):
            out.append((_phase(item, here), 1))
        elif isinstance(item, Mapping) and "repeat" in item:
            extra = set(item) - {"repeat", "do"}
            if extra or "do" not in item:
                raise ValueError(f"{here}: a repeat needs exactly the keys `repeat` and `do`, "
                                 f"got {sorted(item)}")
            n = _count(item["repeat"], f"{here}.repeat", allow_zero=False)
            body = item["do"]
            if not isinstance(body, Sequence) or isinstance(body, str) or not body:
                raise ValueError(f"{here}.do: a non-empty list of phases, got {body!r}")
            out.extend(_items(body, f"{here}.do item") * n)
        elif isinstance(item, Mapping) and len(item) == 1:
            ((name, n),) = item.items()
            out.append((_phase(str(name), here), _count(n, f"{here}.{name}", allow_zero=False)))
        else:
            raise ValueError(f"{here}: a phase name, {{phase: epochs}} or {{repeat: N, do: "
                             f"[...]}}, got {item!r}")
    return out


def _phase(name: str, where: str) -> str:
    if name in PHASES:
        return name
    raise ValueError(f"{where}: " + _unknown(name, PHASES, "phase"))


def _count(n: Any, where: str, allow_zero: bool) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < (0 if allow_zero else 1):
        raise ValueError(f"{where}: a whole number >= {0 if allow_zero else 1}, got {n!r}")
    return n


def _unknown(value: str, choices: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {value!r}{hint}; choose one of {', '.join(choices)}"


def epochs_of(steps: Sequence[Step]) -> dict[str, int]:
    """Epochs of each phase in a schedule."""
    out = dict.fromkeys(PHASES, 0)
    for phase, n in steps:
        out[phase] += n
    return out


def describe(steps: Sequence[Step]) -> str:
    """A short text form: ``prune basis coordinate x3, ste``-like, for logs and tables."""
    return " ".join(p if n == 1 else f"{p}:{n}" for p, n in steps)
