"""Variable-length integer codes on a bit stream, for the update codecs that price their
payloads as their papers code them (``sinsim.learn.update_codecs``).

A stream is a sequence of *fields*, each an unsigned integer written in a given number of bits,
most significant bit first; the first bit is the top bit of the first byte, and the stream is
zero-padded to a whole byte. The codes are fields:

- **Elias gamma** of x >= 1 (Elias 1975): L = floor(log2 x) zero bits, then x in L + 1 bits
  (whose first bit is 1): 2 L + 1 bits. QSGD's gaps and levels (Alistarh et al. 2017, section 3.2
  codes them with Elias's recursive code; gamma is its first step, within a bit or two of it for
  the small integers that QSGD sends).
- **Rice** of x >= 0 with parameter k (Golomb 1966 with a power of two, Rice 1979):
  q = x >> k zero bits, a one bit, then x's k low bits: q + 1 + k bits. Top-k's index gaps,
  which are nearly geometric, with k chosen per payload to make the stream shortest.

Writing is vectorised (``write_fields``); reading walks the stream code by code, as any
decoder of a prefix code must: ``BitReader`` one code at a time, ``read_rice`` and
``read_qsgd`` whole streams in compiled loops (numba; a LeNet-5 update has up to 431,080
codes).
"""

from __future__ import annotations

import bisect

import numpy as np

from sinsim.paths import point_numba_cache

point_numba_cache()  # numba's cache in sinsim's cache directory, never the package's
import numba  # noqa: E402 - after its cache directory is set


def bit_length(x: np.ndarray) -> np.ndarray:
    """floor(log2 x) + 1 for every x >= 1 (uint64), exactly (no floating point)."""
    x = np.asarray(x, dtype=np.uint64)
    out = np.zeros(x.shape, np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        big = (x >> np.uint64(shift)) > 0
        out[big] += shift
        x = np.where(big, x >> np.uint64(shift), x)
    return out + (x > 0)


def gamma_bits(x: np.ndarray) -> np.ndarray:
    """The length of the Elias gamma code of every x >= 1: 2 floor(log2 x) + 1."""
    return 2 * bit_length(x) - 1


def gamma_fields(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, widths) of the Elias gamma codes of ``x`` (>= 1), two fields a code: zeros, then
    x in floor(log2 x) + 1 bits."""
    x = np.asarray(x, dtype=np.uint64)
    if np.any(x < 1):
        raise ValueError("Elias gamma codes integers >= 1")
    n_bits = bit_length(x)
    values = np.stack([np.zeros_like(x), x], axis=1).reshape(-1)
    widths = np.stack([n_bits - 1, n_bits], axis=1).reshape(-1)
    return values, widths


def rice_bits(x: np.ndarray, k: int) -> np.ndarray:
    """The length of the Rice code (parameter ``k``) of every x >= 0: (x >> k) + 1 + k."""
    return (np.asarray(x, dtype=np.uint64) >> np.uint64(k)).astype(np.int64) + 1 + k


def rice_fields(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, widths) of the Rice codes of ``x`` (>= 0) with parameter ``k``, two fields a
    code: q = x >> k zeros then a one (the value 1 in q + 1 bits), then x's k low bits."""
    x = np.asarray(x, dtype=np.uint64)
    q = (x >> np.uint64(k)).astype(np.int64)
    low = x & np.uint64((1 << k) - 1)
    values = np.stack([np.ones_like(x), low], axis=1).reshape(-1)
    widths = np.stack([q + 1, np.full_like(q, k)], axis=1).reshape(-1)
    return values, widths


def best_rice_k(x: np.ndarray) -> int:
    """The Rice parameter in 0..31 that codes ``x`` in the fewest bits (the lowest on a tie)."""
    x = np.asarray(x, dtype=np.uint64)
    totals = [int(rice_bits(x, k).sum()) for k in range(32)]
    return int(np.argmin(totals))


def write_fields(values: np.ndarray, widths: np.ndarray) -> bytes:
    """The fields (``values[i]`` in ``widths[i]`` bits, most significant bit first, in order)
    as one bit stream, zero-padded to a whole byte. A value must fit its width."""
    values = np.asarray(values, dtype=np.uint64)
    widths = np.asarray(widths, dtype=np.int64)
    total = int(widths.sum())
    field = np.repeat(np.arange(widths.size), widths)
    start = np.cumsum(widths) - widths
    j = np.arange(total, dtype=np.int64) - start[field]  # the bit's place in its field
    shift = widths[field] - 1 - j
    bits = np.where(shift < 64, (values[field] >> np.minimum(shift, 63).astype(np.uint64))
                    & np.uint64(1), 0).astype(np.uint8)
    return np.packbits(bits).tobytes()


class BitReader:
    """Reads fields and codes from a bit stream (``payload`` from byte ``offset`` on)."""

    def __init__(self, payload: bytes, offset: int = 0):
        self.data = bytes(payload[offset:])
        self.n_bits = 8 * len(self.data)
        bits = np.unpackbits(np.frombuffer(self.data, np.uint8))
        self.ones = np.flatnonzero(bits).tolist()  # the places of the one bits
        self.pos = 0

    def bits(self, width: int) -> int:
        """The next ``width`` bits as an unsigned integer."""
        if width == 0:
            return 0
        end = self.pos + width
        if end > self.n_bits:
            raise ValueError("the bit stream ends inside a field")
        first, last = self.pos >> 3, (end + 7) >> 3
        word = int.from_bytes(self.data[first:last], "big")
        value = (word >> (8 * last - end)) & ((1 << width) - 1)
        self.pos = end
        return value

    def zeros(self) -> int:
        """Skip the zero bits up to the next one bit, and that one bit; how many zeros."""
        i = bisect.bisect_left(self.ones, self.pos)
        if i == len(self.ones):
            raise ValueError("the bit stream ends inside a code")
        n = self.ones[i] - self.pos
        self.pos = self.ones[i] + 1
        return n

    def gamma(self) -> int:
        """The next Elias gamma code's value (>= 1)."""
        n = self.zeros()
        return (1 << n) | self.bits(n)

    def rice(self, k: int) -> int:
        """The next Rice code's value (parameter ``k``)."""
        q = self.zeros()
        return (q << k) | self.bits(k)

    def padding_ok(self) -> bool:
        """Whether only the zero padding (fewer than 8 bits, all zero) is left."""
        return self.n_bits - self.pos < 8 and bisect.bisect_left(self.ones, self.pos) == len(
            self.ones)


def _stream_bits(payload: bytes, offset: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(payload, np.uint8, offset=offset))


@numba.njit(cache=True)
def _rice_run(bits: np.ndarray, count: int, k: int) -> tuple[np.ndarray, int]:
    """``count`` Rice codes from the start of ``bits``; (values, bits read), -1 read when the
    stream ends inside a code or a value would not fit 62 bits."""
    out = np.empty(count, np.int64)
    n, pos = bits.size, 0
    for j in range(count):
        q = 0
        while pos < n and bits[pos] == 0:
            q += 1
            pos += 1
        if pos >= n or pos + 1 + k > n or q >= (1 << (62 - k)):
            return out, -1
        pos += 1
        low = 0
        for b in range(k):
            low = (low << 1) | bits[pos + b]
        pos += k
        out[j] = (q << k) | low
    return out, pos


@numba.njit(cache=True)
def _gamma_at(bits: np.ndarray, pos: int) -> tuple[int, int]:
    """The Elias gamma code at ``pos``: (value, position after it); (0, -1) when the stream
    ends inside it or it is longer than 62 bits of value."""
    n, zeros = bits.size, 0
    while pos < n and bits[pos] == 0:
        zeros += 1
        pos += 1
    if pos + zeros + 1 > n or zeros > 61:
        return 0, -1
    value = 0
    for b in range(zeros + 1):
        value = (value << 1) | bits[pos + b]
    return value, pos + zeros + 1


@numba.njit(cache=True)
def _qsgd_run(bits: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``count`` QSGD triples (gamma gap, sign bit, gamma level): (index, negative, level,
    bits read); -1 read when the stream ends inside a code."""
    idx = np.empty(count, np.int64)
    negative = np.empty(count, np.uint8)
    level = np.empty(count, np.int64)
    pos, i = 0, -1
    for j in range(count):
        gap, pos = _gamma_at(bits, pos)
        if pos < 0 or pos >= bits.size:
            return idx, negative, level, -1
        i += gap
        negative[j] = bits[pos]
        lev, pos = _gamma_at(bits, pos + 1)
        if pos < 0:
            return idx, negative, level, -1
        idx[j], level[j] = i, lev
    return idx, negative, level, pos


def _check_end(bits: np.ndarray, end: int, what: str) -> None:
    if end < 0:
        raise ValueError(f"the bit stream ends inside a {what} code")
    if bits.size - end >= 8 or bits[end:].any():
        raise ValueError("bytes left after the last code")


def read_rice(payload: bytes, offset: int, count: int, k: int) -> np.ndarray:
    """The ``count`` Rice codes (parameter ``k``) of the stream at byte ``offset``, which must
    end in zero padding only (``ValueError`` otherwise, or when it ends inside a code)."""
    bits = _stream_bits(payload, offset)
    values, end = _rice_run(bits, count, k)
    _check_end(bits, end, "Rice")
    return values


def read_qsgd(payload: bytes, offset: int, count: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QSGD's ``count`` (Elias gap, sign, Elias level) triples at byte ``offset``: (flat
    indices, negative signs, levels); the stream must end in zero padding only."""
    bits = _stream_bits(payload, offset)
    idx, negative, level, end = _qsgd_run(bits, count)
    _check_end(bits, end, "QSGD")
    return idx, negative.astype(bool), level
