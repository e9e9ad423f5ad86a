"""docs/space.md against the code: the worked link budget line by line (and recomputed
independently), the elevation-range table, the rate tables, the radio-profile parameter tables
and the default profile of each pair of node kinds.

The tables are found by the line (a heading or a bold caption) that precedes them; a missing
table, row or column fails, and so does an extra row.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sinsim.space.atmosphere import elevation_from_range_deg, slant_range_m
from sinsim.space.links import link_budget
from sinsim.space.modcod import modcod
from sinsim.space.radios import DEFAULT_PROFILES, PROFILES, RadioProfile, default_profile_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "space.md"
SHELL_M = 550e3
UAV_ALTITUDE_M = 3e3
DASH = "—"

# independent constants (not sinsim's)
C_M_PER_S = 299_792_458.0
BOLTZMANN_J_PER_K = 1.380649e-23
EARTH_RADIUS_M = 6_378_137.0


# ------------------------------------------------------------------------------ parsing
@pytest.fixture(scope="module")
def lines() -> list[str]:
    return DOC.read_text(encoding="utf-8").splitlines()


def _cells(line: str) -> list[str]:
    assert line.startswith("|") and line.rstrip().endswith("|"), line
    return [c.strip() for c in line.strip()[1:-1].split("|")]


def _read_table(lines: list[str], start: int) -> tuple[list[str], list[list[str]]]:
    """The table whose header is ``lines[start]``: header cells and rows of cells."""
    header = _cells(lines[start])
    sep = _cells(lines[start + 1])
    assert len(sep) == len(header) and all(re.fullmatch(r":?-+:?", c) for c in sep), \
        f"line {start + 2}: not a table separator"
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        row = _cells(line)
        assert len(row) == len(header), f"row {row} has {len(row)} cells, header {len(header)}"
        rows.append(row)
    assert rows, f"table at line {start + 1} has no rows"
    return header, rows


def table_after(lines: list[str], marker: str) -> tuple[list[str], list[list[str]]]:
    """The first table after the one line that starts with ``marker``, before any other
    heading or bold caption."""
    at = [i for i, line in enumerate(lines) if line.startswith(marker)]
    assert len(at) == 1, f"{len(at)} lines start with {marker!r} in {DOC.name}"
    for i in range(at[0] + 1, len(lines)):
        line = lines[i]
        if line.startswith("|"):
            return _read_table(lines, i)
        assert not line.startswith(("#", "**")), f"no table after {marker!r}"
    raise AssertionError(f"no table after {marker!r}")


def tables_with_header(lines: list[str], first: str) -> list[tuple[list[str], list[list[str]]]]:
    out = []
    for i, line in enumerate(lines):
        if (line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
                and _cells(line)[0] == first):
            out.append(_read_table(lines, i))
    return out


def prose(lines: list[str]) -> str:
    """The doc with every run of white space (line breaks included) as one space."""
    return " ".join(" ".join(lines).split())


def plain(cell: str) -> str:
    """A cell without backticks, with ASCII minus and no thousands separators."""
    return cell.replace("`", "").replace("−", "-").replace(",", "").strip()


def number(cell: str) -> float:
    text = plain(cell)
    assert re.fullmatch(r"-?\d+(\.\d+)?", text), f"not a number: {cell!r}"
    return float(text)


def fmt(value: float, decimals: int) -> str:
    """How the doc prints ``value``: thousands separators, ASCII minus (see :func:`plain`)."""
    return plain(f"{value:,.{decimals}f}")


def column(header: list[str], name: str) -> int:
    assert header.count(name) == 1, f"column {name!r} not once in {header}"
    return header.index(name)


def profile_in(header_cell: str) -> str | None:
    names = [n for n in re.findall(r"`([^`]+)`", header_cell) if n in PROFILES]
    assert len(names) <= 1, header_cell
    return names[0] if names else None


def modcod_cell(name: str) -> str:
    return name if name else DASH


# ------------------------------------------------------------------------------ worked budget
WORKED_ELEVATION_DEG = 20.0
WORKED = "### A worked budget: `leo_xband_dvbs2` at 20°"


@pytest.fixture(scope="module")
def worked(lines) -> dict[str, tuple[str, str]]:
    header, rows = table_after(lines, WORKED)
    assert header == ["line", "value", "unit"]
    out = {}
    for label, value, unit in rows:
        assert label not in out, f"line {label!r} twice"
        out[label] = (value, unit)
    return out


def _worked_expected() -> dict[str, tuple[str, int | None, object]]:
    """label -> (unit, decimals (None: text), value) from link_budget."""
    p = PROFILES["leo_xband_dvbs2"]
    r = float(slant_range_m(WORKED_ELEVATION_DEG, SHELL_M))
    b = link_budget(p, r, WORKED_ELEVATION_DEG)
    chosen = modcod(str(np.atleast_1d(b.modcod)[0]))
    extra = p.implementation_loss_db + p.margin_db
    return {
        "transmitter power": ("dBW", 2, p.tx_power_dbw),
        "transmit antenna gain": ("dBi", 2, p.tx_antenna_gain_dbi),
        "EIRP": ("dBW", 2, p.eirp_dbw),
        "range": ("km", 1, r / 1e3),
        "free-space path loss": ("dB", 2, float(b.fspl_db)),
        "gas loss": ("dB", 2, float(b.gas_loss_db)),
        "rain loss": ("dB", 2, float(b.rain_loss_db)),
        "pointing loss": ("dB", 2, p.pointing_loss_db),
        "polarisation loss": ("dB", 2, p.polarization_loss_db),
        "receive antenna gain": ("dBi", 2, p.rx_antenna_gain_dbi),
        "received power": ("dBW", 2, float(b.rx_power_dbw)),
        "system noise temperature (with sky noise)": ("K", 1, float(b.noise_temp_k)),
        "Boltzmann's constant": ("dBW/K/Hz", 2, -228.6),
        "C/N0": ("dB-Hz", 2, float(b.cn0_dbhz)),
        "symbol rate": ("Msym/s", 3, p.symbol_rate_hz / 1e6),
        "Es/N0": ("dB", 2, float(b.snr_db)),
        "implementation loss + margin": ("dB", 2, extra),
        "threshold of the chosen MODCOD (Table 13)": ("dB", 2, chosen.esn0_db),
        "required Es/N0 of the chosen MODCOD": ("dB", 2, chosen.esn0_db + extra),
        "chosen MODCOD": ("", None, chosen.name),
        "spectral efficiency": ("bit/symbol", 3, chosen.bits_per_symbol),
        "rate": ("Mbit/s", 3, float(b.rate_bps) / 1e6),
    }


def test_worked_budget_is_link_budget_line_by_line(worked):
    expected = _worked_expected()
    assert set(worked) == set(expected), (
        f"missing {sorted(set(expected) - set(worked))}, extra {sorted(set(worked) - set(expected))}")
    for label, (unit, decimals, value) in expected.items():
        printed, printed_unit = worked[label]
        assert printed_unit == unit, label
        if decimals is None:
            assert plain(printed) == value, label
        else:
            assert plain(printed) == fmt(value, decimals), f"{label}: {printed} != {value}"


def test_worked_budget_recomputed_independently(worked):
    """The sums from the printed lines (within their rounding), and every line from first
    principles: geometry, free-space loss, the gas shell, sky noise, DVB-S2 Table 13."""
    v = {label: number(value) for label, (value, _) in worked.items() if label != "chosen MODCOD"}
    p = PROFILES["leo_xband_dvbs2"]
    half = 0.005  # half the last printed digit of a dB line

    # the printed lines add up, within the rounding of each term
    assert v["EIRP"] == pytest.approx(v["transmitter power"] + v["transmit antenna gain"],
                                      abs=3 * half)
    received = (v["EIRP"] + v["receive antenna gain"] - v["free-space path loss"] - v["gas loss"]
                - v["rain loss"] - v["pointing loss"] - v["polarisation loss"])
    assert v["received power"] == pytest.approx(received, abs=8 * half)
    t = v["system noise temperature (with sky noise)"]
    cn0 = v["received power"] - v["Boltzmann's constant"] - 10 * math.log10(t)
    assert v["C/N0"] == pytest.approx(cn0, abs=3 * half + 10 * math.log10(1 + 0.05 / t))
    esn0 = v["C/N0"] - 10 * math.log10(v["symbol rate"] * 1e6)
    assert v["Es/N0"] == pytest.approx(esn0, abs=2 * half + 10 * math.log10(1 + 0.0005 / 8.333))
    assert v["required Es/N0 of the chosen MODCOD"] == pytest.approx(
        v["threshold of the chosen MODCOD (Table 13)"] + v["implementation loss + margin"],
        abs=3 * half)
    assert v["Es/N0"] >= v["required Es/N0 of the chosen MODCOD"]
    rs = p.bandwidth_hz / (1 + p.roll_off)
    assert v["symbol rate"] == pytest.approx(rs / 1e6, abs=5e-4)

    # first principles
    el = math.radians(WORKED_ELEVATION_DEG)
    r_node = EARTH_RADIUS_M + SHELL_M  # law of cosines in the Earth-centre triangle
    d = -EARTH_RADIUS_M * math.sin(el) + math.sqrt(
        (EARTH_RADIUS_M * math.sin(el)) ** 2 + r_node**2 - EARTH_RADIUS_M**2)
    assert v["range"] == pytest.approx(d / 1e3, abs=0.05)
    fspl = 20 * math.log10(4 * math.pi * d * p.frequency_hz / C_M_PER_S)
    assert v["free-space path loss"] == pytest.approx(fspl, abs=half)
    h = 6_000.0  # the gas shell's equivalent height
    shell = (math.sqrt((EARTH_RADIUS_M + h) ** 2 - (EARTH_RADIUS_M * math.cos(el)) ** 2)
             - EARTH_RADIUS_M * math.sin(el)) / h
    gas = p.zenith_gas_loss_db * shell
    assert v["gas loss"] == pytest.approx(gas, abs=half)
    assert v["rain loss"] == 0.0  # clear sky

    def t_sky(a_db):
        x = 10 ** (-a_db / 10)
        return 275.0 * (1 - x) + 2.7 * x

    t_sys = p.system_noise_temp_k + t_sky(gas) - t_sky(p.zenith_gas_loss_db)
    assert t == pytest.approx(t_sys, abs=0.05)
    p_rx = (p.tx_power_dbw + p.tx_antenna_gain_dbi + p.rx_antenna_gain_dbi - fspl - gas
            - p.pointing_loss_db - p.polarization_loss_db)
    assert v["received power"] == pytest.approx(p_rx, abs=half)
    cn0 = p_rx - 10 * math.log10(BOLTZMANN_J_PER_K) - 10 * math.log10(t_sys)
    assert v["C/N0"] == pytest.approx(cn0, abs=half + 0.002)  # k: -228.6 vs -228.599
    esn0 = cn0 - 10 * math.log10(rs)
    assert v["Es/N0"] == pytest.approx(esn0, abs=half + 0.002)
    # ETSI EN 302 307-1 Table 13: the 16APSK 9/10 row, and 32APSK 3/4 (more efficient, beyond
    # the profile's max_modcod although the link would clear it)
    assert p.max_modcod == "16APSK 9/10"
    assert worked["chosen MODCOD"][0] == "16APSK 9/10"
    assert v["threshold of the chosen MODCOD (Table 13)"] == 13.13
    assert v["spectral efficiency"] == pytest.approx(3.567342, abs=5e-4)
    assert esn0 - 3.0 >= 12.73  # 32APSK 3/4 would clear: the cap chose
    assert v["rate"] == pytest.approx(rs * 3.567342 / 1e6, abs=5e-4)
    assert v["rate"] == pytest.approx(v["symbol rate"] * v["spectral efficiency"], abs=0.005)


# ------------------------------------------------------------------------------ geometry
ELEVATIONS_DEG = (90, 60, 45, 35, 30, 20, 10, 5, 0)


def test_elevation_range_table(lines):
    header, rows = table_after(lines, "**Elevation and range, 550 km shell.**")
    assert header == ["elevation (°)", "slant range (km)"]
    got = {int(number(el)): rng for el, rng in rows}
    assert len(got) == len(rows)
    assert sorted(got) == sorted(ELEVATIONS_DEG)
    for el in ELEVATIONS_DEG:
        assert plain(got[el]) == fmt(float(slant_range_m(el, SHELL_M)) / 1e3, 1), el
    # the figures an independent check gave for 35, 20 and 10 degrees
    for el, km in ((35, 892), (20, 1294), (10, 1816)):
        assert round(number(got[el])) == km


# ------------------------------------------------------------------------------ rate tables
def _check_rate_table(header, rows, where):
    """Every `profile` MODCOD and (Mbit/s) column of a rate table against link_budget;
    ``where(row)`` gives the (range_m, elevation_deg or None) a row stands for (and checks the
    row's own geometry columns). Returns the profiles the table covers."""
    seen = set()
    for row in rows:
        range_m, elevation = where(row)
        for i, head in enumerate(header):
            name = profile_in(head)
            if name is None:
                continue
            seen.add(name)
            b = link_budget(PROFILES[name], range_m, elevation)
            if "MODCOD" in head:
                assert row[i] == modcod_cell(str(np.atleast_1d(b.modcod)[0])), (name, row)
            else:
                assert "(Mbit/s)" in head, head
                assert plain(row[i]) == fmt(float(b.rate_bps) / 1e6, 3), (name, row)
    return seen


def _pass_row(header):
    i_el, i_r = column(header, "elevation (°)"), column(header, "range (km)")

    def where(row):
        el = number(row[i_el])
        r = float(slant_range_m(el, SHELL_M))
        assert plain(row[i_r]) == fmt(r / 1e3, 1), row
        return r, el
    return where


def _range_row(header):
    i_r = column(header, "range (km)")
    assert "elevation (°)" not in header

    def where(row):
        return number(row[i_r]) * 1e3, None
    return where


def _uav_ground_row(header):
    i_r, i_el = column(header, "range (km)"), column(header, "elevation (°)")

    def where(row):
        r = number(row[i_r]) * 1e3
        el = float(elevation_from_range_deg(r, UAV_ALTITUDE_M))
        assert plain(row[i_el]) == fmt(el, 2), row
        return r, el
    return where


RATE_TABLES = [
    ("**Satellite ↔ ground, 550 km pass.**", _pass_row, (90, 35, 20, 10, 5),
     {"leo_xband_dvbs2", "legacy_xband_shannon", "leo_sband_command", "legacy_sband_shannon"}),
    ("**Crosslink rates.**", _range_row, (500, 1000, 2000, 3000, 4000, 5000),
     {"isl_ka_rf", "isl_optical"}),
    ("**UAV ↔ ground rates, UAV at 3 km.**", _uav_ground_row, (10, 25, 50, 100, 150),
     {"uav_cband_dvbs2", "ground_cband_uav"}),
    ("**UAV ↔ UAV rates.**", _range_row, (10, 25, 50, 100, 150), {"uav_air_to_air"}),
]


@pytest.mark.parametrize("caption, geometry, keys, profiles", RATE_TABLES,
                         ids=[t[0].strip("*. ") for t in RATE_TABLES])
def test_rate_table(lines, caption, geometry, keys, profiles):
    header, rows = table_after(lines, caption)
    assert [number(r[0]) for r in rows] == list(keys)  # every row, in order, none extra
    assert _check_rate_table(header, rows, geometry(header)) == profiles
    for name in profiles:  # a MODCOD column beside every ACM rate
        assert any(profile_in(h) == name and "(Mbit/s)" in h for h in header), name
        if PROFILES[name].rate_model == "acm":
            assert any(profile_in(h) == name and "MODCOD" in h for h in header), name


def test_rain_table(lines):
    header, rows = table_after(lines, "**Rain.**")
    assert header == ["rain rate (mm/h)", "rain loss (dB)", "noise temperature (K)",
                      "Es/N0 (dB)", "MODCOD", "rate (Mbit/s)"]
    assert [number(r[0]) for r in rows] == [0, 5, 10, 25, 50]
    r = float(slant_range_m(WORKED_ELEVATION_DEG, SHELL_M))
    for rain, loss, temp, esn0, mc, rate in rows:
        p = PROFILES["leo_xband_dvbs2"].replace(rain_rate_mm_per_h=number(rain))
        b = link_budget(p, r, WORKED_ELEVATION_DEG)
        assert plain(loss) == fmt(float(b.rain_loss_db), 2), rain
        assert plain(temp) == fmt(float(b.noise_temp_k), 1), rain
        assert plain(esn0) == fmt(float(b.snr_db), 2), rain
        assert mc == modcod_cell(str(np.atleast_1d(b.modcod)[0])), rain
        assert plain(rate) == fmt(float(b.rate_bps) / 1e6, 3), rain


def _bisect(f, lo, hi, tol):
    f_lo = f(lo)
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if (f(mid) > 0) == (f_lo > 0):
            lo, f_lo = mid, f(mid)
        else:
            hi = mid
    return (lo + hi) / 2


def test_figures_in_the_text(lines):
    text = prose(lines)
    x, old_x = PROFILES["leo_xband_dvbs2"], PROFILES["legacy_xband_shannon"]

    def x_rate(p, el):
        return float(link_budget(p, slant_range_m(el, SHELL_M), el).rate_bps)

    top = x_rate(x, 90.0)  # 16APSK 9/10 holds down to this elevation
    el_top = _bisect(lambda el: x_rate(x, el) - top + 1.0, 5.0, 20.0, 1e-4)
    assert f"zenith down to {el_top:.1f}°" in text
    el_cross = _bisect(lambda el: x_rate(old_x, el) - x_rate(x, el), 15.0, 35.0, 1e-4)
    assert f"old one above {el_cross:.1f}° elevation" in text
    cap_km = _bisect(lambda km: float(link_budget(old_x, km * 1e3).rate_bps) - 50e6 + 1,
                     100.0, 550.0, 1e-3)
    assert f"within {round(cap_km, -1):.0f} km" in text
    o = PROFILES["isl_optical"]
    optical_km = _bisect(lambda km: float(link_budget(o, km * 1e3).rate_bps) - 0.5, 1e3, 1e4,
                         1e-3)
    assert f"out to {optical_km:,.0f} km" in text
    horizon_km = float(slant_range_m(0.0, UAV_ALTITUDE_M)) / 1e3
    assert f"radio horizon {horizon_km:.1f} km" in text
    s = PROFILES["leo_sband_command"]
    horizon = link_budget(s, slant_range_m(0.0, SHELL_M), 0.0)
    assert float(horizon.rate_bps) == s.data_rate_bps
    assert f"has {float(horizon.snr_db):.1f} dB" in text


# ------------------------------------------------------------------------------ profiles
_MODEL_FIELDS = {
    "acm": {"roll_off", "max_modcod"},
    "fixed": {"modulation", "data_rate_bps", "required_ebn0_db", "sensitivity_dbw"},
    "shannon": {"efficiency", "max_rate_bps"},
}
_COMMON = {"rate_model", "frequency_hz", "tx_power_dbw", "tx_antenna_gain_dbi",
           "rx_antenna_gain_dbi", "system_noise_temp_k", "bandwidth_hz", "pointing_loss_db",
           "polarization_loss_db", "implementation_loss_db", "margin_db", "zenith_gas_loss_db",
           "rain_rate_mm_per_h", "sky_noise"}
_UNITS = (  # field-name ending -> the units the doc may print it in
    ("_mm_per_h", {"mm/h": 1.0}),
    ("_hz", {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9, "THz": 1e12}),
    ("_dbw", {"dBW": 1.0}),
    ("_dbi", {"dBi": 1.0}),
    ("_db", {"dB": 1.0}),
    ("_k", {"K": 1.0}),
    ("_bps", {"bit/s": 1.0, "kbit/s": 1e3, "Mbit/s": 1e6, "Gbit/s": 1e9}),
    ("_m", {"m": 1.0, "km": 1e3}),
)


def _units(field: str) -> dict[str, float]:
    for ending, units in _UNITS:
        if field.endswith(ending):
            return units
    return {"": 1.0}  # roll_off, efficiency


def _required_fields(p: RadioProfile) -> set[str]:
    need = _COMMON | _MODEL_FIELDS[p.rate_model]
    return {f for f in need if getattr(p, f) is not None or p.rate_model != "fixed"}


def _check_cell(p: RadioProfile, field: str, cell: str) -> None:
    value = getattr(p, field)
    other_models = set().union(*(f for m, f in _MODEL_FIELDS.items() if m != p.rate_model))
    if cell.startswith(DASH):
        assert (value is None or field in other_models
                or (field == "rain_height_m" and p.rain_rate_mm_per_h == 0)), (p.name, field)
        return
    assert field not in other_models, f"{p.name}: {field} is not used by {p.rate_model}"
    if field in ("rate_model", "max_modcod", "modulation"):
        quoted = re.match(r"`([^`]+)`", cell)
        assert quoted and quoted.group(1) == value, (p.name, field, cell)
    elif isinstance(value, bool):
        assert cell.split()[0] == ("yes" if value else "no"), (p.name, field, cell)
    else:
        m = re.match(r"(-?[\d,]*\d(?:\.(\d+))?)\s*([A-Za-z/]*)", plain(cell.replace(",", "")))
        assert m, (p.name, field, cell)
        units = _units(field)
        assert m.group(3) in units, f"{p.name}.{field}: unit {m.group(3)!r} in {cell!r}"
        scale = units[m.group(3)]
        decimals = len(m.group(2) or "")
        tol = 0.5 * 10.0**-decimals * scale + 1e-9 * abs(value)
        assert abs(float(m.group(1)) * scale - value) <= tol, (p.name, field, cell, value)


def test_parameter_tables_match_the_profiles(lines):
    tables = tables_with_header(lines, "parameter")
    columns: dict[str, dict[str, str]] = {}
    fields = {f.name for f in dataclasses.fields(RadioProfile)} - {"name", "description"}
    for header, rows in tables:
        for i, head in enumerate(header):
            name = head.strip("`")
            if name not in PROFILES:
                continue
            assert head == f"`{name}`" and name not in columns, f"column {head!r}"
            cells = {}
            for row in rows:
                field = row[0].strip("`")
                assert row[0] == f"`{field}`" and field in fields, f"row {row[0]!r}"
                assert field not in cells, f"{name}: {field} twice"
                cells[field] = row[i]
            columns[name] = cells
    assert set(columns) == set(PROFILES), f"no parameter table for {set(PROFILES) - set(columns)}"
    for name, cells in columns.items():
        p = PROFILES[name]
        missing = _required_fields(p) - set(cells)
        assert not missing, f"{name}: no row for {sorted(missing)}"
        for field, cell in cells.items():
            _check_cell(p, field, cell)


def test_default_profiles_table(lines):
    found = tables_with_header(lines, "transmitter")
    assert len(found) == 1, "one table of default profiles"
    header, rows = found[0]
    assert header == ["transmitter", "receiver", "default profile"]
    doc = {}
    for tx, rx, name in rows:
        assert (tx, rx) not in doc
        doc[(tx, rx)] = name.strip("`")
    assert doc == DEFAULT_PROFILES
    # satellite <-> UAV has none, and the doc says so
    for tx, rx in (("satellite", "uav"), ("uav", "satellite")):
        with pytest.raises(KeyError, match="name one"):
            default_profile_name(tx, rx)
    assert "no default between a satellite and a UAV" in prose(lines)


def test_every_profile_and_module_is_named(lines):
    text = prose(lines)
    for name in PROFILES:
        assert f"`{name}`" in text, name
    for name in set(DEFAULT_PROFILES.values()):
        assert f"`{name}`" in text, name
    for module in ("modcod.py", "atmosphere.py", "radios.py", "links.py"):
        assert any(line.startswith(f"| `{module}` |") for line in lines), module
    for gone in ("BudgetLinkParams", "LEO_DOWNLINK_X_BAND", "LEO_UPLINK_S_BAND",
                 "DEFAULT_SPACE_TO_GROUND", "DEFAULT_GROUND_TO_SPACE", "misc_losses_db"):
        assert gone not in text, gone
    assert "python -m sinsim links" in text
    assert ("`link, direction, range_km, elevation_deg, snr_db, modcod, rate_bps, bandwidth_hz, "
            "profile, cn0_dbhz`") in text
