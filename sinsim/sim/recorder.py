"""Rows in, tables out: the results directory of one run.

Rows are appended to ``rounds.csv``, ``transfers.csv``, ``hops.csv`` and ``clients.csv`` as each round
finishes (each table's rows of the round in one write, then flushed), so a run that fails
half-way leaves every finished round on disk. ``summary.json`` is written at the end, also when
the run failed (with ``"status": "failed"``), atomically (a temporary file renamed over it).

Resuming (``--resume``, ``sinsim.sim.checkpoint``): the recorder is opened with the row counts
of the last checkpoint; rows written after it (a round that finished but was not checkpointed,
or a torn last line) are cut off, and the tables are appended to from there.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# the contract's columns first; staleness_mean / staleness_max (asynchronous servers, over the
# updates applied in the version; empty for synchronous ones) follow
ROUND_COLUMNS = (
    "algorithm", "round", "sim_start_s", "sim_end_s", "round_duration_s", "selected",
    "completed", "dropped", "bytes_up", "bytes_down", "bytes_up_cum", "bytes_down_cum",
    "avg_bits", "test_accuracy", "test_loss", "host_wall_s", "staleness_mean", "staleness_max",
    "bytes_up_hops", "bytes_down_hops", "bytes_plane",
)
# the contract's columns first; bytes_sent (bits on the air incl. restarts, / 8) and wait_s
# (time not transmitting: waiting for a pass or paused) follow
TRANSFER_COLUMNS = (
    "algorithm", "round", "client", "direction", "bytes", "start_s", "end_s", "status", "pauses",
    "mean_rate_bps", "bytes_sent", "wait_s", "hops", "route", "bytes_hops",
)
# one row per selected client and round: what it did and when
CLIENT_COLUMNS = (
    "algorithm", "round", "client", "n_samples", "down_status", "compute_start_s", "compute_s",
    "up_status", "arrived_s", "aggregated",
)


# one row per hop of every transfer (direct routes: one hop each)
HOP_COLUMNS = (
    "algorithm", "round", "client", "direction", "hop", "from", "to", "start_s", "end_s",
    "bytes", "status",
)


# with ``power:``, one row per selected satellite and round: its battery in that round
POWER_COLUMNS = (
    "algorithm", "round", "node", "energy_compute_j", "energy_tx_j", "energy_rx_j", "min_soc",
    "waited_for_power_s",
)

TABLES = {"rounds": ROUND_COLUMNS, "transfers": TRANSFER_COLUMNS, "clients": CLIENT_COLUMNS,
          "hops": HOP_COLUMNS}
OPTIONAL_TABLES = {"power": POWER_COLUMNS}


class Recorder:
    """Writes a run's tables. ``resume_counts`` (rows per table at the last checkpoint): keep
    those rows and append; None: start the tables afresh."""

    def __init__(self, out_dir: str | Path, resume_counts: Mapping[str, int] | None = None,
                 optional: Sequence[str] = ()):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._files = {}
        self.tables = {**TABLES, **{name: OPTIONAL_TABLES[name] for name in optional}}
        self.counts = {name: 0 for name in self.tables}
        for name, cols in self.tables.items():
            path = self.out_dir / f"{name}.csv"
            if resume_counts is not None:
                self.counts[name] = _truncate_rows(path, resume_counts[name], cols)
                f = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115
            else:
                f = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
                f.write(",".join(cols) + "\n")
                f.flush()
            self._files[name] = f

    def write_round(self, round_row: dict[str, Any], transfers: Sequence[dict[str, Any]],
                    clients: Sequence[dict[str, Any]],
                    hops: Sequence[dict[str, Any]] = (),
                    power: Sequence[dict[str, Any]] = ()) -> None:
        """Append one finished round (every table) and flush it to disk."""
        for name, rows in (("transfers", transfers), ("hops", hops), ("clients", clients),
                           ("power", power), ("rounds", [round_row])):
            if name not in self.tables:
                assert not rows, f"{name} rows but no {name} table"
                continue
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=self.tables[name], lineterminator="\n")
            for row in rows:
                w.writerow({k: _fmt(row.get(k)) for k in w.fieldnames})
            self._files[name].write(buf.getvalue())  # one write: no half rows from this round
            self._files[name].flush()
            self.counts[name] += len(rows)

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        path = self.out_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _truncate_rows(path: Path, n_rows: int, columns: Sequence[str]) -> int:
    """Keep the header and the first ``n_rows`` rows of a table written by a Recorder."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        lines = []
    header = ",".join(columns)
    if not lines or lines[0] != header or len(lines) - 1 < n_rows:
        raise ValueError(f"{path} does not hold the {n_rows} rows its checkpoint counts")
    path.write_text("\n".join([header, *lines[1:n_rows + 1]]) + "\n", encoding="utf-8")
    return n_rows


def _fmt(value: Any) -> Any:
    """CSV cells: floats in full precision (repr), NaN/None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value
