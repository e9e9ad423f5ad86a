"""The DVB-S2 MODCOD table and ACM selection, against an independent copy of the standard."""

from __future__ import annotations

import numpy as np
import pytest

from sinsim.space.modcod import DVB_S2_MODCODS, best_modcod_index, modcod, modcods_up_to

# ETSI EN 302 307-1 V1.4.1, Table 13 (normal FECFRAME, AWGN, PER 1e-7, no pilots), typed in from
# the standard: (MODCOD, spectral efficiency in information bits per symbol, ideal Es/N0 dB).
# test_link_budget.py picks MODCODs with this copy, not with sinsim's.
TABLE_13 = (
    ("QPSK 1/4", 0.490243, -2.35),
    ("QPSK 1/3", 0.656448, -1.24),
    ("QPSK 2/5", 0.789412, -0.30),
    ("QPSK 1/2", 0.988858, 1.00),
    ("QPSK 3/5", 1.188304, 2.23),
    ("QPSK 2/3", 1.322253, 3.10),
    ("QPSK 3/4", 1.487473, 4.03),
    ("QPSK 4/5", 1.587196, 4.68),
    ("QPSK 5/6", 1.654663, 5.18),
    ("QPSK 8/9", 1.766451, 6.20),
    ("QPSK 9/10", 1.788612, 6.42),
    ("8PSK 3/5", 1.779991, 5.50),
    ("8PSK 2/3", 1.980636, 6.62),
    ("8PSK 3/4", 2.228124, 7.91),
    ("8PSK 5/6", 2.478562, 9.35),
    ("8PSK 8/9", 2.646012, 10.69),
    ("8PSK 9/10", 2.679207, 10.98),
    ("16APSK 2/3", 2.637201, 8.97),
    ("16APSK 3/4", 2.966728, 10.21),
    ("16APSK 4/5", 3.165623, 11.03),
    ("16APSK 5/6", 3.300184, 11.61),
    ("16APSK 8/9", 3.523143, 12.89),
    ("16APSK 9/10", 3.567342, 13.13),
    ("32APSK 3/4", 3.703295, 12.73),
    ("32APSK 4/5", 3.951571, 13.64),
    ("32APSK 5/6", 4.119540, 14.28),
    ("32APSK 8/9", 4.397854, 15.69),
    ("32APSK 9/10", 4.453027, 16.05),
)
EFFICIENCY = {name: eff for name, eff, _ in TABLE_13}


def expected_modcod(esn0_db: float, extra_db: float, best: str | None = None) -> str:
    """The most efficient MODCOD (no more efficient than ``best``) whose threshold plus
    ``extra_db`` is at most ``esn0_db``; "" when none is."""
    top = EFFICIENCY[best] if best else np.inf
    ok = [(eff, name) for name, eff, thr in TABLE_13 if eff <= top and thr + extra_db <= esn0_db]
    return max(ok)[1] if ok else ""


def test_table_is_etsi_table_13():
    assert len(DVB_S2_MODCODS) == 28
    assert [m.name for m in DVB_S2_MODCODS] == [row[0] for row in TABLE_13]
    for m, (_, eff, thr) in zip(DVB_S2_MODCODS, TABLE_13):
        assert m.bits_per_symbol == pytest.approx(eff, abs=1e-12)
        assert m.esn0_db == pytest.approx(thr, abs=1e-12)


def test_spectral_efficiency_span_at_roll_off_0_2():
    # at roll-off 0.2 the occupied bandwidth is 1.2 x the symbol rate: 0.409 to 3.711 b/s/Hz
    per_hz = [m.bits_per_symbol / 1.2 for m in DVB_S2_MODCODS]
    assert round(min(per_hz), 3) == 0.409
    assert round(max(per_hz), 3) == 3.711
    # 10 MHz at DVB-S2's best MODCOD (32APSK 9/10): 10e6 / 1.2 * 4.453027 = 37.1 Mbit/s
    best = max(DVB_S2_MODCODS, key=lambda m: m.bits_per_symbol)
    assert best.name == "32APSK 9/10"
    assert round(10e6 / 1.2 * best.bits_per_symbol / 1e6, 1) == 37.1


def test_modcod_by_name():
    m = modcod("8PSK 3/4")
    assert (m.name, m.bits_per_symbol, m.esn0_db) == ("8PSK 3/4", 2.228124, 7.91)
    with pytest.raises(KeyError) as err:
        modcod("64APSK 9/10")
    assert "QPSK 1/4" in str(err.value) and "32APSK 9/10" in str(err.value)


@pytest.mark.parametrize("best", [None, "QPSK 1/4", "QPSK 9/10", "8PSK 9/10", "16APSK 9/10",
                                  "32APSK 9/10"])
def test_modcods_up_to_restricts_by_constellation_and_efficiency(best):
    order = {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}
    top = EFFICIENCY[best] if best else np.inf
    top_order = order[best.split()[0]] if best else 5
    want = [name for name, eff, _ in TABLE_13
            if eff <= top and order[name.split()[0]] <= top_order]
    assert [m.name for m in modcods_up_to(best)] == want  # in table order


def test_modcods_up_to_examples():
    assert modcods_up_to(None) == DVB_S2_MODCODS
    assert [m.name for m in modcods_up_to("QPSK 1/4")] == ["QPSK 1/4"]
    # the default X-band / Ka-band modem (16APSK 9/10): all but the five 32APSK MODCODs
    names = [m.name for m in modcods_up_to("16APSK 9/10")]
    assert len(names) == 23 and not any(n.startswith("32APSK") for n in names)
    # a QPSK modem runs no 8PSK (8PSK 3/5 is less efficient than QPSK 9/10), an 8PSK modem
    # no 16APSK (16APSK 2/3 is less efficient than 8PSK 9/10)
    assert not any(n.startswith("8PSK") for n in (m.name for m in modcods_up_to("QPSK 9/10")))
    assert not any(n.startswith("16APSK") for n in (m.name for m in modcods_up_to("8PSK 9/10")))
    with pytest.raises(KeyError):
        modcods_up_to("QPSK 7/8")


@pytest.mark.parametrize("extra_db", [0.0, 1.7, 3.0])
def test_selection_at_each_threshold_edge(extra_db):
    for i, (name, eff, thr) in enumerate(TABLE_13):
        at = thr + extra_db
        j = int(best_modcod_index(at, extra_db))
        # a threshold met exactly is cleared: this MODCOD or a more efficient one is chosen
        assert j >= 0 and DVB_S2_MODCODS[j].bits_per_symbol >= eff, name
        assert DVB_S2_MODCODS[j].name == expected_modcod(at, extra_db), name
        below = at - 1e-9
        assert below < at
        k = int(best_modcod_index(below, extra_db))
        assert k != i, name
        got = DVB_S2_MODCODS[k].name if k >= 0 else ""
        assert got == expected_modcod(below, extra_db), name


def test_selection_where_efficiency_and_threshold_orders_differ():
    # 8PSK 3/5 (1.780 b/sym at 5.50 dB) beats QPSK 5/6 (1.655, 5.18 dB) and QPSK 8/9 (1.766,
    # 6.20 dB) but not QPSK 9/10 (1.789, 6.42 dB); 16APSK 2/3 (2.637, 8.97 dB) beats 8PSK 3/4
    # (2.228, 7.91 dB) and 8PSK 5/6 (2.479, 9.35 dB); 8PSK 8/9 (2.646, 10.69 dB) is never
    # chosen from the full table: 16APSK 3/4 (2.967) is available from 10.21 dB
    names = [m.name for m in DVB_S2_MODCODS]
    esn0 = np.array([5.49, 5.50, 6.20, 6.41, 6.42, 8.96, 8.97, 10.20, 10.21, 10.69])
    got = [names[j] for j in best_modcod_index(esn0, 0.0)]
    assert got == ["QPSK 5/6", "8PSK 3/5", "8PSK 3/5", "8PSK 3/5", "QPSK 9/10", "8PSK 3/4",
                   "16APSK 2/3", "16APSK 2/3", "16APSK 3/4", "16APSK 3/4"]
    # restricted to 8PSK 9/10's efficiency, 8PSK 8/9 is chosen from 10.69 dB
    table = modcods_up_to("8PSK 9/10")
    assert table[int(best_modcod_index(10.69, 0.0, table))].name == "8PSK 8/9"


def test_selection_with_a_restricted_table():
    table = modcods_up_to("16APSK 9/10")
    esn0 = np.linspace(-5.0, 40.0, 4501)
    idx = best_modcod_index(esn0, 2.5, table)
    got = [table[j].name if j >= 0 else "" for j in idx]
    assert got == [expected_modcod(x, 2.5, "16APSK 9/10") for x in esn0]
    assert got[-1] == "16APSK 9/10"


def test_selection_vectorised_and_none():
    esn0 = np.array([[-10.0, np.nan], [16.05, 100.0]])
    idx = best_modcod_index(esn0, 0.0)
    assert idx.shape == (2, 2)
    assert idx[0, 0] == -1 and idx[0, 1] == -1  # below QPSK 1/4, and NaN, select nothing
    assert DVB_S2_MODCODS[idx[1, 0]].name == "32APSK 9/10"
    assert DVB_S2_MODCODS[idx[1, 1]].name == "32APSK 9/10"
    assert best_modcod_index(-2.35, 0.0) == 0
    assert best_modcod_index(-2.35, 0.01) == -1
