"""The ALQ codec: a `QuantizedModel` (binary bases B and coordinates alpha) <-> bytes.

``ALQCodec`` (a `QuantizedModel`; ``b_mu = ceil(log2(i_max + 1))`` bits per bit-width, 3 for
i_max = 6)::

    offset 0  4 bytes  magic b"SALQ"
    offset 4  1 byte   uint8 version (1)
    offset 5  1 byte   uint8 i_max
    offset 6  1 byte   uint8 bytes per coordinate alpha (4: float32, 2: float16)
    offset 7  1 byte   uint8 reserved, 0
    offset 8           one bitstream, most significant bit of each byte first:
                         the bit-width I_g of every group, b_mu bits each (most significant bit
                         first), layers in layout order, groups in row order;
                         then for every group in the same order, for each of its valid slots
                         in slot order, its n_g basis bits (1 = +1, 0 = -1);
                         zero bits up to a whole byte
              K*a      the K = sum_g I_g coordinates alpha of the valid slots, same order
              4*P_fp   every unquantized tensor, flattened, float32, in state-dict order

    length = 8 + ceil((G * b_mu + sum_g n_g * I_g) / 8) + K * a + 4 * P_fp  (`alq_payload_bytes`)

    LeNet-5 (G = 2,030, P_fp = 580, float32 alpha):
      every group at 6 bits (K = 12,180): 8 + 323,637 + 48,720 + 2,320 = 374,685 bytes
      every group at 0 bits (K = 0):      8 + 762 + 0 + 2,320           =   3,090 bytes
      0.40 bits with K = 700:             8 + 22,287 + 2,800 + 2,320    =  27,415 bytes

The decoded model holds a group's valid slots at slot positions 0..I_g-1 (compacted), with
B = 0 and alpha = 0 in the other slots.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from sinsim.learn.alq_layout import GroupSpec, QLayer, QuantizedModel
from sinsim.learn.codecs import CodecError, ModelSpec, _numel, _to_float16, _unflatten

_ALQ_HEADER = struct.Struct("<4sBBBB")
_ALPHA_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}


def width_field_bits(i_max: int) -> int:
    """b_mu = ceil(log2(i_max + 1)), the bits of one group's bit-width (3 for i_max = 6)."""
    return int(i_max).bit_length()


def alq_payload_bytes(layout: Sequence[GroupSpec], widths_per_layer: Sequence, n_fp32: int,
                      i_max: int, alpha_bytes: int) -> int:
    """Exact length of an `ALQCodec` payload.

    ``widths_per_layer``: per layer of ``layout``, the bit-width I_g of each of its groups (any
    integer sequence, array or tensor of length n_groups). ``n_fp32``: number of unquantized
    values. ``alpha_bytes``: 4 (float32) or 2 (float16).
    """
    if len(widths_per_layer) != len(layout):
        raise ValueError(f"{len(widths_per_layer)} width vectors for {len(layout)} layers")
    stream_bits = sum(gs.n_groups for gs in layout) * width_field_bits(i_max)
    n_alpha = 0
    for gs, widths in zip(layout, widths_per_layer):
        widths = torch.as_tensor(widths)
        if widths.shape != (gs.n_groups,):
            raise ValueError(f"{gs.name}: {tuple(widths.shape)} widths for {gs.n_groups} groups")
        n_valid = int(widths.sum())
        stream_bits += gs.group_size * n_valid
        n_alpha += n_valid
    return _ALQ_HEADER.size + -(-stream_bits // 8) + n_alpha * alpha_bytes + 4 * n_fp32


class ALQCodec:
    """A `QuantizedModel` as bit-widths, packed basis bits, coordinates and fp32 rest.

    See the module docstring for the layout. ``decode(encode(q))`` reproduces B, alpha and
    mask bit for bit when q's valid slots are compacted to the front of each group (and, with
    ``alpha_dtype="float16"``, when alpha is half-representable); otherwise the decoded model
    holds the same slots compacted in the same order, hence the same weights up to float
    summation order.
    """

    name = "alq"
    MAGIC = b"SALQ"
    VERSION = 1
    HEADER = _ALQ_HEADER

    def __init__(self, spec: ModelSpec, layout: tuple[GroupSpec, ...], i_max: int,
                 alpha_dtype: str = "float32"):
        if not 1 <= i_max <= 255:
            raise ValueError(f"i_max must be in 1..255, got {i_max}")
        if alpha_dtype not in _ALPHA_DTYPES:
            raise ValueError(f"alpha_dtype must be one of {', '.join(_ALPHA_DTYPES)}, "
                             f"got {alpha_dtype!r}")
        shapes = dict(zip(spec.names, spec.shapes))
        for gs in layout:
            if shapes.get(gs.name) != gs.shape:
                raise ValueError(f"{gs.name}: layout shape {gs.shape} is not in the model spec "
                                 f"({shapes.get(gs.name)})")
        quantized = {gs.name for gs in layout}
        self.spec = spec
        self.layout = tuple(layout)
        self.i_max = i_max
        self.alpha_dtype = _ALPHA_DTYPES[alpha_dtype]
        self.other_names = tuple(n for n in spec.names if n not in quantized)
        self.other_shapes = tuple(shapes[n] for n in self.other_names)
        self.n_fp32 = sum(_numel(s) for s in self.other_shapes)
        self._n_groups = sum(gs.n_groups for gs in self.layout)
        self._b_mu = width_field_bits(i_max)

    def payload_bytes(self, q: QuantizedModel) -> int:
        """``len(self.encode(q))`` without encoding."""
        return alq_payload_bytes(self.layout, [q.layers[gs.name].widths for gs in self.layout],
                                 self.n_fp32, self.i_max, self.alpha_dtype.itemsize)

    # ---------------------------------------------------------------------------- encode
    def _checked_layers(self, q: QuantizedModel
                        ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """q's layers in layout order as numpy ``(B, alpha, mask)``; raises `CodecError` if q
        does not fit the codec."""
        if tuple(q.layout) != self.layout or set(q.layers) != {gs.name for gs in self.layout}:
            raise CodecError("quantized model's layout does not match the codec's")
        if set(q.others) != set(self.other_names):
            raise CodecError(f"unquantized tensors {sorted(q.others)} do not match the model "
                             f"spec's {sorted(self.other_names)}")
        for name, shape in zip(self.other_names, self.other_shapes):
            if tuple(q.others[name].shape) != shape:
                raise CodecError(f"{name}: shape {tuple(q.others[name].shape)}, expected {shape}")
        layers = []
        for gs in self.layout:
            layer = q.layers[gs.name]
            g, n = gs.n_groups, gs.group_size
            if (tuple(layer.B.shape) != (g, self.i_max, n)
                    or tuple(layer.alpha.shape) != (g, self.i_max)
                    or tuple(layer.mask.shape) != (g, self.i_max)):
                raise CodecError(f"{gs.name}: B {tuple(layer.B.shape)}, alpha "
                                 f"{tuple(layer.alpha.shape)}, mask {tuple(layer.mask.shape)}; "
                                 f"expected ({g}, {self.i_max}, {n}), ({g}, {self.i_max})")
            if layer.mask.dtype != torch.bool:
                raise CodecError(f"{gs.name}: mask must be bool, got {layer.mask.dtype}")
            layers.append((layer.B.detach().cpu().numpy(),
                           layer.alpha.detach().to("cpu", torch.float32).numpy(),
                           layer.mask.cpu().numpy()))
        return layers

    def encode(self, q: QuantizedModel) -> bytes:
        """The payload of ``q`` (numpy throughout: milliseconds for LeNet-5)."""
        layers = self._checked_layers(q)
        widths = np.concatenate([np.zeros(0, np.int64),
                                 *(mask.sum(1, dtype=np.int64) for _, _, mask in layers)])
        shifts = np.arange(self._b_mu - 1, -1, -1)
        bits = [((widths[:, None] >> shifts) & 1).astype(bool).reshape(-1)]
        for gs, (B, _, mask) in zip(self.layout, layers):
            signs = B[mask]  # [K_l, n]: groups in row order, valid slots in slot order
            if not np.all((signs == 1) | (signs == -1)):
                raise CodecError(f"{gs.name}: basis entries of valid slots must be exactly +-1")
            bits.append((signs > 0).reshape(-1))
        stream = np.packbits(np.concatenate(bits))
        alpha = np.concatenate([np.zeros(0, np.float32), *(a[mask] for _, a, mask in layers)])
        alpha = _to_float16(alpha) if self.alpha_dtype.itemsize == 2 else alpha.astype("<f4")
        others = np.concatenate([np.zeros(0, np.float32), *(
            q.others[n].detach().reshape(-1).to("cpu", torch.float32).numpy()
            for n in self.other_names)])
        header = self.HEADER.pack(self.MAGIC, self.VERSION, self.i_max,
                                  self.alpha_dtype.itemsize, 0)
        return header + stream.tobytes() + alpha.tobytes() + others.astype("<f4").tobytes()

    # ---------------------------------------------------------------------------- decode
    def _check_header(self, payload: bytes) -> None:
        if len(payload) < self.HEADER.size:
            raise CodecError(f"payload of {len(payload)} bytes is shorter than the ALQ header")
        magic, version, i_max, alpha_bytes, reserved = self.HEADER.unpack_from(payload)
        if magic != self.MAGIC:
            raise CodecError(f"bad magic {magic!r}, expected {self.MAGIC!r}")
        if version != self.VERSION:
            raise CodecError(f"ALQ payload version {version}, this codec reads {self.VERSION}")
        if i_max != self.i_max:
            raise CodecError(f"payload has i_max {i_max}, the codec {self.i_max}")
        if alpha_bytes != self.alpha_dtype.itemsize:
            raise CodecError(f"payload has {alpha_bytes}-byte coordinates, the codec "
                             f"{self.alpha_dtype.itemsize}-byte")
        if reserved != 0:
            raise CodecError(f"reserved header byte is {reserved}, expected 0")

    def _read_widths(self, payload: bytes) -> np.ndarray:
        """Every group's bit-width, int64 [G]; checks them against i_max."""
        n_bits = self._n_groups * self._b_mu
        n_bytes = -(-n_bits // 8)
        if len(payload) < self.HEADER.size + n_bytes:
            raise CodecError(f"payload of {len(payload)} bytes is truncated: the bit-widths "
                             f"alone need {self.HEADER.size + n_bytes}")
        bits = np.unpackbits(np.frombuffer(payload, np.uint8, n_bytes, self.HEADER.size))
        weights = 1 << np.arange(self._b_mu - 1, -1, -1, dtype=np.int64)
        widths = bits[:n_bits].reshape(self._n_groups, self._b_mu).astype(np.int64) @ weights
        if widths.size and widths.max() > self.i_max:
            raise CodecError(f"a group bit-width of {widths.max()} exceeds i_max {self.i_max}")
        return widths

    def decode(self, payload: bytes) -> QuantizedModel:
        self._check_header(payload)
        widths = self._read_widths(payload)
        bounds = np.cumsum([0, *(gs.n_groups for gs in self.layout)])
        widths_per_layer = [widths[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        expected = alq_payload_bytes(self.layout, widths_per_layer, self.n_fp32, self.i_max,
                                     self.alpha_dtype.itemsize)
        if len(payload) != expected:
            raise CodecError(f"payload of {len(payload)} bytes; its bit-widths need {expected}")

        n_valid = [int(w.sum()) for w in widths_per_layer]
        width_bits = self._n_groups * self._b_mu
        basis_bits = sum(k * gs.group_size for k, gs in zip(n_valid, self.layout))
        stream_bytes = -(-(width_bits + basis_bits) // 8)
        bits = np.unpackbits(np.frombuffer(payload, np.uint8, stream_bytes, self.HEADER.size))
        if bits[width_bits + basis_bits:].any():
            raise CodecError("padding bits at the end of the bitstream are not zero")
        offset = self.HEADER.size + stream_bytes
        alpha = np.frombuffer(payload, self.alpha_dtype, sum(n_valid), offset).astype(np.float32)
        offset += alpha.size * self.alpha_dtype.itemsize
        others = np.frombuffer(payload, "<f4", self.n_fp32, offset).astype(np.float32)

        layers = {}
        bit_at, alpha_at = width_bits, 0
        for gs, w, k in zip(self.layout, widths_per_layer, n_valid):
            g, n = gs.n_groups, gs.group_size
            mask = np.arange(self.i_max) < w[:, None]
            B = np.zeros((g, self.i_max, n), np.int8)
            B[mask] = (bits[bit_at: bit_at + k * n].astype(np.int8) * 2 - 1).reshape(k, n)
            a = np.zeros((g, self.i_max), np.float32)
            a[mask] = alpha[alpha_at: alpha_at + k]
            layers[gs.name] = QLayer(torch.from_numpy(B), torch.from_numpy(a),
                                     torch.from_numpy(mask))
            bit_at += k * n
            alpha_at += k
        return QuantizedModel(self.layout, layers,
                              dict(_unflatten(others, self.other_names, self.other_shapes)))

    def decode_state(self, payload: bytes) -> OrderedDict[str, torch.Tensor]:
        """The weights the network runs with, in state-dict order."""
        return self.decode(payload).state_dict(self.spec.names)
