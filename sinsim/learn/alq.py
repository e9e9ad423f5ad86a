"""ALQ: adaptive loss-aware multi-bit quantization (Qu et al., CVPR 2020), in pure PyTorch.

A quantized weight tensor is split into groups (rows of a ``[G, n]`` view, see `GroupSpec`).
Each group g has ``I_max`` slots; slot i has a validity flag mu_gi, a binary basis
beta_gi in {-1,+1}^n and a coordinate alpha_gi, and the group's weights are

    w_hat_g = sum_i mu_gi * alpha_gi * beta_gi          (its bit-width I_g = sum_i mu_gi)

The math only (no clock, no wire format), in three modules re-exported here:

- `sinsim.learn.alq_layout`: the group layouts (`GroupSpec`, `model_layout`) and the quantized
  tensors (`QLayer`, `QuantizedModel`, `reconstruct`, `canonical`, `sign_fix`);
- `sinsim.learn.alq_sketch`: the data-free pieces: the greedy "structured sketching"
  initialisation with least-squares refits (`sketch`, `sketch_model`, `refine`), the
  nearest-level basis step (`nearest_bases`), the (weighted) least-squares coordinate refit
  (`refit_alpha`);
- `sinsim.learn.alq_train`: AMSGrad moments in the w and alpha domains and the client phases
  (alpha-domain pruning, basis, coordinates, STE post-training) in `ALQTrainer`, with their
  hyper-parameters `ALQConfig`.

The exact spec it follows is ``docs/alq.md`` (from ``shared/design/alq.md``), including the
fixes of the reference code's bugs listed there.

Tensors: ``B`` int8 ``[G, I_max, n]`` (+-1 in valid slots, 0 elsewhere), ``alpha`` float32
``[G, I_max]`` (0 in invalid slots), ``mask`` bool ``[G, I_max]``.
"""

from __future__ import annotations

from sinsim.learn.alq_layout import (
    MODEL_STRUCTURES,
    STRUCTURES,
    GroupSpec,
    QLayer,
    QuantizedModel,
    canonical,
    model_layout,
    reconstruct,
    sign_fix,
)
from sinsim.learn.alq_sketch import nearest_bases, refine, refit_alpha, sketch, sketch_model
from sinsim.learn.alq_train import ALQConfig, ALQTrainer, AMSGrad

__all__ = [
    "STRUCTURES",
    "MODEL_STRUCTURES",
    "GroupSpec",
    "model_layout",
    "QLayer",
    "QuantizedModel",
    "reconstruct",
    "canonical",
    "sign_fix",
    "sketch",
    "sketch_model",
    "refine",
    "nearest_bases",
    "refit_alpha",
    "AMSGrad",
    "ALQConfig",
    "ALQTrainer",
]
