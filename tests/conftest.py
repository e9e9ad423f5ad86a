"""Shared fixtures for the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy
import yaml


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
