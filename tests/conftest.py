"""Shared fixtures for the unit tests."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy
import yaml

# ``synthetic`` cut to a fifth (2,400 training and 500 test samples of the same generator) for
# engine runs whose checks do not depend on how much is trained (tables, invariants, equalities
# between code paths): a fifth of the training and a quarter of the evaluation. Registered only
# while a module that asks for it (``small_synthetic``) runs, so name listings elsewhere stay.
SMALL_SYNTHETIC = "synthetic_small"
SMALL_N_TRAIN, SMALL_N_TEST = 2_400, 500


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker has a core of its own: torch's intra-op threads would
    only contend with the other workers (LeNet-5's small steps do not gain from them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small_synthetic() -> Iterator[str]:
    from sinsim.learn.dataset_sources import load_synthetic
    from sinsim.learn.datasets import DATASETS, DatasetEntry

    base = DATASETS["synthetic"]
    DATASETS._entries[SMALL_SYNTHETIC] = DatasetEntry(
        functools.partial(load_synthetic, n_train=SMALL_N_TRAIN, n_test=SMALL_N_TEST),
        base.mean, base.std, base.shape, base.n_classes)
    try:
        yield SMALL_SYNTHETIC
    finally:
        del DATASETS._entries[SMALL_SYNTHETIC]


@pytest.fixture
def tiny_raw() -> dict[str, Any]:
    """A minimal valid raw scenario (a fresh dict per test, safe to mutate)."""
    return {
        "name": "tiny_test",
        "clients": {"count": 4},
        "training": {"dataset": "synthetic", "rounds": 2, "clients_per_round": 2},
    }


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """``write_yaml(content, name="scenario.yaml")``: a dict is dumped as YAML, a str is
    written verbatim; returns the file's path."""

    def write(content: dict[str, Any] | list | str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def env() -> simpy.Environment:
    return simpy.Environment()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
