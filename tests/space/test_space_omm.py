"""OMM files (CelesTrak JSON, CSV, XML) made from the sample TLEs in the test: the same orbits
to the millimetre, the same contact windows; Alpha-5 catalog numbers; source and epoch in the
nodes table; errors naming the file and the record; the element-age warning."""

from __future__ import annotations

import csv
import json
import warnings
import xml.etree.ElementTree as ET
from datetime import timedelta

import numpy as np
import pytest
from sgp4.exporter import export_omm

from sinsim.space.contacts import contact_windows
from sinsim.space.nodes import ElementAgeWarning, element_age_message, warn_element_age
from sinsim.space.orbits import (
    OMMFormatError,
    TLEFormatError,
    export_tle,
    load_omm,
    load_tle,
    nodes_table,
    positions_itrs_m,
    walker_constellation,
)
from sinsim.space.tle import tle_checksum

# CelesTrak's column order (gp.php?FORMAT=csv) and its XML blocks (FORMAT=xml)
CSV_COLUMNS = ["OBJECT_NAME", "OBJECT_ID", "EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION",
               "RA_OF_ASC_NODE", "ARG_OF_PERICENTER", "MEAN_ANOMALY", "EPHEMERIS_TYPE",
               "CLASSIFICATION_TYPE", "NORAD_CAT_ID", "ELEMENT_SET_NO", "REV_AT_EPOCH", "BSTAR",
               "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT"]
XML_BLOCKS = {
    "metadata": ["OBJECT_NAME", "OBJECT_ID", "CENTER_NAME", "REF_FRAME", "TIME_SYSTEM",
                 "MEAN_ELEMENT_THEORY"],
    "meanElements": ["EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
                     "ARG_OF_PERICENTER", "MEAN_ANOMALY"],
    "tleParameters": ["EPHEMERIS_TYPE", "CLASSIFICATION_TYPE", "NORAD_CAT_ID", "ELEMENT_SET_NO",
                      "REV_AT_EPOCH", "BSTAR", "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT"],
}


def omm_records(sats) -> list[dict]:
    """OMM fields of satellites, by sgp4's own exporter (CelesTrak's field names)."""
    return [export_omm(s.satrec, s.id) for s in sats]


def write_omm(path, records, encoding: str) -> None:
    """An OMM file laid out as CelesTrak serves it (JSON list, CSV with CRLF, XML ndm)."""
    if encoding == "json":
        path.write_text(json.dumps(records, indent=1))
    elif encoding == "csv":
        with open(path, "w", newline="") as fh:  # csv writes CRLF, as CelesTrak does
            writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
    else:
        ndm = ET.Element("ndm")
        for rec in records:
            omm = ET.SubElement(ndm, "omm", id="CCSDS_OMM_VERS", version="2.0")
            ET.SubElement(omm, "header")
            segment = ET.SubElement(ET.SubElement(omm, "body"), "segment")
            data = None
            for block, fields in XML_BLOCKS.items():
                if block == "metadata":
                    node = ET.SubElement(segment, "metadata")
                else:
                    data = data if data is not None else ET.SubElement(segment, "data")
                    node = ET.SubElement(data, block)
                for f in fields:
                    ET.SubElement(node, f).text = str(rec[f])
        path.write_bytes(ET.tostring(ndm, encoding="UTF-8", xml_declaration=True))


@pytest.fixture(scope="module")
def tle_sats(starlink_tle_path):
    return load_tle(starlink_tle_path)


@pytest.mark.parametrize("encoding", ["json", "csv", "xml"])
def test_omm_gives_the_tle_orbits_to_the_millimetre(tmp_path, tle_sats, timebase, encoding):
    path = tmp_path / f"starlink.{encoding}"
    write_omm(path, omm_records(tle_sats), encoding)
    sats = load_omm(path)
    assert [s.id for s in sats] == [s.id for s in tle_sats]
    assert [s.catalog_number for s in sats] == [s.catalog_number for s in tle_sats]
    assert [(s.source, s.record) for s in sats] == [(str(path), k) for k in range(1, 21)]
    for a, b in zip(sats, tle_sats):  # OMM epochs are given to the microsecond
        assert abs(a.epoch_utc - b.epoch_utc) <= timedelta(microseconds=1)
    t = np.arange(0.0, 86400.0 + 1, 60.0)  # a day, every minute
    gap = np.linalg.norm(positions_itrs_m(sats, timebase, t) -
                         positions_itrs_m(tle_sats, timebase, t), axis=-1)
    assert gap.max() < 0.01  # metres: well within the metre the issue asks for


def test_omm_contact_windows_are_those_of_the_tles(tmp_path, tle_sats, timebase, madrid_sydney):
    path = tmp_path / "starlink.json"
    write_omm(path, omm_records(tle_sats[:6]), "json")
    stations = madrid_sydney(10.0)
    kw = dict(step_s=60.0)
    ref = contact_windows(tle_sats[:6], stations, timebase, 12 * 3600.0, **kw)
    got = contact_windows(load_omm(path), stations, timebase, 12 * 3600.0, **kw)
    assert len(ref) >= 5 and len(got) == len(ref)
    assert got.client.tolist() == ref.client.tolist()
    assert got.server.tolist() == ref.server.tolist()
    for col in ("start_s", "end_s"):
        assert np.abs(got[col].to_numpy() - ref[col].to_numpy()).max() < 1e-3
    assert np.allclose(got.max_elevation_deg, ref.max_elevation_deg, atol=1e-6)


def test_selection_unnamed_records_and_repeated_names(tmp_path, tle_sats):
    recs = omm_records(tle_sats[:4])
    recs[1]["OBJECT_NAME"] = recs[0]["OBJECT_NAME"]
    recs[3]["OBJECT_NAME"] = ""
    path = tmp_path / "gp.php"  # what a download from CelesTrak is named: told by content
    write_omm(path, recs, "json")
    assert [s.id for s in load_omm(path)] == ["STARLINK-31", "STARLINK-31#2", "STARLINK-23",
                                             "44238"]
    assert [s.id for s in load_omm(path, name_pattern="starlink-2*")] == ["STARLINK-23"]
    assert [s.record for s in load_omm(path, name_pattern="starlink-*", limit=2)] == [1, 2]


def _alpha5(line: str, number: str) -> str:
    line = line[:2] + number + line[7:68]
    return line + str(tle_checksum(line))


def test_alpha5_catalog_numbers_in_tle_and_omm(tmp_path, tle_sats, timebase):
    l1, l2 = export_tle(tle_sats[0])
    path = tmp_path / "alpha5.tle"
    path.write_text(f"{_alpha5(l1, 'A4235')}\n{_alpha5(l2, 'A4235')}\n"
                    f"NEW OBJECT\n{_alpha5(l1, 'Z9999')}\n{_alpha5(l2, 'Z9999')}\n")
    sats = load_tle(path)
    assert [s.id for s in sats] == ["A4235", "NEW OBJECT"]
    assert [s.catalog_number for s in sats] == [104235, 339999]
    table = nodes_table(sats)
    assert table.catalog_number.tolist() == [104235, 339999]
    assert export_tle(sats[1])[0][2:7] == "Z9999"  # nodes.tle keeps the Alpha-5 number
    t = np.array([0.0, 3600.0])
    assert np.array_equal(positions_itrs_m(sats[:1], timebase, t),
                          positions_itrs_m(tle_sats[:1], timebase, t))
    recs = omm_records(sats)
    assert recs[0]["NORAD_CAT_ID"] == 104235
    omm = tmp_path / "alpha5.csv"
    write_omm(omm, recs, "csv")
    assert [s.catalog_number for s in load_omm(omm)] == [104235, 339999]


def test_nodes_table_records_source_record_and_epoch(tmp_path, tle_sats, starlink_tle_path,
                                                     start_utc):
    path = tmp_path / "starlink.xml"
    write_omm(path, omm_records(tle_sats[:2]), "xml")
    walker = walker_constellation(inclination_deg=53.0, total=1, planes=1, phasing=0,
                                  altitude_m=550e3, epoch_utc=start_utc)
    table = nodes_table(load_tle(starlink_tle_path, limit=2) + load_omm(path) + walker)
    assert list(table.columns[-4:]) == ["catalog_number", "epoch_utc", "source", "record"]
    assert table.source.tolist() == [str(starlink_tle_path)] * 2 + [str(path)] * 2 + ["walker"]
    assert table.record.tolist()[:4] == [1, 2, 1, 2] and table.record.isna().tolist()[4]
    assert table.epoch_utc[0] == "2020-05-07T04:00:00.999936Z" == table.epoch_utc[2]
    assert table.epoch_utc[4] == "2020-05-07T00:00:00.000000Z"


def _bad(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _one_record(tle_sats, **change):
    rec = omm_records(tle_sats[:1])[0]
    for k, v in change.items():
        if v is None:
            rec.pop(k)
        else:
            rec[k] = v
    return rec


@pytest.mark.parametrize("case, record, message", [
    ("json_syntax", None, "not valid JSON (line 1"),
    ("json_not_objects", 1, "a record must be an object of fields, got int"),
    ("empty_list", None, "no OMM records"),
    ("missing_field", 2, "(STARLINK-22): missing field BSTAR"),
    ("not_a_number", 2, "MEAN_MOTION must be a finite number, got 'fast'"),
    ("not_whole", 2, "NORAD_CAT_ID must be a whole number"),
    ("sgp4_xp", 2, "theory SGP4-XP"),
    ("bad_epoch", 2, "sgp4 cannot read this record"),
    ("too_large_number", 2, "NORAD_CAT_ID 400000 is outside"),
    ("csv_column", None, "the CSV header has no column BSTAR"),
    ("csv_short_row", 2, "line 3 does not have the header's 17 values"),
    ("xml_syntax", None, "not valid XML"),
    ("xml_no_segment", None, "no <segment> element"),
    ("xml_no_tle_parameters", 2, "needs <metadata> and <data>"),
    ("a_tle_file", None, "use `tle:` instead of `omm:`"),
])
def test_malformed_omm_names_file_and_record(tmp_path, tle_sats, starlink_tle_path, case,
                                             record, message):
    good = omm_records(tle_sats[:2])
    bad = {
        "missing_field": _one_record(tle_sats[1:], BSTAR=None),
        "not_a_number": _one_record(tle_sats[1:], MEAN_MOTION="fast"),
        "not_whole": _one_record(tle_sats[1:], NORAD_CAT_ID="44236.5"),
        "sgp4_xp": _one_record(tle_sats[1:], MEAN_ELEMENT_THEORY="SGP4-XP", EPHEMERIS_TYPE=4),
        "bad_epoch": _one_record(tle_sats[1:], EPOCH="2020-13-07T04:00:00"),
        "too_large_number": _one_record(tle_sats[1:], NORAD_CAT_ID=400000),
    }
    if case in bad:
        path = tmp_path / "bad.json"
        write_omm(path, [good[0], bad[case]], "json")
    elif case.startswith("csv"):
        path = tmp_path / "bad.csv"
        write_omm(path, good, "csv")
        lines = path.read_text().splitlines()
        if case == "csv_column":
            lines = [ln.rsplit(",", 3)[0] for ln in lines]  # drop the last three columns
        else:
            lines[2] = lines[2].rsplit(",", 1)[0]
        path.write_text("\n".join(lines) + "\n")
    elif case.startswith("xml"):
        path = tmp_path / "bad.xml"
        write_omm(path, good, "xml")
        text = path.read_text()
        if case == "xml_syntax":
            text = text.replace("</ndm>", "")
        elif case == "xml_no_segment":
            text = text.replace("segment>", "part>")
        else:
            head, sep, tail = text.rpartition("<tleParameters>")
            text = head + "<other>" + tail.replace("</tleParameters>", "</other>")
        path.write_text(text)
    elif case == "a_tle_file":
        path = starlink_tle_path
    else:
        path = _bad(tmp_path, "bad.json", {"json_syntax": '[{"OBJECT_NAME": }]',
                                           "json_not_objects": "[1, 2]",
                                           "empty_list": "[]"}[case])
    with pytest.raises(OMMFormatError) as info:
        load_omm(path)
    err = info.value
    assert err.path == str(path) and err.record == record
    assert str(err).startswith(f"{path}: record {record}" if record else f"{path}: ")
    assert message in str(err)


def test_missing_omm_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_omm(tmp_path / "nope.json")


def test_tle_of_sgp4_xp_elements_is_refused(tmp_path, tle_sats):
    l1, l2 = export_tle(tle_sats[0])
    l1 = l1[:62] + "4" + l1[63:68]
    path = _bad(tmp_path, "xp.tle", f"{l1 + str(tle_checksum(l1))}\n{l2}\n")
    with pytest.raises(TLEFormatError, match=r"xp.tle:1: ephemeris type 4 \(SGP4-XP"):
        load_tle(path)


def test_element_age_warning_states_days_and_error_growth(tle_sats, start_utc):
    assert element_age_message(tle_sats, start_utc) is None  # within a day of the epochs
    walker = walker_constellation(inclination_deg=53.0, total=2, planes=1, phasing=0,
                                  altitude_m=550e3, epoch_utc=start_utc - timedelta(days=400))
    assert element_age_message(walker, start_utc) is None  # made by sinsim: no file elements
    late = start_utc + timedelta(days=30)
    with pytest.warns(ElementAgeWarning) as caught:
        message = warn_element_age(tle_sats, late)
    assert str(caught[0].message) == message
    assert "starts 30.5 days after the epoch of 'STARLINK-24'" in message
    assert "20 of 20 element sets are more than 3 days" in message
    assert "1-3 km per day" in message and "Vallado et al. 2006" in message
    assert "errors of order 31-92 km" in message
    early = element_age_message(tle_sats, start_utc - timedelta(days=10))
    assert "days before the epoch" in early
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_element_age(tle_sats, start_utc + timedelta(days=2)) is None
