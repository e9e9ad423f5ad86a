"""The seed paper's Table I from a sweep's tables: per clients-per-round K and algorithm, the
bit-width and accuracy the seed reports, plus the columns it lacks (true bytes per client up and
down, the true compression ratio against FedAvg, rounds and simulated time to the target).

    python -m sinsim table1 results/paper_table1 [MORE_SWEEP_DIRS...] [--out table1.md]

Reads only the combined table (written by ``python -m sinsim sweep sweeps/paper_table1.yaml``)
or a single run's ``rounds.csv``; several directories are combined (e.g. a second seed of the
headline rows), and rows with more than one seed show the mean and the spread (half the range)
of the accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sinsim.studies.tables import (
    is_sweep,
    load_rounds,
    load_summary,
    load_sweep,
    sweep_description,
)

K = "training.clients_per_round"


def table1(runs: pd.DataFrame, target: float = 0.96) -> pd.DataFrame:
    """One row per (K, algorithm, seed averaged): the last round's bit-width and accuracy, mean
    bytes per client per round each way, the uplink compression ratio against ``fedavg`` at the
    same K, rounds run, and the first round / simulated time at ``target`` accuracy."""
    rows = []
    for (k, alg), g in runs.groupby([K, "algorithm"], sort=True):
        per_seed = []
        for _, r in g.groupby("seed"):
            r = r.sort_values("round")
            last = r.iloc[-1]
            hit = r[r.test_accuracy >= target]
            per_seed.append({
                "avg_bits": last.avg_bits, "accuracy": last.test_accuracy,
                "bits_min": r.avg_bits.min(), "bits_max": r.avg_bits.max(),
                "up_per_client": (r.bytes_up / r.completed.where(r.completed > 0)).mean(),
                "down_per_client": (r.bytes_down / r.selected).mean(),
                "rounds": len(r),
                "round_at_target": hit["round"].iloc[0] if len(hit) else None,
                "sim_s_to_target": hit.sim_end_s.iloc[0] if len(hit) else None,
            })
        s = pd.DataFrame(per_seed)
        rows.append({"K": k, "algorithm": alg, "seeds": len(s),
                     **s.mean(numeric_only=True).to_dict(),
                     "bits_min": s.bits_min.min(), "bits_max": s.bits_max.max(),
                     "accuracy_spread": (s.accuracy.max() - s.accuracy.min()) / 2,
                     "reached": int(s.round_at_target.notna().sum())})
    out = pd.DataFrame(rows)
    fed = out[out.algorithm == "fedavg"].set_index("K").up_per_client
    out["up_ratio_vs_fedavg"] = out.K.map(fed) / out.up_per_client
    return out


def to_markdown(t: pd.DataFrame, dataset: str = "") -> str:
    """Laid out like the seed's Table I, one block per K."""
    lines = []
    for k, g in t.groupby("K"):
        lines += [f"**K = {k} devices a round**{dataset}", "",
                  "| config | bit-width | bits, every round | acc. (%) | bytes up / client "
                  "| bytes down / client | up ratio vs FedAvg | rounds | sim. time to 96 % |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for _, r in g.iterrows():
            bits = "32 (fp32)" if pd.isna(r.avg_bits) else f"{r.avg_bits:.4f}"
            band = "" if pd.isna(r.avg_bits) else f"{r.bits_min:.2f}–{r.bits_max:.2f}"
            acc = f"{100 * r.accuracy:.2f}"
            if r.seeds > 1:
                acc += f" ± {100 * r.accuracy_spread:.2f} ({r.seeds} seeds)"
            to_target = ("not reached" if r.reached == 0 else
                         f"{r.sim_s_to_target:,.1f} s (round {r.round_at_target:.0f})")
            lines.append(f"| {r.algorithm} | {bits} | {band} | {acc} | "
                         f"{r.up_per_client:,.0f} | {r.down_per_client:,.0f} | "
                         f"{r.up_ratio_vs_fedavg:.1f}× | {r.rounds:.0f} | {to_target} |")
        lines.append("")
    return "\n".join(lines)


def _load(directory: Path) -> pd.DataFrame:
    """A sweep's combined table (K from the sweep's fixed ``set`` when it is not a swept
    column), or one run's results directory (its rounds.csv, seed and K from summary.json)."""
    if not is_sweep(directory) and (directory / "summary.json").is_file():
        resolved = load_summary(directory)["resolved_scenario"]
        return load_rounds(directory).assign(
            run_id=str(directory), seed=resolved["seed"],
            **{K: resolved["training"]["clients_per_round"]})
    runs = load_sweep(directory)  # neither a sweep nor a run: its error names the directory
    fixed = sweep_description(directory).get("set", {})
    if K not in runs and K in fixed:
        runs[K] = fixed[K]
    return runs


def markdown(directories: Iterable[str | Path], target: float = 0.96) -> str:
    """Table I of the sweep and run directories combined."""
    return to_markdown(table1(pd.concat([_load(Path(d)) for d in directories]), target))

