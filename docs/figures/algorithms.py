"""The algorithms study's table and figure (docs/algorithms.md): sweeps/algorithms.yaml and
sweeps/algorithms_compressed.yaml (or any one sweep) compared at equal simulated time and
at equal client updates, mean over the seeds with a 95 % Student-t interval.

    python -m sinsim sweep sweeps/algorithms.yaml
    python -m sinsim sweep sweeps/algorithms_compressed.yaml
    python docs/figures/algorithms.py results/algorithms results/algorithms_compressed [HOURS ...]

Several sweep directories are read as one study (runs of the same setting and seed side by side).

Prints two markdown tables and writes docs/figures/algorithms.png: accuracy against simulated
time and against the bytes on the wire (up + down, cumulative), the mean over the seeds as a
line and its interval shaded, one row of panels per setting (selection x partition).

- **Equal time** T: the test accuracy of the model each algorithm held at T (its last version
  or round made at or before T; every run is stopped by the same horizon).
- **Equal updates** U: the accuracy of the first version or round whose client updates
  applied so far (``completed``, summed) reach U, and the simulated time it was made: FedAvg
  applies ~10 at once, FedAsync one at a time, FedBuff ``buffer_size`` at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from sinsim.studies.figures import save
from sinsim.studies.table1 import _interval
from sinsim.studies.tables import load_sweep

ORDER = ["fedavg", "fedasync", "fedasync-dispatch", "fedbuff", "spacedml", "fedavg-topk",
         "fedavg-qsgd", "hierfl"]
SETTING = ["training.selection", "training.partition"]
TIMES_H = (1, 2, 4, 8)
UPDATES = (10, 30, 100)


def _words(value) -> str:
    """A swept value as a reader says it: ``"iid"`` -> IID, a by_plane partition -> by plane."""
    with contextlib.suppress(ValueError):
        value = json.loads(value) if isinstance(value, str) else value
    if value == "iid":
        return "IID"
    if isinstance(value, dict) and value.get("kind") == "by_plane":
        return f"by plane ({value.get('classes_per_plane')} classes a plane)"
    return f"{value} selection" if value in ("visible", "random") else str(value)


def settings(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(name, rows) of each setting (the swept selection and partition), in table order."""
    cols = [c for c in SETTING if c in runs]
    if not cols:
        return [("", runs)]
    return [(", ".join(_words(v) for v in (key if isinstance(key, tuple) else (key,))), rows)
            for key, rows in runs.groupby(cols, sort=False)]


def _held_at(r: pd.DataFrame, t_s: float) -> float:
    before = r[r.sim_end_s <= t_s]
    return float(before.test_accuracy.iloc[-1]) if len(before) else math.nan


def _at_updates(r: pd.DataFrame, u: int) -> tuple[float, float]:
    reached = r[r.completed.cumsum() >= u]
    if not len(reached):
        return math.nan, math.nan
    return float(reached.test_accuracy.iloc[0]), float(reached.sim_end_s.iloc[0])


def _cell(values: list[float], digits: int = 3, scale: float = 1.0) -> str:
    mean, _, half = _interval(pd.Series(values, dtype=float) * scale)
    if math.isnan(mean):
        return "–"
    n = int(np.isfinite(values).sum())
    pm = "" if math.isnan(half) else f" ± {half:.{digits}f}"
    return f"{mean:.{digits}f}{pm}" + (f" (n={n})" if n < len(values) else "")


def _runs_of(rows: pd.DataFrame):
    for alg in sorted(rows.algorithm.unique(), key=lambda a: (ORDER + [a]).index(a)):
        yield alg, [r.sort_values("round") for _, r in rows[rows.algorithm == alg]
                    .groupby("run_id")]


def markdown(runs: pd.DataFrame, times_h=TIMES_H) -> str:
    """The tables, one a setting: accuracy held at ``times_h`` (the last one the budget)."""
    end_s, out = times_h[-1] * 3600, []
    for name, rows in settings(runs):
        n_seeds = rows.seed.nunique()
        out += [f"**{name or 'all runs'}** ({n_seeds} seeds; mean ± 95 % t interval)", "",
                "| algorithm | " + " | ".join(f"acc. at {t} h" for t in times_h)
                + f" | versions / rounds at {times_h[-1]} h | updates at {times_h[-1]} h | "
                + " | ".join(
                    f"acc. at {u} updates (h)" for u in UPDATES) + " |",
                "|---" * (3 + len(times_h) + len(UPDATES)) + "|"]
        for alg, rs in _runs_of(rows):
            cells = [_cell([_held_at(r, t * 3600) for r in rs]) for t in times_h]
            cells.append(_cell([float((r.sim_end_s <= end_s).sum()) for r in rs], 0))
            cells.append(_cell([float(r[r.sim_end_s <= end_s].completed.sum()) for r in rs], 0))
            for u in UPDATES:
                acc, t = zip(*(_at_updates(r, u) for r in rs))
                cells.append(f"{_cell(list(acc))} ({_cell(list(t), 1, 1 / 3600)})")
            out.append(f"| {alg} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def summary(runs: pd.DataFrame, t_h: float) -> str:
    """One table of every setting: accuracy held at ``t_h`` hours, and the client updates
    applied by then, per algorithm (the README's)."""
    groups = settings(runs)
    head = "| algorithm | " + " | ".join(name for name, _ in groups) + " |"
    out = [f"Accuracy at {t_h} h of simulated time (updates applied by then), mean ± 95 % t "
           f"interval over {runs.seed.nunique()} seeds", "", head,
           "|---" * (1 + len(groups)) + "|"]
    cells: dict[str, list[str]] = {}
    for _, rows in groups:
        per_alg = dict(_runs_of(rows))
        for alg in sorted(runs.algorithm.unique(), key=lambda a: (ORDER + [a]).index(a)):
            rs = per_alg.get(alg, [])
            done = [float(r[r.sim_end_s <= t_h * 3600].completed.sum()) for r in rs]
            cells.setdefault(alg, []).append(
                f"{_cell([_held_at(r, t_h * 3600) for r in rs])} ({np.mean(done):.0f})"
                if rs else "–")
    out += [f"| {alg} | " + " | ".join(c) + " |" for alg, c in cells.items()]
    return "\n".join(out + [""])


def _band(ax, rs: list[pd.DataFrame], x: str, grid: np.ndarray, xdiv: float, label: str,
          color) -> None:
    """The mean over runs of the accuracy held at each grid point, its 95 % interval shaded."""
    ys = np.array([[_held_at(r.assign(sim_end_s=r[x]), g) for g in grid] for r in rs])
    stats = [_interval(pd.Series(col)) for col in ys.T]
    mean = np.array([s[0] for s in stats])
    half = np.nan_to_num(np.array([s[2] for s in stats]))
    ax.plot(grid / xdiv, mean, label=label, color=color)
    ax.fill_between(grid / xdiv, mean - half, mean + half, color=color, alpha=0.2, lw=0)


def main(sweep_dirs: list[str], times_h=TIMES_H, stem: str = "algorithms") -> None:
    runs = pd.concat([load_sweep(d) for d in sweep_dirs], ignore_index=True)
    runs = runs.assign(bytes_cum=runs.bytes_up_cum + runs.bytes_down_cum)
    print(markdown(runs, times_h))
    print(summary(runs, times_h[-1]))
    groups = settings(runs)
    fig = Figure(figsize=(11, 3.8 * len(groups)))
    axes = fig.subplots(len(groups), 2, squeeze=False)
    palette = dict(zip(ORDER, [f"C{i}" for i in (0, 1, 3, 2, 4, 5, 6, 7)]))
    for (name, rows), (left, right) in zip(groups, axes):
        t_grid = np.linspace(0, times_h[-1] * 3600, 200)
        b_grid = np.geomspace(max(rows.bytes_cum.min(), 1), rows.bytes_cum.max(), 200)
        for alg, rs in _runs_of(rows):
            _band(left, rs, "sim_end_s", t_grid, 3600, alg, palette.get(alg))
            _band(right, rs, "bytes_cum", b_grid, 1e6, alg, palette.get(alg))
        left.set(xlabel="simulated time (h)", ylabel="test accuracy",
                 title=f"accuracy vs simulated time{': ' + name if name else ''}")
        right.set(xlabel="bytes on the wire, up + down, cumulative (MB, log)",
                  ylabel="test accuracy", title="accuracy vs bytes", xscale="log")
        right.xaxis.set_minor_formatter(NullFormatter())
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.set_ylim(0, 1)
            ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    for path in save(fig, Path(__file__).parent, stem, ["png"]):
        print(f"wrote {path}")


if __name__ == "__main__":
    dirs = [a for a in sys.argv[1:] if Path(a).is_dir()]
    hours = tuple(float(h) if "." in h else int(h) for h in sys.argv[1:] if h not in dirs)
    main(dirs, hours or TIMES_H, "algorithms" if not hours or hours == TIMES_H
         else Path(dirs[0]).name)
