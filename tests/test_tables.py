"""The one reader of output tables: a sweep's combined table reads the same from Parquet and from
CSV, the swept keys come from one place, and a directory without a table is bad input that
names the directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sinsim.errors import InputError
from sinsim.studies import tables

STORED = Path(__file__).resolve().parent / "data" / "results_small"


def _sweep_table() -> pd.DataFrame:
    """A combined table as a sweep writes it: ids, swept values (a number, JSON text, a string),
    then a run's rounds (with an all-empty ``avg_bits`` for fp32)."""
    rounds = pd.read_csv(STORED / "tiny" / "rounds.csv")
    frames = []
    for i, (lr, partition) in enumerate([(0.01, '"iid"'), (0.05, '{"alpha": 0.5}')]):
        r = rounds.copy()
        for pos, (col, value) in enumerate({"run_id": f"lr={lr},seed=0", "seed": 0,
                                            "training.lr": lr, "training.partition": partition,
                                            "label": f"run{i}"}.items()):
            r.insert(pos, col, [value] * len(r))
        frames.append(r)
    table = pd.concat(frames, ignore_index=True)
    table.loc[table.algorithm == "fedavg", "avg_bits"] = float("nan")
    return table


def test_parquet_and_csv_give_the_same_frame(tmp_path):
    pytest.importorskip("pyarrow")
    table = _sweep_table()
    csv_dir, parquet_dir = tmp_path / "csv", tmp_path / "parquet"
    csv_dir.mkdir()
    parquet_dir.mkdir()
    table.to_csv(csv_dir / "runs.csv", index=False)
    table.to_csv(parquet_dir / "runs.csv", index=False)
    table.to_parquet(parquet_dir / "runs.parquet", index=False)
    from_csv, from_parquet = tables.load_sweep(csv_dir), tables.load_sweep(parquet_dir)
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    pd.testing.assert_frame_equal(from_parquet, table)
    assert tables.swept_keys(from_csv) == tables.swept_keys(from_parquet) == [
        "training.lr", "training.partition"]


def test_a_stale_parquet_beside_a_newer_csv_is_not_read(tmp_path):
    pytest.importorskip("pyarrow")
    table = _sweep_table()
    table.to_parquet(tmp_path / "runs.parquet", index=False)
    table.head(3).to_csv(tmp_path / "runs.csv", index=False)
    old = (tmp_path / "runs.parquet").stat().st_mtime_ns - 10**9
    os.utime(tmp_path / "runs.parquet", ns=(old, old))
    assert len(tables.load_sweep(tmp_path)) == 3
    (tmp_path / "runs.csv").unlink()  # a parquet alone is a sweep table too
    assert tables.is_sweep(tmp_path) and len(tables.load_sweep(tmp_path)) == len(table)


def test_swept_keys_from_the_columns_and_the_sweeps_description(tmp_path):
    table = _sweep_table()
    assert tables.swept_keys(table) == ["training.lr", "training.partition"]
    assert tables.swept_keys(table, listed=["label"]) == ["training.lr", "training.partition",
                                                          "label"]
    (tmp_path / "sweep.json").write_text(json.dumps({"keys": ["label", "not_a_column"]}))
    assert tables.swept_keys(table, tmp_path) == ["training.lr", "training.partition", "label"]
    assert tables.sweep_description(tmp_path)["keys"] == ["label", "not_a_column"]
    assert tables.sweep_description(tmp_path / "nowhere") == {}


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_no_runs_csv_is_bad_input_naming_the_directory(tmp_path, make):
    d = tmp_path / "d"
    if make == "empty":
        d.mkdir()
    with pytest.raises(tables.MissingTable) as info:
        tables.load_sweep(d)
    assert isinstance(info.value, InputError) and isinstance(info.value, FileNotFoundError)
    assert str(info.value).startswith(f"{d}: no runs.csv")
    assert not tables.is_sweep(d)


def test_run_tables_summary_and_start():
    loaded = tables.load_results(STORED / "leo_walker")
    assert {"rounds", "transfers", "clients", "contacts", "nodes"} <= set(loaded)
    pd.testing.assert_frame_equal(loaded["rounds"], tables.load_rounds(STORED / "leo_walker"))
    start = tables.run_start(STORED / "leo_walker")
    assert start is not None and start.tzinfo is not None
    assert tables.load_summary(STORED / "leo_walker")["resolved_scenario"]["start"]
    sats = tables.load_tles(STORED / "leo_walker")
    nodes = loaded["nodes"]
    assert [s.id for s in sats] == nodes[nodes.kind == "satellite"].id.tolist()
    with pytest.raises(tables.MissingTable, match="no contacts.csv"):
        tables.load_table(STORED / "tiny", "contacts")
    assert tables.run_start(STORED / "nowhere") is None
