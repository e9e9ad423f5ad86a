"""Orbit Mean-Elements Messages (OMM, CCSDS 502.0) in CelesTrak's JSON, CSV and XML encodings.

The records are read by the standard library (``json``) and by sgp4's own readers
(``sgp4.omm.parse_csv`` / ``parse_xml``); each becomes a satellite through Skyfield's
``EarthSatellite.from_omm`` (``sgp4.omm.initialize``: ``sgp4init`` in WGS72 'i' mode, as
``twoline2rv`` does).  What is checked here is only what those functions would otherwise turn
into a bare ``KeyError``/``ValueError`` or silently get wrong, so that an error names the file
and the record: a missing field, a value that is not a number, and element sets of another
theory (SGP4-XP).  Re-exported by :mod:`sinsim.space.orbits`.
"""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping

from sgp4 import omm as sgp4_omm
from skyfield.api import EarthSatellite, load

from .nodes import Satellite
from .tle import select_records, unique_ids

__all__ = ["OMMFormatError", "load_omm", "parse_omm_text", "OMM_FIELDS"]

# the fields ``sgp4.omm.initialize`` reads (CelesTrak and Space-Track publish all of them)
_TEXT_FIELDS = ("OBJECT_ID", "CLASSIFICATION_TYPE", "EPOCH")
_INT_FIELDS = ("NORAD_CAT_ID", "EPHEMERIS_TYPE", "ELEMENT_SET_NO", "REV_AT_EPOCH")
_FLOAT_FIELDS = ("MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
                 "ARG_OF_PERICENTER", "MEAN_ANOMALY", "BSTAR", "MEAN_MOTION_DOT",
                 "MEAN_MOTION_DDOT")
OMM_FIELDS = _TEXT_FIELDS + _INT_FIELDS + _FLOAT_FIELDS
_SGP4_XP_EPHEMERIS_TYPE = 4  # SGP4-XP: another theory, which sgp4 would propagate as SGP4
_MAX_INT_DIGITS = 9  # whole-number fields: sgp4 holds them in C ints (below 2**31)
_MAX_ALPHA5 = 339_999  # the largest catalog number a Satrec (and a TLE) can hold: 'Z9999'

_timescale = None


def _ts():
    global _timescale
    if _timescale is None:
        _timescale = load.timescale(builtin=True)  # offline: no download
    return _timescale


class OMMFormatError(ValueError):
    """An OMM file is malformed; the message names the file and the 1-based record
    (``record`` is None when the file as a whole cannot be read)."""

    def __init__(self, path: str, record: int | None, message: str, name: str | None = None):
        self.path = str(path)
        self.record = record
        where = self.path if record is None else f"{self.path}: record {record}"
        if name:
            where += f" ({name})"
        super().__init__(f"{where}: {message}")


def _encoding(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head in ("[", "{"):
        return "json"
    if head == "<":
        return "xml"
    return "csv"


def _json_records(text: str, path: str) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OMMFormatError(path, None, f"not valid JSON (line {e.lineno}, column {e.colno}): "
                                         f"{e.msg}") from None
    return [data] if isinstance(data, Mapping) else data  # '[' or '{': a list or an object


def _xml_records(text: str, path: str) -> Iterator:
    try:
        root = ET.parse(io.StringIO(text)).getroot()
    except ET.ParseError as e:
        line, col = e.position
        raise OMMFormatError(path, None, f"not valid XML (line {line}, column {col + 1})") from None
    except LookupError as e:  # an XML declaration that names an unknown encoding
        raise OMMFormatError(path, None, f"not valid XML ({e})") from None
    if root.find(".//segment") is None:
        raise OMMFormatError(path, None, "no <segment> element: not an OMM XML file")
    records = sgp4_omm.parse_xml(io.StringIO(text))  # sgp4's reader: one record per segment
    k = 0
    while True:
        try:
            fields = next(records)
        except StopIteration:
            return
        except (AttributeError, TypeError):  # a segment without metadata, data or their parts
            raise OMMFormatError(path, k + 1, "a <segment> needs <metadata> and <data> with "
                                 "<meanElements> and <tleParameters>") from None
        k += 1
        yield fields


def _csv_records(text: str, path: str) -> list:
    first = text.lstrip("\ufeff \t\r\n").splitlines()[0] if text.strip() else ""
    if first.startswith(("1 ", "2 ")) or (first and "," not in first):
        raise OMMFormatError(path, None, "not an OMM file (JSON, XML or CSV with a header "
                             "row); for a TLE file use `tle:` instead of `omm:`")
    reader = sgp4_omm.parse_csv(io.StringIO(text.lstrip("\ufeff"), newline=""))
    rows = list(reader)
    missing = [f for f in OMM_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise OMMFormatError(path, None, f"the CSV header has no column {', '.join(missing)}")
    for k, row in enumerate(rows, start=1):
        if None in row or any(v is None for v in row.values()):
            raise OMMFormatError(path, k, f"line {k + 1} does not have the header's "
                                 f"{len(reader.fieldnames)} values")
    return rows


def _checked_fields(fields, path: str, k: int) -> tuple[dict, str | None]:
    """The record's fields as ``from_omm`` takes them, or :class:`OMMFormatError`."""
    if not isinstance(fields, Mapping):
        raise OMMFormatError(path, k, f"a record must be an object of fields, got "
                             f"{type(fields).__name__}")
    name = fields.get("OBJECT_NAME")
    name = str(name).strip() if name is not None and str(name).strip() else None
    missing = [f for f in OMM_FIELDS if fields.get(f) is None or str(fields[f]).strip() == ""]
    if missing:
        raise OMMFormatError(path, k, f"missing field {', '.join(missing)}", name)
    out = dict(fields)
    for f in _TEXT_FIELDS:
        if isinstance(fields[f], (list, dict, bool)):
            raise OMMFormatError(path, k, f"{f} must be text, got {fields[f]!r}", name)
        out[f] = str(fields[f])
    for f in _INT_FIELDS:
        value = str(fields[f]).strip()
        if not (value.isdigit() or (value[:1] == "-" and value[1:].isdigit())):
            raise OMMFormatError(path, k, f"{f} must be a whole number, got {fields[f]!r}", name)
        if len(value.lstrip("-")) > _MAX_INT_DIGITS:  # sgp4 holds them in C ints
            raise OMMFormatError(path, k, f"{f} {value[:20]}... is out of range", name)
        out[f] = int(value)
    for f in _FLOAT_FIELDS:
        try:
            value = float(fields[f])
        except (TypeError, ValueError, OverflowError):
            value = math.nan
        if isinstance(fields[f], bool) or not math.isfinite(value):
            raise OMMFormatError(path, k, f"{f} must be a finite number, got {fields[f]!r}",
                                 name)
        out[f] = value
    theory = str(fields.get("MEAN_ELEMENT_THEORY", "SGP4")).strip().upper()
    if theory != "SGP4" or out["EPHEMERIS_TYPE"] == _SGP4_XP_EPHEMERIS_TYPE:
        raise OMMFormatError(path, k, f"mean elements of theory {theory} (EPHEMERIS_TYPE "
                             f"{out['EPHEMERIS_TYPE']}); sinsim propagates SGP4 elements only "
                             f"(SGP4-XP needs its own propagator)", name)
    if not 0 < out["NORAD_CAT_ID"] <= _MAX_ALPHA5:
        raise OMMFormatError(path, k, f"NORAD_CAT_ID {out['NORAD_CAT_ID']} is outside "
                             f"1..{_MAX_ALPHA5}, the range sgp4 (and the Alpha-5 TLE scheme) "
                             f"can hold", name)
    epoch = str(fields["EPOCH"]).strip().removesuffix("Z")
    out["EPOCH"] = epoch if "." in epoch else epoch + ".000000"  # sgp4 wants a fraction
    return out, name


def parse_omm_text(text: str, path: str = "<string>") -> list[tuple[str | None, object, int]]:
    """``(OBJECT_NAME or None, Satrec, record)`` per OMM record (JSON, CSV or XML, told apart
    by the first character: ``[``/``{``, ``<``, else CSV with a header row)."""
    encoding = _encoding(text)
    if encoding == "json":
        records = _json_records(text, path)
    elif encoding == "xml":
        records = _xml_records(text, path)
    else:
        records = _csv_records(text, path)
    out = []
    for k, raw in enumerate(records, start=1):
        fields, name = _checked_fields(raw, path, k)
        try:
            satrec = EarthSatellite.from_omm(_ts(), fields).model
        except (KeyError, ValueError, TypeError, OverflowError, AttributeError) as e:
            raise OMMFormatError(path, k, f"sgp4 cannot read this record: {e}", name) from None
        if satrec.error:
            raise OMMFormatError(path, k, f"sgp4 rejected these elements (error "
                                 f"{satrec.error})", name)
        out.append((name, satrec, k))
    if not out:
        raise OMMFormatError(path, None, "no OMM records in the file")
    return out


def load_omm(path, *, name_pattern: str | None = None, limit: int | None = None
             ) -> list[Satellite]:
    """Satellites from a CelesTrak/Space-Track OMM file in JSON, CSV or XML.

    Ids are the stripped ``OBJECT_NAME`` (the catalog number when it is empty), made unique
    with ``#2``, ``#3`` suffixes; ``name_pattern`` (case-insensitive glob) and ``limit``
    select as for :func:`sinsim.space.orbits.load_tle`.  Each satellite records its file and
    1-based record (``source``, ``record``).  Raises :class:`OMMFormatError` naming the file
    and record, ``FileNotFoundError`` for a missing file.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OMMFormatError(str(path), None, f"not valid UTF-8 text ({e.reason})") from None
    records = parse_omm_text(text, str(path))
    chosen = select_records(records, name_pattern=name_pattern, limit=limit)
    ids = unique_ids([label for label, _, _ in chosen])
    return [Satellite(node_id, satrec, source=str(path), record=k)
            for node_id, (_, satrec, k) in zip(ids, chosen)]
