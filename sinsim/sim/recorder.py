"""Rows in, tables out: the results directory of one run.

Rows are appended to ``rounds.csv``, ``transfers.csv``, ``hops.csv`` and ``clients.csv`` as each round
finishes (each table's rows of the round in one unbuffered write), so a run that fails half-way
leaves every finished round on disk. ``summary.json`` is written at the end, also when the run
failed (with ``"status": "failed"``), atomically (a temporary file renamed over it).

A write that fails (no space left, a read-only filesystem, a table removed or replaced under
the run: checked before every round's rows) raises ``WriteFailed`` naming the file, after
cutting every table back to its end before the round: the finished rounds' rows stay intact
and parseable, and ``--resume`` continues once the disk is back.

Resuming (``--resume``, ``sinsim.sim.checkpoint``): the recorder is opened with the row counts
of the last checkpoint; rows written after it (a round that finished but was not checkpointed,
or a torn last line) are cut off, and the tables are appended to from there.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sinsim.errors import ConfigError, WriteFailed

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
        self._files: dict[str, io.FileIO] = {}
        self._ids: dict[str, tuple[int, int]] = {}  # (device, inode) of each open table
        self.tables = {**TABLES, **{name: OPTIONAL_TABLES[name] for name in optional}}
        self.counts = {name: 0 for name in self.tables}
        with _failed_write(self.out_dir):
            self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, cols in self.tables.items():
            path = self.out_dir / f"{name}.csv"
            with _failed_write(path):
                if resume_counts is not None:
                    if name not in resume_counts:
                        raise ConfigError(f"its checkpoint counts no {name}.csv rows: run "
                                          f"without --resume to start over", file=str(path))
                    self.counts[name] = _truncate_rows(path, resume_counts[name], cols)
                    f = open(path, "ab", buffering=0)  # noqa: SIM115
                else:
                    f = open(path, "wb", buffering=0)  # noqa: SIM115
                    _write_all(f.fileno(), (",".join(cols) + "\n").encode("utf-8"))
            self._files[name] = f
            st = os.fstat(f.fileno())
            self._ids[name] = (st.st_dev, st.st_ino)

    def write_round(self, round_row: dict[str, Any], transfers: Sequence[dict[str, Any]],
                    clients: Sequence[dict[str, Any]],
                    hops: Sequence[dict[str, Any]] = (),
                    power: Sequence[dict[str, Any]] = ()) -> None:
        """Append one finished round (every table) to disk; all of it or, when a write fails
        (``WriteFailed``), none of it."""
        chunks = []
        for name, rows in (("transfers", transfers), ("hops", hops), ("clients", clients),
                           ("power", power), ("rounds", [round_row])):
            if name not in self.tables:
                assert not rows, f"{name} rows but no {name} table"
                continue
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=self.tables[name], lineterminator="\n")
            for row in rows:
                w.writerow({k: _fmt(row.get(k)) for k in w.fieldnames})
            chunks.append((name, buf.getvalue().encode("utf-8"), len(rows)))
        self._check_tables()
        written: list[tuple[int, int]] = []  # (fd, its size before this round)
        for name, data, _ in chunks:
            fd = self._files[name].fileno()
            try:
                written.append((fd, os.fstat(fd).st_size))
                _write_all(fd, data)
            except OSError as e:
                for fd_, size in written:  # the round's rows out of every table again
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd_, size)
                raise WriteFailed(f"cannot write {self.out_dir / f'{name}.csv'}: "
                                  f"{_strerror(e)}") from e
        for name, _, n in chunks:
            self.counts[name] += n

    def _check_tables(self) -> None:
        """Is every table still the file this recorder writes? (One removed under the run
        would take the rows written into it with it, unseen.)"""
        for name, ident in self._ids.items():
            path = self.out_dir / f"{name}.csv"
            try:
                st = os.stat(path)
                same = (st.st_dev, st.st_ino) == ident
            except OSError:
                same = False
            if not same:
                raise WriteFailed(f"cannot write {path}: it was removed or replaced during the "
                                  f"run (the rows it held are not in it)")

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        path = self.out_dir / name
        tmp = path.with_suffix(".tmp")
        text = json.dumps(data, indent=2, default=str) + "\n"
        try:
            with _failed_write(path):
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)
        except WriteFailed:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _truncate_rows(path: Path, n_rows: int, columns: Sequence[str]) -> int:
    """Keep the header and the first ``n_rows`` rows of a table written by a Recorder (cut in
    place: no new space needed)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    header = (",".join(columns) + "\n").encode("utf-8")
    end = len(header) if data.startswith(header) else -1
    for _ in range(n_rows):
        if end < 0:
            break
        nl = data.find(b"\n", end)
        end = nl + 1 if nl >= 0 else -1
    if end < 0:
        raise ConfigError(f"does not hold the {n_rows} rows its checkpoint counts (the results "
                          f"directory was changed after the run): run without --resume to "
                          f"start over", file=str(path))
    if end < len(data):
        os.truncate(path, end)
    return n_rows


def _write_all(fd: int, data: bytes) -> None:
    """``data`` at the end of ``fd``, in as many writes as the system takes."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(f"wrote {n} bytes")
        view = view[n:]


def _strerror(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


@contextlib.contextmanager
def _failed_write(path: Path):
    """An ``OSError`` of writing ``path`` as ``WriteFailed`` (one line that names it)."""
    try:
        yield
    except WriteFailed:
        raise
    except OSError as e:
        raise WriteFailed(f"cannot write {path}: {_strerror(e)}") from e


def _fmt(value: Any) -> Any:
    """CSV cells: floats in full precision (repr), NaN/None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value
