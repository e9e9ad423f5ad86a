"""TLE reading (2-/3-line, CRLF, blank lines, selection), errors naming the line, export round trip."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.space.orbits import (
    TLEFormatError,
    export_tle,
    load_tle,
    positions_itrs_m,
    walker_constellation,
    write_tle_file,
)
from sinsim.space.tle import tle_checksum


def _sample_lines(path):
    return path.read_bytes().decode().split("\r\n")[:-1]  # 60 lines, CRLF, names padded with spaces


def test_three_line_crlf_with_trailing_spaces(starlink_tle_path):
    raw = starlink_tle_path.read_bytes()
    assert b"\r\n" in raw and b"STARLINK-31             \r\n" in raw  # the copy kept its quirks
    sats = load_tle(starlink_tle_path)
    assert len(sats) == 20
    assert sats[0].id == "STARLINK-31" and sats[1].id == "STARLINK-22"
    assert sats[0].satrec.satnum == 44235


def test_two_line_lf_blank_lines_and_catalog_ids(tmp_path, starlink_tle_path):
    lines = _sample_lines(starlink_tle_path)
    two = [ln for i, ln in enumerate(lines) if i % 3 != 0][:12]
    text = "\n\n".join(two[:6]) + "\n   \n" + "\n".join(two[6:]) + "\n\n"
    p = tmp_path / "two.tle"
    p.write_text(text)
    sats = load_tle(p)
    assert [s.id for s in sats] == ["44235", "44236", "44237", "44238", "44239", "44240"]
    ref = load_tle(starlink_tle_path, limit=6)
    t = np.array([0.0, 3600.0])
    assert np.array_equal(positions_itrs_m(sats, _tb(), t), positions_itrs_m(ref, _tb(), t))


def _tb():
    from datetime import datetime, timezone

    from sinsim.space.timebase import Timebase

    return Timebase(datetime(2020, 5, 7, tzinfo=timezone.utc))


def test_name_pattern_limit_and_unique_ids(tmp_path, starlink_tle_path):
    sats = load_tle(starlink_tle_path, name_pattern="starlink-3*")
    assert sats and all(s.id.upper().startswith("STARLINK-3") for s in sats)
    assert [s.id for s in load_tle(starlink_tle_path, limit=3)] == [
        "STARLINK-31",
        "STARLINK-22",
        "STARLINK-23",
    ]
    assert len(load_tle(starlink_tle_path, name_pattern="STARLINK-3*", limit=2)) == 2
    assert load_tle(starlink_tle_path, name_pattern="nothing*") == []
    lines = _sample_lines(starlink_tle_path)
    p = tmp_path / "dup.tle"
    p.write_text("\n".join(lines[:3] + lines[:3] + ["0 " + lines[0]] + lines[1:3]) + "\n")
    assert [s.id for s in load_tle(p)] == ["STARLINK-31", "STARLINK-31#2", "STARLINK-31#3"]


def _with_checksum(line):
    return line[:68] + str(tle_checksum(line))


@pytest.mark.parametrize(
    "case,line_no,message",
    [
        ("bad_checksum", 2, "checksum"),
        ("wrong_digit", 3, "expected TLE line 2"),
        ("line2_alone", 1, "line 2 without"),
        ("dangling_name_eof", 4, "not followed"),
        ("two_names", 4, "not followed"),
        ("bad_field", 3, "inclination"),
        ("short_line", 2, "characters"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, starlink_tle_path, case, line_no, message):
    name, l1, l2 = _sample_lines(starlink_tle_path)[:3]
    rows = {
        "bad_checksum": [name, l1[:68] + str((int(l1[68]) + 1) % 10), l2],
        "wrong_digit": [name, l1, _with_checksum("3" + l2[1:])],
        "line2_alone": [l2],
        "dangling_name_eof": [name, l1, l2, "LONELY SAT"],
        "two_names": [name, l1, l2, "FIRST", "SECOND", l1, l2],
        "bad_field": [name, l1, _with_checksum(l2[:8] + " 5x.0035" + l2[16:])],
        "short_line": [name, l1[:60], l2],
    }[case]
    p = tmp_path / f"{case}.tle"
    p.write_text("\r\n".join(rows) + "\r\n")
    with pytest.raises(TLEFormatError, match=message) as exc:
        load_tle(p)
    assert exc.value.line_no == line_no
    assert str(exc.value).startswith(f"{p}:{line_no}:")
    assert isinstance(exc.value, ValueError)


def test_export_round_trip_reproduces_positions(tmp_path, starlink_tle_path, start_utc):
    tb = _tb()
    t = np.linspace(0.0, 86400.0, 25)
    real = load_tle(starlink_tle_path, limit=4)
    lines = _sample_lines(starlink_tle_path)
    assert export_tle(real[0]) == (
        lines[1],
        lines[2],
    )  # sgp4's exporter reproduces the published lines
    walker = walker_constellation(
        inclination_deg=53.0, total=6, planes=2, phasing=1, altitude_m=550e3, epoch_utc=start_utc
    )
    p = tmp_path / "nodes.tle"
    write_tle_file(p, real + walker)
    back = load_tle(p)
    assert [s.id for s in back] == [s.id for s in real + walker]
    pos0 = positions_itrs_m(real + walker, tb, t)
    pos1 = positions_itrs_m(back, tb, t)
    err = np.linalg.norm(pos0 - pos1, axis=-1)
    assert err[:4].max() < 1e-3  # real TLEs: identical elements
    assert err[4:].max() < 500.0  # Walker: TLE text keeps 4 decimals of degrees, 8 of rev/day
