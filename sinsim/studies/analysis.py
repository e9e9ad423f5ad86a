"""Tables derived from the output tables only: where the time of a round goes, and the
per-run summaries of a sweep (its swept keys: :func:`sinsim.studies.tables.swept_keys`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sinsim.studies.tables import load_table, swept_keys

ROUND_KEYS = ["algorithm", "round"]


def round_time_breakdown(results_dir: str | Path) -> pd.DataFrame:
    """Per algorithm and round, the mean over the clients that were averaged of the time spent
    waiting (for a pass, paused at loss of signal, or in propagation), transmitting and
    computing, plus the round duration. Seconds of simulated time."""
    return round_time_breakdown_of(*(load_table(results_dir, name)
                                     for name in ("rounds", "transfers", "clients")))


def round_time_breakdown_of(rounds: pd.DataFrame, transfers: pd.DataFrame,
                            clients: pd.DataFrame) -> pd.DataFrame:
    """:func:`round_time_breakdown` from tables already loaded. Columns: ``algorithm, round,
    round_duration_s, completed, wait_s, transmit_s, compute_s`` (NaN where no client of the
    round was averaged)."""
    transfers = transfers.assign(transmit_s=transfers.end_s - transfers.start_s - transfers.wait_s)
    per_client = (transfers.groupby([*ROUND_KEYS, "client"])[["wait_s", "transmit_s"]]
                  .sum().reset_index())
    counted = clients[clients.aggregated.astype(bool)][[*ROUND_KEYS, "client", "compute_s"]]
    merged = counted.merge(per_client, on=[*ROUND_KEYS, "client"])
    out = merged.groupby(ROUND_KEYS)[["wait_s", "transmit_s", "compute_s"]].mean().reset_index()
    return rounds[[*ROUND_KEYS, "round_duration_s", "completed"]].merge(out, on=ROUND_KEYS,
                                                                       how="left")


# ----------------------------------------------------------------------------------- sweeps
def sweep_summary(runs: pd.DataFrame, metric: str, reduce: str = "last",
                  keys: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (run, algorithm): the swept keys, ``seed`` and ``value``, the run's
    ``metric`` reduced over its rounds. ``reduce`` is ``"last"`` (the value at the last round,
    e.g. the final ``test_accuracy`` or the total ``bytes_up_cum``) or a pandas aggregation
    name (``"mean"``, ``"sum"``, ``"max"``...).

    ``runs`` is a tidy sweep table: one row per (run_id, algorithm, round)."""
    keys = swept_keys(runs) if keys is None else list(keys)
    if metric not in runs.columns:
        raise KeyError(f"no column {metric!r} in the sweep table (columns: "
                       f"{', '.join(map(str, runs.columns))})")
    group = ["run_id", "algorithm"]
    ordered = runs.sort_values([*group, "round"])
    g = ordered.groupby(group, sort=True)[metric]
    value = g.last() if reduce == "last" else g.agg(reduce)
    first = ordered.groupby(group, sort=True)[[*keys, "seed"]].first()
    return first.assign(value=value).reset_index()


def sweep_stats(runs: pd.DataFrame, key: str, metric: str, reduce: str = "last",
                keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean, standard deviation (over seeds, 0 for a single seed) and count of a run metric
    (see :func:`sweep_summary`) per algorithm, value of ``key`` and value of every other swept
    key. Columns: the other keys, ``algorithm``, ``key``, ``mean``, ``std``, ``n``."""
    keys = swept_keys(runs) if keys is None else list(keys)
    if key not in keys:
        keys = [*keys, key]
    per_run = sweep_summary(runs, metric, reduce, keys)
    others = [k for k in keys if k != key]
    by = [*others, "algorithm", key]
    stats = (per_run.assign(**{k: per_run[k].astype(str) for k in others})
             .groupby(by, sort=True, dropna=False)["value"]
             .agg(mean="mean", std="std", n="count").reset_index())
    stats["std"] = stats["std"].fillna(0.0)
    return stats
