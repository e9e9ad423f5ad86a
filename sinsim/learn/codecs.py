"""Codecs: a model (state dict) <-> a byte payload. Bytes on the wire are ``len(payload)``.

Both sides know the model's architecture, so a payload carries only values plus a small header.

``Float32Codec`` (FedAvg) payload layout, little-endian::

    offset 0  4 bytes  magic b"SF32"
    offset 4  4 bytes  uint32 number of float32 values that follow
    offset 8  4*n      every tensor of the state dict, flattened, in state-dict order

For LeNet-5 that is 8 + 4 * 431,080 = 1,724,328 bytes.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

StateDict = "OrderedDict[str, torch.Tensor]"


class CodecError(ValueError):
    """A payload that does not decode with this codec and model."""


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


class Float32Codec:
    """Every value as an IEEE-754 float32: exact round trip for fp32 models."""

    name = "float32"
    MAGIC = b"SF32"
    HEADER = struct.Struct("<4sI")

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def encode(self, state: dict[str, torch.Tensor]) -> bytes:
        if tuple(state) != self.spec.names:
            raise CodecError("state dict keys do not match the model spec")
        flat = torch.cat([t.detach().reshape(-1).to("cpu", torch.float32) for t in state.values()])
        return self.HEADER.pack(self.MAGIC, flat.numel()) + flat.numpy().astype("<f4").tobytes()

    def decode(self, payload: bytes) -> OrderedDict[str, torch.Tensor]:
        if len(payload) < self.HEADER.size:
            raise CodecError(f"payload of {len(payload)} bytes is shorter than the header")
        magic, n = self.HEADER.unpack_from(payload)
        if magic != self.MAGIC:
            raise CodecError(f"bad magic {magic!r}, expected {self.MAGIC!r}")
        if n != self.spec.numel or len(payload) != self.HEADER.size + 4 * n:
            raise CodecError(f"payload holds {n} values in {len(payload)} bytes; the model has "
                             f"{self.spec.numel}")
        flat = torch.from_numpy(np.frombuffer(payload, dtype="<f4", offset=self.HEADER.size).copy())
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        offset = 0
        for name, shape in zip(self.spec.names, self.spec.shapes):
            size = int(np.prod(shape, dtype=np.int64))
            out[name] = flat[offset: offset + size].reshape(shape)
            offset += size
        return out


CODECS = {"float32": Float32Codec}
