"""The partition of a training set across clients, as ``training.partition`` chooses it.

- ``iid``: shuffled, equal shards (``partition_iid``).
- ``dirichlet``: label-skewed shards, per class proportions from Dirichlet(``alpha``)
  (``partition_dirichlet``).
- ``by_plane``: the clients of an orbital plane see ``classes_per_plane`` classes only, as
  imaging satellites over different regions would (``partition_by_plane``). Which classes: the
  classes are put in an order drawn from the seed, and plane ``p`` (numbered as
  ``sinsim.space.planes.orbital_planes`` numbers them) gets the classes at positions
  ``(p * classes_per_plane + j) mod n_classes``, ``j < classes_per_plane``: consecutive planes
  take consecutive blocks, so every class is seen by some plane when
  ``planes * classes_per_plane >= n_classes`` (and, when there are more slots than classes,
  the classes are spread as evenly as the blocks allow). The samples of a class are shuffled and
  split into equal shares among every client that sees the class (each sample goes to one
  client); samples of classes no plane sees are left out.

Draws are keyed (``sinsim._rng.rng_for``): iid and dirichlet take the ``partition`` stream as
they always did; by_plane draws the class order from ``(partition, 1)`` and the split of the
samples from ``(partition, 2)``, so the classes of a plane do not depend on the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sinsim._rng import rng_for

__all__ = ["make_partition", "partition_by_plane", "partition_dirichlet", "partition_iid",
           "plane_classes"]


def partition_iid(n_samples: int, n_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and split into ``n_clients`` shards whose sizes differ by at most one."""
    _check_partition(n_samples, n_clients)
    return [np.sort(s) for s in np.array_split(rng.permutation(n_samples), n_clients)]


def partition_dirichlet(labels: np.ndarray, n_clients: int, alpha: float,
                        rng: np.random.Generator) -> list[np.ndarray]:
    """Label-skewed shards: for each class, split its samples across clients by
    proportions drawn from Dirichlet(alpha). Every sample is used once; every client gets at
    least one sample (clients left empty take one sample from the largest shard)."""
    labels = np.asarray(labels)
    _check_partition(len(labels), n_clients)
    shards: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        props = rng.dirichlet(np.full(n_clients, alpha))
        cuts = (np.cumsum(props)[:-1] * len(idx)).astype(int)
        for k, part in enumerate(np.split(idx, cuts)):
            shards[k].append(part)
    out = [np.sort(np.concatenate(s)) if s else np.empty(0, dtype=np.int64) for s in shards]
    for k in range(n_clients):
        if len(out[k]) == 0:
            donor = int(np.argmax([len(s) for s in out]))
            out[k], out[donor] = out[donor][-1:], out[donor][:-1]
    return out


def _check_partition(n_samples: int, n_clients: int) -> None:
    if n_clients > n_samples:
        raise ValueError(f"cannot give {n_clients} clients a sample each from {n_samples} samples")


def make_partition(partition: Any, labels: np.ndarray, n_clients: int, seed: int, *,
                   planes: Sequence[int] | None = None,
                   n_classes: int | None = None) -> list[np.ndarray]:
    """The shards (sorted sample indices) of ``n_clients`` clients for the scenario's
    ``training.partition`` section (``kind`` and its parameters); ``planes``: each client's
    orbital plane, needed by ``by_plane``. Raises ValueError when the partition cannot be made
    (more clients than samples, a client left without a sample)."""
    labels = np.asarray(labels)
    if partition.kind == "iid":
        return partition_iid(len(labels), n_clients, rng_for(seed, "partition"))
    if partition.kind == "dirichlet":
        return partition_dirichlet(labels, n_clients, partition.alpha, rng_for(seed, "partition"))
    if partition.kind == "by_plane":
        if planes is None or len(planes) != n_clients:
            raise ValueError(f"by_plane needs the plane of each of the {n_clients} clients")
        return partition_by_plane(labels, planes, partition.classes_per_plane,
                                  rng_for(seed, "partition", 1), rng_for(seed, "partition", 2),
                                  n_classes=n_classes)
    raise ValueError(f"unknown partition kind {partition.kind!r}")


def plane_classes(n_planes: int, classes_per_plane: int, n_classes: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """The sorted classes plane ``p`` sees, for each plane (see the module docstring)."""
    if not 1 <= classes_per_plane <= n_classes:
        raise ValueError(f"classes_per_plane must be in 1..{n_classes}, got {classes_per_plane}")
    order = rng.permutation(n_classes)
    k = classes_per_plane
    return [np.sort(order[(p * k + np.arange(k)) % n_classes]) for p in range(n_planes)]


def partition_by_plane(labels: np.ndarray, planes: Sequence[int], classes_per_plane: int,
                       rng_classes: np.random.Generator, rng_samples: np.random.Generator, *,
                       n_classes: int | None = None) -> list[np.ndarray]:
    """Shards for clients whose orbital planes are ``planes`` (one plane number per client):
    every client of a plane gets samples of its plane's classes only, a class's samples split
    disjointly and evenly among the clients that see it. Raises ValueError when a client gets no
    sample (its plane's classes have fewer samples than clients to share them)."""
    labels = np.asarray(labels)
    n_clients = len(planes)
    _check_partition(len(labels), n_clients)
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    plane_ids, plane_of = np.unique(np.asarray(planes), return_inverse=True)
    classes = plane_classes(len(plane_ids), classes_per_plane, n_classes, rng_classes)
    shards: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    for c in range(n_classes):
        seers = [k for k in range(n_clients) if c in classes[plane_of[k]]]
        idx = rng_samples.permutation(np.flatnonzero(labels == c))
        if not seers:
            continue
        for k, part in zip(seers, np.array_split(idx, len(seers))):
            shards[k].append(part)
    out = [np.sort(np.concatenate(s)) if s else np.empty(0, dtype=np.int64) for s in shards]
    for k, shard in enumerate(out):
        if len(shard) == 0:
            p = plane_of[k]
            raise ValueError(
                f"client {k} (plane {plane_ids[p]}) gets no sample: its plane's classes "
                f"{classes[p].tolist()} have fewer samples than the clients that share them")
    return out
