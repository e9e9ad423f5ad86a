"""The README's relaying figure and table: scenarios/leo_isl.yaml relayed against direct.

    python -m sinsim scenarios/leo_isl.yaml --out results/leo_isl_relay
    python -m sinsim scenarios/leo_isl.yaml --set links.routing=direct --out results/leo_isl_direct
    python docs/figures/relay_vs_direct.py results/leo_isl_relay results/leo_isl_direct

Prints the comparison table (markdown) and writes docs/figures/relay_vs_direct.png: accuracy
against simulated time (log scale) and where an averaged client's round time goes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sinsim.studies.analysis import round_time_breakdown
from sinsim.studies.figures import figure, save
from sinsim.studies.plots import accuracy_vs_time
from sinsim.studies.tables import load_table


def tables(relay_dir: str, direct_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rounds, breakdown = [], []
    for routing, d in (("relay", relay_dir), ("direct", direct_dir)):
        r = load_table(d, "rounds")
        rounds.append(r.assign(algorithm=r.algorithm + " " + routing))
        b = round_time_breakdown(d)
        breakdown.append(b.assign(algorithm=b.algorithm + " " + routing))
    return pd.concat(rounds, ignore_index=True), pd.concat(breakdown, ignore_index=True)


def markdown(rounds: pd.DataFrame, breakdown: pd.DataFrame) -> str:
    lines = ["| 10 rounds | test accuracy | simulated time | averaged / selected | mean wait / "
             "transmit per averaged client and round | bytes up (end to end) | bytes up over "
             "all hops |", "|---|---|---|---|---|---|---|"]
    for name, r in rounds.groupby("algorithm", sort=False):
        last = r.sort_values("round").iloc[-1]
        b = breakdown[breakdown.algorithm == name]
        lines.append(
            f"| {name} | {last.test_accuracy:.4f} | {last.sim_end_s / 3600:.2f} h | "
            f"{r.completed.sum()} / {r.selected.sum()} | {np.nanmean(b.wait_s):,.1f} s / "
            f"{np.nanmean(b.transmit_s):.2f} s | {r.bytes_up.sum():,} | "
            f"{r.bytes_up_hops.sum():,} |")
    return "\n".join(lines)


def main(relay_dir: str, direct_dir: str) -> None:
    rounds, breakdown = tables(relay_dir, direct_dir)
    print(markdown(rounds, breakdown))
    fig, (left, right) = figure(figsize=(11, 4), ncols=2)
    accuracy_vs_time(rounds, left)
    left.set_xscale("log")
    mean = breakdown.groupby("algorithm", sort=False)[["wait_s", "transmit_s",
                                                       "compute_s"]].mean()
    bottom = np.zeros(len(mean))
    for part, label, color in (("wait_s", "waiting (pass, queue)", "#bdbdbd"),
                               ("transmit_s", "transmitting (all hops)", "#3182bd"),
                               ("compute_s", "computing", "#e6550d")):
        right.barh(mean.index, mean[part], left=bottom, color=color, label=label)
        bottom += mean[part].to_numpy()
    right.set_xscale("log")
    right.set_xlim(0.1, 3 * bottom.max())
    right.set(xlabel="mean seconds per averaged client and round (log)",
              title="where a round's time goes")
    right.legend(fontsize="small")
    fig.tight_layout()
    for path in save(fig, Path(__file__).parent, "relay_vs_direct", ["png"]):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
