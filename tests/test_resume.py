"""``--resume``: a run stopped after any round continues to the tables of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sinsim.errors import ConfigError
from sinsim.scenario import validate_scenario
from sinsim.sim import checkpoint
from sinsim.sim.engine import run_scenario

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("rounds.csv", "transfers.csv", "clients.csv")


def _scenario(lr: float = 0.05):
    return validate_scenario({
        "name": "resume", "seed": 3, "clients": {"count": 60},
        "links": {"model": "fixed", "uplink": {"rate_bps": 1e6}, "downlink": {"rate_bps": 5e6},
                  "loss": {"kind": "bernoulli", "p": 0.2}},
        "training": {"dataset": "synthetic", "rounds": 3, "clients_per_round": 3, "lr": lr,
                     "round_deadline": "10min", "workers": 1},
        "algorithms": ["fedavg",
                       {"spacedml": {"pretrain": "first_round", "schedule": "sequential"}}],
    })


def _tables(out: Path, tables: tuple[str, ...] = TABLES) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(out / t).drop(columns="host_wall_s", errors="ignore") for t in tables}


def _assert_same_tables(a: Path, b: Path, tables: tuple[str, ...] = TABLES) -> None:
    ta, tb = _tables(a, tables), _tables(b, tables)
    for t in tables:
        pd.testing.assert_frame_equal(ta[t], tb[t], check_exact=True, obj=t)


class _Stop(Exception):
    pass


def _stop_after(n_rounds: int):
    seen = []

    def on_round_end(row):
        seen.append(row)
        if len(seen) == n_rounds:
            raise _Stop
    return on_round_end


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_scenario(_scenario(), out)
    return out


@pytest.mark.slow  # an engine run: CI's slow suite
@pytest.mark.parametrize("stopped_after", [2, 4])  # in FedAvg's rounds; in SpaceDML's
def test_a_stopped_run_resumes_to_the_uninterrupted_tables(reference, tmp_path, stopped_after):
    # Prepare: a run stopped after some round (its checkpoint holds that round)
    with pytest.raises(_Stop):
        run_scenario(_scenario(), tmp_path, on_round_end=_stop_after(stopped_after))
    assert checkpoint.load(tmp_path) is not None
    with open(tmp_path / "rounds.csv", "a") as f:  # a torn row, as a kill mid-write would leave
        f.write("fedavg,9,0.0,")

    # Execute
    summary = run_scenario(_scenario(), tmp_path, resume=True)

    # Assert
    _assert_same_tables(reference, tmp_path)
    assert summary["status"] == "complete"
    assert summary["resumed_from"] == {"rounds_done": stopped_after}
    assert checkpoint.load(tmp_path) is None  # removed once complete
    mtime = (reference / "rounds.csv").stat().st_mtime_ns
    ref = run_scenario(_scenario(), reference, resume=True)  # complete: nothing is run again
    assert (reference / "rounds.csv").stat().st_mtime_ns == mtime

    def host_time_aside(s):
        return {k: {**v, "host_wall_s": None} for k, v in s["algorithms"].items()}
    assert host_time_aside(ref) == host_time_aside(summary)


def test_resume_with_another_scenario_is_refused(tmp_path):
    with pytest.raises(_Stop):
        run_scenario(_scenario(), tmp_path, on_round_end=_stop_after(1))
    with pytest.raises(ConfigError, match=r"training\.lr: 0\.05 then, 0\.1 now"):
        run_scenario(_scenario(lr=0.1), tmp_path, resume=True)


@pytest.mark.slow  # an engine run: CI's slow suite
def test_resume_with_nothing_to_continue_starts_afresh(reference, tmp_path):
    run_scenario(_scenario(), tmp_path, resume=True)
    _assert_same_tables(reference, tmp_path)


def test_first_difference_names_the_key_path():
    assert checkpoint.first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == \
        "a.1.b: 2 then, 3 now"
    assert checkpoint.first_difference({"a": 1}, {"a": 1}) is None


# ---------------------------------------------------------------------------------------------
# the command line, killed for real


def _sinsim(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.Popen([sys.executable, "-m", "sinsim", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_tables(tmp_path):
    """tiny.yaml (FedAvg, then SpaceDML, 3 rounds each) killed with SIGKILL twice, once in
    each algorithm, and resumed each time: the tables equal an uninterrupted run's."""
    # the same machine throughout: the fast kernels (portable mode would cost ~1.6x here)
    args = ("scenarios/tiny.yaml", "--quiet", "--set", "training.workers=1",
            "--set", "training.portable=false")
    ref = _sinsim(*args, "--out", str(tmp_path / "ref"))
    assert ref.wait(timeout=1800) == 0, ref.stderr.read()
    out = tmp_path / "killed"
    for kill_at in (2, 4):  # rounds.csv rows when the kill comes: FedAvg round 2, SpaceDML 1
        proc = _sinsim(*args, "--out", str(out), "--resume")
        try:
            while _rows(out / "rounds.csv") < kill_at and proc.poll() is None:
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert not (out / "summary.json").exists()
    done = _sinsim(*args, "--out", str(out), "--resume")
    assert done.wait(timeout=1800) == 0, done.stderr.read()
    _assert_same_tables(tmp_path / "ref", out)


@pytest.mark.parametrize("algorithms", [None, [{"fedbuff": {"concurrency": 4,
                                                             "buffer_size": 2}}]])
def test_a_sweep_run_resumes_from_its_checkpoint(tmp_path, write_yaml, small_synthetic,
                                                 algorithms):
    """A sweep's run whose earlier attempt was stopped continues from its checkpoint (the
    attempt's stray files are removed, not the checkpoint's log; the tables equal a fresh
    attempt's)."""
    from sinsim.scenario import load_scenario
    from sinsim.sweep.executors import run_one

    path = write_yaml({"name": "sweep_run", "clients": {"count": 20},
                       "training": {"dataset": small_synthetic, "rounds": 3,
                                    "clients_per_round": 4,
                                    "workers": 1},
                       **({"algorithms": algorithms} if algorithms else {})})
    with pytest.raises(_Stop):
        run_scenario(load_scenario(path), tmp_path / "run", on_round_end=_stop_after(2))
    (tmp_path / "run" / "error.txt").write_text("from the attempt that died")

    resumed = run_one(str(path), [], str(tmp_path / "run"))
    fresh = run_one(str(path), [], str(tmp_path / "fresh"))

    assert resumed["status"] == fresh["status"] == "complete"
    assert not (tmp_path / "run" / "error.txt").exists()
    _assert_same_tables(tmp_path / "fresh", tmp_path / "run")
    import json
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from"] == {"rounds_done": 2}
