"""ALQ's shared types: how a weight tensor is cut into groups, and the quantized tensors.

A quantized weight tensor is split into groups (rows of a ``[G, n]`` view, see `GroupSpec`).
Each group g has ``I_max`` slots; slot i has a validity flag mu_gi, a binary basis
beta_gi in {-1,+1}^n and a coordinate alpha_gi, and the group's weights are

    w_hat_g = sum_i mu_gi * alpha_gi * beta_gi          (its bit-width I_g = sum_i mu_gi)

Tensors: ``B`` int8 ``[G, I_max, n]`` (+-1 in valid slots, 0 elsewhere), ``alpha`` float32
``[G, I_max]`` (0 in invalid slots), ``mask`` bool ``[G, I_max]``. `QLayer` holds one such
tensor, `QuantizedModel` a whole model as it crosses a link (the wire format is
`sinsim.learn.alq_codec.ALQCodec`); `canonical` is the form that goes on the wire.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch

__all__ = ["STRUCTURES", "GroupSpec", "MODEL_STRUCTURES", "model_layout", "QLayer",
           "QuantizedModel", "reconstruct", "canonical", "sign_fix"]

STRUCTURES = ("kernelwise", "pixelwise", "channelwise", "subchannel")


# --------------------------------------------------------------------------------------------
# group layouts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupSpec:
    """How one weight tensor is cut into groups.

    ``kernelwise`` (conv): one k x k kernel per group, ``C_out * C_in`` groups of ``k_h * k_w``.
    ``pixelwise`` (conv): one spatial tap across the input channels, ``C_out * k_h * k_w``
    groups of ``C_in``. ``channelwise`` (conv): one output filter per group. ``subchannel``
    (fc, ``s`` slices): a contiguous 1/s slice of an output row, ``out * s`` groups of ``in / s``.
    """

    name: str
    shape: tuple[int, ...]
    structure: str
    slices: int = 1  # s of the subchannel structure

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"{self.name}: unknown group structure {self.structure!r}")
        if self.structure == "subchannel":
            if len(self.shape) != 2 or self.shape[1] % self.slices:
                raise ValueError(f"{self.name}: subchannel({self.slices}) needs a 2-D weight "
                                 f"whose input size divides by {self.slices}, got {self.shape}")
        elif len(self.shape) != 4:
            raise ValueError(f"{self.name}: {self.structure} needs a 4-D conv weight")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def group_size(self) -> int:
        s = self.shape
        return {"kernelwise": lambda: s[2] * s[3], "pixelwise": lambda: s[1],
                "channelwise": lambda: s[1] * s[2] * s[3],
                "subchannel": lambda: s[1] // self.slices}[self.structure]()

    @property
    def n_groups(self) -> int:
        return self.numel // self.group_size

    def to_groups(self, w: torch.Tensor) -> torch.Tensor:
        """``[G, n]`` view (a copy for ``pixelwise``) of a weight tensor."""
        if self.structure == "pixelwise":  # [O, I, kh, kw] -> [O, kh, kw, I]
            return w.permute(0, 2, 3, 1).reshape(self.n_groups, self.group_size)
        return w.reshape(self.n_groups, self.group_size)

    def from_groups(self, g: torch.Tensor) -> torch.Tensor:
        if self.structure == "pixelwise":
            o, i, kh, kw = self.shape
            return g.reshape(o, kh, kw, i).permute(0, 3, 1, 2).contiguous()
        return g.reshape(self.shape)


# Per model: the group structure of each quantized weight (from the ALQ authors' lenet5.py).
MODEL_STRUCTURES: dict[str, dict[str, tuple[str, int]]] = {
    "lenet5": {"conv1.weight": ("kernelwise", 1), "conv2.weight": ("kernelwise", 1),
               "fc1.weight": ("subchannel", 2), "fc2.weight": ("subchannel", 1)},
}


def model_layout(shapes: dict[str, tuple[int, ...]], model: str | None = None
                 ) -> tuple[GroupSpec, ...]:
    """The quantized tensors of a model, in state-dict order.

    Every parameter whose name contains ``weight`` and that has >= 2 dimensions is quantized
    (first conv and last fc included); biases stay fp32. Structures come from
    `MODEL_STRUCTURES` when the model is known, else: names with ``fc``/``classifier`` ->
    ``subchannel(1)``, other 2-D -> ``subchannel(1)``, 4-D -> ``kernelwise``.
    """
    known = MODEL_STRUCTURES.get(model or "", {})
    out = []
    for name, shape in shapes.items():
        if "weight" not in name or len(shape) < 2:
            continue
        structure, s = known.get(name, ("kernelwise", 1) if len(shape) == 4 else ("subchannel", 1))
        out.append(GroupSpec(name, tuple(shape), structure, s))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# quantized tensors
# --------------------------------------------------------------------------------------------

@dataclass
class QLayer:
    """One quantized weight tensor: ``B`` int8 [G, I_max, n], ``alpha`` float32 [G, I_max],
    ``mask`` bool [G, I_max]."""

    B: torch.Tensor
    alpha: torch.Tensor
    mask: torch.Tensor

    @property
    def widths(self) -> torch.Tensor:
        """Bit-width I_g of every group, int64 [G]."""
        return self.mask.sum(1)

    @property
    def i_max(self) -> int:
        return self.alpha.shape[1]

    def weights(self) -> torch.Tensor:
        """w_hat = B alpha per group, float32 [G, n]."""
        return reconstruct(self.B, self.alpha, self.mask)

    def clone(self) -> QLayer:
        return QLayer(self.B.clone(), self.alpha.clone(), self.mask.clone())


@dataclass
class QuantizedModel:
    """A model as it crosses a link: quantized layers by name, the rest fp32, in the order of
    the model spec."""

    layout: tuple[GroupSpec, ...]
    layers: dict[str, QLayer]
    others: dict[str, torch.Tensor]  # unquantized tensors (biases), fp32

    def avg_bits(self) -> float:
        """Sum_g n_g I_g / Sum_g n_g over every quantized group (the ALQ paper's bit-width:
        the binary bases only)."""
        num = sum(gs.group_size * int(self.layers[gs.name].widths.sum()) for gs in self.layout)
        return num / sum(gs.numel for gs in self.layout)

    def n_slots(self) -> int:
        return sum(int(q.mask.sum()) for q in self.layers.values())

    def state_dict(self, names: tuple[str, ...]) -> OrderedDict[str, torch.Tensor]:
        """The weights the network runs with, in state-dict order ``names``."""
        quant = {gs.name: gs.from_groups(self.layers[gs.name].weights()) for gs in self.layout}
        return OrderedDict((k, quant[k] if k in quant else self.others[k]) for k in names)


def reconstruct(B: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over valid slots of alpha_i beta_i, float32 [G, n]. Invalid slots hold alpha = 0 and
    B = 0, and are masked anyway, so they add exact zeros."""
    a = torch.where(mask, alpha, torch.zeros_like(alpha))
    return torch.bmm(a.unsqueeze(1), B.to(a.dtype)).squeeze(1)


def canonical(q: QLayer) -> QLayer:
    """The wire form of a layer: alpha >= 0 (a negative coordinate flips with its basis, which
    leaves the weights unchanged), zero coordinates dropped, valid slots first in ascending
    alpha. The weights of the result are equal to ``q``'s up to float summation order."""
    alpha, B = sign_fix(q.alpha, q.B)
    mask = q.mask & (alpha != 0)
    key = torch.where(mask, alpha, torch.full_like(alpha, math.inf))
    order = torch.sort(key, dim=1, stable=True).indices
    mask = mask.gather(1, order)
    alpha = torch.where(mask, alpha.gather(1, order), torch.zeros_like(alpha))
    B = B.gather(1, order.unsqueeze(-1).expand_as(B)) * mask.unsqueeze(-1).to(B.dtype)
    return QLayer(B.contiguous(), alpha.contiguous(), mask.contiguous())


def sign_fix(alpha: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Negate every negative coordinate together with its basis (both, unlike the reference
    code's lost flip of beta: spec section 10.2)."""
    neg = alpha < 0
    return alpha.abs(), torch.where(neg.unsqueeze(-1), -B, B)
