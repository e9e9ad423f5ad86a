"""The first hour of a new user (issue 27, item 6): each thing a newcomer tripped over, as a
test. The README's example output is checked against a real run in
tests/integration/test_cli.py; which way the model goes in `links` in test_links_command.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sinsim import cli_more
from sinsim.cli import main, parse_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("seconds", "text"), [
    (5.24, "5.2 s"), (119.0, "119.0 s"), (600.0, "10.0 min"), (216_000.0, "60.0 h"),
    (3 * 86_400.0, "3.0 days")])
def test_durations_in_readable_units(seconds, text):
    assert cli_more.duration(seconds) == text


def test_plurals():
    assert [cli_more.plural(n, "round") for n in (0, 1, 2, 1000)] == [
        "0 rounds", "1 round", "2 rounds", "1,000 rounds"]


@pytest.mark.slow
def test_a_run_in_a_log_shows_progress_and_its_host_time(tmp_path, tiny_raw, small_synthetic,
                                                         capsys):
    """Not a terminal (``make demo > log``): a line per round on stderr, then the summary with
    plurals right and the host wall time (it never printed: the bar was tested after closing)."""
    tiny_raw["training"].update(dataset=small_synthetic, rounds=1)
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(tiny_raw), encoding="utf-8")
    assert main([str(path), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert ", 4 clients, 1 round\n" in out and "  fedavg " in out
    assert err.startswith("round 1/1 fedavg: ") and "host wall time " in err
    assert main([str(path), "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_an_unknown_command_suggests_the_right_one(capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(["contact", "x.yaml"])
    assert e.value.code == 2
    assert "unknown command 'contact', did you mean 'contacts'?" in capsys.readouterr().err
    assert parse_args(["tiny"]).command == "run"  # a bundled scenario's name still runs


def test_a_missing_dependency_is_one_line_before_any_work(tmp_path):
    """Without the virtual environment (no site-packages): one line naming what to install,
    exit 2, not a traceback and not "finished rounds are on disk"."""
    proc = subprocess.run([sys.executable, "-S", "-m", "sinsim", "scenarios/tiny.yaml",
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sinsim: error: missing dependencies: ")
    assert "torch" in lines[0] and "pip install" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_missing_dependency_in_process(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(cli_more.DEPENDENCIES, "no_such_module_for_sinsim", "no-such-package")
    assert main(["scenarios/tiny.yaml", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == ("sinsim: error: missing dependencies: no-such-package (pip install "
                   "no-such-package; in the clone, `make setup` and .venv/bin/python)\n")


def test_a_misspelt_scenario_file_gets_a_did_you_mean(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["scenarios/leo_walkr.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == ("sinsim: error: scenarios/leo_walkr.yaml: no such scenario file; did you mean "
                   "'scenarios/leo_walker.yaml'?\n")


def test_a_bad_set_is_blamed_on_the_set(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["scenarios/tiny.yaml", "--set", "training.round=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sinsim: error: scenarios/tiny.yaml (--set training.round=3): "
                          "training.round: unknown key; did you mean 'rounds'?")
    assert main(["scenarios/tiny.yaml", "--set", "training.rounds=0"]) == 2
    assert capsys.readouterr().err.startswith(
        "sinsim: error: scenarios/tiny.yaml (--set training.rounds=0): training.rounds: ")


def test_each_command_describes_its_own_out(capsys):
    with pytest.raises(SystemExit):
        parse_args(["links", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--out PATH also write the CSV table to this file" in text
    assert "results directory" not in text and "markdown" not in text and "figures" not in text


def test_the_tutorial_scenario_loads():
    """The tutorial's scenario (docs/tutorial.md), with its later steps' sections, is valid."""
    import re

    from sinsim.scenario import validate_scenario

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "tutorial.md").read_text(), re.S)
    raw = yaml.safe_load(blocks[0])
    for later in blocks[1:]:
        raw.update(yaml.safe_load(later))
    sc = validate_scenario(raw, file="docs/tutorial.md")
    assert sc.name == "my_shell" and [a.name for a in sc.algorithms] == ["fedavg", "spacedml"]
