"""Rows in, tables out: the results directory of one run.

Rows are appended to ``rounds.csv``, ``transfers.csv`` and ``clients.csv`` as each round
finishes (and flushed), so a run that fails half-way leaves every finished round on disk.
``summary.json`` is written at the end, also when the run failed (with ``"status": "failed"``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROUND_COLUMNS = (
    "algorithm", "round", "sim_start_s", "sim_end_s", "round_duration_s", "selected",
    "completed", "dropped", "bytes_up", "bytes_down", "bytes_up_cum", "bytes_down_cum",
    "avg_bits", "test_accuracy", "test_loss", "host_wall_s",
)
# the contract's columns first; bytes_sent (bits on the air incl. restarts, / 8) and wait_s
# (time not transmitting: waiting for a pass or paused) follow
TRANSFER_COLUMNS = (
    "algorithm", "round", "client", "direction", "bytes", "start_s", "end_s", "status", "pauses",
    "mean_rate_bps", "bytes_sent", "wait_s",
)
# one row per selected client and round: what it did and when
CLIENT_COLUMNS = (
    "algorithm", "round", "client", "n_samples", "down_status", "compute_start_s", "compute_s",
    "up_status", "arrived_s", "aggregated",
)


class Recorder:
    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._files = {}
        self._writers = {}
        for name, cols in (("rounds", ROUND_COLUMNS), ("transfers", TRANSFER_COLUMNS),
                           ("clients", CLIENT_COLUMNS)):
            f = open(self.out_dir / f"{name}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
            w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
            w.writeheader()
            f.flush()
            self._files[name], self._writers[name] = f, w

    def write_round(self, round_row: dict[str, Any], transfers: Sequence[dict[str, Any]],
                    clients: Sequence[dict[str, Any]]) -> None:
        """Append one finished round (all three tables) and flush it to disk."""
        for name, rows in (("transfers", transfers), ("clients", clients),
                           ("rounds", [round_row])):
            w = self._writers[name]
            for row in rows:
                w.writerow({k: _fmt(row.get(k)) for k in w.fieldnames})
            self._files[name].flush()

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        path = self.out_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _fmt(value: Any) -> Any:
    """CSV cells: floats in full precision (repr), NaN/None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value
