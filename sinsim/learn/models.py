"""Models and their training cost.

Every model takes the dataset's input shape ``(channels, height, width)`` and the number of
classes, so any model runs on any dataset (``[1, 28, 28]`` for (Fashion-)MNIST, ``[3, 32, 32]``
for CIFAR-10):

- ``lenet5`` is the LeNet-5 variant of ALQ and SpaceDML: conv C->20 5x5, max-pool 2, ReLU,
  conv 20->50 5x5, max-pool 2, ReLU, fc 50*4*4 -> 500, ReLU, fc 500->10 (431,080 parameters on
  1x28x28; fc1 takes 50*5*5 inputs on 3x32x32: 657,080 parameters).
- ``cnn`` is the "CNN" of McMahan et al. 2017 (FedAvg, sec. 3): two 5x5 convolutions with
  'same' padding (32 then 64 channels), each followed by 2x2 max pooling, a fully connected
  layer of 512 units with ReLU, and a softmax output (the logits here; the loss applies the
  softmax): 1,663,370 parameters on 1x28x28 (the paper's count), 2,156,490 on 3x32x32. For
  CIFAR-10 the paper used another model (TensorFlow's tutorial CNN on 24x24 crops); this
  simulator uses the same two-convolution CNN on the full 32x32 images, so that one model
  family spans the datasets (the convolutions and pools follow the input shape).
"""

from __future__ import annotations

import torch
from torch import nn

from sinsim.registry import Registry

INPUT_SHAPE = (1, 28, 28)  # the default: (Fashion-)MNIST


class LeNet5(nn.Module):
    def __init__(self, n_classes: int = 10, input_shape: tuple[int, int, int] = INPUT_SHAPE):
        super().__init__()
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * _lenet_side(height) * _lenet_side(width), 500)
        self.fc2 = nn.Linear(500, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.max_pool2d(self.conv2(x), 2))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def _lenet_side(n: int) -> int:
    """A side of LeNet-5's last feature map: two (5x5 valid convolution, 2x2 pool) stages."""
    return ((n - 4) // 2 - 4) // 2


class FedAvgCNN(nn.Module):
    """McMahan et al. 2017's CNN (see the module docstring), for any input shape."""

    def __init__(self, n_classes: int = 10, input_shape: tuple[int, int, int] = INPUT_SHAPE):
        super().__init__()
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * (height // 4) * (width // 4), 512)
        self.fc2 = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


MODELS: Registry[type[nn.Module]] = Registry("model", {"lenet5": LeNet5, "cnn": FedAvgCNN})


def build_model(name: str, seed: int, input_shape: tuple[int, ...] = INPUT_SHAPE,
                n_classes: int = 10) -> nn.Module:
    """The model ``name`` for inputs of ``input_shape`` with weights initialised from ``seed``
    (same seed, same weights)."""
    cls = MODELS[name]  # an unknown name raises a ValueError listing the known ones
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return cls(n_classes=n_classes, input_shape=tuple(input_shape))
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
