"""The seed paper's Table I beside sinsim's, cell by cell: per clients-per-round K and algorithm,
the paper's bit-width and accuracy, sinsim's mean bit-width and mean accuracy over the seeds with
a 95 % Student-t interval, the rounds to the target accuracy, the true bytes per device and round
and the uplink ratio against FedAvg at the same K; plus a figure of accuracy against the
cumulative bytes sent up.

    python -m sinsim table1 results/paper_table1 [MORE_DIRS...] [--out table1.md]
                            [--csv FILE.csv] [--figure FILE.png] [--target 0.96]

Reads a sweep's combined table (``python -m sinsim sweep sweeps/paper_table1.yaml`` writes it;
one row per run, algorithm and round, with ``seed`` and the swept keys) or a single run's
``rounds.csv``; several directories are combined. A (K, algorithm, seed) that more than one run
holds counts once: the first directory's (the table says so).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sinsim.studies.figures import bytes_unit, colors, figure
from sinsim.studies.tables import (
    MissingTable,
    is_sweep,
    load_rounds,
    load_summary,
    load_sweep,
    sweep_description,
)

__all__ = ["K", "PAPER_TABLE1", "t975", "per_seed", "table1", "accuracy_by_round",
           "by_round_markdown", "load", "Table1", "build",
           "to_markdown", "markdown", "plot_curves"]

K = "training.clients_per_round"

# The seed paper's Table I (Guo et al. 2021, SpaceDML, section IV "Evaluation": "TABLE I:
# Experimental results of SpaceDML with different alpha's pruning ratios", sub-tables (a), (b) and
# (c) for 3, 5 and 10 chosen devices a round; MNIST, LeNet-5, 100 IID devices, batch 10, 10 rounds
# or 96 %): (bit-width, accuracy in %) per (K, algorithm). The paper prints FedAvg's bit-width as
# 1 (its models are fp32).
PAPER_TABLE1: dict[tuple[int, str], tuple[float, float]] = {
    (3, "fedavg"): (1.0, 95.43), (3, "spacedml-0.7"): (0.8145, 97.62),
    (3, "spacedml-0.8"): (0.4131, 98.21), (3, "spacedml-0.9"): (0.3986, 97.12),
    (5, "fedavg"): (1.0, 95.88), (5, "spacedml-0.7"): (0.5402, 98.67),
    (5, "spacedml-0.8"): (0.4054, 98.26), (5, "spacedml-0.9"): (0.4247, 96.38),
    (10, "fedavg"): (1.0, 96.10), (10, "spacedml-0.7"): (0.5011, 98.46),
    (10, "spacedml-0.8"): (0.5109, 97.29), (10, "spacedml-0.9"): (0.4209, 97.84),
}
PAPER_ORDER = ("fedavg", "spacedml-0.7", "spacedml-0.8", "spacedml-0.9")
SUBTABLE = {3: "(a)", 5: "(b)", 10: "(c)"}

# Student's t, the 0.975 quantile for 1..30 degrees of freedom (4 decimals, as tabulated)
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
Z975 = 1.959963984540054


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom: the table up to 30, then
    the Cornish-Fisher expansion around the normal quantile (within 1e-5 of the exact value)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def _interval(values: pd.Series) -> tuple[float, float, float]:
    """Mean, sample standard deviation and the half width of the 95 % Student-t interval
    (t_{0.975, n-1} s / sqrt(n)); the last two NaN for a single value."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan, math.nan
    sd = float(np.std(v, ddof=1))
    return float(v.mean()), sd, t975(len(v) - 1) * sd / math.sqrt(len(v))


def _first_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Only the first run (in row order) of each (K, algorithm, seed), and a note for each one
    held more than once."""
    unit_cols = [c for c in ("source", "run_id") if c in runs]
    if not unit_cols or runs.empty:
        return runs, []
    unit = runs[unit_cols].astype(str).agg(" | ".join, axis=1)
    first = unit.groupby([runs[K], runs["algorithm"], runs["seed"]]).transform("first")
    extra = runs[unit != first]
    notes = [f"K = {k}, {a}, seed {s}: in more than one run; the first directory's counts"
             for k, a, s in sorted(set(extra[[K, "algorithm", "seed"]].itertuples(index=False)))]
    return runs[unit == first], notes


def per_seed(runs: pd.DataFrame, target: float = 0.96) -> pd.DataFrame:
    """One row per (K, algorithm, seed): the last round's bit-width and accuracy, the range of
    the bits over the rounds, the mean bytes per device and round each way (up: per device that
    delivered; down: per device selected), rounds run, and the first round and simulated time
    at which the accuracy reached ``target``."""
    rows = []
    for (k, alg, seed), r in runs.groupby([K, "algorithm", "seed"], sort=True):
        r = r.sort_values("round")
        last = r.iloc[-1]
        hit = r[r.test_accuracy >= target]
        rows.append({
            "K": k, "algorithm": alg, "seed": seed,
            "bits": last.avg_bits, "bits_min": r.avg_bits.min(), "bits_max": r.avg_bits.max(),
            "accuracy_pct": 100 * last.test_accuracy,
            "up_per_client": (r.bytes_up / r.completed.where(r.completed > 0)).mean(),
            "down_per_client": (r.bytes_down / r.selected.where(r.selected > 0)).mean(),
            "rounds": len(r),
            "round_at_target": hit["round"].iloc[0] if len(hit) else math.nan,
            "sim_s_to_target": hit.sim_end_s.iloc[0] if len(hit) else math.nan,
        })
    return pd.DataFrame(rows)


def accuracy_by_round(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (%) per (K, algorithm) and round: the mean over the seeds that ran the round
    (``mean``), how many did (``n``) and how many seeds the cell has in all (``seeds``). Runs stop
    at the target, so the last rounds' accuracies say little alone; a round that every seed ran
    compares algorithms at equal rounds."""
    runs, _ = _first_runs(runs)
    if runs.empty:
        return pd.DataFrame(columns=["K", "algorithm", "round", "mean", "n", "seeds"])
    g = runs.groupby([K, "algorithm", "round"], sort=True).test_accuracy
    out = pd.DataFrame({"mean": 100 * g.mean(), "n": g.count()}).reset_index()
    seeds = runs.groupby([K, "algorithm"]).seed.nunique().rename("seeds")
    out = out.join(seeds, on=[K, "algorithm"]).rename(columns={K: "K"})
    order = sorted(range(len(out)), key=lambda i: (_row_order(out.K.iloc[i],
                                                              out.algorithm.iloc[i]),
                                                   out["round"].iloc[i]))
    return out.iloc[order].reset_index(drop=True)


def by_round_markdown(t: pd.DataFrame) -> str:
    """:func:`accuracy_by_round` as one Markdown table: a row per (K, algorithm), a column per
    round; a cell that fewer than all the seeds ran shows how many, "–" where none did."""
    if t.empty:
        return ""
    last = int(t["round"].max())
    lines = ["| K | config | " + " | ".join(f"round {r}" for r in range(1, last + 1)) + " |",
             "|---|---|" + "---|" * last]
    for (k, alg), g in t.groupby(["K", "algorithm"], sort=False):
        cells = {int(r["round"]): r for _, r in g.iterrows()}
        row = []
        for rnd in range(1, last + 1):
            c = cells.get(rnd)
            row.append("–" if c is None else f"{c['mean']:.2f}" +
                       ("" if c.n == c.seeds else f" ({c.n} of {c.seeds})"))
        lines.append(f"| {k} | {alg} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _row_order(k: int, alg: str) -> tuple:
    """The paper's rows first, in its order; then FedAvg with SpaceDML's compute; then the rest."""
    if alg in PAPER_ORDER:
        return (k, 0, PAPER_ORDER.index(alg), alg)
    return (k, 1 if alg == "fedavg-equal" else 2, 0, alg)


def table1(runs: pd.DataFrame, target: float = 0.96) -> pd.DataFrame:
    """One row per (K, algorithm): the paper's bit-width and accuracy where it has the cell, and
    sinsim's over the seeds: n, mean bit-width (last round) and the range over all rounds, mean
    accuracy (last round, %) with its standard deviation and 95 % Student-t interval, mean rounds
    run, how many seeds reached ``target`` and the mean round and simulated time at which they
    did, the mean bytes per device and round each way, and FedAvg's bytes up at the same K over
    the row's (``up_ratio_vs_fedavg``)."""
    runs, _ = _first_runs(runs)
    seeds = per_seed(runs, target)
    rows = []
    for (k, alg), s in seeds.groupby(["K", "algorithm"], sort=False):
        paper = PAPER_TABLE1.get((int(k), str(alg)), (math.nan, math.nan))
        mean, sd, half = _interval(s.accuracy_pct)
        reached = s[s.round_at_target.notna()]
        rows.append({
            "K": k, "algorithm": alg, "paper_bits": paper[0], "paper_accuracy_pct": paper[1],
            "n": len(s), "seeds": " ".join(str(x) for x in sorted(s.seed)),
            "bits": s.bits.mean(), "bits_min": s.bits_min.min(), "bits_max": s.bits_max.max(),
            "accuracy_pct": mean, "accuracy_sd_pct": sd, "accuracy_ci95_pct": half,
            "accuracy_lo_pct": mean - half, "accuracy_hi_pct": mean + half,
            "accuracy_vs_paper_pts": mean - paper[1],
            "rounds": s.rounds.mean(), "reached": len(reached),
            "round_at_target": reached.round_at_target.mean(),
            "sim_s_to_target": reached.sim_s_to_target.mean(),
            "up_per_client": s.up_per_client.mean(), "down_per_client": s.down_per_client.mean(),
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out = out.iloc[sorted(range(len(out)), key=lambda i: _row_order(out.K.iloc[i],
                                                                     out.algorithm.iloc[i]))]
    fed = out[out.algorithm == "fedavg"].set_index("K").up_per_client
    out["up_ratio_vs_fedavg"] = out.K.map(fed) / out.up_per_client
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------ reading runs
def _k_from_summaries(directory: Path, runs: pd.DataFrame) -> pd.Series:
    """K per row from each run's summary.json (a sweep that neither sweeps nor sets it)."""
    ks = {}
    for run_id in runs.run_id.unique():
        resolved = load_summary(directory / "runs" / str(run_id))["resolved_scenario"]
        ks[run_id] = resolved["training"]["clients_per_round"]
    return runs.run_id.map(ks)


def _load_one(directory: Path) -> pd.DataFrame:
    """A sweep's combined table (K from the swept column, else the sweep's fixed ``set``, else
    each run's summary.json), or one run's results directory (its rounds.csv, seed and K from
    summary.json)."""
    if not is_sweep(directory) and (directory / "summary.json").is_file():
        resolved = load_summary(directory)["resolved_scenario"]
        return load_rounds(directory).assign(
            run_id=str(directory), seed=resolved["seed"],
            **{K: resolved["training"]["clients_per_round"]})
    runs = load_sweep(directory)  # neither a sweep nor a run: its error names the directory
    fixed = sweep_description(directory).get("set", {})
    if K not in runs and K in fixed:
        runs[K] = fixed[K]
    elif K not in runs and len(runs):
        runs[K] = _k_from_summaries(directory, runs)
    return runs


def _datasets(directory: Path, runs: pd.DataFrame) -> set[str]:
    """The data sets the runs of ``directory`` trained on, as their summary.json names them."""
    dirs = ([directory] if not is_sweep(directory) else
            [directory / "runs" / str(r) for r in runs.run_id.unique()])
    found = set()
    for d in dirs:
        try:
            ds = json.loads((d / "summary.json").read_text(encoding="utf-8")).get("dataset") or {}
        except (OSError, ValueError):
            continue
        sizes = (f" ({ds['n_train']:,} train / {ds['n_test']:,} test)"
                 if "n_train" in ds and "n_test" in ds else "")
        found.add(f"{ds.get('name', '?')}{sizes}")
    return found


def load(directories: Iterable[str | Path]) -> tuple[pd.DataFrame, set[str]]:
    """The rows of every directory combined (a ``source`` column names the directory), and the
    data sets they trained on."""
    frames, datasets = [], set()
    for d in directories:
        runs = _load_one(Path(d))
        if runs.empty:
            raise MissingTable(f"{d}: no finished runs in its table (has the sweep run?)")
        datasets |= _datasets(Path(d), runs)
        frames.append(runs.assign(source=str(d)))
    return pd.concat(frames, ignore_index=True), datasets


# ------------------------------------------------------------------------------ the outputs
@dataclass
class Table1:
    """Table I of some runs: the table (one row per K and algorithm), the rows it was made from
    (for the figure), notes (runs counted once) and the data sets they used."""

    table: pd.DataFrame
    runs: pd.DataFrame
    target: float = 0.96
    notes: list[str] = field(default_factory=list)
    datasets: set[str] = field(default_factory=set)

    def markdown(self) -> str:
        text = to_markdown(self.table, self.target, self.notes, self.datasets)
        rounds = by_round_markdown(accuracy_by_round(self.runs))
        if rounds:
            text += ("\n**Test accuracy (%) by round**, mean over the seeds that ran the round "
                     "(runs stop at the target):\n\n" + rounds)
        return text

    def write_csv(self, path: str | Path) -> None:
        self.table.to_csv(path, index=False, float_format="%.10g")

    def plot(self, path: str | Path) -> None:
        plot_curves(self.runs, path, self.target)


def build(directories: Iterable[str | Path], target: float = 0.96) -> Table1:
    """Table I of the sweep and run directories combined."""
    runs, datasets = load(directories)
    first, notes = _first_runs(runs)
    return Table1(table1(first, target), first, target, notes, datasets)


def markdown(directories: Iterable[str | Path], target: float = 0.96) -> str:
    """Table I of the sweep and run directories combined, as Markdown."""
    return build(directories, target).markdown()


def _rounds_to_target(r: pd.Series) -> str:
    if r.reached == 0:
        return f"not reached (0 of {r.n})"
    mean = f"{r.round_at_target:.1f}".removesuffix(".0")
    return f"{mean} ({r.reached} of {r.n})"


def to_markdown(t: pd.DataFrame, target: float = 0.96, notes: Sequence[str] = (),
                datasets: Iterable[str] = ()) -> str:
    """One block per K, the paper's cells beside sinsim's, then what the columns mean."""
    pct = f"{100 * target:g} %"
    lines = []
    for k, g in t.groupby("K", sort=False):
        sub = SUBTABLE.get(int(k))
        lines += [f"**K = {k} devices a round**" + (f" (the paper's Table I {sub})" if sub
                                                    else " (not in the paper)"), "",
                  "| config | bits, paper | bits, sinsim | bits, every round | acc. %, paper "
                  "| acc. %, sinsim (95 % CI) | n | rounds to " + pct + " | bytes up / device·round "
                  "| up ratio vs FedAvg | bytes down / device·round |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in g.iterrows():
            paper_bits = "–" if pd.isna(r.paper_bits) else f"{r.paper_bits:g}"
            paper_acc = "–" if pd.isna(r.paper_accuracy_pct) else f"{r.paper_accuracy_pct:.2f}"
            bits = "32 (fp32)" if pd.isna(r.bits) else f"{r.bits:.4f}"
            band = "" if pd.isna(r.bits) else f"{r.bits_min:.2f}–{r.bits_max:.2f}"
            acc = f"{r.accuracy_pct:.2f}"
            if not pd.isna(r.accuracy_ci95_pct):
                acc += f" ± {r.accuracy_ci95_pct:.2f}"
            ratio = "–" if pd.isna(r.up_ratio_vs_fedavg) else f"{r.up_ratio_vs_fedavg:.1f}×"
            lines.append(f"| {r.algorithm} | {paper_bits} | {bits} | {band} | {paper_acc} | "
                         f"{acc} | {r.n} | {_rounds_to_target(r)} | {r.up_per_client:,.0f} | "
                         f"{ratio} | {r.down_per_client:,.0f} |")
        lines.append("")
    data = ", ".join(sorted(datasets)) or "not recorded"
    lines += [
        "Paper: Guo et al. 2021 (SpaceDML), Table I (a)–(c), on MNIST (60,000 train / 10,000 "
        "test); it prints FedAvg's bit-width as 1. `fedavg-equal` (FedAvg with SpaceDML's local "
        f"compute) is not in the paper. sinsim's data: {data}.",
        "",
        "sinsim: the last round of each run (the round that reached the target where the run "
        "stopped there), mean over the n seeds; ± is the 95 % Student-t interval "
        "t(0.975, n−1)·s/√n (none for n = 1). Rounds to " + pct + ": the mean over the seeds "
        "that reached it (how many of n). Bytes per device and round as encoded (`len(payload)`: "
        "up per device that delivered, down per device selected); up ratio: FedAvg's bytes up at "
        "the same K over the row's.",
    ]
    lines += [line for n in notes for line in ("", f"Note: {n}.")]
    return "\n".join(lines) + "\n"


def plot_curves(runs: pd.DataFrame, path: str | Path, target: float = 0.96) -> Path:
    """Test accuracy against the cumulative bytes sent up (all devices, log scale), one panel per
    K (a shared accuracy axis), one colour per algorithm, one line per seed (a marker per
    round); the target dotted."""
    from matplotlib.lines import Line2D

    ks = sorted(runs[K].unique())
    fig, axs = figure(figsize=(4.2 * max(len(ks), 1), 3.6), ncols=max(len(ks), 1))
    algs = sorted(runs.algorithm.unique(), key=lambda a: _row_order(0, a))
    colour = colors(algs)
    div, unit = bytes_unit(float(runs.bytes_up_cum.max()) if len(runs) else 1.0)
    for ax, k in zip(axs, ks, strict=False):
        at_k = runs[runs[K] == k]
        for alg in algs:
            for _, r in at_k[at_k.algorithm == alg].groupby("seed", sort=True):
                r = r.sort_values("round")
                ax.plot(r.bytes_up_cum / div, 100 * r.test_accuracy, marker=".", lw=1,
                        color=colour[alg], alpha=0.8)
        ax.axhline(100 * target, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_title(f"K = {k} devices a round")
        ax.set_xlabel(f"bytes up, cumulative, all devices ({unit})")
        ax.grid(True, which="both", alpha=0.3)
    lo = min(ax.dataLim.y0 for ax in axs)
    hi = max(ax.dataLim.y1 for ax in axs)
    for ax in axs if np.isfinite([lo, hi]).all() and hi > lo else ():  # one scale for every K
        ax.set_ylim(lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
    axs[0].set_ylabel("test accuracy (%)")
    handles = [Line2D([], [], color=colour[a], marker=".", lw=1, label=a) for a in algs]
    handles.append(Line2D([], [], color="grey", ls=":", lw=1, label=f"{100 * target:g} %"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize="small",
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return Path(path)
