"""Strict inputs: keys given twice, YAML aliases that expand without end, values that cannot be
represented where they are used (float32, NaN, infinity, C integers), a bad ``--out``. Every
one is bad input (a ConfigError, exit 2) whose message names the file and the key path."""

from __future__ import annotations

import math
import os
import tempfile
import time
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, BeforeValidator

from sinsim import cli, cli_commands, params
from sinsim.errors import ConfigError
from sinsim.learn.strategies import STRATEGIES
from sinsim.params import FLOAT32_MAX, FLOAT32_TINY
from sinsim.scenario import load_scenario, validate_scenario
from sinsim.scenario.loading import MAX_YAML_DEPTH, MAX_YAML_NODES, parse_yaml
from sinsim.scenario.model import MAX_CPU_THREADS, MAX_SEED, MAX_WORKERS, Scenario
from sinsim.sweep import plan_sweep

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SWEEPS = Path(__file__).resolve().parent.parent / "sweeps"
FINITE_GUARDS = {params._finite, params.parse_duration_s}  # what Float and durations check

BASE = """\
name: strict
clients: {count: 4}
training:
  dataset: synthetic
  rounds: 2
  clients_per_round: 2
"""


def _error(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_scenario(path, overrides)
    return str(info.value)


def _invalid(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_scenario(raw, file="x.yaml")
    return str(info.value)


# --------------------------------------------------------------------------------------------
# keys given twice


@pytest.mark.parametrize(("text", "message"), [
    (BASE + "name: other\n", "name: key given twice (lines 1 and 7)"),
    (BASE + "training:\n  rounds: 3\n", "training: key given twice (lines 3 and 7)"),
    (BASE + "  rounds: 3\n", "training.rounds: key given twice (lines 5 and 7)"),
    (BASE + "links:\n  uplink: {rate_bps: 1.0e6, rate_bps: 2.0e6}\n",
     "links.uplink.rate_bps: key given twice (line 8)"),
    (BASE + "algorithms:\n  - fedavg\n  - spacedml:\n      lr: 0.001\n      i_max: 4\n"
            "      lr: 0.002\n", "algorithms.1.spacedml.lr: key given twice (lines 10 and 12)"),
    (BASE + "server:\n  ground_stations:\n    - {id: a, lat_deg: 1, lon_deg: 2}\n"
            "    - id: b\n      lat_deg: 3\n      id: c\n",
     "server.ground_stations.1.id: key given twice (lines 10 and 12)"),
])
def test_a_key_given_twice_names_the_key_path_and_both_lines(write_yaml, text, message):
    path = write_yaml(text)
    assert _error(path) == f"{path}: {message}"


def test_keys_that_read_as_the_same_value_are_the_same_key():
    # the mapping would keep one of them: 1 and 0x1 are both the integer 1, yes and true both True
    with pytest.raises(ConfigError, match=r"^0x1: key given twice \(lines 1 and 2\)$"):
        parse_yaml("1: a\n0x1: b\n")
    with pytest.raises(ConfigError, match=r"^true: key given twice"):
        parse_yaml("yes: a\ntrue: b\n")
    assert parse_yaml("'1': a\n1: b\n") == {"1": "a", 1: "b"}  # a string and an integer


def test_merge_keys_may_be_overridden_and_aliases_still_work(write_yaml):
    """``<<: *base`` takes a mapping's keys, which the keys written beside it override: that
    is how merges are meant to be used, not a key given twice."""
    assert parse_yaml("base: &b {lr: 0.1, rounds: 2}\nt: {<<: *b, lr: 0.2}\n")["t"] == {
        "lr": 0.2, "rounds": 2}
    path = write_yaml(BASE + "links:\n  uplink: &rate {rate_bps: 2.0e6}\n  downlink: *rate\n")
    links = load_scenario(path).links
    assert links.uplink.rate_bps == links.downlink.rate_bps == 2e6


def test_a_key_given_twice_in_a_set_value_is_named_below_the_set_key(write_yaml):
    path = write_yaml(BASE)
    assert _error(path, ("training={rounds: 1, rounds: 2}",)) == (
        f"{path}: training.rounds: key given twice (line 1)")


def test_a_key_given_twice_in_a_sweep_file_names_the_sweep_and_the_key(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"scenario: {SCENARIOS / 'tiny.yaml'}\n"
                     "grid:\n  training.lr: [0.01, 0.05]\n"
                     "seeds: [0]\n"
                     "grid:\n  training.rounds: [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        plan_sweep(sweep)
    assert str(info.value) == f"{sweep}: grid: key given twice (lines 2 and 5)"
    sweep.write_text(f"scenario: {SCENARIOS / 'tiny.yaml'}\n"
                     "grid:\n  training.lr: [0.01, 0.05]\n  training.lr: [0.1]\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: grid\.training\.lr: key given twice "
                                          r"\(lines 3 and 4\)"):
        plan_sweep(sweep)


@pytest.mark.parametrize("path", sorted([*SCENARIOS.glob("*.yaml"), *SWEEPS.glob("*.yaml")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bundled_files_read_strictly_as_safe_load_reads_them(path):
    text = path.read_text()
    assert parse_yaml(text, file=str(path)) == yaml.safe_load(text)


# --------------------------------------------------------------------------------------------
# aliases and nesting that would not end


def _laugh_bomb(levels: int = 9, width: int = 10) -> str:
    """The "billion laughs": each level a list of ``width`` aliases of the one before."""
    lines = ["name: lol", "clients: {count: 4}",
             "l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_stops_quickly_at_the_node_cap(write_yaml):
    text = _laugh_bomb()
    assert len(text) < 1000  # 10**9 strings once expanded
    path = write_yaml(text)
    t0 = time.perf_counter()
    message = _error(path)
    elapsed = time.perf_counter() - t0
    assert message.startswith(f"{path}: l4: more than {MAX_YAML_NODES:,} YAML values with "
                              "the aliases expanded")
    assert elapsed < 0.5


def test_node_cap_is_far_above_every_bundled_file():
    # the walk counts keys and values with aliases expanded; the largest bundled file holds 267
    assert MAX_YAML_NODES >= 100 * 300
    parse_yaml(_laugh_bomb(levels=3))  # l3 holds 10**4 strings: still read
    with pytest.raises(ConfigError, match="^l4: more than 100,000 YAML values"):
        parse_yaml(_laugh_bomb(levels=4))  # l4 holds 10**5


def test_an_alias_inside_the_node_it_names_is_refused(write_yaml):
    path = write_yaml(BASE + "loop: &a [1, *a]\n")
    assert _error(path) == (f"{path}: loop.1: an alias names a node that contains it (the node "
                            "of line 7); it would repeat without end")


@pytest.mark.parametrize("levels", [MAX_YAML_DEPTH + 5, 5_000])
def test_nesting_too_deep_is_refused_not_a_recursion_error(write_yaml, levels):
    path = write_yaml(BASE + "deep: " + "[" * levels + "]" * levels + "\n")
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in _error(path)


def test_a_laugh_bomb_in_a_set_value_is_refused(write_yaml):
    path = write_yaml(BASE)
    levels = [f"&{c} [" + ", ".join([f"*{p}"] * 10) + "]" for p, c in zip("abcdefgh", "bcdefghi")]
    bomb = "algorithms=[&a [" + ", ".join(["x"] * 10) + "], " + ", ".join(levels) + "]"
    assert "scenario.yaml: algorithms.4: more than 100,000 YAML values" in _error(path, (bomb,))


# --------------------------------------------------------------------------------------------
# scalars YAML cannot turn into values


@pytest.mark.parametrize(("line", "message"), [
    ("start: 2026-13-01", "start: cannot read '2026-13-01' (line 7): month must be in 1..12"),
    ("seed: " + "9" * 5000, "seed: cannot read '" + "9" * 37 + "...' (line 7): an integer of "
     "5000 characters is too long to read"),
])
def test_a_scalar_that_cannot_be_read_names_key_and_line(write_yaml, line, message):
    path = write_yaml(BASE + line + "\n")
    assert _error(path) == f"{path}: {message}"


def test_unknown_tags_and_unhashable_keys_stay_yaml_errors(write_yaml):
    assert "not valid YAML (line 7, column 7): could not determine a constructor for the tag " \
           "'!foo'" in _error(write_yaml(BASE + "seed: !foo 1\n"))
    assert "not valid YAML" in _error(write_yaml(BASE + "? [1]\n: 2\n"))


# --------------------------------------------------------------------------------------------
# floats: finite everywhere, float32 where torch takes them


def _tiny(**training) -> dict:
    return {"name": "t", "clients": {"count": 4},
            "training": {"dataset": "synthetic", "clients_per_round": 2, **training}}


def test_a_float32_learning_rate_past_the_largest_float32_is_named():
    assert _invalid(_tiny(lr=1e308)) == (
        "x.yaml: training.lr: 1e+308 cannot be represented as a float32 (largest 3.4e+38)")


def test_float32_boundaries_are_exact():
    assert FLOAT32_MAX == 3.4028234663852886e38  # numpy.finfo(float32).max as a Python float
    assert validate_scenario(_tiny(lr=FLOAT32_MAX)).training.lr == FLOAT32_MAX
    assert "cannot be represented as a float32" in _invalid(
        _tiny(lr=math.nextafter(FLOAT32_MAX, math.inf)))  # torch refuses it as a step size
    # the smallest float32 above 0 (a subnormal) and anything that rounds up to it are kept;
    # half of it rounds to 0 (to even), so the value would mean 0
    assert validate_scenario(_tiny(lr=FLOAT32_TINY)).training.lr == FLOAT32_TINY
    assert validate_scenario(_tiny(lr=math.nextafter(2.0**-150, 1))).training.lr > 0
    assert _invalid(_tiny(lr=2.0**-150)) == (
        "x.yaml: training.lr: 7.00649e-46 rounds to 0 as a float32 (smallest 1.4e-45)")


def test_momentum_that_float32_rounds_to_zero_is_refused_and_zero_is_kept():
    assert _invalid(_tiny(momentum=1e-50)) == (
        "x.yaml: training.momentum: 1e-50 rounds to 0 as a float32 (smallest 1.4e-45)")
    assert validate_scenario(_tiny(momentum=0.0)).training.momentum == 0.0


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("lr", 1e308, "algorithms.0.lr: 1e+308 cannot be represented as a float32"),
    ("prune_lr", 1e-50, "algorithms.0.prune_lr: 1e-50 rounds to 0 as a float32"),
])
def test_spacedml_step_sizes_are_float32(key, value, fragment):
    raw = {**_tiny(), "algorithms": [{"spacedml": {key: value}}]}
    assert fragment in _invalid(raw)


def test_float32_learning_rate_on_the_command_line(write_yaml):
    path = write_yaml(BASE)
    assert _error(path, ("training.lr=1e308",)) == (
        f"{path}: training.lr: 1e+308 cannot be represented as a float32 (largest 3.4e+38)")
    assert load_scenario(path, ("training.lr=3.4028234663852886e+38",)).training.lr == FLOAT32_MAX


@pytest.mark.parametrize(("key", "text", "message"), [
    ("training.lr", ".nan", "training.lr: must be a finite number, got nan"),
    ("training.lr", ".inf", "training.lr: must be a finite number, got inf"),
    ("training.lr", "inf", "training.lr: must be a finite number, got 'inf'"),
    ("links.loss", "{kind: bernoulli, p: .nan}", "links.loss.p: must be a finite number, got nan"),
    ("compute.flops_per_s", ".inf", "compute.flops_per_s: must be a finite number, got inf"),
    ("training.partition", "{kind: dirichlet, alpha: .inf}",
     "training.partition.alpha: must be a finite number, got inf"),
    ("links.uplink.propagation_delay_s", "-.inf",
     "links.uplink.propagation_delay_s: must be a finite number, got -inf"),
    ("training.target_accuracy", "1e400", "training.target_accuracy: must be a finite number, "
     "got '1e400'"),
    ("training.lr", "1" + "0" * 400, "training.lr: must be a finite number, got an integer of "
     "401 digits"),
    ("horizon", ".inf", "horizon: expected a finite duration, got inf"),
    ("horizon", "1e400s", "horizon: expected a finite duration, got '1e400s'"),
    ("training.round_deadline", ".nan", "training.round_deadline: expected a finite duration, "
     "got nan"),
])
def test_nan_and_infinity_are_refused_naming_the_key(write_yaml, key, text, message):
    path = write_yaml(BASE)
    assert _error(path, (f"{key}={text}",)) == f"{path}: {message}"


def _guarded(meta) -> bool:
    return any(isinstance(m, BeforeValidator) and m.func in FINITE_GUARDS for m in meta)


def _floats_in(annotation, where: str) -> list[str]:
    """The ``float`` types in an annotation that no finiteness check guards."""
    if annotation is float:
        return [where]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        return [] if inner is float and _guarded(meta) else _floats_in(inner, where)
    if origin is typing.Literal:
        return []
    return [f for a in typing.get_args(annotation) for f in _floats_in(a, where)]


def _sections() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo: list = [Scenario, *(s.Params for s in STRATEGIES.values())]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            if t in seen:
                continue
            seen.append(t)
            todo += [f.annotation for f in t.model_fields.values()]
        else:
            todo += list(typing.get_args(t))
    return seen


def test_every_float_key_of_the_schema_refuses_nan_and_infinity():
    """No key of a scenario (nor of a strategy's or codec's parameters) is a bare ``float``:
    each is a Float (finite), a Float32 or a duration, so NaN and infinity never get in."""
    sections = _sections()
    assert len(sections) > 20
    bare = [f for s in sections for name, field in s.model_fields.items()
            if not (field.annotation is float and _guarded(field.metadata))  # pydantic unpacks
            for f in _floats_in(field.annotation, f"{s.__name__}.{name}")]  # a field's Float
    assert bare == []


# --------------------------------------------------------------------------------------------
# integers that a library takes as a fixed-width C integer


@pytest.mark.parametrize(("key", "limit", "fragment"), [
    ("seed", MAX_SEED, f"seed: must be <= {MAX_SEED}"),
    ("training.cpu_threads", MAX_CPU_THREADS, f"training.cpu_threads: must be <= "
                                              f"{MAX_CPU_THREADS}"),
    ("training.workers", MAX_WORKERS, f"training.workers: must be at most {MAX_WORKERS} "
                                      f"processes, got {MAX_WORKERS + 1}"),
])
def test_integers_past_what_their_library_takes_are_refused(write_yaml, key, limit, fragment):
    path = write_yaml(BASE)
    load_scenario(path, (f"{key}={limit}",))
    assert fragment in _error(path, (f"{key}={limit + 1}",))


def test_the_largest_seed_seeds_torch():
    import torch

    torch.manual_seed(MAX_SEED)  # 2**64 would overflow: "Overflow when unpacking long long"
    with pytest.raises((RuntimeError, ValueError, OverflowError)):
        torch.manual_seed(MAX_SEED + 1)


# --------------------------------------------------------------------------------------------
# --out (in process; tests/integration/test_cli.py runs the command line)


def test_out_that_is_a_file_is_bad_input(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(cli.OutputPathError, match=r"--out .*/f: is a file, not a directory$"):
        cli._output_dir(blocker)
    with pytest.raises(cli.OutputPathError,
                       match=r"--out .*/f/a/b: cannot create the directory: .*/f is a file$"):
        cli._output_dir(blocker / "a" / "b")
    with pytest.raises(cli.OutputPathError, match=r"cannot create the directory: .*/f is a file"):
        cli._output_dir(blocker / "a", create=False)


def test_out_is_created_with_its_parents_and_left_empty(tmp_path):
    out = cli._output_dir(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []  # the probe file is gone
    assert cli._output_dir(tmp_path / "c", create=False) == tmp_path / "c"
    assert not (tmp_path / "c").exists()  # only checked


def test_out_that_cannot_be_written_leaves_nothing_behind(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(cli.OutputPathError,
                       match=r"--out .*/a/b: cannot write into the directory: permission denied"):
        cli._output_dir(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []  # a/ and a/b/ were removed again


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (root writes anywhere)")
def test_out_under_a_read_only_directory_is_bad_input(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(cli.OutputPathError, match="cannot create the directory: permission"):
            cli._output_dir(ro / "x")
        with pytest.raises(cli.OutputPathError, match="cannot write into the directory"):
            cli._output_dir(ro)
        with pytest.raises(cli.OutputPathError, match="permission denied"):
            cli._output_file(str(ro / "t.md"))
    finally:
        ro.chmod(0o755)


def test_markdown_out_is_checked_before_the_tables_are_read(tmp_path):
    read = []
    with pytest.raises(cli.OutputPathError, match="is a directory, not a file"):
        cli_commands.print_markdown(lambda: read.append(1) or "", str(tmp_path))
    with pytest.raises(cli.OutputPathError, match="no such directory"):
        cli_commands.print_markdown(lambda: read.append(1) or "", str(tmp_path / "no" / "t.md"))
    assert read == []
