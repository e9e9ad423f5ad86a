"""sinsim against Flower's simulation (Ray) on the same federated workload, whole processes.

The workload: Fashion-MNIST, 100 IID clients of 600 images (``partition_iid`` with the
scenario's partition stream), 10 clients a round, 1 local epoch of plain SGD (batch 10,
lr 0.01) on LeNet-5 (``build_model("lenet5", 0)``), 3 rounds, the global model evaluated on the
10,000 test images after each round.

- sinsim: a temporary scenario YAML (abstract clients over fixed links, no loss, ``fedavg``)
  run as ``python -m sinsim that.yaml --out TMP --quiet``. Its parallelism is whatever
  sinsim's defaults are: the scenario sets no worker or thread keys.
- Flower: this file with ``--child flower``: a ``ServerApp`` running Flower's message-based
  ``FedAvg`` (``fraction_train`` 0.1, no federated evaluation, centralized evaluation through
  ``evaluate_fn``) and a ``ClientApp`` whose train handler is sinsim's ``LocalTrainer.train``
  (same partition, same initial weights, same batch order for a given round and client), in
  ``flwr.simulation.run_simulation`` with the Ray backend: ``--workers`` actors (default 2)
  of ``client_resources`` ``num_cpus`` 1. Each Ray actor loads the dataset once, through
  sinsim's loader; the server process loads it once for the evaluation. Flower samples its own
  10 clients a round, so the accuracies are close, not equal.

Each measurement is a fresh process, timed from start to exit (imports, data loading, Ray's
start and shutdown included), the tools interleaved (sinsim, Flower, sinsim, ...), repeated
``--repeats`` times (default ``$SINSIM_BENCH_REPEATS`` or 3); medians are reported. While a
process runs, the memory of its whole process tree is sampled (Ray starts a dozen processes):
the peak of the summed PSS, beside the peak RSS of its largest single process (``ru_maxrss``
from ``wait4``: the process and the descendants it reaped). Per-round
times: sinsim's ``host_wall_s`` column; for Flower, the time between the ends of consecutive
centralized evaluations (training, messaging, aggregation and evaluation of a round).

The last line is the headline ``flower_over_sinsim: <median Flower s / median sinsim s>``
(target >= 2.0). Without ``flwr`` installed, sinsim is timed alone and the script exits 0.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

DATA_DIR = REPO / "data"
DATASET = "fashion_mnist"
MODEL = "lenet5"
SEED = 0
N_CLIENTS = 100  # 60,000 training images: 600 each
CLIENTS_PER_ROUND = 10
LOCAL_EPOCHS = 1
BATCH_SIZE = 10
LR = 0.01
ROUNDS = 3
WORKERS = 2  # Flower's Ray actors, one CPU each
TARGET = 2.0
RESULT_MARK = "VS_FLOWER_RESULT "  # the Flower child's result line on stdout
SAMPLE_S = 0.25  # process-tree memory sampling period
NO_FLOWER = "flwr not installed: pip install 'sinsim[peers]'"


# ---------------------------------------------------------------------------------------------
# the sinsim side


def scenario_dict(rounds: int = ROUNDS, data_dir: str | Path = DATA_DIR) -> dict:
    """The workload as a sinsim scenario: abstract clients, fixed links, no loss, FedAvg."""
    return {
        "name": "bench_vs_flower",
        "seed": SEED,
        "clients": {"count": N_CLIENTS},
        "links": {"model": "fixed",
                  "uplink": {"rate_bps": 10.0e6, "propagation_delay_s": 0.004},
                  "downlink": {"rate_bps": 50.0e6, "propagation_delay_s": 0.004},
                  "loss": {"kind": "none"}},
        "training": {"dataset": DATASET, "data_dir": str(data_dir), "download": False,
                     "partition": "iid", "model": MODEL, "rounds": rounds,
                     "clients_per_round": CLIENTS_PER_ROUND, "local_epochs": LOCAL_EPOCHS,
                     "batch_size": BATCH_SIZE, "lr": LR, "momentum": 0.0,
                     "round_deadline": "1d", "device": "cpu"},
        "algorithms": ["fedavg"],
    }


def write_scenario(path: Path, rounds: int = ROUNDS, data_dir: str | Path = DATA_DIR) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(scenario_dict(rounds, data_dir), sort_keys=False),
                    encoding="utf-8")
    return path


def sinsim_command(scenario: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "sinsim", str(scenario), "--out", str(out), "--quiet"]


def run_sinsim(rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="sinsim-vs-flower-") as tmp:
        scenario = write_scenario(Path(tmp) / "vs_flower.yaml", rounds)
        out = Path(tmp) / "out"
        m = run_measured(sinsim_command(scenario, out), "sinsim")
        with open(out / "rounds.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        summary = json.loads((out / "summary.json").read_text())
    m["round_s"] = [float(r["host_wall_s"]) for r in rows]
    m["accuracy"] = [float(r["test_accuracy"]) for r in rows]
    m["source"] = summary["dataset"]["source"]
    return m


# ---------------------------------------------------------------------------------------------
# the Flower side (this file with --child flower; the ClientApp's functions are imported by Ray
# actors from the module `vs_flower`, so nothing here may run at import time)

_CACHE: dict = {}  # per process: the sinsim trainer (dataset, shards, one model)


def trainer():
    """sinsim's LocalTrainer over the workload, built once per process (a Ray actor or the
    Flower server)."""
    if "trainer" not in _CACHE:
        import torch

        from sinsim._rng import rng_for
        from sinsim.learn.datasets import load_dataset, partition_iid
        from sinsim.learn.models import build_model, training_flops_per_sample
        from sinsim.learn.training import LocalTrainer, TrainConfig

        data = load_dataset(DATASET, DATA_DIR, download=False)
        shards = partition_iid(data.n_train, N_CLIENTS, rng_for(SEED, "partition"))
        model = build_model(MODEL, SEED)
        config = TrainConfig(LOCAL_EPOCHS, BATCH_SIZE, LR, 0.0)
        _CACHE["trainer"] = LocalTrainer(model, data, shards, config,
                                         training_flops_per_sample(model), torch.device("cpu"))
    return _CACHE["trainer"]


def flower_train(msg, context):
    """The ClientApp's train handler: one client's local epoch, from the received weights."""
    import torch  # noqa: F401 - ArrayRecord's torch conversions need it imported
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    from sinsim._rng import rng_for

    client = int(context.node_config["partition-id"])
    rnd = int(msg.content["config"]["server-round"])
    state = msg.content["arrays"].to_torch_state_dict()
    result = trainer().train(state, client, rng_for(SEED, "train", rnd, client))
    reply = RecordDict({"arrays": ArrayRecord(result.state),
                        "metrics": MetricRecord({"num-examples": result.n_samples})})
    return Message(content=reply, reply_to=msg)


def client_app():
    from flwr.clientapp import ClientApp

    app = ClientApp()
    app.train()(flower_train)
    return app


def server_app(rounds: int, record: dict):
    """A ServerApp running FedAvg for ``rounds``; ``record`` gets the evaluation times and
    accuracies."""
    from flwr.app import ArrayRecord, MetricRecord
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg

    from sinsim.learn.models import build_model

    app = ServerApp()

    def evaluate(server_round: int, arrays):
        if server_round == 0:  # Flower evaluates the initial model; sinsim does not
            record["t_eval"] = [time.perf_counter()]
            return None
        acc, loss = trainer().evaluate(arrays.to_torch_state_dict())
        record["t_eval"].append(time.perf_counter())
        record["accuracy"].append(acc)
        return MetricRecord({"accuracy": acc, "loss": loss})

    def train_metrics(contents, weight_key: str):
        # called with the valid replies only: count them (a failed client is not an error
        # to Flower, but it would make the runs unlike)
        record["trained"].append(len(contents))
        return MetricRecord({weight_key: sum(int(c["metrics"][weight_key]) for c in contents)})

    def main(grid, context) -> None:
        record.update(accuracy=[], trained=[])
        trainer()  # the test set for the evaluation: loaded once in this process
        strategy = FedAvg(fraction_train=CLIENTS_PER_ROUND / N_CLIENTS, fraction_evaluate=0.0,
                          min_train_nodes=CLIENTS_PER_ROUND, min_evaluate_nodes=0,
                          min_available_nodes=N_CLIENTS, train_metrics_aggr_fn=train_metrics)
        init = ArrayRecord(build_model(MODEL, SEED).state_dict())
        strategy.start(grid=grid, initial_arrays=init, num_rounds=rounds,
                       evaluate_fn=evaluate)

    app.main()(main)
    return app


def flower_child(rounds: int, workers: int) -> None:
    # import this file as the module `vs_flower` (not __main__), so that Ray pickles the
    # ClientApp's handler by reference and each actor imports it (and fills its own cache)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import vs_flower
    from flwr.simulation import run_simulation

    record: dict = {}
    run_simulation(server_app=vs_flower.server_app(rounds, record),
                   client_app=vs_flower.client_app(), num_supernodes=N_CLIENTS,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": workers}})
    t = record.get("t_eval", [])
    if record.get("trained") != [CLIENTS_PER_ROUND] * rounds or len(t) != rounds + 1:
        sys.exit(f"the Flower run did not train {CLIENTS_PER_ROUND} clients in each of its "
                 f"{rounds} rounds: {record}")
    out = {"round_s": [b - a for a, b in zip(t, t[1:])], "accuracy": record["accuracy"]}
    print(RESULT_MARK + json.dumps(out), flush=True)


def flower_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("flwr", "ray"))


def run_flower(rounds: int, workers: int) -> dict:
    env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "flower",
           "--rounds", str(rounds), "--workers", str(workers)]
    m = run_measured(cmd, "flower", env=env)
    lines = [x for x in m.pop("stdout").splitlines() if x.startswith(RESULT_MARK)]
    if not lines:
        sys.exit("FAIL: the Flower child printed no result")
    m.update(json.loads(lines[-1][len(RESULT_MARK):]))
    return m


# ---------------------------------------------------------------------------------------------
# measuring a process


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_mb(root: int) -> tuple[float, int]:
    """Summed PSS of ``root`` and its descendants (MB), and how many processes that is."""
    kids, todo, seen = _children_map(), [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo.extend(kids.get(pid, ()))
    return sum(_pss_kb(p) for p in seen) / 1024, len(seen)


def run_measured(cmd: list[str], what: str, env: dict | None = None) -> dict:
    """Run ``cmd`` to its end: wall time, the peak RSS of its largest single process and the
    sampled peak of its process tree's summed PSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = {"mb": 0.0, "procs": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            mb, n = tree_pss_mb(proc.pid)
            peak["mb"] = max(peak["mb"], mb)
            peak["procs"] = max(peak["procs"], n)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # read the pipes in threads (Ray logs a lot), reap with wait4 for the rusage
    outs: dict[str, str] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: outs.__setitem__(k, s.read()))
               for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    for r in readers:
        r.join()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"FAIL: {what} exited with {proc.returncode}:\n{outs['stderr'][-4000:]}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "tree_mb": peak["mb"],
            "procs": peak["procs"], "stdout": outs["stdout"]}


# ---------------------------------------------------------------------------------------------
# report


def _median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def _steady(m: dict) -> list[float]:
    """Rounds 2.. (round 1 also pays for the first batches, the actors' data loading, ...)."""
    return m["round_s"][1:]


def describe(name: str, runs: list[dict]) -> None:
    wall = _median([m["wall_s"] for m in runs])
    steady = _median([s for m in runs for s in _steady(m)])
    first = _median([m["round_s"][0] for m in runs])
    rounds = _median([sum(m["round_s"]) for m in runs])
    print(f"{name}: whole process median {wall:.2f} s; round 1 {first:.2f} s, steady round "
          f"(rounds 2+) {steady:.2f} s; outside the rounds (start-up, shutdown) "
          f"{wall - rounds:.2f} s (medians)")
    print(f"  peak memory: process tree {_median([m['tree_mb'] for m in runs]):.0f} MB PSS "
          f"(summed over up to {max(m['procs'] for m in runs)} processes, sampled every "
          f"{SAMPLE_S} s); largest single process {_median([m['rss_mb'] for m in runs]):.0f} "
          f"MB RSS (ru_maxrss)")
    accs = ", ".join(f"{a:.4f}" for a in runs[-1]["accuracy"])
    finals = ", ".join(f"{m['accuracy'][-1]:.4f}" for m in runs)
    print(f"  accuracy by round (last repeat): {accs}; final, every repeat: {finals}")


def _line(name: str, m: dict) -> str:
    rounds = ", ".join(f"{s:.2f}" for s in m["round_s"])
    return (f"{name:6s} {m['wall_s']:6.2f} s  rounds [{rounds}] s  tree {m['tree_mb']:.0f} MB  "
            f"accuracy {m['accuracy'][-1]:.4f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="sinsim vs Flower's Ray simulation on the same FedAvg workload (Fashion-MNIST,"
                    " 100 IID clients, 10 a round, LeNet-5), whole fresh processes, interleaved."
                    " The last line is `flower_over_sinsim: X` (target >= 2.0).")
    p.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds (default {ROUNDS})")
    p.add_argument("--repeats", type=int,
                   default=int(os.environ.get("SINSIM_BENCH_REPEATS", 3)),
                   help="processes of each tool (default $SINSIM_BENCH_REPEATS or 3)")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help=f"Flower's Ray actors, num_cpus 1 each (default {WORKERS})")
    p.add_argument("--child", choices=("flower",), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1 or args.workers < 1:
        p.error("--rounds, --repeats and --workers must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child == "flower":
        flower_child(args.rounds, args.workers)
        return
    import torch

    have_flower = flower_available()
    if have_flower:
        import flwr
        import ray
        peer = f"flwr {flwr.__version__} (ray {ray.__version__}), {args.workers} Ray actors"
    else:
        peer = "Flower not installed"
    load0 = os.getloadavg()[0]
    print(f"workload: {DATASET}, {N_CLIENTS} IID clients x {60_000 // N_CLIENTS} images, "
          f"{CLIENTS_PER_ROUND} a round, {LOCAL_EPOCHS} local epoch, batch {BATCH_SIZE}, "
          f"SGD lr {LR}, {MODEL}, {args.rounds} rounds, evaluation on the test set each round")
    print(f"torch {torch.__version__}; {peer}; {os.cpu_count()} cores; {args.repeats} fresh "
          f"processes of each tool, interleaved; load average at the start: {load0:.2f}")
    sin, flo = [], []
    for i in range(args.repeats):
        m = run_sinsim(args.rounds)
        sin.append(m)
        print(f"  repeat {i + 1}: {_line('sinsim', m)}", flush=True)
        if have_flower:
            m = run_flower(args.rounds, args.workers)
            flo.append(m)
            print(f"  repeat {i + 1}: {_line('flower', m)}", flush=True)
    print(f"data: {sin[0]['source']}")
    describe("sinsim", sin)
    if have_flower:
        describe("flower", flo)
    load1 = os.getloadavg()[0]
    busy = " (> 2 on 2 cores: other jobs were running)" if load1 > 2 or load0 > 2 else ""
    print(f"load average at the end: {load1:.2f}{busy}")
    sinsim_s = _median([m["wall_s"] for m in sin])
    print(f"sinsim_s: {sinsim_s:.2f} (median of {len(sin)})")
    if not have_flower:
        print(NO_FLOWER)
        return
    flower_s = _median([m["wall_s"] for m in flo])
    print(f"flower_s: {flower_s:.2f} (median of {len(flo)})")
    if args.rounds > 1:
        steady = _median([s for m in flo for s in _steady(m)]) / _median(
            [s for m in sin for s in _steady(m)])
        print(f"steady round, flower over sinsim: {steady:.2f}")
    print(f"flower_over_sinsim: {flower_s / sinsim_s:.2f}")


if __name__ == "__main__":
    main()
