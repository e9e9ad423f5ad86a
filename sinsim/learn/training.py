"""Local training and evaluation with one reusable model instance (no per-client copies)."""

from __future__ import annotations

from collections.abc import Sequence
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

    def sgd(self, batches: list[np.ndarray], proximal_mu: float = 0.0) -> int:
        """Plain SGD (configured lr and momentum) on the model as it is; returns the samples
        seen. The arithmetic of ``torch.optim.SGD`` (see ``sgd_step``), without constructing
        one: the first optimizer of a process imports ``torch._dynamo`` (1.5 s or more)."""
        model, cfg = self.model, self.config
        model.train()
        params = list(model.parameters())
        anchor = [p.detach().clone() for p in params] if proximal_mu else None
        bufs: list[torch.Tensor | None] = [None] * len(params)
        n_seen = 0
        for x, y in self.tensors(batches):
            for p in params:
                p.grad = None
            loss = F.cross_entropy(model(x), y)
            if anchor is not None:  # (mu / 2) ||w - w_received||^2
                loss = loss + proximal_mu / 2 * sum(((p - a) ** 2).sum()
                                                    for p, a in zip(params, anchor))
            loss.backward()
            bufs = sgd_step(params, [p.grad for p in params], bufs, cfg.lr, cfg.momentum)
            n_seen += len(y)
        return n_seen

    def train(self, global_state: dict[str, torch.Tensor], client: int,
              rng: np.random.Generator, epochs: int | None = None,
              proximal_mu: float = 0.0) -> TrainResult:
        """Train ``client`` from ``global_state``; with ``proximal_mu`` the loss gains
        (mu / 2) ||w - w_received||^2."""
        self.model.load_state_dict(global_state)
        batches = self.batches(client, rng, epochs)
        n_seen = self.sgd(batches, proximal_mu)
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return TrainResult(state, len(self.shards[client]), len(batches),
                           float(n_seen) * self.flops_per_sample)

    def train_batched(self, global_state: dict[str, torch.Tensor], clients: Sequence[int],
                      rngs: Sequence[np.random.Generator],
                      epochs: int | None = None) -> list[TrainResult]:
        """``train`` for several clients at once, as one vectorised step per batch index.

        Every client gets exactly the batches ``batches`` draws from its own ``rng``; the stack
        holds one copy of the parameters per client (``torch.func.vmap`` of ``grad`` over
        ``functional_call``) and applies plain SGD with the configured lr and momentum as
        ``torch.optim.SGD`` does. Clients whose batches run out drop out of the stack; clients
        whose batch at a step has another size (a partial last batch) form their own stack.
        The numbers equal ``train``'s up to floating-point summation order (grouped
        convolutions and batched matrix products): see ``tests/test_parallel.py``.
        """
        from torch.func import functional_call, grad, vmap

        model, cfg, dev = self.model, self.config, self.device
        if any(True for _ in model.buffers()):
            raise ValueError("batched training needs a model without buffers")
        names = [n for n, _ in model.named_parameters()]
        k = len(clients)
        params = {n: global_state[n].to(dev).unsqueeze(0).repeat(k, *[1] * global_state[n].dim())
                  for n in names}
        bufs: dict[str, torch.Tensor | None] = dict.fromkeys(names)
        plans = [self.batches(c, rng, epochs) for c, rng in zip(clients, rngs)]
        model.train()

        def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(functional_call(model, p, (x,)), y)

        grads_of = vmap(grad(loss))
        for step in range(max(len(b) for b in plans)):
            groups: dict[int, list[int]] = {}
            for i, b in enumerate(plans):
                if step < len(b):
                    groups.setdefault(len(b[step]), []).append(i)
            for members in groups.values():
                index = torch.from_numpy(np.stack([plans[i][step] for i in members])).to(dev)
                x, y = self.x_train[index], self.y_train[index]
                if len(members) == k:  # the whole stack: update in place
                    grads = grads_of(params, x, y)
                    new = sgd_step([params[n] for n in names], [grads[n] for n in names],
                                   [bufs[n] for n in names], cfg.lr, cfg.momentum)
                    bufs.update(zip(names, new))
                    continue
                sel = torch.tensor(members, device=dev)
                sub = {n: params[n][sel] for n in names}
                grads = grads_of(sub, x, y)
                sub_bufs = [None if step == 0 else bufs[n][sel] for n in names]
                new = sgd_step([sub[n] for n in names], [grads[n] for n in names], sub_bufs,
                               cfg.lr, cfg.momentum)
                for n, b in zip(names, new):
                    params[n][sel] = sub[n]
                    if b is not None:
                        if bufs[n] is None:  # the first step (every client takes part in it)
                            bufs[n] = torch.zeros_like(params[n])
                        bufs[n][sel] = b
        out = []
        for i, c in enumerate(clients):
            n_seen = sum(len(b) for b in plans[i])
            state = {n: params[n][i].clone() for n in names}
            out.append(TrainResult(state, len(self.shards[c]), len(plans[i]),
                                   float(n_seen) * self.flops_per_sample))
        return out

    @property
    def n_eval_batches(self) -> int:
        """How many batches of ``eval_batch_size`` the test set makes."""
        return -(-len(self.y_test) // self.config.eval_batch_size)

    @torch.inference_mode()
    def evaluate_batches(self, state: dict[str, torch.Tensor],
                         batches: range) -> list[tuple[int, float]]:
        """(correct, summed cross-entropy) of ``state`` on each of the test ``batches`` (indices
        of ``eval_batch_size`` slices), so that parts evaluated elsewhere combine exactly."""
        model, bs = self.model, self.config.eval_batch_size
        model.load_state_dict(state)
        model.eval()
        out = []
        for b in batches:
            x, y = self.x_test[b * bs: (b + 1) * bs], self.y_test[b * bs: (b + 1) * bs]
            logits = model(x)
            out.append((int((logits.argmax(1) == y).sum()),
                        float(F.cross_entropy(logits, y, reduction="sum"))))
        return out

    def evaluate(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) of ``state`` on the test set."""
        return combine_eval(self.evaluate_batches(state, range(self.n_eval_batches)),
                            len(self.y_test))


@torch.no_grad()
def sgd_step(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None],
             bufs: Sequence[torch.Tensor | None], lr: float,
             momentum: float) -> list[torch.Tensor | None]:
    """One step of ``torch.optim.SGD`` (no dampening, weight decay or Nesterov), the same
    in-place operations as its single-tensor path; ``bufs`` are the momentum buffers (None
    before the first step; updated in place after). Returns the buffers."""
    out = list(bufs)
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            continue
        if momentum != 0:
            if out[i] is None:
                out[i] = g.detach().clone()
            else:
                out[i].mul_(momentum).add_(g, alpha=1)
            g = out[i]
        p.add_(g, alpha=-lr)
    return out


def combine_eval(parts: Sequence[tuple[int, float]], n: int) -> tuple[float, float]:
    """(accuracy, mean loss) from per-batch (correct, loss sum), summed in batch order."""
    correct, loss_sum = 0, 0.0
    for c, loss in parts:
        correct += c
        loss_sum += loss
    return correct / n, loss_sum / n
