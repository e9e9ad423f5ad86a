"""Start-up: torchvision (about 1.5 s to import) only when there is a copy to read or fetch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sinsim.learn import dataset_sources, datasets

REPO = Path(__file__).resolve().parents[1]


def _imports_torchvision(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print('torchvision' in sys.modules)"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_no_copy_and_no_download_does_not_import_torchvision(tmp_path):
    # an empty data dir (no source at all) and the repository's (the npm digits, if fetched)
    code = ("from sinsim.learn.datasets import DatasetUnavailable, load_dataset\n"
            f"for root in ({str(tmp_path)!r}, {str(REPO / 'data')!r}):\n"
            "    try:\n"
            "        load_dataset('mnist', root, download=False)\n"
            "    except DatasetUnavailable:\n"
            "        pass\n")
    assert not _imports_torchvision(code)


def test_unresolvable_mirrors_skip_the_download(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_sources, "_any_resolves", lambda hosts: False)
    assert dataset_sources._torchvision("MNIST", tmp_path, download=True) is None


def _write_idx(path: Path, array: np.ndarray) -> None:
    kind = 0x08  # unsigned bytes
    header = bytes([0, 0, kind, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_a_local_torchvision_copy_is_still_read(tmp_path, monkeypatch):
    # Prepare: a tiny MNIST in torchvision's layout (uncompressed IDX files in MNIST/raw), let
    # through the check that `mnist` is the 60,000/10,000 digits
    monkeypatch.setattr(dataset_sources, "MNIST_SIZES", (30, 10))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))

    # Execute
    data = datasets.load_dataset("mnist", tmp_path, download=False)

    # Assert
    assert data.source == f"mnist:local:{raw}"  # read without torchvision
    assert (data.n_train, data.n_test) == (30, 10)
