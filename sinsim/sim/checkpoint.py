"""Checkpoints for ``--resume``: what a run needs to continue after its last complete round.

After every round the engine saves, atomically (a temporary file renamed over
``checkpoint.pkl``): the resolved scenario (a resume with another one is refused), the row
count of each table, the summaries of the algorithms already finished, and for the algorithm
in progress its rounds so far, the simulated clock, the global model and the strategy's own
state (``Strategy.checkpoint``: e.g. SpaceDML's per-client memory and its quantized global
model). Nothing else is needed: every random draw is keyed by (seed, purpose, round, client, ...)
(``sinsim._rng``), so a resumed round draws what the uninterrupted one drew, and the tables
come out identical (host time aside). The file is removed when the run completes.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKPOINT = "checkpoint.pkl"


@dataclass
class AlgorithmState:
    """One algorithm, between two rounds."""

    label: str
    rows: list[dict[str, Any]]  # its rounds.csv rows so far
    now_s: float  # the simulated clock at the end of its last round
    global_state: dict[str, Any]
    strategy: Any  # Strategy.checkpoint()
    batteries: Any = None  # with ``power:``, every client's Battery (sinsim.sim.power)


@dataclass
class Checkpoint:
    scenario: dict[str, Any]  # Scenario.resolved()
    counts: dict[str, int]  # rows in rounds/transfers/clients.csv
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> its summary
    current: AlgorithmState | None = None


def save(out_dir: str | Path, checkpoint: Checkpoint) -> None:
    path = Path(out_dir) / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        # one pickle: the global model and the strategy's copy of it stay one object
        pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load(out_dir: str | Path) -> Checkpoint | None:
    """The checkpoint in ``out_dir``; None if there is none."""
    path = Path(out_dir) / CHECKPOINT
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return None


def remove(out_dir: str | Path) -> None:
    (Path(out_dir) / CHECKPOINT).unlink(missing_ok=True)


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first key path where two resolved scenarios differ, with both values; None if equal.

    >>> first_difference({"training": {"lr": 0.05}}, {"training": {"lr": 0.1}})
    'training.lr: 0.05 then, 0.1 now'
    """
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            here = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{here}: {'missing' if key not in a else 'given'} then, " \
                       f"{'missing' if key not in b else 'given'} now"
            diff = first_difference(a[key], b[key], here)
            if diff:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff = first_difference(x, y, f"{path}.{i}" if path else str(i))
            if diff:
                return diff
        return None
    return None if a == b else f"{path or '(top)'}: {a!r} then, {b!r} now"
