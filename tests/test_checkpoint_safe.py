"""Checkpoints that cannot run code (``sinsim.sim.checkpoint``), and disk failures that lose
nothing (``sinsim.sim.recorder``): a pickle payload, a truncated file, a foreign format version
or another scenario's checkpoint is refused with exit 2 before anything is loaded or run; a table
or checkpoint that cannot be written stops the run with exit 1 and one line, the finished rounds'
rows intact, and ``--resume`` continues once the disk is back."""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sinsim.errors import ConfigError, WriteFailed
from sinsim.scenario import load_scenario, validate_scenario
from sinsim.sim import checkpoint
from sinsim.sim.checkpoint import AlgorithmState, Checkpoint, CheckpointError
from sinsim.sim.engine import run_scenario
from sinsim.sim.power import Battery, PowerParams
from sinsim.sim.recorder import Recorder
from tests.test_resume import _assert_same_tables as same_tables
from tests.test_resume import _tables as read_tables

ROOT = Path(__file__).resolve().parents[1]
TINY = "scenarios/tiny.yaml"
TABLES = ("rounds.csv", "transfers.csv", "clients.csv", "hops.csv")


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.run([sys.executable, "-m", "sinsim", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


class _Payload:
    """Runs ``os.system(command)`` when unpickled."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _plant_tables(out: Path) -> dict[str, bytes]:
    """Tables as a killed run would leave them: a resume must not touch them when refused."""
    out.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name in TABLES:
        (out / name).write_text("a,b\n1,2\n")
        tables[name] = (out / name).read_bytes()
    return tables


def _assert_refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("sinsim: error:"), proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------
# the format: data in, the same data out, nothing else


def _data() -> dict:
    g = OrderedDict(w=torch.randn(3, 4), b=torch.zeros(4, dtype=torch.float64))
    shared = np.arange(6, dtype=np.int16).reshape(2, 3)
    return {
        "global": g, "again": g,  # one object, held twice
        "arrays": [shared, shared, np.array([True, False])],
        "tensors": (torch.tensor(3.5), torch.ones(2, dtype=torch.bfloat16),
                    torch.arange(5, dtype=torch.uint8), torch.tensor([1, 2], dtype=torch.int8),
                    torch.tensor([[True]]), torch.full((2,), 0.5, dtype=torch.float16)),
        "by_client": {3: {"pretrained": True, "moments": None}, 7: {"x": [1, 2.5, "s"]}},
        "numbers": [0, -1, 2**62, 1e-300, float("inf"), float("nan"), np.float64(0.1),
                    np.int64(7), np.float32(1.5), np.bool_(True)],
        "$dollar": "a key that looks like a tag", "tuple_key": {(1, "a"): "v"},
    }


def test_data_comes_back_equal_of_the_same_types_and_shared_once(tmp_path):
    data = _data()
    state = AlgorithmState("spacedml", [{"round": 1, "test_accuracy": 0.5, "avg_bits": None}],
                           12.5, data["global"], data, [None, {"t_s": 1.0, "energy_j": 2.0,
                                                                 "lowest_soc": 0.9,
                                                                 "used_j": {"tx": 3.0}}])
    resolved = {"name": "x", "training": {"lr": 0.1}}
    checkpoint.save(tmp_path, Checkpoint(resolved, {"rounds": 1}, {"fedavg": {"rounds_run": 2}},
                                         state))
    with zipfile.ZipFile(tmp_path / checkpoint.CHECKPOINT) as z:  # JSON and .npy only
        assert all(n == "checkpoint.json" or n.endswith(".npy") for n in z.namelist())
        meta = json.loads(z.read("checkpoint.json"))
    assert (meta["format"], meta["version"]) == ("sinsim-checkpoint", 1)
    assert meta["scenario_sha256"] == checkpoint.scenario_hash(resolved)

    cp = checkpoint.load(tmp_path)
    assert (cp.scenario, cp.counts, cp.finished) == (resolved, {"rounds": 1},
                                                    {"fedavg": {"rounds_run": 2}})
    cur = cp.current
    assert (cur.label, cur.now_s, cur.rows, cur.batteries) == (
        state.label, state.now_s, state.rows, state.batteries)
    got = cur.strategy
    assert got["global"] is cur.global_state and got["again"] is got["global"]
    assert type(got["global"]) is OrderedDict and list(got["global"]) == ["w", "b"]
    for k, v in data["global"].items():
        assert torch.equal(got["global"][k], v) and got["global"][k].dtype == v.dtype
    assert got["arrays"][0] is got["arrays"][1]
    np.testing.assert_array_equal(got["arrays"][0], data["arrays"][0])
    assert got["arrays"][0].dtype == np.int16
    assert isinstance(got["tensors"], tuple)
    for a, b in zip(got["tensors"], data["tensors"]):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    assert got["by_client"] == data["by_client"] and set(got["by_client"]) == {3, 7}
    for a, b in zip(got["numbers"], data["numbers"]):
        assert type(a) is type(b)
        assert a == b or (a != a and b != b)  # NaN
    assert got["$dollar"] == data["$dollar"] and got["tuple_key"] == {(1, "a"): "v"}


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", np.array([object()]),
                                   Path("x"), [lambda: 0]])
def test_anything_but_data_is_refused_when_saving(tmp_path, value):
    state = AlgorithmState("fedavg", [], 0.0, {}, {"x": value})
    with pytest.raises(TypeError, match="checkpoint"):
        checkpoint.save(tmp_path, Checkpoint({}, {}, current=state))
    assert not list(tmp_path.iterdir())  # nothing half-written


def _save_one(out: Path, resolved: dict, **kw) -> Path:
    state = AlgorithmState("fedavg", [{"round": 1}], 5.0, {"w": torch.ones(3)}, None)
    checkpoint.save(out, Checkpoint(resolved, {"rounds": 1}, current=state))
    return out / checkpoint.CHECKPOINT


def _rewrite(path: Path, edit, raw: tuple[str, str] = ("", "")) -> None:
    """The checkpoint with its JSON changed by ``edit`` and then the text ``raw[0]`` replaced
    by ``raw[1]`` (arrays as they were)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["checkpoint.json"])
    edit(meta)
    members["checkpoint.json"] = json.dumps(meta).replace(*raw).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _pickled_npy(value) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, np.array([value], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("damage", [
    "truncated", "empty", "garbage", "pickle", "version", "format", "hash", "tag",
    "pickled_array", "missing_array", "ref_before_id", "deep",
])
def test_a_damaged_or_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, damage):
    pwned = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    path = _save_one(out, {"name": "x"})
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(300))
    elif damage == "pickle":
        path.write_bytes(pickle.dumps(_Payload(f"touch {pwned}")))
    elif damage == "version":
        _rewrite(path, lambda m: m.update(version=2))
    elif damage == "format":
        _rewrite(path, lambda m: m.update(format="other"))
    elif damage == "hash":
        _rewrite(path, lambda m: m.update(scenario={"name": "y"}))
    elif damage == "tag":
        _rewrite(path, lambda m: m["current"].update(strategy={"$pickle": "x"}))
    elif damage == "pickled_array":
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("a9.npy", _pickled_npy(_Payload(f"touch {pwned}")))
        _rewrite(path, lambda m: m["current"].update(strategy={"$ndarray": "a9"}))
    elif damage == "missing_array":
        _rewrite(path, lambda m: m["current"].update(strategy={"$ndarray": "a7"}))
    elif damage == "ref_before_id":
        _rewrite(path, lambda m: m["current"].update(strategy={"$ref": 0}))
    elif damage == "deep":  # nested past any recursion limit
        _rewrite(path, lambda m: m["current"].update(strategy="DEEP"),
                 ('"DEEP"', "[" * 100_000 + "]" * 100_000))
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(out)
    assert str(path) in str(e.value)
    assert "version" in str(e.value) if damage == "version" else True
    assert not pwned.exists()


def test_an_old_pickle_checkpoint_is_never_opened(tmp_path, monkeypatch):
    (tmp_path / checkpoint.LEGACY).write_bytes(pickle.dumps(_Payload("true")))
    opened = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: opened.append(a))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: opened.append(a))
    with pytest.raises(CheckpointError, match="old, untrusted checkpoint format"):
        checkpoint.load(tmp_path)
    assert not opened
    checkpoint.remove(tmp_path)  # a fresh run removes it, unread
    assert not (tmp_path / checkpoint.LEGACY).exists()


def test_strategy_state_that_does_not_fit_is_refused(tmp_path):
    from sinsim.learn.codecs import ModelSpec
    from sinsim.learn.strategies import build_strategy

    spec = ModelSpec(("w", "b"), ((3, 4), (4,)))
    fedavg = build_strategy("fedavg", spec, {"update": {"kind": "topk", "fraction": 0.5}}, None)
    for bad in ({"residuals": {1: "x"}}, {"residuals": {1: np.zeros(3, np.float32)}},
                {"other": 1}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            fedavg.restore(bad)


def test_battery_state_round_trips(tmp_path):
    params = PowerParams(battery_wh=0.3, solar_w=10.0, idle_w=1.0, compute_w=5.0, tx_w=2.0,
                         rx_w=1.0, min_soc=0.2)
    sunlit = np.array([[0.0, 50.0], [100.0, 150.0]])
    a = Battery(params, sunlit, horizon_s=500.0)
    a.consume(10.0, 60.0, 5.0, "compute")
    state = AlgorithmState("x", [], 0.0, {}, None, [a.state(), None])
    checkpoint.save(tmp_path, Checkpoint({}, {}, current=state))
    b = Battery(params, sunlit, horizon_s=500.0)
    b.set_state(checkpoint.load(tmp_path).current.batteries[0])
    for battery in (a, b):
        battery.consume(120.0, 200.0, 2.0, "tx")
    assert a.state() == b.state()
    assert a.earliest_start(210.0, 30.0, 5.0) == b.earliest_start(210.0, 30.0, 5.0)


# ---------------------------------------------------------------------------------------------
# the command line: exit 2, nothing run, the results directory untouched


def test_cli_refuses_a_planted_pickle_payload_old_format(tmp_path):
    out = tmp_path / "run"
    tables = _plant_tables(out)
    pwned = tmp_path / "pwned"
    (out / checkpoint.LEGACY).write_bytes(pickle.dumps(_Payload(f"touch {pwned}")))
    proc = _cli(TINY, "--out", str(out), "--resume", "--quiet", "--set", "training.rounds=1")
    _assert_refused(proc, str(out / checkpoint.LEGACY), "old, untrusted")
    assert not pwned.exists()
    assert {n: (out / n).read_bytes() for n in TABLES} == tables
    assert (out / checkpoint.LEGACY).exists()  # left for the user to look at


@pytest.mark.parametrize("damage", ["pickle_renamed", "truncated", "another_scenario"])
def test_cli_refuses_a_bad_checkpoint_with_exit_2(tmp_path, damage):
    out = tmp_path / "run"
    tables = _plant_tables(out)
    pwned = tmp_path / "pwned"
    overrides = ["training.rounds=1"]
    path = out / checkpoint.CHECKPOINT
    if damage == "pickle_renamed":
        path.write_bytes(pickle.dumps(_Payload(f"touch {pwned}")))
        words = [str(path), "not a sinsim checkpoint"]
    elif damage == "truncated":
        _save_one(out, load_scenario(ROOT / TINY, overrides).resolved())
        path.write_bytes(path.read_bytes()[:-40])
        words = [str(path), "run without --resume to start over"]
    else:
        _save_one(out, load_scenario(ROOT / TINY, [*overrides, "training.lr=0.5"]).resolved())
        words = ["training.lr: 0.5 then, 0.05 now", str(out)]
    proc = _cli(TINY, "--out", str(out), "--resume", "--quiet",
                *[a for o in overrides for a in ("--set", o)])
    _assert_refused(proc, *words)
    assert not pwned.exists()
    assert {n: (out / n).read_bytes() for n in TABLES} == tables


def test_sweep_does_not_load_an_untrusted_checkpoint(tmp_path):
    from sinsim.sweep.executors import _resumable

    pwned = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    (out / checkpoint.LEGACY).write_bytes(pickle.dumps(_Payload(f"touch {pwned}")))
    assert _resumable(out, {"name": "x"}) is False  # the run starts afresh
    (out / checkpoint.LEGACY).unlink()
    (out / checkpoint.CHECKPOINT).write_bytes(pickle.dumps(_Payload(f"touch {pwned}")))
    assert _resumable(out, {"name": "x"}) is False
    assert not pwned.exists()


# ---------------------------------------------------------------------------------------------
# resume of the states test_resume.py does not hold: persistent ALQ moments, error feedback


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py) for the engine runs of this module: they check
    tables and checkpoints, not how much is learned."""


def _scenario():
    return validate_scenario({
        "name": "resume_state", "seed": 5, "clients": {"count": 8},
        "links": {"model": "fixed", "uplink": {"rate_bps": 1e6}, "downlink": {"rate_bps": 5e6},
                  "loss": {"kind": "bernoulli", "p": 0.2}},
        "training": {"dataset": "synthetic_small", "rounds": 2, "clients_per_round": 4,
                     "lr": 0.05, "round_deadline": "10min", "workers": 1},
        "algorithms": [{"fedavg": {"update": {"kind": "topk", "fraction": 0.05}}},
                       {"spacedml": {"moments": "persistent", "schedule": "sequential",
                                     "pretrain": "never"}}],
    })


class _Stop(Exception):
    pass


def _stop_after(n: int, also=None):
    seen = []

    def on_round_end(row):
        seen.append(row)
        if also:
            also(len(seen))
        if len(seen) == n:
            raise _Stop
    return on_round_end


def _assert_same_tables(a: Path, b: Path) -> None:
    same_tables(a, b, TABLES)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_scenario(_scenario(), out)
    return out


@pytest.mark.slow  # engine runs
@pytest.mark.parametrize("stopped_after", [1, 3])  # FedAvg's first round; SpaceDML's first
def test_moments_and_residuals_resume_to_the_uninterrupted_tables(reference, tmp_path,
                                                                   stopped_after):
    with pytest.raises(_Stop):
        run_scenario(_scenario(), tmp_path, on_round_end=_stop_after(stopped_after))
    cp = checkpoint.load(tmp_path)
    held = cp.current.strategy
    if stopped_after == 1:
        assert held["residuals"]  # FedAvg's error feedback
    else:
        moments = [m["moments"] for m in held["memory"].values()]
        assert moments and all(m is not None for m in moments)  # persistent moments
        assert held["global"]["state"] is cp.current.global_state  # one object
    run_scenario(_scenario(), tmp_path, resume=True)
    _assert_same_tables(reference, tmp_path)


# ---------------------------------------------------------------------------------------------
# disk failures: exit 1 and one line, finished rounds intact, --resume once the disk is back


def _is_table(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").endswith(".csv")
    except OSError:  # no /proc: every write counts
        return True


def _failing_write(monkeypatch, after: int, error: int = errno.ENOSPC, partial: bool = True):
    """``os.write`` that fails (after writing part of its data) from its ``after``-th call on
    a table of the run."""
    real = os.write
    calls = []

    def write(fd, data):
        if not _is_table(fd):
            return real(fd, data)
        calls.append(fd)
        if len(calls) >= after:
            if partial and len(data) > 1:
                real(fd, bytes(data[: len(data) // 2]))  # a torn row, as a full disk leaves
            raise OSError(error, os.strerror(error))
        return real(fd, data)
    monkeypatch.setattr("sinsim.sim.recorder.os.write", write)


def _parse_all(out: Path) -> dict[str, pd.DataFrame]:
    tables = {t: pd.read_csv(out / t) for t in TABLES}
    for name, df in tables.items():  # no torn rows: every cell of every row where it belongs
        assert not df["algorithm"].isna().any(), name
        assert df["round"].dtype.kind == "i", name
    return tables


@pytest.mark.slow  # engine runs
@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS])
def test_a_failed_table_write_keeps_the_finished_rounds_and_resumes(reference, tmp_path,
                                                                    monkeypatch, error):
    # Prepare: the disk fails while round 3 (SpaceDML's first) is written
    failing = {}

    def arm(n_rounds):
        if n_rounds == 2:
            _failing_write(monkeypatch, after=2, error=error)  # the round's 2nd table write
            failing["armed"] = True

    # Execute
    with pytest.raises(WriteFailed, match=r"cannot write .*\.csv: ") as e:
        run_scenario(_scenario(), tmp_path, on_round_end=_stop_after(99, arm))

    # Assert: one line naming the file; two rounds intact in every table; summary says failed
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)
    tables = _parse_all(tmp_path)
    assert len(tables["rounds.csv"]) == 2
    ref = read_tables(reference, TABLES)
    for t in TABLES:
        done = ref[t][ref[t]["algorithm"].eq("fedavg")]
        got = tables[t].drop(columns="host_wall_s", errors="ignore")
        pd.testing.assert_frame_equal(got, done.reset_index(drop=True), check_exact=True)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "WriteFailed" in summary["error"]
    monkeypatch.undo()  # the disk is back
    run_scenario(_scenario(), tmp_path, resume=True)
    _assert_same_tables(reference, tmp_path)


@pytest.mark.slow  # engine runs
def test_a_failed_checkpoint_write_keeps_the_last_one_and_resumes(reference, tmp_path,
                                                                  monkeypatch):
    real = np.lib.format.write_array
    saved = []

    def write_array(f, array, *a, **kw):
        if len(saved) >= 1:  # the second checkpoint: no space left half-way
            f.write(b"x" * 10)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(f, array, *a, **kw)

    def count(n_rounds):
        saved.append(n_rounds)

    monkeypatch.setattr("sinsim.sim.checkpoint.np.lib.format.write_array", write_array)
    with pytest.raises(WriteFailed, match="cannot write the checkpoint .*no space left"):
        run_scenario(_scenario(), tmp_path, on_round_end=_stop_after(99, count))
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    assert len(checkpoint.load(tmp_path).current.rows) == 1  # the first round's, intact
    assert len(_parse_all(tmp_path)["rounds.csv"]) == 2  # round 2 on disk, not checkpointed
    run_scenario(_scenario(), tmp_path, resume=True)
    _assert_same_tables(reference, tmp_path)


def test_a_table_removed_under_the_run_stops_it(tmp_path):
    rec = Recorder(tmp_path)
    row = {"algorithm": "a", "round": 1}
    rec.write_round(row, [], [])
    (tmp_path / "clients.csv").unlink()
    with pytest.raises(WriteFailed, match=r"clients\.csv: it was removed or replaced"):
        rec.write_round({**row, "round": 2}, [], [])
    rec.close()
    assert pd.read_csv(tmp_path / "rounds.csv")["round"].tolist() == [1]
    # --resume then refuses: the rows the checkpoint counts are gone
    with pytest.raises(ConfigError, match=r"clients\.csv: does not hold the 1 rows"):
        Recorder(tmp_path, resume_counts={"rounds": 1, "transfers": 0, "clients": 1,
                                          "hops": 0})


def test_a_failed_write_rolls_every_table_back_to_the_last_round(tmp_path, monkeypatch):
    rec = Recorder(tmp_path)
    row = {"algorithm": "a", "round": 1}
    t = {"algorithm": "a", "round": 1, "client": 0, "direction": "up", "bytes": 5}
    h = {"algorithm": "a", "round": 1, "client": 0, "hop": 1}
    rec.write_round(row, [t], [{"algorithm": "a", "round": 1, "client": 0}], [h])
    before = {n: (tmp_path / n).read_bytes() for n in TABLES}
    _failing_write(monkeypatch, after=3)  # transfers and hops written, clients torn
    with pytest.raises(WriteFailed, match="clients.csv: no space left on device"):
        rec.write_round({**row, "round": 2}, [{**t, "round": 2}],
                        [{"algorithm": "a", "round": 2, "client": 0}], [{**h, "round": 2}])
    assert {n: (tmp_path / n).read_bytes() for n in TABLES} == before
    assert rec.counts == {"rounds": 1, "transfers": 1, "clients": 1, "hops": 1}


def _tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` at ``path`` (root on Linux); False where that cannot be."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.slow  # two command-line runs of tiny.yaml
def test_cli_on_a_full_disk_exits_1_in_one_line_and_resumes_when_space_is_back(tmp_path):
    """A real full filesystem (a 12 MB tmpfs, where the test runs as root): the disk fills
    after the first round; the run stops with exit 1 and one line, the finished rounds
    parse, and --resume, once space is freed, gives the tables of an uninterrupted run."""
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "12m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        args = (TINY, "--quiet", "--set", "training.rounds=2", "--set", "training.workers=1",
                "--set", "training.portable=false")  # one machine: the fast kernels
        ref = _cli(*args, "--out", str(tmp_path / "ref"))
        assert ref.returncode == 0, ref.stderr
        out = disk / "run"
        env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
        proc = subprocess.Popen([sys.executable, "-m", "sinsim", *args, "--out", str(out)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        while (not (out / "rounds.csv").exists()
               or len((out / "rounds.csv").read_text().splitlines()) < 2):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        filler = disk / "filler"
        with open(filler, "wb") as f:  # fill the disk
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
                    f.flush()
            except OSError:
                pass
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 1, stderr
        assert "Traceback" not in stderr
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "no space left on device" in lines[0], stderr
        # the first write to fail names its file: a table or the checkpoint, by timing
        assert re.match(rf"sinsim: run failed: cannot write (the checkpoint )?{re.escape(str(out))}/",
                        lines[0]), lines[0]
        assert len(_parse_all(out)["rounds.csv"]) >= 1
        filler.unlink()  # the disk is back
        done = _cli(*args, "--out", str(out), "--resume")
        assert done.returncode == 0, done.stderr
        _assert_same_tables(tmp_path / "ref", out)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
