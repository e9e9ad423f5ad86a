"""Update codecs: a model *update* (delta = trained weights - the weights the client received)
<-> a byte payload, for FedAvg's uplink (``fedavg: {update: {kind: topk, fraction: 0.01}}``).

A codec takes its parameters as keywords (declared once, as its ``Params``), and has
``encode(delta, rng) -> bytes`` and ``decode(payload) -> state dict`` (and the same on one flat
float32 array in state-dict order: ``encode_flat`` / ``decode_flat``). Randomness comes only from
the ``rng`` given, so a payload is a function of (delta, rng). ``error_feedback`` says whether
the sender keeps what was not sent and adds it to its next update (the strategy does this,
``sinsim.learn.strategies.fedavg``). Both ends know the model (`ModelSpec`); every format is
little-endian. LeNet-5: n = 431,080 values in 8 tensors.

Each codec has two layouts of the same values: the coded one is the default (``topk``,
``qsgd``: priced as their papers code them), the fixed-width one a named variant
(``topk_fixed``, ``qsgd_fixed``); for the same input and draws both decode to the same array.

``TopKFixed`` (top-k sparsification with error feedback: Stich et al. 2018, "Sparsified SGD with
memory"; Karimireddy et al. 2019, "Error feedback fixes SignSGD"): the k = ceil(fraction * n)
(at least 1) values of largest magnitude over the whole model (one flat index space: smaller
than a count per tensor, and the usual global top-k), ties broken by the lower index; decoding
puts them back and zeros elsewhere, exactly::

    offset 0        4 bytes  magic b"STPK"
    offset 4        4 bytes  uint32 n, number of values in the model
    offset 8        4 bytes  uint32 k
    offset 12       4*k      uint32 indices into the flat model (state-dict order), ascending
    offset 12+4k    4*k      float32 values at those indices

    12 + 8k bytes. LeNet-5, fraction 0.01: k = 4,311, 34,500 bytes (fp32 weights: 1,724,328).

  Error feedback (on by default) costs one fp32 copy of the model per client that has trained:
  4 n bytes, 1.72 MB for LeNet-5 (the residual: update + old residual - what was sent; when
  the upload is never sent or times out, update + old residual). It is the client's state,
  carried in checkpoints for ``--resume``.

``TopK`` (default ``topk``): the same k values, their indices delta-coded: the gaps
g_0 = i_0, g_j = i_j - i_{j-1} - 1, each Rice-coded (``sinsim.learn.bitcode``) with the
parameter r in 0..31 that makes the stream shortest::

    offset 0        4 bytes  magic b"STPR"
    offset 4        4 bytes  uint32 n;  offset 8: uint32 k;  offset 12: uint32 r
    offset 16       4*k      float32 values at the kept indices, ascending index order
    offset 16+4k    ceil(R / 8) bytes: the k Rice codes of the gaps (R bits), zero-padded

    16 + 4k + ceil(R / 8) bytes, R = sum_j ((g_j >> r) + 1 + r). LeNet-5, k of 1 % of the
    values spread at random: r = 6, 8.1 bits an index: ~21.6 KB (fixed layout 34.5 KB).

``QSGD`` (Alistarh et al. 2017, stochastic quantization with ``levels`` = s levels, in buckets
of ``bucket`` consecutive values as in the paper's experiments; a bucket never spans two
tensors): for a bucket v, ``norm`` is its L2 norm rounded up to float32 (so |v_i| <= norm), and
each value is sent as its sign and a level l in 0..s, l = floor(r) + Bernoulli(r - floor(r))
with r = s |v_i| / norm; it decodes to sign * norm * l / s (computed in float64, rounded once to
float32), so E[decode] = v (unbiased), with per-value variance (norm / s)^2 p (1 - p) <=
norm^2 / (4 s^2) and E||decode - v||^2 <= min(d / s^2, sqrt(d) / s) ||v||^2 per bucket of d
values. ``QSGDFixed`` (``qsgd_fixed``) sends fixed-width codes, b = ceil(log2(s + 1)) bits a
level::

    offset 0        4 bytes  magic b"SQSG"
    offset 4        4 bytes  uint32 n, number of values in the model
    offset 8        4 bytes  uint32 levels s
    offset 12       4 bytes  uint32 bucket
    offset 16       4*m      float32 norm of every bucket: tensors in state-dict order, a
                             tensor of t values having ceil(t / bucket) buckets, m in all
    offset 16+4m    ceil(n (1 + b) / 8) bytes: for every value in state-dict order its sign
                             bit (1: negative; 0 when l = 0) then l in b bits, most significant
                             first; one bit stream, first bit = the top bit of the first byte,
                             zero-padded to a whole byte

    LeNet-5, bucket 512 (m = 846): s = 4 (b = 3): 16 + 3,384 + 215,540 = 218,940 bytes;
    s = 8 (b = 4): 16 + 3,384 + 269,425 = 272,825 bytes.

``QSGD`` (default ``qsgd``) codes the same levels as the paper does (Alistarh et al. 2017,
section 3.2: the positions of the nonzero levels as Elias-coded gaps, then sign and
Elias-coded level; ``sinsim.learn.bitcode``'s Elias gamma)::

    offset 0        4 bytes  magic b"SQSE"
    offset 4        4 bytes  uint32 n;  8: uint32 levels s;  12: uint32 bucket;  16: uint32 z,
                             the number of nonzero levels
    offset 20       4*m      float32 norm of every bucket (as above)
    offset 20+4m    for every nonzero level l at flat index i, in index order (i' the previous
                    one's index, -1 for the first): gamma(i - i'), the sign bit (1: negative),
                    gamma(l); zero-padded to a whole byte

    20 + 4m + ceil(B / 8) bytes, B = sum (gamma_bits(i - i') + 1 + gamma_bits(l)),
    gamma_bits(x) = 2 floor(log2 x) + 1: it depends on the draws (``QSGD.coded_size``).
    LeNet-5, bucket 512, on a heavy-tailed update (Student t, 3 degrees of freedom): s = 4,
    11.7 % nonzero: 49.5 KB; s = 8: 75.3 KB (fixed layout: 218.9 KB and 272.8 KB).

QSGD keeps no memory (``error_feedback`` False). Neither fills ``ClientUpdate.avg_bits``, which
is ALQ's bits per weight; the bytes on the wire are ``len(payload)`` as for every codec.
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict

import numpy as np
import torch
from pydantic import Field

from sinsim.learn import bitcode
from sinsim.learn.codecs import CodecError, ModelSpec, _flatten, _numel, _unflatten
from sinsim.params import Float, Int, Section
from sinsim.registry import Registry

State = dict[str, torch.Tensor]


def _finite(flat: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(flat)):
        raise CodecError(f"{what} needs finite values")


class UpdateCodec:
    """What every update codec has; subclasses implement ``encode_flat`` and ``decode_flat``."""

    name: str
    error_feedback: bool = False

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def encode(self, delta: State, rng: np.random.Generator) -> bytes:
        return self.encode_flat(_flatten(delta, self.spec), rng)

    def decode(self, payload: bytes) -> OrderedDict[str, torch.Tensor]:
        return _unflatten(self.decode_flat(payload), self.spec.names, self.spec.shapes)

    def encode_flat(self, flat: np.ndarray, rng: np.random.Generator) -> bytes:
        raise NotImplementedError

    def decode_flat(self, payload: bytes) -> np.ndarray:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# top-k
# --------------------------------------------------------------------------------------------

class TopKParams(Section):
    """``topk`` / ``topk_fixed``: the largest ``fraction`` of the update's values (by
    magnitude); ``error_feedback`` keeps the rest for the client's next round."""

    fraction: Float = Field(default=0.01, gt=0, le=1)
    error_feedback: bool = True


class TopKFixed(UpdateCodec):
    """Top-k, fixed-width layout: uint32 index + float32 value per kept value."""

    name = "topk_fixed"
    Params = TopKParams
    MAGIC = b"STPK"
    HEADER = struct.Struct("<4sII")

    def __init__(self, spec: ModelSpec, fraction: float = 0.01, error_feedback: bool = True):
        super().__init__(spec)
        self.fraction, self.error_feedback = float(fraction), bool(error_feedback)
        n = spec.numel
        # ceil(fraction * n); a product within 1e-9 n of an integer is that integer
        self.k = max(1, min(n, math.ceil(self.fraction * n - 1e-9 * n)))

    def size(self) -> int:
        """The payload's length in bytes: 12 + 8 k."""
        return self.HEADER.size + 8 * self.k

    def encode_flat(self, flat: np.ndarray, rng: np.random.Generator | None = None) -> bytes:
        flat, idx = self.select(flat)
        return (self.HEADER.pack(self.MAGIC, flat.size, self.k) + idx.tobytes()
                + flat[idx].astype("<f4").tobytes())

    def select(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the update as float32, the indices of its k largest |values|, ascending; ties by
        the lower index)."""
        flat = np.asarray(flat, dtype=np.float32).reshape(-1)
        if flat.size != self.spec.numel:
            raise CodecError(f"update has {flat.size} values; the model has {self.spec.numel}")
        _finite(flat, "top-k")
        order = np.argsort(-np.abs(flat), kind="stable")[: self.k]  # a stable sort of -|x|
        return flat, np.sort(order).astype("<u4")

    def decode_flat(self, payload: bytes) -> np.ndarray:
        n = self.spec.numel
        if len(payload) < self.HEADER.size:
            raise CodecError(f"payload of {len(payload)} bytes is shorter than the header")
        magic, got_n, k = self.HEADER.unpack_from(payload)
        if magic != self.MAGIC:
            raise CodecError(f"bad magic {magic!r}, expected {self.MAGIC!r}")
        if got_n != n or k != self.k or len(payload) != self.size():
            raise CodecError(f"payload holds k={k} of {got_n} values in {len(payload)} bytes; "
                             f"expected k={self.k} of {n}")
        idx = np.frombuffer(payload, "<u4", k, self.HEADER.size)
        values = np.frombuffer(payload, "<f4", k, self.HEADER.size + 4 * k)
        if k and (idx[-1] >= n or np.any(np.diff(idx.astype(np.int64)) <= 0)):
            raise CodecError("top-k indices are not ascending within the model")
        out = np.zeros(n, np.float32)
        out[idx] = values
        return out


# --------------------------------------------------------------------------------------------
# QSGD
# --------------------------------------------------------------------------------------------

class QSGDParams(Section):
    """``qsgd`` / ``qsgd_fixed``: stochastic, unbiased quantization to ``levels`` levels per sign, one float32
    norm per ``bucket`` values (Alistarh et al. 2017)."""

    levels: Int = Field(default=4, ge=1, le=2**31 - 1)
    bucket: Int = Field(default=512, ge=1)


class QSGDFixed(UpdateCodec):
    """QSGD, fixed-width layout: a sign bit and b = ceil(log2(s + 1)) level bits per value."""

    name = "qsgd_fixed"
    Params = QSGDParams
    MAGIC = b"SQSG"
    HEADER = struct.Struct("<4sIII")

    def __init__(self, spec: ModelSpec, levels: int = 4, bucket: int = 512):
        super().__init__(spec)
        self.levels, self.bucket = int(levels), int(bucket)
        self.bits = max(1, math.ceil(math.log2(self.levels + 1)))  # per level index
        starts, lengths, offset = [], [], 0
        for shape in spec.shapes:
            t = _numel(shape)
            for s in range(0, t, self.bucket):
                starts.append(offset + s)
                lengths.append(min(self.bucket, t - s))
            offset += t
        self._starts = np.asarray(starts, np.int64)
        self._lengths = np.asarray(lengths, np.int64)

    @property
    def n_buckets(self) -> int:
        return len(self._starts)

    def size(self) -> int:
        """The payload's length in bytes: 16 + 4 m + ceil(n (1 + b) / 8)."""
        return (self.HEADER.size + 4 * self.n_buckets
                + -(-self.spec.numel * (1 + self.bits) // 8))

    def quantize(self, flat: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(float32 norm of every bucket, level of every value (uint64, 0..s), sign of every
        value (uint64, 1: negative with a nonzero level)), the draws in value order."""
        x = np.asarray(flat, dtype=np.float32).reshape(-1)
        n = self.spec.numel
        if x.size != n:
            raise CodecError(f"update has {x.size} values; the model has {n}")
        _finite(x, "QSGD")
        x64 = x.astype(np.float64)
        exact = (np.sqrt(np.add.reduceat(x64 * x64, self._starts)) if n
                 else np.zeros(0))
        norms = exact.astype(np.float32)
        low = norms.astype(np.float64) < exact  # round up: |v_i| <= norm
        norms[low] = np.nextafter(norms[low], np.float32(np.inf))
        per_value = np.repeat(norms.astype(np.float64), self._lengths)
        s = self.levels
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(per_value > 0, s * np.abs(x64) / per_value, 0.0)
        floor = np.floor(r)
        level = floor + (rng.random(n) < (r - floor))
        level = np.minimum(level, s).astype(np.uint64)
        sign = ((x < 0) & (level > 0)).astype(np.uint64)
        return norms, level, sign

    def dequantize(self, norms: np.ndarray, level: np.ndarray, negative: np.ndarray
                   ) -> np.ndarray:
        """sign * norm * level / s per value, in float64, rounded once to float32."""
        values = np.repeat(norms.astype(np.float64), self._lengths) * level / self.levels
        values[negative] = -values[negative]
        return values.astype(np.float32)

    def encode_flat(self, flat: np.ndarray, rng: np.random.Generator) -> bytes:
        norms, level, sign = self.quantize(flat, rng)
        n, s = self.spec.numel, self.levels
        codes = (sign << np.uint64(self.bits)) | level
        width = 1 + self.bits
        shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
        bits = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(-1)
        return (self.HEADER.pack(self.MAGIC, n, s, self.bucket) + norms.astype("<f4").tobytes()
                + np.packbits(bits).tobytes())

    def decode_flat(self, payload: bytes) -> np.ndarray:
        n = self.spec.numel
        if len(payload) < self.HEADER.size:
            raise CodecError(f"payload of {len(payload)} bytes is shorter than the header")
        magic, got_n, s, bucket = self.HEADER.unpack_from(payload)
        if magic != self.MAGIC:
            raise CodecError(f"bad magic {magic!r}, expected {self.MAGIC!r}")
        if (got_n, s, bucket) != (n, self.levels, self.bucket) or len(payload) != self.size():
            raise CodecError(f"payload of {len(payload)} bytes holds {got_n} values, levels {s}, "
                             f"bucket {bucket}; expected {n}, {self.levels}, {self.bucket}")
        m, width = self.n_buckets, 1 + self.bits
        norms = np.frombuffer(payload, "<f4", m, self.HEADER.size)
        packed = np.frombuffer(payload, np.uint8, offset=self.HEADER.size + 4 * m)
        bits = np.unpackbits(packed)[: n * width].reshape(n, width).astype(np.uint64)
        shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
        codes = (bits << shifts).sum(axis=1, dtype=np.uint64)
        level = (codes & np.uint64((1 << self.bits) - 1)).astype(np.float64)
        if np.any(level > s):
            raise CodecError(f"a QSGD level is above {s}")
        negative = (codes >> np.uint64(self.bits)).astype(bool)
        return self.dequantize(norms, level, negative)


# --------------------------------------------------------------------------------------------
# the coded layouts (the defaults): top-k with Rice-coded index gaps, QSGD with Elias codes
# --------------------------------------------------------------------------------------------

class TopK(TopKFixed):
    """Top-k with its indices delta-coded: the gaps between kept indices, Rice-coded."""

    name = "topk"
    MAGIC = b"STPR"
    HEADER = struct.Struct("<4sIII")

    def size(self) -> None:  # type: ignore[override]
        """None: the size depends on where the kept values are (``coded_size``)."""
        return None

    @staticmethod
    def gaps(idx: np.ndarray) -> np.ndarray:
        """idx[0], then idx[i] - idx[i-1] - 1 (>= 0 for ascending indices)."""
        idx = idx.astype(np.int64)
        return np.diff(idx, prepend=-1) - 1

    def coded_size(self, idx: np.ndarray) -> int:
        """The payload's length for kept indices ``idx``: 16 + 4 k + ceil(R / 8), R the bits
        of the Rice codes of the gaps with the best parameter."""
        gaps = self.gaps(idx)
        r_bits = int(bitcode.rice_bits(gaps, bitcode.best_rice_k(gaps)).sum())
        return self.HEADER.size + 4 * self.k + -(-r_bits // 8)

    def encode_flat(self, flat: np.ndarray, rng: np.random.Generator | None = None) -> bytes:
        flat, idx = self.select(flat)
        gaps = self.gaps(idx)
        rice_k = bitcode.best_rice_k(gaps)
        return (self.HEADER.pack(self.MAGIC, flat.size, self.k, rice_k)
                + flat[idx].astype("<f4").tobytes()
                + bitcode.write_fields(*bitcode.rice_fields(gaps, rice_k)))

    def decode_flat(self, payload: bytes) -> np.ndarray:
        n = self.spec.numel
        if len(payload) < self.HEADER.size:
            raise CodecError(f"payload of {len(payload)} bytes is shorter than the header")
        magic, got_n, k, rice_k = self.HEADER.unpack_from(payload)
        if magic != self.MAGIC:
            raise CodecError(f"bad magic {magic!r}, expected {self.MAGIC!r}")
        if got_n != n or k != self.k or rice_k > 31 or len(payload) < self.HEADER.size + 4 * k:
            raise CodecError(f"payload holds k={k} of {got_n} values (Rice {rice_k}) in "
                             f"{len(payload)} bytes; expected k={self.k} of {n}")
        values = np.frombuffer(payload, "<f4", k, self.HEADER.size)
        try:
            gaps = bitcode.read_rice(payload, self.HEADER.size + 4 * k, k, rice_k)
        except ValueError as e:
            raise CodecError(f"top-k index stream: {e}") from None
        idx = np.cumsum(gaps + 1) - 1
        if k and idx[-1] >= n:
            raise CodecError("a top-k index is beyond the model")
        out = np.zeros(n, np.float32)
        out[idx] = values
        return out


class QSGD(QSGDFixed):
    """QSGD with the paper's coding: per nonzero level, Elias(gap), sign, Elias(level)."""

    name = "qsgd"
    MAGIC = b"SQSE"
    HEADER = struct.Struct("<4sIIII")

    def size(self) -> None:  # type: ignore[override]
        """None: the size depends on the levels drawn (``coded_size``)."""
        return None

    def _fields(self, level: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nz = np.flatnonzero(level)
        gap_v, gap_w = bitcode.gamma_fields(np.diff(nz, prepend=-1).astype(np.uint64))
        lev_v, lev_w = bitcode.gamma_fields(level[nz])
        per = 5  # gamma(gap + 1): 2 fields, sign: 1, gamma(level): 2
        values = np.empty(per * nz.size, np.uint64)
        widths = np.empty(per * nz.size, np.int64)
        for j, (v, w) in enumerate(((gap_v[0::2], gap_w[0::2]), (gap_v[1::2], gap_w[1::2]),
                                    (sign[nz], np.ones(nz.size, np.int64)),
                                    (lev_v[0::2], lev_w[0::2]), (lev_v[1::2], lev_w[1::2]))):
            values[j::per], widths[j::per] = v, w
        return values, widths

    def coded_size(self, level: np.ndarray) -> int:
        """The payload's length for ``level``: 20 + 4 m + ceil(B / 8) with B = the sum over
        the nonzero levels l (at flat index i, the previous one at i') of
        gamma(i - i') + 1 + gamma(l), gamma(x) = 2 floor(log2 x) + 1 bits (i' = -1 first)."""
        nz = np.flatnonzero(level)
        b = int((bitcode.gamma_bits(np.diff(nz, prepend=-1)) + 1
                 + bitcode.gamma_bits(level[nz])).sum())
        return self.HEADER.size + 4 * self.n_buckets + -(-b // 8)

    def encode_flat(self, flat: np.ndarray, rng: np.random.Generator) -> bytes:
        norms, level, sign = self.quantize(flat, rng)
        nnz = int(np.count_nonzero(level))
        return (self.HEADER.pack(self.MAGIC, self.spec.numel, self.levels, self.bucket, nnz)
                + norms.astype("<f4").tobytes() + bitcode.write_fields(*self._fields(level, sign)))

    def decode_flat(self, payload: bytes) -> np.ndarray:
        n, m = self.spec.numel, self.n_buckets
        if len(payload) < self.HEADER.size + 4 * m:
            raise CodecError(f"payload of {len(payload)} bytes is shorter than its header")
        magic, got_n, s, bucket, nnz = self.HEADER.unpack_from(payload)
        if magic != self.MAGIC:
            raise CodecError(f"bad magic {magic!r}, expected {self.MAGIC!r}")
        if (got_n, s, bucket) != (n, self.levels, self.bucket) or nnz > n:
            raise CodecError(f"payload holds {got_n} values ({nnz} nonzero), levels {s}, "
                             f"bucket {bucket}; expected {n}, {self.levels}, {self.bucket}")
        norms = np.frombuffer(payload, "<f4", m, self.HEADER.size)
        try:
            idx, negative, level = bitcode.read_qsgd(payload, self.HEADER.size + 4 * m, nnz)
        except ValueError as e:
            raise CodecError(f"QSGD stream: {e}") from None
        if nnz and (idx[-1] >= n or level.max() > s or level.min() < 1 or idx[0] < 0):
            raise CodecError(f"a QSGD index is beyond the model or a level outside 1..{s}")
        full_level = np.zeros(n, np.float64)
        full_negative = np.zeros(n, bool)
        full_level[idx], full_negative[idx] = level, negative
        return self.dequantize(norms, full_level, full_negative)


# the codecs FedAvg's ``update`` parameter chooses from (``{kind: NAME, ...its parameters}``)
UPDATE_CODECS: Registry[type] = Registry("update codec", {
    "topk": TopK, "qsgd": QSGD, "topk_fixed": TopKFixed, "qsgd_fixed": QSGDFixed})
