"""Two-/three-line element set reading and writing (helpers for ``orbits``).

The public names are re-exported by :mod:`sinsim.space.orbits`.
"""

from __future__ import annotations

import fnmatch
import re

from sgp4.api import Satrec
from sgp4.exporter import export_tle as _sgp4_export_tle

__all__ = [
    "TLEFormatError",
    "parse_tle_text",
    "tle_checksum",
    "export_tle_lines",
    "format_tle_file",
]

TLE_LINE_LENGTH = (
    69  # NORAD TLE format: 68 data columns + 1 checksum digit (CelesTrak "TLE format" FAQ)
)

# Numeric fields that must parse, as (name, line, 0-based slice) -- column layout per CelesTrak's TLE FAQ.
_FIELDS = (
    ("catalog number", 1, slice(2, 7)),
    ("epoch year", 1, slice(18, 20)),
    ("epoch day", 1, slice(20, 32)),
    ("catalog number", 2, slice(2, 7)),
    ("inclination", 2, slice(8, 16)),
    ("right ascension of the ascending node", 2, slice(17, 25)),
    ("eccentricity", 2, slice(26, 33)),
    ("argument of perigee", 2, slice(34, 42)),
    ("mean anomaly", 2, slice(43, 51)),
    ("mean motion", 2, slice(52, 63)),
)
_ALPHA5 = re.compile(r"^[0-9A-HJ-NP-Z][0-9]{4}$")  # Space-Track "alpha-5" catalog numbers
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")


class TLEFormatError(ValueError):
    """A TLE file is malformed; the message names the file and 1-based line."""

    def __init__(self, path: str, line_no: int, message: str):
        self.path = str(path)
        self.line_no = int(line_no)
        super().__init__(f"{self.path}:{self.line_no}: {message}")


def tle_checksum(line: str) -> int:
    """Modulo-10 checksum of the first 68 columns (digits count, '-' counts 1)."""
    total = 0
    for ch in line[:68]:
        if ch.isdigit():
            total += int(ch)
        elif ch == "-":
            total += 1
    return total % 10


def _check_line(path: str, line_no: int, text: str, digit: str) -> None:
    if not text.startswith(digit + " "):
        raise TLEFormatError(
            path,
            line_no,
            f"expected TLE line {digit} (starting with '{digit} '), got {text[:20]!r}",
        )
    if len(text) != TLE_LINE_LENGTH:
        raise TLEFormatError(
            path,
            line_no,
            f"TLE line {digit} has {len(text)} characters, expected {TLE_LINE_LENGTH}",
        )
    if not text[68].isdigit() or tle_checksum(text) != int(text[68]):
        raise TLEFormatError(
            path,
            line_no,
            f"bad checksum: last column is {text[68]!r}, computed {tle_checksum(text)}",
        )
    for name, which, sl in _FIELDS:
        if str(which) != digit:
            continue
        field = text[sl].strip()
        ok = (
            bool(_ALPHA5.match(text[sl].replace(" ", "0")))
            if name == "catalog number"
            else bool(_FLOAT.match(field))
        )
        if name == "eccentricity":  # implied leading decimal point
            ok = field.isdigit()
        if not ok:
            raise TLEFormatError(
                path,
                line_no,
                f"cannot parse {name} {text[sl]!r} (columns {sl.start + 1}-{sl.stop})",
            )


def parse_tle_text(text: str, path: str = "<string>") -> list[tuple[str | None, Satrec, int]]:
    """Parse TLE text into ``(name or None, Satrec, line_no_of_line1)`` records.

    Accepts two-line and three-line (named) sets, mixed, with LF or CRLF line
    endings, blank lines and trailing spaces.  A ``0 `` prefix on name lines
    (Space-Track 3LE style) is dropped.
    """
    lines = text.splitlines()
    records: list[tuple[str | None, Satrec, int]] = []
    pending_name: tuple[str, int] | None = None
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i].rstrip()
        line_no = i + 1
        if not raw.strip():
            i += 1
            continue
        if raw.startswith("1 ") and len(raw) == TLE_LINE_LENGTH:
            _check_line(path, line_no, raw, "1")
            j = i + 1
            while j < n and not lines[j].strip():  # blank lines are allowed anywhere
                j += 1
            if j >= n:
                raise TLEFormatError(path, line_no, "TLE line 1 is not followed by a line 2")
            line2 = lines[j].rstrip()
            _check_line(path, j + 1, line2, "2")
            if line2[2:7] != raw[2:7]:
                raise TLEFormatError(
                    path, j + 1, f"catalog number {line2[2:7]!r} differs from line 1's {raw[2:7]!r}"
                )
            try:
                satrec = Satrec.twoline2rv(raw, line2)
            except Exception as exc:  # sgp4 raises ValueError with its own wording
                raise TLEFormatError(
                    path, line_no, f"sgp4 cannot parse this element set: {exc}"
                ) from exc
            if satrec.error:
                raise TLEFormatError(
                    path, line_no, f"sgp4 rejected this element set (error {satrec.error})"
                )
            if raw[62] == "4":  # ephemeris type 4: SGP4-XP, which sgp4 would run as SGP4
                raise TLEFormatError(
                    path, line_no, "ephemeris type 4 (SGP4-XP elements); sinsim propagates "
                    "SGP4 elements only (SGP4-XP needs its own propagator)"
                )
            name = pending_name[0] if pending_name else None
            records.append((name, satrec, line_no))
            pending_name = None
            i = j + 1
            continue
        if raw.startswith("2 ") and len(raw) == TLE_LINE_LENGTH:
            raise TLEFormatError(path, line_no, "TLE line 2 without a preceding line 1")
        if raw.startswith(("1 ", "2 ")) and len(raw) in range(60, 80):
            raise TLEFormatError(
                path,
                line_no,
                f"TLE line {raw[0]} has {len(raw)} characters, expected {TLE_LINE_LENGTH}",
            )
        # Anything else is a satellite name; it must be followed by line 1.
        if pending_name is not None:
            raise TLEFormatError(
                path, pending_name[1], f"name {pending_name[0]!r} is not followed by a TLE line 1"
            )
        name = raw.strip()
        if name.startswith("0 "):
            name = name[2:].strip()
        if len(name) > 80:
            raise TLEFormatError(
                path, line_no, f"unrecognised line {raw[:30]!r}... (not a name or TLE line)"
            )
        pending_name = (name, line_no)
        i += 1
    if pending_name is not None:
        raise TLEFormatError(
            path, pending_name[1], f"name {pending_name[0]!r} is not followed by a TLE line 1"
        )
    return records


def select_records(records, *, name_pattern: str | None, limit: int | None):
    """Filter parsed records by fnmatch name glob (case-insensitive) and keep the first ``limit``."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    out = []
    for name, satrec, line_no in records:
        label = name if name is not None else satrec.satnum_str
        if name_pattern is not None and not fnmatch.fnmatchcase(
            label.lower(), name_pattern.lower()
        ):
            continue
        out.append((label, satrec, line_no))
        if limit is not None and len(out) >= limit:
            break
    return out


def unique_ids(labels: list[str]) -> list[str]:
    """Make labels unique by suffixing repeats with ``#2``, ``#3``, ..."""
    seen: dict[str, int] = {}
    taken = set(labels)
    out = []
    for label in labels:
        if label not in seen:
            seen[label] = 1
            out.append(label)
            continue
        k = seen[label]
        while True:
            k += 1
            cand = f"{label}#{k}"
            if cand not in taken:
                break
        seen[label] = k
        taken.add(cand)
        out.append(cand)
    return out


def export_tle_lines(satrec: Satrec) -> tuple[str, str]:
    """``(line1, line2)`` for a Satrec, via ``sgp4.exporter.export_tle``."""
    line1, line2 = _sgp4_export_tle(satrec)
    return line1, line2


def format_tle_file(named_lines) -> str:
    """Three-line-format text from ``(name, line1, line2)`` triples (LF endings)."""
    parts = []
    for name, line1, line2 in named_lines:
        if "\n" in name or "\r" in name:
            raise ValueError(f"satellite id {name!r} contains a line break")
        parts.append(f"{name}\n{line1}\n{line2}\n")
    return "".join(parts)


def read_text(path) -> str:
    """Read a TLE file as UTF-8 text, keeping line endings for the parser."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data[: exc.start].count(b"\n") + 1
        raise TLEFormatError(str(path), line_no, f"not valid UTF-8 text ({exc.reason})") from exc
