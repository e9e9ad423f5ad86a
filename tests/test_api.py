"""The Python API (sinsim.api, re-exported by sinsim) as a public surface: load a scenario by
file or bundled name with overrides, run it to DataFrames, read a run back, run a sweep."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest
import yaml

import sinsim
from sinsim.errors import ConfigError


def test_the_package_says_what_is_public():
    assert set(sinsim.__all__) == {"Run", "__version__", "load_run", "load_scenario", "run",
                                   "sweep"}
    assert all(hasattr(sinsim, name) for name in sinsim.__all__)
    with pytest.raises(AttributeError):
        sinsim.no_such_thing  # noqa: B018


def test_load_scenario_by_bundled_name_with_overrides():
    sc = sinsim.load_scenario("tiny", overrides={"training.rounds": 3, "training.lr": 0.05,
                                                  "training.partition": "iid"})
    assert sc.name == "tiny" and sc.training.rounds == 3 and sc.training.lr == 0.05


def test_a_bad_override_names_the_key():
    with pytest.raises(ConfigError, match=r"training\.round: unknown key; did you mean "
                                          r"'rounds'\?"):
        sinsim.load_scenario("tiny", overrides={"training.round": 3})


def test_a_missing_scenario_suggests_the_bundled_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="did you mean the bundled scenario 'leo_walker'"):
        sinsim.load_scenario("leo_walkr")


@pytest.mark.slow
def test_run_returns_the_tables_and_load_run_reads_them_back(tmp_path, tiny_raw,
                                                             small_synthetic):
    tiny_raw["training"].update(dataset=small_synthetic, rounds=1)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_raw), encoding="utf-8")
    kept = sinsim.run(sinsim.load_scenario(path), out_dir=tmp_path / "out")
    assert isinstance(kept, sinsim.Run) and kept.out_dir == tmp_path / "out"
    assert list(kept.rounds["round"]) == [1] and kept.rounds["bytes_up"].iloc[0] > 0
    assert set(kept.accuracy) == {"fedavg"} and "transfers" in kept.tables
    again = sinsim.load_run(tmp_path / "out")
    pd.testing.assert_frame_equal(again.rounds, kept.rounds)
    assert again.summary["versions"]["sinsim"] == sinsim.__version__
    temp = sinsim.run(path)  # a path is loaded; without out_dir nothing is kept
    assert temp.out_dir is None
    cols = [c for c in temp.rounds.columns if c != "host_wall_s"]
    pd.testing.assert_frame_equal(temp.rounds[cols], kept.rounds[cols])
    with pytest.raises(AttributeError, match="no table 'power'"):
        temp.power  # noqa: B018


def test_load_run_of_a_directory_without_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        sinsim.load_run(tmp_path)


@pytest.mark.slow
def test_sweep_runs_a_study_and_returns_its_table(tmp_path, tiny_raw):
    tiny_raw["training"].update(rounds=1)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tiny_raw), encoding="utf-8")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({
        "name": "study", "scenario": "base.yaml", "grid": {"training.lr": [0.05]},
        "executor": {"kind": "local", "workers": 1}}), encoding="utf-8")
    table = sinsim.sweep(tmp_path / "study.yaml", tmp_path / "out")
    assert list(table["training.lr"]) == [0.05] and list(table["round"]) == [1]
    importlib.import_module("sinsim.sweep")  # the package is now the attribute: it calls too
    assert callable(sinsim.sweep) and sinsim.sweep.plan_sweep
    again = sinsim.sweep(tmp_path / "study.yaml", tmp_path / "out")  # finished runs skipped
    pd.testing.assert_frame_equal(again, table)
