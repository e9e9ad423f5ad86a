"""What a run prepares once for all its algorithms (``Prepared``): the network, the data set and
its partition, the trainer and the initial model; and the training pool of ``training.workers``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sinsim.errors import ConfigError
from sinsim.learn import portable
from sinsim.learn.codecs import ModelSpec
from sinsim.learn.datasets import Dataset, load_dataset
from sinsim.learn.models import build_model, training_flops_per_sample
from sinsim.learn.parallel import TrainingPool, resolve_workers
from sinsim.learn.partitions import make_partition
from sinsim.learn.training import LocalTrainer, TrainConfig, pick_device
from sinsim.scenario import Scenario
from sinsim.sim.network import Network
from sinsim.sim.topology import Topology, client_planes, client_sunlit
from sinsim.sim.wiring import build_network

__all__ = ["Prepared", "prepare", "training_pool", "RoundCallback"]


@dataclass
class Prepared:
    """Everything a run needs that does not depend on the algorithm."""

    scenario: Scenario
    dataset: Dataset
    shards: list[np.ndarray]
    trainer: LocalTrainer
    init_state: dict[str, torch.Tensor]
    spec: ModelSpec
    network: Network
    sunlit: list[np.ndarray | None] | None = None  # per client, with ``power:``


def prepare(scenario: Scenario, network: Network | None = None,
            topology: Topology | None = None) -> Prepared:
    """``topology``: the one ``network`` was built from (a by_plane partition reads the
    clients' planes from it; without it they come from the scenario's nodes)."""
    tr = scenario.training
    if tr.portable and not portable.pinned():
        raise ConfigError(portable.NOT_PINNED, key="training.portable")
    network = network if network is not None else build_network(scenario, topology)
    n = len(network.client_ids)
    if tr.clients_per_round > n:
        raise ConfigError(f"{tr.clients_per_round} is larger than the number of clients ({n})",
                          key="training.clients_per_round")
    dataset = load_dataset(tr.dataset, tr.data_dir, download=tr.download)
    if n > dataset.n_train:
        raise ConfigError(f"{n} clients but {dataset.name} ({dataset.source}) has only "
                          f"{dataset.n_train} training samples", key="clients")
    planes = client_planes(scenario, topology) if tr.partition.kind == "by_plane" else None
    try:
        shards = make_partition(tr.partition, dataset.y_train.numpy(), n, scenario.seed,
                                planes=planes, n_classes=dataset.n_classes)
    except ValueError as e:
        raise ConfigError(str(e), key="training.partition") from None
    model = build_model(tr.model, scenario.seed, dataset.input_shape)
    device = pick_device("cpu" if tr.portable else tr.device)
    torch.set_num_threads(tr.cpu_threads)
    if portable.pinned():  # this process's torch settings too (the environment's are read)
        portable.apply()
    if tr.portable and (off := portable.departures()):
        raise ConfigError(f"not in effect here ({'; '.join(off)}): {portable.NOT_PINNED}",
                          key="training.portable")
    config = TrainConfig(tr.local_epochs, tr.batch_size, tr.lr, tr.momentum, tr.eval_batch_size)
    trainer = LocalTrainer(model, dataset, shards, config,
                           training_flops_per_sample(model, dataset.input_shape), device)
    init_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    sunlit = client_sunlit(scenario, topology) if scenario.power is not None else None
    return Prepared(scenario, dataset, shards, trainer, init_state, ModelSpec.of(init_state),
                    network, sunlit)


RoundCallback = Callable[[dict[str, Any]], None]


def training_pool(prep: Prepared) -> TrainingPool | None:
    """The pool for ``training.workers`` / ``training.batched``; None: train in this process,
    each client when its downlink arrives. ``auto`` counts as the clients that train at once
    ``clients_per_round``, or an asynchronous algorithm's ``concurrency`` when larger."""
    tr = prep.scenario.training
    at_once = max([tr.clients_per_round] + [a.strategy_params.get("concurrency") or 0
                                            for a in prep.scenario.algorithms])
    processes = resolve_workers(tr.workers, clients_per_round=at_once,
                                cpu_threads=tr.cpu_threads, device=prep.trainer.device)
    if processes == 1 and not tr.batched:
        return None
    return TrainingPool(prep.trainer, processes, tr.cpu_threads)
