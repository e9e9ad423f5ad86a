"""Figures from stored output tables: every plot draws, files get written, the CLI answers.

``tests/data/results_small/`` holds two real results directories (see its README): ``tiny``
(FedAvg and SpaceDML, abstract clients, no contact plan) and ``leo_walker`` (FedAvg on a Walker
shell, trimmed to a few satellites). Sweep tables are built here from them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sinsim.cli import main  # noqa: E402
from sinsim.studies import analysis, plots, sweep_plots, tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "tests" / "data" / "results_small"
TINY, LEO = STORED / "tiny", STORED / "leo_walker"
RUN_FIGURES = ["accuracy_vs_round", "accuracy_vs_bytes", "accuracy_vs_time", "bytes_per_round",
               "round_durations", "round_time_split"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fake_sweep(rounds: pd.DataFrame, grid: dict[str, list], seeds=(0, 1)) -> pd.DataFrame:
    """A tidy sweep table (one row per run, algorithm and round) made from one run's rounds:
    every grid point and seed gets those rounds with a made-up effect on accuracy and time."""
    rng = np.random.default_rng(0)
    points = pd.MultiIndex.from_product([*grid.values(), seeds], names=[*grid, "seed"])
    rows = []
    for run_id, point in enumerate(points):
        r = rounds.copy()
        effect = 0.01 * sum(float(v) if isinstance(v, int | float) else len(str(v))
                            for v in point[:-1])
        r["test_accuracy"] = (r.test_accuracy - effect + rng.normal(0, 0.005, len(r))).clip(0, 1)
        r["round_duration_s"] = r.round_duration_s * (1 + effect)
        r.insert(0, "run_id", f"run{run_id:03d}")
        r.insert(1, "seed", point[-1])
        for i, key in enumerate(grid):
            r.insert(2 + i, key, point[i])
        rows.append(r)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def rounds2() -> pd.DataFrame:
    """Rounds of FedAvg and SpaceDML."""
    rounds = pd.read_csv(TINY / "rounds.csv")
    assert sorted(rounds.algorithm.unique()) == ["fedavg", "spacedml"]
    return rounds


@pytest.fixture(scope="module")
def sweep(rounds2) -> pd.DataFrame:
    return fake_sweep(rounds2, {"training.clients_per_round": [2, 4], "training.lr": [0.01, 0.05]})


def _nonempty_file(ax, path: Path) -> None:
    ax.figure.savefig(path)
    assert path.stat().st_size > 1_000


# ------------------------------------------------------------------------- figure functions
@pytest.mark.parametrize("draw", [plots.accuracy_vs_round, plots.accuracy_vs_time,
                                  plots.bytes_per_round, plots.round_durations])
def test_round_figures_draw_every_algorithm(draw, rounds2, tmp_path):
    ax = draw(rounds2)
    labels = ax.get_legend_handles_labels()[1]
    assert any("fedavg" in label for label in labels)
    assert any("spacedml" in label for label in labels)
    _nonempty_file(ax, tmp_path / "f.png")


@pytest.mark.parametrize("direction", ["up", "down"])
def test_accuracy_vs_bytes_both_directions(direction, rounds2, tmp_path):
    _, ax = plt.subplots()
    assert plots.accuracy_vs_bytes(rounds2, ax, direction) is ax
    x = ax.lines[0].get_xdata()
    col = rounds2[rounds2.algorithm == "fedavg"][f"bytes_{direction}_cum"]
    assert np.allclose(x, col / 1e6)  # MB
    assert ("uplink" if direction == "up" else "downlink") in ax.get_xlabel()
    # log when one algorithm sends over 10x fewer bytes: SpaceDML's uplink, not its downlink
    assert ax.get_xscale() == ("log" if direction == "up" else "linear")
    assert plots.accuracy_vs_bytes(rounds2[rounds2.algorithm == "fedavg"]).get_xscale() == "linear"
    _nonempty_file(ax, tmp_path / "f.pdf")
    with pytest.raises(ValueError, match="direction"):
        plots.accuracy_vs_bytes(rounds2, direction="sideways")


@pytest.mark.parametrize(("d", "algorithms"), [(TINY, 2), (LEO, 1)])
def test_round_time_split_stacks_wait_transmit_compute(d, algorithms, tmp_path):
    breakdown = analysis.round_time_breakdown(d)
    ax = plots.round_time_split(breakdown)
    n_rounds = breakdown["round"].nunique()
    assert len(ax.patches) == algorithms * 3 * n_rounds  # algorithms x parts x rounds
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"transmitting", "computing", "round duration"} <= labels
    assert ({"fedavg", "spacedml"} <= labels) == (algorithms == 2)
    _nonempty_file(ax, tmp_path / "f.png")


def test_round_time_breakdown_of_loaded_tables_matches_the_directory():
    loaded = tables.load_results(LEO)
    pd.testing.assert_frame_equal(
        analysis.round_time_breakdown_of(loaded["rounds"], loaded["transfers"], loaded["clients"]),
        analysis.round_time_breakdown(LEO))


def test_contact_timeline_caps_the_clients(tmp_path):
    contacts = tables.load_table(LEO, "contacts")
    transfers = tables.load_table(LEO, "transfers")
    ax = plots.contact_timeline(contacts, max_clients=5, transfers=transfers)
    assert len(ax.get_yticks()) == 5
    assert "(5 of 19 clients)" in ax.get_title()
    _nonempty_file(ax, tmp_path / "f.png")
    chosen = ["sat0094", "sat0032"]
    ax = plots.contact_timeline(contacts, clients=chosen)
    assert [t.get_text() for t in ax.get_yticklabels()] == chosen


def test_ground_tracks_from_the_stored_tles(tmp_path):
    satellites = tables.load_tles(LEO)
    nodes = tables.load_table(LEO, "nodes")
    assert [s.id for s in satellites] == nodes[nodes.kind == "satellite"].id.tolist()
    ax = plots.ground_tracks(satellites, nodes, max_satellites=4, orbits=1)
    tracks = [line for line in ax.lines if len(line.get_xdata()) > 10]
    assert len(tracks) == 4
    lat = np.concatenate([line.get_ydata() for line in tracks])
    assert np.nanmax(np.abs(lat)) == pytest.approx(53, abs=1.5)  # a 53 deg Walker shell
    assert "shanghai" in [t.get_text() for t in ax.texts]
    _nonempty_file(ax, tmp_path / "f.png")


def test_ground_tracks_skip_uavs_and_thicken_server_satellites():
    satellites = tables.load_tles(LEO)[:3]
    nodes = pd.DataFrame({
        "id": [s.id for s in satellites] + ["uav00"],
        "kind": ["satellite"] * 3 + ["uav"],
        "role": ["server", "client", "client", "client"],
        "lat_deg": [np.nan] * 3 + [48.3], "lon_deg": [np.nan] * 3 + [11.5]})
    ax = plots.ground_tracks(satellites, nodes, max_satellites=1, orbits=0.5)
    assert len(ax.lines) == 2  # one client satellite + the server satellite, none for the UAV
    assert max(line.get_linewidth() for line in ax.lines) == 2.0
    assert "uavs" in ax.get_legend_handles_labels()[1]


def test_sweep_metric_means_and_stds_over_seeds(sweep, tmp_path):
    assert tables.swept_keys(sweep) == ["training.clients_per_round", "training.lr"]
    stats = analysis.sweep_stats(sweep, "training.clients_per_round", "test_accuracy")
    assert len(stats) == 2 * 2 * 2  # other key values x algorithms x swept values
    assert (stats.n == 2).all() and (stats["std"] > 0).all()
    per_run = analysis.sweep_summary(sweep, "test_accuracy")
    last = sweep[sweep["round"] == sweep["round"].max()]
    assert sorted(per_run.value) == sorted(last.test_accuracy)

    ax = sweep_plots.sweep_metric(sweep, "training.clients_per_round", "test_accuracy")
    assert len(ax.containers) == 4  # errorbar lines: algorithms x values of training.lr
    assert "2 seeds" in ax.get_title()
    assert ax.get_ylabel() == "test_accuracy (last)"
    _nonempty_file(ax, tmp_path / "f.png")
    ax = sweep_plots.sweep_metric(sweep, "training.lr", "round_duration_s", reduce="mean")
    _nonempty_file(ax, tmp_path / "g.png")


def test_sweep_metric_on_a_categorical_key_with_one_seed(rounds2):
    runs = fake_sweep(rounds2, {"training.partition": ["iid", "dirichlet"]}, seeds=(0,))
    ax = sweep_plots.sweep_metric(runs, "training.partition", "bytes_up_cum")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dirichlet", "iid"]
    assert ax.get_title().endswith("1 seed")
    assert ax.get_ylabel() == "bytes_up_cum (last) (MB)"


# ------------------------------------------------------------------------------ plot_results
def test_plot_results_writes_png_and_pdf_beside_the_tables(tmp_path):
    d = shutil.copytree(LEO, tmp_path / "leo")
    paths = plots.plot_results(d)
    names = RUN_FIGURES + ["contact_timeline", "ground_tracks"]
    assert paths == [d / f"{n}.{ext}" for n in names for ext in ("png", "pdf")]
    assert all(p.stat().st_size > 5_000 for p in paths)


def test_plot_results_draws_only_what_the_tables_allow(tmp_path):
    paths = plots.plot_results(TINY, tmp_path, formats=("png",))
    assert [p.name for p in paths] == [f"{n}.png" for n in RUN_FIGURES]
    contacts_only = tmp_path / "contacts_only"
    contacts_only.mkdir()
    for name in ("contacts.csv", "nodes.csv", "nodes.tle"):
        shutil.copy(LEO / name, contacts_only / name)
    paths = plots.plot_results(contacts_only, formats=("png",))
    assert [p.name for p in paths] == ["contact_timeline.png", "ground_tracks.png"]


def test_plot_results_on_a_sweep_directory(sweep, tmp_path):
    sweep.to_csv(tmp_path / "runs.csv", index=False)
    paths = plots.plot_results(tmp_path, formats=("png",))
    assert sorted(p.name for p in paths) == [
        f"sweep_training.{k}.png" for k in ("clients_per_round", "lr")]
    assert all(p.stat().st_size > 5_000 for p in paths)


def test_sweep_keys_from_a_sidecar(sweep, tmp_path):
    sweep.rename(columns={"training.lr": "lr"}).to_csv(tmp_path / "runs.csv", index=False)
    runs = tables.load_sweep(tmp_path)
    assert tables.swept_keys(runs, tmp_path) == ["training.clients_per_round"]
    (tmp_path / "sweep.json").write_text('{"grid": {"lr": [0.01, 0.05]}}')
    assert tables.swept_keys(runs, tmp_path) == ["training.clients_per_round", "lr"]
    assert tables.swept_keys(runs, listed=["lr"]) == ["training.clients_per_round", "lr"]


@pytest.mark.parametrize("bad", ["missing", "empty", "no_keys"])
def test_plot_results_refuses_what_is_not_a_results_directory(bad, tmp_path):
    d = tmp_path / "d"
    if bad != "missing":
        d.mkdir()
    if bad == "no_keys":
        pd.read_csv(TINY / "rounds.csv").assign(run_id="r0", seed=0).to_csv(d / "runs.csv")
    with pytest.raises(FileNotFoundError, match=str(d)):
        plots.plot_results(d)


# -------------------------------------------------------------------------------------- CLI
def test_cli_plot_writes_the_figures_and_exits_0(tmp_path, capsys):
    assert main(["plot", str(TINY), "--out", str(tmp_path), "--format", "png"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in tmp_path.glob("*.png"))
    assert len(printed) == len(RUN_FIGURES)


@pytest.mark.parametrize("args", [["no/such/dir"], [str(TINY), "--format", "docx"]])
def test_cli_plot_bad_input_exits_2_with_one_line(args, tmp_path, capsys):
    assert main(["plot", *args[:1], "--out", str(tmp_path), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sinsim: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


# -------------------------------------------------------------------------------- notebooks
def _execute_notebook(path: Path, parameters: str, cwd: Path) -> None:
    """Run a notebook top to bottom, with ``parameters`` (code) injected right after its
    parameters cell (the first code cell), as papermill does; fail on any error output."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{path.name} is stored with outputs"
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert "parameters" in nb.cells[first].metadata.get("tags", [])
    nb.cells.insert(first + 1, nbformat.v4.new_code_cell(parameters))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[:1]}"


@pytest.mark.slow
def test_bandwidth_accuracy_notebook_runs_on_stored_results():
    for d in (TINY, LEO):
        _execute_notebook(ROOT / "notebooks" / "bandwidth_accuracy.ipynb",
                          f"RESULTS_DIR = {str(d)!r}\nMAX_CLIENTS = 5", ROOT / "notebooks")


@pytest.mark.slow
def test_sensitivity_notebook_runs_on_a_small_sweep(sweep, tmp_path):
    sweep.to_csv(tmp_path / "runs.csv", index=False)
    _execute_notebook(ROOT / "notebooks" / "sensitivity.ipynb", f"SWEEP_DIR = {str(tmp_path)!r}",
                      ROOT / "notebooks")


@pytest.mark.slow
def test_sensitivity_notebook_runs_the_real_sweep_and_plot_reads_it(tmp_path):
    """The notebook's own path: `python -m sinsim sweep sweeps/tiny.yaml`, then the figures of
    that sweep directory, as `python -m sinsim plot` draws them."""
    out = tmp_path / "sweep"
    _execute_notebook(ROOT / "notebooks" / "sensitivity.ipynb", f"SWEEP_OUT = {str(out)!r}",
                      ROOT / "notebooks")
    paths = plots.plot_results(out, formats=("png",))
    assert sorted(p.name for p in paths) == ["sweep_training.clients_per_round.png",
                                             "sweep_training.lr.png"]


@pytest.mark.slow
def test_cli_plot_in_a_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sinsim", "plot", str(TINY), "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("*.pdf"))) == len(RUN_FIGURES)
