"""What the figure modules share: axes and colours, readable units, and writing figures to
files without pyplot's global state (:mod:`sinsim.studies.plots` for a run's figures,
:mod:`sinsim.studies.sweep_plots` for a sweep's)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from sinsim.studies.units import bytes_unit, time_unit

__all__ = ["FIGSIZE", "axes", "colors", "time_unit", "bytes_unit", "figure", "check_formats",
           "save"]

FIGSIZE = (5.5, 3.6)


def axes(ax, figsize=FIGSIZE):
    """``ax``, or new axes (pyplot) when it is None: what every figure function draws on."""
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def colors(names: Iterable[str]) -> dict[str, tuple]:
    """One colour of the property cycle per name, by sorted name (stable across figures)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return {n: cycle[i % len(cycle)] for i, n in enumerate(sorted(set(names)))}


def figure(figsize=FIGSIZE, ncols: int = 1) -> tuple[Figure, list]:
    """A figure without pyplot (no global state, no GUI backend): for files only."""
    fig = Figure(figsize=figsize)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def check_formats(formats: Sequence[str]) -> None:
    """``ValueError`` unless matplotlib can write every one of ``formats`` (and there is one)."""
    supported = Figure().canvas.get_supported_filetypes()
    bad = [f for f in formats if f not in supported]
    if bad or not formats:
        raise ValueError(f"cannot write figures as {', '.join(bad) or 'nothing'}; formats: "
                         f"{', '.join(sorted(supported))}")


def save(fig: Figure, out: Path, name: str, formats: Sequence[str]) -> list[Path]:
    """``out/<name>.<format>`` for every format; returns the paths written."""
    fig.tight_layout()
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        fig.savefig(path, dpi=120)
        paths.append(path)
    return paths
