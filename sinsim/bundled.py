"""The scenarios and sweeps that ship with sinsim, by name.

``sinsim run leo_walker`` and ``sinsim sweep paper_table1`` take a bundled file when no file of
that name exists; ``sinsim scenarios`` lists them and ``sinsim scenarios show NAME`` prints
one. In a clone they are ``scenarios/`` and ``sweeps/`` at its root; a wheel carries copies in
``sinsim/_bundled/`` (``setup.py`` puts them there), keeping their relative layout, so a sweep's
``scenario: ../scenarios/tiny.yaml`` still resolves.
"""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path

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
