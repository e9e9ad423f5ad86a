"""Checkpoints for ``--resume``: what a run needs to continue after its last complete round.

After every round (an asynchronous server: version) the engine saves, atomically (a temporary
file renamed over ``checkpoint.npz``): the resolved scenario and its hash (a resume with another
one is refused), the row count of each table, the summaries of the algorithms already finished,
and for the algorithm in progress its rounds so far, the simulated clock, the global model, the
strategy's own state (``Strategy.checkpoint``: e.g. SpaceDML's per-client memory and its
quantized global model), the batteries' charge and what the server carries over
(``AlgorithmState.server``: hierfl's kept late updates; ``log``: the asynchronous server's
trainings). Nothing else is needed: every random draw is keyed by (seed, purpose, round, client,
...) (``sinsim._rng``), so a resumed round draws what the uninterrupted one drew, and the tables
come out identical (host time aside). The file is removed when the run completes.

The file holds data only, so that a checkpoint found in a results directory someone else made
cannot run code when it is loaded: a zip archive (``.npz``) of ``checkpoint.json`` (everything
but the arrays: ``format``, ``version``, ``scenario_sha256``, ...) and one ``.npy`` array per
tensor or numpy array, read with ``allow_pickle=False``. The JSON encodes nested dicts, lists,
tuples, numbers, strings, numpy scalars, tensors and arrays (``{"$tensor": "a3"}``: the array
``a3.npy``); a dict or array that the state holds twice (SpaceDML's quantized global model keeps
the engine's global model) is stored once and comes back as one object. A checkpoint that does
not parse, comes from another format version, or holds anything else is refused
(``CheckpointError``: bad input, exit status 2), and so is the pickle file of earlier versions
(``checkpoint.pkl``), which is never opened.
A log (which only grows) is not rewritten with every checkpoint: each entry goes once to a file
of its own in the same format, ``checkpoint.log/<label digest>-<name>.npz``, before the
checkpoint that names it; a checkpoint removes the entries it does not name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinsim.errors import ConfigError, WriteFailed
from sinsim.sim.datafile import Decoder, Encoder, as_list

CHECKPOINT = "checkpoint.npz"
LEGACY = "checkpoint.pkl"  # sinsim before format 1: pickle, never loaded
FORMAT = "sinsim-checkpoint"
VERSION = 1
_META = "checkpoint.json"
LOG = "checkpoint.log"  # a directory: the entries of ``AlgorithmState.log``, a file each
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
class CheckpointError(ConfigError):
    """A checkpoint that cannot be trusted or read: bad input (exit status 2)."""


@dataclass
class AlgorithmState:
    """One algorithm, between two rounds."""

    label: str
    rows: list[dict[str, Any]]  # its rounds.csv rows so far
    now_s: float  # the simulated clock at the end of its last round
    global_state: dict[str, Any]
    strategy: Any  # Strategy.checkpoint(): data only (see the module's docstring)
    batteries: Any = None  # with ``power:``, every client's ``Battery.state()`` (or None)
    server: Any = None  # what the server carries over: hierfl's kept late updates
    # entries never changed once made (the asynchronous server's trainings), by name: each is
    # written once, to a file of its own under ``checkpoint.log/`` (None: given before)
    log: dict[str, Any] | None = None


@dataclass
class Checkpoint:
    scenario: dict[str, Any]  # Scenario.resolved()
    counts: dict[str, int]  # rows in rounds/transfers/clients.csv
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> its summary
    current: AlgorithmState | None = None
    scenario_sha256: str = ""  # of ``scenario`` (scenario_hash); filled in by save and load


def scenario_hash(resolved: dict[str, Any]) -> str:
    """The SHA-256 of a resolved scenario in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- save

def save(out_dir: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``out_dir/checkpoint.npz`` atomically (its new log entries
    first); a failed write (no space, a read-only or removed directory) leaves the previous
    checkpoint as it was and raises ``WriteFailed``."""
    path = Path(out_dir) / CHECKPOINT
    try:
        names = _save_log(Path(out_dir), checkpoint.current)
        arrays: dict[str, np.ndarray] = {}
        meta = {"format": FORMAT, "version": VERSION,
                "scenario_sha256": scenario_hash(checkpoint.scenario),
                "scenario": checkpoint.scenario, "counts": checkpoint.counts,
                **Encoder(arrays).encode({"finished": checkpoint.finished,
                                           "current": _current(checkpoint.current)}),
                "log": names}
        _write(path, meta, arrays)
        log, named = Path(out_dir) / LOG, set(names or ())
        for entry in log.glob("*.npz") if log.is_dir() else ():  # what it no longer needs
            if entry.stem not in named:
                entry.unlink()
    except OSError as e:
        raise WriteFailed(f"cannot write the checkpoint {path}: "
                          f"{(e.strerror or str(e)).lower()}") from e


def _write(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """``meta`` (JSON) and ``arrays`` (.npy) zipped to ``path``, atomically."""
    text = json.dumps(meta, separators=(",", ":"))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            z.writestr(_META, text)
            for key, array in arrays.items():
                with z.open(f"{key}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _save_log(out: Path, state: AlgorithmState | None) -> list[str] | None:
    """Write the entries of ``state.log`` that are not on disk yet; their file names."""
    if state is None or state.log is None:
        return None
    prefix = hashlib.sha256(state.label.encode("utf-8")).hexdigest()[:12]
    names = []
    for name, data in state.log.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TypeError(f"checkpoint: a log entry named {name!r}")
        file = f"{prefix}-{name}"
        path = out / LOG / f"{file}.npz"
        if data is None:  # given, and written, with an earlier checkpoint
            if not path.exists():
                raise FileNotFoundError(errno.ENOENT, "a log entry is missing", str(path))
        elif not path.exists():  # an entry never changes: written once
            path.parent.mkdir(exist_ok=True)
            arrays: dict[str, np.ndarray] = {}
            _write(path, {"format": FORMAT, "version": VERSION,
                          "entry": Encoder(arrays).encode(data)}, arrays)
        names.append(file)
    return names


def _current(state: AlgorithmState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"label": state.label, "rows": state.rows, "now_s": state.now_s,
            "global_state": state.global_state, "strategy": state.strategy,
            "batteries": state.batteries, "server": state.server}


# ----------------------------------------------------------------------------- load

def load(out_dir: str | Path) -> Checkpoint | None:
    """The checkpoint in ``out_dir``; None if there is none. ``CheckpointError`` if it cannot
    be read, comes from another format version, or is the pickle file of an earlier sinsim
    (never opened)."""
    out = Path(out_dir)
    path = out / CHECKPOINT
    legacy = out / LEGACY
    if legacy.exists():
        raise CheckpointError(
            "an old, untrusted checkpoint format (a pickle file, which can run code when "
            "loaded): sinsim does not load it. Delete it and run without --resume to start "
            "over", file=str(legacy))
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        return None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise CheckpointError(f"not a sinsim checkpoint ({_why(e)}); delete it and run "
                              f"without --resume to start over", file=str(path)) from None
    try:
        with z:
            meta = json.loads(z.read(_META).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("no sinsim checkpoint header")
            if meta.get("version") != VERSION:
                raise CheckpointError(
                    f"checkpoint format version {meta.get('version')!r}, this sinsim reads "
                    f"version {VERSION}: run without --resume to start over", file=str(path))
            cp = _checkpoint(meta, Decoder(z))
        if cp.current is not None and meta.get("log") is not None:
            cp.current.log = _load_log(out, meta["log"])
        return cp
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, it is refused
        raise CheckpointError(f"a damaged or foreign checkpoint ({_why(e)}); delete it and run "
                              f"without --resume to start over", file=str(path)) from None


def _load_log(out: Path, names: Any) -> dict[str, Any]:
    """The log entries ``names`` (their file names), read from ``out/checkpoint.log/``."""
    log = {}
    for file in as_list(names):
        if not isinstance(file, str) or not _NAME.fullmatch(file):
            raise ValueError(f"a log entry named {file!r}")
        with zipfile.ZipFile(out / LOG / f"{file}.npz") as z:
            meta = json.loads(z.read(_META).decode("utf-8"))
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise ValueError(f"log entry {file}: not of this checkpoint format")
            log[file.partition("-")[2]] = Decoder(z).decode(meta["entry"])
    return log


def _why(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) < 200 else text[:200] + "..."


def _checkpoint(meta: dict[str, Any], decoder: Decoder) -> Checkpoint:
    scenario, counts = meta["scenario"], meta["counts"]
    if not isinstance(scenario, dict):
        raise ValueError("scenario: not a mapping")
    if scenario_hash(scenario) != meta["scenario_sha256"]:
        raise ValueError("the scenario does not match its hash")
    if not (isinstance(counts, dict)
            and all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in counts.items())):
        raise ValueError("counts: not a mapping of table names to row counts")
    data = decoder.decode({"finished": meta["finished"], "current": meta["current"]})
    finished, current = data["finished"], data["current"]
    if not (isinstance(finished, dict) and all(isinstance(v, dict) for v in finished.values())):
        raise ValueError("finished: not a mapping of summaries")
    state = None
    if current is not None:
        rows, now_s = current["rows"], current["now_s"]
        if not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
            raise ValueError("current.rows: not a list of rows")
        if type(now_s) not in (int, float) or type(current["label"]) is not str:
            raise ValueError("current: bad label or clock")
        if not isinstance(current["global_state"], dict):
            raise ValueError("current.global_state: not a mapping")
        state = AlgorithmState(current["label"], rows, float(now_s), current["global_state"],
                               current["strategy"], current["batteries"],
                               current.get("server"))
    return Checkpoint(scenario, counts, finished, state, meta["scenario_sha256"])


# ----------------------------------------------------------------------------- the rest

def remove(out_dir: str | Path) -> None:
    """Remove the checkpoint, its log (and a pickle one of an earlier sinsim, unread)."""
    for name in (CHECKPOINT, LEGACY, LOG):
        path = Path(out_dir) / name
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as e:
            raise WriteFailed(f"cannot remove {path}: {(e.strerror or str(e)).lower()}") from e


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first key path where two resolved scenarios differ, with both values; None if equal.

    >>> first_difference({"training": {"lr": 0.05}}, {"training": {"lr": 0.1}})
    'training.lr: 0.05 then, 0.1 now'
    """
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            here = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{here}: {'missing' if key not in a else 'given'} then, " \
                       f"{'missing' if key not in b else 'given'} now"
            diff = first_difference(a[key], b[key], here)
            if diff:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff = first_difference(x, y, f"{path}.{i}" if path else str(i))
            if diff:
                return diff
        return None
    return None if a == b else f"{path or '(top)'}: {a!r} then, {b!r} now"

