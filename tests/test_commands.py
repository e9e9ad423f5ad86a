"""The command line's parser: one subcommand per task, shared options declared once, and a bare
``SCENARIO.yaml`` read as ``run``."""

from __future__ import annotations

import pytest
import yaml

from sinsim.cli import COMMANDS, _parser, main, parse_args
from sinsim.sweep import plan_sweep


@pytest.mark.parametrize("argv", [
    ["s.yaml", "--out", "o", "--set", "training.rounds=1", "--set", "seed=3", "--quiet"],
    ["run", "s.yaml", "--out", "o", "--set", "training.rounds=1", "--set", "seed=3", "--quiet"],
    ["--quiet", "--out", "o", "--set", "training.rounds=1", "s.yaml", "--set", "seed=3"],
])
def test_a_bare_scenario_is_the_run_command(argv):
    args = parse_args(argv)
    assert (args.command, args.scenario, args.out, args.quiet) == ("run", "s.yaml", "o", True)
    assert args.overrides == ["training.rounds=1", "seed=3"]


def test_every_command_is_reachable_and_shares_its_options():
    sub = next(a for a in _parser()._actions if a.dest == "command")
    assert tuple(sub.choices) == COMMANDS
    options = {name: {o for a in p._actions for o in a.option_strings}
               for name, p in sub.choices.items()}
    assert {n for n, o in options.items() if "--out" not in o} == {"data", "scenarios"}
    assert {n for n, o in options.items() if "--set" in o} == {"run", "contacts", "links"}
    assert {n for n, o in options.items() if "--quiet" in o} == {"run", "sweep"}
    # --out is each command's own (its help says what that command writes); the rest are
    # declared once: the same argparse action object in every command that has it
    helps = {n: next(a.help for a in p._actions if "--out" in a.option_strings)
             for n, p in sub.choices.items() if "--out" in options[n]}
    assert len(set(helps.values())) == len(helps)
    for flag in ("--set", "--quiet"):
        actions = {id(a) for p in sub.choices.values() for a in p._actions
                   if flag in a.option_strings}
        assert len(actions) == 1, flag


@pytest.mark.parametrize(("argv", "dirs"), [
    (["table1", "a", "b", "--target", "0.9"], ["a", "b"]),
    (["report", "a"], ["a"]),
    (["fidelity", "a", "b"], ["a", "b"]),
])
def test_summary_commands_take_directories(argv, dirs):
    args = parse_args(argv)
    assert args.command == argv[0] and args.dirs == dirs
    assert getattr(args, "target", 0.9) == 0.9


def test_usage_errors_exit_2(capsys):
    for argv in (["table1"], ["sweep", "x.yaml", "--workers", "0"], ["plot"]):
        with pytest.raises(SystemExit) as e:
            parse_args(argv)
        assert e.value.code == 2
    assert "python -m sinsim" in capsys.readouterr().err


def test_scheduler_means_dask_at_that_address(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "name": "base", "clients": {"count": 4},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2}}))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"scenario": "base.yaml", "grid": {"training.lr": [0.1]}}))
    ex = plan_sweep(path, address="tcp://h:8786", workers=3).executor
    assert ex.model_dump() == {"kind": "dask", "workers": 3, "address": "tcp://h:8786"}
    assert main(["sweep", str(path), "--executor", "local", "--scheduler", "tcp://h:1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "sinsim: error: --scheduler is for --executor dask, not local"
