"""bench/vs_flower.py: the pieces that need neither Flower nor a long run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sinsim.scenario import load_scenario
from tests.benches import load_bench

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "vs_flower.py"


@pytest.fixture(scope="module")
def bench():
    return load_bench("vs_flower")


def test_import_pulls_in_neither_flower_nor_torch():
    code = (f"import importlib.util, sys; s = importlib.util.spec_from_file_location('v', "
            f"{str(BENCH)!r}); m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            f"print(sorted(k for k in ('flwr', 'ray', 'torch') if k in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_written_scenario_loads_and_is_the_workload(bench, tmp_path):
    path = bench.write_scenario(tmp_path / "vs_flower.yaml", rounds=3, data_dir=tmp_path)
    sc = load_scenario(path)
    tr = sc.training
    assert sc.clients.count == 100 and not sc.clients.orbital
    assert sc.links.model == "fixed" and sc.links.loss.kind == "none"
    assert (tr.dataset, tr.partition.kind, tr.model) == ("fashion_mnist", "iid", "lenet5")
    assert (tr.rounds, tr.clients_per_round, tr.local_epochs) == (3, 10, 1)
    assert (tr.batch_size, tr.lr, tr.momentum) == (10, 0.01, 0.0)
    assert tr.download is False and tr.data_dir == str(tmp_path)
    assert [a.label for a in sc.algorithms] == ["fedavg"]
    # sinsim's own parallelism defaults are left alone
    raw = bench.scenario_dict()["training"]
    assert not {"workers", "cpu_threads"} & set(raw)
    # the Flower side uses the same constants
    workload = (sc.clients.count, tr.clients_per_round, tr.batch_size, tr.lr)
    assert workload == (bench.N_CLIENTS, bench.CLIENTS_PER_ROUND, bench.BATCH_SIZE, bench.LR)


def test_sinsim_command_is_a_fresh_quiet_process(bench, tmp_path):
    cmd = bench.sinsim_command(tmp_path / "s.yaml", tmp_path / "out")
    assert cmd[:3] == [sys.executable, "-m", "sinsim"]
    assert cmd[-3:] == ["--out", str(tmp_path / "out"), "--quiet"]


def test_help_works_without_flower():
    proc = subprocess.run([sys.executable, str(BENCH), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "flower_over_sinsim" in proc.stdout
    assert "--rounds" in proc.stdout and "--repeats" in proc.stdout


def test_bad_arguments_exit_2(bench):
    with pytest.raises(SystemExit) as e:
        bench.parse_args(["--rounds", "0"])
    assert e.value.code == 2


def test_repeats_default_from_the_environment(bench, monkeypatch):
    monkeypatch.setenv("SINSIM_BENCH_REPEATS", "5")
    assert bench.parse_args([]).repeats == 5


def test_process_tree_memory_of_this_process(bench):
    mb, n = bench.tree_pss_mb(os.getpid())
    assert n >= 1 and mb > 1


@pytest.mark.slow
def test_bench_runs_one_round():
    """One round, one repeat: runnable (with Flower when it is installed), not timed."""
    env = {**os.environ, "SINSIM_BENCH_REPEATS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH), "--rounds", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    if last.startswith("flower_over_sinsim: "):
        assert float(last.partition(": ")[2]) > 0
    else:
        assert last == "flwr not installed: pip install 'sinsim[peers]'"
