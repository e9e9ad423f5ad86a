"""Figures of a sweep: each run metric against each swept key, means and spreads over seeds.
Reads only the sweep's combined table (:func:`sinsim.studies.tables.load_sweep`).

    python -m sinsim plot results/my_sweep          # a sweep directory (runs.csv)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sinsim.studies.analysis import sweep_stats
from sinsim.studies.figures import (
    axes,
    bytes_unit,
    check_formats,
    colors,
    figure,
    save,
    time_unit,
)
from sinsim.studies.tables import MissingTable, load_sweep, swept_keys

__all__ = ["SWEEP_METRICS", "sweep_metric", "plot_sweep"]

SWEEP_METRICS = (  # (column, reduction over a run's rounds, label)
    ("test_accuracy", "last", "final test accuracy"),
    ("bytes_up_cum", "last", "uplink bytes, total"),
    ("round_duration_s", "mean", "mean round duration"),
)


def sweep_metric(runs: pd.DataFrame, key: str, metric: str = "test_accuracy",
                 reduce: str = "last", ax=None, keys: Iterable[str] | None = None,
                 label: str | None = None):
    """A run metric against a swept ``key``: the mean over seeds, with error bars of one
    standard deviation over seeds, one line per algorithm (and per value of any other swept
    key). ``runs`` is a sweep table (one row per run, algorithm and round, with ``run_id``,
    ``seed`` and one column per swept key); ``reduce`` says how a run's rounds give one value:
    ``"last"`` (final accuracy, total bytes) or a pandas aggregation such as ``"mean"``.
    Bytes (``bytes_*``) and seconds (``*_s``) are shown in a readable unit; a numeric key whose
    values span two decades or more gets a logarithmic axis."""
    ax = axes(ax)
    keys = swept_keys(runs) if keys is None else list(keys)
    stats = sweep_stats(runs, key, metric, reduce, keys)
    top = float(np.nanmax(np.abs(stats["mean"]))) if len(stats) else 0.0
    div, unit = (bytes_unit(top) if metric.startswith("bytes") else
                 time_unit(top) if metric.endswith("_s") else (1.0, ""))
    stats[["mean", "std"]] = stats[["mean", "std"]] / div
    others = [k for k in keys if k != key]
    numeric = pd.api.types.is_numeric_dtype(stats[key])
    categories = sorted(stats[key].astype(str).unique())
    palette = colors(stats.algorithm)
    groups = stats.groupby([*others, "algorithm"], sort=True) if others else \
        stats.groupby("algorithm", sort=True)
    for group, s in groups:
        group = group if isinstance(group, tuple) else (group,)
        name = group[-1]
        s = s.sort_values(key)
        x = s[key].to_numpy() if numeric else s[key].astype(str).map(categories.index)
        text = ", ".join([name, *(f"{k.rsplit('.', 1)[-1]}={v}"
                                  for k, v in zip(others, group[:-1]))])
        ax.errorbar(x, s["mean"], yerr=s["std"], marker="o", ms=4, capsize=3, label=text,
                    color=palette[name] if not others else None)
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    elif len(stats) and stats[key].min() > 0 and stats[key].max() >= 100 * stats[key].min():
        ax.set_xscale("log")
    elif stats[key].nunique() <= 10:
        ax.set_xticks(sorted(stats[key].unique()))
    seeds = int(runs.seed.nunique()) if "seed" in runs else 1
    label = label or f"{metric} ({reduce})"
    ax.set(xlabel=key, ylabel=f"{label} ({unit})" if unit else label)
    ax.set_title(f"{label}, {seeds} seed{'s' if seeds != 1 else ''}", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return ax


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None,
               formats: Sequence[str] = ("png", "pdf"),
               metrics: Sequence[tuple[str, str, str]] = SWEEP_METRICS) -> list[Path]:
    """For every swept key of a sweep directory, one figure ``sweep_<key>`` with a panel per
    metric of ``metrics`` (:func:`sweep_metric`); returns the paths written."""
    d = Path(sweep_dir)
    check_formats(formats)
    runs = load_sweep(d)
    keys = swept_keys(runs, d)
    if not keys:
        raise MissingTable(f"{d / 'runs.csv'}: no swept key columns (key paths such as "
                           "training.lr)")
    metrics = [m for m in metrics if m[0] in runs.columns]
    out = Path(out_dir) if out_dir else d
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for key in keys:
        fig, panels = figure((4.6 * len(metrics), 3.6), ncols=len(metrics))
        for ax, (metric, reduce, label) in zip(panels, metrics):
            sweep_metric(runs, key, metric, reduce, ax, keys, label)
        written += save(fig, out, f"sweep_{_safe(key)}", formats)
    return written
