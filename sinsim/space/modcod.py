"""DVB-S2 modulation and coding (MODCOD) table and adaptive-coding-and-modulation selection.

The 28 MODCODs of ETSI EN 302 307-1 (V1.4.1), Table 13: for each, the spectral efficiency in
information bits per transmitted symbol (normal 64,800-bit FECFRAME, no pilots) and the ideal
Es/N0 at which the code reaches quasi-error-free operation (packet error rate 1e-7) on an AWGN
channel. A real modem needs ``implementation_loss_db`` more, and a link budget keeps
``margin_db`` in hand: an ACM link runs the best MODCOD whose threshold plus both it clears.
The information rate is ``symbol_rate * spectral_efficiency`` with ``symbol_rate =
bandwidth / (1 + roll_off)`` (at roll-off 0.2 the table spans 0.409 to 3.711 b/s/Hz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Modcod", "DVB_S2_MODCODS", "modcod", "bits_per_modulation_symbol", "modcods_up_to",
           "best_modcod_index"]


@dataclass(frozen=True)
class Modcod:
    """One MODCOD: ``name`` (e.g. ``"8PSK 3/4"``), information bits per symbol, and the
    ideal quasi-error-free Es/N0 threshold in dB."""

    name: str
    bits_per_symbol: float
    esn0_db: float


# ETSI EN 302 307-1 V1.4.1 (2014-11), Table 13 (normal FECFRAME, AWGN, PER 1e-7, no pilots)
DVB_S2_MODCODS: tuple[Modcod, ...] = tuple(Modcod(*row) for row in (
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
))

_BY_NAME = {m.name: m for m in DVB_S2_MODCODS}


def modcod(name: str) -> Modcod:
    """The MODCOD called ``name`` (``KeyError`` naming the choices otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown DVB-S2 MODCOD {name!r}; one of: "
                       + ", ".join(_BY_NAME)) from None


def bits_per_modulation_symbol(m: Modcod) -> int:
    """Raw bits a symbol of ``m``'s constellation carries (QPSK 2, 8PSK 3, 16APSK 4, 32APSK 5)."""
    return {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}[m.name.split()[0]]


def modcods_up_to(best: str | None) -> tuple[Modcod, ...]:
    """The MODCODs a modem whose best MODCOD is ``best`` can run: those of its constellation
    or a smaller one (a transmitter driven near saturation cannot carry a denser
    constellation) and of no higher spectral efficiency; all 28 when ``best`` is None."""
    if best is None:
        return DVB_S2_MODCODS
    top = modcod(best)
    order = bits_per_modulation_symbol(top)
    return tuple(m for m in DVB_S2_MODCODS if bits_per_modulation_symbol(m) <= order
                 and m.bits_per_symbol <= top.bits_per_symbol)


def best_modcod_index(esn0_db, required_extra_db: float,
                      table: tuple[Modcod, ...] = DVB_S2_MODCODS) -> np.ndarray:
    """Index into ``table`` of the most efficient MODCOD whose ``esn0_db`` threshold plus
    ``required_extra_db`` (implementation loss + margin) is at most the link's Es/N0; -1
    where none is (vectorised over ``esn0_db``). A threshold met exactly is cleared."""
    esn0 = np.asarray(esn0_db, dtype=float)
    best = np.full(esn0.shape, -1, dtype=int)
    best_eff = np.full(esn0.shape, -np.inf)
    for i, m in enumerate(table):
        ok = (esn0 >= m.esn0_db + required_extra_db) & (m.bits_per_symbol > best_eff)
        best = np.where(ok, i, best)
        best_eff = np.where(ok, m.bits_per_symbol, best_eff)
    return best
