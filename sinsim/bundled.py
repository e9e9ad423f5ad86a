"""The scenarios and sweeps that ship with sinsim, by name.

``sinsim run leo_walker`` and ``sinsim sweep paper_table1`` take a bundled file when no file of
that name exists; ``sinsim scenarios`` lists them and ``sinsim scenarios show NAME`` prints
one; ``sinsim scenarios copy NAME DIR`` writes one with the files it points at
(:func:`copy_bundled`). In a clone they are ``scenarios/`` and ``sweeps/`` at its root; a wheel carries copies in
``sinsim/_bundled/`` (``setup.py`` puts them there), keeping their relative layout, so a sweep's
``scenario: ../scenarios/tiny.yaml`` still resolves.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import shutil
from pathlib import Path

import yaml

from sinsim.errors import ConfigError
from sinsim.paths import PACKAGE_DIR, source_checkout

KINDS = ("scenarios", "sweeps")


def bundled_dir(kind: str) -> Path:
    """Where the bundled ``kind`` (``scenarios`` or ``sweeps``) are."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    root = source_checkout()
    return (root / kind) if root is not None else PACKAGE_DIR / "_bundled" / kind


def names(kind: str) -> list[str]:
    """The bundled ``kind``'s names (file stems), sorted."""
    return sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))


def description(path: Path, width: int = 90) -> str:
    """The first sentence of a YAML file's leading comment (its one-line description), cut to
    ``width`` characters."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        words.append(line.lstrip("#").strip())
    text = " ".join(w for w in words if w)
    for i in range(len(text)):  # the first sentence ("et al." does not end one)
        if text.startswith(". ", i) and not text[:i].endswith(" al"):
            text = text[: i + 1]
            break
    return text if len(text) <= width else text[: width - 3].rsplit(" ", 1)[0] + " ..."


def resolve(text: str | Path, kind: str = "scenarios") -> Path:
    """The file ``text`` names: the path itself when it exists, else the bundled file of that
    name (``tiny`` or ``tiny.yaml``). Raises ConfigError naming the path, with a did-you-mean
    over the files beside it and the bundled names, when neither exists."""
    path = Path(text)
    if path.exists():
        return path
    if path.parent in (Path("."), Path(kind)) and path.suffix in ("", ".yaml", ".yml"):
        candidate = bundled_dir(kind) / f"{path.stem}.yaml"
        if candidate.is_file():
            return candidate
    hint = _did_you_mean(path, kind)
    raise ConfigError(f"no such {kind[:-1]} file{hint}", file=str(path))


def _did_you_mean(path: Path, kind: str) -> str:
    folder = path.parent
    near = []
    with contextlib.suppress(OSError):
        near = [p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml")]
    hit = difflib.get_close_matches(path.name, near, n=1, cutoff=0.75)
    if hit:
        return f"; did you mean {str(folder / hit[0])!r}?"
    hit = difflib.get_close_matches(path.stem, names(kind), n=1, cutoff=0.75)
    if hit:
        return f"; did you mean the bundled {kind[:-1]} {hit[0]!r}?"
    singular = kind[:-1]
    return (f" (nor a bundled {singular} of that name: `sinsim {kind}` lists them)"
            if kind == "scenarios" else f" (nor a bundled {singular}: {', '.join(names(kind))})")


def referenced_files(scenario: Path) -> list[str]:
    """The relative file paths a scenario file points at, as written (``server.ground_stations.
    csv``, the ``tle``/``omm`` ``path`` of ``clients`` and of ``server.satellite``: the keys
    whose relative paths resolve against the scenario's folder)."""
    raw = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    raw = raw if isinstance(raw, dict) else {}
    server = raw.get("server") if isinstance(raw.get("server"), dict) else {}
    found = []
    stations = server.get("ground_stations")
    if isinstance(stations, dict) and isinstance(stations.get("csv"), str):
        found.append(stations["csv"])
    for section in (raw.get("clients"), server.get("satellite")):
        for kind in ("tle", "omm"):
            source = section.get(kind) if isinstance(section, dict) else None
            if isinstance(source, dict) and isinstance(source.get("path"), str):
                found.append(source["path"])
    return [f for f in found if not Path(f).expanduser().is_absolute()]


def copy_bundled(name: str, dest_dir: str | Path) -> list[Path]:
    """Write the bundled scenario (or, when no scenario has that name, sweep) ``name`` into
    ``dest_dir`` with every file it points at, so that the copy runs as is; returns the files
    written. A sweep's ``scenario:`` is rewritten to the copy of its scenario beside it. Raises
    ConfigError when ``name`` is not bundled or a file to write exists already."""
    name = name.removesuffix(".yaml")
    kind = next((k for k in KINDS if name in names(k)), None)
    if kind is None:
        every = names("scenarios") + names("sweeps")
        hint = difflib.get_close_matches(name, every, n=1)
        raise ConfigError(f"no bundled scenario or sweep {name!r}" + (
            f"; did you mean {hint[0]!r}?" if hint else " (`sinsim scenarios` lists them)"))
    dest, src = Path(dest_dir), bundled_dir(kind) / f"{name}.yaml"
    text = src.read_text(encoding="utf-8")
    plan: dict[Path, Path | str] = {}  # destination -> source file (or the text to write)
    scenario = src
    if kind == "sweeps":
        ref = yaml.safe_load(text).get("scenario")
        scenario = (src.parent / str(ref)).resolve()
        if not scenario.is_file():
            raise ConfigError(f"the bundled sweep's scenario {ref!r} is not there",
                              file=str(src), key="scenario")
        text = re.sub(r"(?m)^scenario:(\s*)" + re.escape(str(ref)), lambda m: (
            f"scenario:{m.group(1)}{scenario.name}"), text, count=1)
        plan[dest / scenario.name] = scenario
    plan[dest / src.name] = text
    for rel in referenced_files(scenario):
        target = (dest / rel).resolve()
        if dest.resolve() not in target.parents:
            raise ConfigError(f"points outside its folder ({rel!r}): copy it by hand",
                              file=str(scenario))
        plan[target] = scenario.parent / rel
    for target in plan:
        if target.exists():
            raise ConfigError("exists already: sinsim never overwrites a file (remove it, or "
                              "copy into another folder)", file=str(target))
    for target, what in plan.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, str):
            target.write_text(what, encoding="utf-8")
        else:
            shutil.copyfile(what, target)
    return list(plan)
