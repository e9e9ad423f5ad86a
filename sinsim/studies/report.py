"""A markdown overview of sweeps: per swept value and algorithm, the final accuracy, the mean
round duration, the share of selected clients averaged and the total bytes each way.

    python -m sinsim report results/sin_uplink_rate [more sweep dirs...]

Reads only each directory's combined table (:func:`sinsim.studies.tables.load_sweep`, and
``sweep.json`` for the swept keys).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sinsim.studies.tables import load_sweep, swept_keys


def overview(runs: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """One row per (swept values, algorithm), means over seeds."""
    keys = swept_keys(runs) if keys is None else keys
    rows = []
    for (_run, alg), r in runs.groupby(["run_id", "algorithm"], sort=False):
        r = r.sort_values("round")
        rows.append({**{k: r[k].iloc[0] for k in keys}, "algorithm": alg,
                     "final_accuracy": r.test_accuracy.iloc[-1],
                     "mean_round_s": r.round_duration_s.mean(),
                     "averaged_share": r.completed.sum() / r.selected.sum(),
                     "bytes_up": r.bytes_up_cum.iloc[-1], "bytes_down": r.bytes_down_cum.iloc[-1],
                     "rounds": len(r)})
    table = pd.DataFrame(rows)
    return table.groupby([*keys, "algorithm"], sort=False).mean(numeric_only=True).reset_index()


def to_markdown(table: pd.DataFrame, keys: list[str]) -> str:
    head = [*keys, "algorithm", "final acc.", "mean round (s)", "averaged", "bytes up",
            "bytes down"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [_cell(r[k]) for k in keys] + [
            r.algorithm, f"{r.final_accuracy:.4f}", f"{r.mean_round_s:,.1f}",
            f"{100 * r.averaged_share:.0f} %", f"{r.bytes_up:,.0f}", f"{r.bytes_down:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    """Swept values as text; a list of stations (JSON) as its ids."""
    if isinstance(value, str) and value.startswith("["):
        try:
            items = json.loads(value)
            return ", ".join(str(i.get("id", i)) if isinstance(i, dict) else str(i)
                             for i in items)
        except ValueError:
            pass
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def report(sweep_dirs: Iterable[str | Path]) -> str:
    """The overview of every sweep directory, one markdown section each (``### <name>``)."""
    sections = []
    for d in map(Path, sweep_dirs):
        runs = load_sweep(d)
        keys = swept_keys(runs, d)
        sections.append(f"### {d.name}\n\n{to_markdown(overview(runs, keys), keys)}\n")
    return "\n".join(sections)

