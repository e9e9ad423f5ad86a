"""Pure aggregation math."""

from __future__ import annotations

import torch


class WeightedMean:
    """Running weighted mean of state dicts, added one at a time as updates arrive.

    Holds one float64 accumulator, so memory does not grow with the number of clients.
    """

    def __init__(self) -> None:
        self._sum: dict[str, torch.Tensor] | None = None
        self.total_weight = 0.0
        self.count = 0

    def add(self, state: dict[str, torch.Tensor], weight: float) -> None:
        if not weight > 0:  # also rejects NaN
            raise ValueError(f"weight must be > 0, got {weight}")
        if self._sum is None:
            self._sum = {k: v.detach().to(torch.float64) * weight for k, v in state.items()}
        else:
            for k, v in state.items():
                self._sum[k].add_(v.detach().to(torch.float64), alpha=weight)
        self.total_weight += weight
        self.count += 1

    def result(self, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The mean, in the dtypes and devices of ``like``; ``like`` itself when nothing arrived."""
        if self._sum is None:
            return like
        return {k: (self._sum[k] / self.total_weight).to(like[k].dtype).to(like[k].device)
                for k in like}
