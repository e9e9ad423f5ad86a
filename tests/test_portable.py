"""Portable mode (``training.portable``, ``sinsim.learn.portable``): torch's CPU kernels pinned
to one generic path, so that a scenario gives the same tables on any x86-64 processor.

One machine cannot be two processors, but it can run torch's kernels at two of its instruction
sets: ATen's at AVX2 (``ATEN_CPU_CAPABILITY=avx2``) or at the generic build (``default``),
oneDNN's at AVX2 or SSE4.1 (``ONEDNN_MAX_CPU_ISA``). Run under each, ``tiny`` gives other
numbers (what two processors do), and in portable mode the same tables: the pins win over the
environment the command starts in.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sinsim.errors import ConfigError
from sinsim.learn import portable
from sinsim.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
for _k in portable.PINS:  # the commands start as a user's would, unpinned
    ENV.pop(_k, None)

# two processors' worth of kernels on one machine (an AVX2 one, and one with SSE4.1 only)
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}
BASELINE = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
            "DNNL_MAX_CPU_ISA": "SSE41"}


def _has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and " avx2" in line for line in cpuinfo.splitlines())


def sinsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinsim", *args], cwd=ROOT,
                          env={**ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=1200)


def test_the_pins_win_over_the_environment():
    env = portable.environment({"ATEN_CPU_CAPABILITY": "avx512", "PATH": "/bin"})
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["PATH"] == "/bin"
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["OMP_NUM_THREADS"] == "1"
    assert portable.pinned(env)
    assert not portable.pinned({**env, "MKL_CBWR": "AUTO"})


def test_portable_is_a_training_key_checked_like_the_others(tiny_raw):
    tiny_raw["training"]["portable"] = True
    assert validate_scenario(tiny_raw).training.portable
    del tiny_raw["training"]["portable"]
    assert not validate_scenario(tiny_raw).training.portable  # off by default
    for key, value, message in (("portable", "maybe", "training.portable"),
                                ("device", "cuda", "device must be auto or cpu"),
                                ("cpu_threads", 2, "cpu_threads must be 1, got 2")):
        raw = {**tiny_raw, "training": {**tiny_raw["training"], "portable": True, key: value}}
        with pytest.raises(ConfigError, match=message):
            validate_scenario(raw)


def test_a_process_that_cannot_take_the_pins_refuses_a_portable_run(tiny_raw, tmp_path):
    """In-process (a library's caller): torch here has long run its kernels, so the run stops
    at once, naming the key, rather than claim tables it cannot promise."""
    if portable.pinned():
        pytest.skip("this test process was started with the portable environment")
    from sinsim.sim.engine import run_scenario

    tiny_raw["training"]["portable"] = True
    with pytest.raises(ConfigError, match="training.portable: this process started without"):
        run_scenario(validate_scenario(tiny_raw), tmp_path)


def test_the_module_prints_the_pins_and_runs_a_command_with_them():
    run = [sys.executable, "-m", "sinsim.learn.portable"]
    out = subprocess.run(run, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "export ATEN_CPU_CAPABILITY=default\n" in out.stdout
    show = "import os; print(os.environ['ATEN_CPU_CAPABILITY'], os.environ['MKL_CBWR'])"
    out = subprocess.run([*run, sys.executable, "-c", show],
                         env={**ENV, "ATEN_CPU_CAPABILITY": "avx2"}, capture_output=True,
                         text=True, timeout=300)
    assert (out.returncode, out.stdout) == (0, "default COMPATIBLE\n"), out.stderr


def test_a_sweep_cannot_mix_portable_and_not(tmp_path):
    sweep = tmp_path / "mixed.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "mixed", "scenario": str(ROOT / "scenarios" / "tiny.yaml"),
        "set": {"training.dataset": "synthetic"},
        "grid": {"training.portable": [True, False]}}), encoding="utf-8")
    proc = sinsim("sweep", str(sweep), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "training.portable: the runs of a sweep share their workers' environment" in proc.stderr


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(out / t).drop(columns="host_wall_s", errors="ignore")
            for t in ("rounds.csv", "transfers.csv")}


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.skipif(not _has_avx2(), reason="needs an x86-64 processor with AVX2")
def test_tiny_gives_the_same_tables_under_other_kernels_only_when_portable(tmp_path):
    runs = {}
    for mode in ("portable", "native"):
        for name, env in (("avx2", AVX2), ("baseline", BASELINE)):
            out = tmp_path / f"{mode}-{name}"
            proc = sinsim("scenarios/tiny.yaml", "--out", str(out), "--quiet",
                          "--set", "training.rounds=1",
                          "--set", f"training.portable={str(mode == 'portable').lower()}",
                          env=env)
            assert proc.returncode == 0, proc.stderr
            summary = json.loads((out / "summary.json").read_text())
            runs[mode, name] = _tables(out), summary
    for name in ("avx2", "baseline"):  # portable: the pins won over the environment
        summary = runs["portable", name][1]
        assert (summary["portable"], summary["cpu_capability"]) == (True, "DEFAULT")
    assert runs["native", "avx2"][1]["cpu_capability"] == "AVX2"
    assert runs["native", "baseline"][1]["cpu_capability"] == "DEFAULT"
    assert not runs["native", "avx2"][1]["portable"]

    same, other = runs["portable", "avx2"][0], runs["portable", "baseline"][0]
    for table in same:
        pd.testing.assert_frame_equal(same[table], other[table], check_exact=True, obj=table)
    # and the test can fail: without the pins the two kernel sets give other numbers (on this
    # kind of machine always: ATen's AVX2 build fuses multiply-adds, the generic one does not)
    native = runs["native", "avx2"][0]["rounds.csv"], runs["native", "baseline"][0]["rounds.csv"]
    assert not native[0].equals(native[1]), "AVX2 and generic kernels gave the same numbers"
    assert not native[0].equals(same["rounds.csv"])


@pytest.mark.slow
def test_a_portable_sweep_pins_its_workers(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "portable_sweep", "scenario": str(ROOT / "scenarios" / "tiny.yaml"),
        "set": {"training.portable": True, "training.dataset": "synthetic", "clients.count": 8,
                "training.rounds": 1, "algorithms": ["fedavg"]},
        "grid": {"training.lr": [0.01, 0.05]}}), encoding="utf-8")
    proc = sinsim("sweep", str(sweep), "--out", str(tmp_path / "out"), "--workers", "2",
                  env=AVX2)
    assert proc.returncode == 0, proc.stderr
    summaries = [json.loads(p.read_text())
                 for p in sorted((tmp_path / "out" / "runs").glob("*/summary.json"))]
    assert len(summaries) == 2
    assert all(s["portable"] and s["cpu_capability"] == "DEFAULT" for s in summaries)
