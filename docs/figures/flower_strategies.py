"""docs/flower.md's study: Flower's strategies beside fedavg and spacedml on leo_walker.

    python -m sinsim sweep sweeps/flower_strategies.yaml --workers 1
    python docs/figures/flower_strategies.py results/flower_strategies

Prints the table (markdown: the last round of each algorithm, and the round it first reached
leo_walker's target accuracy), writes docs/figures/flower_strategies.csv (every round of every
algorithm) and docs/figures/flower_strategies.png (accuracy against simulated time and against
the bytes on the wire).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from sinsim.studies.figures import figure, save
from sinsim.studies.plots import _lines, accuracy_vs_time
from sinsim.studies.tables import load_sweep

ORDER = ["fedavg", "spacedml", "flwr-fedavg", "fedprox", "fedadam", "fedyogi", "fedavgm",
         "krum", "fedmedian"]
TARGET = 0.9  # leo_walker's training.target_accuracy
COLUMNS = ["algorithm", "round", "sim_end_s", "selected", "completed", "bytes_up_cum",
           "bytes_down_cum", "test_accuracy", "test_loss", "host_wall_s"]


def markdown(runs: pd.DataFrame) -> str:
    """One row per algorithm: its last round, and its first round at the target."""
    lines = ["| algorithm | rounds | test accuracy | simulated time | first round >= "
             f"{TARGET:.0%} | bytes up | bytes down | averaged / selected | host s / round |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.groupby("algorithm", sort=False):
        r = r.sort_values("round")
        last = r.iloc[-1]
        hit = r[r.test_accuracy >= TARGET]
        first = f"{int(hit['round'].iloc[0])} ({hit.sim_end_s.iloc[0] / 3600:.0f} h)" \
            if len(hit) else "-"
        lines.append(f"| {name} | {int(last['round'])} | {last.test_accuracy:.4f} | "
                     f"{last.sim_end_s / 3600:.0f} h | {first} | {int(last.bytes_up_cum):,} | "
                     f"{int(last.bytes_down_cum):,} | "
                     f"{int(r.completed.sum())} / {int(r.selected.sum())} | "
                     f"{r.host_wall_s.mean():.1f} |")
    return "\n".join(lines)


def main(sweep_dir: str) -> None:
    runs = load_sweep(sweep_dir)
    runs = runs.assign(rank=runs.algorithm.map({a: i for i, a in enumerate(ORDER)}))
    runs = runs.sort_values(["rank", "round"]).drop(columns="rank")
    print(markdown(runs))
    here = Path(__file__).parent
    runs[COLUMNS].to_csv(here / "flower_strategies.csv", index=False)
    fig, (left, right) = figure(figsize=(11, 4), ncols=2)
    accuracy_vs_time(runs, left)
    both = runs.assign(bytes_cum=runs.bytes_up_cum + runs.bytes_down_cum)
    _lines(both, "bytes_cum", right, 1e6)
    right.set(xlabel="bytes on the wire, up + down, cumulative (MB)",
              ylabel="test accuracy", title="accuracy vs bytes")
    fig.tight_layout()
    for path in save(fig, here, "flower_strategies", ["png"]):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1])
