"""The file formats the data sets ship in, read without torchvision: IDX (MNIST, Fashion-MNIST,
uncompressed or gzipped) and the python version of CIFAR-10 (pickled batches, unpickled with
only the classes a batch holds). Where each data set's files are is
:mod:`sinsim.learn.dataset_sources`'s business."""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np

from sinsim.errors import DatasetUnavailable

__all__ = ["read_cifar_batch", "read_idx", "read_idx_gz", "read_idx_sha256"]


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
