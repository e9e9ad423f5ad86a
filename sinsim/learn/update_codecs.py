"""Update codecs: a model *update* (delta = trained weights - the weights the client received)
<-> a byte payload, for FedAvg's uplink (``fedavg: {update: {kind: topk, fraction: 0.01}}``).

A codec takes its parameters as keywords (declared once, as its ``Params``), and has
``encode(delta, rng) -> bytes`` and ``decode(payload) -> state dict`` (and the same on one flat
float32 array in state-dict order: ``encode_flat`` / ``decode_flat``). Randomness comes only from
the ``rng`` given, so a payload is a function of (delta, rng). ``error_feedback`` says whether
the sender keeps what was not sent and adds it to its next update (the strategy does this,
``sinsim.learn.strategies.fedavg``). Both ends know the model (`ModelSpec`); every format is
little-endian. LeNet-5: n = 431,080 values in 8 tensors.

``TopK`` (top-k sparsification with error feedback: Stich et al. 2018, "Sparsified SGD with
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
  4 n bytes, 1.72 MB for LeNet-5 (the residual: update + old residual - what was sent). It is
  the client's state, carried in checkpoints for ``--resume``.

``QSGD`` (Alistarh et al. 2017, stochastic quantization with ``levels`` = s levels, in buckets
of ``bucket`` consecutive values as in the paper's experiments; a bucket never spans two
tensors): for a bucket v, ``norm`` is its L2 norm rounded up to float32 (so |v_i| <= norm), and
each value is sent as its sign and a level l in 0..s, l = floor(r) + Bernoulli(r - floor(r))
with r = s |v_i| / norm; it decodes to sign * norm * l / s (computed in float64, rounded once to
float32), so E[decode] = v (unbiased), with per-value variance (norm / s)^2 p (1 - p) <=
norm^2 / (4 s^2) and E||decode - v||^2 <= min(d / s^2, sqrt(d) / s) ||v||^2 per bucket of d
values. Fixed-width codes, no Elias coding: b = ceil(log2(s + 1)) bits a level::

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
    """``topk``: the largest ``fraction`` of the update's values (by magnitude) as uint32 index
    + float32 value; ``error_feedback`` keeps the rest for the client's next round."""

    fraction: Float = Field(default=0.01, gt=0, le=1)
    error_feedback: bool = True


class TopK(UpdateCodec):
    name = "topk"
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
        flat = np.asarray(flat, dtype=np.float32).reshape(-1)
        if flat.size != self.spec.numel:
            raise CodecError(f"update has {flat.size} values; the model has {self.spec.numel}")
        _finite(flat, "top-k")
        # the k largest |values|, ties by the lower index (a stable sort of -|x|)
        order = np.argsort(-np.abs(flat), kind="stable")[: self.k]
        idx = np.sort(order).astype("<u4")
        return (self.HEADER.pack(self.MAGIC, flat.size, self.k) + idx.tobytes()
                + flat[idx].astype("<f4").tobytes())

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
    """``qsgd``: stochastic, unbiased quantization to ``levels`` levels per sign, one float32
    norm per ``bucket`` values (Alistarh et al. 2017)."""

    levels: Int = Field(default=4, ge=1, le=2**31 - 1)
    bucket: Int = Field(default=512, ge=1)


class QSGD(UpdateCodec):
    name = "qsgd"
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

    def encode_flat(self, flat: np.ndarray, rng: np.random.Generator) -> bytes:
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
        norms = np.frombuffer(payload, "<f4", m, self.HEADER.size).astype(np.float64)
        packed = np.frombuffer(payload, np.uint8, offset=self.HEADER.size + 4 * m)
        bits = np.unpackbits(packed)[: n * width].reshape(n, width).astype(np.uint64)
        shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
        codes = (bits << shifts).sum(axis=1, dtype=np.uint64)
        level = (codes & np.uint64((1 << self.bits) - 1)).astype(np.float64)
        if np.any(level > s):
            raise CodecError(f"a QSGD level is above {s}")
        negative = (codes >> np.uint64(self.bits)).astype(bool)
        values = np.repeat(norms, self._lengths) * level / s
        values[negative] = -values[negative]
        return values.astype(np.float32)


# the codecs FedAvg's ``update`` parameter chooses from (``{kind: NAME, ...its parameters}``)
UPDATE_CODECS: Registry[type] = Registry("update codec", {"topk": TopK, "qsgd": QSGD})
