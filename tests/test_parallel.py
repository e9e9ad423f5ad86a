"""Training in several processes and batched training: the same tables as one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sinsim._rng import rng_for
from sinsim.learn.datasets import Dataset, load_dataset, partition_dirichlet, partition_iid
from sinsim.learn.models import build_model, training_flops_per_sample
from sinsim.learn.parallel import TrainingPool, resolve_workers
from sinsim.learn.strategies import ClientUpdate
from sinsim.learn.training import LocalTrainer, TrainConfig
from sinsim.scenario import validate_scenario
from sinsim.sim import engine, kernel
from sinsim.sim.engine import run_scenario

# the cheap ALQ phases only (no basis or STE epochs): a few seconds a run
# (pre-training in the first round only: the per-client state then matters across rounds)
SPACEDML_SHORT = {"spacedml": {"pretrain": "first_round", "pretrain_epochs": 1,
                               "schedule": ["prune", "coordinate"], "warmup_batches": 2}}


def _scenario(workers, *, algorithms=("fedavg", SPACEDML_SHORT), rounds=2, batched=False):
    return validate_scenario({
        "name": "parallel_test", "seed": 1,
        "clients": {"count": 48},  # 250 synthetic samples each: 2 batches of 125
        "links": {"uplink": {"rate_bps": 8e6, "propagation_delay_s": 0.01},
                  "downlink": {"rate_bps": 40e6, "propagation_delay_s": 0.01},
                  "loss": {"kind": "bernoulli", "p": 0.3}},
        "training": {"dataset": "synthetic", "rounds": rounds, "clients_per_round": 4,
                     "batch_size": 125, "lr": 0.05, "momentum": 0.5, "eval_batch_size": 500,
                     "round_deadline": "10min", "workers": workers, "batched": batched},
        "compute": {"flops_per_s": 1e9},
        "algorithms": list(algorithms),
    })


def _tables(out: Path) -> dict[str, str]:
    """The three tables as text, ``host_wall_s`` dropped from rounds.csv."""
    rounds = pd.read_csv(out / "rounds.csv").drop(columns="host_wall_s")
    return {"rounds": rounds.to_csv(index=False),
            "transfers": (out / "transfers.csv").read_text(),
            "clients": (out / "clients.csv").read_text()}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("w1")
    summary = run_scenario(_scenario(1), out)
    return out, summary


@pytest.mark.slow  # an engine run: CI's slow suite
def test_two_processes_give_the_same_tables_as_one(one_process, tmp_path):
    # Prepare: one process (today's path) and two
    out1, summary1 = one_process

    # Execute
    summary2 = run_scenario(_scenario(2), tmp_path)

    # Assert: byte for byte, host_wall_s aside
    assert summary1["training_processes"] == 1 and summary2["training_processes"] == 2
    assert _tables(out1) == _tables(tmp_path)
    rounds, transfers, clients = (pd.read_csv(out1 / f"{t}.csv")
                                  for t in ("rounds", "transfers", "clients"))
    down = transfers[transfers.direction == "down"]
    assert (down.status != "delivered").any(), "a lost downlink should be in the scenario"
    spacedml = clients[(clients.algorithm == "spacedml") & (clients.down_status == "delivered")]
    assert spacedml.client.duplicated().any(), "a SpaceDML client should train twice (state)"


@pytest.mark.slow  # an engine run: CI's slow suite
def test_jobs_whose_downlink_fails_change_nothing(one_process, tmp_path, monkeypatch):
    # Prepare: queue every selected client, last first, as if every downlink would arrive:
    # the jobs of the lost ones run (SpaceDML's say "pre-trained") but are never used
    out1, _ = one_process
    monkeypatch.setattr(kernel, "downlinks_delivered",
                        lambda prep, rnd, selected, now_s: list(reversed(selected)))

    # Execute
    run_scenario(_scenario(2), tmp_path)

    # Assert
    assert _tables(out1) == _tables(tmp_path)


def test_downlink_dry_run_predicts_the_deliveries(one_process):
    # Prepare
    out, _ = one_process
    transfers = pd.read_csv(out / "transfers.csv")
    sc = _scenario(1)
    prep = engine.prepare(sc)

    for (alg, r), tr in transfers[transfers.direction == "down"].groupby(["algorithm", "round"]):
        clients = [prep.network.client_ids.index(c) for c in tr.client]
        rnd = kernel.Round(alg, r, tr.start_s.iloc[0] + sc.training.round_deadline,
                            b"x" * int(tr.bytes.iloc[0]), None, None)

        # Execute
        predicted = kernel.downlinks_delivered(prep, rnd, clients, tr.start_s.iloc[0])

        # Assert
        delivered = tr[tr.status == "delivered"].sort_values("end_s", kind="stable")
        assert [prep.network.client_ids[c] for c in predicted] == list(delivered.client)


# --------------------------------------------------------------------------------------------
# the pool on its own


def _trainer(n_clients=6, partition="iid", momentum=0.0, eval_batch_size=300):
    data = load_dataset("synthetic")
    rng = np.random.default_rng(0)
    if partition == "iid":
        shards = partition_iid(data.n_train, n_clients, rng)
    else:
        shards = partition_dirichlet(data.y_train.numpy(), n_clients, 0.3, rng)
    model = build_model("lenet5", 0)
    config = TrainConfig(epochs=1, batch_size=50, lr=0.05, momentum=momentum,
                         eval_batch_size=eval_batch_size)
    return LocalTrainer(model, data, shards, config, training_flops_per_sample(model),
                        torch.device("cpu"))


class CountingStrategy:
    """A cheap picklable strategy: the update says what the client's state was; helpers may
    fail on request."""

    def __init__(self, fail_on: int | None = None):
        self.states: dict[int, int] = {}
        self.fail_on = fail_on

    def client_state(self, client):
        return self.states.get(client, 0)

    def set_client_state(self, client, state):
        self.states[client] = state

    def decode_global(self, payload):
        return payload

    def client_update(self, trainer, received, client, rng):
        if client == self.fail_on:
            raise ValueError(f"client {client} is broken")
        draw = float(rng.random())
        return ClientUpdate(received + bytes([client]), client, draw,
                            state=self.client_state(client) + 1)


def test_pool_updates_equal_in_process_updates_and_leave_the_strategy_alone():
    trainer = _trainer()
    strategy = CountingStrategy()
    strategy.set_client_state(3, 5)
    with TrainingPool(trainer, 2) as pool:
        for r in (1, 2):
            # Execute: queue 4 clients, ask for 3 of them (client 2's "downlink failed")
            pool.start_round(strategy, b"g", b"g", (0, "train", r))
            pool.submit([0, 1, 2, 3])
            got = {c: pool.update(c) for c in (3, 0, 1)}

            # Assert: the same as computed here, and nothing committed by the pool
            for c, update in got.items():
                assert update.payload == b"g" + bytes([c])
                assert update.flops == float(rng_for(0, "train", r, c).random())
                assert update.state == strategy.client_state(c) + 1
            assert strategy.states == {3: 5}


def test_pool_jobs_on_several_open_contexts_each_train_their_own_model():
    # Prepare: two models open at once (as two server versions), jobs on both interleaved,
    # each with its own random-stream key and its client's state
    trainer = _trainer()
    strategy = CountingStrategy()
    strategy.set_client_state(2, 7)
    with TrainingPool(trainer, 2) as pool:
        a = pool.context(strategy, b"a", b"a")
        b = pool.context(strategy, b"b", b"b")
        jobs = {(ctx, c): pool.train(ctx, [c], [(0, "train", ctx, c, 9)])
                for c in (1, 2, 3) for ctx in (a, b)}
        dropped = pool.train(a, [4], [(0, "train", 4)])

        # Execute: take b's first, then a's; release a before taking client 4's
        got = {key: pool.result(jobs[key]) for key in sorted(jobs, key=lambda k: -k[0])}
        pool.release(a)
        evaluation = pool.evaluate(build_model("lenet5", 3).state_dict())  # b stays open
        again = pool.result(pool.train(b, [5], [(0, "train", 5)]))

        # Assert: each update from its own model, stream and state; nothing committed
        for (ctx, c), update in got.items():
            assert update.payload == (b"a" if ctx == a else b"b") + bytes([c])
            assert update.flops == float(rng_for(0, "train", ctx, c, 9).random())
            assert update.state == (7 if c == 2 else 0) + 1
        assert strategy.states == {2: 7}
        assert again.payload == b"b" + bytes([5])
        assert evaluation == trainer.evaluate(build_model("lenet5", 3).state_dict())
        with pytest.raises(RuntimeError, match="released"):
            pool.result(dropped)


def test_pool_reports_a_failing_job():
    trainer = _trainer()
    with TrainingPool(trainer, 2) as pool:
        pool.start_round(CountingStrategy(fail_on=1), b"g", b"g", (0, "train", 1))
        pool.submit([1])
        with pytest.raises((RuntimeError, ValueError), match="client 1 is broken"):
            pool.update(1)


def test_pool_evaluation_equals_one_process():
    # Prepare: 2,000 test samples in batches of 300 (the last one partial), 3 processes
    trainer = _trainer(eval_batch_size=300)
    state = {k: v + 0.01 for k, v in build_model("lenet5", 3).state_dict().items()}
    expected = trainer.evaluate(state)

    # Execute
    with TrainingPool(trainer, 3) as pool:
        got = [pool.evaluate(state) for _ in range(2)]

    # Assert
    assert got == [expected, expected]


def test_resolve_workers():
    cpu = torch.device("cpu")
    assert resolve_workers(3, clients_per_round=10, device=cpu) == 3
    assert resolve_workers(1, clients_per_round=10, device=cpu) == 1
    assert resolve_workers(4, clients_per_round=10, device=torch.device("cuda")) == 1
    auto = resolve_workers("auto", clients_per_round=2, device=cpu)
    assert 1 <= auto <= 2
    assert resolve_workers("auto", clients_per_round=100, cpu_threads=10_000, device=cpu) == 1


def test_auto_workers_use_every_usable_core_whatever_the_load(monkeypatch):
    from sinsim.learn import parallel

    cpu = torch.device("cpu")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(parallel.multiprocessing, "parent_process", lambda: None)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(64)),
                        raising=False)
    for load in (0.0, 5.2, 63.0, 200.0):  # what others run takes no core from auto
        monkeypatch.setattr(parallel.os, "getloadavg", lambda load=load: (load, load, load))
        assert resolve_workers("auto", clients_per_round=100, device=cpu) == 64
    assert resolve_workers("auto", clients_per_round=10, device=cpu) == 10
    assert resolve_workers("auto", clients_per_round=100, cpu_threads=2, device=cpu) == 32
    assert resolve_workers("auto", clients_per_round=100, cpu_threads=3, device=cpu) == 21
    # the affinity, not the machine: a process allowed 3 of 64 cores uses 3
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {5, 6, 7}, raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 64)
    assert resolve_workers("auto", clients_per_round=10, device=cpu) == 3
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert resolve_workers("auto", clients_per_round=10, device=cpu) == 1
    assert resolve_workers(4, clients_per_round=10, device=cpu) == 4  # a number is a number
    assert resolve_workers("auto", clients_per_round=10,
                           device=torch.device("cuda")) == 1  # one process on a GPU


def test_auto_workers_are_one_inside_another_pool(monkeypatch):
    from sinsim.learn import parallel

    cpu = torch.device("cpu")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(8)),
                        raising=False)
    monkeypatch.setattr(parallel.multiprocessing, "parent_process", lambda: None)
    assert resolve_workers("auto", clients_per_round=10, device=cpu) == 8
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")  # a pytest-xdist worker
    assert resolve_workers("auto", clients_per_round=10, device=cpu) == 1
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.setattr(parallel.multiprocessing, "parent_process", lambda: object())
    assert resolve_workers("auto", clients_per_round=10, device=cpu) == 1  # a sweep's worker
    assert resolve_workers(3, clients_per_round=10, device=cpu) == 3  # a number still pins it


def test_auto_workers_count_an_asynchronous_algorithms_concurrency(monkeypatch):
    # Prepare: 4 clients a round (``_scenario``), FedBuff with 6 at once
    from types import SimpleNamespace

    from sinsim.sim import prepared

    seen = []
    monkeypatch.setattr(prepared, "resolve_workers",
                        lambda setting, **kw: seen.append(kw["clients_per_round"]) or 1)
    for algorithms, expected in ((["fedavg"], 4), (["fedavg", {"fedbuff": {"concurrency": 6}}], 6),
                                 (["fedasync"], 4)):  # concurrency None: clients_per_round
        sc = _scenario("auto", algorithms=algorithms)
        prep = SimpleNamespace(scenario=sc, trainer=SimpleNamespace(device=torch.device("cpu")))

        # Execute
        assert prepared.training_pool(prep) is None

        # Assert
        assert seen.pop() == expected


# --------------------------------------------------------------------------------------------
# batched training


def _double(trainer: LocalTrainer) -> LocalTrainer:
    data = Dataset("synthetic64", "test", trainer.x_train.double(), trainer.y_train,
                   trainer.x_test.double(), trainer.y_test)
    return LocalTrainer(trainer.model.double(), data, trainer.shards, trainer.config,
                        trainer.flops_per_sample, trainer.device)


@pytest.mark.parametrize(("partition", "momentum"), [("iid", 0.0), ("dirichlet", 0.5)])
def test_batched_training_is_sequential_training_in_float64(partition, momentum):
    # Prepare: in float64 nothing but the summation order differs, so the two agree to ~1e-16;
    # uneven shards (dirichlet) give partial batches and clients that stop early
    trainer = _double(_trainer(n_clients=40, partition=partition, momentum=momentum))
    clients = [0, 3, 5, 7, 11, 19]
    init = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    # Execute
    seq = [trainer.train(init, c, rng_for(0, "train", 1, c)) for c in clients]
    bat = trainer.train_batched(init, clients, [rng_for(0, "train", 1, c) for c in clients])

    # Assert: the same work, the same weights
    for a, b in zip(seq, bat):
        assert (a.n_samples, a.n_steps, a.flops) == (b.n_samples, b.n_steps, b.flops)
        assert list(a.state) == list(b.state)
        for k in a.state:
            assert float((a.state[k] - b.state[k]).abs().max()) <= 1e-12
    if partition == "dirichlet":
        assert len({len(trainer.shards[c]) % 50 for c in clients}) > 1
        assert len({len(trainer.shards[c]) // 50 for c in clients}) > 1


def test_batched_training_in_float32_differs_by_rounding_only():
    # Prepare: 10 clients, batch 10, 8 steps (the bench's set-up, on synthetic data); these
    # clients meet a near-tie (a ReLU or max-pool decision flipped by rounding) that moves a
    # few weights by ~1e-5; most agree to ~1e-8 (docs: README, training.batched)
    trainer = _trainer(n_clients=150)
    trainer = LocalTrainer(trainer.model, load_dataset("synthetic"), trainer.shards,
                           TrainConfig(epochs=1, batch_size=10, lr=0.05), trainer.flops_per_sample,
                           trainer.device)
    clients = list(range(10))
    init = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    # Execute
    seq = [trainer.train(init, c, rng_for(0, "train", 1, c)) for c in clients]
    bat = trainer.train_batched(init, clients, [rng_for(0, "train", 1, c) for c in clients])

    # Assert: the sample-weighted means (what FedAvg averages)
    weights = [float(r.n_samples) for r in seq]
    diffs = []
    for k in init:
        mean_a = sum(w * r.state[k] for w, r in zip(weights, seq)) / sum(weights)
        mean_b = sum(w * r.state[k] for w, r in zip(weights, bat)) / sum(weights)
        diffs.append((mean_a - mean_b).abs().flatten())
    diff = torch.cat(diffs)
    # which near-ties a client meets, and how far 8 steps carry them, depend on the processor's
    # kernels (here: max 1.6e-5, mean 5.6e-8, median 1.9e-9); a wrong step moves weights by
    # 1e-2 and more. So: most weights to rounding, a few by what a flipped decision moves
    assert float(diff.median()) <= 1e-7
    assert float(diff.mean()) <= 1e-6
    assert float(diff.max()) <= 1e-3


def test_batched_run_matches_sequential_run(one_process, tmp_path):
    # Prepare: FedAvg only, one round, in one process, batched or not
    seq_out = tmp_path / "seq"
    run_scenario(_scenario(1, algorithms=("fedavg",), rounds=1), seq_out)

    # Execute
    run_scenario(_scenario(1, algorithms=("fedavg",), rounds=1, batched=True), tmp_path / "b")

    # Assert: transfers and clients byte for byte; accuracy and loss within float noise
    a, b = _tables(seq_out), _tables(tmp_path / "b")
    assert a["transfers"] == b["transfers"] and a["clients"] == b["clients"]
    ra, rb = (pd.read_csv(p / "rounds.csv") for p in (seq_out, tmp_path / "b"))
    cols = [c for c in ra.columns if c not in ("test_accuracy", "test_loss", "host_wall_s")]
    pd.testing.assert_frame_equal(ra[cols], rb[cols])
    assert np.allclose(ra.test_accuracy, rb.test_accuracy, rtol=0, atol=2e-3)
    assert np.allclose(ra.test_loss, rb.test_loss, rtol=1e-4)
