"""Run ids: readable, filesystem-safe, stable names derived from a run's swept values and seed
(``clients_per_round=2,lr=0.01,seed=0``). A run id is also the run's directory name."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["labels", "run_id", "unique_ids", "value_text", "digest"]

_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")
MAX_ID = 150


def labels(keys: Sequence[str]) -> dict[str, str]:
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


def digest(value: Any, n: int = 8) -> str:
    """The first ``n`` hex digits of the SHA-1 of ``value`` as sorted JSON (mapping keys as
    text, so that keys of mixed types, which YAML allows, sort too)."""
    text = json.dumps(_text_keys(value), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text_keys(v) for v in value]
    return value


def value_text(value: Any) -> str:
    """A value as it appears in a run id; values that are not short safe scalars are hashed."""
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (int, str)):
        text = str(value)
    else:
        text = ""
    return text if _SAFE.match(text) and len(text) <= 32 else f"h-{digest(value)}"


def run_id(values: Mapping[str, Any], key_labels: Mapping[str, str], seed: int) -> str:
    """``label=value,...,seed=N``, cut to :data:`MAX_ID` characters plus a hash when longer."""
    parts = [f"{key_labels[k]}={value_text(v)}" for k, v in values.items()]
    text = ",".join([*parts, f"seed={seed}"])
    if len(text) > MAX_ID:
        text = f"{text[:MAX_ID - 9]}-{digest(text)}"
    return text


R = TypeVar("R")


def unique_ids(runs: list[R]) -> list[R]:
    """Two runs whose values print alike (0.1 and "0.1") get a hash of their values appended.
    ``runs`` are dataclasses with ``run_id``, ``values`` and ``seed`` fields."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.run_id] = counts.get(r.run_id, 0) + 1
    return [r if counts[r.run_id] == 1 else
            dataclasses.replace(r, run_id=f"{r.run_id}-{digest([r.values, r.seed])}")
            for r in runs]
