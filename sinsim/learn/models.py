"""Models and their training cost.

``lenet5`` is the LeNet-5 variant of ALQ and SpaceDML: conv 1->20 5x5, max-pool 2, ReLU,
conv 20->50 5x5, max-pool 2, ReLU, fc 800->500, ReLU, fc 500->10 (431,080 parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from sinsim.registry import Registry


class LeNet5(nn.Module):
    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.max_pool2d(self.conv2(x), 2))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


MODELS: Registry[type[nn.Module]] = Registry("model", {"lenet5": LeNet5})
INPUT_SHAPE = (1, 28, 28)


def build_model(name: str, seed: int) -> nn.Module:
    """The model ``name`` with weights initialised from ``seed`` (same seed, same weights)."""
    cls = MODELS[name]  # an unknown name raises a ValueError listing the known ones
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return cls()
    finally:
        torch.random.set_rng_state(gen_state)


def forward_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    """FLOPs of one forward pass (2 per multiply-accumulate of conv and linear layers).

    Counted from the layer shapes with forward hooks on a dummy input; pooling, ReLU and bias
    additions are left out (they are < 1 % for LeNet-5).
    """
    total = 0

    def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += 2 * kernel * output[0].numel()
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros((1, *input_shape), dtype=p.dtype, device=p.device))
    finally:
        for h in handles:
            h.remove()
    return total


def training_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    """Forward + backward ~ 3x the forward FLOPs (the usual rule: backward costs two forwards)."""
    return 3 * forward_flops_per_sample(model, input_shape)
