"""The README's algorithms figure and table: sweeps/algorithms.yaml's runs side by side.

    python -m sinsim sweep sweeps/algorithms.yaml
    python docs/figures/algorithms.py results/algorithms

Prints the comparison table (markdown: the last round of each algorithm) and writes
docs/figures/algorithms.png: accuracy against simulated time and against the bytes on the wire
(both directions, end to end; hierfl's crosslink bytes in the table).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from sinsim.studies.figures import figure, save
from sinsim.studies.plots import _lines, accuracy_vs_time
from sinsim.studies.tables import load_sweep


def last_rows(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.sort_values("round").groupby("algorithm", sort=False).tail(1)


def markdown(runs: pd.DataFrame) -> str:
    lines = ["| algorithm | rounds / versions | test accuracy | simulated time | bytes up | "
             "bytes down | bytes over crosslinks | averaged / selected |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in runs.groupby("algorithm", sort=False):
        last = r.sort_values("round").iloc[-1]
        plane = r.bytes_plane.sum() if "bytes_plane" in r and r.bytes_plane.notna().any() \
            else 0
        lines.append(f"| {name} | {int(last['round'])} | {last.test_accuracy:.4f} | "
                     f"{last.sim_end_s / 3600:.1f} h | {int(last.bytes_up_cum):,} | "
                     f"{int(last.bytes_down_cum):,} | {int(plane):,} | "
                     f"{int(r.completed.sum())} / {int(r.selected.sum())} |")
    return "\n".join(lines)


def main(sweep_dir: str) -> None:
    runs = load_sweep(sweep_dir)
    order = ["fedavg", "spacedml", "topk-1pc", "qsgd-4", "hierfl", "fedasync", "fedbuff"]
    runs = runs.assign(rank=runs.algorithm.map({a: i for i, a in enumerate(order)}))
    runs = runs.sort_values(["rank", "round"]).drop(columns="rank")
    print(markdown(runs))
    fig, (left, right) = figure(figsize=(11, 4), ncols=2)
    accuracy_vs_time(runs, left)
    left.set_xscale("log")
    both = runs.assign(bytes_cum=runs.bytes_up_cum + runs.bytes_down_cum)
    _lines(both, "bytes_cum", right, 1e6)
    right.set_xscale("log")
    right.set(xlabel="bytes on the wire, up + down, cumulative (MB, log)",
              ylabel="test accuracy", title="accuracy vs bytes")
    fig.tight_layout()
    for path in save(fig, Path(__file__).parent, "algorithms", ["png"]):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1])
