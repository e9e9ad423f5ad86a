"""Sweeps: expansion, run ids, validation (exit 2 naming the sweep file and key), skipping
finished runs, failures, the combined table; end to end on the local pool and on Dask."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sinsim.cli import main
from sinsim.scenario import load_scenario
from sinsim.studies.tables import load_sweep
from sinsim.sweep import RunSpec, ids, plan_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "scenarios" / "tiny.yaml")


@pytest.fixture
def sweep_file(tmp_path):
    """``sweep_file(**keys)``: a sweep on a small synthetic scenario; returns its path."""
    scenario = tmp_path / "base.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "base", "clients": {"count": 4},
        "training": {"dataset": "synthetic", "rounds": 2, "clients_per_round": 2},
    }))

    def write(name: str = "study.yaml", **keys) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"scenario": "base.yaml", **keys}, sort_keys=False))
        return path

    return write


# --- expansion and run ids ---------------------------------------------------------------------


def test_grid_is_a_product_with_the_first_key_slowest(sweep_file):
    plan = plan_sweep(sweep_file(grid={"training.clients_per_round": [1, 2],
                                       "training.lr": [0.01, 0.05, 0.1]}))
    assert plan.name == "study"
    assert plan.swept_keys == ("training.clients_per_round", "training.lr")
    assert [tuple(r.values.values()) for r in plan.runs] == [
        (1, 0.01), (1, 0.05), (1, 0.1), (2, 0.01), (2, 0.05), (2, 0.1)]
    assert plan.runs[1].run_id == "clients_per_round=1,lr=0.05,seed=0"
    assert plan.runs[1].resolved["training"]["lr"] == 0.05
    assert plan.runs[1].resolved["training"]["clients_per_round"] == 1


def test_zip_varies_together_and_seeds_repeat_each_run(sweep_file):
    plan = plan_sweep(sweep_file(
        grid={"training.lr": [0.01, 0.1]},
        zip={"training.local_epochs": [1, 2], "training.batch_size": [10, 20]},
        seeds=[3, 7]))
    assert len(plan.runs) == 2 * 2 * 2
    assert [(r.values["training.lr"], r.values["training.local_epochs"],
             r.values["training.batch_size"], r.seed) for r in plan.runs[:4]] == [
        (0.01, 1, 10, 3), (0.01, 1, 10, 7), (0.01, 2, 20, 3), (0.01, 2, 20, 7)]
    assert {r.resolved["seed"] for r in plan.runs} == {3, 7}
    assert plan.runs[0].run_id == "lr=0.01,local_epochs=1,batch_size=10,seed=3"
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)


def test_seeds_default_to_the_scenario_seed_and_set_applies_to_every_run(sweep_file):
    plan = plan_sweep(sweep_file(set={"seed": 5, "training.rounds": 1},
                                 grid={"training.lr": [0.01, 0.02]}))
    assert [r.seed for r in plan.runs] == [5, 5]
    assert all(r.resolved["training"]["rounds"] == 1 for r in plan.runs)


def test_mapping_values_are_yaml_values_and_get_a_hashed_id(sweep_file):
    plan = plan_sweep(sweep_file(grid={
        "training.partition": ["iid", {"kind": "dirichlet", "alpha": 0.5}],
        "algorithms": [["fedavg"]]}))
    assert plan.runs[1].resolved["training"]["partition"] == {"kind": "dirichlet", "alpha": 0.5}
    ids = [r.run_id for r in plan.runs]
    assert ids[0].startswith("partition=iid,algorithms=h-")
    assert re.fullmatch(r"partition=h-[0-9a-f]{8},algorithms=h-[0-9a-f]{8},seed=0", ids[1])
    assert plan_sweep(sweep_file(name="again.yaml", grid={
        "training.partition": ["iid", {"kind": "dirichlet", "alpha": 0.5}],
        "algorithms": [["fedavg"]]})).runs[1].run_id == ids[1]  # stable


def test_run_ids_are_safe_readable_and_unique():
    labels = ids.labels(["training.lr", "links.uplink.rate_bps", "links.downlink.rate_bps",
                         "algorithms.0"])
    assert labels == {"training.lr": "lr", "links.uplink.rate_bps": "uplink.rate_bps",
                      "links.downlink.rate_bps": "downlink.rate_bps",
                      "algorithms.0": "algorithms.0"}
    assert ids.value_text(True) == "true" and ids.value_text(1e-05) == "1e-05"
    assert ids.value_text("10min") == "10min"
    assert ids.value_text("a/b").startswith("h-")  # not filesystem-safe: hashed
    long_id = ids.run_id({"x": "v" * 30, "y": "w" * 30, "z": "u" * 30, "q": "t" * 30,
                          "r": "s" * 30}, dict(zip("xyzqr", "xyzqr")), 0)
    assert len(long_id) <= 150 and re.search(r"-[0-9a-f]{8}$", long_id)
    runs = [RunSpec(ids.run_id({"k": v}, {"k": "k"}, 0), 0, {"k": v}, (), {})
            for v in (0.1, "0.1")]
    unique = ids.unique_ids(runs)
    assert len({r.run_id for r in unique}) == 2
    assert all(r.run_id.startswith("k=0.1,seed=0-") for r in unique)


def test_the_tiny_sweep_is_a_2x2_grid_on_tiny_yaml():
    plan = plan_sweep(ROOT / "sweeps" / "tiny.yaml")
    assert plan.name == "tiny_sweep"
    assert plan.scenario_path == TINY
    assert len(plan.runs) == 4 and len(plan.swept_keys) == 2
    assert all(r.resolved["name"] == "tiny" for r in plan.runs)


def test_the_docs_show_the_tiny_sweep():
    readme = (ROOT / "docs" / "sweeps.md").read_text()
    block = re.search(r"```yaml\n(name: tiny_sweep\n.*?)```", readme, re.S)
    assert block, "docs/sweeps.md lost its sweeps/tiny.yaml example"
    assert yaml.safe_load(block.group(1)) == yaml.safe_load(
        (ROOT / "sweeps" / "tiny.yaml").read_text())


# --- bad input: exit 2, naming the sweep file and the key ---------------------------------------


def _exit_2(capsys, path, *args) -> str:
    assert main(["sweep", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    return err


@pytest.mark.parametrize(("keys", "needle"), [
    ({"gird": {"training.lr": [0.1]}}, "gird: unknown key; did you mean 'grid'?"),
    ({"executor": {"kind": "slurm"}}, "executor.kind: input should be 'local' or 'dask', got "
                                      "'slurm'"),
    ({"executor": {"kind": "local", "wrokers": 2}}, "executor.wrokers: unknown key; did you mean "
                                                    "'workers'?"),
    ({"executor": {"workers": 0}}, "executor.workers: must be > 0, got 0"),
    ({"executor": {"address": "tcp://x:8786"}}, "executor.address is only for kind: dask"),
    ({"grid": {"training.lr": [0.01, -1]}}, "grid.training.lr: must be > 0, got -1"),
    ({"grid": {"training.datset": ["mnist"]}}, "grid.training.datset: unknown key; did you mean "
                                               "'dataset'?"),
    ({"grid": {"training.dataset": ["synthetic", "cifar"]}},
     "grid.training.dataset: unknown dataset 'cifar'"),
    ({"grid": {"training.lr": 0.01}}, "grid.training.lr: must be a list of values, got 0.01"),
    ({"grid": {"training.lr": []}}, "grid.training.lr: needs at least one value"),
    ({"grid": {"seed": [1, 2]}}, "grid.seed: repeats over seeds go in `seeds: [...]`"),
    ({"grid": {"training.lr": [0.1]}, "zip": {"training": [{"lr": 0.2}]}},
     "zip.training: overlaps grid.training.lr"),
    ({"zip": {"training.lr": [0.1, 0.2], "training.rounds": [1]}},
     "zip.training.rounds: has 1 values but zip.training.lr has 2"),
    ({"set": {"training.rounds": 0}}, "set.training.rounds: must be > 0, got 0"),
    ({"seeds": [1, 1]}, "seeds: seed 1 is listed twice"),
    ({"seeds": [-1]}, "seeds.0: must be >= 0, got -1"),
    ({"scenario": "nope.yaml"}, "study.yaml: scenario: "),
])
def test_bad_sweep_exits_2_naming_file_and_key(capsys, sweep_file, keys, needle):
    path = sweep_file(**keys)
    err = _exit_2(capsys, path)
    assert f"{path}: " in err
    assert needle in err


def test_a_combination_that_does_not_validate_names_the_run(capsys, sweep_file):
    # each value is fine alone; 3 clients per round out of 2 clients is not
    path = sweep_file(grid={"clients.count": [2, 4], "training.clients_per_round": [1, 3]})
    err = _exit_2(capsys, path)
    assert f"{path}: grid.training.clients_per_round: in run count=2,clients_per_round=3,seed=0" \
        in err


def test_missing_or_malformed_sweep_file_exits_2(capsys, tmp_path):
    assert "nope.yaml: no such sweep file" in _exit_2(capsys, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    assert "bad.yaml: not valid YAML (line" in _exit_2(capsys, bad)
    bad.write_text("- a list\n")
    assert "a sweep must be a mapping" in _exit_2(capsys, bad)


def test_dask_missing_says_how_to_install_it(capsys, sweep_file, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    path = sweep_file(grid={"training.lr": [0.1]})
    err = _exit_2(capsys, path, "--executor", "dask")
    assert f"{path}: executor.kind=dask needs `pip install sinsim[dask]`" in err


def test_executor_may_be_given_by_kind_alone(sweep_file):
    assert plan_sweep(sweep_file(executor="dask")).executor.kind == "dask"


def test_cli_options_override_the_executor(sweep_file):
    path = sweep_file(executor={"kind": "dask", "address": "tcp://h:8786", "workers": 3})
    plan = plan_sweep(path, executor="local", workers=2)
    assert plan.executor.model_dump() == {"kind": "local", "workers": 2, "address": None}


@pytest.mark.parametrize(("address", "needle"), [
    ("nonsense", "ValueError: missing port number"),
    ("foo://h:1", "ValueError: unknown address scheme 'foo'"),
    ("tcp://127.0.0.1:1", "OSError: Timed out trying to connect"),  # nothing listens on port 1
])
def test_a_scheduler_that_cannot_be_reached_is_bad_input(capsys, sweep_file, address, needle):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    path = sweep_file(grid={"training.lr": [0.1]})
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        err = _exit_2(capsys, path, "--scheduler", address)
    assert f"cannot connect to the Dask scheduler at {address!r}" in err and needle in err


# --- running: skip, rerun, failures, the table (fake runs in a real process pool) --------------


def fake_run(scenario_path: str, overrides, out_dir: str) -> dict:
    """Stands in for run_one: writes what a run writes, fails where the test says so."""
    out = Path(out_dir)
    scenario = load_scenario(scenario_path, overrides)
    if f"training.lr={os.environ.get('SWEEP_TEST_FAIL_LR')}" in overrides:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"status": "failed"}))
        return {"status": "failed", "error": "RuntimeError: boom", "wall_s": 0.0}
    out.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame({"algorithm": "fedavg", "round": [1, 2],
                         "test_accuracy": [0.5, scenario.training.lr], "host_wall_s": 0.1})
    rows.to_csv(out / "rounds.csv", index=False)
    (out / "summary.json").write_text(json.dumps(
        {"status": "complete", "resolved_scenario": scenario.resolved()}))
    return {"status": "complete", "error": None, "wall_s": 0.0}


@pytest.mark.slow  # an engine run: CI's slow suite
def test_run_sweep_skips_finished_reruns_failed_and_builds_the_table(sweep_file, tmp_path,
                                                                     monkeypatch):
    path = sweep_file(grid={"training.lr": [0.01, 0.05], "training.partition": ["iid", {
        "kind": "dirichlet", "alpha": 0.5}]}, executor={"workers": 2})
    plan = plan_sweep(path)
    out = tmp_path / "out"
    monkeypatch.setenv("SWEEP_TEST_FAIL_LR", "0.05")
    r = run_sweep(plan, out, progress=False, run_fn=fake_run)
    assert r.done == [plan.runs[0].run_id, plan.runs[1].run_id]
    assert set(r.failed) == {plan.runs[2].run_id, plan.runs[3].run_id}
    assert all(e == "RuntimeError: boom" for e in r.failed.values())
    table = load_sweep(out)
    assert list(table.columns[:4]) == ["run_id", "seed", "training.lr", "training.partition"]
    assert len(table) == 4 and set(table["training.lr"]) == {0.01}
    assert json.loads(table["training.partition"].iloc[-1]) == {"kind": "dirichlet", "alpha": 0.5}
    assert table["training.partition"].iloc[0] == '"iid"'
    pd.testing.assert_frame_equal(table, pd.read_csv(out / "runs.csv"), check_dtype=False)
    index = pd.read_csv(out / "runs_index.csv")
    assert list(index.status) == ["complete", "complete", "failed", "failed"]
    assert json.loads((out / "sweep.json").read_text())["keys"] == list(plan.swept_keys)

    monkeypatch.delenv("SWEEP_TEST_FAIL_LR")
    r = run_sweep(plan, out, progress=False, run_fn=fake_run)
    assert r.skipped == [plan.runs[0].run_id, plan.runs[1].run_id]
    assert r.done == [plan.runs[2].run_id, plan.runs[3].run_id] and not r.failed
    assert len(load_sweep(out)) == 8

    # the same ids with another scenario (here: one more round) are rerun, not skipped
    changed = plan_sweep(sweep_file(set={"training.rounds": 3}, grid={
        "training.lr": [0.01], "training.partition": ["iid"]}))
    r = run_sweep(changed, out, progress=False, run_fn=fake_run)
    assert r.rerun_changed == r.done == [changed.runs[0].run_id] == [plan.runs[0].run_id]


# --- end to end --------------------------------------------------------------------------------


def sinsim(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.run([sys.executable, "-m", "sinsim", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def _tiny_2x2(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "tiny_2x2.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny_2x2", "scenario": TINY,
        # 40 clients: 300 synthetic samples each, so a round trains in a fraction of a second
        "set": {"training.rounds": 1, "training.dataset": "synthetic", "clients.count": 40},
        "grid": {"training.clients_per_round": [2, 4], "training.lr": [0.01, 0.05]},
        **extra}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    out = tmp / "local"
    return _tiny_2x2(tmp), out, sinsim("sweep", str(_tiny_2x2(tmp)), "--out", str(out),
                                       "--workers", "2")


def _table(out: Path) -> pd.DataFrame:
    t = pd.read_csv(out / "runs.csv").drop(columns="host_wall_s")
    return t.sort_values(["run_id", "algorithm", "round"]).reset_index(drop=True)


@pytest.mark.slow
def test_tiny_2x2_sweep_writes_four_runs_and_the_table(local_sweep):
    _, out, proc = local_sweep
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when not on a terminal
    assert "4 runs: 4 done, 0 skipped (already finished), 0 failed" in proc.stdout
    assert f"{out}/runs.csv" in proc.stdout
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["clients_per_round=2,lr=0.01,seed=0", "clients_per_round=2,lr=0.05,seed=0",
                    "clients_per_round=4,lr=0.01,seed=0", "clients_per_round=4,lr=0.05,seed=0"]
    table = pd.read_csv(out / "runs.csv")
    assert len(table) == 8  # 4 runs x 2 algorithms (tiny.yaml: fedavg, spacedml) x 1 round
    assert list(table.columns[:4]) == ["run_id", "seed", "training.clients_per_round",
                                       "training.lr"]
    assert set(zip(table["training.clients_per_round"], table["training.lr"])) == {
        (2, 0.01), (2, 0.05), (4, 0.01), (4, 0.05)}
    assert (table.selected == table["training.clients_per_round"]).all()
    for run_id, group in table.groupby("run_id"):
        own = pd.read_csv(out / "runs" / run_id / "rounds.csv")
        pd.testing.assert_frame_equal(group.iloc[:, 4:].reset_index(drop=True), own)
    pd.testing.assert_frame_equal(load_sweep(out), table, check_dtype=False)


@pytest.mark.slow
def test_rerun_runs_only_the_missing_run(local_sweep):
    path, out, proc = local_sweep
    assert proc.returncode == 0, proc.stderr
    gone = out / "runs" / "clients_per_round=4,lr=0.05,seed=0"
    kept = {p: (p / "summary.json").stat().st_mtime_ns for p in (out / "runs").iterdir()
            if p != gone}
    before = _table(out)
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    time.sleep(0.01)
    again = sinsim("sweep", str(path), "--out", str(out), "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert "4 runs: 1 done, 3 skipped (already finished), 0 failed" in again.stdout
    assert {p: (p / "summary.json").stat().st_mtime_ns for p in kept} == kept
    assert (gone / "summary.json").exists()
    pd.testing.assert_frame_equal(_table(out), before)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_table(local_sweep, tmp_path):
    path, out, proc = local_sweep
    assert proc.returncode == 0, proc.stderr
    dask_out = tmp_path / "dask"
    p = sinsim("sweep", str(path), "--out", str(dask_out), "--executor", "dask", "--workers", "2")
    assert p.returncode == 0, p.stderr
    assert "[dask, 2 workers" in p.stdout
    pd.testing.assert_frame_equal(_table(dask_out), _table(out))


@pytest.mark.slow
def test_a_failed_run_is_reported_and_the_others_go_on(tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    path = tmp_path / "half_broken.yaml"
    path.write_text(yaml.safe_dump({
        "scenario": TINY,
        "set": {"training.rounds": 1, "training.data_dir": str(empty), "training.download": False,
                "clients.count": 40},
        "grid": {"training.dataset": ["synthetic", "mnist"]}}))
    proc = sinsim("sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "2")
    assert proc.returncode == 1
    assert "2 runs: 1 done, 0 skipped (already finished), 1 failed" in proc.stdout
    assert "sinsim: run dataset=mnist,seed=0 failed: DatasetUnavailable" in proc.stderr
    assert (tmp_path / "out" / "runs" / "dataset=mnist,seed=0" / "error.txt").exists()
    table = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert set(table["training.dataset"]) == {"synthetic"}
