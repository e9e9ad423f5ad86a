"""The README's radio-defaults table: leo_walker on the DVB-S2 / command-link defaults against
the same scenario on the Shannon defaults sinsim had before (profiles ``legacy_*``).

    python -m sinsim scenarios/leo_walker.yaml --out results/leo_walker
    python -m sinsim scenarios/leo_walker.yaml --out results/leo_walker_legacy \\
        --set links.uplink.profile=legacy_xband_shannon \\
        --set links.downlink.profile=legacy_sband_shannon
    python docs/figures/radio_defaults.py results/leo_walker results/leo_walker_legacy

Prints a markdown table: per algorithm and radio set, accuracy, simulated time, averaged /
selected clients, the mean time on the air of a delivered upload and download (and its mean
rate), and the mean wait / transmit per averaged client and round.
"""

from __future__ import annotations

import sys

import pandas as pd

from sinsim.studies.analysis import round_time_breakdown
from sinsim.studies.tables import load_table


def rows(results_dir: str, radios: str) -> list[str]:
    rounds = load_table(results_dir, "rounds")
    transfers = load_table(results_dir, "transfers")
    breakdown = round_time_breakdown(results_dir)
    delivered = transfers[transfers.status == "delivered"]
    air_s = delivered.end_s - delivered.start_s - delivered.wait_s
    delivered = delivered.assign(air_s=air_s)
    out = []
    for algorithm, r in rounds.groupby("algorithm", sort=False):
        last = r.sort_values("round").iloc[-1]
        d = delivered[delivered.algorithm == algorithm]
        cells = [f"{algorithm}", radios, f"{last.test_accuracy:.4f}",
                 f"{r.round_duration_s.sum() / 3600:.2f} h",
                 f"{int(r.completed.sum())} / {int(r.selected.sum())}"]
        for direction in ("up", "down"):
            x = d[d.direction == direction]
            cells.append(f"{x.air_s.mean():.2f} s at {x.mean_rate_bps.mean() / 1e6:.3g} Mbit/s"
                         if len(x) else "-")
        b = breakdown[breakdown.algorithm == algorithm]
        cells.append(f"{b.wait_s.mean():,.1f} s / {b.transmit_s.mean():.2f} s")
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(new_dir: str, legacy_dir: str) -> None:
    print("| algorithm | radios | test accuracy | simulated time | averaged / selected | "
          "delivered upload on the air | delivered download on the air | mean wait / transmit "
          "per averaged client and round |")
    print("|---|---|---|---|---|---|---|---|")
    lines = rows(new_dir, "DVB-S2 X-band / 250 kbit/s S-band") + rows(
        legacy_dir, "Shannon (before)")
    for line in sorted(lines, key=lambda s: s.split("|")[1]):
        print(line)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pd.set_option("display.width", 200)
    main(sys.argv[1], sys.argv[2])
