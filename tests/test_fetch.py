"""`sinsim data fetch` downloads through one resumable, hash-checked path (issue 27): a local HTTP
server (http.server in a thread, no internet) serves the files, cuts connections and honours (or
ignores) Range; every data set of the catalog is fetched from it."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sinsim.cli import main
from sinsim.learn import catalog
from sinsim.learn import fetch as mnist_fetch
from sinsim.learn.fetch import FetchError


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}  # path -> bytes sent before the connection is closed (once)
    ranges: list[str | None] = []
    honour_range = True

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng and self.honour_range else 0
        if start >= len(body) and start:
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        send = body[start:]
        if self.path in self.cut:
            send = send[: self.cut.pop(self.path)]
        self.wfile.write(send)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.cut, _Handler.ranges = {}, {}, []
    _Handler.honour_range = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


def _blob(n: int, seed: int = 0) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32)


def test_a_cut_download_keeps_its_part_and_resumes_with_a_range(server, tmp_path, capsys):
    base, h = server
    body = _blob(320_000)
    h.files["/blob"] = body
    h.cut["/blob"] = 100_000
    dest = tmp_path / "d" / "blob"
    check = mnist_fetch.digest_check("sha256", hashlib.sha256(body).hexdigest())
    with pytest.raises(FetchError, match="connection closed after 100,000 of 320,000 bytes"):
        mnist_fetch.download(f"{base}/blob", dest, label="blob", check=check)
    assert not dest.exists() and (tmp_path / "d" / "blob.part").stat().st_size == 100_000
    mnist_fetch.download(f"{base}/blob", dest, label="blob", check=check)
    assert h.ranges == [None, "bytes=100000-"]
    assert dest.read_bytes() == body and not (tmp_path / "d" / "blob.part").exists()
    err = capsys.readouterr().err  # not a terminal: a line per quarter, the last one whole
    assert "fetch: blob: 0.3 of 0.3 MB" in err.splitlines()[-1]


def test_a_server_that_ignores_range_starts_again_and_a_wrong_hash_is_removed(server, tmp_path):
    base, h = server
    body = _blob(64_000, seed=1)
    h.files["/blob"] = body
    h.honour_range = False
    dest = tmp_path / "blob"
    (tmp_path / "blob.part").write_bytes(b"stale bytes of another file")
    mnist_fetch.download(f"{base}/blob", dest, label="blob")
    assert dest.read_bytes() == body and h.ranges == ["bytes=27-"]
    with pytest.raises(FetchError, match="md5 .*, expected 0+ .the download was removed"):
        mnist_fetch.download(f"{base}/blob", tmp_path / "b2", label="b2",
                             check=mnist_fetch.digest_check("md5", "0" * 32))
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b2.part").exists()


def _idx(n_items: int, seed: int) -> bytes:
    return b"\x00\x00\x08\x01" + n_items.to_bytes(4, "big") + _blob(32 * n_items, seed)[:n_items]


def test_mnist_from_the_torchvision_mirror_resumes(server, tmp_path, monkeypatch):
    base, h = server
    raw_files, md5 = {}, {}
    for i, name in enumerate(mnist_fetch.MNIST_RAW):
        raw_files[name] = _idx(5000 + i, seed=i)
        gz = gzip.compress(raw_files[name], mtime=0)
        h.files[f"/mnist/{name}.gz"] = gz
        md5[f"{name}.gz"] = hashlib.md5(gz).hexdigest()  # noqa: S324
    monkeypatch.setattr(mnist_fetch, "MNIST_RAW", {
        n: (hashlib.sha256(b).hexdigest(), len(b), 5000 + i)
        for i, (n, b) in enumerate(raw_files.items())})
    monkeypatch.setattr(mnist_fetch, "TORCHVISION_MNIST_MIRRORS", (f"{base}/mnist/",))
    monkeypatch.setattr(mnist_fetch, "TORCHVISION_MNIST_MD5", md5)
    monkeypatch.setattr(mnist_fetch, "index_urls", lambda: [])  # no PyPI fallback here
    first = "/mnist/train-labels-idx1-ubyte.gz"
    h.cut[first] = len(h.files[first]) // 2
    with pytest.raises(FetchError):
        catalog.fetch("mnist", tmp_path, log=lambda m: None)
    catalog.fetch("mnist", tmp_path, log=lambda m: None)
    assert "bytes=" + str(len(h.files[first]) // 2) + "-" in h.ranges
    for name, body in raw_files.items():
        assert (tmp_path / "MNIST" / "raw" / name).read_bytes() == body
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir()) == sorted(raw_files)


def test_fashion_mnist_from_its_mirror_with_a_resume(server, tmp_path, monkeypatch):
    base, h = server
    raw_files, md5 = {}, {}
    for i, name in enumerate(catalog.IDX_NAMES):
        raw_files[name] = _idx(3000, seed=10 + i)
        gz = gzip.compress(raw_files[name], mtime=0)
        h.files[f"/fashion/{name}.gz"] = gz
        md5[f"{name}.gz"] = hashlib.md5(gz).hexdigest()  # noqa: S324
    monkeypatch.setattr(catalog, "FASHION_MIRRORS", (f"{base}/fashion/",))
    monkeypatch.setattr(catalog, "FASHION_MD5", md5)
    monkeypatch.setattr(catalog, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    cut_at = len(h.files["/fashion/t10k-images-idx3-ubyte.gz"]) // 2
    h.cut["/fashion/t10k-images-idx3-ubyte.gz"] = cut_at
    with pytest.raises(FetchError) as cut:
        catalog.fetch("fashion_mnist", tmp_path, log=lambda m: None)
    msg = str(cut.value)  # the error names what to install and where files go by hand
    assert "fetch again to resume" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert msg.endswith(f"Put the four IDX files of Fashion-MNIST in "
                        f"{tmp_path / 'FashionMNIST' / 'raw'}, or apt-get install "
                        f"dataset-fashion-mnist and fetch again")
    where = catalog.fetch("fashion_mnist", tmp_path, log=lambda m: None)
    assert f"bytes={cut_at}-" in h.ranges
    for name, body in raw_files.items():
        assert (where / name).read_bytes() == body
    assert sorted(p.name for p in where.iterdir()) == sorted(raw_files)


def _cifar_tgz() -> tuple[bytes, dict[str, bytes]]:
    members = {n: _blob(2048, seed=20 + i) for i, n in enumerate(catalog.CIFAR10_FILES)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in {**members, "readme.html": b"<p>not read</p>"}.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue(), members


def test_cifar10_from_the_first_reachable_source(server, tmp_path, monkeypatch, capsys):
    base, h = server
    tgz, members = _cifar_tgz()
    h.files["/cifar-10-python.tar.gz"] = tgz
    monkeypatch.setattr(catalog, "CIFAR10_URLS", (f"{base}/missing.tar.gz",
                                                  f"{base}/cifar-10-python.tar.gz"))
    monkeypatch.setattr(catalog, "CIFAR10_MD5", hashlib.md5(tgz).hexdigest())  # noqa: S324
    assert main(["data", "fetch", "cifar10", "--data-dir", str(tmp_path)]) == 0
    folder = tmp_path / "cifar-10-batches-py"
    assert capsys.readouterr().out == f"cifar10: {folder}\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(members)
    assert all((folder / n).read_bytes() == b for n, b in members.items())
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()


def test_no_reachable_source_is_one_line_naming_where_to_put_the_files(server, tmp_path,
                                                                        monkeypatch, capsys):
    base, _ = server
    monkeypatch.setattr(catalog, "CIFAR10_URLS", (f"{base}/gone.tar.gz",))
    assert main(["data", "fetch", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines()  # the progress lines aside
           if not line.startswith("fetch: ")]
    assert len(err) == 1 and err[0].startswith("sinsim: error: cifar10 could not be fetched")
    assert "HTTP Error 404" in err[0]
    assert err[0].endswith(f"Put cifar-10-python.tar.gz, extracted in "
                           f"{tmp_path / 'cifar-10-batches-py'}")
