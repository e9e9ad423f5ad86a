"""The SpaceDML fidelity ablation as a table: per variant, the bit-width of every round (is it in
the seed's band, does it decline?), the accuracy at the end and over the last rounds, and the
true bytes per client each way.

    python -m sinsim fidelity results/fidelity_ablation [more sweep dirs...]

Reads only the combined table of each sweep directory (``python -m sinsim sweep
sweeps/fidelity_ablation.yaml`` writes it); docs/fidelity.md shows the output.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sinsim.studies.tables import load_sweep

BAND = (0.4, 0.8)  # the seed's bit-widths at pruning ratios 0.7-0.9 (Table I)


def ablation(runs: pd.DataFrame, last: int = 3) -> pd.DataFrame:
    """One row per (data set, K, algorithm), means over seeds: bits per round, their range and
    trend (last round minus first), final accuracy and the mean of the ``last`` rounds, bytes
    per client per round each way."""
    rows = []
    keys = [k for k in ("training.dataset", "training.clients_per_round") if k in runs]
    for key, g in runs.groupby([*keys, "algorithm"], sort=False):
        per_seed = []
        for _, r in g.groupby("seed"):
            r = r.sort_values("round")
            bits = r.avg_bits.tolist()
            per_seed.append({
                "bits": bits, "final_accuracy": r.test_accuracy.iloc[-1],
                "last_accuracy": r.test_accuracy.iloc[-last:].mean(),
                "up_per_client": (r.bytes_up / r.completed.where(r.completed > 0)).mean(),
                "down_per_client": (r.bytes_down / r.selected).mean(), "rounds": len(r)})
        s = pd.DataFrame(per_seed)
        bits = pd.DataFrame(s.bits.tolist()).mean().tolist()
        quantized = not pd.isna(bits[0])
        rows.append({**dict(zip([*keys, "algorithm"], key)), "seeds": len(s),
                     "bits_per_round": bits if quantized else None,
                     "bits_min": min(bits) if quantized else None,
                     "bits_max": max(bits) if quantized else None,
                     "bits_trend": bits[-1] - bits[0] if quantized else None,
                     "in_band": (BAND[0] <= min(bits) and max(bits) <= BAND[1]) if quantized
                     else None,
                     **s.drop(columns="bits").mean(numeric_only=True).to_dict()})
    return pd.DataFrame(rows)


def to_markdown(t: pd.DataFrame) -> str:
    head = ["algorithm", "bits per round", "in band", "trend", "final acc. (%)",
            "last 3 (%)", "bytes up / client", "bytes down / client"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in t.iterrows():
        if r.bits_per_round is None:
            bits, band, trend = "32 (fp32)", "", ""
        else:
            bits = " ".join(f"{b:.2f}" for b in r.bits_per_round)
            band, trend = ("yes" if r.in_band else "no"), f"{r.bits_trend:+.2f}"
        lines.append(f"| {r.algorithm} | {bits} | {band} | {trend} | "
                     f"{100 * r.final_accuracy:.2f} | {100 * r.last_accuracy:.2f} | "
                     f"{r.up_per_client:,.0f} | {r.down_per_client:,.0f} |")
    return "\n".join(lines)


def markdown(sweep_dirs: Iterable[str | Path]) -> str:
    """The ablation table of every sweep directory, one markdown section each."""
    tables = [(d, ablation(load_sweep(d))) for d in sweep_dirs]  # every table read, then text
    return "\n".join(f"### {d}\n\n{to_markdown(t)}\n" for d, t in tables)

