"""Standard figures of a results directory. Reads only the output tables (never the simulator).

    python -m sinsim plot results/leo_walker
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; notebooks switch back to their inline backend themselves
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def load_rounds(results_dir: str | Path) -> pd.DataFrame:
    path = Path(results_dir) / "rounds.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no rounds.csv (is this a sinsim results directory?)")
    return pd.read_csv(path)


def accuracy_vs_bytes(rounds: pd.DataFrame, ax=None):
    """Test accuracy against cumulative uplink bytes, one line per algorithm."""
    ax = ax or plt.figure(figsize=(5, 3.5)).gca()
    for name, r in rounds.groupby("algorithm"):
        ax.plot(r.bytes_up_cum / 1e6, r.test_accuracy, marker="o", label=name)
    ax.set(xlabel="uplink bytes, cumulative (MB)", ylabel="test accuracy",
           title="accuracy vs bandwidth")
    ax.legend()
    return ax


def accuracy_vs_time(rounds: pd.DataFrame, ax=None):
    """Test accuracy against simulated SIN time (hours), one line per algorithm."""
    ax = ax or plt.figure(figsize=(5, 3.5)).gca()
    for name, r in rounds.groupby("algorithm"):
        ax.plot(r.sim_end_s / 3600, r.test_accuracy, marker="o", label=name)
    ax.set(xlabel="simulated time (h)", ylabel="test accuracy", title="accuracy vs SIN time")
    ax.legend()
    return ax


def round_durations(rounds: pd.DataFrame, ax=None):
    """Simulated duration of every round, one bar group per algorithm."""
    ax = ax or plt.figure(figsize=(5, 3.5)).gca()
    table = rounds.pivot(index="round", columns="algorithm", values="round_duration_s") / 60
    table.plot.bar(ax=ax)
    ax.set(xlabel="round", ylabel="duration (min)", title="simulated round duration")
    return ax


FIGURES = {"accuracy_vs_bytes": accuracy_vs_bytes, "accuracy_vs_time": accuracy_vs_time,
           "round_durations": round_durations}


def plot_results(results_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write every standard figure as PNG into ``out_dir`` (default ``results_dir/figures``)."""
    rounds = load_rounds(results_dir)
    out = Path(out_dir) if out_dir else Path(results_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        ax = draw(rounds)
        ax.figure.tight_layout()
        path = out / f"{name}.png"
        ax.figure.savefig(path, dpi=120)
        plt.close(ax.figure)
        written.append(path)
    return written
