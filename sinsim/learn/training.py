"""Local training and evaluation with one reusable model instance (no per-client copies)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sinsim.learn.datasets import Dataset


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    batch_size: int = 10
    lr: float = 0.01
    momentum: float = 0.0
    eval_batch_size: int = 1000


@dataclass(frozen=True)
class TrainResult:
    state: dict[str, torch.Tensor]
    n_samples: int
    n_steps: int
    flops: float  # training FLOPs of the work done (samples seen x FLOPs per sample)


def pick_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        # same seed, same tables on a GPU too: no autotuned, non-deterministic conv kernels
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        return torch.device("cuda")
    if requested == "cuda":
        raise RuntimeError("training.device is 'cuda' but torch.cuda.is_available() is False")
    return torch.device("cpu")


class LocalTrainer:
    """Trains a client's shard starting from a given global state.

    The result depends only on (global state, client, seed): never on the simulated clock.
    """

    def __init__(self, model: nn.Module, dataset: Dataset, shards: list[np.ndarray],
                 config: TrainConfig, flops_per_sample: float, device: torch.device):
        self.device = device
        self.model = model.to(device)
        self.config = config
        self.shards = shards
        self.flops_per_sample = flops_per_sample
        self.x_train = dataset.x_train.to(device)
        self.y_train = dataset.y_train.to(device)
        self.x_test = dataset.x_test.to(device)
        self.y_test = dataset.y_test.to(device)

    def batches(self, client: int, rng: np.random.Generator,
                epochs: int | None = None) -> list[np.ndarray]:
        """The index batches a client trains on: a fresh permutation of its shard per epoch
        (``epochs`` defaults to the configured local epochs)."""
        out = []
        for _ in range(self.config.epochs if epochs is None else epochs):
            out.extend(self.epoch(client, rng))
        return out

    def epoch(self, client: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One epoch of index batches: a fresh permutation of the client's shard."""
        shard, bs = self.shards[client], self.config.batch_size
        perm = shard[rng.permutation(len(shard))]
        return [perm[i: i + bs] for i in range(0, len(perm), bs)]

    def tensors(self, batches: list[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, labels) on the training device for index batches."""
        out = []
        for idx in batches:
            index = torch.from_numpy(idx).to(self.device)
            out.append((self.x_train[index], self.y_train[index]))
        return out

    def sgd(self, batches: list[np.ndarray]) -> int:
        """Plain SGD (configured lr and momentum) on the model as it is; returns the samples
        seen."""
        model, cfg = self.model, self.config
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        n_seen = 0
        for x, y in self.tensors(batches):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            n_seen += len(y)
        return n_seen

    def train(self, global_state: dict[str, torch.Tensor], client: int,
              rng: np.random.Generator, epochs: int | None = None) -> TrainResult:
        self.model.load_state_dict(global_state)
        batches = self.batches(client, rng, epochs)
        n_seen = self.sgd(batches)
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return TrainResult(state, len(self.shards[client]), len(batches),
                           float(n_seen) * self.flops_per_sample)

    @torch.no_grad()
    def evaluate(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) of ``state`` on the test set."""
        model = self.model
        model.load_state_dict(state)
        model.eval()
        correct, loss_sum, bs = 0, 0.0, self.config.eval_batch_size
        for i in range(0, len(self.y_test), bs):
            logits = model(self.x_test[i: i + bs])
            y = self.y_test[i: i + bs]
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        n = len(self.y_test)
        return correct / n, loss_sum / n
