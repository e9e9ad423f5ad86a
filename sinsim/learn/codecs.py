"""Codecs: a model <-> a byte payload. Bytes on the wire are ``len(payload)``.

Both sides know the model's architecture (`ModelSpec`, and for ALQ the group layout), so a
payload carries only values plus a small header. Every format is little-endian. The LeNet-5
sizes below are for its 8 tensors (4 weights + 4 biases): 431,080 values, of which 430,500
weights in 2,030 ALQ groups and 580 biases.

``Float32Codec`` (FedAvg), exact round trip::

    offset 0  4 bytes  magic b"SF32"
    offset 4  4 bytes  uint32 n, number of values
    offset 8  4*n      every tensor of the state dict, flattened, in state-dict order, float32

    LeNet-5: 8 + 4 * 431,080 = 1,724,328 bytes.

``Float16Codec`` (FedAvg with fp16 weights): the same with magic b"SF16" and every value rounded
to IEEE half (round to nearest even): relative error <= 2^-11 for |x| in the normal range
[2^-14, 65504], absolute error <= 2^-25 below it; finite values beyond 65504 are refused::

    offset 0  4 bytes  magic b"SF16"
    offset 4  4 bytes  uint32 n, number of values
    offset 8  2*n      every value as float16, in state-dict order

    LeNet-5: 8 + 2 * 431,080 = 862,168 bytes.

``Int8Codec`` (8-bit uniform quantization per tensor, see `quantize_uint8`): decoded values lie
on the tensor's grid min + q * scale, q in 0..255, with |error| <= scale/2 plus half a float32
ulp of the decoded value::

    offset 0  4 bytes  magic b"SQ08"
    offset 4  4 bytes  uint32 n, number of values
    offset 8           for every tensor t in state-dict order:
                         4 bytes float32 min, 4 bytes float32 scale, numel(t) bytes uint8 codes

    LeNet-5: 8 + 8 * 8 + 431,080 = 431,152 bytes.

``ALQCodec`` (SpaceDML's binary bases and coordinates) is in `sinsim.learn.alq_codec`.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sinsim.registry import Registry

_FLAT_HEADER = struct.Struct("<4sI")
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class CodecError(ValueError):
    """A payload that does not decode with this codec and model, or a model it cannot encode."""


@dataclass(frozen=True)
class ModelSpec:
    """Names and shapes of a state dict, shared by both ends of a link."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, state: dict[str, torch.Tensor]) -> ModelSpec:
        return cls(tuple(state), tuple(tuple(t.shape) for t in state.values()))

    @property
    def numel(self) -> int:
        return int(sum(np.prod(s, dtype=np.int64) for s in self.shapes))


# --------------------------------------------------------------------------------------------
# helpers shared by the codecs
# --------------------------------------------------------------------------------------------

def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _flatten(state: dict[str, torch.Tensor], spec: ModelSpec) -> np.ndarray:
    """Every tensor of ``state`` flattened into one float32 array, in spec order."""
    if tuple(state) != spec.names:
        raise CodecError("state dict keys do not match the model spec")
    flat = torch.cat([t.detach().reshape(-1).to("cpu", torch.float32) for t in state.values()])
    return flat.numpy()


def _unflatten(flat: np.ndarray, names: Sequence[str], shapes: Sequence[tuple[int, ...]]
               ) -> OrderedDict[str, torch.Tensor]:
    """Split a flat float32 array into tensors of ``shapes``, keyed by ``names``."""
    flat_t = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    offset = 0
    for name, shape in zip(names, shapes):
        size = _numel(shape)
        out[name] = flat_t[offset: offset + size].reshape(shape)
        offset += size
    return out


def _check_flat_header(payload: bytes, magic: bytes, spec: ModelSpec, length_bytes: int) -> None:
    """Check the ``magic + uint32 count`` header and that the payload is ``length_bytes`` long."""
    if len(payload) < _FLAT_HEADER.size:
        raise CodecError(f"payload of {len(payload)} bytes is shorter than the header")
    got, n = _FLAT_HEADER.unpack_from(payload)
    if got != magic:
        raise CodecError(f"bad magic {got!r}, expected {magic!r}")
    if n != spec.numel or len(payload) != length_bytes:
        raise CodecError(f"payload holds {n} values in {len(payload)} bytes; the model has "
                         f"{spec.numel}")


def _to_float16(values: np.ndarray) -> np.ndarray:
    """float32 -> little-endian float16 (round to nearest even); refuses finite overflows."""
    if np.any(np.isfinite(values) & (np.abs(values) > _FLOAT16_MAX)):
        raise CodecError(f"a finite value is beyond the float16 range (|x| > {_FLOAT16_MAX:g})")
    return values.astype("<f2")


# --------------------------------------------------------------------------------------------
# FedAvg codecs: a state dict <-> bytes
# --------------------------------------------------------------------------------------------

class Float32Codec:
    """Every value as an IEEE-754 float32: exact round trip for fp32 models."""

    name = "float32"
    MAGIC = b"SF32"
    HEADER = _FLAT_HEADER

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def encode(self, state: dict[str, torch.Tensor]) -> bytes:
        flat = _flatten(state, self.spec)
        return self.HEADER.pack(self.MAGIC, flat.size) + flat.astype("<f4").tobytes()

    def decode(self, payload: bytes) -> OrderedDict[str, torch.Tensor]:
        _check_flat_header(payload, self.MAGIC, self.spec, self.HEADER.size + 4 * self.spec.numel)
        flat = np.frombuffer(payload, dtype="<f4", offset=self.HEADER.size).astype(np.float32)
        return _unflatten(flat, self.spec.names, self.spec.shapes)


class Float16Codec:
    """Every value rounded to IEEE-754 half (round to nearest even).

    ``decode(encode(x))`` equals ``x.half().float()`` exactly: relative error <= 2^-11 in the
    normal half range, absolute error <= 2^-25 below 2^-14. Finite values beyond 65504 raise
    `CodecError`; inf and NaN pass through.
    """

    name = "float16"
    MAGIC = b"SF16"
    HEADER = _FLAT_HEADER

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def encode(self, state: dict[str, torch.Tensor]) -> bytes:
        flat = _flatten(state, self.spec)
        return self.HEADER.pack(self.MAGIC, flat.size) + _to_float16(flat).tobytes()

    def decode(self, payload: bytes) -> OrderedDict[str, torch.Tensor]:
        _check_flat_header(payload, self.MAGIC, self.spec, self.HEADER.size + 2 * self.spec.numel)
        flat = np.frombuffer(payload, dtype="<f2", offset=self.HEADER.size).astype(np.float32)
        return _unflatten(flat, self.spec.names, self.spec.shapes)


def quantize_uint8(x: np.ndarray) -> tuple[np.float32, np.float32, np.ndarray]:
    """8-bit uniform quantization of one tensor: ``(min, scale, codes)``.

    ``scale`` is (max - min) / 255 rounded up to float32 (so min + 255 * scale >= max and every
    value gets a code within scale/2, subnormal ranges included), 0 when max == min.
    ``codes = round((x - min) / scale)`` (round half to even) as uint8, all 0 when scale == 0.
    Raises `CodecError` on inf or NaN.
    """
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise CodecError("int8 quantization needs finite values")
    if x.size == 0:
        return np.float32(0), np.float32(0), np.zeros(0, np.uint8)
    lo, hi = x.min(), x.max()
    exact_scale = (np.float64(hi) - np.float64(lo)) / 255
    scale = np.float32(exact_scale)
    if scale < exact_scale:
        scale = np.nextafter(scale, np.float32(np.inf))
    if scale == 0:
        return lo, np.float32(0), np.zeros(x.size, np.uint8)
    codes = np.rint((x.astype(np.float64) - np.float64(lo)) / np.float64(scale))
    return lo, scale, np.clip(codes, 0, 255).astype(np.uint8)


def dequantize_uint8(lo: np.float32, scale: np.float32, codes: np.ndarray) -> np.ndarray:
    """``min + codes * scale`` computed in float64, kept within the finite float32 range (the top
    code may land up to scale/2 above max) and rounded once to float32."""
    values = np.float64(lo) + codes.astype(np.float64) * np.float64(scale)
    return np.clip(values, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)


class Int8Codec:
    """8-bit uniform quantization per tensor (`quantize_uint8`), 1 byte per value + 8 per tensor.

    ``decode(encode(x))`` equals `dequantize_uint8` of `quantize_uint8` of each tensor exactly:
    |error| <= scale/2 plus half a float32 ulp. Refuses inf and NaN.
    """

    name = "int8"
    MAGIC = b"SQ08"
    HEADER = _FLAT_HEADER
    TENSOR_HEADER = struct.Struct("<ff")

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def encode(self, state: dict[str, torch.Tensor]) -> bytes:
        flat = _flatten(state, self.spec)
        parts = [self.HEADER.pack(self.MAGIC, flat.size)]
        offset = 0
        for shape in self.spec.shapes:
            size = _numel(shape)
            lo, scale, codes = quantize_uint8(flat[offset: offset + size])
            parts += [self.TENSOR_HEADER.pack(lo, scale), codes.tobytes()]
            offset += size
        return b"".join(parts)

    def decode(self, payload: bytes) -> OrderedDict[str, torch.Tensor]:
        length_bytes = (self.HEADER.size + self.TENSOR_HEADER.size * len(self.spec.names)
                        + self.spec.numel)
        _check_flat_header(payload, self.MAGIC, self.spec, length_bytes)
        values = []
        offset = self.HEADER.size
        for shape in self.spec.shapes:
            size = _numel(shape)
            lo, scale = (np.float32(v) for v in self.TENSOR_HEADER.unpack_from(payload, offset))
            offset += self.TENSOR_HEADER.size
            codes = np.frombuffer(payload, dtype=np.uint8, count=size, offset=offset)
            values.append(dequantize_uint8(lo, scale, codes))
            offset += size
        flat = np.concatenate([np.zeros(0, np.float32), *values])
        return _unflatten(flat, self.spec.names, self.spec.shapes)


# the codecs a strategy's ``codec`` parameter chooses from (a codec that takes parameters
# declares them as ``Params``, a sinsim.params.Section, and takes them as keywords)
CODECS: Registry[type] = Registry("codec", {
    "float32": Float32Codec, "float16": Float16Codec, "int8": Int8Codec})
